//! Simulated HasOffers / TUNE affiliate API (APIS.md §8.1, §6): `GET /Apiv3/json` with
//! `api_key` in the query, `Target=Affiliate_Offer`, `Method=findAll|findMyApprovedOffers`,
//! `limit`, `page` (1-based; without `limit` everything in one answer) and `contain[]`;
//! `{response: {status: 1, httpStatus: 200, data: {page, current, count, pageCount, data}}}` with
//! `data.data` an object keyed by offer id (`[]` on odd pages and `false` on even ones when
//! empty), every number a string, `currency` null for some offers (the network's default),
//! `cpa_percentage` / `cpa_both` payouts, offers requiring approval (findAll only) with an empty
//! `TrackingLink`; errors in the body at HTTP 200 (`status: -1`, `errors[{err_msg,
//! publicMessage}]`, `errorMessage`), the rate limit as "API usage exceeded rate limit" in the
//! body. The `strict` network rejects `contain[]=TrackingLink` with an in-body error.

use super::catalog::SimOffer;
use super::twin::{json_body, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

pub struct HasOffers {
    /// Reject `contain[]=TrackingLink` (a network that does not allow it).
    pub strict: bool,
}

/// The offer id HasOffers serves for catalogue offer `index`.
pub fn offer_id(index: usize) -> String {
    (5000 + index).to_string()
}

const RATE_LIMIT: &str = "API usage exceeded rate limit";

fn failure(status: StatusCode, message: &str) -> Response {
    let body = json!({"response": {
        "status": -1, "httpStatus": status.as_u16(), "data": "",
        "errors": [{"err_msg": message, "publicMessage": message}],
        "errorMessage": message,
    }});
    json_body(status, serde_json::to_vec(&body).unwrap_or_default())
}

fn status(o: &SimOffer) -> &'static str {
    match o.status {
        "paused" => "paused",
        _ if o.index % 11 == 5 => "pending",
        _ => "active",
    }
}

/// `(payout_type, default_payout, percent_payout)`.
fn payout(o: &SimOffer) -> (&'static str, String, String) {
    let amount = format!("{}.{:02}", o.payout_cents / 100, o.payout_cents % 100);
    let share = format!("{}.00", 5 + o.payout_cents % 40);
    match o.index % 6 {
        1 => ("cpa_percentage", "0.00".into(), share),
        4 => ("cpa_both", amount, share),
        _ if o.payout_type == "cpc" => ("cpc", amount, "0.00".into()),
        _ => ("cpa_flat", amount, "0.00".into()),
    }
}

/// Whether the offer requires approval (listed by findAll only, without a tracking link).
pub fn requires_approval(o: &SimOffer) -> bool {
    o.index % 7 == 2
}

/// The row of `data.data` for `o`, with the models in `contain`; `approved_only` is
/// `findMyApprovedOffers` (where even offers requiring approval carry their link).
pub fn row(o: &SimOffer, contain: &[&str], approved_only: bool) -> Value {
    let (payout_type, default_payout, percent_payout) = payout(o);
    let currency = match o.index % 9 {
        2 | 7 => Value::Null,
        4 => json!("EUR"),
        _ => json!("USD"),
    };
    let mut v = json!({"Offer": {
        "id": offer_id(o.index),
        "name": o.name,
        "description": format!("{} offer", o.category),
        "preview_url": format!("https://adv.hasoffers.demo/o{}", o.index),
        "default_payout": default_payout,
        "percent_payout": percent_payout,
        "payout_type": payout_type,
        "currency": currency,
        "status": status(o),
        "expiration_date": if o.index % 5 == 1 { json!("2027-06-30") } else { Value::Null },
        "require_approval": if requires_approval(o) { "1" } else { "0" },
    }});
    for model in contain {
        v[*model] = match *model {
            "Country" => {
                let m: Map<String, Value> = o
                    .countries
                    .iter()
                    .map(|c| (c.to_string(), json!({"id": "0", "code": c, "name": c})))
                    .collect();
                Value::Object(m)
            }
            "OfferCategory" => json!({"3": {"id": "3", "name": o.category}}),
            "TrackingLink" if requires_approval(o) && !approved_only => json!([]),
            "TrackingLink" => json!({"click_url": o.tracking_url}),
            _ => json!([]),
        };
    }
    v
}

impl Wire for HasOffers {
    fn credential(&self, _: &HeaderMap, q: &QueryPairs) -> Option<String> {
        query_get(q, "api_key").map(String::from)
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        match given {
            None => failure(StatusCode::OK, "Authentication failed"),
            Some(k) => failure(StatusCode::OK, &format!("Invalid API key {k}")),
        }
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let method = query_get(q, "Method").unwrap_or_default();
        if query_get(q, "Target") != Some("Affiliate_Offer")
            || !matches!(method, "findAll" | "findMyApprovedOffers")
        {
            return Err(Box::new(failure(
                StatusCode::OK,
                "Invalid Target or Method",
            )));
        }
        let contain: Vec<&str> = q
            .iter()
            .filter(|(k, _)| k == "contain[]")
            .map(|(_, v)| v.as_str())
            .collect();
        if self.strict && contain.contains(&"TrackingLink") {
            return Err(Box::new(failure(
                StatusCode::OK,
                "Contain TrackingLink is not allowed for this network",
            )));
        }
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let per_page = query_get(q, "limit")
            .and_then(|p| p.parse().ok())
            .filter(|l| *l >= 1)
            .unwrap_or(usize::MAX);
        Ok(PageAsk {
            page,
            per_page,
            keep: None,
            // The listing remembers which models it carries (for the repeat fault).
            listing: format!("{method}{}", contain.join(",")),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        failure(status, message)
    }

    fn in_body_rate_limit(&self, status: StatusCode) -> Option<Response> {
        Some(failure(status, RATE_LIMIT))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        let contain: Vec<&str> = ["Country", "OfferCategory", "TrackingLink"]
            .into_iter()
            .filter(|m| ask.listing.contains(m))
            .collect();
        let rows = if offers.is_empty() {
            if ask.page % 2 == 1 {
                json!([])
            } else {
                json!(false)
            }
        } else {
            let m: Map<String, Value> = offers
                .iter()
                .map(|o| {
                    let approved_only = ask.listing.starts_with("findMyApprovedOffers");
                    (offer_id(o.index), row(o, &contain, approved_only))
                })
                .collect();
            Value::Object(m)
        };
        let page_count = total.div_ceil(ask.per_page.clamp(1, total.max(1)));
        let body = json!({"response": {
            "status": 1, "httpStatus": 200,
            "data": {
                "page": ask.page.to_string(), "current": offers.len().to_string(),
                "count": total.to_string(), "pageCount": page_count.to_string(),
                "data": rows,
            },
            "errors": [], "errorMessage": null,
        }});
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
