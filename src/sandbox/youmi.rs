//! Simulated Youmi / Adxmi publisher S2S offer feed (APIS.md §4): `app_id` in the query, `os`,
//! `page` (from 1), `page_size`, `gaid` + `andid` required for Android; errors in the body with
//! HTTP 200 and a negative `c` (`-1002` unknown app, `-3006` missing device ids, `-3302` over
//! the QPS budget); the seed envelope `{c, d: {p, n, tot, data}}` (v1 online) or the flat v2
//! envelope `{c, total, page, page_size, n, offers}` (v2 offline); ids as numbers (seed) or
//! strings (v2); `tracking_link` (seed) or `trackinglink` (v2); payouts as strings or numbers.

use super::catalog::SimOffer;
use super::twin::{json_body, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

pub struct Youmi {
    /// `true`: the seed's `{c, d: {...}}` envelope; `false`: the flat v2 envelope.
    pub seed: bool,
}

fn body(v: Value) -> Response {
    json_body(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default())
}

pub fn seed_row(o: &SimOffer) -> Value {
    json!({
        "id": 2_957_000_000u64 + o.index as u64,
        "icon": format!("https://cdn.youmi.demo/{}.png", o.index),
        "name": o.name,
        "conversion_flow": "1.Download and open the app\n2.Sign up",
        "tracking_link": format!("http://ad.api.yyapi.net/v1/tracking?id={}", o.index),
        "payout": format!("{:.2}", o.payout_cents as f64 / 100.0),
        "preview_url": format!("https://play.google.com/store/apps/details?id=com.y.o{}", o.index),
        "package": format!("com.y.o{}", o.index),
        "offer_type": "app",
        "payout_type": "fixed",
        "os": "android",
        "countries": o.countries,
        "os_version": "",
    })
}

pub fn v2_row(o: &SimOffer) -> Value {
    json!({
        "id": (2_957_000_000u64 + o.index as u64).to_string(),
        "name": o.name,
        "package": format!("com.y.o{}", o.index),
        "adtxt": format!("{} app", o.category),
        "kpi": "",
        "payout": o.payout_cents as f64 / 100.0,
        "cap": 0,
        "trackinglink": format!("http://ad.api.yyapi.net/v2/tracking?id={}", o.index),
        "country": o.countries,
        "os": ["android"],
        "traffic": "non-incentive",
        "preview_url": format!("https://play.google.com/store/apps/details?id=com.y.o{}", o.index),
        "icon_url": format!("https://cdn.youmi.demo/{}.png", o.index),
        "payout_type": if o.payout_type == "cpc" { "CPA" } else { "CPI" },
        "category": o.category,
    })
}

impl Wire for Youmi {
    fn credential(&self, _: &HeaderMap, q: &QueryPairs) -> Option<String> {
        query_get(q, "app_id").map(String::from)
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let msg = match given {
            None => "app_id is required".to_string(),
            Some(k) => format!("app_id {k} not exists"),
        };
        body(json!({"c": -1002, "msg": msg}))
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let os = query_get(q, "os");
        if !matches!(os, Some("android") | Some("ios")) {
            return Err(Box::new(body(
                json!({"c": -3006, "msg": "os is required (android or ios)"}),
            )));
        }
        if os == Some("android")
            && (query_get(q, "gaid").is_none() || query_get(q, "andid").is_none())
        {
            return Err(Box::new(body(
                json!({"c": -3006, "msg": "gaid and andid are required when os=android"}),
            )));
        }
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let size = query_get(q, "page_size")
            .and_then(|p| p.parse().ok())
            .unwrap_or(20usize)
            .clamp(1, 10_000);
        Ok(PageAsk {
            page,
            per_page: size,
            keep: Some(|s| s == "active"),
            listing: String::new(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The newer docs: HTTP 429 (with Retry-After when the limit says so).
            return json_body(
                status,
                serde_json::to_vec(&json!({"c": -3302, "msg": message})).unwrap_or_default(),
            );
        }
        json_body(
            status,
            serde_json::to_vec(&json!({"c": -1, "msg": message})).unwrap_or_default(),
        )
    }

    fn in_body_rate_limit(&self, status: StatusCode) -> Option<Response> {
        Some(json_body(
            status,
            serde_json::to_vec(&json!({"c": -3302, "msg": "exceed qps limit"})).unwrap_or_default(),
        ))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        if self.seed {
            let rows: Vec<Value> = offers.iter().map(seed_row).collect();
            serde_json::to_vec(
                // The seed's table: `n` is the page size (the one used, after any cap).
                &json!({"c": 0, "d": {"p": ask.page, "n": ask.per_page, "tot": total, "data": rows}}),
            )
            .unwrap_or_default()
        } else {
            let rows: Vec<Value> = offers.iter().map(v2_row).collect();
            serde_json::to_vec(
                &json!({"c": 0, "total": total, "page": ask.page, "page_size": ask.per_page, "n": rows.len(), "offers": rows}),
            )
            .unwrap_or_default()
        }
    }
}
