//! A declarative JSON source (`kind = "generic"`): any paginated offer API described in the
//! config (`[sources.generic]`), no code. See `config/examples/` for Trackly and Offer18.
//!
//! - auth: a header (`X-Api-Key`, `Authorization: Bearer ...`), a query parameter, or HTTP Basic
//!   with the key as password;
//! - pagination: page number + size, offset + size, a cursor read from the response, or a next
//!   URL read from the response; the end is an empty page, `has_more_path` false, the page count
//!   from `total_path`/`total_pages_path`, a missing cursor/next URL, or a short page;
//! - records: the array (or the object's values, for APIs keyed by id) at `records_path`;
//! - fields: canonical field → `path|transform|...` with dotted paths and array indexes
//!   (`payments[0].revenue`) and the transforms upper, lower, split (on commas), decimal,
//!   unix (seconds to a timestamp), first (of an array) and string;
//! - errors: non-2xx statuses, and a non-empty value at `error_path` in a 200 body.

use super::lenient::string_list;
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{
    FieldRule, GenericAuth, GenericPaging, GenericSpec, PathStep, PlatformOptions, RecordsAre,
    Secret, SourceConfig, Transform,
};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{
    format_timestamp, parse_decimal, parse_timestamp, unix_to_utc, Offer, OfferStatus, PayoutType,
};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

pub struct Generic {
    url: Url,
    api_key: Secret,
    page_size: u32,
    spec: GenericSpec,
}

/// The value at `path` inside `v`.
fn value_at<'v>(v: &'v Value, path: &[PathStep]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, step| match step {
        PathStep::Key(k) => cur.get(k.as_str()),
        PathStep::Index(i) => cur.get(*i),
    })
}

/// The raw JSON at `path` inside `raw`, borrowed from the body (so records stay byte-exact).
fn raw_at<'a>(raw: &'a RawValue, path: &[PathStep]) -> Option<&'a RawValue> {
    path.iter().try_fold(raw, |cur, step| match step {
        PathStep::Key(k) => {
            let m: HashMap<String, &'a RawValue> = serde_json::from_str(cur.get()).ok()?;
            m.get(k.as_str()).copied()
        }
        PathStep::Index(i) => {
            let v: Vec<&'a RawValue> = serde_json::from_str(cur.get()).ok()?;
            v.get(*i).copied()
        }
    })
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn apply(v: Value, t: Transform) -> Value {
    let map_str = |v: Value, f: &dyn Fn(&str) -> String| match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| match x {
                    Value::String(s) => Value::String(f(&s)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    };
    match t {
        Transform::Upper => map_str(v, &|s| s.to_uppercase()),
        Transform::Lower => map_str(v, &|s| s.to_lowercase()),
        Transform::Split => match v {
            Value::String(_) | Value::Array(_) => {
                Value::Array(string_list(&v).into_iter().map(Value::String).collect())
            }
            other => other,
        },
        Transform::Decimal => as_text(&v)
            .and_then(|s| parse_decimal(&s))
            .map_or(Value::Null, |d| Value::String(d.to_string())),
        Transform::Unix => as_text(&v)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|n| unix_to_utc(n as i64))
            .map_or(Value::Null, |t| Value::String(format_timestamp(t))),
        Transform::First => match v {
            Value::Array(a) => a.into_iter().next().unwrap_or(Value::Null),
            other => other,
        },
        Transform::String => as_text(&v).map_or(Value::Null, Value::String),
    }
}

fn eval(record: &Value, rule: &FieldRule) -> Value {
    let v = value_at(record, &rule.path).cloned().unwrap_or(Value::Null);
    rule.transforms.iter().fold(v, |v, t| apply(v, *t))
}

impl Generic {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Generic, String> {
        let PlatformOptions::Generic(spec) = &cfg.options else {
            return Err("not a generic source".into());
        };
        let url = Url::parse(&cfg.base_url)
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Generic {
            url,
            api_key,
            page_size: cfg.page_size,
            spec: spec.clone(),
        })
    }

    fn field(&self, record: &Value, name: &str) -> Value {
        self.spec
            .fields
            .get(name)
            .map_or(Value::Null, |r| eval(record, r))
    }

    fn text_field(&self, record: &Value, name: &str) -> Option<String> {
        as_text(&self.field(record, name)).filter(|s| !s.is_empty())
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let record: Value = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: None,
            reason: format!("record is not JSON: {e}"),
        })?;
        let id = self
            .text_field(&record, "external_id")
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Rejected {
                external_id: None,
                reason: "record has no value at fields.external_id".into(),
            })?;
        let mut o = Offer::new(id, self.text_field(&record, "name").unwrap_or_default());
        if let Some(st) = self.text_field(&record, "status") {
            let mapped = self.spec.status_map.get(&st).cloned().unwrap_or(st);
            o.status = OfferStatus::from_str(&mapped.to_ascii_lowercase())
                .ok()
                .filter(|s| *s != OfferStatus::Removed)
                .unwrap_or(OfferStatus::Other);
        }
        let dec = |name: &str| {
            self.text_field(&record, name)
                .and_then(|s| parse_decimal(&s))
        };
        o.payout = dec("payout");
        o.revenue = dec("revenue");
        o.currency = self.text_field(&record, "currency");
        o.payout_type = self
            .text_field(&record, "payout_type")
            .map(|p| PayoutType::from_platform(&p));
        let list = |name: &str| string_list(&self.field(&record, name));
        o.countries = list("countries");
        o.platforms = list("platforms");
        o.categories = list("categories");
        o.tracking_url = self.text_field(&record, "tracking_url");
        o.preview_url = self.text_field(&record, "preview_url");
        o.advertiser = self.text_field(&record, "advertiser");
        o.description = self.text_field(&record, "description");
        o.icon_url = self.text_field(&record, "icon_url");
        o.app_package = self.text_field(&record, "app_package");
        o.starts_at = self
            .text_field(&record, "starts_at")
            .and_then(|s| parse_timestamp(&s));
        o.ends_at = self
            .text_field(&record, "ends_at")
            .and_then(|s| parse_timestamp(&s));
        Ok(o)
    }

    fn size_param(&self) -> Option<&String> {
        match &self.spec.paging {
            GenericPaging::Page { size_param, .. }
            | GenericPaging::Offset { size_param, .. }
            | GenericPaging::Cursor { size_param, .. }
            | GenericPaging::NextUrl { size_param, .. } => size_param.as_ref(),
            GenericPaging::None => None,
        }
    }
}

impl Source for Generic {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        // A next URL from the previous page replaces the whole URL (resolved against base_url).
        let mut url = match (&self.spec.paging, &cursor.token) {
            (GenericPaging::NextUrl { .. }, Some(next)) => {
                self.url.join(next).unwrap_or_else(|_| self.url.clone())
            }
            _ => self.url.clone(),
        };
        let next_url_page =
            matches!(self.spec.paging, GenericPaging::NextUrl { .. }) && cursor.token.is_some();
        {
            let mut q = url.query_pairs_mut();
            if !next_url_page {
                for (k, v) in &self.spec.query {
                    q.append_pair(k, v);
                }
                if let Some(size) = self.size_param() {
                    q.append_pair(size, &self.page_size.to_string());
                }
                match &self.spec.paging {
                    GenericPaging::Page {
                        page_param,
                        first_page,
                        ..
                    } => {
                        q.append_pair(page_param, &(first_page + cursor.page - 1).to_string());
                    }
                    GenericPaging::Offset { offset_param, .. } => {
                        q.append_pair(
                            offset_param,
                            &((cursor.page - 1) * self.page_size as u64).to_string(),
                        );
                    }
                    GenericPaging::Cursor { cursor_param, .. } => {
                        if let Some(t) = &cursor.token {
                            q.append_pair(cursor_param, t);
                        }
                    }
                    GenericPaging::NextUrl { .. } | GenericPaging::None => {}
                }
            }
            if let GenericAuth::Query { name } = &self.spec.auth {
                q.append_pair(name, self.api_key.expose());
            }
        }
        let mut req = HttpRequest::get(url);
        match &self.spec.auth {
            GenericAuth::Header { name, prefix } => {
                if let (Ok(n), Ok(mut v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&format!("{prefix}{}", self.api_key.expose())),
                ) {
                    v.set_sensitive(true);
                    req.headers.insert(n, v);
                }
            }
            GenericAuth::Basic { username } => {
                req.basic_auth = Some((username.clone(), self.api_key.clone()))
            }
            GenericAuth::Query { .. } | GenericAuth::None => {}
        }
        req
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        if !resp.status.is_success() {
            return Err(Failure::from_response(
                resp,
                format!(
                    "the platform answered HTTP {}: {}",
                    resp.status.as_u16(),
                    resp.body_excerpt()
                ),
            ));
        }
        let not_json = |e: serde_json::Error| {
            Failure::transient(format!(
                "the platform answered HTTP {} with a body that is not JSON ({e}): {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            ))
        };
        let doc: Value = serde_json::from_slice(&resp.body).map_err(not_json)?;
        self.in_body_error(&doc, resp)?;
        let root: &RawValue = serde_json::from_slice(&resp.body).map_err(not_json)?;
        let records = self.records(root, resp)?;
        let rows = super::own_rows(&records);
        let num = |p: &Option<Vec<PathStep>>| {
            p.as_ref()
                .and_then(|p| value_at(&doc, p))
                .and_then(as_text)
                .and_then(|s| s.parse::<u64>().ok())
        };
        let expected_pages = num(&self.spec.total_pages_path).or_else(|| {
            num(&self.spec.total_path).map(|t| t.div_ceil(self.page_size.max(1) as u64))
        });
        let has_more = self
            .spec
            .has_more_path
            .as_ref()
            .and_then(|p| value_at(&doc, p))
            .map(|v| match v {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_u64() != Some(0),
                Value::String(s) => !matches!(s.as_str(), "" | "0" | "false"),
                _ => false,
            });
        let next = if records.is_empty() || has_more == Some(false) {
            None
        } else {
            self.next_cursor(&doc, cursor, records.len(), has_more, expected_pages)?
        };
        Ok(RowsPage {
            rows,
            next,
            expected_pages,
        })
    }
}
impl Generic {
    /// An error the platform reports in a 200 body, at `error_path`.
    fn in_body_error(&self, doc: &Value, resp: &HttpResponse) -> Result<(), Failure> {
        if let Some(err) = self.spec.error_path.as_ref().and_then(|p| value_at(doc, p)) {
            if !matches!(err, Value::Null | Value::Bool(false))
                && as_text(err).is_some_and(|t| !t.is_empty() && t != "0")
            {
                let msg = format!(
                    "the platform reported an error: {}",
                    as_text(err).unwrap_or_default()
                );
                return Err(Failure::in_body(resp, None, FailureClass::Permanent, msg));
            }
        }
        Ok(())
    }

    /// The page's records at `records_path`: an array, or an object's values.
    fn records<'r>(
        &self,
        root: &'r RawValue,
        resp: &HttpResponse,
    ) -> Result<Vec<&'r RawValue>, Failure> {
        Ok(match raw_at(root, &self.spec.records_path) {
            None => Vec::new(),
            Some(r) => match self.spec.records_are {
                RecordsAre::Array => serde_json::from_str(r.get()).map_err(|e| {
                    Failure::transient(format!(
                        "records_path does not hold an array ({e}): {}",
                        resp.body_excerpt()
                    ))
                })?,
                RecordsAre::ObjectValues => {
                    let m: BTreeMap<String, &RawValue> =
                        serde_json::from_str(r.get()).map_err(|e| {
                            Failure::transient(format!(
                                "records_path does not hold an object ({e}): {}",
                                resp.body_excerpt()
                            ))
                        })?;
                    m.into_values().collect()
                }
            },
        })
    }

    /// The cursor after a page of `records` rows that was not the last by its own signals.
    fn next_cursor(
        &self,
        doc: &Value,
        cursor: &Cursor,
        records: usize,
        has_more: Option<bool>,
        expected_pages: Option<u64>,
    ) -> Result<Option<Cursor>, Failure> {
        let token_at =
            |p: &Vec<PathStep>| value_at(doc, p).and_then(as_text).filter(|s| !s.is_empty());
        Ok(match &self.spec.paging {
            GenericPaging::None => None,
            GenericPaging::Cursor { cursor_path, .. } => token_at(cursor_path).map(|t| Cursor {
                pass: 0,
                page: cursor.page.saturating_add(1),
                token: Some(t),
            }),
            GenericPaging::NextUrl { next_url_path, .. } => match token_at(next_url_path) {
                None => None,
                Some(t) => {
                    // The credential goes with every request: never to another origin.
                    let same_origin = self
                        .url
                        .join(&t)
                        .is_ok_and(|u| u.origin() == self.url.origin());
                    if !same_origin {
                        return Err(Failure::permanent(format!(
                            "the platform's next URL does not resolve to base_url's origin ({}); offersync does not send the credential elsewhere",
                            self.url.origin().ascii_serialization()
                        )));
                    }
                    Some(Cursor {
                        pass: 0,
                        page: cursor.page.saturating_add(1),
                        token: Some(t),
                    })
                }
            },
            GenericPaging::Page { .. } | GenericPaging::Offset { .. } => {
                let more = match (has_more, expected_pages) {
                    (Some(true), _) => true,
                    (_, Some(pages)) => cursor.page < pages,
                    _ => records as u64 >= self.page_size as u64,
                };
                more.then(|| cursor.next_page())
            }
        })
    }
}
