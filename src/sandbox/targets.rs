//! Simulated target platforms: Offerit (APIS.md §3) and Affise's admin offer API (§2.5–2.8).
//! They validate requests like the real ones (headers, methods, required fields, bracket
//! arrays), keep the offers they receive (for tests to inspect), and can fail on demand.

use super::{take_fault, Fault, FaultRule};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An offer as a target twin holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldOffer {
    /// Latest value of every parameter received (lists comma-joined).
    pub fields: BTreeMap<String, String>,
    pub status: String,
    /// The operations received for it, in order (`add_offer`, `edit_offer`, ...).
    pub history: Vec<String>,
}

impl HeldOffer {
    /// Active and visible to affiliates (Offerit `hidden=1` offers are not).
    pub fn is_live(&self) -> bool {
        self.status == "active" && self.fields.get("hidden").map(String::as_str) != Some("1")
    }
}

pub struct TargetTwin {
    pub api_key: String,
    /// Offerit's `api-username`.
    pub username: String,
    pub offers: BTreeMap<u64, HeldOffer>,
    next_id: u64,
    /// Every call received: `METHOD action`.
    pub calls: Vec<String>,
    pub faults: Vec<FaultRule>,
    pub delay: Duration,
}

impl TargetTwin {
    pub fn new(api_key: &str, username: &str) -> TargetTwin {
        TargetTwin {
            api_key: api_key.into(),
            username: username.into(),
            offers: BTreeMap::new(),
            next_id: 400,
            calls: Vec::new(),
            faults: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Offers affiliates can see and run: active, and not hidden (Offerit's `hidden=1`).
    pub fn live(&self) -> Vec<(u64, &HeldOffer)> {
        self.offers
            .iter()
            .filter(|(_, o)| o.is_live())
            .map(|(id, o)| (*id, o))
            .collect()
    }

    /// Offers whose field `name` equals `value`.
    pub fn find(&self, name: &str, value: &str) -> Vec<(u64, &HeldOffer)> {
        self.offers
            .iter()
            .filter(|(_, o)| o.fields.get(name).map(String::as_str) == Some(value))
            .map(|(id, o)| (*id, o))
            .collect()
    }
}

pub type SharedTarget = Arc<Mutex<TargetTwin>>;

/// Query and form parameters together; repeated keys (`categories[]`) are comma-joined.
fn params(query: &str, body: &[u8]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(body)) {
        // PHP (which both platforms run on) ignores what follows a key's last `]`, such as the
        // stray space in seed 001's `payments[0][currency] =USD`.
        let k = k.trim_end().to_string();
        out.entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    out
}

/// What a fault does to one call: answer instead, answer normally after a delay, or carry the
/// call out and then lose its answer (a 500, HTML, a success without id, a late answer).
enum Injected {
    Respond(Response),
    Delay(Duration),
    ActThen(Response),
    ActThenStripId,
}

fn fault(t: &mut TargetTwin) -> Option<Injected> {
    match take_fault(&mut t.faults, 0)? {
        Fault::RateLimited { retry_after } => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
            if let Some(v) = retry_after.and_then(|v| v.parse().ok()) {
                r.headers_mut().insert("retry-after", v);
            }
            Some(Injected::Respond(r))
        }
        Fault::ServerError => Some(Injected::Respond(
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
        )),
        Fault::Delay(d) | Fault::SlowAfterAction(d) => Some(Injected::Delay(d)),
        Fault::ServerErrorAfterAction => Some(Injected::ActThen(
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
        )),
        Fault::HtmlAfterAction => Some(Injected::ActThen(
            (
                StatusCode::OK,
                "<html><body>502 Bad Gateway (nginx)</body></html>",
            )
                .into_response(),
        )),
        Fault::NoIdAfterAction => Some(Injected::ActThenStripId),
        Fault::BadRequest => Some(Injected::Respond(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"status": 2, "result": "error", "error": "Bad Request: payments[0][revenue] is invalid"})),
            )
                .into_response(),
        )),
        _ => None,
    }
}

/// Apply the next fault, if any, then `act`; returns the answer and how long to wait first.
fn answer(
    t: &mut TargetTwin,
    act: impl FnOnce(&mut TargetTwin) -> Response,
) -> (Response, Duration) {
    let delay = t.delay;
    match fault(t) {
        Some(Injected::Respond(r)) => (r, delay),
        Some(Injected::Delay(d)) => (act(t), delay + d),
        Some(Injected::ActThen(r)) => {
            let _ = act(t);
            (r, delay)
        }
        Some(Injected::ActThenStripId) => {
            let _ = act(t);
            (
                (
                    StatusCode::OK,
                    axum::Json(json!({"status": 1, "result": "Success", "message": {}})),
                )
                    .into_response(),
                delay,
            )
        }
        None => (act(t), delay),
    }
}

fn offerit_reply(status: StatusCode, result: &str, message: Value) -> Response {
    (
        status,
        axum::Json(json!({"result": result, "message": message})),
    )
        .into_response()
}

/// `/offerit/api/offer/{action}`.
pub async fn offerit(
    state: SharedTarget,
    action: String,
    method: Method,
    headers: HeaderMap,
    query: String,
    body: Bytes,
) -> Response {
    let (resp, delay) = {
        let mut t = state.lock().unwrap();
        t.calls.push(format!("{method} {action}"));
        let key = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let user = headers
            .get("api-username")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if key != t.api_key || user != t.username {
            let msg = format!("Invalid api-key or api-username ({key})");
            (
                offerit_reply(StatusCode::BAD_REQUEST, "error", json!(msg)),
                Duration::ZERO,
            )
        } else {
            answer(&mut t, |t| {
                offerit_action(t, &action, &method, &params(&query, &body))
            })
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

fn offerit_action(
    t: &mut TargetTwin,
    action: &str,
    method: &Method,
    p: &BTreeMap<String, String>,
) -> Response {
    let expected = match action {
        "add_offer" => Method::POST,
        "edit_offer" | "pause_offer" | "activate_offer" | "set_offer_countries" => Method::PATCH,
        _ => return offerit_reply(StatusCode::NOT_FOUND, "error", json!("Unknown endpoint")),
    };
    if *method != expected {
        return offerit_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "error",
            json!("Method not allowed"),
        );
    }
    if action == "add_offer" {
        for required in ["name", "url"] {
            if p.get(required).is_none_or(|v| v.is_empty()) {
                return offerit_reply(
                    StatusCode::BAD_REQUEST,
                    "error",
                    json!(format!("{required} is required")),
                );
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        t.offers.insert(
            id,
            HeldOffer {
                fields: p.clone(),
                status: "active".into(),
                history: vec!["add_offer".into()],
            },
        );
        return offerit_reply(
            StatusCode::OK,
            "Success",
            json!({"landing_pageid": (id + 32).to_string(), "offerid": id.to_string()}),
        );
    }
    let Some(offer) = p
        .get("offerid")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| t.offers.get_mut(&id))
    else {
        return offerit_reply(StatusCode::NOT_FOUND, "error", json!("Invalid offerid"));
    };
    offer.history.push(action.into());
    match action {
        "pause_offer" => {
            offer.status = "expired".into();
            offerit_reply(StatusCode::OK, "success", json!("Offer expired."))
        }
        "activate_offer" => {
            offer.status = "active".into();
            offerit_reply(StatusCode::OK, "success", json!("Offer activated."))
        }
        _ => {
            for (k, v) in p.iter().filter(|(k, _)| *k != "offerid") {
                offer.fields.insert(k.clone(), v.clone());
            }
            offerit_reply(StatusCode::OK, "success", json!("Offer updated."))
        }
    }
}

fn affise_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({"status": 2, "error": error}))).into_response()
}

fn affise_offer(id: u64, o: &HeldOffer) -> Value {
    json!({
        "id": id,
        "title": o.fields.get("title"),
        "status": o.status,
        "external_offer_id": o.fields.get("external_offer_id"),
        "url": o.fields.get("url"),
    })
}

/// `/affise-target/3.0/admin/offer[/{id}]` (POST) and `/affise-target/3.0/offers` (GET, search).
pub async fn affise(
    state: SharedTarget,
    id: Option<String>,
    method: Method,
    headers: HeaderMap,
    query: String,
    body: Bytes,
) -> Response {
    let (resp, delay) = {
        let mut t = state.lock().unwrap();
        let what = match (&method, &id) {
            (&Method::GET, Some(id)) => format!("read {id}"),
            (&Method::GET, None) => "search".to_string(),
            (_, None) => "create".to_string(),
            (_, Some(id)) => format!("update {id}"),
        };
        t.calls.push(format!("{method} {what}"));
        let key = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if key != t.api_key {
            (
                affise_error(StatusCode::FORBIDDEN, "Access denied"),
                Duration::ZERO,
            )
        } else {
            answer(&mut t, |t| {
                affise_action(t, id.as_deref(), &method, &params(&query, &body))
            })
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

fn affise_action(
    t: &mut TargetTwin,
    id: Option<&str>,
    method: &Method,
    p: &BTreeMap<String, String>,
) -> Response {
    if let (&Method::GET, Some(id)) = (method, id) {
        // `/3.0/offer/{id}`: one offer, as the network's operators left it.
        return match id
            .parse::<u64>()
            .ok()
            .and_then(|id| t.offers.get(&id).map(|o| (id, o)))
        {
            Some((id, o)) => (
                StatusCode::OK,
                axum::Json(json!({"status": 1, "offer": affise_offer(id, o)})),
            )
                .into_response(),
            None => affise_error(StatusCode::NOT_FOUND, "Offer not found"),
        };
    }
    if *method == Method::GET {
        let q = p.get("q").cloned().unwrap_or_default();
        let offers: Vec<Value> = t
            .offers
            .iter()
            .filter(|(_, o)| {
                o.fields.get("external_offer_id") == Some(&q)
                    || o.fields.get("title").is_some_and(|x| x.contains(&q))
            })
            .map(|(id, o)| affise_offer(*id, o))
            .collect();
        let n = offers.len();
        return (StatusCode::OK, axum::Json(json!({"status": 1, "offers": offers, "pagination": {"page": 1, "per_page": 100, "total_count": n}}))).into_response();
    }
    if *method != Method::POST {
        return affise_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    match id {
        None => {
            // Seed 001: title, advertiser, url and at least one general payout.
            for required in [
                "title",
                "advertiser",
                "url",
                "payments[0][revenue]",
                "payments[0][currency]",
            ] {
                if p.get(required).is_none_or(|v| v.is_empty()) {
                    return affise_error(
                        StatusCode::BAD_REQUEST,
                        &format!("{required} is required"),
                    );
                }
            }
            let id = t.next_id;
            t.next_id += 1;
            // Affise's own default for new offers is "stopped".
            let status = p.get("status").cloned().unwrap_or_else(|| "stopped".into());
            let o = HeldOffer {
                fields: p.clone(),
                status,
                history: vec!["create".into()],
            };
            let offer = affise_offer(id, &o);
            t.offers.insert(id, o);
            (
                StatusCode::OK,
                axum::Json(json!({"status": 1, "offer": offer, "id": id})),
            )
                .into_response()
        }
        Some(id) => {
            let Some(o) = id.parse::<u64>().ok().and_then(|id| t.offers.get_mut(&id)) else {
                return affise_error(StatusCode::NOT_FOUND, "Offer not found");
            };
            o.history.push("update".into());
            for (k, v) in p {
                o.fields.insert(k.clone(), v.clone());
            }
            if let Some(st) = p.get("status") {
                o.status = st.clone();
            }
            let offer = affise_offer(id.parse().unwrap_or_default(), o);
            (
                StatusCode::OK,
                axum::Json(json!({"status": 1, "offer": offer})),
            )
                .into_response()
        }
    }
}
