//! `sync_runs`: one row per run of one source, with its counters and final state.

use super::{Result, Sqlite};
pub use crate::model::RunState;
use rusqlite::{params, OptionalExtension};

/// A run's row as stored.
#[derive(Debug, Clone)]
pub struct RunTotals {
    pub id: i64,
    pub source: String,
    pub state: RunState,
    pub reason: Option<String>,
    pub pages: i64,
    pub offers_seen: i64,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub duplicates: i64,
    pub rejected: i64,
    pub held_removals: i64,
    pub requests: i64,
    pub retries: i64,
    pub rate_limited: i64,
    pub error: Option<String>,
    /// Wall time from start to finish, when finished.
    pub duration_seconds: Option<f64>,
}

impl Sqlite {
    pub fn create_run(&mut self, source: &str, now: &str, pid: u32, host: &str) -> Result<i64> {
        let _turn = self.turn();
        self.conn.execute(
            "INSERT INTO sync_runs (source, started_at, state, pid, host) VALUES (?1, ?2, 'running', ?3, ?4)",
            params![source, now, pid, host],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record the final state of a run (transport counters too) and, in the same transaction,
    /// the notifications `rules` ask for about every run of the source not reported yet.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &mut self,
        run_id: i64,
        state: RunState,
        reason: Option<&str>,
        error: Option<&str>,
        (requests, retries, rate_limited): (u64, u64, u64),
        rules: &[crate::model::NotifyRule],
        now: &str,
    ) -> Result<()> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        tx.execute(
            "UPDATE sync_runs SET state = ?2, reason = ?3, error = ?4, requests = ?5, retries = ?6,
                    rate_limited = ?7, finished_at = ?8
             WHERE id = ?1",
            params![
                run_id,
                state.as_str(),
                reason,
                error,
                requests as i64,
                retries as i64,
                rate_limited as i64,
                now
            ],
        )?;
        let source: String = tx.query_row(
            "SELECT source FROM sync_runs WHERE id = ?1",
            [run_id],
            |r| r.get(0),
        )?;
        super::notify::report_runs(&tx, rules, &source, now)?;
        tx.commit()?;
        Ok(())
    }

    pub fn run(&self, run_id: i64) -> Result<Option<RunTotals>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, source, state, reason, pages, offers_seen, added, changed, removed, unchanged,
                        duplicates, rejected, held_removals, requests, retries, rate_limited, error,
                        (julianday(finished_at) - julianday(started_at)) * 86400.0
                 FROM sync_runs WHERE id = ?1",
                [run_id],
                |r| {
                    Ok(RunTotals {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        state: r.get::<_, String>(2)?.parse().unwrap_or(RunState::Running),
                        reason: r.get(3)?,
                        pages: r.get(4)?,
                        offers_seen: r.get(5)?,
                        added: r.get(6)?,
                        changed: r.get(7)?,
                        removed: r.get(8)?,
                        unchanged: r.get(9)?,
                        duplicates: r.get(10)?,
                        rejected: r.get(11)?,
                        held_removals: r.get(12)?,
                        requests: r.get(13)?,
                        retries: r.get(14)?,
                        rate_limited: r.get(15)?,
                        error: r.get(16)?,
                        duration_seconds: r.get(17)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every source name the database knows (from offers or runs).
    pub fn source_names(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT source FROM offer_rows UNION SELECT source FROM sync_runs ORDER BY 1",
        )?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// When the source's last complete run finished.
    pub fn last_complete_at(&self, source: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT max(finished_at) FROM sync_runs WHERE source = ?1 AND state = 'complete'",
            [source],
            |r| r.get(0),
        )?)
    }

    /// Runs of a source, newest first.
    pub fn runs_of(&self, source: &str, limit: usize) -> Result<Vec<RunTotals>> {
        let ids: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM sync_runs WHERE source = ?1 ORDER BY id DESC LIMIT ?2")?
            .query_map(params![source, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .filter_map(|id| self.run(id).transpose())
            .collect()
    }
}
