//! `source_leases`: at most one process syncs a source at a time (invariant 8), and at most one
//! delivers to a target (keys `target:<name>`). A lease whose
//! holder process is dead (same host) or whose heartbeat is older than the TTL is taken over, and
//! the run it left `running` is closed as `partial` with reason `interrupted`.

use super::{Result, Sqlite};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use std::time::Duration;

/// Who holds (or held) a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub pid: u32,
    pub host: String,
    pub run_id: Option<i64>,
    pub acquired_at: String,
    pub heartbeat_at: String,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {} (last heartbeat {})",
            self.pid, self.host, self.acquired_at, self.heartbeat_at
        )
    }
}

impl LeaseHolder {
    /// Why the run this holder left `running` was closed by a takeover: its process died
    /// (`dead`, seen on the same host) or its heartbeat is older than the TTL.
    pub(crate) fn interruption(&self, dead: bool) -> String {
        if dead {
            format!(
                "interrupted: process {} on {} died during the run",
                self.pid, self.host
            )
        } else {
            format!(
                "interrupted: no heartbeat from pid {} on {} since {}",
                self.pid, self.host, self.heartbeat_at
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The lease is ours; `took_over` names a stale holder it was taken from.
    Acquired { took_over: Option<LeaseHolder> },
    /// Someone else holds it.
    Held(LeaseHolder),
}

/// Whether process `pid` exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Sqlite {
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
        let now_s = crate::model::format_timestamp(now);
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        let current: Option<LeaseHolder> = tx
            .query_row(
                "SELECT holder, pid, host, run_id, acquired_at, heartbeat_at FROM source_leases WHERE source = ?1",
                [source],
                |r| {
                    Ok(LeaseHolder {
                        holder: r.get(0)?,
                        pid: r.get(1)?,
                        host: r.get(2)?,
                        run_id: r.get(3)?,
                        acquired_at: r.get(4)?,
                        heartbeat_at: r.get(5)?,
                    })
                },
            )
            .optional()?;
        let mut took_over = None;
        if let Some(cur) = current {
            let dead = cur.host == host && !pid_alive(cur.pid);
            let stale = DateTime::parse_from_rfc3339(&cur.heartbeat_at)
                .map(|t| {
                    now.signed_duration_since(t.with_timezone(&Utc))
                        .to_std()
                        .unwrap_or_default()
                        > ttl
                })
                .unwrap_or(true);
            if !(dead || stale) {
                return Ok(LeaseOutcome::Held(cur));
            }
            if let Some(run) = cur.run_id {
                let why = cur.interruption(dead);
                tx.execute(
                    "UPDATE sync_runs SET state = CASE WHEN pages > 0 THEN 'partial' ELSE 'failed' END,
                            reason = ?4, error = ?2, finished_at = ?3
                     WHERE id = ?1 AND state = 'running'",
                    params![
                        run,
                        why,
                        now_s,
                        crate::model::StopReason::Interrupted.as_str()
                    ],
                )?;
            }
            took_over = Some(cur);
        }
        tx.execute(
            "INSERT OR REPLACE INTO source_leases (source, holder, pid, host, run_id, acquired_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5)",
            params![source, holder, pid, host, now_s],
        )?;
        tx.commit()?;
        Ok(LeaseOutcome::Acquired { took_over })
    }

    /// Record which run the lease belongs to (so a takeover can close it).
    pub fn set_lease_run(&mut self, source: &str, holder: &str, run_id: i64) -> Result<()> {
        let _turn = self.turn();
        self.conn.execute(
            "UPDATE source_leases SET run_id = ?3 WHERE source = ?1 AND holder = ?2",
            params![source, holder, run_id],
        )?;
        Ok(())
    }

    /// Refresh the heartbeat of a lease we hold (long deliveries). Fails with `LeaseLost` when
    /// another process has taken it over: the caller must stop.
    pub fn heartbeat_lease(&mut self, source: &str, holder: &str, now: &str) -> Result<()> {
        let _turn = self.turn();
        let n = self.conn.execute(
            "UPDATE source_leases SET heartbeat_at = ?3 WHERE source = ?1 AND holder = ?2",
            params![source, holder, now],
        )?;
        if n == 0 {
            return Err(super::StoreError::LeaseLost {
                source_name: source.to_string(),
            });
        }
        Ok(())
    }

    /// Release the lease if we still hold it.
    pub fn release_lease(&mut self, source: &str, holder: &str) -> Result<()> {
        let _turn = self.turn();
        self.conn.execute(
            "DELETE FROM source_leases WHERE source = ?1 AND holder = ?2",
            params![source, holder],
        )?;
        Ok(())
    }
}
