//! Simulated Offerslook (APIS.md §1): HTTP Basic (network name or affiliate e-mail : key);
//! `offset` is a 1-based page number and `limit` is clamped to the endpoint's maximum;
//! `{code, message, data: {rowset, totalPages, totalRows, offset, limit}}`; flat rows on
//! `/v1/offers` and `/aff/v1/offers`, nested `{offer, offer_geo, offer_cap, offer_platform}` rows
//! on the batch endpoints; payouts as strings (flat) or numbers (batch); unix-second dates;
//! comma-separated categories; `tracking_link` null for some offers; errors as HTTP 4xx with
//! `{code, message}`; "Too Many Request" in the body at HTTP 200 or 429.

use super::catalog::SimOffer;
use super::twin::{json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

/// The Basic-auth user the twin expects (the network name).
pub const USERNAME: &str = "demo-network";
/// Numeric application code the twin uses for "Too Many Request" (the real value is unknown).
pub const TOO_MANY_REQUEST_CODE: i64 = 1008;

pub struct Offerslook {
    pub batch: bool,
    pub max_limit: usize,
}

/// Offerslook statuses: every 11th offer is pending, and our "archived" shows as deleted.
fn status(o: &SimOffer) -> &'static str {
    match o.status {
        "archived" => "deleted",
        "paused" => "paused",
        _ if o.index % 11 == 5 => "pending",
        _ => "active",
    }
}

fn tracking_link(o: &SimOffer) -> Value {
    if o.index % 13 == 7 {
        Value::Null
    } else {
        Value::String(format!(
            "http://demo.go.offerslook.com/aff_c?offer_id={}&aff_id=1",
            o.index
        ))
    }
}

/// A flat `/v1/offers` row: payouts as strings.
pub fn flat_row(o: &SimOffer) -> Value {
    json!({
        "id": 10_000 + o.index,
        "name": o.name,
        "advertiser_id": o.advertiser_id.trim_start_matches("adv-").parse::<u64>().unwrap_or(0),
        "start_date": o.created_at,
        "end_date": o.created_at + 180 * 86_400,
        "status": status(o),
        "offer_approval": 2,
        "revenue_type": "RPA",
        "revenue": format!("{:.2}", o.payout_cents as f64 * 1.25 / 100.0),
        "payout_type": if o.payout_type == "cpc" { "CPC" } else { "CPA" },
        "payout": format!("{:.2}", o.payout_cents as f64 / 100.0),
        "currency": "USD",
        "preview_url": format!("https://play.google.com/store/apps/details?id=com.demo.o{}", o.index),
        "tracking_link": tracking_link(o),
        "description": format!("{} offer", o.category),
        "category": format!("{},Mobile", o.category),
    })
}

/// A nested batch row: payout as a number, geo and platform as sub-resources.
pub fn batch_row(o: &SimOffer) -> Value {
    // Some clients saw country_code as an array: serve both shapes.
    let targets: Vec<Value> = o
        .countries
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 1 {
                json!({"country_code": [c]})
            } else {
                json!({"country_code": c})
            }
        })
        .collect();
    let mut row = json!({
        "offer": {
            "id": 10_000 + o.index,
            "name": o.name,
            "status": status(o),
            "payout": o.payout_cents as f64 / 100.0,
            "currency": "USD",
            "preview_url": format!("https://play.google.com/store/apps/details?id=com.demo.o{}", o.index),
            "tracking_link": tracking_link(o),
            "app_id": format!("com.demo.o{}", o.index),
            "category": format!("{},Mobile", o.category),
            "carrier": [],
            "description": format!("{} offer", o.category),
            "thumbnail": format!("https://cdn.demo/o{}.png", o.index),
            "end_date": o.created_at + 180 * 86_400,
        },
        "offer_geo": {"type": "include", "target": targets},
        "offer_platform": {"target": [{"system": if o.index.is_multiple_of(2) { "Android" } else { "iOS" }}]},
        "offer_creative": [{"url": format!("https://cdn.demo/b{}.png", o.index)}],
    });
    if !o.index.is_multiple_of(4) {
        row["offer_cap"] = json!({"cap_conversion": 100});
    }
    row
}

impl Wire for Offerslook {
    fn credential(&self, headers: &HeaderMap, _: &QueryPairs) -> Option<String> {
        let v = headers.get("authorization")?.to_str().ok()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v.strip_prefix("Basic ")?)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, key) = text.split_once(':')?;
        // A wrong user is as bad as a wrong key; the twin folds it into the key it checks.
        Some(if user == USERNAME {
            key.to_string()
        } else {
            format!("{user}:{key}")
        })
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let message = match given {
            None => "Unauthorized Request".to_string(),
            Some(k) => format!("Invalid API Key ({k})"),
        };
        json_error(
            StatusCode::UNAUTHORIZED,
            json!({"code": 13, "message": message}),
        )
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let page = query_get(q, "offset")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let limit = query_get(q, "limit")
            .and_then(|p| p.parse().ok())
            .unwrap_or(10usize);
        if limit == 0 {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                json!({"code": 20, "message": "Request Parameter Error"}),
            )));
        }
        let keep: Option<fn(&str) -> bool> =
            match query_get(q, "filters[status]").or(query_get(q, "filters[status][EQUAL_TO]")) {
                None => None,
                Some("active") => Some(|s| s == "active"),
                Some("paused") => Some(|s| s == "paused"),
                Some(_) => Some(|_| false),
            };
        Ok(PageAsk {
            page,
            per_page: limit.min(self.max_limit),
            keep,
            listing: format!("{}{}", self.batch, keep.is_some()),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        let (code, message) = match status.as_u16() {
            429 => (TOO_MANY_REQUEST_CODE, "Too Many Request"),
            500..=599 => (50, "Server Internal Error"),
            _ => (30, message),
        };
        json_error(status, json!({"code": code, "message": message}))
    }

    fn in_body_rate_limit(&self, status: StatusCode) -> Option<Response> {
        Some(json_error(
            status,
            json!({"code": TOO_MANY_REQUEST_CODE, "message": "Too Many Request"}),
        ))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        let rows: Vec<Value> = offers
            .iter()
            .map(if self.batch { batch_row } else { flat_row })
            .collect();
        let body = json!({
            "code": 0,
            "message": "Success",
            "data": {
                "rowset": rows,
                "totalPages": total.div_ceil(ask.per_page),
                "totalRows": total,
                "offset": ask.page,
                "limit": ask.per_page,
            }
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
