//! What waits for an operator, and the actions on it: the approval queue of each target (new
//! offers and held payout jumps; approve or reject the offers ticked, or approve all), the
//! removals the mass-removal guard held per source, the dead operations per target (retry), and
//! detach / attach of one target offer. Every action is `crate::ops`'s, the command line's own.

use super::layout::{list, money, page, Viewer};
use super::pages::{open, Params};
use super::{authorize, back, blocking, failure, field, respond, App};
use crate::config::Config;
use crate::store::{ApproveOutcome, HeldRun, QueuedOp, Selection};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use std::sync::Arc;

/// Rows shown per target and page.
const PAGE: usize = 100;

fn offer_link(source: &str, id: &str) -> String {
    format!(
        "/offer?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("source", source)
            .append_pair("id", id)
            .finish()
    )
}

/// The new payout a queued operation carries, from its payload.
fn new_payout(op: &QueuedOp) -> String {
    let p: serde_json::Value = serde_json::from_str(&op.payload).unwrap_or_default();
    let fields = p.get("fields").unwrap_or(&p);
    match (fields.get("payout"), fields.get("currency")) {
        (Some(v), c) => format!(
            "{} {}",
            super::layout::cell(v),
            c.map(super::layout::cell).unwrap_or_default()
        )
        .trim()
        .to_string(),
        (None, _) => String::new(),
    }
}

struct Queue {
    target: String,
    /// `approval = "manual"`: shown even when empty.
    manual: bool,
    total: i64,
    rejected: i64,
    ops: Vec<QueuedOp>,
}

pub(super) async fn approvals(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let only = q.get("target").cloned().filter(|s| !s.is_empty());
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let data = blocking(move || {
        let store = open(&config)?;
        let e = |e: crate::store::StoreError| e.to_string();
        let mut out = Vec::new();
        for t in config
            .targets
            .iter()
            .filter(|t| only.as_ref().is_none_or(|o| *o == t.name))
        {
            let (total, ops) = store
                .console_queue(&t.name, "awaiting_approval", PAGE, offset)
                .map_err(e)?;
            let (rejected, _) = store.console_queue(&t.name, "rejected", 0, 0).map_err(e)?;
            out.push(Queue {
                target: t.name.clone(),
                manual: t.controls.approval == crate::config::Approval::Manual,
                total,
                rejected,
                ops,
            });
        }
        Ok(out)
    });
    let queues = match data.await {
        Ok(d) => d,
        Err(e) => return failure(&v, &e),
    };
    let body = html! {
        @if queues.iter().all(|q| q.total == 0) { p.muted { "Nothing waits for approval." } }
        @for q in queues.iter().filter(|q| q.total > 0 || q.rejected > 0 || q.manual) { (queue_table(&v, q, offset)) }
    };
    respond(
        StatusCode::OK,
        page(
            "Approvals",
            "/approvals",
            &v,
            q.get("notice").map(String::as_str),
            body,
        ),
    )
}

fn queue_table(v: &Viewer, q: &Queue, offset: usize) -> Markup {
    html! {
        h2 { (q.target) ": " (q.total) " awaiting approval"
            @if q.rejected > 0 { span.muted { " (" (q.rejected) " rejected)" } } }
        @if q.total > 0 {
            form.queue method="post" action="/approvals/decide" {
                (v.csrf_field())
                input type="hidden" name="target" value=(q.target);
                div.table { table {
                    thead { tr { th { "" } th { "what" } th { "source" } th { "external id" } th { "name" }
                        th { "source payout" } th { "payout to push" } th { "countries" } th { "reason" } th { "since" } } }
                    tbody { @for op in &q.ops { tr {
                        td { @if v.logged_in() {
                            input type="checkbox" name="sel" value={ (op.source) ":" (op.external_id) }
                                aria-label={ "select " (op.external_id) };
                        } }
                        td { @if op.op == "create" { "new offer" } @else { "payout change (" (op.op) ")" } }
                        td { (op.source) }
                        td { a href=(offer_link(&op.source, &op.external_id)) { (op.external_id) } }
                        td { (op.name.clone().unwrap_or_default()) }
                        td.num { (money(op.payout.as_deref(), op.currency.as_deref(), "amount")) }
                        td.num { (new_payout(op)) }
                        td { (op.countries.as_deref().map(list).unwrap_or_default()) }
                        td { (op.last_error.clone().unwrap_or_default()) }
                        td { (op.created_at) }
                    } } }
                } }
                @if v.logged_in() {
                    div.actions {
                        button type="submit" name="action" value="approve" { "Approve selected" }
                        button.danger type="submit" name="action" value="reject" { "Reject selected" }
                        button.secondary type="submit" name="action" value="approve_all" { "Approve all " (q.total) }
                    }
                } @else { (super::layout::login_to_act()) }
            }
            div.pager {
                @if offset > 0 { a href={ "/approvals?target=" (q.target) "&offset=" (offset.saturating_sub(PAGE)) } { "← Previous" } }
                @if (offset + PAGE) < q.total as usize { a href={ "/approvals?target=" (q.target) "&offset=" (offset + PAGE) } { "Next →" } }
            }
        }
    }
}

/// The offers ticked (`source:external_id`; source names cannot hold a colon).
fn selected(form: &[(String, String)]) -> Vec<(String, String)> {
    form.iter()
        .filter(|(k, _)| k == "sel")
        .filter_map(|(_, v)| v.split_once(':'))
        .map(|(s, id)| (s.to_string(), id.to_string()))
        .collect()
}

/// Run an action off the runtime with the config in force.
async fn act<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Config) -> Result<T, crate::ops::OpsError> + Send + 'static,
) -> Result<T, String> {
    let config: Arc<Config> = app.config();
    blocking(move || f(&config).map_err(|e| e.to_string())).await
}

pub(super) async fn decide(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = match authorize(&v, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let target = field(&f, "target").unwrap_or("").to_string();
    let action = field(&f, "action").unwrap_or("").to_string();
    let offers = selected(&f);
    if action != "approve_all" && offers.is_empty() {
        return back("/approvals", "Nothing selected.");
    }
    let t = target.clone();
    let result = act(&app, move |c| match action.as_str() {
        "approve_all" => crate::ops::approve(c, &t, &Selection::All).map(|d| ("released", d)),
        "reject" => crate::ops::reject(c, &t, &offers).map(|d| ("rejected", d)),
        _ => crate::ops::approve(c, &t, &Selection::Offers(offers)).map(|d| ("released", d)),
    })
    .await;
    match result {
        Ok((verb, d)) => {
            tracing::info!(target = %target, operations = d.operations, verb, "console decision");
            if verb == "released" {
                (app.host.deliver_soon)();
            }
            back(
                "/approvals",
                &format!(
                    "{target}: {} operation(s) {verb}{}.",
                    d.operations,
                    if d.recorded_only.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} offer(s) had nothing waiting (the decision applies to their next plan)",
                            d.recorded_only.len()
                        )
                    }
                ),
            )
        }
        Err(e) => failure(&v, &e),
    }
}

pub(super) async fn removals(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let data = blocking(move || {
        let store = open(&config)?;
        let mut out: Vec<(String, HeldRun)> = Vec::new();
        for s in &config.sources {
            if let Some(h) = store.console_held(&s.name).map_err(|e| e.to_string())? {
                out.push((s.name.clone(), h));
            }
        }
        Ok(out)
    });
    let held = match data.await {
        Ok(d) => d,
        Err(e) => return failure(&v, &e),
    };
    let body = html! {
        p.hint { "A complete run that would remove more than max_removal_fraction of a source's live offers removes nothing and is held. Approving applies its removals (offersync approve-removals)." }
        @if held.is_empty() { p.muted { "No source holds removals." } }
        @else {
            div.table { table id="held" {
                thead { tr { th { "source" } th { "run" } th { "held removals" } th { "offers seen" } th { "finished" } th { "message" } th { "" } } }
                tbody { @for (s, h) in &held { tr {
                    td { (s) } td.num { (h.run_id) } td.num { (h.held_removals) } td.num { (h.offers_seen) }
                    td { (h.finished_at.clone().unwrap_or_default()) } td { (h.error.clone().unwrap_or_default()) }
                    td { @if v.logged_in() {
                        form.inline method="post" action="/removals/approve" {
                            (v.csrf_field())
                            input type="hidden" name="source" value=(s);
                            button.danger type="submit" { "Approve " (h.held_removals) " removals" }
                        }
                    } @else { (super::layout::login_to_act()) } }
                } } }
            } }
        }
    };
    respond(
        StatusCode::OK,
        page(
            "Held removals",
            "/removals",
            &v,
            q.get("notice").map(String::as_str),
            body,
        ),
    )
}

pub(super) async fn approve_removals(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = match authorize(&v, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let source = field(&f, "source").unwrap_or("").to_string();
    let s = source.clone();
    match act(&app, move |c| crate::ops::approve_removals(c, &s)).await {
        Ok(Ok(ApproveOutcome::Approved { run_id, removed })) => {
            tracing::info!(source = %source, run_id, removed, "console approved held removals");
            (app.host.deliver_soon)();
            back(
                "/removals",
                &format!("{source}: removed {removed} offer(s) held by run {run_id}."),
            )
        }
        Ok(Ok(ApproveOutcome::NothingHeld { .. })) => {
            back("/removals", &format!("{source}: nothing to approve."))
        }
        Ok(Err(holder)) => back(
            "/removals",
            &format!("{source} is being synced by {holder}; try again when that run ends."),
        ),
        Err(e) => failure(&v, &e),
    }
}

pub(super) async fn dead(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    Query(q): Params,
) -> Response {
    let config = app.config();
    let data = blocking(move || {
        let store = open(&config)?;
        let mut out = Vec::new();
        for t in &config.targets {
            let (total, ops) = store
                .console_queue(&t.name, "dead", PAGE, 0)
                .map_err(|e| e.to_string())?;
            out.push((t.name.clone(), total, ops));
        }
        Ok(out)
    });
    let targets = match data.await {
        Ok(d) => d,
        Err(e) => return failure(&v, &e),
    };
    let body = html! {
        p.hint { "Retrying plans each dead operation again from the mirror as it is now (a stale payload is never resent) and delivers it (offersync push --retry-dead)." }
        @if targets.iter().all(|(_, n, _)| *n == 0) { p.muted { "No dead operations." } }
        @for (t, total, ops) in targets.iter().filter(|(_, n, _)| *n > 0) {
            h2 { (t) ": " (total) " dead" }
            div.table { table.dead {
                thead { tr { th { "op" } th { "source" } th { "external id" } th { "name" } th { "attempts" } th { "first failed" } th { "error" } } }
                tbody { @for op in ops { tr {
                    td { (op.op) } td { (op.source) }
                    td { a href=(offer_link(&op.source, &op.external_id)) { (op.external_id) } }
                    td { (op.name.clone().unwrap_or_default()) } td.num { (op.attempts) }
                    td { (op.first_failed_at.clone().unwrap_or_default()) }
                    td { (op.last_error.clone().unwrap_or_default()) }
                } } }
            } }
            @if v.logged_in() {
                form.inline method="post" action="/dead/retry" {
                    (v.csrf_field())
                    input type="hidden" name="target" value=(t);
                    button type="submit" { "Retry " (total) " dead operation(s) of " (t) }
                }
            } @else { (super::layout::login_to_act()) }
        }
    };
    respond(
        StatusCode::OK,
        page(
            "Dead pushes",
            "/dead",
            &v,
            q.get("notice").map(String::as_str),
            body,
        ),
    )
}

pub(super) async fn retry_dead(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = match authorize(&v, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let target = field(&f, "target").unwrap_or("").to_string();
    let t = target.clone();
    match act(&app, move |c| crate::ops::requeue_dead(c, &t)).await {
        Ok(n) => {
            tracing::info!(target = %target, operations = n, "console requeued dead operations");
            (app.host.deliver_soon)();
            back(
                "/dead",
                &format!("{target}: {n} dead operation(s) back in the queue."),
            )
        }
        Err(e) => failure(&v, &e),
    }
}

async fn detach_or_attach(
    app: App,
    v: Viewer,
    headers: HeaderMap,
    body: Bytes,
    detach: bool,
) -> Response {
    let f = match authorize(&v, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (target, source, id) = (
        field(&f, "target").unwrap_or("").to_string(),
        field(&f, "source").unwrap_or("").to_string(),
        field(&f, "id").unwrap_or("").to_string(),
    );
    let (t, s, i) = (target.clone(), source.clone(), id.clone());
    let to = offer_link(&source, &id);
    let notice = if detach {
        act(&app, move |c| {
            crate::ops::detach(c, &t, &s, &i, "detached by an operator (console)")
        })
        .await
        .map(|done| {
            if done {
                format!("{target}: detached; offersync will not update, pause or activate it.")
            } else {
                format!("{target} holds no such offer; nothing detached.")
            }
        })
    } else {
        act(&app, move |c| crate::ops::attach(c, &t, &s, &i))
            .await
            .map(|r| match r {
                None => format!("{target}: not detached; nothing to attach."),
                Some(op) => format!(
                    "{target}: attached ({}).",
                    op.map_or("nothing to send".to_string(), |k| format!("planned: {k}"))
                ),
            })
    };
    match notice {
        Ok(n) => {
            tracing::info!(target = %target, source = %source, external_id = %id, detach, "console detach/attach");
            (app.host.deliver_soon)();
            back(&to, &n)
        }
        Err(e) => failure(&v, &e),
    }
}

pub(super) async fn detach(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    detach_or_attach(app, v, headers, body, true).await
}

pub(super) async fn attach(
    State(app): State<App>,
    Extension(v): Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    detach_or_attach(app, v, headers, body, false).await
}
