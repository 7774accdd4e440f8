//! Observability for the daemon: Prometheus `/metrics` (the `metrics` facade with the
//! Prometheus recorder) and `/healthz` (200 while every enabled source's last complete run is
//! fresher than `stale_after_seconds`, 503 otherwise, with a JSON body saying which).
//! Without `metrics_listen` no recorder is installed and the macros cost nothing.

use crate::config::Config;
use crate::daemon::Daemon;
use crate::store::Store;
use crate::sync::RunReport;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;

/// Request accounting of one endpoint (source or target), called by the HTTP layer.
pub fn request(endpoint: &str) {
    metrics::counter!("offersync_requests_total", "endpoint" => endpoint.to_string()).increment(1);
}

pub fn retry(endpoint: &str, rate_limited: bool) {
    metrics::counter!("offersync_retries_total", "endpoint" => endpoint.to_string()).increment(1);
    if rate_limited {
        metrics::counter!("offersync_rate_limited_total", "endpoint" => endpoint.to_string())
            .increment(1);
    }
}

/// A spent `X-RateLimit` budget held an endpoint's requests until the reset.
pub fn rate_limit_hold(endpoint: &str) {
    metrics::counter!("offersync_rate_limited_total", "endpoint" => endpoint.to_string())
        .increment(1);
}

/// A run ended: offers, state and timestamps per source.
pub fn run_finished(report: &RunReport) {
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
    if let Some(secs) = t.duration_seconds {
        metrics::histogram!("offersync_run_duration_seconds", "source" => s.clone()).record(secs);
    }
    let now = Utc::now().timestamp() as f64;
    metrics::gauge!("offersync_last_run_timestamp_seconds", "source" => s.clone()).set(now);
    if t.state == crate::store::RunState::Complete {
        metrics::gauge!("offersync_last_success_timestamp_seconds", "source" => s).set(now);
    }
}

/// Outbox depth by target and state.
pub fn outbox_depth(config: &Config) {
    let Ok(store) = Store::open_existing(&config.database.path, config.database.busy_timeout)
    else {
        return;
    };
    for t in &config.targets {
        for (state, n) in store.outbox_counts(&t.name).unwrap_or_default() {
            metrics::gauge!("offersync_outbox_operations", "target" => t.name.clone(), "state" => state).set(n as f64);
        }
    }
}

/// Health of every enabled source: (healthy, JSON body).
pub fn health(config: &Config, started: DateTime<Utc>) -> (bool, serde_json::Value) {
    let stale_after = chrono::Duration::from_std(config.daemon.stale_after).unwrap_or_default();
    let store = Store::open_existing(&config.database.path, config.database.busy_timeout).ok();
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
        // Before the first complete run the daemon's start-up is the reference.
        let since = last_complete.unwrap_or(started);
        let fresh = Utc::now() - since <= stale_after;
        ok &= fresh;
        sources.insert(
            s.name.clone(),
            json!({
                "fresh": fresh,
                "last_complete_at": last_complete.map(crate::model::format_timestamp),
                "last_state": runs.first().map(|r| r.state.as_str()),
                "last_error": runs.first().and_then(|r| r.error.clone()),
            }),
        );
    }
    (
        ok,
        json!({"status": if ok { "ok" } else { "stale" }, "sources": sources}),
    )
}

/// Install the Prometheus recorder and serve `/metrics` and `/healthz` on `listen`.
pub async fn serve(listen: &str, daemon: Arc<Daemon>) -> Result<(), String> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("daemon.metrics_listen: cannot listen on {listen}: {e}"))?;
    let started = Utc::now();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || async move { handle.render() }),
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
