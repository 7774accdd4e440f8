//! `sync_runs` on PostgreSQL: one row per run of one source, with its counters and final state.

use super::super::{Result, RunState, RunTotals};
use super::Pg;

/// The columns of [`run_of`], in its order.
const RUN_COLUMNS: &str =
    "id, source, state, reason, pages, offers_seen, added, changed, removed, unchanged,
    duplicates, rejected, held_removals, requests, retries, rate_limited, error,
    extract(epoch FROM (finished_at::timestamptz - started_at::timestamptz))::float8";

fn run_of(r: &postgres::Row) -> RunTotals {
    RunTotals {
        id: r.get(0),
        source: r.get(1),
        state: r.get::<_, String>(2).parse().unwrap_or(RunState::Running),
        reason: r.get(3),
        pages: r.get(4),
        offers_seen: r.get(5),
        added: r.get(6),
        changed: r.get(7),
        removed: r.get(8),
        unchanged: r.get(9),
        duplicates: r.get(10),
        rejected: r.get(11),
        held_removals: r.get(12),
        requests: r.get(13),
        retries: r.get(14),
        rate_limited: r.get(15),
        error: r.get(16),
        duration_seconds: r.get(17),
    }
}

impl Pg {
    pub fn create_run(&mut self, source: &str, now: &str, pid: u32, host: &str) -> Result<i64> {
        let err = self.err();
        let row = self
            .client
            .get_mut()
            .query_one(
                "INSERT INTO sync_runs (source, started_at, state, pid, host)
                 VALUES ($1, $2, 'running', $3, $4) RETURNING id",
                &[&source, &now, &(pid as i64), &host],
            )
            .map_err(err)?;
        Ok(row.get(0))
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
        let err = self.err();
        let mut tx = self.client.get_mut().transaction().map_err(&err)?;
        // As on SQLite, a run that does not exist is an error (no row to return).
        let source: String = tx
            .query_one(
                "UPDATE sync_runs SET state = $2, reason = $3, error = $4, requests = $5, retries = $6,
                        rate_limited = $7, finished_at = $8
                 WHERE id = $1 RETURNING source",
                &[
                    &run_id,
                    &state.as_str(),
                    &reason,
                    &error,
                    &(requests as i64),
                    &(retries as i64),
                    &(rate_limited as i64),
                    &now,
                ],
            )
            .map_err(&err)?
            .get(0);
        // `report_runs` locks the runs it reports, so two workers ending runs of one source at
        // once (a takeover's run and a late one) never report a run twice.
        super::notify::report_runs(&mut tx, rules, &source, now)?;
        tx.commit().map_err(&err)?;
        Ok(())
    }

    pub fn run(&self, run_id: i64) -> Result<Option<RunTotals>> {
        let err = self.err();
        Ok(self
            .client
            .borrow_mut()
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"),
                &[&run_id],
            )
            .map_err(err)?
            .map(|r| run_of(&r)))
    }

    /// Every source name the database knows (from offers or runs).
    pub fn source_names(&self) -> Result<Vec<String>> {
        let err = self.err();
        Ok(self
            .client
            .borrow_mut()
            .query(
                "SELECT source FROM offer_rows UNION SELECT source FROM sync_runs ORDER BY 1",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// When the source's last complete run finished.
    pub fn last_complete_at(&self, source: &str) -> Result<Option<String>> {
        let err = self.err();
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT max(finished_at) FROM sync_runs WHERE source = $1 AND state = 'complete'",
                &[&source],
            )
            .map_err(err)?
            .get(0))
    }

    /// Runs of a source, newest first.
    pub fn runs_of(&self, source: &str, limit: usize) -> Result<Vec<RunTotals>> {
        let err = self.err();
        Ok(self
            .client
            .borrow_mut()
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs WHERE source = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&source, &(limit as i64)],
            )
            .map_err(err)?
            .iter()
            .map(run_of)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::offers::twin::*;
    use crate::model::{NotifyEvent, RunState};
    use crate::push::Targets;

    fn runs_of(t: &mut Twin) -> (Vec<String>, Vec<String>) {
        let show = |r: Vec<crate::store::RunTotals>| {
            r.into_iter()
                .map(|t| {
                    format!(
                        "{:?}",
                        crate::store::RunTotals {
                            duration_seconds: t.duration_seconds.map(|d| d.round()),
                            ..t
                        }
                    )
                })
                .collect()
        };
        (
            show(t.pg.runs_of("s", 10).unwrap()),
            show(t.lite.runs_of("s", 10).unwrap()),
        )
    }

    #[test]
    fn runs_are_created_finished_and_listed_as_on_sqlite() {
        let mut t = Twin::new();
        assert!(t.pg.source_names().unwrap().is_empty());
        assert_eq!(t.pg.last_complete_at("s").unwrap(), None);
        let r1 = t.run(1);
        t.apply(r1, &Targets(&[]), || vec![page(vec![offer("a", 0)], &[])]);
        let rules = [crate::model::NotifyRule {
            name: "n".into(),
            events: vec![NotifyEvent::OfferAdded, NotifyEvent::RunFailed],
            sources: None,
            targets: None,
            min_payout_change: None,
        }];
        let end = "2024-05-01T12:01:30Z";
        t.pg.finish_run(r1, RunState::Complete, None, None, (5, 1, 0), &rules, end)
            .unwrap();
        t.lite
            .finish_run(r1, RunState::Complete, None, None, (5, 1, 0), &rules, end)
            .unwrap();
        let r2 = t.run(2);
        t.pg.finish_run(
            r2,
            RunState::Failed,
            Some("error"),
            Some("boom"),
            (1, 0, 1),
            &rules,
            &now(3),
        )
        .unwrap();
        t.lite
            .finish_run(
                r2,
                RunState::Failed,
                Some("error"),
                Some("boom"),
                (1, 0, 1),
                &rules,
                &now(3),
            )
            .unwrap();
        let r3 = t.run(3);
        let (pg, lite) = runs_of(&mut t);
        assert_eq!(pg, lite);
        assert_eq!(pg.len(), 3);
        let first = t.pg.run(r1).unwrap().unwrap();
        assert_eq!(first.duration_seconds, Some(90.0));
        assert_eq!(
            (first.requests, first.retries, first.pages, first.added),
            (5, 1, 1, 1)
        );
        assert_eq!(t.pg.run(r3).unwrap().unwrap().duration_seconds, None);
        assert_eq!(t.pg.run(99).unwrap().map(|r| r.id), None);
        let newest: Vec<i64> = t.pg.runs_of("s", 2).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(newest, [r3, r2]);
        assert_eq!(
            t.pg.last_complete_at("s").unwrap().as_deref(),
            Some("2024-05-01T12:01:30Z")
        );
        t.pg.create_run("other", &now(4), 1, "h").unwrap();
        assert_eq!(t.pg.source_names().unwrap(), ["other", "s"]);
        // The notifications of both ends, recorded in their transactions, as on SQLite.
        let pg: Vec<(String, String)> =
            t.pg.client
                .get_mut()
                .query("SELECT notifier, event FROM notify_outbox ORDER BY id", &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let lite: Vec<(String, String)> = t
            .lite
            .conn()
            .prepare("SELECT notifier, event FROM notify_outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(pg, lite);
        assert_eq!(pg.len(), 2, "{pg:?}");
        // A run that does not exist cannot be finished.
        assert!(t
            .pg
            .finish_run(99, RunState::Complete, None, None, (0, 0, 0), &[], &now(5))
            .is_err());
    }
}
