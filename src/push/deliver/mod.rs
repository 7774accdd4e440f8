//! Delivery of one target's outbox: settle what a crash left in flight, then send the due
//! operations in order per offer, recording the target's answer in the transaction that marks
//! each operation done.
//!
//! The guarantees (README "Push to targets"):
//! - **A create is never sent twice blindly.** The HTTP layer does not retry a create once it
//!   may have reached the target; a create whose outcome is unknown (timeout, connection lost,
//!   5xx, a success without an id, a crash) becomes `ambiguous`. Targets that can be searched
//!   (Affise) are asked, after a delay, whether it went through; targets that cannot (Offerit)
//!   create offers hidden from affiliates and reveal them only once the new id is recorded, so
//!   a lost answer leaves at most an invisible orphan, and the create is planned again
//!   (flagged `possible_duplicate`).
//! - **Changes follow creates.** An operation that lands (a create, and any other) re-plans its
//!   offer in the same transaction, so a removal or an edit that arrived while it was in flight,
//!   or while a crash left it in flight, is delivered after it.
//! - **Outages are survived.** A pass counts one attempt per operation whatever the HTTP
//!   retries; failed operations back off across passes; an operation dies only after
//!   `max_attempts` *and* `dead_after_seconds`; a target that fails operation after
//!   operation trips a breaker that pauses its delivery and probes it later.

use crate::config::TargetConfig;
use crate::http::Endpoint;
use crate::model::format_timestamp;
use crate::push::OpKind;
use crate::store::{LeaseOutcome, OutboxOp, Store, StoreError, TargetHealth};
use crate::sync::Shutdown;
use crate::targets::Target;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

mod reconcile;
mod send;

pub use reconcile::{replan_in, requeue_dead};

/// Consecutive failed operations that open a target's breaker.
pub const BREAKER_AFTER: i64 = 3;
/// How many times one pass waits for unresolved creates to come due before it ends.
const MAX_LINGERS: u32 = 10;
/// The longest a failed operation or an open breaker waits before the next try.
pub const MAX_REDELIVERY_WAIT: Duration = Duration::from_secs(3600);

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub target: String,
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
    /// Creates left with an unknown outcome (looked up or planned again by a later pass).
    pub ambiguous: u64,
    /// In-flight operations found after a crash and settled.
    pub reconciled: u64,
    /// Creates planned again after an unknown outcome on a target that cannot be searched.
    pub possible_duplicates: u64,
    /// Set when the delivery could not run (database unavailable, lease lost).
    pub error: Option<String>,
    /// Set when another process was delivering to this target (who, since when).
    pub skipped: Option<String>,
    /// Set when the target's breaker paused delivery: until when.
    pub paused_until: Option<String>,
}

impl DeliveryReport {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.failed == 0
            && self.dead == 0
            && self.ambiguous == 0
            && self.paused_until.is_none()
    }
}

type Db = Arc<Mutex<Store>>;

async fn db<T: Send + 'static>(
    store: &Db,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(&mut s.lock().unwrap()))
        .await
        .expect("store task panicked")
}

fn now() -> String {
    format_timestamp(Utc::now())
}

fn later(wait: Duration) -> String {
    format_timestamp(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
}

/// `base × 2^(n-1)`, at most [`MAX_REDELIVERY_WAIT`].
fn doubling(base: Duration, n: i64) -> Duration {
    let factor = 1u32 << n.clamp(1, 20).saturating_sub(1);
    base.saturating_mul(factor).min(MAX_REDELIVERY_WAIT)
}

/// How long an unknown outcome is left to settle on the target before it is looked up.
fn lookup_delay(cfg: &TargetConfig) -> Duration {
    cfg.http
        .timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Deliver `cfg`'s outbox once: every operation due now is attempted once (with the HTTP
/// layer's retries inside). Stops between operations once `stop` is set.
pub async fn deliver(
    database: &crate::config::DatabaseConfig,
    cfg: &TargetConfig,
    target: Arc<dyn Target>,
    endpoint: Arc<Endpoint>,
    stop: &Shutdown,
) -> DeliveryReport {
    let mut report = DeliveryReport {
        target: cfg.name.clone(),
        ..Default::default()
    };
    // One deliverer per target across processes, so an operation found in flight always belongs
    // to a process that died (it is settled), never to one still sending it.
    let lease = format!("target:{}", cfg.name);
    let holder = crate::sync::holder_token();
    let opened = {
        let (db, lease, holder) = (database.clone(), lease.clone(), holder.clone());
        tokio::task::spawn_blocking(move || {
            let mut store = Store::open(&db.location, db.busy_timeout)?;
            let outcome = store.acquire_lease(
                &lease,
                &holder,
                std::process::id(),
                &db.worker,
                db.lease_ttl,
                Utc::now(),
            )?;
            Ok::<_, StoreError>((store, outcome))
        })
        .await
        .expect("store task panicked")
    };
    let store = match opened {
        Ok((store, LeaseOutcome::Acquired { .. })) => store,
        Ok((_, LeaseOutcome::Held(h))) => {
            tracing::warn!(target = %cfg.name, holder = %h, "another process is delivering to this target; skipped");
            report.skipped = Some(format!("being delivered by {h}"));
            return report;
        }
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let store = Arc::new(Mutex::new(store));
    let lease_ref = Lease {
        key: lease.clone(),
        holder: holder.clone(),
    };
    let worker = Worker {
        store: &store,
        cfg,
        target: target.as_ref(),
        endpoint: &endpoint,
    };
    if let Err(e) = worker.run(&lease_ref, stop, &mut report).await {
        if matches!(e, StoreError::LeaseLost { .. }) {
            tracing::error!(target = %cfg.name, "the delivery lease was taken over by another process; this delivery stops");
        }
        report.error = Some(e.to_string());
    }
    let _ = db(&store, move |s| s.release_lease(&lease, &holder)).await;
    report
}

/// The delivery lease this process holds, refreshed as operations go out.
struct Lease {
    key: String,
    holder: String,
}

/// How one operation ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Delivered, or planned again (nothing left to send for it now).
    Settled,
    /// The operation itself was refused (a 400 for this offer): the target works.
    Rejected,
    /// The target failed (transport, 5xx, rate limit, unknown outcome, refused credentials).
    TargetFailed,
}

struct Worker<'a> {
    store: &'a Db,
    cfg: &'a TargetConfig,
    target: &'a dyn Target,
    endpoint: &'a Arc<Endpoint>,
}

impl Worker<'_> {
    async fn run(
        &self,
        lease: &Lease,
        stop: &Shutdown,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let cfg = self.cfg;
        self.replan_if_config_changed().await?;
        let name = cfg.name.clone();
        let health = db(self.store, move |s| s.target_health(&name)).await?;
        if let Some(until) = health.open_until.clone().filter(|u| *u > now()) {
            tracing::warn!(target = %cfg.name, until = %until, failures = health.failures, last_error = health.last_error.as_deref().unwrap_or(""), "delivery paused: the target failed too often; it will be probed then");
            report.paused_until = Some(until);
            return Ok(());
        }
        let name = cfg.name.clone();
        let (ambiguous, requeued) =
            db(self.store, move |s| s.settle_in_flight(&name, &now())).await?;
        if ambiguous + requeued > 0 {
            tracing::warn!(target = %cfg.name, ambiguous, requeued, "operations left in flight by a process that died were settled");
        }
        report.reconciled += ambiguous + requeued;
        let mut failures = health.failures;
        let mut last_error = health.last_error.clone();
        // Waits for unresolved creates that come due, at most this many per pass.
        let mut lingers = 0;
        while !stop.is_set() {
            let name = cfg.name.clone();
            let Some(op) = db(self.store, move |s| s.claim_next(&name, &now())).await? else {
                if lingers < MAX_LINGERS && self.linger(stop).await? {
                    lingers += 1;
                    continue;
                }
                break;
            };
            let span = tracing::info_span!("push", target = %cfg.name, op = op.kind.as_str(), external_id = %op.external_id);
            let (outcome, error) = self.process(op, report).instrument(span).await?;
            match outcome {
                Outcome::Settled | Outcome::Rejected => failures = 0,
                Outcome::TargetFailed => {
                    failures += 1;
                    last_error = error;
                }
            }
            if failures >= BREAKER_AFTER {
                report.paused_until = Some(self.trip_breaker(failures, &last_error).await?);
                break;
            }
            let (key, holder) = (lease.key.clone(), lease.holder.clone());
            db(self.store, move |s| {
                s.heartbeat_lease(&key, &holder, &now())
            })
            .await?;
        }
        let name = cfg.name.clone();
        report.ambiguous = db(self.store, move |s| {
            s.count_in_state(&name, crate::model::OutboxState::Ambiguous)
        })
        .await? as u64;
        if failures != health.failures && failures < BREAKER_AFTER {
            let (name, h) = (
                cfg.name.clone(),
                TargetHealth {
                    failures,
                    open_until: None,
                    last_error: if failures == 0 { None } else { last_error },
                },
            );
            db(self.store, move |s| s.set_target_health(&name, &h, &now())).await?;
        }
        Ok(())
    }

    /// A changed config (filters, ratio, templates...) re-plans every offer of the target.
    async fn replan_if_config_changed(&self) -> Result<(), StoreError> {
        let cfg = self.cfg;
        // A changed config (filters, ratio, templates...) re-plans every offer of the target.
        let fingerprint = cfg.plan_fingerprint();
        let name = cfg.name.clone();
        if db(self.store, move |s| s.target_plan_hash(&name))
            .await?
            .as_deref()
            != Some(fingerprint.as_str())
        {
            let c = cfg.clone();
            let waiting = db(self.store, move |s| {
                s.replan_target(
                    &super::Targets(std::slice::from_ref(&c)),
                    &fingerprint,
                    &now(),
                )
            })
            .await?;
            tracing::info!(target = %cfg.name, waiting, "target planned against its config");
        }
        Ok(())
    }

    /// Too many failures in a row: pause delivery (doubling per trip) and say until when.
    async fn trip_breaker(
        &self,
        failures: i64,
        last_error: &Option<String>,
    ) -> Result<String, StoreError> {
        let cfg = self.cfg;
        let wait = doubling(cfg.redelivery_interval, failures - BREAKER_AFTER + 1);
        let until = later(wait);
        tracing::warn!(target = %cfg.name, failures, wait_s = wait.as_secs(), error = last_error.as_deref().unwrap_or(""), "the target failed {failures} operations in a row; delivery pauses until {until}, then probes with one operation");
        let (name, h) = (
            cfg.name.clone(),
            TargetHealth {
                failures,
                open_until: Some(until.clone()),
                last_error: last_error.clone(),
            },
        );
        db(self.store, move |s| s.set_target_health(&name, &h, &now())).await?;
        Ok(until)
    }

    /// With nothing due, wait for an unresolved create that becomes due within the lookup
    /// delay (so `--once` settles the creates it left ambiguous). Returns whether to go on.
    async fn linger(&self, stop: &Shutdown) -> Result<bool, StoreError> {
        let name = self.cfg.name.clone();
        let Some(due) = db(self.store, move |s| s.next_ambiguous_due(&name)).await? else {
            return Ok(false);
        };
        let due = DateTime::parse_from_rfc3339(&due)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        if wait > lookup_delay(self.cfg) + Duration::from_secs(1) {
            return Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait + Duration::from_millis(50)) => Ok(true),
            _ = stop.wait() => Ok(false),
        }
    }

    async fn process(
        &self,
        op: OutboxOp,
        report: &mut DeliveryReport,
    ) -> Result<(Outcome, Option<String>), StoreError> {
        if op.was == crate::model::OutboxState::Ambiguous {
            return self.resolve(op, report).await;
        }
        if op.kind != OpKind::Create && op.mapping.is_none() {
            // Planned against a create that never landed: plan the offer again as it is.
            self.replan(op, false).await?;
            return Ok((Outcome::Settled, None));
        }
        if op.kind == OpKind::Create && op.mapping.is_none() && op.possible_duplicate {
            tracing::warn!(external_id = %op.external_id, "sending a create again after an unknown outcome (flagged possible_duplicate)");
        }
        self.send(op, report).await
    }

    /// How long a failed operation waits before the next pass tries it.
    fn op_wait(&self, op: &OutboxOp) -> Duration {
        doubling(self.cfg.redelivery_interval, op.attempts + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_waits_double_and_are_capped() {
        let base = Duration::from_secs(60);
        assert_eq!(doubling(base, 1), Duration::from_secs(60));
        assert_eq!(doubling(base, 2), Duration::from_secs(120));
        assert_eq!(doubling(base, 4), Duration::from_secs(480));
        assert_eq!(doubling(base, 30), MAX_REDELIVERY_WAIT);
        assert_eq!(doubling(base, -5), Duration::from_secs(60));
    }
}
