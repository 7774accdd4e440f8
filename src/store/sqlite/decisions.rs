//! Operators' decisions: approving or rejecting what waits in the outbox (`push_decisions`
//! remembers them, so later plans honour them), and detaching or attaching a target offer
//! (`target_offers.detached_at`). Each is one transaction.

use super::{Result, Sqlite};
use rusqlite::params;

/// Which offers of a target a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Everything awaiting approval (not what was rejected: that is released by name).
    All,
    /// These `(source, external_id)`.
    Offers(Vec<(String, String)>),
}

/// What a decision did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decided {
    /// Operations released (approve) or rejected (reject).
    pub operations: u64,
    /// Offers named that had nothing waiting: the decision is recorded for their next plan.
    pub recorded_only: Vec<(String, String)>,
}

const WAITING: &str = "state IN ('awaiting_approval', 'rejected')";

impl Sqlite {
    /// Release what waits for approval on `target` (or was rejected): its state becomes
    /// `pending`, and the decision (with the payout approved) is remembered.
    pub fn approve(&mut self, target: &str, which: &Selection, now: &str) -> Result<Decided> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let mut out = Decided::default();
        let offers: Vec<(String, String)> = match which {
            Selection::All => tx
                .prepare(
                    "SELECT source, external_id FROM push_outbox
                     WHERE target = ?1 AND state = 'awaiting_approval'",
                )?
                .query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?,
            Selection::Offers(list) => list.clone(),
        };
        for (source, external_id) in offers {
            tx.execute(
                &format!(
                    "INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
                     VALUES (?1, ?2, ?3, 'approved',
                             (SELECT json_extract(payload, '$.payout') FROM push_outbox
                              WHERE target = ?1 AND source = ?2 AND external_id = ?3 AND {WAITING}
                              ORDER BY id DESC LIMIT 1), ?4)
                     ON CONFLICT (target, source, external_id) DO UPDATE SET decision = 'approved',
                         payout = excluded.payout, decided_at = excluded.decided_at"
                ),
                params![target, source, external_id, now],
            )?;
            let n = tx.execute(
                &format!(
                    "UPDATE push_outbox SET state = 'pending', last_error = NULL, next_attempt_at = NULL
                     WHERE target = ?1 AND source = ?2 AND external_id = ?3 AND {WAITING}"
                ),
                params![target, source, external_id],
            )?;
            out.operations += n as u64;
            if n == 0 {
                out.recorded_only.push((source, external_id));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Reject these offers on `target`: what waits for them (a create, or a held payout jump)
    /// becomes `rejected` and is never sent; later plans keep it rejected until approved.
    pub fn reject(
        &mut self,
        target: &str,
        offers: &[(String, String)],
        now: &str,
    ) -> Result<Decided> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let mut out = Decided::default();
        for (source, external_id) in offers {
            tx.execute(
                "INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
                 VALUES (?1, ?2, ?3, 'rejected', NULL, ?4)
                 ON CONFLICT (target, source, external_id) DO UPDATE SET decision = 'rejected',
                     payout = NULL, decided_at = excluded.decided_at",
                params![target, source, external_id, now],
            )?;
            let n = tx.execute(
                "UPDATE push_outbox SET state = 'rejected', last_error = 'rejected by an operator'
                 WHERE target = ?1 AND source = ?2 AND external_id = ?3
                   AND (state = 'awaiting_approval' OR (op = 'create' AND state IN ('pending', 'failed')))",
                params![target, source, external_id],
            )?;
            out.operations += n as u64;
            if n == 0 {
                out.recorded_only
                    .push((source.clone(), external_id.clone()));
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

impl super::outbox::SqliteOutboxTx<'_> {
    /// Detach the target offer: never updated, paused or activated until attached; what waits
    /// for it is dropped. `false` when the target holds no such offer.
    pub fn detach(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE target_offers SET detached_at = ?4, detached_reason = ?5
             WHERE target = ?1 AND source = ?2 AND external_id = ?3",
            params![target, source, external_id, now, reason],
        )?;
        if n > 0 {
            self.tx.execute(
                "DELETE FROM push_outbox WHERE target = ?1 AND source = ?2 AND external_id = ?3
                   AND state IN ('pending', 'failed', 'skipped', 'awaiting_approval', 'rejected')",
                params![target, source, external_id],
            )?;
        }
        Ok(n > 0)
    }

    /// Attach a detached target offer again (the caller plans it afresh in the same
    /// transaction). `false` when it was not detached.
    pub fn attach(&self, target: &str, source: &str, external_id: &str) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE target_offers SET detached_at = NULL, detached_reason = NULL
             WHERE target = ?1 AND source = ?2 AND external_id = ?3 AND detached_at IS NOT NULL",
            params![target, source, external_id],
        )?;
        Ok(n > 0)
    }
}
