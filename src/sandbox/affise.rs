//! Simulated Affise (APIS.md §2): `API-Key` header (or `api-key` query); admin
//! `GET /3.0/offers` (`status[]` filter, default active only) and partner
//! `GET /3.0/partner/offers`; `page` + `limit`; `{status: 1, offers, pagination: {page,
//! per_page, total_count, next_page}}`; `payments[]` where `revenue` is the affiliate payout and
//! `total` the advertiser price, lower-case countries and currencies; `"YYYY-MM-DD HH:MM:SS"`
//! dates; errors `{status: 2, error}` with HTTP 4xx.

use super::catalog::SimOffer;
use super::twin::{header_get, json_error, query_get, PageAsk, QueryPairs, Wire};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

pub struct Affise {
    pub partner: bool,
}

/// Affise statuses: the catalogue's "paused" is Affise's "stopped".
fn status(o: &SimOffer) -> &'static str {
    match o.status {
        "paused" => "stopped",
        _ => "active",
    }
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The offer as Affise serves it (admin shape; partners get `link` instead of `url`).
pub fn row(o: &SimOffer, partner: bool) -> Value {
    let lower: Vec<String> = o.countries.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut payments = vec![json!({
        "countries": lower, "cities": [], "devices": [], "os": [], "goal": "1",
        "revenue": o.payout_cents as f64 / 100.0, "total": o.payout_cents as f64 * 1.5 / 100.0,
        "currency": "usd", "title": "Install", "type": "fixed", "country_exclude": false,
        "with_regions": false, "url": null,
    })];
    if o.index.is_multiple_of(3) {
        payments.push(json!({
            "countries": ["us"], "cities": [], "devices": [], "os": [], "goal": "2",
            "revenue": 7.5, "total": 10, "currency": "USD", "title": "Purchase", "type": "fixed",
            "country_exclude": false, "with_regions": false, "url": null,
        }));
    }
    let click = format!("https://track.affise.demo/click?offer_id={}", 300 + o.index);
    let mut v = json!({
        "id": 300 + o.index,
        "offer_id": format!("5bdffa{:018x}", o.index),
        "title": o.name,
        "preview_url": format!("https://adv.demo/o{}", o.index),
        "description": format!("{} offer", o.category),
        "logo": format!("https://cdn.affise.demo/{}.png", o.index),
        "stop_at": if o.index % 5 == 1 { date(o.created_at + 90 * 86_400) } else { String::new() },
        "categories": [o.category],
        "full_categories": [{"id": "5368afb23b7d9b4d5d505342", "title": o.category}],
        "payments": payments,
        "required_approval": false,
        "is_cpi": o.payout_type == "cpa",
        "caps": [],
        "targeting": [{"country": {"allow": [], "deny": []}}],
    });
    if partner {
        v["link"] = Value::String(click.clone());
        v["links"] = json!([{"id": null, "title": null, "hash": null, "url": click, "postbacks": [], "created": null}]);
    } else {
        v["advertiser"] = Value::String(format!(
            "5bc9d7c16d73e41c{:08x}",
            o.advertiser_id.len() + o.index % 40
        ));
        v["url"] = Value::String(click);
        v["url_preview"] = Value::String(format!("https://adv.demo/o{}", o.index));
        v["status"] = Value::String(status(o).into());
        v["bundle_id"] = Value::String(format!("com.a.o{}", o.index));
        v["start_at"] = Value::String(date(o.created_at));
        v["created_at"] = Value::String(date(o.created_at - 86_400));
        v["updated_at"] = Value::String(date(o.created_at));
    }
    v
}

impl Wire for Affise {
    fn credential(&self, headers: &HeaderMap, q: &QueryPairs) -> Option<String> {
        header_get(headers, "api-key").or_else(|| query_get(q, "api-key").map(String::from))
    }

    fn unauthorized(&self, given: Option<&str>) -> Response {
        let (status, error) = match given {
            None => (
                StatusCode::UNAUTHORIZED,
                "API-Key header is missing".to_string(),
            ),
            Some(k) => (StatusCode::FORBIDDEN, format!("Access denied for key {k}")),
        };
        json_error(status, json!({"status": 2, "error": error}))
    }

    fn ask(&self, q: &QueryPairs) -> Result<PageAsk, Box<Response>> {
        let page = query_get(q, "page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let limit = query_get(q, "limit")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100usize)
            .clamp(1, 500);
        let statuses: Vec<&str> = q
            .iter()
            .filter(|(k, _)| k == "status[]")
            .map(|(_, v)| v.as_str())
            .collect();
        // Admin default: active offers only. Affise statuses map onto the catalogue's.
        let keep: Option<fn(&str) -> bool> = if self.partner {
            Some(|s| s == "active")
        } else {
            match (statuses.contains(&"active"), statuses.contains(&"stopped")) {
                (_, _) if statuses.is_empty() => Some(|s| s == "active"),
                (true, true) => None,
                (true, false) => Some(|s| s == "active"),
                (false, true) => Some(|s| s == "paused"),
                (false, false) => Some(|_| false),
            }
        };
        Ok(PageAsk {
            page,
            per_page: limit,
            keep,
            listing: format!("{}{:?}", self.partner, statuses),
        })
    }

    fn error(&self, status: StatusCode, message: &str) -> Response {
        json_error(status, json!({"status": 2, "error": message}))
    }

    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8> {
        let rows: Vec<Value> = offers.iter().map(|o| row(o, self.partner)).collect();
        let last = (ask.page as usize) * ask.per_page >= total;
        let mut pagination =
            json!({"per_page": ask.per_page, "total_count": total, "page": ask.page});
        if !last {
            pagination["next_page"] = json!(ask.page + 1);
        }
        serde_json::to_vec(&json!({"status": 1, "offers": rows, "pagination": pagination}))
            .unwrap_or_default()
    }
}
