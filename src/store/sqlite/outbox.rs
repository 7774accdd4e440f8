//! The outbox for delivery: `push_outbox` operations claimed in order per offer, settled after a
//! crash, failed, released or dead; `target_offers` written in the transaction that marks an
//! operation done; `target_state`, each target's delivery breaker. Planning writes the
//! operations (`planning.rs`).
//!
//! A create that is in flight, or whose outcome is unknown (`ambiguous`), counts as a *pending
//! mapping*: changes that arrive meanwhile (a pause for a removal, an update) are planned
//! against it and delivered after it, in order, instead of being lost.

use super::planning::{effective_mapping, enqueue, real_mapping};
use super::{Result, Sqlite};
use crate::model::{Mapping, Offer, OpKind, OutboxState, PlannedOp, PushFields};
use rusqlite::{params, OptionalExtension, Transaction};

/// An operation from the outbox, with what the target held when it was claimed.
#[derive(Debug, Clone)]
pub struct OutboxOp {
    pub id: i64,
    pub target: String,
    pub source: String,
    pub external_id: String,
    pub kind: OpKind,
    pub fields: PushFields,
    /// Delivery passes that tried it (each pass counts once, whatever the HTTP retries).
    pub attempts: i64,
    /// The state it was claimed from: pending, failed or ambiguous.
    pub was: OutboxState,
    pub possible_duplicate: bool,
    /// When it first failed (an operation dies only after a minimum age).
    pub first_failed_at: Option<String>,
    /// What the target holds of the offer (never a pending mapping).
    pub mapping: Option<Mapping>,
}

/// The delivery breaker of a target: consecutive failed operations, and until when delivery is
/// paused after too many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHealth {
    pub failures: i64,
    pub open_until: Option<String>,
    pub last_error: Option<String>,
}

impl OutboxOp {
    /// `source:external_id`, how targets that can store it know the offer.
    pub fn external_ref(&self) -> String {
        format!("{}:{}", self.source, self.external_id)
    }
}

/// The outbox inside one transaction, for the push layer: read the offer and its mapping, plan
/// with them, write the result, all or nothing.
pub struct SqliteOutboxTx<'a> {
    pub(super) tx: &'a Transaction<'a>,
}

impl SqliteOutboxTx<'_> {
    /// The canonical offer as stored (removed ones included).
    pub fn offer(&self, source: &str, external_id: &str) -> Result<Option<Offer>> {
        super::offers::offer_in(self.tx, source, external_id)
    }

    /// The mapping to plan against (a pending one while a create is in flight or unresolved).
    pub fn mapping(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Mapping>> {
        effective_mapping(self.tx, target, source, external_id)
    }

    /// What an operator decided for the offer on `target`, if anything.
    pub fn decision(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<crate::model::Decision>> {
        super::planning::decision(self.tx, target, source, external_id)
    }

    /// Write (or replace, or drop) the offer's waiting operation; see [`Store`]'s planning.
    pub fn enqueue(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
        op: Option<&PlannedOp>,
        possible_duplicate: bool,
        now: &str,
    ) -> Result<()> {
        enqueue(
            self.tx,
            target,
            source,
            external_id,
            op,
            possible_duplicate,
            now,
        )
    }

    /// Drop an operation (it was re-planned).
    pub fn delete_op(&self, id: i64) -> Result<()> {
        self.tx
            .execute("DELETE FROM push_outbox WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The operation succeeded: mark it done and record what the target now holds, together.
    /// `target_offer_id` is the new id after a create; `hidden` that the create left the offer
    /// invisible to affiliates (Offerit's staged create).
    pub fn finish_op(
        &self,
        op: &OutboxOp,
        target_offer_id: Option<&str>,
        hidden: bool,
        now: &str,
    ) -> Result<()> {
        self.tx.execute(
            "UPDATE push_outbox SET state = 'done', done_at = ?2, attempts = attempts + 1, last_error = NULL
             WHERE id = ?1",
            params![op.id, now],
        )?;
        let super::super::Held {
            state,
            target_offer_id: id,
            payload,
            hash,
        } = super::super::held_after(op, target_offer_id, hidden);
        self.tx.execute(
            "INSERT INTO target_offers (target, source, external_id, target_offer_id, pushed_hash, pushed_at, state, pushed_payload)
             VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, ?7)
             ON CONFLICT (target, source, external_id) DO UPDATE SET
                 target_offer_id = excluded.target_offer_id, pushed_at = excluded.pushed_at,
                 state = excluded.state, pushed_payload = excluded.pushed_payload,
                 pushed_hash = excluded.pushed_hash",
            params![op.target, op.source, op.external_id, id, now, state, payload, hash],
        )?;
        Ok(())
    }
}

fn outbox_op(conn: &rusqlite::Connection, id: i64, was: Option<&str>) -> Result<Option<OutboxOp>> {
    let row = conn
        .query_row(
            "SELECT target, source, external_id, op, payload, attempts, state, possible_duplicate,
                    first_failed_at
             FROM push_outbox WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((target, source, external_id, op, payload, attempts, state, dup, first_failed_at)) =
        row
    else {
        return Ok(None);
    };
    let m = real_mapping(conn, &target, &source, &external_id)?;
    Ok(Some(OutboxOp {
        id,
        kind: op.parse::<OpKind>().unwrap_or(OpKind::Update),
        fields: serde_json::from_str(&payload).unwrap_or_default(),
        target,
        source,
        external_id,
        attempts,
        was: was
            .unwrap_or(&state)
            .parse()
            .unwrap_or(OutboxState::Pending),
        possible_duplicate: dup,
        first_failed_at,
        mapping: m,
    }))
}

impl Sqlite {
    /// Run `f` on the outbox in one write transaction.
    pub fn outbox_tx<T>(&mut self, f: impl FnOnce(&SqliteOutboxTx<'_>) -> Result<T>) -> Result<T> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let out = f(&SqliteOutboxTx { tx: &tx })?;
        tx.commit()?;
        Ok(out)
    }

    /// Operations a process left `in_flight` when it died mid-call (one deliverer per target
    /// holds the lease, so none belongs to a live process): a create without a mapping may or
    /// may not have reached the target and becomes `ambiguous`; everything else is idempotent
    /// and goes back to `pending`. Returns (ambiguous, requeued).
    pub fn settle_in_flight(&mut self, target: &str, now: &str) -> Result<(u64, u64)> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let ambiguous = tx.execute(
            "UPDATE push_outbox SET state = 'ambiguous', next_attempt_at = ?2,
                    last_error = 'interrupted: the process died while the create was being sent'
             WHERE target = ?1 AND state = 'in_flight' AND op = 'create'
               AND NOT EXISTS (SELECT 1 FROM target_offers m WHERE m.target = push_outbox.target
                               AND m.source = push_outbox.source AND m.external_id = push_outbox.external_id)",
            params![target, now],
        )?;
        let requeued = tx.execute(
            "UPDATE push_outbox SET state = 'pending' WHERE target = ?1 AND state = 'in_flight'",
            [target],
        )?;
        tx.commit()?;
        Ok((ambiguous as u64, requeued as u64))
    }

    /// Claim the next due operation of `target` (the oldest one of an offer with nothing earlier
    /// waiting, unresolved or in flight) and mark it in flight.
    pub fn claim_next(&mut self, target: &str, now: &str) -> Result<Option<OutboxOp>> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let claimed: Option<(i64, String)> = tx
            .query_row(
                "SELECT p.id, p.state FROM push_outbox p
                 WHERE p.target = ?1 AND p.state IN ('pending', 'failed', 'ambiguous')
                   AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= ?2)
                   AND NOT EXISTS (SELECT 1 FROM push_outbox q WHERE q.target = p.target AND q.source = p.source
                                   AND q.external_id = p.external_id AND q.id < p.id
                                   AND q.state IN ('pending', 'failed', 'in_flight', 'ambiguous'))
                 ORDER BY p.id LIMIT 1",
                params![target, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, was)) = claimed else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE push_outbox SET state = 'in_flight' WHERE id = ?1",
            [id],
        )?;
        let op = outbox_op(&tx, id, Some(&was))?;
        tx.commit()?;
        Ok(op)
    }

    /// When the next unresolved create of `target` is due, if one waits.
    pub fn next_ambiguous_due(&self, target: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT min(coalesce(next_attempt_at, '')) FROM push_outbox WHERE target = ?1 AND state = 'ambiguous'",
            [target],
            |r| r.get(0),
        )?)
    }

    /// The operation failed this pass: `failed` (retried from `next_attempt_at`) or `dead`. The
    /// pass counts as one attempt.
    pub fn fail_op(
        &mut self,
        op_id: i64,
        error: &str,
        dead: bool,
        next_attempt_at: &str,
        now: &str,
    ) -> Result<()> {
        let _turn = self.turn();
        self.conn.execute(
            "UPDATE push_outbox SET state = ?2, last_error = ?3, attempts = attempts + 1, next_attempt_at = ?4,
                    first_failed_at = coalesce(first_failed_at, ?5)
             WHERE id = ?1",
            params![
                op_id,
                if dead { OutboxState::Dead } else { OutboxState::Failed }.as_str(),
                error,
                next_attempt_at,
                now
            ],
        )?;
        Ok(())
    }

    /// The create's outcome is unknown: `ambiguous` until it is looked up (or re-planned) at
    /// `next_attempt_at`. Counts as one attempt.
    pub fn mark_ambiguous(
        &mut self,
        op_id: i64,
        error: &str,
        next_attempt_at: &str,
        now: &str,
    ) -> Result<()> {
        let _turn = self.turn();
        self.conn.execute(
            "UPDATE push_outbox SET state = 'ambiguous', last_error = ?2, attempts = attempts + 1,
                    next_attempt_at = ?3, first_failed_at = coalesce(first_failed_at, ?4)
             WHERE id = ?1",
            params![op_id, error, next_attempt_at, now],
        )?;
        Ok(())
    }

    /// Put a claimed operation back as it was, without counting an attempt (the target refused
    /// us as a whole, or delivery stopped): it is retried from `next_attempt_at`.
    pub fn release_op(
        &mut self,
        op: &OutboxOp,
        error: &str,
        next_attempt_at: Option<&str>,
    ) -> Result<()> {
        let state = match op.was {
            OutboxState::Ambiguous | OutboxState::Failed => op.was,
            _ => OutboxState::Pending,
        }
        .as_str();
        let _turn = self.turn();
        self.conn.execute(
            "UPDATE push_outbox SET state = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?1",
            params![op.id, state, error, next_attempt_at],
        )?;
        Ok(())
    }

    /// Dead operations of `target` (or of every target), oldest first.
    pub fn dead_ops(&self, target: Option<&str>) -> Result<Vec<OutboxOp>> {
        let ids: Vec<i64> = self
            .conn
            .prepare(
                "SELECT id FROM push_outbox WHERE state = 'dead' AND (?1 IS NULL OR target = ?1) ORDER BY id",
            )?
            .query_map([target], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .filter_map(|id| outbox_op(&self.conn, id, None).transpose())
            .collect()
    }

    /// How many operations of `target` are in `state`.
    pub fn count_in_state(&self, target: &str, state: OutboxState) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM push_outbox WHERE target = ?1 AND state = ?2",
            [target, state.as_str()],
            |r| r.get(0),
        )?)
    }

    /// How many operations are dead, for `target` or every target.
    pub fn dead_count(&self, target: Option<&str>) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM push_outbox WHERE state = 'dead' AND (?1 IS NULL OR target = ?1)",
            [target],
            |r| r.get(0),
        )?)
    }

    /// Outbox counts of a target by state.
    pub fn outbox_counts(&self, target: &str) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM push_outbox WHERE target = ?1 GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The delivery breaker of `target`.
    pub fn target_health(&self, target: &str) -> Result<TargetHealth> {
        Ok(self
            .conn
            .query_row(
                "SELECT failures, open_until, last_error FROM target_state WHERE target = ?1",
                [target],
                |r| {
                    Ok(TargetHealth {
                        failures: r.get(0)?,
                        open_until: r.get(1)?,
                        last_error: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    pub fn set_target_health(
        &mut self,
        target: &str,
        health: &TargetHealth,
        now: &str,
    ) -> Result<()> {
        let _turn = self.turn();
        self.conn.execute(
            "INSERT INTO target_state (target, failures, open_until, last_error, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (target) DO UPDATE SET failures = excluded.failures,
                 open_until = excluded.open_until, last_error = excluded.last_error,
                 updated_at = excluded.updated_at",
            params![
                target,
                health.failures,
                health.open_until,
                health.last_error,
                now
            ],
        )?;
        Ok(())
    }
}
