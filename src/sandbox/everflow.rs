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
use super::twin::{header_get, json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
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

/// A JSON number as the platform writes it: `0` and `10` as integers, amounts as decimals.
#[derive(Serialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum Num {
    I(i64),
    F(f64),
}

#[derive(Serialize)]
struct Entry {
    payout_type: &'static str,
    payout_amount: Num,
    payout_percentage: Num,
}

/// The payout entries: amounts (`cpa`, `cpc`), a percentage (`cps`) or both (`cpa_cps`).
fn entries(o: &SimOffer) -> Vec<Entry> {
    let amount = Num::F(o.payout_cents as f64 / 100.0);
    let share = Num::F((5 + o.payout_cents % 40) as f64);
    let flat = if o.payout_type == "cpc" { "cpc" } else { "cpa" };
    let e = |payout_type, payout_amount, payout_percentage| Entry {
        payout_type,
        payout_amount,
        payout_percentage,
    };
    match o.index % 6 {
        1 => vec![e("cps", Num::I(0), share)],
        4 => vec![e("cpa_cps", amount, share)],
        3 => vec![e(flat, amount, Num::I(0)), e("cps", Num::I(0), Num::I(10))],
        _ => vec![e(flat, amount, Num::I(0))],
    }
}

#[derive(Serialize)]
struct Country {
    country_code: &'static str,
    targeting_type: &'static str,
}

#[derive(Serialize)]
struct Payouts {
    total: u32,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Ruleset {
    countries: Vec<Country>,
}

#[derive(Serialize)]
struct Relationship {
    offer_affiliate_status: &'static str,
    payouts: Payouts,
    ruleset: Ruleset,
}

/// One offer on the wire, serialized directly (a `serde_json::Value` per row cost the bench's
/// in-process twin most of a core).
#[derive(Serialize)]
struct WireOffer<'a> {
    network_offer_id: u64,
    network_id: u32,
    name: &'a str,
    offer_status: &'static str,
    currency_id: &'static str,
    tracking_url: &'a str,
    preview_url: String,
    thumbnail_url: String,
    time_saved: i64,
    daily_conversion_cap: u32,
    monthly_conversion_cap: u32,
    global_conversion_cap: u32,
    relationship: Relationship,
}

fn wire(o: &SimOffer, all: bool) -> WireOffer<'_> {
    let mut countries: Vec<Country> = o
        .countries
        .iter()
        .map(|c| Country {
            country_code: c,
            targeting_type: "include",
        })
        .collect();
    if o.index.is_multiple_of(4) {
        countries.push(Country {
            country_code: "CN",
            targeting_type: "exclude",
        });
    }
    let awaiting = all && o.index % 7 == 2;
    let relationship = if awaiting {
        "require_approval"
    } else if o.index.is_multiple_of(2) {
        "public"
    } else {
        "approved"
    };
    WireOffer {
        network_offer_id: offer_id(o.index),
        network_id: 17,
        name: &o.name,
        offer_status: status(o),
        currency_id: if o.index % 9 == 4 { "EUR" } else { "USD" },
        tracking_url: if awaiting { "" } else { &o.tracking_url },
        preview_url: format!("https://adv.everflow.demo/o{}", o.index),
        thumbnail_url: format!("https://cdn.everflow.demo/{}.png", o.index),
        time_saved: o.created_at,
        daily_conversion_cap: if o.index % 4 == 1 { 50 } else { 0 },
        monthly_conversion_cap: 0,
        global_conversion_cap: if o.index % 4 == 1 { 1000 } else { 0 },
        relationship: Relationship {
            offer_affiliate_status: relationship,
            payouts: Payouts {
                total: 1,
                entries: entries(o),
            },
            ruleset: Ruleset { countries },
        },
    }
}

/// The offer as Everflow serves it on `/offersrunnable` (`all = false`) or `/alloffers`.
pub fn row(o: &SimOffer, all: bool) -> Value {
    serde_json::to_value(wire(o, all)).unwrap_or_default()
}

impl Wire for Everflow {
    fn credential(&self, headers: &HeaderMap, _: &QueryPairs) -> Option<String> {
        header_get(headers, "x-eflow-api-key")
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
        #[derive(Serialize)]
        struct Paging {
            page: u64,
            page_size: usize,
            total_count: usize,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            offers: Vec<WireOffer<'a>>,
            paging: Paging,
        }
        serde_json::to_vec(&Envelope {
            offers: offers.iter().map(|o| wire(o, self.all)).collect(),
            paging: Paging {
                page: ask.page,
                page_size: ask.per_page,
                total_count: total,
            },
        })
        .unwrap_or_default()
    }
}
