//! Sending one operation: a create becomes an update when the target already holds the offer,
//! the target's requests go out through the HTTP layer, and the answer is recorded: done (and
//! the offer planned again), unknown (`ambiguous`), refused as a whole, rejected, or failed with
//! a back-off.

use super::reconcile::replan_in;
use super::{db, later, lookup_delay, now, DeliveryReport, Outcome, Worker};
use crate::config::{FieldPolicy, TargetConfig};
use crate::http::{CallError, FailureClass};
use crate::push::{merged, OpKind, PushFields};
use crate::store::{OutboxOp, StoreError};
use crate::targets::TargetOp;
use chrono::{DateTime, Utc};

impl Worker<'_> {
    pub(super) async fn send(
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
        if let Some(stopped) = self.stopped_by_hand(&op).await {
            return match stopped {
                Ok(()) => {
                    self.detach_stopped(op).await?;
                    Ok((Outcome::Settled, None))
                }
                Err(e) => self.failed(op, e, report).await,
            };
        }
        let (created, failure) = self.call(&op).await;
        failpoint(&op, failure.is_none());
        match failure {
            None => {
                report.done += 1;
                self.landed(op, created).await?;
                Ok((Outcome::Settled, None))
            }
            Some(e) => self.failed(op, e, report).await,
        }
    }

    /// Before an update of an offer we hold live, on a target that can be read: `Some(Ok)`
    /// when the network's operators stopped it by hand (so it must not be touched), `Some(Err)`
    /// when it could not be read, `None` to go on.
    async fn stopped_by_hand(&self, op: &OutboxOp) -> Option<Result<(), CallError>> {
        let m = op.mapping.as_ref().filter(|m| m.active && !m.pending)?;
        if op.kind != OpKind::Update {
            return None;
        }
        let req = self.target.read(&m.target_offer_id)?;
        match self
            .endpoint
            .call(|| req.clone(), |r| self.target.interpret_read(r))
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        }
    }

    /// The target's operators stopped `op`'s offer by hand: drop `op` and detach the offer, so
    /// offersync never re-activates or edits it behind their back.
    async fn detach_stopped(&self, op: OutboxOp) -> Result<(), StoreError> {
        tracing::warn!(target_offer_id = op.mapping.as_ref().map_or("", |m| m.target_offer_id.as_str()), "the offer was stopped on the target by hand; it is detached and left alone (offersync attach resumes it)");
        db(self.store, move |s| {
            s.outbox_tx(|tx| {
                tx.delete_op(op.id)?;
                tx.detach(
                    &op.target,
                    &op.source,
                    &op.external_id,
                    "stopped on the target by its operators; offersync leaves it alone (offersync attach resumes it)",
                    &now(),
                )
                .map(|_| ())
            })
        })
        .await
    }

    /// The target's requests for `op`, in order, until one fails: the id a create got, and the
    /// failure if any.
    async fn call(&self, op: &OutboxOp) -> (Option<String>, Option<CallError>) {
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
        (created, failure)
    }

    /// `op` was delivered: record it and plan its offer again against what the target holds.
    async fn landed(&self, op: OutboxOp, created: Option<String>) -> Result<(), StoreError> {
        tracing::info!(target_offer_id = created.as_deref().unwrap_or(""), "pushed");
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
        Ok(())
    }

    /// `op` failed with `e`: record it by its class.
    async fn failed(
        &self,
        op: OutboxOp,
        e: CallError,
        report: &mut DeliveryReport,
    ) -> Result<(Outcome, Option<String>), StoreError> {
        let cfg = self.cfg;
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

/// Test-only: `OFFERSYNC_FAILPOINT=after_push_call` dies after any push call's answer,
/// `after_push_call:KIND` only after one of that kind (`after_push_call:activate`: a staged
/// offer's reveal), between the target's answer and the commit (crash reconciliation tests).
fn failpoint(op: &OutboxOp, answered: bool) {
    let failpoint = std::env::var("OFFERSYNC_FAILPOINT").unwrap_or_default();
    if answered
        && (failpoint == "after_push_call"
            || failpoint.strip_prefix("after_push_call:") == Some(op.kind.as_str()))
    {
        eprintln!("offersync: failpoint after_push_call reached; aborting");
        std::process::abort();
    }
}
