//! `notify_outbox` on PostgreSQL: the twin of `../notify.rs`. Notifications recorded in the
//! transaction that records what they report, read by the deliverer, marked done, failed
//! (retried later) or dead.
//!
//! Several daemons may end runs of different sources and finish delivery passes of different
//! targets at once, so what decides "not reported yet" is locked: the runs of a source
//! (`sync_runs ... FOR UPDATE`) and the dead operations of a target (`push_outbox ... FOR
//! UPDATE`) are read locked, and exactly the rows read are marked reported. A second reporter
//! waits, then finds nothing left: every report is written once.

use super::Pg;
use crate::model::{NotifyEvent, NotifyRule, NOTIFY_SAMPLE};
use crate::store::report::{self, ReportSql, RunRow, Sample};
use crate::store::{Notification, Result};
use postgres::types::Type;
use serde_json::{json, Value};

/// How many changes a field report reads per fetch (it streams: a 100,000-offer run holds a
/// chunk and the sample, never the whole run).
const CHUNK: i32 = 1000;

/// A value of the diff as SQLite's `json_extract` gives it to the report: strings and numbers
/// as themselves, JSON `null` or nothing as null, `true`/`false` as 1/0, arrays and objects
/// as their JSON text.
fn as_sqlite_gives(v: Option<String>) -> Value {
    match v.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Bool(b)) => json!(i64::from(b)),
        Some(v @ (Value::String(_) | Value::Number(_))) => v,
        Some(v) => Value::String(v.to_string()),
    }
}

/// Inside a run's end transaction: report every run of `source` not reported yet that has
/// ended (or was left `running` by a process that died: a later run exists). The runs are
/// locked as they are read, so two processes never report the same run.
pub(crate) fn report_runs(
    tx: &mut postgres::Transaction<'_>,
    rules: &[NotifyRule],
    source: &str,
    now: &str,
) -> Result<()> {
    let runs: Vec<RunRow> = tx
        .query_typed(
            "SELECT id, state, reason, error, started_at FROM sync_runs
             WHERE source = $1 AND notified_at IS NULL
               AND (state <> 'running' OR id < (SELECT max(id) FROM sync_runs WHERE source = $1))
             ORDER BY id
             FOR UPDATE",
            &[(&source, Type::TEXT)],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    for run in runs {
        let id = run.0;
        report::report_run(tx, rules, source, run, now)?;
        tx.execute_typed(
            "UPDATE sync_runs SET notified_at = $2 WHERE id = $1",
            &[(&id, Type::INT8), (&now, Type::TEXT)],
        )?;
    }
    Ok(())
}

impl Pg {
    /// Report `target`'s dead operations that were not reported yet (one row per notifier).
    pub fn report_dead(&mut self, target: &str, rules: &[NotifyRule], now: &str) -> Result<u64> {
        let mut tx = self.client.get_mut().transaction()?;
        let dead: Vec<report::DeadOp> = tx
            .query_typed(
                "SELECT id, source, external_id, last_error FROM push_outbox
                 WHERE target = $1 AND state = 'dead' AND NOT notified ORDER BY id
                 FOR UPDATE",
                &[(&target, Type::TEXT)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        if !dead.is_empty() {
            report::report_dead(&mut tx, target, rules, &dead, now)?;
            // Exactly those reported (an operation that died since is reported next time).
            let ids: Vec<i64> = dead.iter().map(|d| d.0).collect();
            tx.execute_typed(
                "UPDATE push_outbox SET notified = true WHERE id = ANY($1)",
                &[(&ids, Type::INT8_ARRAY)],
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
        let mut c = self.client.borrow_mut();
        let rows = c.query_typed(
            "SELECT id, notifier, event, source, target, payload::text, attempts, created_at
             FROM notify_outbox WHERE notifier = $1 AND state = 'pending' AND created_at <= $2
               AND (next_attempt_at IS NULL OR next_attempt_at <= $3)
             ORDER BY id LIMIT 1000",
            &[
                (&notifier, Type::TEXT),
                (&created_before, Type::TEXT),
                (&now, Type::TEXT),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| Notification {
                id: r.get(0),
                notifier: r.get(1),
                event: r
                    .get::<_, String>(2)
                    .parse()
                    .unwrap_or(NotifyEvent::RunFailed),
                source: r.get(3),
                target: r.get(4),
                payload: serde_json::from_str(r.get::<_, &str>(5)).unwrap_or(Value::Null),
                attempts: r.get(6),
                created_at: r.get(7),
            })
            .collect())
    }

    /// These notifications went out (as one message).
    pub fn notifications_sent(&mut self, ids: &[i64], now: &str) -> Result<()> {
        let ids = ids.to_vec();
        self.client.get_mut().execute_typed(
            "UPDATE notify_outbox SET state = 'done', sent_at = $2, attempts = attempts + 1,
                    last_error = NULL WHERE id = ANY($1)",
            &[(&ids, Type::INT8_ARRAY), (&now, Type::TEXT)],
        )?;
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
        let ids = ids.to_vec();
        self.client.get_mut().execute_typed(
            "UPDATE notify_outbox SET state = CASE WHEN $4 THEN 'dead' ELSE state END,
                    attempts = attempts + 1, last_error = $2, next_attempt_at = $3
             WHERE id = ANY($1)",
            &[
                (&ids, Type::INT8_ARRAY),
                (&error, Type::TEXT),
                (&next_attempt_at, Type::TEXT),
                (&dead, Type::BOOL),
            ],
        )?;
        Ok(())
    }

    /// The most delivery attempts among these notifications (0 for none).
    pub fn notification_attempts(&self, ids: &[i64]) -> Result<i64> {
        let ids = ids.to_vec();
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_one(
            "SELECT coalesce(max(attempts), 0) FROM notify_outbox WHERE id = ANY($1)",
            &[(&ids, Type::INT8_ARRAY)],
        )?
        .get(0))
    }

    /// How many notifications of `notifier` are in `state`.
    pub fn notifications_in(&self, notifier: &str, state: &str) -> Result<i64> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_one(
            "SELECT count(*) FROM notify_outbox WHERE notifier = $1 AND state = $2",
            &[(&notifier, Type::TEXT), (&state, Type::TEXT)],
        )?
        .get(0))
    }
}

/// The PostgreSQL side of a run's report (`store::report`).
impl ReportSql for postgres::Transaction<'_> {
    /// The offers of `run_id` whose change is of one of `kinds` (and, with `field`, touches that
    /// field and passes `keep(old, new)`): how many, and the first `NOTIFY_SAMPLE` as
    /// `(external_id, name, old, new)`. Streams through a portal. Reads only the changes recorded
    /// since the run started (the `at` index), never the whole history.
    fn changed_offers(
        &mut self,
        (run_id, started_at): (i64, &str),
        kinds: &[&str],
        field: Option<&str>,
        keep: &dyn Fn(&Value, &Value) -> bool,
    ) -> Result<(u64, Vec<Sample>)> {
        let tx = self;
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let Some(field) = field else {
            // Every change of these kinds counts: count in SQL, name the first few.
            let count: i64 = tx
                .query_typed_one(
                    "SELECT count(*) FROM offer_changes
                     WHERE at >= $2 AND run_id = $1 AND kind = ANY($3)",
                    &[
                        (&run_id, Type::INT8),
                        (&started_at, Type::TEXT),
                        (&kinds, Type::TEXT_ARRAY),
                    ],
                )?
                .get(0);
            let sample = tx
                .query_typed(
                    &format!(
                        "SELECT c.external_id, COALESCE(o.name, '') FROM offer_changes c
                         LEFT JOIN offer_rows o ON o.source = c.source AND o.external_id = c.external_id
                         WHERE c.at >= $2 AND c.run_id = $1 AND c.kind = ANY($3)
                         ORDER BY c.id LIMIT {NOTIFY_SAMPLE}"
                    ),
                    &[
                        (&run_id, Type::INT8),
                        (&started_at, Type::TEXT),
                        (&kinds, Type::TEXT_ARRAY),
                    ],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1), Value::Null, Value::Null))
                .collect();
            return Ok((count as u64, sample));
        };
        let portal = tx.bind(
            "SELECT c.external_id, COALESCE(o.name, ''), (c.diff -> $2::text -> 'old')::text,
                    (c.diff -> $2::text -> 'new')::text
             FROM offer_changes c LEFT JOIN offer_rows o
               ON o.source = c.source AND o.external_id = c.external_id
             WHERE c.at >= $3::text AND c.run_id = $1::bigint AND c.kind = ANY($4::text[])
               AND c.diff -> $2::text IS NOT NULL AND c.diff -> $2::text <> 'null'::jsonb
             ORDER BY c.id",
            &[&run_id, &field, &started_at, &kinds],
        )?;
        let (mut count, mut sample) = (0u64, Vec::new());
        loop {
            let rows = tx.query_portal(&portal, CHUNK)?;
            for r in &rows {
                let (old, new) = (as_sqlite_gives(r.get(2)), as_sqlite_gives(r.get(3)));
                if !keep(&old, &new) {
                    continue;
                }
                count += 1;
                if sample.len() < NOTIFY_SAMPLE {
                    sample.push((r.get(0), r.get(1), old, new));
                }
            }
            if rows.len() < CHUNK as usize {
                break;
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
        let tx = self;
        tx.execute_typed(
            "INSERT INTO notify_outbox (notifier, event, source, target, payload, created_at)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
            &[
                (&rule.name, Type::TEXT),
                (&event.as_str(), Type::TEXT),
                (&source, Type::TEXT),
                (&target, Type::TEXT),
                (&payload.to_string(), Type::TEXT),
                (&now, Type::TEXT),
            ],
        )?;
        Ok(())
    }

    /// How many creates of `source` wait for approval per target, queued since `started_at`.
    fn awaiting(&mut self, source: &str, started_at: &str) -> Result<Vec<(String, i64)>> {
        let tx = self;
        Ok(tx
            .query_typed(
                "SELECT target, count(*) FROM push_outbox WHERE source = $1
                   AND state = 'awaiting_approval' AND created_at >= $2 GROUP BY target",
                &[(&source, Type::TEXT), (&started_at, Type::TEXT)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::planning::testkit::{both, fresh_pair, two_on_one};
    use super::*;
    use crate::model::parse_decimal;
    use crate::store::Store;

    const RUNS: &str = r#"
        INSERT INTO sync_runs (id, source, started_at, state, reason, error)
        VALUES (1, 'a', '2024-01-01T00:00:00Z', 'running', NULL, NULL),
               (2, 'a', '2024-01-01T01:00:00Z', 'failed', 'source', 'HTTP 500'),
               (3, 'a', '2024-01-01T02:00:00Z', 'complete', NULL, NULL),
               (4, 'b', '2024-01-01T01:00:00Z', 'held', 'removals', NULL),
               (5, 'b', '2024-01-01T02:00:00Z', 'running', NULL, NULL);
        INSERT INTO offer_rows (source, external_id, name, status, content_hash, first_seen_at, updated_at, raw)
        VALUES ('a', 'p1', 'Payout One', 'active', 'h', 'x', 'x', '{}'),
               ('a', 's1', 'Status One', 'paused', 'h', 'x', 'x', '{}');
        INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at)
        VALUES (1, 'a', 'old1', 'added', '{}', '2024-01-01T00:00:01Z'),
               (3, 'a', 'p1', 'changed', '{"payout": {"old": "1.00", "new": "1.05"}}', '2024-01-01T02:00:01Z'),
               (3, 'a', 'p2', 'changed', '{"payout": {"old": "1.00", "new": "2.00"}, "name": {"old": "x", "new": "y"}}', '2024-01-01T02:00:01Z'),
               (3, 'a', 's1', 'changed', '{"status": {"old": "active", "new": "paused"}}', '2024-01-01T02:00:02Z'),
               (3, 'a', 's2', 'reappeared', '{"status": {"old": "removed", "new": "active"}, "payout": {"old": null, "new": "3"}}', '2024-01-01T02:00:02Z'),
               (3, 'a', 'n1', 'changed', '{"name": {"old": "x", "new": "y"}, "status": null}', '2024-01-01T02:00:02Z'),
               (3, 'a', 'r1', 'removed', '{"status": {"old": "active", "new": "removed"}}', '2024-01-01T02:00:03Z');
        INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at)
        SELECT 3, 'a', 'add' || i, 'added', '{}', '2024-01-01T02:00:04Z'
        FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25) SELECT i FROM n) AS q;
        INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at)
        VALUES ('t', 'a', 'w1', 'create', '{}', 'awaiting_approval', '2024-01-01T02:00:05Z'),
               ('t', 'a', 'w2', 'create', '{}', 'awaiting_approval', '2024-01-01T02:00:05Z'),
               ('u', 'a', 'w1', 'create', '{}', 'awaiting_approval', '2024-01-01T02:00:05Z'),
               ('u', 'a', 'w0', 'create', '{}', 'awaiting_approval', '2024-01-01T00:00:00Z');
    "#;

    fn rules() -> Vec<NotifyRule> {
        vec![
            NotifyRule {
                name: "all".into(),
                events: vec![
                    NotifyEvent::OfferAdded,
                    NotifyEvent::OfferRemoved,
                    NotifyEvent::PayoutChanged,
                    NotifyEvent::StatusChanged,
                    NotifyEvent::RunFailed,
                    NotifyEvent::RunHeld,
                    NotifyEvent::PushDead,
                    NotifyEvent::AwaitingApproval,
                ],
                sources: None,
                targets: None,
                min_payout_change: None,
            },
            NotifyRule {
                name: "big".into(),
                events: vec![
                    NotifyEvent::PayoutChanged,
                    NotifyEvent::AwaitingApproval,
                    NotifyEvent::PushDead,
                ],
                sources: Some(vec!["a".into()]),
                targets: Some(vec!["u".into()]),
                min_payout_change: parse_decimal("0.10"),
            },
            NotifyRule {
                name: "b-only".into(),
                events: vec![NotifyEvent::RunHeld, NotifyEvent::OfferAdded],
                sources: Some(vec!["b".into()]),
                targets: None,
                min_payout_change: None,
            },
        ]
    }

    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Value,
        String,
        i64,
    );

    fn pg_rows(pg: &mut Pg) -> Vec<Row> {
        pg.client
            .get_mut()
            .query(
                "SELECT notifier, event, source, target, payload::text, state, attempts
                 FROM notify_outbox ORDER BY id",
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
                    r.get(6),
                )
            })
            .collect()
    }

    fn lite_rows(s: &Store) -> Vec<Row> {
        s.conn()
            .prepare(
                "SELECT notifier, event, source, target, payload, state, attempts
                 FROM notify_outbox ORDER BY id",
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
                    r.get(6)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn report_both(pg: &mut Pg, lite: &mut Store, source: &str) {
        let mut tx = pg.client.get_mut().transaction().unwrap();
        report_runs(&mut tx, &rules(), source, "2024-01-02T00:00:00Z").unwrap();
        tx.commit().unwrap();
        let tx = lite.conn_mut().transaction().unwrap();
        crate::store::notify::report_runs(&tx, &rules(), source, "2024-01-02T00:00:00Z").unwrap();
        tx.commit().unwrap();
    }

    fn notified(pg: &mut Pg) -> Vec<(i64, Option<String>)> {
        pg.client
            .get_mut()
            .query("SELECT id, notified_at FROM sync_runs ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    #[test]
    fn a_runs_report_is_batched_per_event_and_rule_and_written_once_as_on_sqlite() {
        let (mut pg, _d, mut lite) = fresh_pair();
        both(&mut pg, &lite, RUNS);
        report_both(&mut pg, &mut lite, "a");
        let rows = pg_rows(&mut pg);
        assert_eq!(rows, lite_rows(&lite));
        let find = |n: &str, e: &str| -> Vec<Value> {
            rows.iter()
                .filter(|r| r.0 == n && r.1 == e)
                .map(|r| r.4.clone())
                .collect()
        };
        // The run a crash left running is reported too, now that later runs exist.
        let added = find("all", "offer_added");
        assert_eq!(added.len(), 2, "{added:?}");
        assert_eq!(added[0]["run_ids"], json!([1]));
        assert_eq!(added[1]["count"], 25);
        assert_eq!(added[1]["offers"].as_array().unwrap().len(), NOTIFY_SAMPLE);
        let status = &find("all", "status_changed")[0];
        assert_eq!(status["count"], 2, "a null status is no change: {status}");
        assert_eq!(
            status["offers"][0],
            json!({"external_id": "s1", "name": "Status One", "old": "active", "new": "paused"})
        );
        assert_eq!(find("all", "payout_changed")[0]["count"], 3);
        // 1.00 -> 1.05 is under the 10 % minimum; a payout out of nothing counts.
        let big = &find("big", "payout_changed")[0];
        assert_eq!(big["count"], 2);
        assert_eq!(big["offers"][0]["external_id"], "p2");
        assert_eq!(find("all", "run_failed")[0]["error"], "HTTP 500");
        assert_eq!(find("all", "offer_removed")[0]["count"], 1);
        // Approvals queued since the run started, per covered target.
        let waits: Vec<(Option<String>, Value)> = rows
            .iter()
            .filter(|r| r.1 == "awaiting_approval")
            .map(|r| (r.3.clone(), r.4["count"].clone()))
            .collect();
        assert!(waits.contains(&(Some("t".into()), json!(2))), "{waits:?}");
        assert!(waits.contains(&(Some("u".into()), json!(1))), "{waits:?}");
        assert!(rows.iter().all(|r| r.0 != "b-only"));
        let n = notified(&mut pg);
        assert!(n[..3].iter().all(|(_, at)| at.is_some()), "{n:?}");
        // Once: a second end reports nothing again.
        report_both(&mut pg, &mut lite, "a");
        assert_eq!(pg_rows(&mut pg).len(), rows.len());
        // Source b: its latest run is still running; the held one before it is reported.
        report_both(&mut pg, &mut lite, "b");
        assert_eq!(pg_rows(&mut pg), lite_rows(&lite));
        let n = notified(&mut pg);
        assert_eq!((n[3].1.is_some(), n[4].1.is_none()), (true, true), "{n:?}");
        let held: Vec<Row> = pg_rows(&mut pg)
            .into_iter()
            .filter(|r| r.1 == "run_held")
            .collect();
        assert_eq!(held.len(), 2, "both rules that cover b and want it");
        assert_eq!(held[0].4["reason"], "removals");
    }

    #[test]
    fn two_processes_ending_runs_of_a_source_at_once_report_each_run_once() {
        let (mut a, mut b) = two_on_one();
        a.client.get_mut().batch_execute(RUNS).unwrap();
        let ca = a.client.get_mut();
        let mut tx = ca.transaction().unwrap();
        report_runs(&mut tx, &rules(), "a", "now").unwrap();
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                let mut tx = b.client.get_mut().transaction().unwrap();
                report_runs(&mut tx, &rules(), "a", "later").unwrap();
                tx.commit().unwrap();
            });
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert!(
                !other.is_finished(),
                "the second reporter waits on the runs"
            );
            tx.commit().unwrap();
            other.join().unwrap();
        });
        let rows = pg_rows(&mut a);
        assert_eq!(rows.iter().filter(|r| r.1 == "run_failed").count(), 1);
        assert_eq!(rows.iter().filter(|r| r.1 == "offer_added").count(), 2);
        let at: Vec<Option<String>> = notified(&mut a).into_iter().map(|r| r.1).collect();
        assert_eq!(
            at[..3],
            [Some("now".into()), Some("now".into()), Some("now".into())]
        );
    }

    #[test]
    fn dead_ops_are_reported_once_per_covering_rule() {
        let (mut pg, _d, mut lite) = fresh_pair();
        both(
            &mut pg,
            &lite,
            "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at, last_error)
             VALUES ('u', 'a', 'd1', 'create', '{}', 'dead', 'x', 'HTTP 400'),
                    ('u', 'a', 'd2', 'update', '{}', 'dead', 'x', NULL),
                    ('u', 'a', 'p1', 'update', '{}', 'pending', 'x', NULL),
                    ('t', 'a', 'd3', 'update', '{}', 'dead', 'x', NULL);",
        );
        assert_eq!(pg.report_dead("u", &rules(), "now").unwrap(), 2);
        assert_eq!(lite.report_dead("u", &rules(), "now").unwrap(), 2);
        assert_eq!(pg.report_dead("u", &rules(), "now").unwrap(), 0);
        assert_eq!(lite.report_dead("u", &rules(), "now").unwrap(), 0);
        assert_eq!(pg.report_dead("t", &rules(), "now").unwrap(), 1);
        assert_eq!(lite.report_dead("t", &rules(), "now").unwrap(), 1);
        let rows = pg_rows(&mut pg);
        assert_eq!(rows, lite_rows(&lite));
        let who: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.0.as_str(), r.3.as_deref()))
            .collect();
        assert_eq!(
            who,
            [("all", Some("u")), ("big", Some("u")), ("all", Some("t"))]
        );
        assert_eq!(rows[0].4["count"], 2);
        assert_eq!(
            rows[0].4["offers"][0],
            json!({"source": "a", "external_id": "d1", "error": "HTTP 400"})
        );
    }

    #[test]
    fn due_notifications_are_retried_then_die_and_are_counted() {
        let mut pg = super::super::testing::fresh();
        pg.client
            .get_mut()
            .batch_execute(
                r#"INSERT INTO notify_outbox (notifier, event, source, target, payload, created_at, next_attempt_at)
                   VALUES ('n', 'offer_added', 'a', NULL, '{"count": 1}', '2024-01-01T00:00:00Z', NULL),
                          ('n', 'push_dead', NULL, 't', '{"count": 2}', '2024-01-01T00:00:01Z', NULL),
                          ('n', 'run_failed', 'a', NULL, '{}', '2024-01-01T00:00:09Z', NULL),
                          ('n', 'run_held', 'a', NULL, '{}', '2024-01-01T00:00:00Z', '2024-01-05T00:00:00Z'),
                          ('m', 'offer_added', 'a', NULL, '{}', '2024-01-01T00:00:00Z', NULL);"#,
            )
            .unwrap();
        let due = pg
            .due_notifications("n", "2024-01-01T00:00:05Z", "2024-01-02T00:00:00Z")
            .unwrap();
        let events: Vec<NotifyEvent> = due.iter().map(|n| n.event).collect();
        assert_eq!(events, [NotifyEvent::OfferAdded, NotifyEvent::PushDead]);
        assert_eq!(due[0].payload, json!({"count": 1}));
        assert_eq!(
            (due[1].source.as_deref(), due[1].target.as_deref()),
            (None, Some("t"))
        );
        let ids: Vec<i64> = due.iter().map(|n| n.id).collect();
        assert_eq!(pg.notification_attempts(&ids).unwrap(), 0);
        pg.notifications_failed(&ids, "HTTP 502", false, "2024-01-03T00:00:00Z")
            .unwrap();
        assert!(pg
            .due_notifications("n", "9999", "2024-01-02T00:00:00Z")
            .unwrap()
            .iter()
            .all(|n| n.event == NotifyEvent::RunFailed));
        assert_eq!(pg.notification_attempts(&ids).unwrap(), 1);
        pg.notifications_failed(&ids[1..], "HTTP 502", true, "2024-01-04T00:00:00Z")
            .unwrap();
        assert_eq!(pg.notification_attempts(&ids).unwrap(), 2);
        pg.notifications_sent(&ids[..1], "2024-01-03T00:00:00Z")
            .unwrap();
        assert_eq!(pg.notifications_in("n", "done").unwrap(), 1);
        assert_eq!(pg.notifications_in("n", "dead").unwrap(), 1);
        assert_eq!(pg.notifications_in("n", "pending").unwrap(), 2);
        assert_eq!(pg.notifications_in("nobody", "pending").unwrap(), 0);
        let done = pg.due_notifications("n", "9999", "9999").unwrap();
        assert_eq!(done.len(), 2, "the done and the dead are never due again");
        let (attempts, err, sent): (i64, Option<String>, Option<String>) = {
            let r = pg
                .client
                .get_mut()
                .query_one(
                    "SELECT attempts, last_error, sent_at FROM notify_outbox WHERE id = $1",
                    &[&ids[0]],
                )
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        };
        assert_eq!(
            (attempts, err, sent.as_deref()),
            (2, None, Some("2024-01-03T00:00:00Z"))
        );
    }
}
