//! Webhook notifications (`[[notify]]`): what the store recorded in `notify_outbox` is sent with
//! the HTTP layer's pacing and retries, events of one kind, source and target merged into one
//! message (`batch_seconds`). Delivered at least once: a 2xx marks the rows done in a
//! transaction after the answer, so a crash in between sends that message again; after
//! `max_attempts` passes a row is `dead` (`inspect notifications --state dead`).

pub mod format;

use crate::config::{Config, NotifierConfig};
use crate::http::{Endpoint, Failure, HttpRequest, Limiters};
use crate::model::{format_timestamp, NOTIFY_SAMPLE};
use crate::store::{Location, Notification, Store, StoreError};
use chrono::Utc;
use format::Batch;
use reqwest::Url;

use std::sync::Arc;
use std::time::Duration;

/// A notifier ready to send: its config, its URL (a secret) and its endpoint.
pub struct PreparedNotifier {
    pub cfg: NotifierConfig,
    url: Url,
    endpoint: Arc<Endpoint>,
}

/// What one delivery of a notifier did, in messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    pub notifier: String,
    pub sent: u64,
    pub failed: u64,
    pub dead: u64,
    pub error: Option<String>,
}

/// Resolve every notifier's URL and build its endpoint; each problem names its key.
pub fn prepare(config: &Config, limiters: &Limiters) -> Result<Vec<PreparedNotifier>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in &config.notify {
        let key = format!("notify[{}]", n.index);
        let resolved = crate::config::resolve_credential(&key, &n.url)
            .map_err(|e| {
                e.replace(".api_key_env", ".url_env")
                    .replace(".api_key_file", ".url_file")
            })
            .and_then(|secret| {
                let url = Url::parse(secret.expose())
                    .map_err(|e| format!("{key}.url: not a URL ({e})"))?;
                let limiter = limiters.get(
                    &format!("notify:{}", n.rule.name),
                    n.http.requests_per_second,
                    n.http.burst,
                );
                // The whole URL is the credential (Slack's path carries the token): the path
                // alone is scrubbed too.
                let mut secrets = vec![secret];
                if url.path().len() > 8 {
                    secrets.push(crate::config::Secret::new(url.path()));
                }
                let endpoint = Endpoint::new(
                    &n.rule.name,
                    crate::metrics::Role::Notifier,
                    n.http.clone(),
                    secrets,
                    limiter,
                )?;
                Ok(PreparedNotifier {
                    cfg: n.clone(),
                    url,
                    endpoint: Arc::new(endpoint),
                })
            });
        match resolved {
            Ok(p) => out.push(p),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Rows of one event, source and target merged into batches, in order of their first row.
pub fn batches(rows: Vec<Notification>) -> Vec<(Batch, Vec<i64>)> {
    let mut out: Vec<(Batch, Vec<i64>)> = Vec::new();
    for n in rows {
        let p = &n.payload;
        let count = p.get("count").and_then(|c| c.as_u64()).unwrap_or(1);
        let runs: Vec<i64> = p
            .get("run_ids")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
            .unwrap_or_default();
        let offers: Vec<serde_json::Value> = p
            .get("offers")
            .and_then(|o| o.as_array())
            .cloned()
            .unwrap_or_default();
        let detail = p.get("state").is_some().then(|| p.clone());
        let key = (n.event, n.source.clone(), n.target.clone());
        match out
            .iter_mut()
            .find(|(b, _)| (b.event, b.source.clone(), b.target.clone()) == key)
        {
            Some((b, ids)) => {
                b.count += count;
                b.run_ids.extend(runs);
                let room = NOTIFY_SAMPLE.saturating_sub(b.offers.len());
                b.offers.extend(offers.into_iter().take(room));
                if detail.is_some() {
                    b.detail = detail;
                }
                ids.push(n.id);
            }
            None => out.push((
                Batch {
                    notifier: n.notifier.clone(),
                    event: n.event,
                    source: n.source.clone(),
                    target: n.target.clone(),
                    count,
                    run_ids: runs,
                    offers: offers.into_iter().take(NOTIFY_SAMPLE).collect(),
                    detail,
                    first_at: n.created_at.clone(),
                },
                vec![n.id],
            )),
        }
    }
    out
}

fn now() -> String {
    format_timestamp(Utc::now())
}

async fn db<T: Send + 'static>(
    path: &Location,
    busy: Duration,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let path = path.clone();
    tokio::task::spawn_blocking(move || f(&mut Store::open_existing(&path, busy)?))
        .await
        .expect("store task panicked")
}

/// Post one message; a 2xx is success.
async fn post(n: &PreparedNotifier, body: &serde_json::Value) -> Result<(), String> {
    let text = body.to_string();
    n.endpoint
        .call(
            || HttpRequest::post_json(n.url.clone(), text.clone()),
            |resp| {
                if resp.status.is_success() {
                    Ok(())
                } else {
                    Err(Failure::from_response(
                        resp,
                        format!(
                            "the webhook answered HTTP {}: {}",
                            resp.status.as_u16(),
                            resp.body_excerpt()
                        ),
                    ))
                }
            },
        )
        .await
        .map_err(|e| e.message)
}

/// Send `n`'s due notifications: every pending one when `all` (the end of `--once`), else
/// those older than its `batch_seconds` (the daemon), merged into one message per event,
/// source and target.
///
/// One process at a time sends a notifier's messages (lease `notify:NAME`, like a target's):
/// several daemons on one PostgreSQL database would otherwise each send the same rows.
pub async fn deliver(
    database: &crate::config::DatabaseConfig,
    n: &PreparedNotifier,
    all: bool,
) -> NotifyReport {
    let mut report = NotifyReport {
        notifier: n.cfg.rule.name.clone(),
        ..NotifyReport::default()
    };
    let (db_path, busy) = (&database.location, database.busy_timeout);
    let lease = format!("notify:{}", n.cfg.rule.name);
    let holder = crate::sync::holder_token();
    let (l, h, worker, ttl) = (
        lease.clone(),
        holder.clone(),
        database.worker.clone(),
        database.lease_ttl,
    );
    match db(db_path, busy, move |s| {
        s.acquire_lease(&l, &h, std::process::id(), &worker, ttl, Utc::now())
    })
    .await
    {
        Ok(crate::store::LeaseOutcome::Acquired { .. }) => {}
        Ok(crate::store::LeaseOutcome::Held(by)) => {
            tracing::debug!(notifier = %n.cfg.rule.name, holder = %by, "another process sends this notifier's messages; skipped");
            return report;
        }
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    }
    send_due(db_path, busy, n, all, &mut report).await;
    if let Err(e) = db(db_path, busy, move |s| s.release_lease(&lease, &holder)).await {
        tracing::warn!(notifier = %n.cfg.rule.name, error = %e, "could not release the notifier's lease (it expires)");
    }
    report
}

async fn send_due(
    db_path: &Location,
    busy: Duration,
    n: &PreparedNotifier,
    all: bool,
    report: &mut NotifyReport,
) {
    let before = if all {
        "9999".to_string()
    } else {
        let window = chrono::Duration::from_std(n.cfg.batch_seconds).unwrap_or_default();
        format_timestamp(Utc::now() - window)
    };
    let name = n.cfg.rule.name.clone();
    let rows = match db(db_path, busy, move |s| {
        s.due_notifications(&name, &before, &now())
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            report.error = Some(e.to_string());
            return;
        }
    };
    for (batch, ids) in batches(rows) {
        let result = post(n, &batch.body(n.cfg.format)).await;
        let outcome = match result {
            Ok(()) => {
                report.sent += 1;
                crate::metrics::notified(&n.cfg.rule.name, "sent");
                db(db_path, busy, move |s| s.notifications_sent(&ids, &now())).await
            }
            Err(e) => {
                let tried = max_attempts_of(db_path, busy, &ids).await.unwrap_or(0) + 1;
                let dead = tried >= i64::from(n.cfg.max_attempts);
                let wait = Duration::from_secs(2u64.saturating_pow(tried.clamp(1, 12) as u32));
                let next = format_timestamp(
                    Utc::now()
                        + chrono::Duration::from_std(wait.min(Duration::from_secs(3600)))
                            .unwrap_or_default(),
                );
                if dead {
                    report.dead += 1;
                    crate::metrics::notified(&n.cfg.rule.name, "dead");
                    tracing::error!(notifier = %n.cfg.rule.name, error = %e, "notification dead after its attempts; see `offersync inspect notifications --state dead`");
                } else {
                    report.failed += 1;
                    crate::metrics::notified(&n.cfg.rule.name, "failed");
                    tracing::warn!(notifier = %n.cfg.rule.name, error = %e, retry_in_s = wait.as_secs(), "notification failed; retried later");
                }
                db(db_path, busy, move |s| {
                    s.notifications_failed(&ids, &e, dead, &next)
                })
                .await
            }
        };
        if let Err(e) = outcome {
            report.error = Some(e.to_string());
            return;
        }
    }
}

/// The most attempts among `ids` (rows merged into one message share its fate).
async fn max_attempts_of(
    db_path: &Location,
    busy: Duration,
    ids: &[i64],
) -> Result<i64, StoreError> {
    let ids = ids.to_vec();
    db(db_path, busy, move |s| s.notification_attempts(&ids)).await
}

/// After a delivery pass to `target`: record its newly dead operations for the notifiers that
/// want them (blocking; a failure is logged, the operations stay unreported until next time).
pub fn record_dead(
    db_path: &Location,
    busy: Duration,
    target: &str,
    rules: &[crate::model::NotifyRule],
) {
    if rules.is_empty() {
        return;
    }
    if let Err(e) =
        Store::open_existing(db_path, busy).and_then(|mut s| s.report_dead(target, rules, &now()))
    {
        tracing::error!(target = %target, error = %e, "could not record dead-operation notifications");
    }
}

/// `offersync notify --test NAME`: one message saying the notifier works, sent now.
pub async fn send_test(n: &PreparedNotifier) -> Result<(), String> {
    let batch = Batch {
        notifier: n.cfg.rule.name.clone(),
        event: crate::model::NotifyEvent::OfferAdded,
        source: Some("test".into()),
        target: None,
        count: 0,
        run_ids: vec![],
        offers: vec![],
        detail: None,
        first_at: now(),
    };
    let mut body = batch.body(n.cfg.format);
    match n.cfg.format {
        crate::config::NotifyFormat::Slack => {
            body["text"] =
                format!("offersync: test message from notifier {}", n.cfg.rule.name).into();
            body["blocks"][0]["text"]["text"] = format!(
                "*offersync*: this is a test of notifier `{}`; it works.",
                n.cfg.rule.name
            )
            .into();
        }
        crate::config::NotifyFormat::Json => {
            body["event"] = "test".into();
        }
    }
    post(n, &body).await
}
