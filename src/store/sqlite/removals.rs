//! Removal detection at the end of a complete run (invariants 3 and 7), the mass-removal guard,
//! and approving what it held. Set-based over the narrow `offer_seen` rows; removed offers are
//! handed to the planner (a pause for what targets hold live).

use super::offers::heartbeat;
use super::{Result, Sqlite};
use crate::model::{Planner, RunState, StopReason};
use rusqlite::{params, OptionalExtension, Transaction};

/// Result of removal detection at the end of a complete run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizeOutcome {
    Removed(u64),
    /// The mass-removal guard held `candidates` removals out of `live` offers.
    Held {
        candidates: u64,
        live: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    Approved {
        run_id: i64,
        removed: u64,
    },
    /// The source's last complete run holds nothing; `last` describes it, if any.
    NothingHeld {
        last: Option<(i64, String)>,
    },
}

impl Sqlite {
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
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        heartbeat(&tx, source, holder, now)?;
        // Liveness is `offer_seen.live_hash IS NOT NULL`: these walk the (source, external_id)
        // index and the narrow offer_seen rows, never the wide offer rows.
        let live: i64 = tx.query_row(
            "SELECT count(*) FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
             WHERE o.source = ?1 AND s.live_hash IS NOT NULL",
            [source],
            |r| r.get(0),
        )?;
        // Every offer this run stored is live and was seen by it (added, changed or reappeared,
        // unchanged; duplicates are not counted twice). When that is every live offer, nothing
        // was missed: skip the two passes over the source's offers.
        let seen_live: i64 = tx.query_row(
            "SELECT added + changed + unchanged FROM sync_runs WHERE id = ?1",
            [run_id],
            |r| r.get(0),
        )?;
        let candidates: i64 = if seen_live >= live {
            0
        } else {
            tx.execute(
                "UPDATE offer_seen SET missed_runs = missed_runs + 1
                 WHERE last_run_id <> ?2 AND live_hash IS NOT NULL
                   AND offer_id IN (SELECT id FROM offer_rows WHERE source = ?1)",
                params![source, run_id],
            )?;
            tx.query_row(
                "SELECT count(*) FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                 WHERE o.source = ?1 AND s.live_hash IS NOT NULL AND s.missed_runs >= ?2",
                params![source, grace],
                |r| r.get(0),
            )?
        };
        let outcome = if candidates > 0 && candidates as f64 > max_fraction * live as f64 {
            tx.execute(
                "UPDATE sync_runs SET held_removals = ?2 WHERE id = ?1",
                params![run_id, candidates],
            )?;
            FinalizeOutcome::Held {
                candidates: candidates as u64,
                live: live as u64,
            }
        } else if candidates == 0 {
            // Exact, not a guess (grace is at least 1, config says so): either every live
            // offer was seen by this run (so none has missed a run), or the count above found
            // none missed for `grace` runs. The statements of `remove_missing` would each walk
            // the source's offers for nothing.
            FinalizeOutcome::Removed(0)
        } else {
            let removed = remove_missing(&tx, run_id, source, grace, planner, now)?;
            FinalizeOutcome::Removed(removed)
        };
        tx.commit()?;
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
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, state FROM sync_runs WHERE source = ?1 AND state IN ('complete', 'held')
                 ORDER BY id DESC LIMIT 1",
                [source],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((run_id, state)) = last.clone().filter(|(_, s)| s == "held") else {
            return Ok(ApproveOutcome::NothingHeld { last });
        };
        debug_assert_eq!(state, "held");
        let removed = remove_missing(&tx, run_id, source, grace, planner, now)?;
        tx.execute(
            "UPDATE sync_runs SET state = ?2, reason = ?3, error = NULL WHERE id = ?1",
            params![
                run_id,
                RunState::Complete.as_str(),
                StopReason::RemovalsApproved.as_str()
            ],
        )?;
        tx.commit()?;
        Ok(ApproveOutcome::Approved { run_id, removed })
    }
}

/// Mark removed every live offer of `source` missed by `grace` complete runs, with a change
/// record each. Set-based, so a mass removal needs no memory per offer.
fn remove_missing(
    tx: &Transaction<'_>,
    run_id: i64,
    source: &str,
    grace: u32,
    planner: &dyn Planner,
    now: &str,
) -> Result<u64> {
    // `?1` is the run in the statements below; the planner's reading numbers them `?1`, `?2`.
    const MISSING: &str = "FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                           WHERE o.source = ?2 AND s.live_hash IS NOT NULL AND s.missed_runs >= ?3";
    const MISSING_FOR_PLAN: &str = "FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                           WHERE o.source = ?1 AND s.live_hash IS NOT NULL AND s.missed_runs >= ?2";
    tx.execute(
        &format!(
            "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at, offer_id)
             SELECT ?1, o.source, o.external_id, 'removed',
                    json_object('status', json_object('old', o.status, 'new', 'removed')), ?4, o.id
             {MISSING} ORDER BY o.external_id"
        ),
        params![run_id, source, grace, now],
    )?;
    super::planning::plan_removed(tx, planner, source, grace, MISSING_FOR_PLAN, now)?;
    let removed = tx.execute(
        &format!(
            "UPDATE offer_rows SET status = 'removed', removed_at = ?4, updated_at = ?4
             WHERE id IN (SELECT o.id {MISSING}) AND ?1 = ?1"
        ),
        params![run_id, source, grace, now],
    )?;
    // Last: this ends their match of MISSING.
    tx.execute(
        &format!(
            "UPDATE offer_seen SET live_hash = NULL
             WHERE offer_id IN (SELECT o.id {MISSING}) AND ?1 = ?1 AND ?4 = ?4"
        ),
        params![run_id, source, grace, now],
    )?;
    tx.execute(
        "UPDATE sync_runs SET removed = removed + ?2 WHERE id = ?1",
        params![run_id, removed as i64],
    )?;
    Ok(removed as u64)
}
