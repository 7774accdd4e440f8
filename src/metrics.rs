//! Observability for the daemon: Prometheus `/metrics` (the `metrics` facade with the
//! Prometheus recorder) and `/healthz` (200 while every enabled source's last complete run is
//! fresher than `stale_after_seconds`, 503 otherwise, with a JSON body saying which).
//! Without `metrics_listen` no recorder is installed and the macros cost nothing.

use crate::config::Config;
use crate::daemon::Daemon;
use crate::model::OutboxState;
use crate::store::Store;
use crate::sync::RunReport;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;

/// Whom a request was for: a source or a target, by name (they are separate label names, so a
/// source and a target of the same name never mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
        }
    }
}

/// Request accounting of one endpoint (source or target), called by the HTTP layer.
pub fn request(role: Role, name: &str, seconds: f64) {
    metrics::counter!("offersync_requests_total", role.label() => name.to_string()).increment(1);
    metrics::histogram!("offersync_request_duration_seconds", role.label() => name.to_string())
        .record(seconds);
}

pub fn retry(role: Role, name: &str, rate_limited: bool) {
    metrics::counter!("offersync_retries_total", role.label() => name.to_string()).increment(1);
    if rate_limited {
        rate_limit_hold(role, name);
    }
}

/// A rate-limited answer, or a spent `X-RateLimit` budget that held requests until the reset.
pub fn rate_limit_hold(role: Role, name: &str) {
    metrics::counter!("offersync_rate_limited_total", role.label() => name.to_string())
        .increment(1);
}

const PUSH_RESULTS: [&str; 4] = ["done", "failed", "dead", "ambiguous"];
const OFFER_COUNTERS: [(&str, &str); 5] = [
    ("offersync_offers_seen_total", "Offers seen by runs."),
    ("offersync_offers_added_total", "Offers new to the mirror."),
    (
        "offersync_offers_changed_total",
        "Offers whose content changed (or reappeared).",
    ),
    (
        "offersync_offers_removed_total",
        "Offers marked removed after complete runs.",
    ),
    (
        "offersync_offers_rejected_total",
        "Offers rejected for implausible or malformed data.",
    ),
];

/// HELP text for every family, and every counter and gauge at 0 for each configured source and
/// target, so a family exists (and `rate()` works) before anything happened.
pub fn describe_and_zero(config: &Config) {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "offersync_build_info",
        "offersync's version (the value is always 1)."
    );
    describe_counter!(
        "offersync_requests_total",
        "HTTP requests sent, retries included, per source or target."
    );
    describe_counter!(
        "offersync_retries_total",
        "Requests retried after a failure or a rate limit, per source or target."
    );
    describe_counter!(
        "offersync_rate_limited_total",
        "Rate-limited answers and X-RateLimit holds, per source or target."
    );
    describe_histogram!(
        "offersync_request_duration_seconds",
        Unit::Seconds,
        "Time from sending a request to reading its whole answer, per source or target."
    );
    describe_counter!(
        "offersync_runs_total",
        "Runs that ended, per source and state."
    );
    describe_histogram!(
        "offersync_run_duration_seconds",
        Unit::Seconds,
        "Wall time of a run (monotonic clock), per source."
    );
    describe_gauge!(
        "offersync_last_run_timestamp_seconds",
        "When the source's last run ended (unix seconds)."
    );
    describe_gauge!(
        "offersync_last_success_timestamp_seconds",
        "When the source's last complete run ended (unix seconds)."
    );
    describe_gauge!(
        "offersync_outbox_operations",
        "Push operations in the outbox, per target and state."
    );
    describe_counter!(
        "offersync_pushes_total",
        "Push operations delivered or failed by delivery passes, per target and result."
    );
    for (name, help) in OFFER_COUNTERS {
        describe_counter!(name, help);
    }
    metrics::gauge!("offersync_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for s in &config.sources {
        let n = s.name.clone();
        for family in [
            "offersync_requests_total",
            "offersync_retries_total",
            "offersync_rate_limited_total",
        ] {
            metrics::counter!(family, "source" => n.clone()).absolute(0);
        }
        for (family, _) in OFFER_COUNTERS {
            metrics::counter!(family, "source" => n.clone()).absolute(0);
        }
        for state in crate::model::RunState::ALL.iter().map(|s| s.as_str()) {
            metrics::counter!("offersync_runs_total", "source" => n.clone(), "state" => state)
                .absolute(0);
        }
    }
    for t in &config.targets {
        let n = t.name.clone();
        for family in [
            "offersync_requests_total",
            "offersync_retries_total",
            "offersync_rate_limited_total",
        ] {
            metrics::counter!(family, "target" => n.clone()).absolute(0);
        }
        for result in PUSH_RESULTS {
            metrics::counter!("offersync_pushes_total", "target" => n.clone(), "result" => result)
                .absolute(0);
        }
        for state in OutboxState::ALL.iter().map(|s| s.as_str()) {
            metrics::gauge!("offersync_outbox_operations", "target" => n.clone(), "state" => state)
                .set(0.0);
        }
    }
}

/// A run ended: offers, state, duration (measured by the caller on a monotonic clock) and
/// timestamps per source.
pub fn run_finished(report: &RunReport, elapsed: std::time::Duration) {
    let RunReport::Finished(t) = report else {
        return;
    };
    let s = t.source.clone();
    metrics::counter!("offersync_runs_total", "source" => s.clone(), "state" => t.state.as_str())
        .increment(1);
    for (name, v) in [
        ("offersync_offers_seen_total", t.offers_seen),
        ("offersync_offers_added_total", t.added),
        ("offersync_offers_changed_total", t.changed),
        ("offersync_offers_removed_total", t.removed),
        ("offersync_offers_rejected_total", t.rejected),
    ] {
        metrics::counter!(name, "source" => s.clone()).increment(v.max(0) as u64);
    }
    metrics::histogram!("offersync_run_duration_seconds", "source" => s.clone())
        .record(elapsed.as_secs_f64());
    let now = Utc::now().timestamp() as f64;
    metrics::gauge!("offersync_last_run_timestamp_seconds", "source" => s.clone()).set(now);
    if t.state == crate::store::RunState::Complete {
        metrics::gauge!("offersync_last_success_timestamp_seconds", "source" => s).set(now);
    }
}

/// A delivery pass ended: its results per target.
pub fn delivered(r: &crate::push::deliver::DeliveryReport) {
    for (result, n) in [
        ("done", r.done),
        ("failed", r.failed),
        ("dead", r.dead),
        ("ambiguous", r.ambiguous),
    ] {
        metrics::counter!("offersync_pushes_total", "target" => r.target.clone(), "result" => result)
            .increment(n);
    }
}

/// Outbox depth by target and state.
pub fn outbox_depth(config: &Config) {
    let Ok(store) = Store::open_read_only(&config.database.path, config.database.busy_timeout)
    else {
        return;
    };
    for t in &config.targets {
        let counts = store.outbox_counts(&t.name).unwrap_or_default();
        for state in OutboxState::ALL.iter().map(|s| s.as_str()) {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("offersync_outbox_operations", "target" => t.name.clone(), "state" => state)
                .set(n as f64);
        }
    }
}

/// Health of every enabled source: (healthy, JSON body).
pub fn health(config: &Config, started: DateTime<Utc>) -> (bool, serde_json::Value) {
    let stale_after = chrono::Duration::from_std(config.daemon.stale_after).unwrap_or_default();
    let store = Store::open_read_only(&config.database.path, config.database.busy_timeout).ok();
    let mut ok = true;
    let mut sources = serde_json::Map::new();
    for s in config.sources.iter().filter(|s| s.enabled) {
        let runs = store
            .as_ref()
            .and_then(|st| st.runs_of(&s.name, 50).ok())
            .unwrap_or_default();
        let last_complete = store
            .as_ref()
            .and_then(|st| st.last_complete_at(&s.name).ok().flatten())
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        // A source that never completed is not fresh: nothing says its mirror is current.
        let (fresh, why) = match last_complete {
            None => (false, Some("no complete run yet".to_string())),
            Some(t) if Utc::now() - t > stale_after => (
                false,
                Some(format!(
                    "last complete run older than stale_after_seconds = {}",
                    stale_after.num_seconds()
                )),
            ),
            Some(_) => (true, None),
        };
        ok &= fresh;
        sources.insert(
            s.name.clone(),
            json!({
                "fresh": fresh,
                "why": why,
                "last_complete_at": last_complete.map(crate::model::format_timestamp),
                "last_state": runs.first().map(|r| r.state.as_str()),
                "last_reason": runs.first().and_then(|r| r.reason.clone()),
                "last_error": runs.first().and_then(|r| r.error.clone()),
            }),
        );
        let _ = started;
    }
    (
        ok,
        json!({"status": if ok { "ok" } else { "stale" }, "sources": sources}),
    )
}

/// Install the Prometheus recorder and serve `/metrics` and `/healthz` on `listen`.
pub async fn serve(listen: &str, daemon: Arc<Daemon>) -> Result<(), String> {
    use metrics_exporter_prometheus::Matcher;
    // Histograms with buckets (summaries cannot be aggregated across instances).
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("offersync_request_duration_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("offersync_run_duration_seconds".into()),
                &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
            )
        })
        .map_err(|e| format!("cannot configure the metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe_and_zero(&daemon.config());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("daemon.metrics_listen: cannot listen on {listen}: {e}"))?;
    let started = Utc::now();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move || async move {
                let config = daemon.config();
                let (ok, body) = tokio::task::spawn_blocking(move || health(&config, started))
                    .await
                    .unwrap_or((false, json!({"status": "error"})));
                let status = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (status, axum::Json(body)).into_response()
            }),
        );
    tracing::info!(listen, "serving /metrics and /healthz");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
