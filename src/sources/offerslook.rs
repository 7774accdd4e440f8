//! Offerslook (`kind = "offerslook"`), see APIS.md §1.
//!
//! HTTP Basic (network name or affiliate e-mail : API key). `GET {base_url}/v1/offers`,
//! `/v1/batches/offers`, `/aff/v1/offers` or `/aff/v1/batches/offers` with `offset` as a 1-based
//! page number (what production clients send, although the docs call it a row offset) and
//! `limit` clamped to the endpoint's maximum (1000 / 100 / 200 / 100); `sort=+id` keeps pages
//! stable. The run ends when `offset` reaches `totalPages` or `rowset` is empty. Flat rows and
//! nested batch rows (`offer`, `offer_geo.target[].country_code` as a string or an array,
//! `offer_platform.target[].system`, `offer_cap`) are both read; payouts come as strings or
//! numbers; dates are unix seconds; `category` is a comma-separated string. An offer whose
//! `tracking_link` is null is kept with no tracking URL (and logged at debug). Errors are
//! `{code, message}`, with HTTP 200 or a 4xx: every application error the docs list is classified
//! on purpose ([`APPLICATION_ERRORS`]; "Too Many Request" is a rate limit, as are the numeric
//! codes listed in `rate_limit_codes`). See docs/platforms/offerslook.md.

use super::lenient::{opt_decimal, opt_string, opt_u64, string_list};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{OfferslookApi, OfferslookEndpoint, PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{unix_to_utc, Offer, OfferStatus, PayoutType};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Offerslook {
    url: Url,
    username: String,
    api_key: Secret,
    limit: u32,
    batch: bool,
    filters: Vec<(String, String)>,
    rate_limit_codes: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    rowset: Vec<&'a RawValue>,
    #[serde(rename = "totalPages", default, deserialize_with = "opt_u64")]
    total_pages: Option<u64>,
    #[serde(rename = "totalRows", default, deserialize_with = "opt_u64")]
    total_rows: Option<u64>,
}

/// The offer fields of a flat row, or of a batch row's `offer` object.
#[derive(Deserialize, Default)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    payout: Option<rust_decimal::Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    revenue: Option<rust_decimal::Decimal>,
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default)]
    tracking_link: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    advertiser_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<Value>,
    #[serde(default)]
    thumbnail: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    app_id: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    start_date: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    end_date: Option<u64>,
}

#[derive(Deserialize)]
struct BatchRow {
    #[serde(default)]
    offer: Option<Row>,
    #[serde(default)]
    offer_geo: Option<Geo>,
    #[serde(default)]
    offer_platform: Option<Targets>,
}

#[derive(Deserialize)]
struct Geo {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    target: Vec<Value>,
}

#[derive(Deserialize)]
struct Targets {
    #[serde(default)]
    target: Vec<Value>,
}

fn text(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Offerslook {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Offerslook, String> {
        let PlatformOptions::Offerslook {
            api,
            endpoint,
            username,
            filters,
            rate_limit_codes,
        } = &cfg.options
        else {
            return Err("not an Offerslook source".into());
        };
        let (path, max) = match (api, endpoint) {
            (OfferslookApi::Network, OfferslookEndpoint::Offers) => ("v1/offers", 1000),
            (OfferslookApi::Network, OfferslookEndpoint::Batches) => ("v1/batches/offers", 100),
            (OfferslookApi::Affiliate, OfferslookEndpoint::Offers) => ("aff/v1/offers", 200),
            (OfferslookApi::Affiliate, OfferslookEndpoint::Batches) => {
                ("aff/v1/batches/offers", 100)
            }
        };
        let url = Url::parse(&format!("{}/{path}", cfg.base_url.trim_end_matches('/')))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Offerslook {
            url,
            username: username.clone(),
            api_key,
            limit: cfg.page_size.min(max),
            batch: *endpoint == OfferslookEndpoint::Batches,
            filters: filters.clone(),
            rate_limit_codes: rate_limit_codes.iter().map(i64::to_string).collect(),
        })
    }

    /// An error envelope (any HTTP status), classified by the seed's application error list
    /// (see [`application_error`]); the codes in `rate_limit_codes` are rate limits.
    fn error(&self, resp: &HttpResponse, code: &str, message: &str) -> Failure {
        let msg = format!(
            "Offerslook answered HTTP {} with code {code}: {message}",
            resp.status.as_u16()
        );
        // The numeric values of the codes were stripped from the docs: the message decides,
        // plus the codes an operator configured in rate_limit_codes.
        let class = if self.rate_limit_codes.iter().any(|c| c == code) {
            Some(FailureClass::RateLimited)
        } else {
            application_error(message)
        };
        Failure::in_body(resp, class, FailureClass::Transient, msg)
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let reject = |reason: String| Rejected {
            external_id: id_of(raw, self.batch),
            reason,
        };
        let (row, geo, platforms) = if self.batch {
            let b: BatchRow = serde_json::from_str(raw.get())
                .map_err(|e| reject(format!("row does not match Offerslook's batch shape: {e}")))?;
            let row = b
                .offer
                .ok_or_else(|| reject("batch row has no \"offer\" object".into()))?;
            (row, b.offer_geo, b.offer_platform)
        } else {
            let row: Row = serde_json::from_str(raw.get())
                .map_err(|e| reject(format!("row does not match Offerslook's offer shape: {e}")))?;
            (row, None, None)
        };
        let id = super::require_id(row.id)?;
        let mut o = Offer::new(id, row.name.unwrap_or_default());
        o.status = match row.status.as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        o.payout = row.payout;
        o.revenue = row.revenue;
        // "CPA+CPS" is a CPA offer with a revenue share on top.
        o.payout_type = row
            .payout_type
            .as_deref()
            .map(|t| PayoutType::from_platform(t.split('+').next().unwrap_or(t)));
        o.currency = row.currency;
        o.preview_url = row.preview_url;
        if row.tracking_link.is_none() {
            tracing::debug!(offer = %o.external_id, "Offerslook offer has no tracking link (approval needed?); kept without one");
        }
        o.tracking_url = row.tracking_link;
        o.advertiser = row.advertiser_id.filter(|a| a != "0");
        o.description = row.description;
        o.categories = row.category.as_ref().map(string_list).unwrap_or_default();
        o.icon_url = row.thumbnail;
        o.app_package = row.app_id;
        o.starts_at = row.start_date.and_then(|t| unix_to_utc(t as i64));
        o.ends_at = row.end_date.and_then(|t| unix_to_utc(t as i64));
        if let Some(g) = geo.filter(|g| g.kind.as_deref() != Some("exclude")) {
            o.countries = g
                .target
                .iter()
                .flat_map(|t| t.get("country_code").map(string_list).unwrap_or_default())
                .collect();
        }
        if let Some(p) = platforms {
            o.platforms = p
                .target
                .iter()
                .filter_map(|t| t.get("system").and_then(Value::as_str).map(String::from))
                .collect();
        }
        Ok(o)
    }
}

/// Every application error the Offerslook docs list (seed 000, "Application Error Codes"),
/// with what it means for a listing, whether it comes with HTTP 200 or a 4xx. Retrying cannot
/// fix a bad key, domain, parameter or permission; an upgrade or an internal error may pass.
pub const APPLICATION_ERRORS: &[(&str, FailureClass)] = &[
    ("Invalid API Key", FailureClass::Permanent),
    ("Unauthorized Request", FailureClass::Permanent),
    ("Invalid API Domain", FailureClass::Permanent),
    ("Request Parameter Error", FailureClass::Permanent),
    ("Bad Request", FailureClass::Permanent),
    ("Resource Not Found", FailureClass::Permanent),
    ("Invalid Request Method", FailureClass::Permanent),
    ("Duplicated Resource", FailureClass::Permanent),
    ("Too Many Request", FailureClass::RateLimited),
    ("Request IP Not Whitelisted", FailureClass::Permanent),
    ("Account is locked", FailureClass::Permanent),
    ("System upgrade", FailureClass::Transient),
    ("Server Internal Error", FailureClass::Transient),
    ("Illegal Operation", FailureClass::Permanent),
];

/// The class of an application error message; `None` for a message the docs do not list (the
/// caller then goes by the HTTP status, then the general phrases, then retries it as transient).
pub fn application_error(message: &str) -> Option<FailureClass> {
    let m = message.trim();
    APPLICATION_ERRORS
        .iter()
        .find(|(name, _)| {
            m.eq_ignore_ascii_case(name)
                || m.to_ascii_lowercase()
                    .starts_with(&name.to_ascii_lowercase())
        })
        .map(|(_, class)| *class)
}

fn id_of(raw: &RawValue, batch: bool) -> Option<String> {
    let v: Value = serde_json::from_str(raw.get()).ok()?;
    let row = if batch { v.get("offer")? } else { &v };
    match row.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Source for Offerslook {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("offset", &cursor.page.to_string());
            q.append_pair("limit", &self.limit.to_string());
            q.append_pair("sort", "+id");
            for (k, v) in &self.filters {
                q.append_pair(k, v);
            }
        }
        let mut req = HttpRequest::get(url);
        req.basic_auth = Some((self.username.clone(), self.api_key.clone()));
        req
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("Offerslook")?;
        let code = text(&env.code);
        if !resp.status.is_success() || !(code == "0" || code.is_empty()) {
            return Err(self.error(resp, &code, &text(&env.message)));
        }
        let data = env.data.ok_or_else(|| {
            Failure::transient(format!(
                "Offerslook answered code 0 without data: {}",
                resp.body_excerpt()
            ))
        })?;
        let rows = super::own_rows(&data.rowset);
        let expected_pages = data.total_pages.or_else(|| {
            data.total_rows
                .map(|t| t.div_ceil(self.limit.max(1) as u64))
        });
        let end = data.rowset.is_empty() || expected_pages.is_some_and(|p| cursor.page >= p);
        Ok(RowsPage {
            rows,
            next: (!end).then(|| cursor.next_page()),
            expected_pages,
        })
    }
}
