//! The writer: a blocking thread that owns the run's connection and stores pages as the fetch
//! loop sends them, each page whole in one transaction, with the planner asked inside it.
//!
//! On PostgreSQL a run has a second page writer, on a connection of its own (`Lane`): the
//! server does most of a page's work, one server process per connection, so two page
//! transactions at a time keep two server processes busy. They must not change what a run
//! stores, so a batch that has an offer id (or a rejected id) in common with the batch still
//! in flight on the other connection waits for that one to commit first: whatever concerns one
//! offer (first copy wins, a later copy is a duplicate, its change records and outbox rows)
//! stays in page order. Batches with no id in common are independent: each reads only its own
//! offers' rows, and the run counters are sums. The lease is checked at the end of each page
//! transaction (`store::pg::offers`), so the two connections wait for each other only at a
//! commit. A batch is only ever sent to the second connection while this thread's own is
//! idle, and the second has at most one batch in flight.

use crate::config::TargetConfig;
use crate::push::Targets;
use crate::store::{PageBatch, PageCounts, Store, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub(super) struct WriterDone {
    pub store: Store,
    pub pages: u64,
    /// Rejected offers without an id (they could be any offer the run did not see).
    pub unidentified: u64,
    /// Batches written on the run's second connection (`Store::second_writer`).
    pub second_batches: u64,
    pub error: Option<StoreError>,
}

/// Pages the fetch loop may run ahead of the writer.
const QUEUED_PAGES: usize = 4;

/// Pages the fetch loop may run ahead of a writer on `store`: `QUEUED_PAGES` per connection
/// the writer may have, as each takes a batch at a time from the queue (a first sync of
/// 100,000 Trackly offers on PostgreSQL: 33,100-33,700 offers/s with 4, 36,300-41,900 with 8,
/// alternating bench runs).
pub(super) fn queue_depth(store: &Store) -> usize {
    QUEUED_PAGES * store.page_writers()
}

/// Most pages the writer stores in one transaction.
const PAGES_PER_TRANSACTION: usize = 8;

/// What a page writer needs to store a batch, shared by both connections.
struct Run<'a> {
    run_id: i64,
    source: &'a str,
    holder: &'a str,
    targets: &'a [TargetConfig],
}

impl Run<'_> {
    fn apply(&self, store: &mut Store, batch: &[PageBatch]) -> Result<Vec<PageCounts>, StoreError> {
        store.apply_pages(
            self.run_id,
            self.source,
            self.holder,
            batch,
            &Targets(self.targets),
            &super::now(),
        )
    }
}

/// The count of stored pages and what they were, kept as batches commit.
struct Tally<'a> {
    pages: u64,
    unidentified: u64,
    encode_ahead: &'a AtomicBool,
}

impl Tally<'_> {
    fn stored(&mut self, batch: Vec<PageBatch>, counts: Vec<PageCounts>) {
        // Offers to write outnumber unchanged ones: let the fetch side encode them.
        let written: u64 = counts
            .iter()
            .map(|c| c.added + c.changed + c.reappeared)
            .sum();
        let unchanged: u64 = counts.iter().map(|c| c.unchanged).sum();
        self.encode_ahead
            .store(written > unchanged, Ordering::Relaxed);
        for c in counts {
            self.pages += 1;
            tracing::debug!(
                page = self.pages,
                added = c.added,
                changed = c.changed + c.reappeared,
                unchanged = c.unchanged,
                duplicates = c.duplicates,
                "page stored"
            );
        }
        self.unidentified += batch
            .iter()
            .map(|p| p.rejected - p.rejected_ids.len() as u64)
            .sum::<u64>();
        // Freeing a transaction's offers (thousands of strings) is not the writer's work.
        free_elsewhere(batch);
    }

    /// Count a batch the second connection stored, or pass its error on.
    fn take(&mut self, (batch, result): Stored) -> Result<(), StoreError> {
        self.stored(batch, result?);
        Ok(())
    }
}

/// A batch and what storing it gave.
type Stored = (Vec<PageBatch>, Result<Vec<PageCounts>, StoreError>);

/// The second page writer: its own connection on its own thread.
struct Lane {
    jobs: mpsc::Sender<Vec<PageBatch>>,
    results: mpsc::Receiver<Stored>,
    /// The ids of the batch in flight on it, if one is.
    busy: Option<HashSet<u64>>,
    /// Batches it was given.
    batches: u64,
}

impl Lane {
    /// The result of its batch in flight, waiting for it when `wait`; `None` when it has none
    /// (or, not waiting, it is not done yet).
    fn settle(&mut self, wait: bool) -> Option<Stored> {
        self.busy.as_ref()?;
        let got = if wait {
            self.results.recv().ok()
        } else {
            match self.results.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return None,
                r => r.ok(),
            }
        };
        self.busy = None;
        // Its thread ended without a result (it panicked): the batch was not stored.
        Some(got.unwrap_or_else(|| {
            let e = StoreError::Inconsistent("the second page writer stopped".into());
            (Vec::new(), Err(e))
        }))
    }

    /// Give it `batch` if it is free and pages are mostly offers to write (`None` then), else
    /// hand the batch back for the writer's own connection, after the batch in flight here
    /// has committed if the two have an offer id in common.
    fn offer(
        &mut self,
        batch: Vec<PageBatch>,
        writing: bool,
        tally: &mut Tally<'_>,
    ) -> Result<Option<Vec<PageBatch>>, StoreError> {
        let ids = ids_of(&batch);
        match &self.busy {
            None if writing => {
                self.busy = Some(ids);
                self.batches += 1;
                self.jobs.send(batch).map_err(|_| {
                    StoreError::Inconsistent("the second page writer stopped".into())
                })?;
                return Ok(None);
            }
            Some(theirs) if !theirs.is_disjoint(&ids) => {
                if let Some(done) = self.settle(true) {
                    tally.take(done)?;
                }
            }
            _ => {}
        }
        Ok(Some(batch))
    }
}

/// The ids of a batch's offers and rejected offers, hashed (a collision only makes a batch
/// wait for the other connection without need).
fn ids_of(batch: &[PageBatch]) -> HashSet<u64> {
    let hash = |id: &str| xxhash_rust::xxh3::xxh3_64(id.as_bytes());
    batch
        .iter()
        .flat_map(|p| {
            p.offers
                .iter()
                .map(|o| hash(&o.offer.external_id))
                .chain(p.rejected_ids.iter().map(|id| hash(id)))
        })
        .collect()
}

/// Writes pages as they arrive until the channel closes or a write fails. Pages that queued up
/// while the writer was busy share one transaction (each page whole or not at all), which saves
/// a commit, and a rewrite of the same narrow pages, per page when the database is the
/// bottleneck; a lone page is stored at once. A backend that has one (`Store::second_writer`)
/// gets a second connection, and batches go to whichever connection is free (see the module
/// docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn writer(
    mut store: Store,
    mut rx: tokio::sync::mpsc::Receiver<PageBatch>,
    run_id: i64,
    source: String,
    holder: String,
    targets: Vec<TargetConfig>,
    encode_ahead: &AtomicBool,
    connect_timeout: Duration,
) -> WriterDone {
    let run = Run {
        run_id,
        source: &source,
        holder: &holder,
        targets: &targets,
    };
    let mut tally = Tally {
        pages: 0,
        unidentified: 0,
        encode_ahead,
    };
    let (error, second_batches) = std::thread::scope(|scope| {
        let mut lane: Option<Lane> = None;
        let mut opened = false;
        let written = (|| -> Result<(), StoreError> {
            while let Some(batch) = next_batch(&mut rx) {
                if let Some(done) = lane.as_mut().and_then(|l| l.settle(false)) {
                    tally.take(done)?;
                }
                // The second connection is opened for the first batch that would go to it:
                // not the first batch (a source of one page needs one connection), and only
                // while pages are mostly offers to write (the server's work; an unchanged
                // re-sync is cheap for it, and smaller transactions cost more than they save).
                let writing = encode_ahead.load(Ordering::Relaxed);
                if tally.pages > 0 && writing && !opened {
                    opened = true;
                    lane = match store.second_writer(connect_timeout) {
                        Some(Ok(second)) => Some(spawn_lane(scope, second, &run)),
                        Some(Err(e)) => {
                            tracing::warn!(
                                error = %e,
                                "no second connection for the pages; they are written on one"
                            );
                            None
                        }
                        None => None,
                    };
                }
                let batch = match lane.as_mut() {
                    Some(l) => match l.offer(batch, writing, &mut tally)? {
                        Some(b) => b,
                        None => continue,
                    },
                    None => batch,
                };
                let counts = run.apply(&mut store, &batch)?;
                tally.stored(batch, counts);
            }
            Ok(())
        })();
        // The batch still in flight on the second connection ends before the run does.
        let mut last = Ok(());
        let mut batches = 0;
        if let Some(mut l) = lane {
            if let Some(done) = l.settle(true) {
                last = tally.take(done);
            }
            batches = l.batches;
        }
        (written.and(last).err(), batches)
    });
    WriterDone {
        store,
        pages: tally.pages,
        unidentified: tally.unidentified,
        second_batches,
        error,
    }
}

/// The next batch: the next page, and the pages queued behind it, up to
/// `PAGES_PER_TRANSACTION`. `None` when the fetch loop is done.
fn next_batch(rx: &mut tokio::sync::mpsc::Receiver<PageBatch>) -> Option<Vec<PageBatch>> {
    let mut batch = Vec::with_capacity(PAGES_PER_TRANSACTION);
    batch.push(rx.blocking_recv()?);
    while batch.len() < PAGES_PER_TRANSACTION {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Start the second page writer on `store`, in the writer's span. It stores the batches it is
/// sent until the writer drops its end, and stops at its first error.
fn spawn_lane<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut store: Store,
    run: &'scope Run<'scope>,
) -> Lane {
    let (jobs, job_rx) = mpsc::channel::<Vec<PageBatch>>();
    let (result_tx, results) = mpsc::channel();
    let span = tracing::Span::current();
    scope.spawn(move || {
        span.in_scope(|| {
            for batch in job_rx {
                let r = run.apply(&mut store, &batch);
                let failed = r.is_err();
                if result_tx.send((batch, r)).is_err() || failed {
                    break;
                }
            }
        })
    });
    Lane {
        jobs,
        results,
        busy: None,
        batches: 0,
    }
}

/// Drop `v` on the runtime's blocking pool when there is one (here, always: the writer runs on
/// it), else here.
fn free_elsewhere<T: Send + 'static>(v: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(move || drop(v))),
        Err(_) => drop(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Location, PgLocation};
    use crate::sandbox::postgres::TestServer;
    use crate::store::pg::testing::{offer, page, HOLDER};
    use std::collections::BTreeMap;

    /// 40 pages of 10 offers (every offer of run 2 changed), and offers in common between
    /// pages of batches that are written at the same time (2 and 3, 4 and 5): a later copy of
    /// an offer (a duplicate), and in run 2 an offer rejected on one page and sent on a page
    /// of the next batch (also a duplicate: the rejection marked it seen).
    fn pages_of(run: u32) -> Vec<PageBatch> {
        (1..=40)
            .map(|p| {
                let mut offers: Vec<_> =
                    (0..10).map(|i| offer(&format!("p{p}-{i}"), run)).collect();
                let mut rejected = vec![];
                match p {
                    28 => offers.push(offer("both", run)),
                    36 => offers.push(offer("both", run + 10)),
                    13 if run == 2 => rejected.push("p30-0"),
                    21 if run == 2 => offers.push(offer("p30-0", 7)),
                    _ => {}
                }
                page(offers, &rejected)
            })
            .collect()
    }

    /// All pages queued before the writer starts, so the batches are pages 1-8, 9-16, ...
    fn write(store: Store, run_id: i64, pages: Vec<PageBatch>) -> WriterDone {
        let (tx, rx) = tokio::sync::mpsc::channel(pages.len());
        for p in pages {
            tx.try_send(p).unwrap();
        }
        drop(tx);
        let ahead = AtomicBool::new(true);
        let timeout = Duration::from_secs(10);
        writer(
            store,
            rx,
            run_id,
            "s".into(),
            HOLDER.into(),
            vec![],
            &ahead,
            timeout,
        )
    }

    /// Each offer's change records (run, kind, diff) in the order they were written.
    fn changes(rows: Vec<(i64, String, String, String)>) -> BTreeMap<String, Vec<String>> {
        let mut by_offer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (run, id, kind, diff) in rows {
            let diff: serde_json::Value = serde_json::from_str(&diff).unwrap();
            by_offer
                .entry(id)
                .or_default()
                .push(format!("{run} {kind} {diff}"));
        }
        by_offer
    }

    #[test]
    fn pages_written_on_two_connections_store_what_one_connection_stores() {
        let db = TestServer::global().fresh();
        let at = Location::Postgres(PgLocation {
            url: db.url.clone(),
            password: Some(db.password.clone()),
        });
        let mut pg = Store::open(at, Duration::from_secs(10)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut lite = Store::open(dir.path().join("m.db"), Duration::from_secs(5)).unwrap();
        let ttl = Duration::from_secs(900);
        for s in [&mut pg, &mut lite] {
            s.acquire_lease(
                "s",
                HOLDER,
                std::process::id(),
                "h",
                ttl,
                chrono::Utc::now(),
            )
            .unwrap();
        }
        for run in 1..=2 {
            let now = format!("2024-05-0{run}T12:00:00Z");
            let id = pg.create_run("s", &now, 1, "h").unwrap();
            assert_eq!(lite.create_run("s", &now, 1, "h").unwrap(), id);
            let a = write(pg, id, pages_of(run));
            let b = write(lite, id, pages_of(run));
            assert!(a.error.is_none(), "{:?}", a.error);
            assert!(b.error.is_none(), "{:?}", b.error);
            assert!(a.second_batches > 0, "run {run}: a second connection wrote");
            assert_eq!(b.second_batches, 0, "SQLite has one writer");
            assert_eq!((a.pages, a.unidentified), (b.pages, b.unidentified));
            (pg, lite) = (a.store, b.store);
        }
        // The offers, without the times the writer took from the clock.
        let offers = |s: &Store| -> Vec<String> {
            s.offers_of("s")
                .unwrap()
                .iter()
                .map(|o| {
                    let raw: serde_json::Value = serde_json::from_str(&o.raw).unwrap();
                    format!("{:?} {} {:?} {raw}", o.offer, o.content_hash, o.removed_at)
                })
                .collect()
        };
        let (on_pg, on_lite) = (offers(&pg), offers(&lite));
        assert_eq!(on_pg.len(), 401);
        for (a, b) in on_pg.iter().zip(&on_lite) {
            assert_eq!(a, b);
        }
        let runs = |s: &Store| -> Vec<String> {
            s.runs_of("s", 10)
                .unwrap()
                .into_iter()
                .map(|t| {
                    let t = crate::store::RunTotals {
                        duration_seconds: None,
                        ..t
                    };
                    format!("{t:?}")
                })
                .collect()
        };
        assert_eq!(runs(&pg), runs(&lite), "run counters");
        let q = "SELECT run_id, external_id, kind, diff::text FROM offer_changes ORDER BY id";
        let on_pg: Vec<(i64, String, String, String)> = TestServer::global()
            .client(Some(&db.schema))
            .unwrap()
            .query(q, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let on_lite: Vec<(i64, String, String, String)> =
            rusqlite::Connection::open(dir.path().join("m.db"))
                .unwrap()
                .prepare(&q.replace("::text", ""))
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
        // 401 offers added in run 1; in run 2 all changed but `p30-0`, whose copies are duplicates.
        assert_eq!(on_lite.len(), 801);
        assert_eq!(changes(on_pg), changes(on_lite), "each offer's changes");
    }
}
