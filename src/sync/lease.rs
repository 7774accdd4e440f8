//! The source's lease for one run, released on every path: the normal end releases it with the
//! run's own connection ([`RunLease::release`]); any other way out (a failure between taking the
//! lease and creating the run, a writer or finalize task that died) releases it when the guard
//! is dropped, through a connection of its own, so the next run does not wait out the TTL.

use crate::store::{Location, Store, StoreError};

use std::time::Duration;

#[derive(Debug)]
pub(super) struct RunLease {
    source: String,
    holder: String,
    run_id: i64,
    db_path: Location,
    busy_timeout: Duration,
    settled: bool,
}

impl RunLease {
    /// The lease `holder` has just taken on `source`.
    pub fn taken(
        source: &str,
        holder: &str,
        db_path: Location,
        busy_timeout: Duration,
    ) -> RunLease {
        RunLease {
            source: source.to_string(),
            holder: holder.to_string(),
            run_id: 0,
            db_path,
            busy_timeout,
            settled: false,
        }
    }

    /// The run the lease is for, once created.
    pub fn set_run(&mut self, run_id: i64) {
        self.run_id = run_id;
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The normal end: release with the run's connection.
    pub fn release(mut self, store: &mut Store) -> Result<(), StoreError> {
        self.settled = true;
        store.release_lease(&self.source, &self.holder)
    }

    /// Another process took the lease over: there is nothing of ours to release.
    pub fn forget(mut self) {
        self.settled = true;
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let released = Store::open_existing(&self.db_path, self.busy_timeout)
            .and_then(|mut s| s.release_lease(&self.source, &self.holder));
        match released {
            Ok(()) => {
                tracing::warn!(source = %self.source, "run ended abnormally; its lease was released")
            }
            Err(e) => {
                tracing::error!(source = %self.source, error = %e, "could not release the lease of a run that ended abnormally; it expires after its TTL")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_not_released_by_its_run_is_released_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let mut store = Store::open(&db, Duration::from_secs(5)).unwrap();
        let take = |store: &mut Store, holder: &str| {
            store
                .acquire_lease(
                    "s",
                    holder,
                    1,
                    "h",
                    Duration::from_secs(900),
                    chrono::Utc::now(),
                )
                .unwrap()
        };
        assert!(matches!(
            take(&mut store, "a"),
            crate::store::LeaseOutcome::Acquired { .. }
        ));
        // The run failed before it could finish: the guard goes out of scope unreleased.
        drop(RunLease::taken(
            "s",
            "a",
            Location::from(&db),
            Duration::from_secs(5),
        ));
        assert!(
            matches!(
                take(&mut store, "b"),
                crate::store::LeaseOutcome::Acquired { took_over: None }
            ),
            "the next run takes a free lease, not a stale one"
        );
        // Released normally: dropping it does nothing more.
        let lease = RunLease::taken("s", "b", Location::from(db), Duration::from_secs(5));
        lease.release(&mut store).unwrap();
    }
}
