//! Trackly SMS API v2 (`kind = "trackly"`), see APIS.md §5.
//!
//! `GET {base_url}/v2/offers?page=N&per_page=M` with `X-Api-Key`; envelope
//! `{offers: [..], pagination: {page, per_page, total, total_pages}}`; errors
//! `{error, code?, message?}` with a 4xx/5xx status. Archived offers are hidden unless asked for
//! with `status=archived`: `include_archived = true` walks that listing as a second pass and maps
//! them to `expired`. Trackly has no geo or currency fields; `metadata` keys `countries`/`country`/
//! `geo`, `currency`, `vertical`/`categories`/`category` (all three become categories),
//! `description` and `preview_url` are read when present; other keys stay in `raw`. See
//! docs/platforms/trackly.md.
//! `created_at`/`updated_at` (with or without a `Z`) are not part of the canonical model and stay
//! in `raw`.

use super::lenient::{opt_decimal, opt_string, opt_u64, string_list};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{Secret, SourceConfig};
use crate::http::{Failure, HttpRequest, HttpResponse};
use crate::model::{Offer, OfferStatus, PayoutType};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

pub struct Trackly {
    offers_url: Url,
    api_key: Secret,
    per_page: u32,
    include_archived: bool,
}

const ARCHIVED_PASS: u32 = 1;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    offers: Vec<&'a RawValue>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize, Default)]
struct Pagination {
    #[serde(default, deserialize_with = "opt_u64")]
    per_page: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total_pages: Option<u64>,
}

#[derive(Deserialize)]
struct TracklyOffer {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    advertiser_id: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    payout: Option<rust_decimal::Decimal>,
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

impl Trackly {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Trackly, String> {
        // Accept base URLs with or without the `/v2` suffix (the docs show both).
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v2").unwrap_or(base);
        let offers_url = Url::parse(&format!("{base}/v2/offers"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Trackly {
            offers_url,
            api_key,
            per_page: cfg.page_size.min(100),
            include_archived: matches!(
                cfg.options,
                crate::config::PlatformOptions::Trackly {
                    include_archived: true
                }
            ),
        })
    }

    fn error_failure(&self, resp: &HttpResponse) -> Failure {
        let detail = match serde_json::from_slice::<ErrorBody>(&resp.body) {
            Ok(b) if b.error.is_some() || b.message.is_some() => {
                let mut s = text(&b.error).unwrap_or_else(|| "error".into());
                if let Some(code) = text(&b.code) {
                    s.push_str(&format!(" (code {code})"));
                }
                if let Some(m) = text(&b.message) {
                    s.push_str(&format!(": {m}"));
                }
                s
            }
            _ => format!("non-JSON body: {}", resp.body_excerpt()),
        };
        Failure::from_response(
            resp,
            format!("Trackly answered HTTP {}: {detail}", resp.status.as_u16()),
        )
    }

    fn normalize(&self, raw: &RawValue, archived_pass: bool) -> Result<Offer, Rejected> {
        let t: TracklyOffer = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: id_of(raw),
            reason: format!("offer does not match Trackly's offer shape: {e}"),
        })?;
        let id = super::require_id(t.id)?;
        let mut o = Offer::new(id, t.name.unwrap_or_default());
        o.status = match t.status.as_deref() {
            _ if archived_pass => OfferStatus::Expired,
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("archived") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        o.payout = t.payout;
        o.payout_type = t.payout_type.as_deref().map(PayoutType::from_platform);
        o.tracking_url = t.tracking_url;
        o.advertiser = t.advertiser_id;
        if let Some(meta) = &t.metadata {
            let first = |keys: &[&str]| keys.iter().find_map(|k| meta.get(*k));
            if let Some(v) = first(&["countries", "country", "geo"]) {
                o.countries = string_list(v);
            }
            // The seed's example: {"vertical": "health", "geo": "US"}.
            o.categories = ["vertical", "categories", "category"]
                .iter()
                .filter_map(|k| meta.get(*k))
                .flat_map(string_list)
                .collect();
            let s = |k: &str| meta.get(k).and_then(Value::as_str).map(String::from);
            o.currency = s("currency");
            o.description = s("description");
            o.preview_url = s("preview_url");
        }
        Ok(o)
    }
}

/// Best-effort id of an offer that failed to parse, for the rejection message.
fn id_of(raw: &RawValue) -> Option<String> {
    super::id_at(raw, "/id")
}

impl Source for Trackly {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.offers_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page", &cursor.page.to_string());
            q.append_pair("per_page", &self.per_page.to_string());
            if cursor.pass == ARCHIVED_PASS {
                q.append_pair("status", "archived");
            }
        }
        HttpRequest::get(url).secret_header("x-api-key", &self.api_key)
    }

    fn normalize_row(&self, cursor: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw, cursor.pass == ARCHIVED_PASS)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        if !resp.status.is_success() {
            return Err(self.error_failure(resp));
        }
        let env: Envelope<'_> = serde_json::from_slice(&resp.body).map_err(|e| {
            Failure::transient(format!(
                "Trackly answered HTTP {} with a body that is not the offers envelope ({e}): {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            ))
        })?;
        let archived_pass = cursor.pass == ARCHIVED_PASS;
        let rows = super::own_rows(&env.offers);
        let p = env.pagination.unwrap_or_default();
        let per_page = p.per_page.unwrap_or(self.per_page as u64).max(1);
        let expected_pages = p
            .total_pages
            .or_else(|| p.total.map(|t| t.div_ceil(per_page)));
        let received = env.offers.len() as u64;
        let end_of_pass = received == 0
            || match expected_pages {
                Some(pages) => cursor.page >= pages,
                None => received < per_page,
            };
        let next = if !end_of_pass {
            Some(cursor.next_page())
        } else if self.include_archived && !archived_pass {
            Some(Cursor {
                pass: ARCHIVED_PASS,
                page: 1,
                token: None,
            })
        } else {
            None
        };
        Ok(RowsPage {
            rows,
            next,
            expected_pages,
        })
    }
}
