//! Simulated Everflow affiliate API (APIS.md §8.2, §6): `X-Eflow-API-Key` header;
//! `GET /v1/affiliates/offersrunnable` and `/v1/affiliates/alloffers` with `page` (1-based) and
//! `page_size` (default 50, at most 2000); `{offers, paging: {page, page_size, total_count}}`,
//! an empty `offers` array past the end; integer ids, `currency_id`, payouts in
//! `relationship.payouts.entries[]` (`cpa`, `cpc`, `cps` percentages, `cpa_cps` both),
//! include/exclude countries in `relationship.ruleset.countries[]`, caps as integers; offers
//! awaiting approval (all offers only) without a tracking link; errors `{"error": ..}` (401
//! "No Authentication Method Found"); over the limit HTTP 429 **without `Retry-After`**, every
//! answer carrying `X-RateLimit-Limit/Remaining` when a window limit is set
//! ([`super::limits::Limit::without_reset`]).

use super::catalog::SimOffer;
use super::twin::{json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

pub struct Everflow {
    /// `/alloffers`: offers awaiting approval are listed too.
    pub all: bool,
}

/// The offer id Everflow serves for catalogue offer `index`.
pub fn offer_id(index: usize) -> u64 {
    4000 + index as u64
}

fn status(o: &SimOffer) -> &'static str {
    match o.status {
        "paused" => "paused",
        _ if o.index % 11 == 5 => "pending",
        _ => "active",
    }
}

/// The payout entries: amounts (`cpa`, `cpc`), a percentage (`cps`) or both (`cpa_cps`).
fn entries(o: &SimOffer) -> Vec<Value> {
    let amount = o.payout_cents as f64 / 100.0;
    let share = (5 + o.payout_cents % 40) as f64;
    let flat = if o.payout_type == "cpc" { "cpc" } else { "cpa" };
    match o.index % 6 {
        1 => vec![json!({"payout_type": "cps", "payout_amount": 0, "payout_percentage": share})],
        4 => vec![
            json!({"payout_type": "cpa_cps", "payout_amount": amount, "payout_percentage": share}),
        ],
        3 => vec![
            json!({"payout_type": flat, "payout_amount": amount, "payout_percentage": 0}),
            json!({"payout_type": "cps", "payout_amount": 0, "payout_percentage": 10}),
        ],
        _ => vec![json!({"payout_type": flat, "payout_amount": amount, "payout_percentage": 0})],
    }
}

/// The offer as Everflow serves it on `/offersrunnable` (`all = false`) or `/alloffers`.
pub fn row(o: &SimOffer, all: bool) -> Value {
    let mut countries: Vec<Value> = o
        .countries
        .iter()
        .map(|c| json!({"country_code": c, "targeting_type": "include"}))
        .collect();
    if o.index.is_multiple_of(4) {
        countries.push(json!({"country_code": "CN", "targeting_type": "exclude"}));
    }
    let awaiting = all && o.index % 7 == 2;
    let relationship = if awaiting {
        "require_approval"
    } else if o.index.is_multiple_of(2) {
        "public"
    } else {
        "approved"
    };
    json!({
        "network_offer_id": offer_id(o.index),
        "network_id": 17,
        "name": o.name,
        "offer_status": status(o),
        "currency_id": if o.index % 9 == 4 { "EUR" } else { "USD" },
        "tracking_url": if awaiting { String::new() } else { o.tracking_url.clone() },
        "preview_url": format!("https://adv.everflow.demo/o{}", o.index),
        "thumbnail_url": format!("https://cdn.everflow.demo/{}.png", o.index),
        "time_saved": o.created_at,
        "daily_conversion_cap": if o.index % 4 == 1 { 50 } else { 0 },
        "monthly_conversion_cap": 0,
        "global_conversion_cap": if o.index % 4 == 1 { 1000 } else { 0 },
        "relationship": {
            "offer_affiliate_status": relationship,
            "payouts": {"total": 1, "entries": entries(o)},
            "ruleset": {"countries": countries},
        },
    })
}

impl Wire for Everflow {
    fn credential(&self, headers: &HeaderMap, _: &QueryPairs) -> Option<String> {
        headers
            .get("x-eflow-api-key")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let error = match given {
            None => "No Authentication Method Found".to_string(),
            Some(k) => format!("No Authentication Method Found for key {k}"),
        };
        json_error(StatusCode::UNAUTHORIZED, json!({"error": error}))
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let page_size = query_get(q, "page_size")
            .and_then(|p| p.parse().ok())
            .unwrap_or(50usize)
            .clamp(1, 2000);
        Ok(PageAsk {
            page,
            per_page: page_size,
            keep: None,
            listing: self.all.to_string(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        json_error(status, json!({"error": message}))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        let rows: Vec<Value> = offers.iter().map(|o| row(o, self.all)).collect();
        let paging = json!({"page": ask.page, "page_size": ask.per_page, "total_count": total});
        serde_json::to_vec(&json!({"offers": rows, "paging": paging})).unwrap_or_default()
    }
}
