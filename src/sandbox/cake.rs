//! Simulated CAKE affiliate API (APIS.md §8.3): `GET /affiliates/api/4/offers.asmx/OfferFeed`
//! with `api_key` and `affiliate_id` in the query, `start_at_row` (1-based) and `row_limit`
//! (0: everything); **XML** as .asmx answers it: a declaration, namespaces on the root,
//! `<success>`, `<row_count>` (the total), `<offers><offer>..`; payouts with currency symbols
//! (`$2.50`, `€2,50`, `2.50 USD`, `£2.50`), a nil `campaign_id` (`xsi:nil="true"`) for offers not
//! running for the affiliate, statuses Public / Active / Apply To Run / Inactive, `&amp;` in
//! names; errors as `<success>false</success><message>..</message>` (a refused key at HTTP 200,
//! a missing key HTTP 401 with a plain-text body).

use super::catalog::SimOffer;
use super::twin::{query_get, typed_body, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub struct Cake;

const XML: &str = "text/xml; charset=utf-8";

/// The offer id CAKE serves for catalogue offer `index`.
pub fn offer_id(index: usize) -> String {
    (8000 + index).to_string()
}

/// The campaign running the offer for the affiliate; `None` (nil) when it does not run.
pub fn campaign_id(o: &SimOffer) -> Option<u64> {
    (o.index % 7 != 2).then_some(12_000 + o.index as u64)
}

pub fn status_name(o: &SimOffer) -> &'static str {
    match o.status {
        "paused" => "Inactive",
        _ if o.index % 11 == 5 => "Apply To Run",
        _ if o.index.is_multiple_of(2) => "Public",
        _ => "Active",
    }
}

/// The payout text served and the ISO currency it means.
pub fn payout(o: &SimOffer) -> (String, &'static str) {
    let (units, cents) = (o.payout_cents / 100, o.payout_cents % 100);
    match o.index % 4 {
        0 => (format!("${units}.{cents:02}"), "USD"),
        1 => (format!("€{units},{cents:02}"), "EUR"),
        2 => (format!("{units}.{cents:02} USD"), "USD"),
        _ => (format!("£{units}.{cents:02}"), "GBP"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The name served (with an `&` now and then, escaped on the wire).
pub fn name(o: &SimOffer) -> String {
    if o.index % 5 == 3 {
        format!("{} & Co", o.name)
    } else {
        o.name.clone()
    }
}

/// One `<offer>` element.
pub fn offer_xml(o: &SimOffer) -> String {
    let campaign = match campaign_id(o) {
        Some(c) => format!("<campaign_id>{c}</campaign_id>"),
        None => "<campaign_id xsi:nil=\"true\" />".to_string(),
    };
    let countries: String = o
        .countries
        .iter()
        .map(|c| format!("<country><country_code>{c}</country_code><country_name>{c}</country_name></country>"))
        .collect();
    let status_id = match status_name(o) {
        "Inactive" => 2,
        "Apply To Run" => 3,
        _ => 1,
    };
    format!(
        "<offer><offer_id>{id}</offer_id><offer_contract_id>{contract}</offer_contract_id>{campaign}\
         <offer_name>{name}</offer_name><vertical_name>{vertical}</vertical_name>\
         <offer_status><status_id>{status_id}</status_id><status_name>{status}</status_name></offer_status>\
         <payout>{payout}</payout><price_format>{format}</price_format>\
         <allowed_countries>{countries}</allowed_countries>\
         <expiration_date>2027-0{month}-01T00:00:00</expiration_date><hidden>{hidden}</hidden>\
         <preview_link>https://adv.cake.demo/o{index}?a=1&amp;b=2</preview_link></offer>",
        id = offer_id(o.index),
        contract = 9000 + o.index,
        name = escape(&name(o)),
        vertical = escape(o.category),
        status = status_name(o),
        payout = escape(&payout(o).0),
        format = if o.payout_type == "cpc" { "CPC" } else { "CPA" },
        month = 1 + o.index % 9,
        hidden = o.index % 10 == 9,
        index = o.index,
    )
}

fn feed(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<offer_feed_response \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns=\"http://cakemarketing.com/affiliates/api/4/\">{inner}</offer_feed_response>"
    )
}

fn failure(status: StatusCode, message: &str) -> Response {
    let body = feed(&format!(
        "<success>false</success><message>{}</message><row_count>0</row_count>",
        escape(message)
    ));
    typed_body(status, body.into_bytes(), XML)
}

impl Wire for Cake {
    fn credential(&self, _: &HeaderMap, q: &QueryPairs) -> Option<String> {
        query_get(q, "api_key").map(String::from)
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        match given {
            None => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
            Some(k) => failure(StatusCode::OK, &format!("Invalid API Key {k}")),
        }
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        if query_get(q, "affiliate_id").is_none_or(str::is_empty) {
            return Err(Box::new(failure(
                StatusCode::OK,
                "affiliate_id is required",
            )));
        }
        let start: usize = query_get(q, "start_at_row")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let limit: usize = query_get(q, "row_limit")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let (page, per_page) = match limit {
            0 => (1, usize::MAX),
            n => ((start - 1) / n + 1, n),
        };
        Ok(PageAsk {
            page: page as u64,
            per_page,
            keep: None,
            listing: String::new(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        failure(status, message)
    }

    fn page(&self, offers: &[SimOffer], _ask: &PageAsk, total: usize) -> Vec<u8> {
        let rows: String = offers.iter().map(offer_xml).collect();
        feed(&format!(
            "<success>true</success><row_count>{total}</row_count><offers>{rows}</offers>"
        ))
        .into_bytes()
    }

    fn content_type(&self) -> &'static str {
        XML
    }
}
