//! Simulated Trackier publisher API v2 (APIS.md §8.4): `X-Api-Key` header (or `apiKey` query);
//! `GET /v2/publisher/campaigns?page=N&limit=M` (limit default 1000);
//! `{success: true, data: {campaigns, page, count}}` with `count` the total; integer ids,
//! `currency` null for some campaigns (USD), `model` `cpa|cpi|cpc|cps` (`cps`: the payout is a
//! percentage), per-geo `payouts[]`, `countries[]`, `os[]`, an empty `tracking_link` where the
//! publisher is not approved, `cap{type, daily, monthly, lifetime}`; errors HTTP 400
//! `{success: false, error: {code, message}}` (13 "Invalid API Key"), HTTP 500 in the
//! `{code, codeMsg, message}` variant; over the limit HTTP 429.

use super::catalog::SimOffer;
use super::twin::{header_get, json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Value};

pub struct Trackier;

/// The campaign id Trackier serves for catalogue offer `index`.
pub fn campaign_id(index: usize) -> u64 {
    6000 + index as u64
}

/// Whether the sandbox's publisher is approved for the campaign (else its link is empty).
pub fn approved(o: &SimOffer) -> bool {
    o.index % 7 != 2
}

fn model(o: &SimOffer) -> &'static str {
    match o.index % 6 {
        1 => "cps",
        2 => "cpi",
        _ if o.payout_type == "cpc" => "cpc",
        _ => "cpa",
    }
}

/// A payout as Trackier writes it: a number, or (in the second, per-geo entry) a string.
#[derive(Serialize)]
#[serde(untagged)]
enum Amount {
    Number(f64),
    Text(&'static str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payout<'a> {
    payout: Amount,
    geo: &'a [&'static str],
    variable: bool,
    allowed_values: [u8; 0],
}

#[derive(Serialize)]
struct Cap {
    #[serde(rename = "type")]
    kind: &'static str,
    daily: u32,
    monthly: u32,
    lifetime: u32,
}

/// One campaign on the wire, serialized directly (a `serde_json::Value` per row cost the
/// bench's in-process twin most of a core).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireCampaign<'a> {
    id: u64,
    title: &'a str,
    status: &'static str,
    currency: Option<&'static str>,
    model: &'static str,
    payouts: Vec<Payout<'a>>,
    countries: &'a [&'static str],
    device: [&'static str; 1],
    os: [&'static str; 1],
    #[serde(rename = "tracking_link")]
    tracking_link: &'a str,
    #[serde(rename = "preview_url")]
    preview_url: String,
    impression_url: &'static str,
    cap: Cap,
    goals: [u8; 0],
    creatives: [u8; 0],
    sub_ids_block: [u8; 0],
    sub_ids_allow: [u8; 0],
}

fn wire(o: &SimOffer) -> WireCampaign<'_> {
    let model = model(o);
    let first = if model == "cps" {
        (5 + o.payout_cents % 40) as f64
    } else {
        o.payout_cents as f64 / 100.0
    };
    let payout = |payout, geo| Payout {
        payout,
        geo,
        variable: false,
        allowed_values: [],
    };
    let mut payouts = vec![payout(Amount::Number(first), &o.countries[..])];
    if o.index.is_multiple_of(3) && model != "cps" {
        payouts.push(payout(Amount::Text("7.50"), &["US"]));
    }
    WireCampaign {
        id: campaign_id(o.index),
        title: &o.name,
        status: if o.status == "paused" {
            "paused"
        } else {
            "active"
        },
        currency: match o.index % 5 {
            3 => None,
            _ if o.index % 9 == 4 => Some("EUR"),
            _ => Some("USD"),
        },
        model,
        payouts,
        countries: &o.countries,
        device: ["mobile"],
        os: [if o.index.is_multiple_of(2) {
            "android"
        } else {
            "ios"
        }],
        tracking_link: if approved(o) { &o.tracking_url } else { "" },
        preview_url: format!("https://adv.trackier.demo/c{}", o.index),
        impression_url: "",
        cap: Cap {
            kind: "conversions",
            daily: if o.index % 4 == 1 { 100 } else { 0 },
            monthly: 0,
            lifetime: 0,
        },
        goals: [],
        creatives: [],
        sub_ids_block: [],
        sub_ids_allow: [],
    }
}

/// The campaign as Trackier serves it.
pub fn row(o: &SimOffer) -> Value {
    serde_json::to_value(wire(o)).unwrap_or_default()
}

impl Wire for Trackier {
    fn credential(&self, headers: &HeaderMap, q: &QueryPairs) -> Option<String> {
        header_get(headers, "x-api-key").or_else(|| query_get(q, "apiKey").map(String::from))
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let message = match given {
            None => "Invalid API Key".to_string(),
            Some(k) => format!("Invalid API Key {k}"),
        };
        self.error(StatusCode::BAD_REQUEST, &message)
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let limit = query_get(q, "limit")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1000usize)
            .clamp(1, 1000);
        Ok(PageAsk {
            page,
            per_page: limit,
            keep: None,
            listing: String::new(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        let code = match status.as_u16() {
            400 if message.starts_with("Invalid API Key") => 13,
            s => s,
        };
        if status.is_server_error() {
            // The documented variant shape.
            return json_error(
                status,
                json!({"code": 102, "codeMsg": "SERVER_ERROR", "message": message}),
            );
        }
        json_error(
            status,
            json!({"success": false, "error": {"code": code, "message": message}}),
        )
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        #[derive(Serialize)]
        struct Data<'a> {
            campaigns: Vec<WireCampaign<'a>>,
            page: u64,
            count: usize,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            success: bool,
            data: Data<'a>,
        }
        serde_json::to_vec(&Envelope {
            success: true,
            data: Data {
                campaigns: offers.iter().map(wire).collect(),
                page: ask.page,
                count: total,
            },
        })
        .unwrap_or_default()
    }
}
