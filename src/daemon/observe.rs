//! What the daemon exposes: run and delivery reports turned into metric families, the
//! outbox depth, and the `/metrics` and `/healthz` endpoints (200 while every enabled source's
//! last complete run is fresher than `stale_after_seconds`, 503 otherwise, with a JSON body
//! saying which).

use super::Daemon;
use crate::config::Config;
use crate::metrics::describe_and_zero;
use crate::model::{OutboxState, RunState};
use crate::push::deliver::DeliveryReport;
use crate::store::Store;
use crate::sync::RunReport;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;

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
    if t.state == RunState::Complete {
        metrics::gauge!("offersync_last_success_timestamp_seconds", "source" => s).set(now);
    }
}

/// A delivery pass ended: its results per target.
pub fn delivered(r: &DeliveryReport) {
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
    let Ok(store) = Store::open_read_only(&config.database.location, config.database.busy_timeout)
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
    let store = Store::open_read_only(&config.database.location, config.database.busy_timeout).ok();
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
