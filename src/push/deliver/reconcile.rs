//! Settling what a send could not: creates whose outcome is unknown (looked up where the target
//! can be searched, else planned again and flagged), duplicates a lookup found, and re-planning
//! an offer against what the target now holds, the one rule used when a create lands, when an
//! unknown outcome is resolved and when dead operations are requeued.

use super::{db, later, now, DeliveryReport, Outcome, Worker};
use crate::config::TargetConfig;
use crate::push::{plan, OpKind, PushFields};
use crate::store::{OutboxOp, OutboxTx, Store, StoreError};
use crate::targets::TargetOp;

impl Worker<'_> {
    /// Plan `op`'s offer again from the mirror, in place of `op`; what is now planned for it.
    pub(super) async fn replan(
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
    pub(super) async fn resolve(
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
    pub(super) async fn finish_create(&self, op: OutboxOp, id: String) -> Result<(), StoreError> {
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
}

/// Plan the offer `source:external_id` for `cfg` against what the target holds (or will
/// hold), and write the result: the one rule, used when a create lands, when an unknown outcome
/// is resolved and when dead operations are requeued.
pub fn replan_in(
    tx: &mut OutboxTx<'_, '_>,
    cfg: &TargetConfig,
    source: &str,
    external_id: &str,
    possible_duplicate: bool,
    now: &str,
) -> Result<Option<OpKind>, StoreError> {
    let op = match tx.offer(source, external_id)? {
        Some(offer) if cfg.sources.iter().any(|s| s == source) => {
            let m = tx.mapping(&cfg.name, source, external_id)?;
            let d = tx.decision(&cfg.name, source, external_id)?;
            plan(cfg, source, &offer, m.as_ref(), d.as_ref())
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
