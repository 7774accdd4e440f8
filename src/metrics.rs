//! The metric families (names, HELP text, labels) and the recorders the HTTP layer calls.
//! A leaf: it knows the config and the model, nothing above. The daemon turns run and
//! delivery reports into these families and serves `/metrics` and `/healthz`
//! (`daemon/observe.rs`). Without `metrics_listen` no recorder is installed and the macros
//! cost nothing.

use crate::config::Config;
use crate::model::OutboxState;

/// Whom a request was for: a source or a target, by name (they are separate label names, so a
/// source and a target of the same name never mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
    /// A webhook notifier.
    Notifier,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
            Role::Notifier => "notifier",
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
    describe_counter!(
        "offersync_notifications_total",
        "Notification messages per notifier and result (sent, failed, dead)."
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
    for n in &config.notify {
        for result in NOTIFY_RESULTS {
            metrics::counter!("offersync_notifications_total", "notifier" => n.rule.name.clone(), "result" => *result)
                .absolute(0);
        }
    }
}

/// The results counted by `offersync_notifications_total`.
pub const NOTIFY_RESULTS: &[&str] = &["sent", "failed", "dead"];

/// One notification message's result.
pub fn notified(notifier: &str, result: &'static str) {
    metrics::counter!("offersync_notifications_total", "notifier" => notifier.to_string(), "result" => result)
        .increment(1);
}
