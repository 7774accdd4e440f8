//! The read pages: the overview (every source's last run and health, the same truth as
//! `/healthz`; every target's outbox by state and its breaker), the offers list (filters, keyset
//! pages) and one offer (every field, its raw payload, history and state on each target, with
//! detach / attach).

use super::layout::{self, cell, list, money, page, Viewer};
use super::{blocking, failure, respond, App};
use crate::config::Approval;
use crate::model::OutboxState;
use crate::store::query::Table;
use crate::store::{OfferPage, OfferQuery, Store, SCAN_WINDOW};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use std::collections::HashMap;

/// Outbox counts above this are shown as "more than" it (see `Store::console_outbox_counts`).
const COUNT_CAP: i64 = 100_000;

pub(super) type Params = Query<HashMap<String, String>>;

pub(super) fn open(config: &crate::config::Config) -> Result<Store, String> {
    Store::open_read_only(&config.database.location, config.database.busy_timeout)
        .map_err(|e| e.explain(&config.database.location))
}

fn state_class(state: &str) -> &'static str {
    match state {
        "complete" | "done" | "active" => "state-ok",
        "failed" | "dead" | "held" => "state-bad",
        "partial" | "running" | "ambiguous" | "awaiting_approval" => "state-warn",
        _ => "",
    }
}

/// A table of `t`'s `columns` (all when empty).
pub(super) fn table(t: &Table, columns: &[&str]) -> Markup {
    let t = if columns.is_empty() {
        t.clone()
    } else {
        t.only(columns)
    };
    html! {
        div.table { table {
            thead { tr { @for c in &t.columns { th { (c) } } } }
            tbody { @for r in &t.rows { tr { @for v in r { td { (cell(v)) } } } } }
        } }
    }
}

struct SourceLine {
    name: String,
    kind: &'static str,
    health: serde_json::Value,
    last: Table,
}

struct TargetLine {
    name: String,
    kind: &'static str,
    approval: &'static str,
    counts: Vec<(String, i64)>,
    breaker: crate::store::TargetHealth,
}

pub(super) async fn overview(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let started = app.host.started;
    let data = blocking(move || {
        let (ok, health) = crate::daemon::health(&config, started);
        let store = open(&config)?;
        let sources = config
            .sources
            .iter()
            .map(|s| {
                Ok(SourceLine {
                    name: s.name.clone(),
                    kind: s.kind.as_str(),
                    health: health["sources"][&s.name].clone(),
                    last: store.console_last_run(&s.name).map_err(|e| e.to_string())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let targets = config
            .targets
            .iter()
            .map(|t| {
                Ok(TargetLine {
                    name: t.name.clone(),
                    kind: t.kind.as_str(),
                    approval: match t.controls.approval {
                        Approval::Manual => "manual",
                        Approval::Auto => "auto",
                    },
                    counts: store
                        .console_outbox_counts(&t.name, COUNT_CAP)
                        .map_err(|e| e.to_string())?,
                    breaker: store.target_health(&t.name).map_err(|e| e.to_string())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((ok, sources, targets))
    });
    let (ok, sources, targets) = match data.await {
        Ok(d) => d,
        Err(e) => return failure(&v, &e),
    };
    let states: Vec<&str> = OutboxState::ALL.iter().map(|s| s.as_str()).collect();
    let body = html! {
        p { "Health: " @if ok { span.fresh { "ok" } } @else { span.stale { "stale" } }
            span.muted { " (the same as /healthz)" } }
        h2 { "Sources" }
        div.table { table {
            thead { tr { th { "source" } th { "kind" } th { "health" } th { "last run" } th { "state" }
                th { "reason" } th { "finished" } th { "seen" } th { "added" } th { "changed" }
                th { "removed" } th { "rejected" } th { "held" } th { "requests" } th { "retries" }
                th { "rate-limit waits" } th { "error" } } }
            tbody { @for s in &sources {
                @let r = s.last.to_objects().into_iter().next().unwrap_or_default();
                @let fresh = s.health["fresh"].as_bool().unwrap_or(false);
                tr {
                    td { a href={ "/offers?source=" (s.name) } { (s.name) } }
                    td { (s.kind) }
                    td { @if fresh { span.fresh { "fresh" } } @else {
                        span.stale { "stale" } br; span.muted { (cell(&s.health["why"])) } } }
                    td.num { (cell(&r["id"])) }
                    td { span class=(state_class(&cell(&r["state"]))) { (cell(&r["state"])) } }
                    td { (cell(&r["reason"])) }
                    td { (cell(&r["finished_at"])) }
                    @for k in ["offers_seen", "added", "changed", "removed", "rejected", "held_removals", "requests", "retries", "rate_limited"] {
                        td.num { (cell(&r[k])) }
                    }
                    td { (cell(&r["error"])) }
                }
            } }
        } }
        h2 { "Targets" }
        div.table { table {
            thead { tr { th { "target" } th { "kind" } th { "approval" }
                @for s in &states { th { (s) } }
                th { "failures in a row" } th { "paused until" } } }
            tbody { @for t in &targets { tr {
                td { (t.name) } td { (t.kind) } td { (t.approval) }
                @for s in &states {
                    @let n = t.counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                    td.num {
                        @if n > 0 && *s == "awaiting_approval" { a href={ "/approvals?target=" (t.name) } { (n) } }
                        @else if n > 0 && *s == "dead" { a href="/dead" { (n) } }
                        @else if n > COUNT_CAP { "> " (COUNT_CAP) }
                        @else { (n) }
                    }
                }
                td.num { (t.breaker.failures) }
                td { (t.breaker.open_until.clone().unwrap_or_default()) }
            } } }
        } }
    };
    respond(
        StatusCode::OK,
        page(
            "Overview",
            "/",
            &v,
            q.get("notice").map(String::as_str),
            body,
        ),
    )
}

/// The offers page's query from its parameters (unknown or empty ones ignored).
fn offer_query(q: &HashMap<String, String>) -> OfferQuery {
    let text = |k: &str| {
        q.get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let num = |k: &str| {
        text(k)
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite())
    };
    OfferQuery {
        source: text("source"),
        status: text("status"),
        country: text("country"),
        approval: text("approval"),
        search: text("q"),
        min_payout: num("min_payout"),
        max_payout: num("max_payout"),
        after: text("after_source").zip(q.get("after_id").cloned()),
        limit: 50,
    }
}

const FILTER_KEYS: &[&str] = &[
    "source",
    "status",
    "country",
    "approval",
    "q",
    "min_payout",
    "max_payout",
];

fn select(name: &str, options: &[&str], current: Option<&str>) -> Markup {
    html! {
        select name=(name) {
            option value="" { "any" }
            @for o in options {
                @if Some(*o) == current { option value=(o) selected { (o) } }
                @else { option value=(o) { (o) } }
            }
        }
    }
}

pub(super) async fn offers(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let query = offer_query(&q);
    let qq = query.clone();
    let c2 = config.clone();
    let result: Result<OfferPage, String> =
        blocking(move || open(&c2)?.console_offers(&qq).map_err(|e| e.to_string())).await;
    let page_data = match result {
        Ok(p) => p,
        Err(e) => return failure(&v, &e),
    };
    let sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let next_link = page_data.next.as_ref().map(|(s, id)| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for k in FILTER_KEYS {
            if let Some(v) = get(k) {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("after_source", s)
            .append_pair("after_id", id);
        format!("/offers?{}", ser.finish())
    });
    let body = html! {
        form.filters method="get" action="/offers" {
            label { "source" (select("source", &sources, get("source"))) }
            label { "status" (select("status", &["active", "paused", "pending", "expired", "removed", "other"], get("status"))) }
            label { "country" input type="text" name="country" size="3" maxlength="2" value=(get("country").unwrap_or("")); }
            label { "payout from" input type="number" step="any" min="0" name="min_payout" value=(get("min_payout").unwrap_or("")); }
            label { "payout to" input type="number" step="any" min="0" name="max_payout" value=(get("max_payout").unwrap_or("")); }
            label { "approval at source" (select("approval", &["approved", "requires_approval", "pending", "rejected"], get("approval"))) }
            label { "name or id" input type="search" name="q" value=(get("q").unwrap_or("")); }
            button type="submit" { "Filter" }
            a href="/offers" { "Clear" }
        }
        @if query.after.is_some() { p.muted { "Continuing after " (query.after.as_ref().map(|(s, i)| format!("{s} {i}")).unwrap_or_default()) ". " a href="/offers" { "Back to the start" } } }
        div.table { table id="offers" {
            thead { tr { th { "source" } th { "external id" } th { "name" } th { "status" } th { "payout" }
                th { "type" } th { "countries" } th { "approval" } } }
            tbody { @for o in &page_data.offers { tr {
                td { (o.source) }
                td { a href={ "/offer?" (form_urlencoded::Serializer::new(String::new()).append_pair("source", &o.source).append_pair("id", &o.external_id).finish()) } { (o.external_id) } }
                td { (o.name) }
                td { span class=(state_class(&o.status)) { (o.status) } }
                td.num { (money(o.payout.as_deref(), o.currency.as_deref(), &o.payout_unit)) }
                td { (o.payout_type.clone().unwrap_or_default()) }
                td { (list(&o.countries)) }
                td { (o.approval.clone().unwrap_or_default()) }
            } } }
        } }
        @if page_data.offers.is_empty() && page_data.scanned_to.is_none() { p.muted { "No offers match." } }
        @if let Some((s, id)) = &page_data.scanned_to {
            p.hint { "Examined " (SCAN_WINDOW) " offers up to " (s) " " (id) " for these filters; more may match further on." }
        }
        div.pager { @if let Some(l) = &next_link { a id="next" href=(l) { "Next page →" } } }
    };
    respond(StatusCode::OK, page("Offers", "/offers", &v, None, body))
}

struct TargetState {
    name: String,
    mapping: Table,
    ops: Table,
}

pub(super) async fn offer(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let (Some(source), Some(id)) = (q.get("source").cloned(), q.get("id").cloned()) else {
        return respond(
            StatusCode::BAD_REQUEST,
            page(
                "Offer",
                "",
                &v,
                None,
                html! { p { "Which offer? (source and id)" } },
            ),
        );
    };
    let (s2, i2, c2) = (source.clone(), id.clone(), config.clone());
    let data = blocking(move || {
        let store = open(&c2)?;
        let e = |e: crate::store::StoreError| e.to_string();
        let Some(fields) = store.console_offer(&s2, &i2).map_err(e)? else {
            return Ok(None);
        };
        let history = store.console_history(&s2, &i2, 200).map_err(e)?;
        let mut targets = Vec::new();
        for t in c2.targets.iter().filter(|t| t.sources.contains(&s2)) {
            let (mapping, ops) = store.console_offer_on(&t.name, &s2, &i2).map_err(e)?;
            targets.push(TargetState {
                name: t.name.clone(),
                mapping,
                ops,
            });
        }
        Ok(Some((fields, history, targets)))
    });
    let (fields, history, targets) = match data.await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return respond(
                StatusCode::NOT_FOUND,
                page(
                    "Offer",
                    "",
                    &v,
                    None,
                    html! { p { "No offer " (id) " from " (source) " in the mirror." } },
                ),
            )
        }
        Err(e) => return failure(&v, &e),
    };
    let obj = fields.to_objects().into_iter().next().unwrap_or_default();
    let raw = obj
        .get("raw")
        .and_then(|r| r.as_str())
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|r| serde_json::to_string_pretty(&r).ok())
        .unwrap_or_else(|| cell(obj.get("raw").unwrap_or(&serde_json::Value::Null)));
    let title = format!("{source} {id}");
    let body = html! {
        p { (cell(&obj["name"])) }
        h2 { "Fields" }
        dl.fields id="fields" {
            @for c in fields.columns.iter().filter(|c| *c != "raw") {
                dt { (c) } dd { (cell(&obj[c.as_str()])) }
            }
        }
        h2 { "On each target" }
        @if targets.is_empty() { p.muted { "No target republishes " (source) "." } }
        @for t in &targets {
            h2 { (t.name) }
            @let m = t.mapping.to_objects().into_iter().next();
            @if let Some(m) = &m {
                (table(&t.mapping, &[]))
                @if v.logged_in() {
                    @let detached = !m["detached_at"].is_null();
                    form.inline method="post" action=(if detached { "/offer/attach" } else { "/offer/detach" }) {
                        (v.csrf_field())
                        input type="hidden" name="target" value=(t.name);
                        input type="hidden" name="source" value=(source);
                        input type="hidden" name="id" value=(id);
                        @if detached { button type="submit" { "Attach (resume with a fresh plan)" } }
                        @else { button.secondary type="submit" { "Detach (stop updating it)" } }
                    }
                } @else { (layout::login_to_act()) }
            } @else { p.muted { "Not on this target." } }
            @if !t.ops.rows.is_empty() { h2 { "Operations for " (t.name) } (table(&t.ops, &[])) }
        }
        h2 { "History" }
        (table(&history, &[]))
        h2 { "Raw payload" }
        pre id="raw" { (raw) }
    };
    respond(
        StatusCode::OK,
        page(&title, "", &v, q.get("notice").map(String::as_str), body),
    )
}
