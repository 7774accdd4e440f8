//! What every platform twin shares: its state (catalogue, accepted keys, rate limits, faults,
//! counters) and the request flow (count → authenticate → rate limit → fault → page). Each
//! platform implements [`Wire`] for what differs: where the credential is, how errors look,
//! how pages are asked for and rendered.

use super::catalog::{Catalog, SimOffer};
use super::limits::{Limit, LimitAnswer};
use super::{take_fault, Fault, FaultRule};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TwinState {
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
    /// Serve at most this many rows per page whatever the request asks (a platform capping
    /// the page size, as Youmi's English docs cap it at 500).
    pub page_cap: Option<usize>,
    /// Catalogue indices of the last page served per listing, for the repeat fault.
    last_page: HashMap<String, Vec<usize>>,
}

impl TwinState {
    pub fn new(seed: u64, count: usize, api_key: &str) -> TwinState {
        TwinState {
            catalog: Catalog::new(seed, count),
            api_key: api_key.to_string(),
            extra_keys: Vec::new(),
            limits: HashMap::new(),
            faults: Vec::new(),
            delay: Duration::ZERO,
            requests: 0,
            page_cap: None,
            last_page: HashMap::new(),
        }
    }

    fn accepts(&self, key: &str) -> bool {
        key == self.api_key || self.extra_keys.iter().any(|k| k == key)
    }
}

pub type Shared = Arc<Mutex<TwinState>>;

/// The query string as pairs (repeated keys such as `status[]` kept).
pub type QueryPairs = Vec<(String, String)>;

/// A request header's value as text.
pub fn header_get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(String::from)
}

pub fn query_get<'a>(q: &'a QueryPairs, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Which page a request asks for.
pub struct PageAsk {
    /// 1-based page number.
    pub page: u64,
    pub per_page: usize,
    /// Statuses the listing shows (`None`: all).
    pub keep: Option<fn(&str) -> bool>,
    /// Identifies the listing (for "repeat the previous page").
    pub listing: String,
}

/// A platform's wire format.
pub trait Wire: Send + Sync + 'static {
    /// The credential the request carries (header, basic auth, query parameter).
    fn credential(&self, headers: &HeaderMap, query: &QueryPairs) -> Option<String>;
    /// The answer to a missing (`None`) or refused credential. Twins echo a refused key in the
    /// message, as some platforms do, so offersync's scrubbing is exercised.
    fn unauthorized(&self, given: Option<&str>) -> Response;
    /// The page asked for, or the platform's answer to a bad request.
    fn ask(&self, query: &QueryPairs) -> Result<PageAsk, Box<Response>>;
    /// A platform error with this HTTP status and message.
    fn error(&self, status: StatusCode, message: &str) -> Response;
    /// The platform's in-body "too many requests" answer, at `status` (`None` when the platform
    /// has none, and a plain 429 is sent instead).
    fn in_body_rate_limit(&self, _status: StatusCode) -> Option<Response> {
        None
    }
    /// A page of offers (`total` offers in the listing).
    /// The JSON body of a page of `offers` (served with HTTP 200).
    fn page(&self, offers: &[SimOffer], ask: &PageAsk, total: usize) -> Vec<u8>;
    /// The content type of [`Wire::page`]'s body (CAKE's .asmx answers in XML).
    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

fn with_retry_after(mut r: Response, retry_after: Option<String>) -> Response {
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

fn add_headers(r: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
}

fn rate_limited<W: Wire>(wire: &W, answer: LimitAnswer) -> Response {
    if let LimitAnswer::InBody { status } = answer {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        if let Some(r) = wire.in_body_rate_limit(status) {
            return r;
        }
    }
    let (status, retry_after) = answer.status_and_header();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    with_retry_after(wire.error(status, "Rate limit exceeded"), retry_after)
}

/// Answer one listing request: the flow every twin shares.
pub async fn handle<W: Wire>(
    state: Shared,
    wire: Arc<W>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let (response, delay) = {
        let mut s = state.lock().unwrap();
        let delay = s.delay;
        (answer(&mut s, wire.as_ref(), &headers, &query), delay)
    };
    let (response, extra) = response;
    let wait = delay + extra;
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    response
}

fn answer<W: Wire>(
    s: &mut TwinState,
    wire: &W,
    headers: &HeaderMap,
    query: &QueryPairs,
) -> (Response, Duration) {
    s.requests += 1;
    let key = match wire.credential(headers, query) {
        None => return (wire.unauthorized(None), Duration::ZERO),
        Some(k) if !s.accepts(&k) => return (wire.unauthorized(Some(&k)), Duration::ZERO),
        Some(k) => k,
    };
    let mut limit_headers = Vec::new();
    if let Some(limit) = s.limits.get_mut(&key) {
        let verdict = limit.check();
        limit_headers = verdict.headers;
        if verdict.refused {
            let mut r = rate_limited(wire, limit.answer);
            add_headers(&mut r, &limit_headers);
            return (r, Duration::ZERO);
        }
    }
    let mut ask = match wire.ask(query) {
        Ok(a) => a,
        Err(r) => return (*r, Duration::ZERO),
    };
    if let Some(cap) = s.page_cap {
        ask.per_page = ask.per_page.min(cap.max(1));
    }
    let mut extra_delay = Duration::ZERO;
    let mut duplicate_previous = false;
    let mut rewrite: Option<super::Rewrite> = None;
    let mut reset_mid_body = false;
    let mut offers: Option<Vec<SimOffer>> = None;
    let mut total_override = None;
    let mut extra_headers: Vec<(String, String)> = Vec::new();
    match take_fault(&mut s.faults, ask.page) {
        Some(Fault::RateLimited { retry_after }) => {
            let r = wire.error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            return (with_retry_after(r, retry_after), Duration::ZERO);
        }
        Some(Fault::InBodyRateLimited { status }) => {
            return (
                rate_limited(wire, LimitAnswer::InBody { status }),
                Duration::ZERO,
            );
        }
        Some(Fault::ServerError) => {
            return (
                wire.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
                Duration::ZERO,
            )
        }
        Some(Fault::Unauthorized) => return (wire.unauthorized(Some("(revoked)")), Duration::ZERO),
        Some(Fault::Malformed) => {
            return (
                (StatusCode::OK, "{\"offers\": [{\"id\": \"trunc").into_response(),
                Duration::ZERO,
            )
        }
        Some(Fault::HtmlError) => {
            return (
                (StatusCode::OK, "<html><body>Bad gateway</body></html>").into_response(),
                Duration::ZERO,
            )
        }
        Some(Fault::RepeatPrevious) => {
            let last = s.last_page.get(&ask.listing).cloned().unwrap_or_default();
            offers = Some(last.into_iter().map(|i| s.catalog.offer(i)).collect());
        }
        Some(Fault::Empty) => {
            offers = Some(Vec::new());
            total_override = Some(0);
        }
        Some(Fault::DuplicatePrevious) => duplicate_previous = true,
        Some(Fault::Delay(d)) => extra_delay = d,
        Some(Fault::Rewrite(f)) => rewrite = Some(f),
        Some(Fault::ResetMidBody) => reset_mid_body = true,
        Some(Fault::EmptyPage) => offers = Some(Vec::new()),
        Some(Fault::ExtraHeaders(h)) => extra_headers = h,
        // Faults of target twins: a listing has nothing to carry out first.
        Some(
            Fault::BadRequest
            | Fault::ServerErrorAfterAction
            | Fault::HtmlAfterAction
            | Fault::NoIdAfterAction
            | Fault::SlowAfterAction(_),
        )
        | None => {}
    }
    let (offers, total) = match offers {
        Some(o) => {
            let total = total_override.unwrap_or_else(|| s.catalog.len());
            (o, total)
        }
        None => {
            // When every live offer passes the filter, skip the filtering scan (fast path).
            let keep = ask.keep.filter(|k| !s.catalog.all_pass(*k));
            let (mut page, total) = s.catalog.page(ask.page, ask.per_page, keep);
            if duplicate_previous {
                // An offset feed that shifted: the previous page's last offer shows up again.
                let (prev, _) =
                    s.catalog
                        .page(ask.page.saturating_sub(1).max(1), ask.per_page, keep);
                if let Some(last) = prev.last().cloned() {
                    page.insert(0, last);
                }
            } else {
                s.last_page
                    .insert(ask.listing.clone(), page.iter().map(|o| o.index).collect());
            }
            (page, total)
        }
    };
    let mut body = wire.page(&offers, &ask, total);
    if let Some(rewrite) = &rewrite {
        (rewrite.0)(&mut body);
    }
    let mut r = if reset_mid_body {
        reset_after_half(body)
    } else {
        typed_body(StatusCode::OK, body, wire.content_type())
    };
    add_headers(&mut r, &limit_headers);
    for (name, value) in &extra_headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    (r, extra_delay)
}

/// `{"error": .., "code": .., "message": ..}` style JSON error.
pub fn json_error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Half of `body`, then a broken stream: the server aborts the connection mid-body.
fn reset_after_half(body: Vec<u8>) -> Response {
    let half = bytes::Bytes::from(body[..body.len() / 2].to_vec());
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox: connection reset mid-body",
        )),
    ];
    let mut r = axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// A JSON body with the right content type.
pub fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    typed_body(status, body, "application/json")
}

/// A body with the content type `content_type`.
pub fn typed_body(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    r
}
