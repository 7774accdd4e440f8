//! Removal detection at the end of a complete run on PostgreSQL (invariants 3 and 7), the
//! mass-removal guard, and approving what it held: set-based statements over the narrow
//! `offer_seen` rows, as on SQLite; removed offers are handed to the planner (a pause for what
//! targets hold live) before they are marked removed.

use super::super::{ApproveOutcome, FinalizeOutcome, Result};
use super::lease::heartbeat;
use super::offers::named;
use super::Pg;
use crate::model::{Planner, RunState, StopReason};

/// The live offers of a source missed by `grace` complete runs, over `offer_rows o`: `$1` is
/// the source and `$2` the grace (what the planner's `plan_removed` binds).
const MISSING: &str = "FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                       WHERE o.source = $1 AND s.live_hash IS NOT NULL AND s.missed_runs >= $2";

impl Pg {
    /// Removal detection at the end of a complete run (invariants 3 and 7): every live offer of
    /// `source` not seen by `run_id` has its missed-run count raised; those missed for
    /// `grace` complete runs are marked removed, unless they are more than `max_fraction` of the
    /// live offers, in which case nothing is removed and the run is held.
    #[allow(clippy::too_many_arguments)]
    pub fn finalize_complete(
        &mut self,
        run_id: i64,
        source: &str,
        holder: &str,
        grace: u32,
        max_fraction: f64,
        planner: &dyn Planner,
        now: &str,
    ) -> Result<FinalizeOutcome> {
        let shown = self.shown.clone();
        let mut tx = self.client.get_mut().transaction()?;
        let outcome = finalize_in(
            &mut tx,
            run_id,
            source,
            holder,
            grace,
            max_fraction,
            planner,
            now,
        )
        .map_err(named(&shown))?;
        tx.commit().map_err(|e| named(&shown)(e.into()))?;
        Ok(outcome)
    }

    /// Apply the removals held by the source's last complete run, if it was held. The caller
    /// holds the source's lease.
    pub fn approve_removals(
        &mut self,
        source: &str,
        grace: u32,
        planner: &dyn Planner,
        now: &str,
    ) -> Result<ApproveOutcome> {
        let shown = self.shown.clone();
        let mut tx = self.client.get_mut().transaction()?;
        let outcome = approve_in(&mut tx, source, grace, planner, now).map_err(named(&shown))?;
        tx.commit().map_err(|e| named(&shown)(e.into()))?;
        Ok(outcome)
    }
}

#[allow(clippy::too_many_arguments)]
fn finalize_in(
    tx: &mut postgres::Transaction<'_>,
    run_id: i64,
    source: &str,
    holder: &str,
    grace: u32,
    max_fraction: f64,
    planner: &dyn Planner,
    now: &str,
) -> Result<FinalizeOutcome> {
    heartbeat(tx, source, holder, false)?;
    // Liveness is `offer_seen.live_hash IS NOT NULL`: these walk the (source, external_id)
    // index and the narrow offer_seen rows, never the wide offer rows.
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
             WHERE o.source = $1 AND s.live_hash IS NOT NULL",
            &[&source],
        )?
        .get(0);
    // Every offer this run stored is live and was seen by it (added, changed or reappeared,
    // unchanged; duplicates are not counted twice). When that is every live offer, nothing
    // was missed: skip the two passes over the source's offers.
    let seen_live: i64 = tx
        .query_one(
            "SELECT added + changed + unchanged FROM sync_runs WHERE id = $1",
            &[&run_id],
        )?
        .get(0);
    let candidates: i64 = if seen_live >= live {
        0
    } else {
        tx.execute(
            "UPDATE offer_seen s SET missed_runs = s.missed_runs + 1
             FROM offer_rows o
             WHERE o.id = s.offer_id AND o.source = $1 AND s.last_run_id <> $2
               AND s.live_hash IS NOT NULL",
            &[&source, &run_id],
        )?;
        tx.query_one(
            &format!("SELECT count(*) {MISSING}"),
            &[&source, &i64::from(grace)],
        )?
        .get(0)
    };
    let outcome = if candidates > 0 && candidates as f64 > max_fraction * live as f64 {
        tx.execute(
            "UPDATE sync_runs SET held_removals = $2 WHERE id = $1",
            &[&run_id, &candidates],
        )?;
        FinalizeOutcome::Held {
            candidates: candidates as u64,
            live: live as u64,
        }
    } else if candidates == 0 {
        // Exact, not a guess (grace is at least 1, config says so): either every live offer
        // was seen by this run (so none has missed a run), or the count above found none
        // missed for `grace` runs.
        FinalizeOutcome::Removed(0)
    } else {
        FinalizeOutcome::Removed(remove_missing(tx, run_id, source, grace, planner, now)?)
    };
    Ok(outcome)
}

fn approve_in(
    tx: &mut postgres::Transaction<'_>,
    source: &str,
    grace: u32,
    planner: &dyn Planner,
    now: &str,
) -> Result<ApproveOutcome> {
    // The run row locked: two approvals racing (without the lease) apply it once.
    let last: Option<(i64, String)> = tx
        .query_opt(
            "SELECT id, state FROM sync_runs WHERE source = $1 AND state IN ('complete', 'held')
             ORDER BY id DESC LIMIT 1 FOR UPDATE",
            &[&source],
        )?
        .map(|r| (r.get(0), r.get(1)));
    let Some((run_id, _)) = last.clone().filter(|(_, s)| s == "held") else {
        return Ok(ApproveOutcome::NothingHeld { last });
    };
    let removed = remove_missing(tx, run_id, source, grace, planner, now)?;
    tx.execute(
        "UPDATE sync_runs SET state = $2, reason = $3, error = NULL WHERE id = $1",
        &[
            &run_id,
            &RunState::Complete.as_str(),
            &StopReason::RemovalsApproved.as_str(),
        ],
    )?;
    Ok(ApproveOutcome::Approved { run_id, removed })
}

/// Mark removed every live offer of `source` missed by `grace` complete runs, with a change
/// record each. Set-based, so a mass removal needs no memory per offer.
fn remove_missing(
    tx: &mut postgres::Transaction<'_>,
    run_id: i64,
    source: &str,
    grace: u32,
    planner: &dyn Planner,
    now: &str,
) -> Result<u64> {
    let grace_n = i64::from(grace);
    // The change records first, in external id order (byte order, as on SQLite).
    tx.execute(
        &format!(
            "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at, offer_id)
             SELECT $3, o.source, o.external_id, 'removed',
                    jsonb_build_object('status', jsonb_build_object('old', o.status, 'new', 'removed')),
                    $4, o.id
             {MISSING} ORDER BY o.external_id COLLATE \"C\""
        ),
        &[&source, &grace_n, &run_id, &now],
    )?;
    // The planner sees them still live (what they were), then they are marked removed.
    super::planning::plan_removed(tx, planner, source, grace, MISSING, now)?;
    // The wide rows, the narrow rows (this ends their match of MISSING) and the run counter in
    // one statement: its parts see the same snapshot, before any of them.
    let removed: i64 = tx
        .query_one(
            &format!(
                "WITH m AS (SELECT o.id {MISSING}),
                 gone AS (
                     UPDATE offer_rows SET status = 'removed', removed_at = $4, updated_at = $4
                     WHERE id IN (SELECT id FROM m) RETURNING id
                 ),
                 dead AS (
                     UPDATE offer_seen SET live_hash = NULL WHERE offer_id IN (SELECT id FROM m)
                 ),
                 counted AS (
                     UPDATE sync_runs SET removed = removed + (SELECT count(*) FROM gone)
                     WHERE id = $3
                 )
                 SELECT count(*) FROM gone"
            ),
            &[&source, &grace_n, &run_id, &now],
        )?
        .get(0);
    Ok(removed as u64)
}

#[cfg(test)]
mod tests {
    use super::super::offers::twin::*;
    use crate::model::RunState;
    use crate::push::Targets;
    use crate::store::{ApproveOutcome, FinalizeOutcome};

    const NO_TARGETS: Targets<'static> = Targets(&[]);

    fn sync(t: &mut Twin, n: i64, ids: &[&str], planner: &Targets<'_>) -> i64 {
        let r = t.run(n);
        let offers = || vec![page(ids.iter().map(|id| offer(id, 0)).collect(), &[])];
        t.apply(r, planner, offers);
        r
    }

    #[test]
    fn an_offer_missed_for_grace_runs_is_removed_once() {
        let mut t = Twin::new();
        let all = ["a", "b", "c", "d", "e"];
        let r1 = sync(&mut t, 1, &all, &NO_TARGETS);
        assert_eq!(
            t.finalize(r1, 2, 0.5, &NO_TARGETS),
            FinalizeOutcome::Removed(0)
        );
        // b and c missed once: not yet removed (grace 2).
        let r2 = sync(&mut t, 2, &["a", "d", "e"], &NO_TARGETS);
        assert_eq!(
            t.finalize(r2, 2, 0.5, &NO_TARGETS),
            FinalizeOutcome::Removed(0)
        );
        t.assert_same();
        assert_eq!(t.pg.offer("s", "b").unwrap().unwrap().removed_at, None);
        // c is back in time, b missed twice: removed.
        let r3 = sync(&mut t, 3, &["a", "c", "d", "e"], &NO_TARGETS);
        assert_eq!(
            t.finalize(r3, 2, 0.5, &NO_TARGETS),
            FinalizeOutcome::Removed(1)
        );
        t.assert_same();
        let b = t.pg.offer("s", "b").unwrap().unwrap();
        assert_eq!(b.offer.status, crate::model::OfferStatus::Removed);
        assert_eq!(
            (b.removed_at.as_deref(), b.updated_at.as_str()),
            (Some(now(3).as_str()), now(3).as_str())
        );
        assert_eq!(t.pg.run(r3).unwrap().unwrap().removed, 1);
        let removed: Vec<_> = t
            .pg_changes()
            .into_iter()
            .filter(|c| c.2 == "removed")
            .collect();
        assert_eq!(removed.len(), 1);
        assert_eq!(
            removed[0].3,
            serde_json::json!({"status": {"old": "active", "new": "removed"}})
        );
        // Removed offers are no longer live: never removed again.
        let r4 = sync(&mut t, 4, &["a", "c", "d", "e"], &NO_TARGETS);
        assert_eq!(
            t.finalize(r4, 1, 0.5, &NO_TARGETS),
            FinalizeOutcome::Removed(0)
        );
        t.assert_same();
    }

    #[test]
    fn the_guard_holds_a_mass_removal_until_it_is_approved() {
        let mut t = Twin::new();
        let r1 = sync(&mut t, 1, &["a", "b", "c", "d"], &NO_TARGETS);
        t.finalize(r1, 1, 0.5, &NO_TARGETS);
        assert_eq!(
            t.pg.approve_removals("s", 1, &NO_TARGETS, &now(1)).unwrap(),
            ApproveOutcome::NothingHeld { last: None }
        );
        t.pg.finish_run(r1, RunState::Complete, None, None, (0, 0, 0), &[], &now(1))
            .unwrap();
        t.lite
            .finish_run(r1, RunState::Complete, None, None, (0, 0, 0), &[], &now(1))
            .unwrap();
        // Three of four gone: more than half, held.
        let r2 = sync(&mut t, 2, &["a"], &NO_TARGETS);
        assert_eq!(
            t.finalize(r2, 1, 0.5, &NO_TARGETS),
            FinalizeOutcome::Held {
                candidates: 3,
                live: 4
            }
        );
        t.assert_same();
        assert!(t
            .pg
            .offers_of("s")
            .unwrap()
            .iter()
            .all(|o| o.removed_at.is_none()));
        assert_eq!(t.pg.run(r2).unwrap().unwrap().held_removals, 3);
        // Nothing to approve while the last complete run is not held.
        assert_eq!(
            t.pg.approve_removals("s", 1, &NO_TARGETS, &now(2)).unwrap(),
            ApproveOutcome::NothingHeld {
                last: Some((r1, "complete".into()))
            }
        );
        t.pg.finish_run(
            r2,
            RunState::Held,
            Some("mass_removal"),
            None,
            (0, 0, 0),
            &[],
            &now(2),
        )
        .unwrap();
        t.lite
            .finish_run(
                r2,
                RunState::Held,
                Some("mass_removal"),
                None,
                (0, 0, 0),
                &[],
                &now(2),
            )
            .unwrap();
        let a = t.pg.approve_removals("s", 1, &NO_TARGETS, &now(5)).unwrap();
        let b = t
            .lite
            .approve_removals("s", 1, &NO_TARGETS, &now(5))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            ApproveOutcome::Approved {
                run_id: r2,
                removed: 3
            }
        );
        t.assert_same();
        let run = t.pg.run(r2).unwrap().unwrap();
        assert_eq!(
            (run.state, run.reason.as_deref(), run.removed),
            (RunState::Complete, Some("removals_approved"), 3)
        );
        // Approved once: a second approval finds nothing held.
        assert!(matches!(
            t.pg.approve_removals("s", 1, &NO_TARGETS, &now(5)).unwrap(),
            ApproveOutcome::NothingHeld { .. }
        ));
    }

    #[test]
    fn removed_offers_are_planned_before_they_are_marked_removed() {
        use super::super::planning::testkit::{lite_outbox, pg_outbox, target};
        let mut t = Twin::new();
        let cfg = [target("t", &["s"])];
        let planner = Targets(&cfg);
        let r1 = sync(&mut t, 1, &["a", "b", "c"], &planner);
        // As if b and c were delivered: the target holds them live.
        t.both(
            "DELETE FROM push_outbox;
             INSERT INTO target_offers (target, source, external_id, target_offer_id, state, pushed_payload)
             VALUES ('t', 's', 'b', '1', 'active', '{}'), ('t', 's', 'c', '2', 'active', '{}');",
        );
        t.finalize(r1, 1, 1.0, &planner);
        let r2 = sync(&mut t, 2, &["a"], &planner);
        assert_eq!(
            t.finalize(r2, 1, 1.0, &planner),
            FinalizeOutcome::Removed(2)
        );
        t.assert_same();
        let pg = pg_outbox(&mut t.pg);
        assert_eq!(pg, lite_outbox(&t.lite));
        let ops: Vec<(&str, &str)> = pg.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect();
        assert_eq!(ops, [("b", "pause"), ("c", "pause")]);
    }

    #[test]
    fn finalizing_needs_the_lease() {
        let mut t = Twin::new();
        let r1 = sync(&mut t, 1, &["a"], &NO_TARGETS);
        t.pg.release_lease("s", HOLDER).unwrap();
        assert!(matches!(
            t.pg.finalize_complete(r1, "s", HOLDER, 1, 0.5, &NO_TARGETS, &now(1)),
            Err(crate::store::StoreError::LeaseLost { .. })
        ));
    }
}
