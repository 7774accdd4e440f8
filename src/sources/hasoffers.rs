//! HasOffers / TUNE affiliate API (`kind = "hasoffers"`), see APIS.md §8.1 and §6.
//!
//! `GET {base_url}/Apiv3/json?api_key=KEY&Target=Affiliate_Offer&Method=findAll` (or
//! `findMyApprovedOffers`) with `sort[id]=asc`, `limit`, `page` (1-based) and `contain[]=Country`,
//! `OfferCategory`, `TrackingLink`. **The key is a query parameter** (redacted from every URL
//! shown). Envelope `{response: {status, httpStatus, data: {page, current, count, pageCount,
//! data: {"<id>": {Offer, Country, OfferCategory, TrackingLink}}}, errors, errorMessage}}`:
//! `data.data` is an object keyed by offer id, `[]` or `false` when empty, and numbers are
//! strings. The run ends when `page >= pageCount` or a page has no rows. Errors come with HTTP
//! 200 and `response.status != 1`, the text in `errorMessage` / `errors[].publicMessage` /
//! `err_msg`: "API usage exceeded rate limit" is the rate limit (never an HTTP 429), "Invalid
//! API key" / "Authentication failed" are permanent. A network that rejects one of the
//! `contain[]` models answers with an in-body error naming it: the adapter drops that model
//! and the retry asks again without it, rather than failing the run.
//!
//! `payout_type` `cpa_flat`, `cpc`, `cpm` are amounts (`default_payout`); `cpa_percentage` is a
//! share of the sale (`percent_payout`): CPS with `payout_unit = percent`; `cpa_both` is the CPA
//! amount (the percentage stays in `raw`). A null `currency` is the network's default (`default_currency`).
//! With `findAll`, an offer with `require_approval = "1"` is kept without a tracking link.

use super::lenient::{keyed_names, opt_decimal, opt_string, opt_u64, KeyedRows};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{HasOffersMethod, PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{parse_timestamp, Offer, OfferStatus, PayoutType, PayoutUnit, SourceApproval};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Mutex;

pub struct HasOffers {
    url: Url,
    api_key: Secret,
    limit: u32,
    method: HasOffersMethod,
    /// The `contain[]` models still asked for (a rejected one is dropped).
    contain: Mutex<Vec<String>>,
    default_currency: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default, rename = "errorMessage")]
    error_message: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(default, deserialize_with = "opt_u64", rename = "pageCount")]
    page_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    count: Option<u64>,
    #[serde(borrow, default)]
    data: Option<KeyedRows<'a>>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, rename = "Offer")]
    offer: Option<OfferFields>,
    #[serde(default, rename = "Country")]
    country: Option<Value>,
    #[serde(default, rename = "OfferCategory")]
    category: Option<Value>,
    #[serde(default, rename = "TrackingLink")]
    tracking: Option<Value>,
}

#[derive(Deserialize)]
struct OfferFields {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    default_payout: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    percent_payout: Option<Decimal>,
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    expiration_date: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    require_approval: Option<String>,
}

/// The in-body errors whose meaning is known (matched case-insensitively, anywhere in the text).
pub const APPLICATION_ERRORS: &[(&str, FailureClass)] = &[
    ("exceeded rate limit", FailureClass::RateLimited),
    ("invalid api key", FailureClass::Permanent),
    ("authentication failed", FailureClass::Permanent),
];

fn application_error(text: &str) -> Option<FailureClass> {
    let t = text.to_ascii_lowercase();
    APPLICATION_ERRORS
        .iter()
        .find(|(p, _)| t.contains(p))
        .map(|(_, c)| *c)
}

/// The error text of a failed response: `errorMessage`, else every `errors[]` message.
fn error_text(r: &Response<'_>) -> String {
    if let Some(Value::String(s)) = &r.error_message {
        if !s.is_empty() {
            return s.clone();
        }
    }
    let items = match &r.errors {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let texts: Vec<String> = items
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("publicMessage")
                .or_else(|| o.get("err_msg"))
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        "no message".into()
    } else {
        texts.join("; ")
    }
}

/// `(payout_type, whether default_payout is the payout)` of a HasOffers payout type.
fn payout_kind(t: Option<&str>) -> (Option<PayoutType>, bool) {
    match t {
        None => (None, true),
        Some("cpa_flat") | Some("cpa_both") => (Some(PayoutType::Cpa), true),
        Some("cpa_percentage") => (Some(PayoutType::Cps), false),
        Some(other) => (Some(PayoutType::from_platform(other)), true),
    }
}

impl HasOffers {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<HasOffers, String> {
        let PlatformOptions::HasOffers {
            method,
            contain,
            default_currency,
        } = &cfg.options
        else {
            return Err("not a HasOffers source".into());
        };
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/Apiv3/json").unwrap_or(base);
        let url = Url::parse(&format!("{base}/Apiv3/json"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(HasOffers {
            url,
            api_key,
            limit: cfg.page_size,
            method: *method,
            contain: Mutex::new(contain.clone()),
            default_currency: default_currency.clone(),
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let row: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/Offer/id"),
            reason: format!("offer does not match HasOffers' offer shape: {e}"),
        })?;
        let Some(r) = row.offer else {
            return Err(Rejected {
                external_id: None,
                reason: "row has no \"Offer\" object, so no id".into(),
            });
        };
        let id = super::require_id(r.id)?;
        let mut o = Offer::new(id, r.name.unwrap_or_default());
        o.status = match r.status.as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("expired") | Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        let (kind, is_amount) = payout_kind(r.payout_type.as_deref());
        o.payout_type = kind;
        if is_amount {
            o.payout = r.default_payout;
        } else {
            // `cpa_percentage`: a share of the sale, never an amount.
            o.payout = r.percent_payout;
            o.payout_unit = PayoutUnit::Percent;
        }
        o.currency = r.currency.or_else(|| self.default_currency.clone());
        o.description = r.description;
        o.preview_url = r.preview_url;
        o.ends_at = r.expiration_date.as_deref().and_then(parse_timestamp);
        o.countries = row
            .country
            .as_ref()
            .map(|c| keyed_names(c, "code"))
            .unwrap_or_default();
        o.categories = row
            .category
            .as_ref()
            .map(|c| keyed_names(c, "name"))
            .unwrap_or_default();
        let approved = self.method == HasOffersMethod::FindMyApprovedOffers
            || r.require_approval.as_deref() != Some("1");
        // `findMyApprovedOffers` lists approved offers only; with `findAll`, an offer that
        // requires approval may not be approved for us yet.
        o.approval = Some(if approved {
            SourceApproval::Approved
        } else {
            SourceApproval::RequiresApproval
        });
        o.tracking_url = row
            .tracking
            .as_ref()
            .and_then(|t| t.get("click_url")?.as_str().map(String::from))
            .filter(|_| approved);
        Ok(o)
    }

    /// A failed response: a rejected `contain[]` model is dropped (and the retry asks without
    /// it); anything else is classified by its words.
    fn error(&self, resp: &HttpResponse, r: &Response<'_>) -> Failure {
        let detail = error_text(r);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("contain") {
            let mut contain = self.contain.lock().unwrap();
            let named = contain
                .iter()
                .position(|c| lower.contains(&c.to_ascii_lowercase()));
            if let Some(i) = named {
                let model = contain.remove(i);
                tracing::warn!(model = %model, "HasOffers rejected a contain[] model; asking again without it");
                return Failure::transient(format!(
                    "HasOffers rejected contain[]={model} ({detail}); asking again without it"
                ));
            }
        }
        let msg = format!(
            "HasOffers answered HTTP {} with status {}: {detail}",
            resp.status.as_u16(),
            r.status.as_deref().unwrap_or("(none)")
        );
        Failure::in_body(
            resp,
            application_error(&detail),
            FailureClass::Permanent,
            msg,
        )
    }
}

impl Source for HasOffers {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api_key", self.api_key.expose());
            q.append_pair("Target", "Affiliate_Offer");
            q.append_pair(
                "Method",
                match self.method {
                    HasOffersMethod::FindAll => "findAll",
                    HasOffersMethod::FindMyApprovedOffers => "findMyApprovedOffers",
                },
            );
            q.append_pair("sort[id]", "asc");
            q.append_pair("limit", &self.limit.to_string());
            q.append_pair("page", &cursor.page.to_string());
            for c in self.contain.lock().unwrap().iter() {
                q.append_pair("contain[]", c);
            }
        }
        HttpRequest::get(url)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("HasOffers")?;
        let Some(r) = env.response else {
            return Err(Failure::transient(format!(
                "HasOffers answered HTTP {} without a response object: {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            )));
        };
        if !resp.status.is_success() || r.status.as_deref() != Some("1") {
            return Err(self.error(resp, &r));
        }
        let data = match r.data.map(|d| d.get().trim_start()) {
            Some(d) if d.starts_with('{') => serde_json::from_str::<Data<'_>>(d).map_err(|e| {
                Failure::transient(format!(
                    "HasOffers answered a data object that is not its paging shape ({e}): {}",
                    resp.body_excerpt()
                ))
            })?,
            // `[]`, `false`, null: nothing.
            _ => Data::default(),
        };
        let rows = data.data.unwrap_or_default().0;
        let expected_pages = data
            .page_count
            .or_else(|| data.count.map(|c| c.div_ceil(self.limit.max(1) as u64)));
        let end = rows.is_empty()
            || match expected_pages {
                Some(pages) => cursor.page >= pages,
                None => (rows.len() as u64) < self.limit as u64,
            };
        Ok(RowsPage {
            rows: super::own_rows(&rows),
            next: (!end).then(|| cursor.next_page()),
            expected_pages,
        })
    }
}

#[cfg(test)]
mod tests;
