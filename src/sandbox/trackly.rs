//! Simulated Trackly SMS API v2 (APIS.md §5): `GET /v2/offers` with `X-Api-Key`, `page`,
//! `per_page` (clamped to 100), `status` (archived hidden unless asked for), the
//! `{offers, pagination}` envelope, `{error, code, message}` errors, timestamps with and without
//! `Z`, and switchable faults.

use super::catalog::{Catalog, SimOffer};
use super::limits::Limit;
use super::{Fault, FaultRule};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TracklyState {
    pub catalog: Catalog,
    pub api_key: String,
    /// More accepted keys (other accounts on the same platform).
    pub extra_keys: Vec<String>,
    /// Rate limits per API key.
    pub limits: HashMap<String, Limit>,
    pub faults: Vec<FaultRule>,
    /// Added before every answer (slow platform).
    pub delay: Duration,
    /// Requests received, all answers included.
    pub requests: u64,
    /// Catalogue indices of the last page served per status filter, for the repeat fault.
    last_page: HashMap<String, Vec<usize>>,
}

impl TracklyState {
    pub fn new(seed: u64, count: usize, api_key: &str) -> TracklyState {
        TracklyState {
            catalog: Catalog::new(seed, count),
            api_key: api_key.to_string(),
            extra_keys: Vec::new(),
            limits: HashMap::new(),
            faults: Vec::new(),
            delay: Duration::ZERO,
            requests: 0,
            last_page: HashMap::new(),
        }
    }
}

pub type Shared = Arc<Mutex<TracklyState>>;

#[derive(Serialize)]
struct WireMeta<'a> {
    countries: String,
    category: &'a str,
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

fn timestamp(unix: i64, with_z: bool) -> String {
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
            countries: o.countries.join(","),
            category: o.category,
        },
        // Trackly's docs show both forms; serve both.
        created_at: timestamp(o.created_at, o.index.is_multiple_of(2)),
        updated_at: timestamp(o.created_at + 3600, !o.index.is_multiple_of(2)),
    }
}

fn error(status: StatusCode, error: &str, code: Option<&str>, message: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "error": error });
    if let Some(c) = code {
        body["code"] = c.into();
    }
    if let Some(m) = message {
        body["message"] = m.into();
    }
    (status, axum::Json(body)).into_response()
}

enum Plan {
    Respond(Response),
    Page {
        offers: Vec<SimOffer>,
        extra_first: Option<SimOffer>,
        page: u64,
        per_page: usize,
        total: usize,
        headers: Vec<(&'static str, String)>,
    },
}

pub async fn list_offers(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (plan, delay) = plan(&state, &headers, &q);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match plan {
        Plan::Respond(r) => r,
        Plan::Page {
            offers,
            extra_first,
            page,
            per_page,
            total,
            headers,
        } => {
            let rows: Vec<WireOffer<'_>> =
                extra_first.iter().chain(offers.iter()).map(wire).collect();
            let mut r = envelope(&rows, page, per_page, total);
            add_headers(&mut r, &headers);
            r
        }
    }
}

fn add_headers(r: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
}

fn envelope<T: Serialize>(rows: &[T], page: u64, per_page: usize, total: usize) -> Response {
    #[derive(Serialize)]
    struct Pagination {
        page: u64,
        per_page: usize,
        total: usize,
        total_pages: usize,
    }
    #[derive(Serialize)]
    struct Env<'a, T> {
        offers: &'a [T],
        pagination: Pagination,
    }
    let body = serde_json::to_vec(&Env {
        offers: rows,
        pagination: Pagination {
            page,
            per_page,
            total,
            total_pages: total.div_ceil(per_page),
        },
    })
    .unwrap_or_default();
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn plan(state: &Shared, headers: &HeaderMap, q: &HashMap<String, String>) -> (Plan, Duration) {
    let mut s = state.lock().unwrap();
    s.requests += 1;
    let delay = s.delay;
    let respond = |r: Response| (Plan::Respond(r), delay);
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        None => {
            return respond(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("missing_api_key"),
                Some("Provide your API key in the X-Api-Key header"),
            ))
        }
        // Like many platforms, echo the key that was refused (offersync must scrub it).
        Some(k) if k != s.api_key && !s.extra_keys.iter().any(|e| e == k) => {
            let msg = format!("The API key {k} is invalid");
            return respond(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("invalid_api_key"),
                Some(&msg),
            ));
        }
        Some(_) => {}
    }
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut limit_headers = Vec::new();
    if let Some(limit) = s.limits.get_mut(&key) {
        let verdict = limit.check();
        limit_headers = verdict.headers;
        if let Some((status, retry_after)) = verdict.refuse {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let mut r = error(status, "Rate limit exceeded", Some("rate_limited"), None);
            if let Some(ra) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert("retry-after", ra);
            }
            add_headers(&mut r, &limit_headers);
            return respond(r);
        }
    }
    let page: u64 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let status = q.get("status").cloned();
    let keep: Option<fn(&str) -> bool> = match status.as_deref() {
        None => Some(|st: &str| st != "archived"),
        Some("archived") => Some(|st: &str| st == "archived"),
        Some("active") => Some(|st: &str| st == "active"),
        Some("paused") => Some(|st: &str| st == "paused"),
        Some(other) => {
            let msg = format!("status must be one of active, paused, archived (got {other})");
            return respond(error(
                StatusCode::BAD_REQUEST,
                "Invalid status",
                Some("invalid_status"),
                Some(&msg),
            ));
        }
    };
    let fault = super::take_fault(&mut s.faults, page);
    let key = status.clone().unwrap_or_default();
    let mut extra_delay = Duration::ZERO;
    let mut duplicate_previous = false;
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded",
                Some("rate_limited"),
                None,
            );
            if let Some(ra) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert("retry-after", ra);
            }
            return respond(r);
        }
        Some(Fault::ServerError) => {
            return respond(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                Some("server_error"),
                None,
            ))
        }
        Some(Fault::Unauthorized) => {
            return respond(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("invalid_api_key"),
                Some("The API key provided is invalid"),
            ))
        }
        Some(Fault::Malformed) => {
            return respond((StatusCode::OK, "{\"offers\": [{\"id\": \"trunc").into_response())
        }
        Some(Fault::HtmlError) => {
            return respond(
                (StatusCode::OK, "<html><body>Bad gateway</body></html>").into_response(),
            )
        }
        Some(Fault::RepeatPrevious) => {
            let last = s.last_page.get(&key).cloned().unwrap_or_default();
            let offers = last.into_iter().map(|i| s.catalog.offer(i)).collect();
            let total = s.catalog.len();
            return (
                Plan::Page {
                    offers,
                    extra_first: None,
                    page,
                    per_page,
                    total,
                    headers: limit_headers.clone(),
                },
                delay,
            );
        }
        Some(Fault::Empty) => {
            return (
                Plan::Page {
                    offers: Vec::new(),
                    extra_first: None,
                    page,
                    per_page,
                    total: 0,
                    headers: limit_headers.clone(),
                },
                delay,
            );
        }
        Some(Fault::DuplicatePrevious) => duplicate_previous = true,
        Some(Fault::Delay(d)) => extra_delay = d,
        None => {}
    }
    // Without a status filter and with no archived offer, skip the filtering scan (fast path).
    let keep_ref: Option<&dyn Fn(&str) -> bool> = match keep.as_ref() {
        Some(_) if status.is_none() && !has_archived(&mut s) => None,
        Some(k) => Some(k),
        None => None,
    };
    let (offers, total) = s.catalog.page(page, per_page, keep_ref);
    let extra_first = if duplicate_previous {
        // An offset feed that shifted: the previous page's last offer shows up again.
        let prev_page = page.saturating_sub(1).max(1);
        let (prev, _) = s.catalog.page(prev_page, per_page, keep_ref);
        prev.last().cloned()
    } else {
        None
    };
    s.last_page
        .insert(key, offers.iter().map(|o| o.index).collect());
    (
        Plan::Page {
            offers,
            extra_first,
            page,
            per_page,
            total,
            headers: limit_headers.clone(),
        },
        delay + extra_delay,
    )
}

/// Whether any offer is archived (so the default listing must filter).
fn has_archived(s: &mut TracklyState) -> bool {
    s.catalog.has_status("archived")
}
