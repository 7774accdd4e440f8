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

use crate::config::{FieldPolicy, TargetConfig};
use crate::http::{CallError, Endpoint, FailureClass};
use crate::model::format_timestamp;
use crate::push::{merged, plan, OpKind, PushFields};
use crate::store::{LeaseOutcome, OutboxOp, OutboxTx, Store, StoreError, TargetHealth};
use crate::sync::Shutdown;
use crate::targets::{Target, TargetOp};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

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
    db_path: &std::path::Path,
    busy_timeout: std::time::Duration,
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
        let (path, lease, holder) = (db_path.to_path_buf(), lease.clone(), holder.clone());
        tokio::task::spawn_blocking(move || {
            let mut store = Store::open(&path, busy_timeout)?;
            let host = crate::sync::hostname();
            let ttl = std::time::Duration::from_secs(900);
            let outcome =
                store.acquire_lease(&lease, &holder, std::process::id(), &host, ttl, Utc::now())?;
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
                let wait = doubling(cfg.redelivery_interval, failures - BREAKER_AFTER + 1);
                let until = later(wait);
                tracing::warn!(target = %cfg.name, failures, wait_s = wait.as_secs(), error = last_error.as_deref().unwrap_or(""), "the target failed {failures} operations in a row; delivery pauses until {until}, then probes with one operation");
                report.paused_until = Some(until.clone());
                let (name, h) = (
                    cfg.name.clone(),
                    TargetHealth {
                        failures,
                        open_until: Some(until),
                        last_error: last_error.clone(),
                    },
                );
                db(self.store, move |s| s.set_target_health(&name, &h, &now())).await?;
                break;
            }
            let (key, holder) = (lease.key.clone(), lease.holder.clone());
            db(self.store, move |s| {
                s.heartbeat_lease(&key, &holder, &now())
            })
            .await?;
        }
        let name = cfg.name.clone();
        report.ambiguous =
            db(self.store, move |s| s.count_in_state(&name, "ambiguous")).await? as u64;
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
        if op.was == "ambiguous" {
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

    /// Plan `op`'s offer again from the mirror, in place of `op`; what is now planned for it.
    async fn replan(
        &self,
        op: OutboxOp,
        possible_duplicate: bool,
    ) -> Result<Option<OpKind>, StoreError> {
        let cfg = self.cfg.clone();
        db(self.store, move |s| {
            s.outbox_tx(|tx| {
                tx.delete_op(op.id)?;
                replan_in(
                    tx,
                    &cfg,
                    &op.source,
                    &op.external_id,
                    possible_duplicate,
                    &now(),
                )
            })
        })
        .await
    }

    /// A create whose outcome is unknown: look it up where the target can be searched, else
    /// plan it again (flagged: the target may hold a hidden orphan).
    async fn resolve(
        &self,
        op: OutboxOp,
        report: &mut DeliveryReport,
    ) -> Result<(Outcome, Option<String>), StoreError> {
        let external_ref = op.external_ref();
        let Some(req) = self.target.lookup(&external_ref) else {
            let external_id = op.external_id.clone();
            if self.replan(op, true).await? == Some(OpKind::Create) {
                tracing::warn!(external_id = %external_id, "a create's outcome is unknown and the target cannot be searched; it is sent again, flagged possible_duplicate (an orphan the first try may have left stays hidden from affiliates)");
                report.possible_duplicates += 1;
            } else {
                tracing::info!(external_id = %external_id, "a create's outcome is unknown and the offer is no longer wanted; nothing is sent (an orphan the first try may have left stays hidden from affiliates)");
            }
            return Ok((Outcome::Settled, None));
        };
        let found = self
            .endpoint
            .call(
                || req.clone(),
                |r| self.target.interpret_lookup(&external_ref, r),
            )
            .await;
        match found {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(external_id = %op.external_id, target_offer_id = %ids[0], "the create whose outcome was unknown had gone through; mapping recorded");
                for extra in &ids[1..] {
                    self.retire(&op, extra).await;
                }
                let mut op = op;
                op.kind = OpKind::Create;
                self.finish_create(op, ids[0].clone()).await?;
                report.done += 1;
                Ok((Outcome::Settled, None))
            }
            Ok(_) => {
                tracing::info!(external_id = %op.external_id, "the create whose outcome was unknown did not go through; planned again");
                self.replan(op, false).await?;
                Ok((Outcome::Settled, None))
            }
            Err(e) => {
                let (id, msg, next) = (op.id, e.message.clone(), later(self.op_wait(&op)));
                tracing::warn!(error = %e.message, "could not look up a create whose outcome is unknown; it stays unresolved");
                db(self.store, move |s| {
                    s.mark_ambiguous(id, &msg, &next, &now())
                })
                .await?;
                Ok((Outcome::TargetFailed, Some(e.message)))
            }
        }
    }

    /// Stop a duplicate found by a lookup (another copy of the offer carrying our reference).
    async fn retire(&self, op: &OutboxOp, target_offer_id: &str) {
        let none = PushFields::new();
        let external_ref = op.external_ref();
        let top = TargetOp {
            kind: OpKind::Pause,
            fields: &none,
            all: &none,
            target_offer_id: Some(target_offer_id),
            external_ref: &external_ref,
            hidden: false,
        };
        for (i, req) in self.target.requests(&top).into_iter().enumerate() {
            let r = self
                .endpoint
                .call(|| req.clone(), |resp| self.target.interpret(&top, i, resp))
                .await;
            match r {
                Ok(_) => {
                    tracing::warn!(external_id = %op.external_id, target_offer_id, "a duplicate of the offer was found on the target and paused")
                }
                Err(e) => {
                    tracing::error!(external_id = %op.external_id, target_offer_id, error = %e.message, "a duplicate of the offer was found on the target and could not be paused")
                }
            }
        }
    }

    /// Record a create that landed and plan its offer again in the same transaction: changes
    /// planned while it was in flight (a removal, an edit) follow it, and a staged offer is
    /// revealed if it is still wanted.
    async fn finish_create(&self, op: OutboxOp, id: String) -> Result<(), StoreError> {
        let (cfg, hidden) = (self.cfg.clone(), self.target.creates_hidden());
        db(self.store, move |s| {
            s.outbox_tx(|tx| {
                let now = now();
                tx.finish_op(&op, Some(&id), hidden, &now)?;
                replan_in(tx, &cfg, &op.source, &op.external_id, false, &now).map(|_| ())
            })
        })
        .await
    }

    /// How long a failed operation waits before the next pass tries it.
    fn op_wait(&self, op: &OutboxOp) -> Duration {
        doubling(self.cfg.redelivery_interval, op.attempts + 1)
    }

    async fn send(
        &self,
        mut op: OutboxOp,
        report: &mut DeliveryReport,
    ) -> Result<(Outcome, Option<String>), StoreError> {
        let cfg = self.cfg;
        // A create is only sent when the target holds nothing for the offer; otherwise it
        // becomes an update of what changed (or the reveal of a staged offer).
        if op.kind == OpKind::Create {
            if let Some(m) = &op.mapping {
                op.kind = if m.hidden {
                    OpKind::Activate
                } else {
                    OpKind::Update
                };
                op.fields = always_fields(cfg, &op.fields, &m.pushed);
            }
        }
        let pushed = op
            .mapping
            .as_ref()
            .map(|m| m.pushed.clone())
            .unwrap_or_default();
        let all = merged(pushed, &op.fields);
        let external_ref = op.external_ref();
        let top = TargetOp {
            kind: op.kind,
            fields: &op.fields,
            all: &all,
            target_offer_id: op.mapping.as_ref().map(|m| m.target_offer_id.as_str()),
            external_ref: &external_ref,
            hidden: op.mapping.as_ref().is_some_and(|m| m.hidden),
        };
        let mut created = None;
        let mut failure: Option<CallError> = None;
        for (i, req) in self.target.requests(&top).into_iter().enumerate() {
            match self
                .endpoint
                .call(|| req.clone(), |r| self.target.interpret(&top, i, r))
                .await
            {
                Ok(id) => created = created.or(id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // Test-only: `after_push_call` dies after any push call's answer, `after_push_call:KIND`
        // only after one of that kind (`after_push_call:activate`: a staged offer's reveal).
        let failpoint = std::env::var("OFFERSYNC_FAILPOINT").unwrap_or_default();
        if failure.is_none()
            && (failpoint == "after_push_call"
                || failpoint.strip_prefix("after_push_call:") == Some(op.kind.as_str()))
        {
            // Test-only: die between the target's answer and the commit (crash reconciliation tests).
            eprintln!("offersync: failpoint after_push_call reached; aborting");
            std::process::abort();
        }
        let Some(e) = failure else {
            tracing::info!(target_offer_id = created.as_deref().unwrap_or(""), "pushed");
            report.done += 1;
            if op.kind == OpKind::Create {
                let id = created.unwrap_or_default();
                self.finish_create(op, id).await?;
            } else {
                // Whatever was planned for the offer while this operation was in flight (or
                // before a crash left it in flight) was planned against the mapping as it was;
                // plan it again against what the target now holds.
                let cfg = self.cfg.clone();
                db(self.store, move |s| {
                    s.outbox_tx(|tx| {
                        let now = now();
                        tx.finish_op(&op, None, false, &now)?;
                        replan_in(tx, &cfg, &op.source, &op.external_id, false, &now).map(|_| ())
                    })
                })
                .await?;
            }
            return Ok((Outcome::Settled, None));
        };
        let message = e.message.clone();
        match e.class {
            FailureClass::Ambiguous => {
                let next = later(lookup_delay(cfg));
                tracing::warn!(error = %e.message, "the create's outcome is unknown; it will be reconciled, never resent blindly");
                let (id, m) = (op.id, message.clone());
                db(self.store, move |s| s.mark_ambiguous(id, &m, &next, &now())).await?;
                Ok((Outcome::TargetFailed, Some(message)))
            }
            FailureClass::Permanent if matches!(e.status, None | Some(401 | 403)) => {
                // The target refused us as a whole (credentials, IP allow-list, a redirect to
                // another origin, an answer too large): not this operation's fault, so no
                // attempt is counted; the breaker decides.
                tracing::error!(error = %e.message, "the target refused the request; check the target's base_url, key and allow-list");
                report.failed += 1;
                let m = message.clone();
                db(self.store, move |s| s.release_op(&op, &m, None)).await?;
                Ok((Outcome::TargetFailed, Some(message)))
            }
            FailureClass::Permanent => {
                tracing::warn!(error = %e.message, "push refused by the target; see `offersync inspect pushes --state dead`");
                report.dead += 1;
                let (id, m, next) = (op.id, message, now());
                db(self.store, move |s| s.fail_op(id, &m, true, &next, &now())).await?;
                Ok((Outcome::Rejected, None))
            }
            FailureClass::Transient | FailureClass::RateLimited => {
                let attempts = op.attempts + 1;
                let first = op
                    .first_failed_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now);
                let age = (Utc::now() - first).to_std().unwrap_or_default();
                let dead = attempts >= i64::from(cfg.http.max_attempts) && age >= cfg.dead_after;
                let wait = self.op_wait(&op);
                if dead {
                    report.dead += 1;
                    tracing::warn!(error = %e.message, attempts, "push failed for good; see `offersync inspect pushes --state dead`");
                } else {
                    report.failed += 1;
                    tracing::warn!(error = %e.message, attempts, retry_in_s = wait.as_secs(), "push failed; a later delivery retries it");
                }
                let (id, m, next) = (op.id, message.clone(), later(wait));
                db(self.store, move |s| s.fail_op(id, &m, dead, &next, &now())).await?;
                Ok((Outcome::TargetFailed, Some(message)))
            }
        }
    }
}

/// Plan the offer `source:external_id` for `cfg` against what the target holds (or will
/// hold), and write the result: the one rule, used when a create lands, when an unknown outcome
/// is resolved and when dead operations are requeued.
pub fn replan_in(
    tx: &OutboxTx<'_>,
    cfg: &TargetConfig,
    source: &str,
    external_id: &str,
    possible_duplicate: bool,
    now: &str,
) -> Result<Option<OpKind>, StoreError> {
    let op = match tx.offer(source, external_id)? {
        Some(offer) if cfg.sources.iter().any(|s| s == source) => {
            let m = tx.mapping(&cfg.name, source, external_id)?;
            plan(cfg, source, &offer, m.as_ref())
        }
        _ => None,
    };
    tx.enqueue(
        &cfg.name,
        source,
        external_id,
        op.as_ref(),
        possible_duplicate && op.as_ref().is_some_and(|o| o.kind == OpKind::Create),
        now,
    )?;
    Ok(op.map(|o| o.kind))
}

/// `offersync push --retry-dead`: every dead operation of `cfg` is planned again from the
/// mirror as it is now (a stale payload is never resent). Returns how many were requeued.
pub fn requeue_dead(store: &mut Store, cfg: &TargetConfig) -> Result<u64, StoreError> {
    let dead = store.dead_ops(Some(&cfg.name))?;
    let n = dead.len() as u64;
    for op in dead {
        store.outbox_tx(|tx| {
            tx.delete_op(op.id)?;
            replan_in(
                tx,
                cfg,
                &op.source,
                &op.external_id,
                op.possible_duplicate,
                &now(),
            )
        })?;
    }
    Ok(n)
}

/// Fields an update may carry: only `always` ones (never overwrite `once` fields).
fn always_fields(cfg: &TargetConfig, fields: &PushFields, pushed: &PushFields) -> PushFields {
    fields
        .iter()
        .filter(|(k, _)| {
            cfg.fields.get(*k).copied().unwrap_or(FieldPolicy::Always) == FieldPolicy::Always
        })
        .filter(|(k, v)| pushed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
