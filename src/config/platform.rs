//! Per-platform source options: the validated form of the keys that only apply to one kind, and
//! the declarative description of a generic JSON source.

use super::raw::{RawGeneric, RawSource};
use super::{Errors, SourceKind};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferslookApi {
    Network,
    Affiliate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferslookEndpoint {
    /// `/v1/offers` or `/aff/v1/offers`: flat rows.
    Offers,
    /// `/v1/batches/offers` or `/aff/v1/batches/offers`: nested rows with sub-resources.
    Batches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffiseApi {
    Admin,
    Partner,
}

/// The options of a source that depend on its kind.
#[derive(Debug, Clone)]
pub enum PlatformOptions {
    Trackly {
        include_archived: bool,
    },
    Offerslook {
        api: OfferslookApi,
        endpoint: OfferslookEndpoint,
        /// Basic-auth user: the network name (network API) or the affiliate's e-mail.
        username: String,
        /// `filters[...]` query parameters, as `(name, value)`.
        filters: Vec<(String, String)>,
        /// Application error codes that mean "Too Many Request" (the message is matched too).
        rate_limit_codes: Vec<i64>,
    },
    S2s {
        os: String,
        gaid: Option<String>,
        andid: Option<String>,
        country: Option<String>,
        thirdparty_id: Option<String>,
    },
    Affise {
        api: AffiseApi,
        statuses: Vec<String>,
    },
    Generic(GenericSpec),
}

impl PlatformOptions {
    /// The largest page the platform serves, and the default page size.
    pub fn page_limits(&self) -> (u32, u32) {
        match self {
            PlatformOptions::Trackly { .. } => (100, 100),
            PlatformOptions::Offerslook { api, endpoint, .. } => {
                let max = match (api, endpoint) {
                    (OfferslookApi::Network, OfferslookEndpoint::Offers) => 1000,
                    (OfferslookApi::Network, OfferslookEndpoint::Batches) => 100,
                    (OfferslookApi::Affiliate, OfferslookEndpoint::Offers) => 200,
                    (OfferslookApi::Affiliate, OfferslookEndpoint::Batches) => 100,
                };
                (max, max)
            }
            // EN docs: 500; ZH docs: 10000.
            PlatformOptions::S2s { .. } => (10_000, 500),
            // Default 100 per page; the maximum is undocumented.
            PlatformOptions::Affise { .. } => (500, 100),
            PlatformOptions::Generic(_) => (10_000, 100),
        }
    }

    /// Default pace: Youmi/Adxmi allow 50 requests per 10 minutes per publisher.
    pub fn default_requests_per_second(&self) -> f64 {
        match self {
            PlatformOptions::S2s { .. } => 50.0 / 600.0,
            _ => 5.0,
        }
    }
}

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

fn one_of<T: Copy>(
    key: &str,
    value: Option<&str>,
    default: T,
    options: &[(&str, T)],
    errs: &mut Errors,
) -> T {
    match value {
        None => default,
        Some(v) => match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                errs.push(key, format!("{v:?} is not one of {}", names.join(", ")));
                default
            }
        },
    }
}

/// Check that every kind-specific key is used with its kind, then build the options.
pub(super) fn validate(
    key: &str,
    kind: SourceKind,
    s: &RawSource,
    errs: &mut Errors,
) -> PlatformOptions {
    let present: [(&str, bool, &[SourceKind]); 14] = [
        (
            "rate_limit_codes",
            s.rate_limit_codes.is_some(),
            &[SourceKind::Offerslook],
        ),
        (
            "include_archived",
            s.include_archived.is_some(),
            &[SourceKind::Trackly],
        ),
        (
            "api",
            s.api.is_some(),
            &[SourceKind::Offerslook, SourceKind::Affise],
        ),
        ("endpoint", s.endpoint.is_some(), &[SourceKind::Offerslook]),
        ("username", s.username.is_some(), &[SourceKind::Offerslook]),
        ("filters", s.filters.is_some(), &[SourceKind::Offerslook]),
        ("os", s.os.is_some(), &[SourceKind::S2s]),
        ("gaid", s.gaid.is_some(), &[SourceKind::S2s]),
        ("andid", s.andid.is_some(), &[SourceKind::S2s]),
        ("country", s.country.is_some(), &[SourceKind::S2s]),
        (
            "thirdparty_id",
            s.thirdparty_id.is_some(),
            &[SourceKind::S2s],
        ),
        ("statuses", s.statuses.is_some(), &[SourceKind::Affise]),
        ("generic", s.generic.is_some(), &[SourceKind::Generic]),
        (
            "generic",
            s.generic.is_none() && kind == SourceKind::Generic,
            &[],
        ),
    ];
    for (name, is_set, kinds) in present {
        if is_set && !kinds.contains(&kind) {
            if kinds.is_empty() {
                errs.push(
                    format!("{key}.generic"),
                    "kind \"generic\" needs a [sources.generic] table",
                );
            } else {
                let names: Vec<String> =
                    kinds.iter().map(|k| format!("{:?}", k.as_str())).collect();
                errs.push(
                    format!("{key}.{name}"),
                    format!("only applies to kind {}", names.join(" or ")),
                );
            }
        }
    }
    match kind {
        SourceKind::Trackly => PlatformOptions::Trackly {
            include_archived: s.include_archived.unwrap_or(false),
        },
        SourceKind::Offerslook => {
            let api = one_of(
                &format!("{key}.api"),
                s.api.as_deref(),
                OfferslookApi::Network,
                &[
                    ("network", OfferslookApi::Network),
                    ("affiliate", OfferslookApi::Affiliate),
                ],
                errs,
            );
            let endpoint = one_of(
                &format!("{key}.endpoint"),
                s.endpoint.as_deref(),
                OfferslookEndpoint::Batches,
                &[
                    ("offers", OfferslookEndpoint::Offers),
                    ("batches", OfferslookEndpoint::Batches),
                ],
                errs,
            );
            let username = s.username.clone().unwrap_or_default();
            if username.is_empty() {
                errs.push(
                    format!("{key}.username"),
                    "required for kind \"offerslook\": the network name (api = \"network\") or the affiliate's e-mail (api = \"affiliate\")",
                );
            }
            let filters = s
                .filters
                .iter()
                .flatten()
                .map(|(field, value)| {
                    // `status` → filters[status]; `geo_country[EQUAL_TO]` → filters[geo_country][EQUAL_TO]
                    let name = match field.split_once('[') {
                        Some((f, op)) => format!("filters[{f}][{}", op),
                        None => format!("filters[{field}]"),
                    };
                    (name, value.clone())
                })
                .collect();
            PlatformOptions::Offerslook {
                api,
                endpoint,
                username,
                filters,
                rate_limit_codes: s.rate_limit_codes.clone().unwrap_or_default(),
            }
        }
        SourceKind::S2s => {
            let os = s.os.clone().unwrap_or_default();
            if !matches!(os.as_str(), "android" | "ios") {
                errs.push(
                    format!("{key}.os"),
                    "required for kind \"s2s\": \"android\" or \"ios\"",
                );
            }
            if os == "android" {
                for (name, v) in [("gaid", &s.gaid), ("andid", &s.andid)] {
                    if v.as_deref().is_none_or(str::is_empty) {
                        errs.push(format!("{key}.{name}"), "required when os = \"android\" (the platform rejects the request with -3006 otherwise)");
                    }
                }
            }
            PlatformOptions::S2s {
                os,
                gaid: s.gaid.clone(),
                andid: s.andid.clone(),
                country: s.country.clone(),
                thirdparty_id: s.thirdparty_id.clone(),
            }
        }
        SourceKind::Affise => {
            let api = one_of(
                &format!("{key}.api"),
                s.api.as_deref(),
                AffiseApi::Admin,
                &[("admin", AffiseApi::Admin), ("partner", AffiseApi::Partner)],
                errs,
            );
            let statuses = s.statuses.clone().unwrap_or_else(|| {
                // All three for admin keys, so stopped and suspended offers are seen, not "removed".
                ["active", "stopped", "suspended"]
                    .map(String::from)
                    .to_vec()
            });
            for (i, st) in statuses.iter().enumerate() {
                if !matches!(st.as_str(), "active" | "stopped" | "suspended") {
                    errs.push(
                        format!("{key}.statuses[{i}]"),
                        format!("{st:?} is not one of active, stopped, suspended"),
                    );
                }
            }
            PlatformOptions::Affise { api, statuses }
        }
        SourceKind::Generic => match &s.generic {
            Some(g) => {
                PlatformOptions::Generic(validate_generic(&format!("{key}.generic"), g, errs))
            }
            None => PlatformOptions::Generic(GenericSpec {
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
            }),
        },
    }
}

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
    let a = &g.auth;
    let auth = match a.kind.as_deref().unwrap_or("header") {
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
    };
    let size_param = p.size_param.clone();
    let paging = match p.kind.as_deref().unwrap_or("page") {
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
    };
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
