//! `kind = "generic"`: a declarative description of any JSON offer API (`[sources.generic]`).

use super::{no_warnings, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenericAuth {
    None,
    Header { name: String, prefix: String },
    Query { name: String },
    Basic { username: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenericPaging {
    None,
    Page {
        page_param: String,
        size_param: Option<String>,
        first_page: u64,
    },
    Offset {
        offset_param: String,
        size_param: Option<String>,
    },
    Cursor {
        cursor_param: String,
        cursor_path: Vec<PathStep>,
        size_param: Option<String>,
    },
    NextUrl {
        next_url_path: Vec<PathStep>,
        size_param: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsAre {
    Array,
    ObjectValues,
}

/// A field mapping: a JSON path and the transforms applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    pub path: Vec<PathStep>,
    pub transforms: Vec<Transform>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Upper,
    Lower,
    Split,
    Decimal,
    Unix,
    First,
    String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericSpec {
    pub records_path: Vec<PathStep>,
    pub records_are: RecordsAre,
    pub auth: GenericAuth,
    pub paging: GenericPaging,
    pub total_path: Option<Vec<PathStep>>,
    pub total_pages_path: Option<Vec<PathStep>>,
    pub has_more_path: Option<Vec<PathStep>>,
    pub query: Vec<(String, String)>,
    pub fields: BTreeMap<String, FieldRule>,
    pub status_map: BTreeMap<String, String>,
    pub error_path: Option<Vec<PathStep>>,
}

/// Canonical fields a generic source can map.
pub const GENERIC_FIELDS: &[&str] = &[
    "external_id",
    "name",
    "status",
    "payout",
    "currency",
    "payout_type",
    "revenue",
    "countries",
    "platforms",
    "categories",
    "tracking_url",
    "preview_url",
    "advertiser",
    "description",
    "icon_url",
    "app_package",
    "starts_at",
    "ends_at",
];

/// `a.b.0.c` or `a.b[0].c`.
pub fn parse_path(text: &str) -> Result<Vec<PathStep>, String> {
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(match name.parse::<usize>() {
                Ok(i) => PathStep::Index(i),
                Err(_) => PathStep::Key(name.to_string()),
            });
        }
        while let Some(end) = rest.find(']') {
            let idx = rest[1..end]
                .parse::<usize>()
                .map_err(|_| format!("{text:?}: [{}] is not an array index", &rest[1..end]))?;
            steps.push(PathStep::Index(idx));
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() || (name.is_empty() && !part.starts_with('[')) {
            return Err(format!(
                "{text:?} is not a path like \"data.offers\" or \"payments[0].revenue\""
            ));
        }
    }
    if steps.is_empty() {
        return Err("empty path".into());
    }
    Ok(steps)
}

fn parse_rule(text: &str) -> Result<FieldRule, String> {
    let mut parts = text.split('|').map(str::trim);
    let path = parse_path(parts.next().unwrap_or_default())?;
    let transforms = parts
        .map(|t| match t {
            "upper" => Ok(Transform::Upper),
            "lower" => Ok(Transform::Lower),
            "split" => Ok(Transform::Split),
            "decimal" => Ok(Transform::Decimal),
            "unix" => Ok(Transform::Unix),
            "first" => Ok(Transform::First),
            "string" => Ok(Transform::String),
            other => Err(format!(
                "unknown transform {other:?} (upper, lower, split, decimal, unix, first, string)"
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(FieldRule { path, transforms })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    generic: Option<RawGeneric>,
}

/// `[sources.generic]`: a declarative description of any JSON offer API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeneric {
    /// Dotted path to the records (an array, or an object whose values are records).
    pub records_path: String,
    /// `array` (default) or `object_values` (Offer18's `data` keyed by offer id).
    pub records_are: Option<String>,
    #[serde(default)]
    pub auth: RawGenericAuth,
    #[serde(default)]
    pub pagination: RawGenericPagination,
    /// Extra query parameters sent with every request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Canonical field → `path|transform|...`.
    pub fields: BTreeMap<String, String>,
    /// Platform status value → canonical status.
    #[serde(default)]
    pub status_map: BTreeMap<String, String>,
    /// Dotted path to a field whose presence/value marks an error body (with HTTP 200).
    pub error_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenericAuth {
    /// `header`, `query`, `basic` or `none` (default `header`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Header or query parameter name (`X-Api-Key`, `api-key`, ...).
    pub name: Option<String>,
    /// Basic auth user; the API key is the password.
    pub username: Option<String>,
    /// Header value prefix (`Bearer `).
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenericPagination {
    /// `page` (default), `offset`, `cursor`, `next_url` or `none`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub page_param: Option<String>,
    pub size_param: Option<String>,
    pub first_page: Option<u64>,
    pub offset_param: Option<String>,
    pub cursor_param: Option<String>,
    pub cursor_path: Option<String>,
    pub next_url_path: Option<String>,
    pub total_path: Option<String>,
    pub total_pages_path: Option<String>,
    pub has_more_path: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    match &k.generic {
        Some(g) => PlatformOptions::Generic(validate_generic(&format!("{key}.generic"), g, errs)),
        None => {
            errs.push(
                format!("{key}.generic"),
                "kind \"generic\" needs a [sources.generic] table",
            );
            PlatformOptions::Generic(GenericSpec {
                records_path: vec![],
                records_are: RecordsAre::Array,
                auth: GenericAuth::None,
                paging: GenericPaging::None,
                total_path: None,
                total_pages_path: None,
                has_more_path: None,
                query: vec![],
                fields: BTreeMap::new(),
                status_map: BTreeMap::new(),
                error_path: None,
            })
        }
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "generic",
    keys: super::keys_of::<Keys>,
    validate,
    page_limits: |_| (10_000, 100),
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};

fn validate_generic(key: &str, g: &RawGeneric, errs: &mut Errors) -> GenericSpec {
    let mut path = |name: &str, text: &str| -> Vec<PathStep> {
        parse_path(text).unwrap_or_else(|e| {
            errs.push(format!("{key}.{name}"), e);
            vec![]
        })
    };
    let records_path = path("records_path", &g.records_path);
    let p = &g.pagination;
    let total_path = p
        .total_path
        .as_deref()
        .map(|t| path("pagination.total_path", t));
    let total_pages_path = p
        .total_pages_path
        .as_deref()
        .map(|t| path("pagination.total_pages_path", t));
    let has_more_path = p
        .has_more_path
        .as_deref()
        .map(|t| path("pagination.has_more_path", t));
    let error_path = g.error_path.as_deref().map(|t| path("error_path", t));
    let cursor_path = p
        .cursor_path
        .as_deref()
        .map(|t| path("pagination.cursor_path", t));
    let next_url_path = p
        .next_url_path
        .as_deref()
        .map(|t| path("pagination.next_url_path", t));
    let records_are = match g.records_are.as_deref() {
        None | Some("array") => RecordsAre::Array,
        Some("object_values") => RecordsAre::ObjectValues,
        Some(other) => {
            errs.push(
                format!("{key}.records_are"),
                format!("{other:?} is not one of array, object_values"),
            );
            RecordsAre::Array
        }
    };
    let auth = validate_auth(key, &g.auth, errs);
    let paging = validate_paging(key, p, cursor_path, next_url_path, errs);
    let fields = validate_fields(key, g, errs);
    GenericSpec {
        records_path,
        records_are,
        auth,
        paging,
        total_path,
        total_pages_path,
        has_more_path,
        query: g
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fields,
        status_map: g.status_map.clone(),
        error_path,
    }
}

fn validate_auth(key: &str, a: &RawGenericAuth, errs: &mut Errors) -> GenericAuth {
    match a.kind.as_deref().unwrap_or("header") {
        "none" => GenericAuth::None,
        "header" => GenericAuth::Header {
            name: a.name.clone().unwrap_or_else(|| "X-Api-Key".into()),
            prefix: a.prefix.clone().unwrap_or_default(),
        },
        "query" => GenericAuth::Query {
            name: a.name.clone().unwrap_or_else(|| "api_key".into()),
        },
        "basic" => GenericAuth::Basic {
            username: a.username.clone().unwrap_or_else(|| {
                errs.push(
                    format!("{key}.auth.username"),
                    "required for auth type \"basic\"",
                );
                String::new()
            }),
        },
        other => {
            errs.push(
                format!("{key}.auth.type"),
                format!("{other:?} is not one of header, query, basic, none"),
            );
            GenericAuth::None
        }
    }
}

fn validate_paging(
    key: &str,
    p: &RawGenericPagination,
    cursor_path: Option<Vec<PathStep>>,
    next_url_path: Option<Vec<PathStep>>,
    errs: &mut Errors,
) -> GenericPaging {
    let size_param = p.size_param.clone();
    match p.kind.as_deref().unwrap_or("page") {
        "none" => GenericPaging::None,
        "page" => GenericPaging::Page {
            page_param: p.page_param.clone().unwrap_or_else(|| "page".into()),
            size_param,
            first_page: p.first_page.unwrap_or(1),
        },
        "offset" => GenericPaging::Offset {
            offset_param: p.offset_param.clone().unwrap_or_else(|| "offset".into()),
            size_param,
        },
        "cursor" => GenericPaging::Cursor {
            cursor_param: p.cursor_param.clone().unwrap_or_else(|| "cursor".into()),
            cursor_path: cursor_path.clone().unwrap_or_else(|| {
                errs.push(
                    format!("{key}.pagination.cursor_path"),
                    "required for pagination type \"cursor\"",
                );
                vec![]
            }),
            size_param,
        },
        "next_url" => GenericPaging::NextUrl {
            next_url_path: next_url_path.clone().unwrap_or_else(|| {
                errs.push(
                    format!("{key}.pagination.next_url_path"),
                    "required for pagination type \"next_url\"",
                );
                vec![]
            }),
            size_param,
        },
        other => {
            errs.push(
                format!("{key}.pagination.type"),
                format!("{other:?} is not one of page, offset, cursor, next_url, none"),
            );
            GenericPaging::None
        }
    }
}

/// `fields.<canonical>` rules (`external_id` and `name` required) and `status_map` targets.
fn validate_fields(key: &str, g: &RawGeneric, errs: &mut Errors) -> BTreeMap<String, FieldRule> {
    let mut fields = BTreeMap::new();
    for (field, rule) in &g.fields {
        if !GENERIC_FIELDS.contains(&field.as_str()) {
            errs.push(
                format!("{key}.fields.{field}"),
                format!(
                    "not a canonical field (one of: {})",
                    GENERIC_FIELDS.join(", ")
                ),
            );
            continue;
        }
        match parse_rule(rule) {
            Ok(r) => {
                fields.insert(field.clone(), r);
            }
            Err(e) => errs.push(format!("{key}.fields.{field}"), e),
        }
    }
    for required in ["external_id", "name"] {
        if !g.fields.contains_key(required) {
            errs.push(
                format!("{key}.fields.{required}"),
                "required: where the offer's id and name are",
            );
        }
    }
    for (from, to) in &g.status_map {
        if crate::model::OfferStatus::ALL
            .iter()
            .all(|s| s.as_str() != to)
            || to == "removed"
        {
            errs.push(
                format!("{key}.status_map.{from}"),
                format!("{to:?} is not one of active, paused, pending, expired, other"),
            );
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        use PathStep::*;
        assert_eq!(
            parse_path("a.b").unwrap(),
            vec![Key("a".into()), Key("b".into())]
        );
        assert_eq!(
            parse_path("payments[0].revenue").unwrap(),
            vec![Key("payments".into()), Index(0), Key("revenue".into())]
        );
        assert_eq!(
            parse_path("links.1.url").unwrap(),
            vec![Key("links".into()), Index(1), Key("url".into())]
        );
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("").is_err());
    }
}
