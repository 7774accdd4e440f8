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
//! - A page transaction's heartbeat (`apply_pages`, `finalize_complete`) keeps the lease row
//!   locked until it commits, so a takeover waits for the page in progress and then sees its
//!   fresh heartbeat; the page of a worker whose lease was taken over fails with `LeaseLost`.

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
/// locked until it ends). `LeaseLost` when another worker took the lease over.
pub(crate) fn heartbeat(
    tx: &mut postgres::Transaction<'_>,
    source: &str,
    holder: &str,
) -> Result<()> {
    // Typed: one round trip (no separate prepare) on the page path.
    let n = tx.execute_typed(
        &format!("UPDATE source_leases SET heartbeat_at = {DB_NOW} WHERE source = $1 AND holder = $2"),
        &[(&source, Type::TEXT), (&holder, Type::TEXT)],
    )?;
    if n == 0 {
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
                .map_err(|e| StoreError::Inconsistent(format!("the server's clock reads as {e}")))?;
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
                let why = if dead {
                    format!(
                        "interrupted: process {} on {} died during the run",
                        cur.pid, cur.host
                    )
                } else {
                    format!(
                        "interrupted: no heartbeat from pid {} on {} since {}",
                        cur.pid, cur.host, cur.heartbeat_at
                    )
                };
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
