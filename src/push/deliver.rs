//! Delivery of one target's outbox: reconcile what a crash left in flight, then send the due
//! operations in order per offer, recording the target's answer in the transaction that marks
//! each operation done.

use crate::config::{FieldPolicy, TargetConfig};
use crate::http::{CallError, Endpoint, FailureClass};
use crate::model::format_timestamp;
use crate::push::{merged, OpKind, PushFields};
use crate::store::{LeaseOutcome, OutboxOp, Store, StoreError};
use crate::sync::Shutdown;
use crate::targets::{Target, TargetOp};
use chrono::Utc;
use std::sync::{Arc, Mutex};
use tracing::Instrument;

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub target: String,
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
    /// In-flight operations found after a crash and settled.
    pub reconciled: u64,
    /// Of those, creates retried without a way to check the target (possible duplicates).
    pub possible_duplicates: u64,
    /// Set when the delivery could not run (database unavailable).
    pub error: Option<String>,
    /// Set when another process was delivering to this target (who, since when).
    pub skipped: Option<String>,
}

impl DeliveryReport {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.failed == 0 && self.dead == 0
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

/// Deliver `cfg`'s outbox once: every operation due now is attempted once (with the HTTP
/// layer's retries inside).
/// Stops between operations once `stop` is set.
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
    let mut store = match Store::open(db_path, busy_timeout) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    // One deliverer per target across processes, so an operation found in flight always belongs
    // to a process that died (it is reconciled), never to one still sending it.
    let lease = format!("target:{}", cfg.name);
    let holder = crate::sync::holder_token();
    let host = crate::sync::hostname();
    let ttl = std::time::Duration::from_secs(900);
    match store.acquire_lease(&lease, &holder, std::process::id(), &host, ttl, Utc::now()) {
        Ok(LeaseOutcome::Acquired { .. }) => {}
        Ok(LeaseOutcome::Held(h)) => {
            tracing::warn!(target = %cfg.name, holder = %h, "another process is delivering to this target; skipped");
            report.skipped = Some(format!("being delivered by {h}"));
            return report;
        }
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    }
    let store = Arc::new(Mutex::new(store));
    let lease_ref = Lease {
        key: lease.clone(),
        holder: holder.clone(),
    };
    if let Err(e) = run(&store, cfg, target, endpoint, &lease_ref, stop, &mut report).await {
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

async fn run(
    store: &Db,
    cfg: &TargetConfig,
    target: Arc<dyn Target>,
    endpoint: Arc<Endpoint>,
    lease: &Lease,
    stop: &Shutdown,
    report: &mut DeliveryReport,
) -> Result<(), StoreError> {
    // A changed config (filters, ratio, templates...) re-plans every offer of the target.
    let fingerprint = cfg.plan_fingerprint();
    let name = cfg.name.clone();
    if db(store, move |s| s.target_plan_hash(&name))
        .await?
        .as_deref()
        != Some(fingerprint.as_str())
    {
        let c = cfg.clone();
        let waiting = db(store, move |s| s.replan_target(&c, &fingerprint, &now())).await?;
        tracing::info!(target = %cfg.name, waiting, "target planned against its config");
    }
    let name = cfg.name.clone();
    for op in db(store, move |s| s.in_flight_ops(&name)).await? {
        reconcile(store, target.as_ref(), &endpoint, op, report).await?;
    }
    while !stop.is_set() {
        let name = cfg.name.clone();
        let Some(op) = db(store, move |s| s.claim_next(&name, &now())).await? else {
            break;
        };
        let span = tracing::info_span!("push", target = %cfg.name, op = op.kind.as_str(), external_id = %op.external_id);
        send(store, cfg, target.as_ref(), &endpoint, op, report)
            .instrument(span)
            .await?;
        let (key, holder) = (lease.key.clone(), lease.holder.clone());
        db(store, move |s| s.heartbeat_lease(&key, &holder, &now())).await?;
    }
    Ok(())
}

/// An operation left in flight by a process that died during the call.
async fn reconcile(
    store: &Db,
    target: &dyn Target,
    endpoint: &Endpoint,
    op: OutboxOp,
    report: &mut DeliveryReport,
) -> Result<(), StoreError> {
    report.reconciled += 1;
    let is_create = op.kind == OpKind::Create && op.mapping.is_none();
    if !is_create {
        // Updates, pauses and activations are idempotent: send them again.
        return db(store, move |s| s.requeue_op(op.id, false)).await;
    }
    let external_ref = op.external_ref();
    let Some(req) = target.lookup(&external_ref) else {
        // No way to ask the target whether the create went through: retry it once, flagged.
        tracing::warn!(external_id = %op.external_id, "create interrupted by a crash; the target cannot be searched, so it is retried and flagged as a possible duplicate");
        report.possible_duplicates += 1;
        return db(store, move |s| s.requeue_op(op.id, true)).await;
    };
    match endpoint
        .call(
            || req.clone(),
            |r| target.interpret_lookup(&external_ref, r),
        )
        .await
    {
        Ok(Some(id)) => {
            tracing::info!(external_id = %op.external_id, target_offer_id = %id, "create interrupted by a crash had gone through; mapping recorded");
            db(store, move |s| s.complete_op(&op, Some(&id), 1, &now())).await
        }
        Ok(None) => db(store, move |s| s.requeue_op(op.id, false)).await,
        Err(e) => {
            tracing::warn!(error = %e.message, "could not look up an interrupted create; it stays queued");
            db(store, move |s| s.requeue_op(op.id, false)).await
        }
    }
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

async fn send(
    store: &Db,
    cfg: &TargetConfig,
    target: &dyn Target,
    endpoint: &Endpoint,
    mut op: OutboxOp,
    report: &mut DeliveryReport,
) -> Result<(), StoreError> {
    // A create is only sent when the target holds nothing for the offer; otherwise it becomes an
    // update of what changed.
    if op.kind == OpKind::Create {
        if let Some(m) = &op.mapping {
            op.kind = OpKind::Update;
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
    };
    let mut created = None;
    let mut attempts = 0;
    let mut failure: Option<CallError> = None;
    for (i, req) in target.requests(&top).into_iter().enumerate() {
        attempts += 1;
        match endpoint
            .call(|| req.clone(), |r| target.interpret(&top, i, r))
            .await
        {
            Ok(id) => created = created.or(id),
            Err(e) => {
                attempts += e.attempts.saturating_sub(1);
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() && std::env::var("OFFERSYNC_FAILPOINT").as_deref() == Ok("after_push_call")
    {
        // Test-only: die between the target's answer and the commit (crash reconciliation tests).
        eprintln!("offersync: failpoint after_push_call reached; aborting");
        std::process::abort();
    }
    match failure {
        None => {
            tracing::info!(target_offer_id = created.as_deref().unwrap_or(""), "pushed");
            report.done += 1;
            db(store, move |s| {
                s.complete_op(&op, created.as_deref(), attempts, &now())
            })
            .await
        }
        Some(e) => {
            let total = op.attempts as u32 + attempts;
            let dead = e.class == FailureClass::Permanent || total >= cfg.max_attempts;
            // Retried by the next delivery, no sooner than a minute per earlier failure.
            let wait = chrono::Duration::seconds(60 * i64::from(total.min(60)));
            let next = format_timestamp(Utc::now() + wait);
            if dead {
                report.dead += 1;
                tracing::warn!(error = %e.message, attempts = total, "push failed for good; see `offersync inspect pushes --state dead`");
            } else {
                report.failed += 1;
                tracing::warn!(error = %e.message, attempts = total, "push failed; it will be retried");
            }
            let message = e.message.clone();
            db(store, move |s| {
                s.fail_op(op.id, &message, attempts, dead, &next)
            })
            .await
        }
    }
}
