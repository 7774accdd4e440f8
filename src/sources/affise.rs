//! Affise as a source (`kind = "affise"`), see APIS.md §2.
//!
//! `API-Key` header. Admin keys: `GET {base_url}/3.0/offers?page=N&limit=M&status[]=...` (all
//! three statuses by default, so stopped offers are seen as paused rather than removed).
//! Partner keys: `GET {base_url}/3.0/partner/offers`. Success is `status: 1`; pagination is
//! `{page, per_page, total_count, next_page}` (or `{page, limit, total}`), and the run ends when
//! `next_page` is absent/null/0/false or `offers` is empty. `payments[].revenue` is the affiliate
//! payout and `payments[].total` the advertiser price: the first payment fills
//! `payout`/`revenue`/`currency`, all of them go to `payouts`. Countries come from payments and
//! targeting (upper-cased), the tracking URL from `url` (admin) or `link`/`links[].url`
//! (partner), dates from `"YYYY-MM-DD HH:MM:SS"`. Errors: HTTP >= 400 or `status != 1`, the text
//! from `error` or `message` (a string or an object).

use super::lenient::{opt_decimal, opt_string, opt_u64, string_list};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{AffiseApi, PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{parse_timestamp, Offer, OfferStatus, PayoutTier, PayoutType};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Affise {
    url: Url,
    api_key: Secret,
    limit: u32,
    partner: bool,
    statuses: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(borrow, default)]
    offers: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize, Default)]
struct Pagination {
    #[serde(default, deserialize_with = "opt_u64")]
    per_page: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    limit: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total: Option<u64>,
    /// A number, or absent/null/false/0 on the last page.
    #[serde(default)]
    next_page: Option<Value>,
}

#[derive(Deserialize)]
struct Payment {
    #[serde(default)]
    countries: Option<Value>,
    #[serde(default)]
    country_exclude: Option<bool>,
    #[serde(default, deserialize_with = "opt_decimal")]
    revenue: Option<rust_decimal::Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    total: Option<rust_decimal::Decimal>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    goal: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    links: Vec<Value>,
    #[serde(default)]
    url_preview: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    advertiser: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    logo: Option<String>,
    #[serde(default)]
    bundle_id: Option<String>,
    #[serde(default)]
    categories: Option<Value>,
    #[serde(default)]
    payments: Vec<Payment>,
    #[serde(default)]
    targeting: Vec<Value>,
    #[serde(default)]
    countries: Option<Value>,
    #[serde(default)]
    is_cpi: Option<bool>,
    #[serde(default, deserialize_with = "opt_string")]
    start_at: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    stop_at: Option<String>,
}

/// An error's text: a string, or an object/array stringified.
fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

fn is_one(v: &Option<Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => s == "1",
        _ => false,
    }
}

impl Affise {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Affise, String> {
        let PlatformOptions::Affise { api, statuses } = &cfg.options else {
            return Err("not an Affise source".into());
        };
        let partner = *api == AffiseApi::Partner;
        let path = if partner {
            "3.0/partner/offers"
        } else {
            "3.0/offers"
        };
        let url = Url::parse(&format!("{}/{path}", cfg.base_url.trim_end_matches('/')))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Affise {
            url,
            api_key,
            limit: cfg.page_size,
            partner,
            statuses: statuses.clone(),
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/id"),
            reason: format!("offer does not match Affise's offer shape: {e}"),
        })?;
        let id = super::require_id(r.id)?;
        let mut o = Offer::new(id, r.title.unwrap_or_default());
        o.status = match r.status.as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("stopped") | Some("suspended") => OfferStatus::Paused,
            Some(_) => OfferStatus::Other,
        };
        o.payouts = r
            .payments
            .iter()
            .map(|p| PayoutTier {
                payout: p.revenue.map(|d| d.to_string()),
                revenue: p.total.map(|d| d.to_string()),
                currency: p.currency.clone(),
                countries: p.countries.as_ref().map(string_list).unwrap_or_default(),
                kind: p.kind.clone(),
                goal: p.goal.clone(),
                title: p.title.clone(),
            })
            .collect();
        if let Some(first) = r.payments.first() {
            o.payout = first.revenue;
            o.revenue = first.total;
            o.currency = first.currency.clone();
        }
        o.payout_type = Some(if r.is_cpi == Some(true) {
            PayoutType::Cpi
        } else {
            PayoutType::Cpa
        });
        let mut countries: Vec<String> = r
            .payments
            .iter()
            .filter(|p| p.country_exclude != Some(true))
            .flat_map(|p| p.countries.as_ref().map(string_list).unwrap_or_default())
            .collect();
        for t in &r.targeting {
            if let Some(allow) = t.get("country").and_then(|c| c.get("allow")) {
                countries.extend(string_list(allow));
            }
        }
        countries.extend(r.countries.as_ref().map(string_list).unwrap_or_default());
        o.countries = countries;
        o.tracking_url = if self.partner {
            r.link.or_else(|| {
                r.links
                    .iter()
                    .find_map(|l| l.get("url")?.as_str().map(String::from))
            })
        } else {
            r.url
        };
        o.preview_url = r.url_preview.or(r.preview_url);
        o.advertiser = r.advertiser;
        o.description = r.description;
        o.icon_url = r.logo;
        o.app_package = r.bundle_id;
        o.categories = r.categories.as_ref().map(string_list).unwrap_or_default();
        o.starts_at = r.start_at.as_deref().and_then(parse_timestamp);
        o.ends_at = r.stop_at.as_deref().and_then(parse_timestamp);
        Ok(o)
    }
}

impl Source for Affise {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page", &cursor.page.to_string());
            q.append_pair("limit", &self.limit.to_string());
            if !self.partner {
                for s in &self.statuses {
                    q.append_pair("status[]", s);
                }
            }
        }
        HttpRequest::get(url).secret_header("api-key", &self.api_key)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("Affise")?;
        if !resp.status.is_success() || !is_one(&env.status) {
            let detail = text(&env.error)
                .or_else(|| text(&env.message))
                .unwrap_or_else(|| "no message".into());
            let msg = format!(
                "Affise answered HTTP {} with status {}: {detail}",
                resp.status.as_u16(),
                env.status
                    .map_or_else(|| "(none)".into(), |s| s.to_string())
            );
            // status: 2 with HTTP 200 is an application error: its words decide, else permanent.
            return Err(Failure::in_body(resp, None, FailureClass::Permanent, msg));
        }
        let rows = env.offers.unwrap_or_default();
        let rows = super::own_rows(&rows);
        let p = env.pagination.unwrap_or_default();
        let per_page = p.per_page.or(p.limit).unwrap_or(self.limit as u64).max(1);
        let expected_pages = p.total_count.or(p.total).map(|t| t.div_ceil(per_page));
        let next_page = match &p.next_page {
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n > cursor.page),
            Some(Value::String(s)) => s.parse().ok().filter(|n: &u64| *n > cursor.page),
            _ => None,
        };
        let end = rows.is_empty()
            || match (&p.next_page, expected_pages) {
                (Some(_), _) => next_page.is_none(),
                (None, Some(pages)) => cursor.page >= pages,
                (None, None) => (rows.len() as u64) < per_page,
            };
        let next = match (end, next_page.or(cursor.page.checked_add(1))) {
            (true, _) => None,
            (false, Some(page)) => Some(Cursor {
                pass: cursor.pass,
                page,
                token: None,
            }),
            (false, None) => {
                return Err(Failure::permanent(format!(
                    "Affise's pagination runs past page {}; stopping",
                    cursor.page
                )))
            }
        };
        Ok(RowsPage {
            rows,
            next,
            expected_pages,
        })
    }
}
