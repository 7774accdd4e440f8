//! Simulated Offer18 affiliate offers API (APIS.md §8.5): `key` (the credential), `aid` and
//! `mid` in the query; `GET /api/af/offers?page=P&limit=M&offer_status=1&authorized=1`; pages
//! numbered from 0 (what clients send) or, on the `one` route, from 1 as the docs' example reads
//! (where `page=0` is taken as page 1, so a client counting from 0 sees its first page twice);
//! `{response: "200", data: {"<offerid>": {..}}}` with `data` an object keyed by id (`[]` when
//! empty), `response` a string and numbers strings; `country_allow` / `country_block` as
//! comma lists, `capping[]`, `payout[{price, condition}]`; without `authorized=1` some offers
//! come with an empty `tracking_link`; errors `{response: "401", error}` at HTTP 200.

use super::catalog::SimOffer;
use super::twin::{json_body, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

pub struct Offer18 {
    /// The wire number of the first page: 0 (the default route) or 1 (`/offer18/one`).
    pub first_page: u64,
}

/// The offer id Offer18 serves for catalogue offer `index`.
pub fn offer_id(index: usize) -> String {
    (7000 + index).to_string()
}

fn answer(status: StatusCode, v: Value) -> Response {
    json_body(status, serde_json::to_vec(&v).unwrap_or_default())
}

fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The offer under its id in `data`; `authorized`: the request asked for approved offers only.
pub fn row(o: &SimOffer, authorized: bool) -> Value {
    let mut payout = vec![json!({"price": price(o.payout_cents), "condition": "Install"})];
    if o.index.is_multiple_of(3) {
        payout.push(json!({"price": "7.50", "condition": "Purchase"}));
    }
    let approved = authorized || o.index % 7 != 2;
    json!({
        "offerid": offer_id(o.index),
        "name": o.name,
        "status": if o.status == "paused" { "paused" } else { "active" },
        "currency": if o.index % 9 == 4 { "INR" } else { "USD" },
        "price": price(o.payout_cents),
        "model": match o.index % 6 { 2 => "CPI", _ if o.payout_type == "cpc" => "CPC", _ => "CPA" },
        "preview_url": format!("https://adv.offer18.demo/o{}", o.index),
        "tracking_link": if approved { o.tracking_url.clone() } else { String::new() },
        "country_allow": o.countries.join(","),
        "country_block": if o.index.is_multiple_of(4) { "CN" } else { "" },
        "capping": if o.index % 4 == 1 { json!([{"type": "daily", "value": "100"}]) } else { json!([]) },
        "payout": payout,
    })
}

impl Wire for Offer18 {
    fn credential(&self, _: &HeaderMap, q: &QueryPairs) -> Option<String> {
        query_get(q, "key").map(String::from)
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let error = match given {
            None => "key is required".to_string(),
            Some(k) => format!("Invalid key {k}"),
        };
        answer(StatusCode::OK, json!({"response": "401", "error": error}))
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        if query_get(q, "aid").is_none() || query_get(q, "mid").is_none() {
            return Err(Box::new(answer(
                StatusCode::OK,
                json!({"response": "400", "error": "aid and mid are required"}),
            )));
        }
        let wire: u64 = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(self.first_page);
        let page = (wire + 1).saturating_sub(self.first_page).max(1);
        let limit = query_get(q, "limit")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100usize)
            .clamp(1, 1000);
        let authorized = query_get(q, "authorized") == Some("1");
        Ok(PageAsk {
            page,
            per_page: limit,
            keep: None,
            listing: authorized.to_string(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        answer(
            status,
            json!({"response": status.as_u16().to_string(), "error": message}),
        )
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, _total: usize) -> Vec<u8> {
        let authorized = ask.listing == "true";
        let data = if offers.is_empty() {
            json!([])
        } else {
            let m: Map<String, Value> = offers
                .iter()
                .map(|o| (offer_id(o.index), row(o, authorized)))
                .collect();
            Value::Object(m)
        };
        serde_json::to_vec(&json!({"response": "200", "data": data})).unwrap_or_default()
    }
}
