//! `push_outbox` and `target_offers`: planned operations written in the page transaction, one
//! pending operation per offer and target (a newer plan replaces it, which coalesces changes
//! that happen before delivery), claimed in order per offer, and the mapping written in the
//! transaction that marks an operation done.

use super::{Result, Store};
use crate::config::TargetConfig;
use crate::model::Offer;
use crate::push::{merged, plan, Mapping, OpKind, PlannedOp, PushFields};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

/// An operation from the outbox, with what the target held when it was claimed.
#[derive(Debug, Clone)]
pub struct OutboxOp {
    pub id: i64,
    pub target: String,
    pub source: String,
    pub external_id: String,
    pub kind: OpKind,
    pub fields: PushFields,
    pub attempts: i64,
    pub mapping: Option<Mapping>,
}

/// What delivering a target would do now: the first operations, and how many of each kind.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// `(source, external_id, operation)`, at most the limit asked for.
    pub shown: Vec<(String, String, PlannedOp)>,
    pub counts: std::collections::BTreeMap<&'static str, u64>,
}

impl OutboxOp {
    /// `source:external_id`, how targets that can store it know the offer.
    pub fn external_ref(&self) -> String {
        format!("{}:{}", self.source, self.external_id)
    }
}

fn mapping(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    Ok(tx
        .prepare_cached(
            "SELECT target_offer_id, state, pushed_payload FROM target_offers
             WHERE target = ?1 AND source = ?2 AND external_id = ?3",
        )?
        .query_row(params![target, source, external_id], |r| {
            Ok(Mapping {
                target_offer_id: r.get(0)?,
                active: r.get::<_, String>(1)? == "active",
                pushed: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
            })
        })
        .optional()?)
}

/// Plan `offer` for every target and write (or replace, or drop) its pending operation.
pub(super) fn plan_offer(
    tx: &Transaction<'_>,
    targets: &[TargetConfig],
    source: &str,
    offer: &Offer,
    now: &str,
) -> Result<()> {
    for t in targets {
        let m = mapping(tx, &t.name, source, &offer.external_id)?;
        let op = plan(t, source, offer, m.as_ref());
        enqueue(tx, &t.name, source, &offer.external_id, op.as_ref(), now)?;
    }
    Ok(())
}

/// Replace the offer's pending (or failed) operation for `target` with `op`, or drop it when
/// nothing is to be done any more. Operations in flight or dead are left alone.
fn enqueue(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
    op: Option<&PlannedOp>,
    now: &str,
) -> Result<()> {
    let waiting: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM push_outbox WHERE target = ?1 AND source = ?2 AND external_id = ?3
             AND state IN ('pending', 'failed') ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![target, source, external_id], |r| r.get(0))
        .optional()?;
    match (op, waiting) {
        (None, None) => {}
        (None, Some(id)) => {
            tx.prepare_cached("DELETE FROM push_outbox WHERE id = ?1")?
                .execute([id])?;
        }
        (Some(op), Some(id)) => {
            tx.prepare_cached(
                "UPDATE push_outbox SET op = ?2, payload = ?3, state = 'pending', next_attempt_at = NULL,
                        last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, op.kind.as_str(), serde_json::to_string(&op.fields).unwrap_or_default()])?;
        }
        (Some(op), None) => {
            tx.prepare_cached(
                "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            )?
            .execute(params![
                target,
                source,
                external_id,
                op.kind.as_str(),
                serde_json::to_string(&op.fields).unwrap_or_default(),
                now
            ])?;
        }
    }
    Ok(())
}

/// Before offers matching `missing_sql` are marked removed: drop their waiting operations and
/// pause what each target holds live. `missing_sql` is a `FROM ... WHERE` over `offer_rows o`
/// with the parameters `?2` (source) and `?3` (grace).
pub(super) fn pause_removed(
    tx: &Transaction<'_>,
    targets: &[String],
    source: &str,
    grace: u32,
    missing_sql: &str,
    now: &str,
) -> Result<()> {
    for t in targets {
        tx.execute(
            &format!(
                "DELETE FROM push_outbox WHERE target = ?1 AND state IN ('pending', 'failed')
                 AND (source, external_id) IN (SELECT o.source, o.external_id {missing_sql})"
            ),
            params![t, source, grace],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at)
                 SELECT ?1, o.source, o.external_id, 'pause', '{{}}', 'pending', ?4 {missing_sql}
                   AND EXISTS (SELECT 1 FROM target_offers m WHERE m.target = ?1 AND m.source = o.source
                               AND m.external_id = o.external_id AND m.state = 'active')"
            ),
            params![t, source, grace, now],
        )?;
    }
    Ok(())
}

impl Store {
    /// The hash of the target config the target was last planned with.
    pub fn target_plan_hash(&self, target: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT config_hash FROM target_plans WHERE target = ?1",
                [target],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Plan every offer of `target`'s sources again (its config changed), in chunks so memory
    /// stays bounded, then remember the config hash. Returns the operations now waiting.
    pub fn replan_target(
        &mut self,
        target: &TargetConfig,
        config_hash: &str,
        now: &str,
    ) -> Result<u64> {
        let mut last_id = 0i64;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut batch = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, source, external_id FROM offer_rows WHERE id > ?1 ORDER BY id LIMIT 500",
                )?;
                let rows = stmt.query_map([last_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                for row in rows {
                    batch.push(row?);
                }
            }
            let Some(&(id, _, _)) = batch.last() else {
                tx.execute(
                    "INSERT OR REPLACE INTO target_plans (target, config_hash, planned_at) VALUES (?1, ?2, ?3)",
                    params![target.name, config_hash, now],
                )?;
                tx.commit()?;
                break;
            };
            last_id = id;
            for (_, source, external_id) in
                batch.iter().filter(|(_, s, _)| target.sources.contains(s))
            {
                if let Some(o) = super::offers::offer_in(&tx, source, external_id)? {
                    plan_offer(&tx, std::slice::from_ref(target), source, &o, now)?;
                }
            }
            tx.commit()?;
        }
        Ok(self.conn.query_row(
            "SELECT count(*) FROM push_outbox WHERE target = ?1 AND state IN ('pending', 'failed')",
            [&target.name],
            |r| r.get(0),
        )?)
    }

    /// What delivering `target` would do now: every offer of its sources planned against what
    /// the target holds. Reads only.
    /// Walks the mirror in chunks (memory stays bounded); keeps the first `limit` operations and
    /// counts all of them by kind.
    pub fn preview_target(&self, target: &TargetConfig, limit: usize) -> Result<Preview> {
        let mut shown = Vec::new();
        let mut counts = std::collections::BTreeMap::new();
        let mut last_id = 0i64;
        loop {
            let batch: Vec<(i64, String, String)> = self
                .conn
                .prepare_cached("SELECT id, source, external_id FROM offer_rows WHERE id > ?1 ORDER BY id LIMIT 500")?
                .query_map([last_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let Some(&(id, _, _)) = batch.last() else {
                break;
            };
            last_id = id;
            for (_, source, external_id) in batch
                .into_iter()
                .filter(|(_, s, _)| target.sources.contains(s))
            {
                let Some(offer) = super::offers::offer_in(&self.conn, &source, &external_id)?
                else {
                    continue;
                };
                let m = mapping(&self.conn, &target.name, &source, &external_id)?;
                if let Some(op) = plan(target, &source, &offer, m.as_ref()) {
                    *counts.entry(op.kind.as_str()).or_insert(0) += 1;
                    if shown.len() < limit {
                        shown.push((source, external_id, op));
                    }
                }
            }
        }
        Ok(Preview { shown, counts })
    }

    /// Operations left `in_flight` by a process that died mid-call.
    pub fn in_flight_ops(&self, target: &str) -> Result<Vec<OutboxOp>> {
        let ids: Vec<i64> = self
            .conn
            .prepare(
                "SELECT id FROM push_outbox WHERE target = ?1 AND state = 'in_flight' ORDER BY id",
            )?
            .query_map([target], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .filter_map(|id| self.outbox_op(id).transpose())
            .collect()
    }

    fn outbox_op(&self, id: i64) -> Result<Option<OutboxOp>> {
        let row = self
            .conn
            .query_row(
                "SELECT target, source, external_id, op, payload, attempts FROM push_outbox WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                },
            )
            .optional()?;
        let Some((target, source, external_id, op, payload, attempts)) = row else {
            return Ok(None);
        };
        let m = mapping(&self.conn, &target, &source, &external_id)?;
        Ok(Some(OutboxOp {
            id,
            kind: OpKind::parse(&op).unwrap_or(OpKind::Update),
            fields: serde_json::from_str(&payload).unwrap_or_default(),
            target,
            source,
            external_id,
            attempts,
            mapping: m,
        }))
    }

    /// Claim the next due operation of `target` (the oldest one of an offer with nothing earlier
    /// waiting or in flight) and mark it in flight.
    pub fn claim_next(&mut self, target: &str, now: &str) -> Result<Option<OutboxOp>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT p.id FROM push_outbox p
                 WHERE p.target = ?1 AND p.state IN ('pending', 'failed')
                   AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2)
                   AND NOT EXISTS (SELECT 1 FROM push_outbox q WHERE q.target = p.target AND q.source = p.source
                                   AND q.external_id = p.external_id AND q.id < p.id
                                   AND q.state IN ('pending', 'failed', 'in_flight'))
                 ORDER BY p.id LIMIT 1",
                params![target, now],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE push_outbox SET state = 'in_flight' WHERE id = ?1",
            [id],
        )?;
        tx.commit()?;
        self.outbox_op(id)
    }

    /// The operation succeeded: mark it done and record what the target now holds, together.
    pub fn complete_op(
        &mut self,
        op: &OutboxOp,
        target_offer_id: Option<&str>,
        attempts: u32,
        now: &str,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE push_outbox SET state = 'done', done_at = ?2, attempts = attempts + ?3, last_error = NULL WHERE id = ?1",
            params![op.id, now, attempts],
        )?;
        let pushed = op
            .mapping
            .as_ref()
            .map(|m| m.pushed.clone())
            .unwrap_or_default();
        let (state, payload) = match op.kind {
            OpKind::Pause => ("paused", pushed),
            OpKind::Create | OpKind::Update | OpKind::Activate => {
                ("active", merged(pushed, &op.fields))
            }
        };
        let id = target_offer_id
            .map(String::from)
            .or_else(|| op.mapping.as_ref().map(|m| m.target_offer_id.clone()))
            .unwrap_or_default();
        tx.execute(
            "INSERT INTO target_offers (target, source, external_id, target_offer_id, pushed_hash, pushed_at, state, pushed_payload)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7)
             ON CONFLICT (target, source, external_id) DO UPDATE SET
                 target_offer_id = excluded.target_offer_id, pushed_at = excluded.pushed_at,
                 state = excluded.state, pushed_payload = excluded.pushed_payload",
            params![op.target, op.source, op.external_id, id, now, state, serde_json::to_string(&payload).unwrap_or_default()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The operation failed: back to `failed` (retried from `next_attempt_at`) or `dead`.
    pub fn fail_op(
        &mut self,
        op_id: i64,
        error: &str,
        attempts: u32,
        dead: bool,
        next_attempt_at: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE push_outbox SET state = ?2, last_error = ?3, attempts = attempts + ?4, next_attempt_at = ?5 WHERE id = ?1",
            params![op_id, if dead { "dead" } else { "failed" }, error, attempts, next_attempt_at],
        )?;
        Ok(())
    }

    /// An operation found in flight after a crash goes back to the queue (flagged when the
    /// target may now hold a duplicate).
    pub fn requeue_op(&mut self, op_id: i64, possible_duplicate: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE push_outbox SET state = 'pending', possible_duplicate = possible_duplicate OR ?2 WHERE id = ?1",
            params![op_id, possible_duplicate],
        )?;
        Ok(())
    }

    /// `offersync push --retry-dead`: dead operations go back to the queue.
    pub fn retry_dead(&mut self, target: Option<&str>) -> Result<u64> {
        Ok(self.conn.execute(
            "UPDATE push_outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL
             WHERE state = 'dead' AND (?1 IS NULL OR target = ?1)",
            [target],
        )? as u64)
    }

    /// Outbox counts of a target by state.
    pub fn outbox_counts(&self, target: &str) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM push_outbox WHERE target = ?1 GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
