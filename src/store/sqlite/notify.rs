//! `notify_outbox`: notifications recorded in the transaction that records what they report,
//! claimed by the deliverer, marked done, failed (retried later) or dead.
//!
//! A run's report is written when the run's end is recorded, for every run of the source that
//! has not been reported yet (a run a crash left `running` is reported once a later run of the
//! source ends), each event one row per notifier: the count and the first offers by name, so a
//! 100,000-offer first sync is one `offer_added` row, not 100,000.

use super::super::report::{self, ReportSql, RunRow, Sample};
use super::{Result, Sqlite};
use crate::model::{NotifyEvent, NotifyRule, NOTIFY_SAMPLE};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};

/// A pending notification, claimed for delivery.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: i64,
    pub notifier: String,
    pub event: NotifyEvent,
    pub source: Option<String>,
    pub target: Option<String>,
    pub payload: Value,
    pub attempts: i64,
    pub created_at: String,
}

/// Inside a run's end transaction: report every run of `source` not reported yet that has
/// ended (or was left `running` by a process that died: a later run exists).
pub(in crate::store) fn report_runs(
    tx: &Transaction<'_>,
    rules: &[NotifyRule],
    source: &str,
    now: &str,
) -> Result<()> {
    let runs: Vec<RunRow> = tx
        .prepare_cached(
            "SELECT id, state, reason, error, started_at FROM sync_runs
             WHERE source = ?1 AND notified_at IS NULL
               AND (state <> 'running' OR id < (SELECT max(id) FROM sync_runs WHERE source = ?1))
             ORDER BY id",
        )?
        .query_map([source], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for run in runs {
        let id = run.0;
        report::report_run(&mut Lite(tx), rules, source, run, now)?;
        tx.prepare_cached("UPDATE sync_runs SET notified_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?;
    }
    Ok(())
}

impl Sqlite {
    /// Report `target`'s dead operations that were not reported yet (one row per notifier).
    pub fn report_dead(&mut self, target: &str, rules: &[NotifyRule], now: &str) -> Result<u64> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let dead: Vec<report::DeadOp> = tx
            .prepare(
                "SELECT id, source, external_id, last_error FROM push_outbox
                 WHERE target = ?1 AND state = 'dead' AND notified = 0 ORDER BY id",
            )?
            .query_map([target], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if !dead.is_empty() {
            report::report_dead(&mut Lite(&tx), target, rules, &dead, now)?;
            tx.execute(
                "UPDATE push_outbox SET notified = 1 WHERE target = ?1 AND state = 'dead' AND notified = 0",
                [target],
            )?;
        }
        tx.commit()?;
        Ok(dead.len() as u64)
    }

    /// The pending notifications of `notifier` due now (created at or before `created_before`
    /// and not waiting for a retry), oldest first.
    pub fn due_notifications(
        &self,
        notifier: &str,
        created_before: &str,
        now: &str,
    ) -> Result<Vec<Notification>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, notifier, event, source, target, payload, attempts, created_at
             FROM notify_outbox WHERE notifier = ?1 AND state = 'pending' AND created_at <= ?2
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?3)
             ORDER BY id LIMIT 1000",
        )?;
        let rows = stmt.query_map(params![notifier, created_before, now], |r| {
            Ok(Notification {
                id: r.get(0)?,
                notifier: r.get(1)?,
                event: r
                    .get::<_, String>(2)?
                    .parse()
                    .unwrap_or(NotifyEvent::RunFailed),
                source: r.get(3)?,
                target: r.get(4)?,
                payload: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
                attempts: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// These notifications went out (as one message).
    pub fn notifications_sent(&mut self, ids: &[i64], now: &str) -> Result<()> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        for id in ids {
            tx.prepare_cached(
                "UPDATE notify_outbox SET state = 'done', sent_at = ?2, attempts = attempts + 1,
                        last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A delivery of these failed: retried from `next_attempt_at`, or dead.
    pub fn notifications_failed(
        &mut self,
        ids: &[i64],
        error: &str,
        dead: bool,
        next_attempt_at: &str,
    ) -> Result<()> {
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        for id in ids {
            tx.prepare_cached(
                "UPDATE notify_outbox SET state = CASE WHEN ?4 THEN 'dead' ELSE state END,
                        attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, next_attempt_at, dead])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The most delivery attempts among these notifications.
    pub fn notification_attempts(&self, ids: &[i64]) -> Result<i64> {
        let mut most = 0;
        for id in ids {
            let n: i64 = self.conn.query_row(
                "SELECT attempts FROM notify_outbox WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?;
            most = most.max(n);
        }
        Ok(most)
    }

    /// How many notifications of `notifier` are in `state`.
    pub fn notifications_in(&self, notifier: &str, state: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT count(*) FROM notify_outbox WHERE notifier = ?1 AND state = ?2",
                params![notifier, state],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }
}

/// The SQLite side of a run's report (`store::report`).
struct Lite<'a, 'b>(&'a Transaction<'b>);

impl ReportSql for Lite<'_, '_> {
    /// The offers of `run_id` whose change is of one of `kinds` (and, with `field`, touches that
    /// field and passes `keep(old, new)`): how many, and the first `NOTIFY_SAMPLE` as
    /// `(external_id, name, old, new)`. Streams: a 100,000-offer run holds ten offers. Reads only
    /// the changes recorded since the run started (the `at` index), never the whole history, and
    /// needs no index of its own on the page-write path.
    fn changed_offers(
        &mut self,
        (run_id, started_at): (i64, &str),
        kinds: &[&str],
        field: Option<&str>,
        keep: &dyn Fn(&Value, &Value) -> bool,
    ) -> Result<(u64, Vec<Sample>)> {
        let tx = self.0;
        let kinds = kinds
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(field) = field else {
            // Every change of these kinds counts: count in SQL, name the first few.
            let count: i64 = tx.query_row(
                &format!(
                    "SELECT count(*) FROM offer_changes
                     WHERE at >= ?2 AND run_id = ?1 AND kind IN ({kinds})"
                ),
                params![run_id, started_at],
                |r| r.get(0),
            )?;
            let sample = tx
                .prepare(&format!(
                    "SELECT c.external_id, COALESCE(o.name, '') FROM offer_changes c
                     LEFT JOIN offer_rows o ON o.source = c.source AND o.external_id = c.external_id
                     WHERE c.at >= ?2 AND c.run_id = ?1 AND c.kind IN ({kinds})
                     ORDER BY c.id LIMIT {NOTIFY_SAMPLE}"
                ))?
                .query_map(params![run_id, started_at], |r| {
                    Ok((r.get(0)?, r.get(1)?, Value::Null, Value::Null))
                })?
                .collect::<rusqlite::Result<_>>()?;
            return Ok((count as u64, sample));
        };
        let path = format!("$.{field}");
        let mut stmt = tx.prepare(&format!(
            "SELECT c.external_id, COALESCE(o.name, ''), json_extract(c.diff, ?2 || '.old'),
                    json_extract(c.diff, ?2 || '.new')
             FROM offer_changes c LEFT JOIN offer_rows o
               ON o.source = c.source AND o.external_id = c.external_id
             WHERE c.at >= ?3 AND c.run_id = ?1 AND c.kind IN ({kinds})
               AND json_extract(c.diff, ?2) IS NOT NULL
             ORDER BY c.id"
        ))?;
        let mut rows = stmt.query(params![run_id, path, started_at])?;
        let (mut count, mut sample) = (0u64, Vec::new());
        while let Some(r) = rows.next()? {
            let v = |i: usize| -> rusqlite::Result<Value> {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Integer(n) => json!(n),
                    rusqlite::types::ValueRef::Real(f) => json!(f),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::String(String::from_utf8_lossy(t).into_owned())
                    }
                    _ => Value::Null,
                })
            };
            let (old, new) = (v(2)?, v(3)?);
            if !keep(&old, &new) {
                continue;
            }
            count += 1;
            if sample.len() < NOTIFY_SAMPLE {
                sample.push((r.get(0)?, r.get(1)?, old, new));
            }
        }
        Ok((count, sample))
    }

    fn insert(
        &mut self,
        rule: &NotifyRule,
        event: NotifyEvent,
        source: Option<&str>,
        target: Option<&str>,
        payload: &Value,
        now: &str,
    ) -> Result<()> {
        let tx = self.0;
        tx.prepare_cached(
            "INSERT INTO notify_outbox (notifier, event, source, target, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            rule.name,
            event.as_str(),
            source,
            target,
            payload.to_string(),
            now
        ])?;
        Ok(())
    }

    /// How many creates of `source` wait for approval per target, queued since `started_at`.
    fn awaiting(&mut self, source: &str, started_at: &str) -> Result<Vec<(String, i64)>> {
        let tx = self.0;
        let mut stmt = tx.prepare_cached(
            "SELECT target, count(*) FROM push_outbox WHERE source = ?1
               AND state = 'awaiting_approval' AND created_at >= ?2 GROUP BY target",
        )?;
        let waiting = stmt
            .query_map(params![source, started_at], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(waiting)
    }
}
