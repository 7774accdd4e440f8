//! Simulated Trackly SMS API v2 (APIS.md §5): `GET /v2/offers` with `X-Api-Key`, `page`,
//! `per_page` (clamped to 100), `status` (archived hidden unless asked for), the
//! `{offers, pagination}` envelope, `{error, code, message}` errors, and timestamps with and
//! without `Z`.

use super::catalog::SimOffer;
use super::twin::{header_get, json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

pub struct Trackly;

/// `metadata` as the seed's example shows it: `{"vertical": "health", "geo": "US"}` (string
/// values; several countries comma-separated).
#[derive(Serialize)]
struct WireMeta<'a> {
    vertical: &'a str,
    geo: String,
}

#[derive(Serialize)]
struct WireOffer<'a> {
    id: &'a str,
    name: &'a str,
    tracking_url: &'a str,
    external_platform: Option<&'static str>,
    external_id: Option<String>,
    advertiser_id: &'a str,
    payout: f64,
    payout_type: &'a str,
    filter_bots: bool,
    status: &'a str,
    metadata: WireMeta<'a>,
    created_at: String,
    updated_at: String,
}

/// `YYYY-MM-DDTHH:MM:SS`, with or without the `Z` (Trackly's docs show both).
pub fn timestamp(unix: i64, with_z: bool) -> String {
    let t = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
    let s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if with_z {
        s + "Z"
    } else {
        s
    }
}

/// The offer exactly as the simulated Trackly serves it.
pub fn wire_json(o: &SimOffer) -> serde_json::Value {
    serde_json::to_value(wire(o)).unwrap_or_default()
}

fn wire(o: &SimOffer) -> WireOffer<'_> {
    WireOffer {
        id: &o.id,
        name: &o.name,
        tracking_url: &o.tracking_url,
        external_platform: if o.index.is_multiple_of(3) {
            Some("everflow")
        } else {
            None
        },
        external_id: o.index.is_multiple_of(3).then(|| format!("ef-{}", o.index)),
        advertiser_id: &o.advertiser_id,
        payout: o.payout_cents as f64 / 100.0,
        payout_type: o.payout_type,
        filter_bots: o.index.is_multiple_of(2),
        status: o.status,
        metadata: WireMeta {
            vertical: o.category,
            geo: o.countries.join(","),
        },
        created_at: timestamp(o.created_at, o.index.is_multiple_of(2)),
        updated_at: timestamp(o.created_at + 3600, !o.index.is_multiple_of(2)),
    }
}

impl Wire for Trackly {
    fn credential(&self, headers: &HeaderMap, _: &QueryPairs) -> Option<String> {
        header_get(headers, "x-api-key")
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let (code, message) = match given {
            None => (
                "missing_api_key",
                "Provide your API key in the X-Api-Key header".to_string(),
            ),
            Some(k) => ("invalid_api_key", format!("The API key {k} is invalid")),
        };
        json_error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized", "code": code, "message": message}),
        )
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let per_page = query_get(q, "per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(50usize)
            .clamp(1, 100);
        let status = query_get(q, "status");
        let keep: fn(&str) -> bool = match status {
            None => |st| st != "archived",
            Some("archived") => |st| st == "archived",
            Some("active") => |st| st == "active",
            Some("paused") => |st| st == "paused",
            Some(other) => {
                let msg = format!("status must be one of active, paused, archived (got {other})");
                return Err(Box::new(json_error(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "Invalid status", "code": "invalid_status", "message": msg}),
                )));
            }
        };
        Ok(PageAsk {
            page,
            per_page,
            keep: Some(keep),
            listing: status.unwrap_or_default().to_string(),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        let code = match status.as_u16() {
            429 => "rate_limited",
            500..=599 => "server_error",
            _ => "bad_request",
        };
        json_error(status, json!({"error": message, "code": code}))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        #[derive(Serialize)]
        struct Pagination {
            page: u64,
            per_page: usize,
            total: usize,
            total_pages: usize,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            offers: Vec<WireOffer<'a>>,
            pagination: Pagination,
        }
        serde_json::to_vec(&Envelope {
            offers: offers.iter().map(wire).collect(),
            pagination: Pagination {
                page: ask.page,
                per_page: ask.per_page,
                total,
                total_pages: total.div_ceil(ask.per_page),
            },
        })
        .unwrap_or_default()
    }
}
