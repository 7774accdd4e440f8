//! `source_leases` on PostgreSQL: at most one worker syncs a source at a time (invariant 8), and
//! at most one delivers to a target (keys `target:<name>`), across processes **and hosts**.
//!
//! - Taking a lease inserts its row if there is none (`INSERT ... ON CONFLICT DO NOTHING`), else
//!   locks the row (`SELECT ... FOR UPDATE`) and decides on the locked row: two workers racing
//!   for one source are serialized by the row lock, so exactly one of them acquires it.
//! - A holder is taken over when its heartbeat is older than the TTL or (same host only, as on
//!   SQLite) its process is dead; the run it left `running` is closed as `partial` (or `failed`
//!   with no page) with reason `interrupted`, in the same transaction.
//! - **Clock:** the lease times (`acquired_at`, `heartbeat_at`) are the database server's clock
//!   (`clock_timestamp()`), written in the same text as everywhere else (RFC 3339 UTC, whole
//!   seconds, `crate::model::format_timestamp`), and staleness is judged against the same clock.
//!   With several hosts, a host whose clock is off would otherwise see a live holder's heartbeats
//!   as stale (and take its sources over) or a dead one's as fresh (and wait too long): one
//!   clock for writing and judging heartbeats makes the TTL exact whatever the hosts' clocks
//!   say. The `now` a caller passes to [`Pg::acquire_lease`] is used only for the
//!   `finished_at` of the run a takeover closes (a run timestamp, like the run's `started_at`);
//!   the `now` of [`Pg::heartbeat_lease`] is not used.
//! - A page transaction's heartbeat (the last statement of `apply_pages`, before its run
//!   counters; `finalize_complete`) keeps the lease row locked until it commits, so a takeover
//!   waits for the commit and then sees the fresh heartbeat. A takeover that commits while a
//!   page's offers are being written (the holder's heartbeat was older than the TTL) makes that
//!   page fail at its heartbeat with `LeaseLost`, and nothing of it is written.

use super::super::lease::pid_alive;
use super::super::{LeaseHolder, LeaseOutcome, Result, StoreError};
use super::Pg;
use chrono::{DateTime, Utc};
use postgres::types::Type;
use std::time::Duration;

/// The database server's clock as the mirror's timestamp text (`2024-05-01T12:00:00Z`).
pub(crate) const DB_NOW: &str =
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

/// The database server's clock with microseconds, for judging staleness.
const DB_NOW_PRECISE: &str =
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// Refresh the heartbeat of a lease held by `holder`, inside `tx` (which then keeps the lease row
/// locked until it ends). `LeaseLost` when another worker took the lease over. With
/// `relaxed_commit`, the same round trip also sets `synchronous_commit = off` for `tx` only (a
/// page's transaction: see `offers::close`).
pub(crate) fn heartbeat(
    tx: &mut postgres::Transaction<'_>,
    source: &str,
    holder: &str,
    relaxed_commit: bool,
) -> Result<()> {
    let returning = if relaxed_commit {
        "set_config('synchronous_commit', 'off', true)"
    } else {
        "1"
    };
    // Typed: one round trip (no separate prepare) on the page path.
    let held = tx.query_typed(
        &format!(
            "UPDATE source_leases SET heartbeat_at = {DB_NOW} WHERE source = $1 AND holder = $2
             RETURNING {returning}"
        ),
        &[(&source, Type::TEXT), (&holder, Type::TEXT)],
    )?;
    if held.is_empty() {
        return Err(StoreError::LeaseLost {
            source_name: source.to_string(),
        });
    }
    Ok(())
}

fn holder_of(r: &postgres::Row) -> LeaseHolder {
    LeaseHolder {
        holder: r.get(0),
        pid: r.get::<_, i64>(1) as u32,
        host: r.get(2),
        run_id: r.get(3),
        acquired_at: r.get(4),
        heartbeat_at: r.get(5),
    }
}

impl Pg {
    /// Try to take the lease on `source` for `holder` (a token unique to this run).
    #[allow(clippy::too_many_arguments)]
    pub fn acquire_lease(
        &mut self,
        source: &str,
        holder: &str,
        pid: u32,
        host: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        let err = self.err();
        let now_s = crate::model::format_timestamp(now);
        let pid = pid as i64;
        let client = self.client.get_mut();
        loop {
            let mut tx = client.transaction().map_err(&err)?;
            // No row: ours, at once (a racing insert waits for ours and then sees the row).
            let inserted = tx
                .execute(
                    &format!(
                        "INSERT INTO source_leases (source, holder, pid, host, run_id, acquired_at, heartbeat_at)
                         VALUES ($1, $2, $3, $4, NULL, {DB_NOW}, {DB_NOW})
                         ON CONFLICT (source) DO NOTHING"
                    ),
                    &[&source, &holder, &pid, &host],
                )
                .map_err(&err)?;
            if inserted == 1 {
                tx.commit().map_err(&err)?;
                return Ok(LeaseOutcome::Acquired { took_over: None });
            }
            // A row: lock it, then judge it against the server's clock.
            let Some(row) = tx
                .query_opt(
                    &format!(
                        "SELECT holder, pid, host, run_id, acquired_at, heartbeat_at, {DB_NOW_PRECISE}
                         FROM source_leases WHERE source = $1 FOR UPDATE"
                    ),
                    &[&source],
                )
                .map_err(&err)?
            else {
                // Released between the two statements: try again.
                tx.rollback().map_err(&err)?;
                continue;
            };
            let cur = holder_of(&row);
            let db_now = DateTime::parse_from_rfc3339(&row.get::<_, String>(6))
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    StoreError::Inconsistent(format!("the server's clock reads as {e}"))
                })?;
            let dead = cur.host == host && !pid_alive(cur.pid);
            let stale = DateTime::parse_from_rfc3339(&cur.heartbeat_at)
                .map(|t| {
                    db_now
                        .signed_duration_since(t.with_timezone(&Utc))
                        .to_std()
                        .unwrap_or_default()
                        > ttl
                })
                .unwrap_or(true);
            if !(dead || stale) {
                tx.rollback().map_err(&err)?;
                return Ok(LeaseOutcome::Held(cur));
            }
            if let Some(run) = cur.run_id {
                let why = cur.interruption(dead);
                tx.execute(
                    "UPDATE sync_runs SET state = CASE WHEN pages > 0 THEN 'partial' ELSE 'failed' END,
                            reason = $4, error = $2, finished_at = $3
                     WHERE id = $1 AND state = 'running'",
                    &[
                        &run,
                        &why,
                        &now_s,
                        &crate::model::StopReason::Interrupted.as_str(),
                    ],
                )
                .map_err(&err)?;
            }
            tx.execute(
                &format!(
                    "UPDATE source_leases SET holder = $2, pid = $3, host = $4, run_id = NULL,
                            acquired_at = {DB_NOW}, heartbeat_at = {DB_NOW}
                     WHERE source = $1"
                ),
                &[&source, &holder, &pid, &host],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            return Ok(LeaseOutcome::Acquired {
                took_over: Some(cur),
            });
        }
    }

    /// Record which run the lease belongs to (so a takeover can close it).
    pub fn set_lease_run(&mut self, source: &str, holder: &str, run_id: i64) -> Result<()> {
        let err = self.err();
        self.client
            .get_mut()
            .execute(
                "UPDATE source_leases SET run_id = $3 WHERE source = $1 AND holder = $2",
                &[&source, &holder, &run_id],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Refresh the heartbeat of a lease we hold (long deliveries). Fails with `LeaseLost` when
    /// another process has taken it over: the caller must stop. The heartbeat is the server's
    /// clock (see the module docs); `_now` is not used.
    pub fn heartbeat_lease(&mut self, source: &str, holder: &str, _now: &str) -> Result<()> {
        let err = self.err();
        let n = self
            .client
            .get_mut()
            .execute(
                &format!(
                    "UPDATE source_leases SET heartbeat_at = {DB_NOW} WHERE source = $1 AND holder = $2"
                ),
                &[&source, &holder],
            )
            .map_err(err)?;
        if n == 0 {
            return Err(StoreError::LeaseLost {
                source_name: source.to_string(),
            });
        }
        Ok(())
    }

    /// Release the lease if we still hold it.
    pub fn release_lease(&mut self, source: &str, holder: &str) -> Result<()> {
        let err = self.err();
        self.client
            .get_mut()
            .execute(
                "DELETE FROM source_leases WHERE source = $1 AND holder = $2",
                &[&source, &holder],
            )
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::postgres::TestServer;

    const TTL: Duration = Duration::from_secs(900);

    fn open(db: &crate::sandbox::postgres::TestDb) -> Pg {
        Pg::open(
            &super::super::PgLocation {
                url: db.url.clone(),
                password: Some(db.password.clone()),
            },
            Duration::from_secs(10),
        )
        .unwrap()
    }

    fn take(pg: &mut Pg, holder: &str, pid: u32, host: &str) -> LeaseOutcome {
        pg.acquire_lease("s", holder, pid, host, TTL, Utc::now())
            .unwrap()
    }

    fn me() -> u32 {
        std::process::id()
    }

    /// A pid that is not running here (above any pid_max).
    const DEAD: u32 = 999_999_999;

    fn lease_row(pg: &mut Pg) -> Option<(String, String, String)> {
        pg.client
            .get_mut()
            .query_opt(
                "SELECT holder, acquired_at, heartbeat_at FROM source_leases WHERE source = 's'",
                &[],
            )
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    #[test]
    fn a_lease_is_acquired_held_heartbeaten_and_released() {
        let mut pg = super::super::testing::fresh();
        assert_eq!(
            take(&mut pg, "a", me(), "h"),
            LeaseOutcome::Acquired { took_over: None }
        );
        let LeaseOutcome::Held(h) = take(&mut pg, "b", me(), "h") else {
            panic!("a live holder keeps its lease")
        };
        assert_eq!(
            (h.holder.as_str(), h.pid, h.host.as_str(), h.run_id),
            ("a", me(), "h", None)
        );
        // Another host cannot judge our pid: only the heartbeat counts there.
        assert!(matches!(
            take(&mut pg, "b", DEAD, "other"),
            LeaseOutcome::Held(_)
        ));
        pg.set_lease_run("s", "a", 7).unwrap();
        pg.set_lease_run("s", "b", 8).unwrap();
        let LeaseOutcome::Held(h) = take(&mut pg, "b", me(), "h") else {
            panic!()
        };
        assert_eq!(h.run_id, Some(7));
        pg.heartbeat_lease("s", "a", "ignored").unwrap();
        assert!(matches!(
            pg.heartbeat_lease("s", "b", "ignored"),
            Err(StoreError::LeaseLost { ref source_name }) if source_name == "s"
        ));
        // Releasing what one does not hold does nothing.
        pg.release_lease("s", "b").unwrap();
        assert_eq!(lease_row(&mut pg).unwrap().0, "a");
        pg.release_lease("s", "a").unwrap();
        assert_eq!(lease_row(&mut pg), None);
        assert_eq!(
            take(&mut pg, "b", me(), "h"),
            LeaseOutcome::Acquired { took_over: None }
        );
    }

    #[test]
    fn lease_times_are_the_servers_clock_in_the_mirrors_format() {
        let mut pg = super::super::testing::fresh();
        // A caller whose clock is a day ahead neither writes nor judges by it.
        let ahead = Utc::now() + chrono::Duration::days(1);
        pg.acquire_lease("s", "a", me(), "h", TTL, ahead).unwrap();
        let (_, acquired, beat) = lease_row(&mut pg).unwrap();
        for t in [&acquired, &beat] {
            let parsed = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            assert_eq!(
                *t,
                crate::model::format_timestamp(parsed),
                "RFC 3339 UTC, whole seconds"
            );
            assert!(
                (Utc::now() - parsed).num_seconds().abs() < 60,
                "{t} is the server's now"
            );
        }
        assert!(matches!(
            pg.acquire_lease("s", "b", me(), "h", TTL, ahead + chrono::Duration::days(1))
                .unwrap(),
            LeaseOutcome::Held(_)
        ));
    }

    #[test]
    fn a_stale_or_dead_holder_is_taken_over_and_its_run_closed() {
        let mut pg = super::super::testing::fresh();
        let c = pg.client.get_mut();
        c.batch_execute(
            "INSERT INTO sync_runs (id, source, started_at, state, pages) VALUES
                 (1, 's', '2024-01-01T00:00:00Z', 'running', 3),
                 (2, 's', '2024-01-01T00:00:00Z', 'running', 0)",
        )
        .unwrap();
        // Stale: its heartbeat is older than the TTL on the server's clock (another host).
        assert_eq!(
            take(&mut pg, "a", me(), "far"),
            LeaseOutcome::Acquired { took_over: None }
        );
        pg.set_lease_run("s", "a", 1).unwrap();
        pg.client
            .get_mut()
            .batch_execute("UPDATE source_leases SET heartbeat_at = '2024-01-01T00:00:00Z'")
            .unwrap();
        let LeaseOutcome::Acquired {
            took_over: Some(old),
        } = take(&mut pg, "b", me(), "h")
        else {
            panic!("a stale holder is taken over")
        };
        assert_eq!((old.holder.as_str(), old.run_id), ("a", Some(1)));
        let run = pg.run(1).unwrap().unwrap();
        assert_eq!(run.state, crate::model::RunState::Partial);
        assert_eq!(run.reason.as_deref(), Some("interrupted"));
        assert!(run.error.unwrap().contains("no heartbeat from pid"));
        assert_eq!(lease_row(&mut pg).unwrap().0, "b");
        // The old holder's heartbeat now fails: it stops.
        assert!(matches!(
            pg.heartbeat_lease("s", "a", ""),
            Err(StoreError::LeaseLost { .. })
        ));
        // Dead: same host, process gone, heartbeat fresh; its run had no page: failed.
        pg.client
            .get_mut()
            .batch_execute(&format!(
                "UPDATE source_leases SET pid = {DEAD}, run_id = 2"
            ))
            .unwrap();
        let LeaseOutcome::Acquired {
            took_over: Some(old),
        } = take(&mut pg, "c", me(), "h")
        else {
            panic!("a dead holder is taken over")
        };
        assert_eq!(old.pid, DEAD);
        let run = pg.run(2).unwrap().unwrap();
        assert_eq!(run.state, crate::model::RunState::Failed);
        assert!(run.error.unwrap().contains("died during the run"));
        // A closed run is never reopened or rewritten by a later takeover.
        let before = pg.run(1).unwrap().unwrap().error;
        pg.client
            .get_mut()
            .batch_execute(
                "UPDATE source_leases SET run_id = 1, heartbeat_at = '2000-01-01T00:00:00Z'",
            )
            .unwrap();
        assert!(matches!(
            take(&mut pg, "d", me(), "h"),
            LeaseOutcome::Acquired { took_over: Some(_) }
        ));
        assert_eq!(pg.run(1).unwrap().unwrap().error, before);
    }

    #[test]
    fn of_workers_racing_for_a_lease_exactly_one_wins() {
        let db = TestServer::global().fresh();
        let _ = open(&db); // migrated once, before the race
        for round in 0..5 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let winners: Vec<bool> = (0..4)
                .map(|i| {
                    let (db, barrier) = (db.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut pg = open(&db);
                        barrier.wait();
                        let holder = format!("w{round}-{i}");
                        // Each "on its own host": only the lease row decides.
                        let got = pg
                            .acquire_lease("s", &holder, me(), &format!("host{i}"), TTL, Utc::now())
                            .unwrap();
                        matches!(got, LeaseOutcome::Acquired { .. })
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert_eq!(
                winners.iter().filter(|w| **w).count(),
                1,
                "round {round}: {winners:?}"
            );
            let mut pg = open(&db);
            let holder = lease_row(&mut pg).unwrap().0;
            pg.release_lease("s", &holder).unwrap();
        }
        // Racing takeovers of a stale holder: one takes it over, the others see it held.
        let mut pg = open(&db);
        take(&mut pg, "old", me(), "gone");
        pg.client
            .get_mut()
            .batch_execute("UPDATE source_leases SET heartbeat_at = '2000-01-01T00:00:00Z'")
            .unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let outcomes: Vec<LeaseOutcome> = (0..4)
            .map(|i| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut pg = open(&db);
                    barrier.wait();
                    pg.acquire_lease(
                        "s",
                        &format!("t{i}"),
                        me(),
                        &format!("host{i}"),
                        TTL,
                        Utc::now(),
                    )
                    .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let took: Vec<_> = outcomes
            .iter()
            .filter(
                |o| matches!(o, LeaseOutcome::Acquired { took_over: Some(h) } if h.holder == "old"),
            )
            .collect();
        assert_eq!(took.len(), 1, "{outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, LeaseOutcome::Held(_)))
                .count(),
            3
        );
    }

    #[test]
    fn a_takeover_waits_for_the_page_in_progress_and_then_sees_its_heartbeat() {
        let db = TestServer::global().fresh();
        let mut a = open(&db);
        take(&mut a, "a", me(), "far");
        a.client
            .get_mut()
            .batch_execute("UPDATE source_leases SET heartbeat_at = '2000-01-01T00:00:00Z'")
            .unwrap();
        // The end of a page transaction of the holder: its heartbeat locks the row until the
        // commit.
        let mut tx = a.client.get_mut().transaction().unwrap();
        heartbeat(&mut tx, "s", "a", true).unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        let db2 = db.clone();
        let t = std::thread::spawn(move || {
            let mut b = open(&db2);
            let got = b
                .acquire_lease("s", "b", me(), "h", TTL, Utc::now())
                .unwrap();
            done_tx.send(()).unwrap();
            got
        });
        assert!(
            done.recv_timeout(Duration::from_millis(500)).is_err(),
            "the takeover waits for the page"
        );
        tx.commit().unwrap();
        assert!(matches!(t.join().unwrap(), LeaseOutcome::Held(h) if h.holder == "a"));
    }
}
