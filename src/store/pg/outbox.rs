//! The delivery outbox on PostgreSQL: the twin of `../outbox.rs`. `push_outbox` operations
//! claimed in order per offer, settled after a crash, failed, released or dead; `target_offers`
//! written in the transaction that marks an operation done; `target_state`, each target's
//! delivery breaker.
//!
//! One deliverer per target holds the `target:<name>` lease, as on SQLite. `claim_next` is safe
//! on its own as well, should two deliverers ever race: it is one statement that picks the
//! oldest due operation of an offer with nothing earlier waiting, unresolved or in flight, locks
//! it `FOR UPDATE SKIP LOCKED` and marks it in flight. A row another transaction holds (a claim
//! in progress, a page writer replacing the waiting operation) is skipped, never waited for, and
//! never claimed twice: the second claimer sees it in flight. The later operations of a skipped
//! offer are not claimable either, since the "nothing earlier" test reads the earlier row
//! whether it is locked or not, so an offer's order holds.

use super::planning::{decision, effective_mapping, enqueue, offer_in};
use super::Pg;
use crate::model::{Decision, Mapping, Offer, OpKind, OutboxState, PlannedOp};
use crate::store::{OutboxOp, Result, TargetHealth};
use postgres::types::{ToSql, Type};

type P<'a> = (&'a (dyn ToSql + Sync), Type);

/// The outbox inside one transaction, for the push layer: read the offer and its mapping, plan
/// with them, write the result, all or nothing. The PostgreSQL side of the facade's
/// `OutboxTx`; committed by [`Pg::outbox_tx`] when its closure returns `Ok`.
pub struct PgOutboxTx<'a> {
    pub(crate) tx: postgres::Transaction<'a>,
}

impl PgOutboxTx<'_> {
    /// The canonical offer as stored (removed ones included).
    pub fn offer(&mut self, source: &str, external_id: &str) -> Result<Option<Offer>> {
        offer_in(&mut self.tx, source, external_id)
    }

    /// The mapping to plan against (a pending one while a create is in flight or unresolved).
    pub fn mapping(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Mapping>> {
        effective_mapping(&mut self.tx, target, source, external_id)
    }

    /// What an operator decided for the offer on `target`, if anything.
    pub fn decision(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Decision>> {
        decision(&mut self.tx, target, source, external_id)
    }

    /// Write (or replace, or drop) the offer's waiting operation; see the planning module.
    pub fn enqueue(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
        op: Option<&PlannedOp>,
        possible_duplicate: bool,
        now: &str,
    ) -> Result<()> {
        enqueue(
            &mut self.tx,
            target,
            source,
            external_id,
            op,
            possible_duplicate,
            now,
        )
    }

    /// Drop an operation (it was re-planned).
    pub fn delete_op(&mut self, id: i64) -> Result<()> {
        self.tx.execute_typed(
            "DELETE FROM push_outbox WHERE id = $1",
            &[(&id, Type::INT8)],
        )?;
        Ok(())
    }

    /// The operation succeeded: mark it done and record what the target now holds, together.
    /// `target_offer_id` is the new id after a create; `hidden` that the create left the offer
    /// invisible to affiliates (Offerit's staged create).
    pub fn finish_op(
        &mut self,
        op: &OutboxOp,
        target_offer_id: Option<&str>,
        hidden: bool,
        now: &str,
    ) -> Result<()> {
        self.tx.execute_typed(
            "UPDATE push_outbox SET state = 'done', done_at = $2, attempts = attempts + 1, last_error = NULL
             WHERE id = $1",
            &[(&op.id, Type::INT8), (&now, Type::TEXT)],
        )?;
        let super::super::Held {
            state,
            target_offer_id: id,
            payload,
            hash,
        } = super::super::held_after(op, target_offer_id, hidden);
        let params: [P<'_>; 8] = [
            (&op.target, Type::TEXT),
            (&op.source, Type::TEXT),
            (&op.external_id, Type::TEXT),
            (&id, Type::TEXT),
            (&now, Type::TEXT),
            (&state, Type::TEXT),
            (&payload, Type::TEXT),
            (&hash, Type::TEXT),
        ];
        self.tx.execute_typed(
            "INSERT INTO target_offers (target, source, external_id, target_offer_id, pushed_hash, pushed_at, state, pushed_payload)
             VALUES ($1, $2, $3, $4, $8, $5, $6, $7::jsonb)
             ON CONFLICT (target, source, external_id) DO UPDATE SET
                 target_offer_id = excluded.target_offer_id, pushed_at = excluded.pushed_at,
                 state = excluded.state, pushed_payload = excluded.pushed_payload,
                 pushed_hash = excluded.pushed_hash",
            &params,
        )?;
        Ok(())
    }
}

/// The columns [`op_from_row`] reads, over `push_outbox` as `p` (or a `RETURNING` of it) and
/// `target_offers` as `m` (left-joined on the offer); `was` is the state it was claimed from.
const OP_COLUMNS: &str =
    "p.id, p.target, p.source, p.external_id, p.op, p.payload::text, p.attempts, \
    p.was, p.possible_duplicate, p.first_failed_at, \
    m.target_offer_id, m.state, m.pushed_payload::text, m.detached_at IS NOT NULL";

fn op_from_row(r: &postgres::Row) -> Result<OutboxOp> {
    let mapping = r
        .try_get::<_, Option<String>>(10)?
        .map(|target_offer_id| -> Result<Mapping> {
            let state: String = r.try_get(11)?;
            Ok(Mapping {
                target_offer_id,
                active: state == "active",
                hidden: state == "hidden",
                pending: false,
                pushed: r
                    .try_get::<_, Option<String>>(12)?
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
                detached: r.try_get(13)?,
            })
        })
        .transpose()?;
    Ok(OutboxOp {
        id: r.try_get(0)?,
        target: r.try_get(1)?,
        source: r.try_get(2)?,
        external_id: r.try_get(3)?,
        kind: r
            .try_get::<_, String>(4)?
            .parse::<OpKind>()
            .unwrap_or(OpKind::Update),
        fields: serde_json::from_str(&r.try_get::<_, String>(5)?).unwrap_or_default(),
        attempts: r.try_get(6)?,
        was: r
            .try_get::<_, String>(7)?
            .parse()
            .unwrap_or(OutboxState::Pending),
        possible_duplicate: r.try_get(8)?,
        first_failed_at: r.try_get(9)?,
        mapping,
    })
}

impl Pg {
    /// Run `f` on the outbox in one transaction, committed when `f` returns `Ok` (rolled back
    /// otherwise).
    pub fn outbox_tx<T>(&mut self, f: impl FnOnce(&mut PgOutboxTx<'_>) -> Result<T>) -> Result<T> {
        let mut otx = PgOutboxTx {
            tx: self.client.get_mut().transaction()?,
        };
        let out = f(&mut otx)?;
        otx.tx.commit()?;
        Ok(out)
    }

    /// Operations a process left `in_flight` when it died mid-call (one deliverer per target
    /// holds the lease, so none belongs to a live process): a create without a mapping may or
    /// may not have reached the target and becomes `ambiguous`; everything else is idempotent
    /// and goes back to `pending`. Returns (ambiguous, requeued).
    pub fn settle_in_flight(&mut self, target: &str, now: &str) -> Result<(u64, u64)> {
        let mut tx = self.client.get_mut().transaction()?;
        let ambiguous = tx.execute_typed(
            "UPDATE push_outbox SET state = 'ambiguous', next_attempt_at = $2,
                    last_error = 'interrupted: the process died while the create was being sent'
             WHERE target = $1 AND state = 'in_flight' AND op = 'create'
               AND NOT EXISTS (SELECT 1 FROM target_offers m WHERE m.target = push_outbox.target
                               AND m.source = push_outbox.source AND m.external_id = push_outbox.external_id)",
            &[(&target, Type::TEXT), (&now, Type::TEXT)],
        )?;
        let requeued = tx.execute_typed(
            "UPDATE push_outbox SET state = 'pending' WHERE target = $1 AND state = 'in_flight'",
            &[(&target, Type::TEXT)],
        )?;
        tx.commit()?;
        Ok((ambiguous, requeued))
    }

    /// Claim the next due operation of `target` (the oldest one of an offer with nothing earlier
    /// waiting, unresolved or in flight) and mark it in flight. One statement: the row is
    /// locked `FOR UPDATE SKIP LOCKED` (see the module's note), and what the target holds of
    /// the offer is read with it.
    pub fn claim_next(&mut self, target: &str, now: &str) -> Result<Option<OutboxOp>> {
        let row = self.client.get_mut().query_typed_opt(
            &format!(
                "WITH c AS (
                     SELECT p.id, p.state FROM push_outbox p
                     WHERE p.target = $1 AND p.state IN ('pending', 'failed', 'ambiguous')
                       AND (p.next_attempt_at IS NULL OR p.next_attempt_at <= $2)
                       AND NOT EXISTS (SELECT 1 FROM push_outbox q WHERE q.target = p.target
                                       AND q.source = p.source AND q.external_id = p.external_id
                                       AND q.id < p.id
                                       AND q.state IN ('pending', 'failed', 'in_flight', 'ambiguous'))
                     ORDER BY p.id LIMIT 1
                     FOR UPDATE OF p SKIP LOCKED
                 ), p AS (
                     UPDATE push_outbox o SET state = 'in_flight' FROM c WHERE o.id = c.id
                     RETURNING o.id, o.target, o.source, o.external_id, o.op, o.payload, o.attempts,
                               c.state AS was, o.possible_duplicate, o.first_failed_at
                 )
                 SELECT {OP_COLUMNS} FROM p LEFT JOIN target_offers m
                   ON m.target = p.target AND m.source = p.source AND m.external_id = p.external_id"
            ),
            &[(&target, Type::TEXT), (&now, Type::TEXT)],
        )?;
        row.as_ref().map(op_from_row).transpose()
    }

    /// When the next unresolved create of `target` is due, if one waits.
    pub fn next_ambiguous_due(&self, target: &str) -> Result<Option<String>> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_one(
            "SELECT min(coalesce(next_attempt_at, '')) FROM push_outbox
             WHERE target = $1 AND state = 'ambiguous'",
            &[(&target, Type::TEXT)],
        )?
        .get(0))
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
        let state = if dead {
            OutboxState::Dead
        } else {
            OutboxState::Failed
        }
        .as_str();
        self.client.get_mut().execute_typed(
            "UPDATE push_outbox SET state = $2, last_error = $3, attempts = attempts + 1, next_attempt_at = $4,
                    first_failed_at = coalesce(first_failed_at, $5)
             WHERE id = $1",
            &[
                (&op_id, Type::INT8),
                (&state, Type::TEXT),
                (&error, Type::TEXT),
                (&next_attempt_at, Type::TEXT),
                (&now, Type::TEXT),
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
        self.client.get_mut().execute_typed(
            "UPDATE push_outbox SET state = 'ambiguous', last_error = $2, attempts = attempts + 1,
                    next_attempt_at = $3, first_failed_at = coalesce(first_failed_at, $4)
             WHERE id = $1",
            &[
                (&op_id, Type::INT8),
                (&error, Type::TEXT),
                (&next_attempt_at, Type::TEXT),
                (&now, Type::TEXT),
            ],
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
        self.client.get_mut().execute_typed(
            "UPDATE push_outbox SET state = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1",
            &[
                (&op.id, Type::INT8),
                (&state, Type::TEXT),
                (&error, Type::TEXT),
                (&next_attempt_at, Type::TEXT),
            ],
        )?;
        Ok(())
    }

    /// Dead operations of `target` (or of every target), oldest first.
    pub fn dead_ops(&self, target: Option<&str>) -> Result<Vec<OutboxOp>> {
        let mut c = self.client.borrow_mut();
        let rows = c.query_typed(
            &format!(
                "SELECT {OP_COLUMNS}
                 FROM (SELECT *, state AS was FROM push_outbox
                       WHERE state = 'dead' AND ($1::text IS NULL OR target = $1)) p
                 LEFT JOIN target_offers m
                   ON m.target = p.target AND m.source = p.source AND m.external_id = p.external_id
                 ORDER BY p.id"
            ),
            &[(&target, Type::TEXT)],
        )?;
        rows.iter().map(op_from_row).collect()
    }

    /// How many operations of `target` are in `state`.
    pub fn count_in_state(&self, target: &str, state: OutboxState) -> Result<i64> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_one(
            "SELECT count(*) FROM push_outbox WHERE target = $1 AND state = $2",
            &[(&target, Type::TEXT), (&state.as_str(), Type::TEXT)],
        )?
        .get(0))
    }

    /// How many operations are dead, for `target` or every target.
    pub fn dead_count(&self, target: Option<&str>) -> Result<i64> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_one(
            "SELECT count(*) FROM push_outbox WHERE state = 'dead' AND ($1::text IS NULL OR target = $1)",
            &[(&target, Type::TEXT)],
        )?
        .get(0))
    }

    /// Outbox counts of a target by state.
    pub fn outbox_counts(&self, target: &str) -> Result<Vec<(String, i64)>> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed(
            "SELECT state, count(*) FROM push_outbox WHERE target = $1 GROUP BY state ORDER BY state",
            &[(&target, Type::TEXT)],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    /// The delivery breaker of `target`.
    pub fn target_health(&self, target: &str) -> Result<TargetHealth> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_opt(
            "SELECT failures, open_until, last_error FROM target_state WHERE target = $1",
            &[(&target, Type::TEXT)],
        )?
        .map(|r| TargetHealth {
            failures: r.get(0),
            open_until: r.get(1),
            last_error: r.get(2),
        })
        .unwrap_or_default())
    }

    pub fn set_target_health(
        &mut self,
        target: &str,
        health: &TargetHealth,
        now: &str,
    ) -> Result<()> {
        self.client.get_mut().execute_typed(
            "INSERT INTO target_state (target, failures, open_until, last_error, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (target) DO UPDATE SET failures = excluded.failures,
                 open_until = excluded.open_until, last_error = excluded.last_error,
                 updated_at = excluded.updated_at",
            &[
                (&target, Type::TEXT),
                (&health.failures, Type::INT8),
                (&health.open_until, Type::TEXT),
                (&health.last_error, Type::TEXT),
                (&now, Type::TEXT),
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::planning::testkit::*;
    use super::*;
    use crate::store::{Store, StoreError};
    use serde_json::{json, Value};

    const NOW: &str = "2024-01-02T00:00:00Z";
    const LATER: &str = "2024-01-03T00:00:00Z";

    /// The delivery verbs both backends have, so one walk runs on both.
    trait Deliver {
        fn settle(&mut self) -> (u64, u64);
        fn claim(&mut self, target: &str) -> Option<OutboxOp>;
        fn finish(&mut self, op: &OutboxOp, id: Option<&str>, hidden: bool);
        fn fail(&mut self, op: &OutboxOp, dead: bool);
        fn ambiguous(&mut self, op: &OutboxOp);
        fn release(&mut self, op: &OutboxOp);
        fn mappings(&mut self) -> Vec<(String, String, String, String, Value, Option<String>)>;
    }

    impl Deliver for Pg {
        fn settle(&mut self) -> (u64, u64) {
            self.settle_in_flight("t", NOW).unwrap()
        }
        fn claim(&mut self, target: &str) -> Option<OutboxOp> {
            self.claim_next(target, NOW).unwrap()
        }
        fn finish(&mut self, op: &OutboxOp, id: Option<&str>, hidden: bool) {
            self.outbox_tx(|o| o.finish_op(op, id, hidden, NOW))
                .unwrap()
        }
        fn fail(&mut self, op: &OutboxOp, dead: bool) {
            self.fail_op(op.id, "boom", dead, LATER, NOW).unwrap()
        }
        fn ambiguous(&mut self, op: &OutboxOp) {
            self.mark_ambiguous(op.id, "unknown", LATER, NOW).unwrap()
        }
        fn release(&mut self, op: &OutboxOp) {
            self.release_op(op, "refused", None).unwrap()
        }
        fn mappings(&mut self) -> Vec<(String, String, String, String, Value, Option<String>)> {
            self.client
                .get_mut()
                .query(
                    "SELECT target, external_id, target_offer_id, state, pushed_payload::text, pushed_hash
                     FROM target_offers ORDER BY target, external_id",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        serde_json::from_str(r.get::<_, &str>(4)).unwrap(),
                        r.get(5),
                    )
                })
                .collect()
        }
    }

    impl Deliver for Store {
        fn settle(&mut self) -> (u64, u64) {
            self.settle_in_flight("t", NOW).unwrap()
        }
        fn claim(&mut self, target: &str) -> Option<OutboxOp> {
            self.claim_next(target, NOW).unwrap()
        }
        fn finish(&mut self, op: &OutboxOp, id: Option<&str>, hidden: bool) {
            self.outbox_tx(|o| o.finish_op(op, id, hidden, NOW))
                .unwrap()
        }
        fn fail(&mut self, op: &OutboxOp, dead: bool) {
            self.fail_op(op.id, "boom", dead, LATER, NOW).unwrap()
        }
        fn ambiguous(&mut self, op: &OutboxOp) {
            self.mark_ambiguous(op.id, "unknown", LATER, NOW).unwrap()
        }
        fn release(&mut self, op: &OutboxOp) {
            self.release_op(op, "refused", None).unwrap()
        }
        fn mappings(&mut self) -> Vec<(String, String, String, String, Value, Option<String>)> {
            self.conn()
                .prepare(
                    "SELECT target, external_id, target_offer_id, state, pushed_payload, pushed_hash
                     FROM target_offers ORDER BY target, external_id",
                )
                .unwrap()
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        serde_json::from_str(&r.get::<_, String>(4)?).unwrap(),
                        r.get(5)?,
                    ))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }
    }

    /// A queue with every case the claim rules distinguish (written with `$`-free SQL both
    /// backends run).
    const QUEUE: &str = r#"
        INSERT INTO target_offers (target, source, external_id, target_offer_id, state, pushed_payload)
        VALUES ('t', 's', 'C', 'c1', 'active', '{"title": "C", "payout": 1}'),
               ('t', 's', 'E', 'e1', 'active', '{"title": "E"}'),
               ('t', 's', 'G', 'g1', 'active', '{"title": "G"}');
        INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at, next_attempt_at)
        VALUES ('t', 's', 'A', 'create', '{"title": "A", "payout": 1}', 'pending', 'x', NULL),
               ('t', 's', 'A', 'update', '{"payout": 2}', 'pending', 'x', NULL),
               ('t', 's', 'B', 'create', '{"title": "B"}', 'pending', 'x', NULL),
               ('t', 's', 'C', 'update', '{"payout": 3, "title": null}', 'pending', 'x', NULL),
               ('t', 's', 'D', 'create', '{"title": "D"}', 'in_flight', 'x', NULL),
               ('t', 's', 'D', 'update', '{"title": "D2"}', 'pending', 'x', NULL),
               ('t', 's', 'E', 'pause', '{}', 'in_flight', 'x', NULL),
               ('u', 's', 'A', 'create', '{"title": "A"}', 'pending', 'x', NULL),
               ('t', 's', 'F', 'create', '{"title": "F"}', 'pending', 'x', '2099-01-01T00:00:00Z'),
               ('t', 's', 'G', 'update', '{"title": "G2"}', 'done', 'x', NULL),
               ('t', 's', 'G', 'pause', '{}', 'dead', 'x', NULL),
               ('t', 's', 'G', 'activate', '{}', 'pending', 'x', NULL),
               ('t', 's', 'H', 'create', '{"title": "H"}', 'pending', 'x', NULL);
    "#;

    /// Deliver target `t` until nothing is due, deciding each outcome by the offer; returns
    /// what was claimed, in order: (external_id, op, was, has mapping).
    fn walk(b: &mut dyn Deliver) -> Vec<(String, String, String, bool)> {
        assert_eq!(
            b.settle(),
            (1, 1),
            "D's create is ambiguous, E's pause requeued"
        );
        let mut seen = Vec::new();
        let mut h_tries = 0;
        while let Some(op) = b.claim("t") {
            seen.push((
                op.external_id.clone(),
                op.kind.as_str().to_string(),
                op.was.as_str().to_string(),
                op.mapping.is_some(),
            ));
            match (op.external_id.as_str(), op.kind) {
                ("A", OpKind::Create) => b.finish(&op, Some("a1"), false),
                ("B", _) => b.fail(&op, false),
                ("D", OpKind::Create) => b.ambiguous(&op),
                ("H", _) if h_tries == 0 => {
                    h_tries += 1;
                    b.release(&op)
                }
                ("H", _) => b.finish(&op, Some("h1"), true),
                _ => b.finish(&op, None, false),
            }
        }
        seen
    }

    #[test]
    fn a_delivery_walk_claims_in_order_per_offer_and_ends_as_on_sqlite() {
        let (mut pg, _d, mut lite) = fresh_pair();
        both(&mut pg, &lite, QUEUE);
        let on_pg = walk(&mut pg);
        let on_lite = walk(&mut lite);
        assert_eq!(on_pg, on_lite);
        let order: Vec<(&str, &str, &str)> = on_pg
            .iter()
            .map(|(e, k, w, _)| (e.as_str(), k.as_str(), w.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("A", "create", "pending"),
                // A's update was not claimable while its create was in flight; now it is.
                ("A", "update", "pending"),
                ("B", "create", "pending"),
                ("C", "update", "pending"),
                // The create left in flight was settled ambiguous; its update waits behind it.
                ("D", "create", "ambiguous"),
                ("E", "pause", "pending"),
                ("G", "activate", "pending"),
                ("H", "create", "pending"),
                // Released as it was, claimed again.
                ("H", "create", "pending"),
            ],
            "{on_pg:?}"
        );
        // A's update was claimed with the mapping its create just wrote.
        assert!(on_pg[1].3 && !on_pg[0].3);
        assert_eq!(pg_outbox(&mut pg), lite_outbox(&lite));
        let (m, n) = (pg.mappings(), lite.mappings());
        assert_eq!(m, n, "the same holdings, and the same fingerprints");
        let get = |id: &str| m.iter().find(|r| r.0 == "t" && r.1 == id).unwrap().clone();
        assert_eq!(get("A").4, json!({"title": "A", "payout": 2}));
        assert_eq!((get("A").2.as_str(), get("A").3.as_str()), ("a1", "active"));
        // A null field is dropped from what the target holds.
        assert_eq!(get("C").4, json!({"payout": 3}));
        assert_eq!(get("E").3, "paused");
        assert_eq!(get("E").4, json!({"title": "E"}));
        assert_eq!((get("H").2.as_str(), get("H").3.as_str()), ("h1", "hidden"));
        // Counts and reads over the end state.
        assert_eq!(pg.count_in_state("t", OutboxState::Ambiguous).unwrap(), 1);
        assert_eq!(pg.next_ambiguous_due("t").unwrap().as_deref(), Some(LATER));
        assert_eq!(pg.next_ambiguous_due("u").unwrap(), None);
        assert_eq!(
            pg.outbox_counts("t").unwrap(),
            lite.outbox_counts("t").unwrap()
        );
        let b: Vec<_> = pg_outbox(&mut pg)
            .into_iter()
            .filter(|r| r.2 == "B")
            .collect();
        assert_eq!((b[0].5.as_str(), b[0].8), ("failed", 1));
        let h: Vec<_> = pg_outbox(&mut pg)
            .into_iter()
            .filter(|r| r.2 == "H")
            .collect();
        assert_eq!(h[0].8, 1, "a release counts no attempt");
    }

    #[test]
    fn failures_keep_their_first_time_and_dead_ops_are_listed_with_their_mapping() {
        let (mut pg, _d, mut lite) = fresh_pair();
        both(&mut pg, &lite, QUEUE);
        for b in [&mut pg as &mut dyn Deliver, &mut lite] {
            b.settle();
        }
        let op = pg.claim_next("t", NOW).unwrap().unwrap();
        pg.fail_op(op.id, "first", false, NOW, "2024-01-01T00:00:00Z")
            .unwrap();
        // Due again at once (`next_attempt_at` = now): claimed from `failed`.
        let again = pg.claim_next("t", NOW).unwrap().unwrap();
        assert_eq!((again.id, again.was), (op.id, OutboxState::Failed));
        assert_eq!(again.attempts, 1);
        assert_eq!(
            again.first_failed_at.as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        pg.fail_op(op.id, "second", true, NOW, NOW).unwrap();
        let dead = pg.dead_ops(Some("t")).unwrap();
        assert_eq!(dead.len(), 2);
        assert_eq!(dead[0].external_id, "A");
        assert_eq!(dead[0].was, OutboxState::Dead);
        assert_eq!(
            dead[0].first_failed_at.as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(dead[0].attempts, 2);
        let g = &dead[1];
        assert_eq!((g.external_id.as_str(), g.kind), ("G", OpKind::Pause));
        assert_eq!(g.mapping.as_ref().unwrap().target_offer_id, "g1");
        assert_eq!(pg.dead_count(Some("t")).unwrap(), 2);
        assert_eq!(pg.dead_count(Some("u")).unwrap(), 0);
        assert_eq!(pg.dead_count(None).unwrap(), 2);
        assert_eq!(pg.dead_ops(None).unwrap().len(), 2);
        // The same on SQLite.
        let lop = lite.claim_next("t", NOW).unwrap().unwrap();
        lite.fail_op(lop.id, "first", false, NOW, "2024-01-01T00:00:00Z")
            .unwrap();
        lite.claim_next("t", NOW).unwrap().unwrap();
        lite.fail_op(lop.id, "second", true, NOW, NOW).unwrap();
        assert_eq!(pg_outbox(&mut pg), lite_outbox(&lite));
        // A release after an ambiguous claim puts it back ambiguous; after a failed one, failed.
        let (mut pg2, _d2, _l2) = fresh_pair();
        both(&mut pg2, &_l2, QUEUE);
        pg2.settle_in_flight("t", NOW).unwrap();
        let mut got = Vec::new();
        while let Some(op) = pg2.claim_next("t", NOW).unwrap() {
            if op.external_id == "D" {
                pg2.release_op(&op, "refused", Some(LATER)).unwrap();
            } else {
                pg2.outbox_tx(|o| o.finish_op(&op, Some("x"), false, NOW))
                    .unwrap();
            }
            got.push(op.external_id);
        }
        assert_eq!(pg2.count_in_state("t", OutboxState::Ambiguous).unwrap(), 1);
        assert!(got.iter().filter(|e| *e == "D").count() == 1, "{got:?}");
    }

    #[test]
    fn finish_op_is_all_or_nothing_with_the_outbox_transaction() {
        let mut pg = super::super::testing::fresh();
        pg.client.get_mut().batch_execute(QUEUE).unwrap();
        pg.settle_in_flight("t", NOW).unwrap();
        let op = pg.claim_next("t", NOW).unwrap().unwrap();
        let err = pg
            .outbox_tx(|o| {
                o.finish_op(&op, Some("a1"), false, NOW)?;
                Err::<(), _>(StoreError::Inconsistent("stop".into()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Inconsistent(_)));
        assert_eq!(pg.count_in_state("t", OutboxState::InFlight).unwrap(), 1);
        assert!(pg.mappings().iter().all(|m| m.1 != "A"));
        // The deliverer's re-plan path: read, plan, write, drop the claimed op, in one go.
        let cfg = [target("t", &["s"])];
        pg_offer(&mut pg, "s", &offer("A"));
        let planned = pg
            .outbox_tx(|o| {
                let offer = o.offer("s", "A")?.unwrap();
                assert!(o.offer("s", "nope")?.is_none());
                let m = o.mapping("t", "s", "A")?;
                assert!(
                    m.as_ref().is_some_and(|m| m.pending),
                    "its own create in flight"
                );
                let d = o.decision("t", "s", "A")?;
                let p = crate::push::plan::plan(&cfg[0], "s", &offer, None, d.as_ref());
                o.delete_op(op.id)?;
                o.enqueue("t", "s", "A", p.as_ref(), true, NOW)?;
                Ok(p.map(|p| p.kind))
            })
            .unwrap();
        assert_eq!(planned, Some(OpKind::Create));
        let a: Vec<_> = pg_outbox(&mut pg)
            .into_iter()
            .filter(|r| r.0 == "t" && r.2 == "A")
            .collect();
        // The waiting update was replaced by the create, flagged, and the claimed op is gone.
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].3.as_str(), a[0].5.as_str(), a[0].7),
            ("create", "pending", true)
        );
    }

    #[test]
    fn the_breaker_is_stored_per_target() {
        let mut pg = super::super::testing::fresh();
        assert_eq!(pg.target_health("t").unwrap(), TargetHealth::default());
        let h = TargetHealth {
            failures: 5,
            open_until: Some(LATER.into()),
            last_error: Some("503".into()),
        };
        pg.set_target_health("t", &h, NOW).unwrap();
        assert_eq!(pg.target_health("t").unwrap(), h);
        assert_eq!(pg.target_health("u").unwrap(), TargetHealth::default());
        pg.set_target_health("t", &TargetHealth::default(), NOW)
            .unwrap();
        assert_eq!(pg.target_health("t").unwrap(), TargetHealth::default());
    }

    #[test]
    fn a_claim_skips_a_locked_row_without_waiting_and_keeps_the_offers_order() {
        let (mut a, mut b) = two_on_one();
        a.client.get_mut().batch_execute(QUEUE).unwrap();
        a.settle_in_flight("t", NOW).unwrap();
        b.client
            .get_mut()
            .batch_execute("SET lock_timeout = '2s'")
            .unwrap();
        // A page writer on host a holds A's waiting create (it is replacing it).
        let ca = a.client.get_mut();
        let mut tx = ca.transaction().unwrap();
        tx.execute(
            "SELECT id FROM push_outbox WHERE target = 't' AND external_id = 'A' AND op = 'create' FOR UPDATE",
            &[],
        )
        .unwrap();
        let got = b.claim_next("t", NOW).unwrap().unwrap();
        assert_eq!(
            got.external_id, "B",
            "A's create is skipped, A's update waits behind it"
        );
        tx.rollback().unwrap();
        let got = b.claim_next("t", NOW).unwrap().unwrap();
        assert_eq!((got.external_id.as_str(), got.kind), ("A", OpKind::Create));
        // Nothing of A's is claimable while its create is in flight, from any host.
        let mut next = Vec::new();
        while let Some(op) = a.claim_next("t", NOW).unwrap() {
            next.push(op.external_id);
        }
        assert!(!next.contains(&"A".to_string()), "{next:?}");
    }

    #[test]
    fn two_racing_deliverers_claim_each_op_once_and_one_at_a_time_per_offer() {
        let (mut a, b) = two_on_one();
        a.client
            .get_mut()
            .batch_execute(
                "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at)
                 SELECT 't', 's', 'o' || (i % 40), CASE WHEN i < 40 THEN 'create' ELSE 'update' END,
                        jsonb_build_object('n', i), 'pending', 'x'
                 FROM generate_series(0, 199) AS i",
            )
            .unwrap();
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Ev {
            Claim(i64),
            Finish(i64),
        }
        let log = std::sync::Mutex::new(Vec::<(String, Ev)>::new());
        std::thread::scope(|s| {
            for mut pg in [a, b] {
                let log = &log;
                s.spawn(move || {
                    while let Some(op) = pg.claim_next("t", NOW).unwrap() {
                        log.lock()
                            .unwrap()
                            .push((op.external_id.clone(), Ev::Claim(op.id)));
                        pg.outbox_tx(|o| {
                            o.finish_op(&op, Some("x"), false, NOW)?;
                            log.lock()
                                .unwrap()
                                .push((op.external_id.clone(), Ev::Finish(op.id)));
                            Ok(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        let log = log.into_inner().unwrap();
        let claims: Vec<i64> = log
            .iter()
            .filter_map(|(_, e)| match e {
                Ev::Claim(id) => Some(*id),
                _ => None,
            })
            .collect();
        let mut unique = claims.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 200, "every op claimed");
        assert_eq!(claims.len(), 200, "and none twice");
        // Per offer: claim, finish, claim, finish... in id order.
        let mut by_offer: std::collections::BTreeMap<&str, Vec<Ev>> = Default::default();
        for (o, e) in &log {
            by_offer.entry(o).or_default().push(*e);
        }
        for (o, evs) in by_offer {
            let mut last = 0;
            for pair in evs.chunks(2) {
                match pair {
                    [Ev::Claim(c), Ev::Finish(f)] if c == f && *c > last => last = *c,
                    _ => panic!("offer {o}: {evs:?}"),
                }
            }
        }
    }
}
