//! Planning into the outbox: what each target holds of an offer (`target_offers`, or a pending
//! mapping while a create is in flight or unresolved), asking the [`Planner`] inside the
//! caller's transaction, and writing its decision as the offer's one waiting operation (a newer
//! plan replaces it, which coalesces changes that happen before delivery). Re-planning a target
//! whose config changed and previewing a delivery walk the mirror through the same path.

use super::{Result, Sqlite};
use crate::model::{Decision, Held, Mapping, Offer, OfferStatus, OutboxState, PlannedOp, Planner};
use rusqlite::{params, OptionalExtension, Transaction};

/// What delivering a target would do now: the first operations, and how many of each kind.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// `(source, external_id, operation)`, at most the limit asked for.
    pub shown: Vec<(String, String, PlannedOp)>,
    pub counts: std::collections::BTreeMap<&'static str, u64>,
}

/// What the target holds of the offer, from `target_offers`.
pub(in crate::store) fn real_mapping(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    Ok(tx
        .prepare_cached(
            "SELECT target_offer_id, state, pushed_payload, detached_at IS NOT NULL FROM target_offers
             WHERE target = ?1 AND source = ?2 AND external_id = ?3",
        )?
        .query_row(params![target, source, external_id], |r| {
            let state: String = r.get(1)?;
            Ok(Mapping {
                target_offer_id: r.get(0)?,
                active: state == "active",
                hidden: state == "hidden",
                pending: false,
                pushed: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                detached: r.get(3)?,
            })
        })
        .optional()?)
}

/// The mapping to plan against: what the target holds, or, while a create of the offer is in
/// flight or unresolved, the offer that create will leave (a pending mapping).
pub(in crate::store) fn effective_mapping(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    if let Some(m) = real_mapping(tx, target, source, external_id)? {
        return Ok(Some(m));
    }
    let pending: Option<String> = tx
        .prepare_cached(
            "SELECT payload FROM push_outbox WHERE target = ?1 AND source = ?2 AND external_id = ?3
             AND op = 'create' AND state IN ('in_flight', 'ambiguous') ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![target, source, external_id], |r| r.get(0))
        .optional()?;
    Ok(pending.map(|payload| Mapping {
        target_offer_id: String::new(),
        active: true,
        hidden: false,
        pending: true,
        pushed: serde_json::from_str(&payload).unwrap_or_default(),
        detached: false,
    }))
}

/// What an operator decided for the offer on `target`, if anything (`push_decisions`).
pub(in crate::store) fn decision(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Decision>> {
    Ok(tx
        .prepare_cached(
            "SELECT decision, payout FROM push_decisions
             WHERE target = ?1 AND source = ?2 AND external_id = ?3",
        )?
        .query_row(params![target, source, external_id], |r| {
            Ok(match r.get::<_, String>(0)?.as_str() {
                "rejected" => Decision::Rejected,
                _ => Decision::Approved { payout: r.get(1)? },
            })
        })
        .optional()?)
}

/// Ask the planner about `offer` for every target that takes its source, and write (or
/// replace, or drop) its waiting operation on each.
pub(in crate::store) fn plan_offer(
    tx: &Transaction<'_>,
    planner: &dyn Planner,
    source: &str,
    offer: &Offer,
    now: &str,
) -> Result<()> {
    for i in (0..planner.target_count()).filter(|i| planner.takes(*i, source)) {
        let target = planner.target_name(i);
        let m = effective_mapping(tx, target, source, &offer.external_id)?;
        let d = decision(tx, target, source, &offer.external_id)?;
        let op = planner.plan(i, source, offer, m.as_ref(), d.as_ref());
        enqueue(
            tx,
            target,
            source,
            &offer.external_id,
            op.as_ref(),
            false,
            now,
        )?;
    }
    Ok(())
}

/// Replace the offer's waiting (pending or failed) operation for `target` with `op`, or drop it
/// when nothing is to be done any more. Operations in flight, unresolved, done or dead are left
/// alone (a new one is queued behind them).
pub(in crate::store) fn enqueue(
    tx: &rusqlite::Connection,
    target: &str,
    source: &str,
    external_id: &str,
    op: Option<&PlannedOp>,
    possible_duplicate: bool,
    now: &str,
) -> Result<()> {
    let waiting: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM push_outbox WHERE target = ?1 AND source = ?2 AND external_id = ?3
             AND state IN ('pending', 'failed', 'skipped', 'awaiting_approval', 'rejected')
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![target, source, external_id], |r| r.get(0))
        .optional()?;
    let payload = |op: &PlannedOp| serde_json::to_string(&op.fields).unwrap_or_default();
    // A create the target's contract rules out waits as `skipped`, one held for an operator
    // as `awaiting_approval` or `rejected` (with the reason), until a later plan replaces it;
    // neither is delivered.
    let state = |op: &PlannedOp| op.state().as_str();
    match (op, waiting) {
        (None, None) => {}
        (None, Some(id)) => {
            tx.prepare_cached("DELETE FROM push_outbox WHERE id = ?1")?
                .execute([id])?;
        }
        (Some(op), Some(id)) => {
            tx.prepare_cached(
                "UPDATE push_outbox SET op = ?2, payload = ?3, state = ?5, next_attempt_at = NULL,
                        last_error = ?6, possible_duplicate = possible_duplicate OR ?4 WHERE id = ?1",
            )?
            .execute(params![
                id,
                op.kind.as_str(),
                payload(op),
                possible_duplicate,
                state(op),
                op.why_not_sent()
            ])?;
        }
        (Some(op), None) => {
            tx.prepare_cached(
                "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at,
                                          possible_duplicate, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7, ?9)",
            )?
            .execute(params![
                target,
                source,
                external_id,
                op.kind.as_str(),
                payload(op),
                now,
                possible_duplicate,
                state(op),
                op.why_not_sent()
            ])?;
        }
    }
    Ok(())
}

/// Before offers matching `missing_sql` are marked removed: ask the planner about each as a
/// removed offer (it pauses what a target holds live, or will hold once a create in flight or
/// unresolved lands, and drops waiting operations). `missing_sql` is a `FROM ... WHERE` over
/// `offer_rows o` with the parameters `?1` (source) and `?2` (grace). Streams the offers: a
/// mass removal holds one offer at a time.
pub(in crate::store) fn plan_removed(
    tx: &Transaction<'_>,
    planner: &dyn Planner,
    source: &str,
    grace: u32,
    missing_sql: &str,
    now: &str,
) -> Result<()> {
    if !(0..planner.target_count()).any(|i| planner.takes(i, source)) {
        return Ok(());
    }
    let mut stmt = tx.prepare(&format!(
        "SELECT o.external_id, {} {missing_sql} ORDER BY o.external_id",
        super::offers::OFFER_COLUMNS
    ))?;
    let mut rows = stmt.query(params![source, grace])?;
    while let Some(row) = rows.next()? {
        let mut offer = super::offers::offer_from_row(row.get(0)?, row, 1)?;
        offer.status = OfferStatus::Removed;
        plan_offer(tx, planner, source, &offer, now)?;
    }
    Ok(())
}

impl Sqlite {
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

    /// Plan every offer of the planner's one target's sources again (its config changed), in
    /// chunks so memory stays bounded, then remember the config hash. Returns the operations
    /// now waiting.
    pub fn replan_target(
        &mut self,
        planner: &dyn Planner,
        config_hash: &str,
        now: &str,
    ) -> Result<u64> {
        let name = planner.target_name(0).to_string();
        let mut last_id = 0i64;
        loop {
            let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
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
                    params![name, config_hash, now],
                )?;
                tx.commit()?;
                break;
            };
            last_id = id;
            for (_, source, external_id) in batch.iter().filter(|(_, s, _)| planner.takes(0, s)) {
                if let Some(o) = super::offers::offer_in(&tx, source, external_id)? {
                    plan_offer(&tx, planner, source, &o, now)?;
                }
            }
            tx.commit()?;
        }
        Ok(self.conn.query_row(
            "SELECT count(*) FROM push_outbox WHERE target = ?1 AND state IN ('pending', 'failed')",
            [&name],
            |r| r.get(0),
        )?)
    }

    /// What delivering the planner's one target would do now: every offer of its sources planned against what
    /// the target holds (or will hold once a create in flight lands). Reads only.
    /// Walks the mirror in chunks (memory stays bounded); keeps the first `limit` operations and
    /// counts all of them by kind.
    pub fn preview_target(&self, planner: &dyn Planner, limit: usize) -> Result<Preview> {
        let target = planner.target_name(0);
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
            for (_, source, external_id) in
                batch.into_iter().filter(|(_, s, _)| planner.takes(0, s))
            {
                let Some(offer) = super::offers::offer_in(&self.conn, &source, &external_id)?
                else {
                    continue;
                };
                let m = effective_mapping(&self.conn, target, &source, &external_id)?;
                let d = decision(&self.conn, target, &source, &external_id)?;
                if let Some(op) = planner.plan(0, &source, &offer, m.as_ref(), d.as_ref()) {
                    // What waits for an operator is counted apart from what would go out.
                    let key = match op.held {
                        Some(Held::Approval(_)) => OutboxState::AwaitingApproval.as_str(),
                        Some(Held::Rejected) => OutboxState::Rejected.as_str(),
                        None => op.kind.as_str(),
                    };
                    *counts.entry(key).or_insert(0) += 1;
                    if shown.len() < limit {
                        shown.push((source, external_id, op));
                    }
                }
            }
        }
        Ok(Preview { shown, counts })
    }
}
