//! The writer: a blocking thread that owns the run's SQLite connection and stores pages as the
//! fetch loop sends them, each page whole in one transaction, with the planner asked inside it.

use crate::config::TargetConfig;
use crate::push::Targets;
use crate::store::{PageBatch, Store, StoreError};

pub(super) struct WriterDone {
    pub store: Store,
    pub pages: u64,
    /// Rejected offers without an id (they could be any offer the run did not see).
    pub unidentified: u64,
    pub error: Option<StoreError>,
}

/// Pages the fetch loop may run ahead of the writer.
pub(super) const QUEUED_PAGES: usize = 4;
/// Most pages the writer stores in one transaction.
const PAGES_PER_TRANSACTION: usize = 8;

/// Writes pages as they arrive until the channel closes or a write fails. Pages that queued up
/// while the writer was busy share one transaction (each page whole or not at all), which saves
/// a commit, and a rewrite of the same narrow pages, per page when the database is the
/// bottleneck; a lone page is stored at once.
pub(super) fn writer(
    mut store: Store,
    mut rx: tokio::sync::mpsc::Receiver<PageBatch>,
    run_id: i64,
    source: String,
    holder: String,
    targets: Vec<TargetConfig>,
    encode_ahead: &std::sync::atomic::AtomicBool,
) -> WriterDone {
    let mut pages = 0;
    let mut unidentified = 0;
    let mut batch = Vec::with_capacity(PAGES_PER_TRANSACTION);
    while let Some(page) = rx.blocking_recv() {
        batch.push(page);
        while batch.len() < PAGES_PER_TRANSACTION {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        match store.apply_pages(
            run_id,
            &source,
            &holder,
            &batch,
            &Targets(&targets),
            &super::now(),
        ) {
            Ok(counts) => {
                // Offers to write outnumber unchanged ones: let the fetch side encode them.
                let written: u64 = counts
                    .iter()
                    .map(|c| c.added + c.changed + c.reappeared)
                    .sum();
                let unchanged: u64 = counts.iter().map(|c| c.unchanged).sum();
                encode_ahead.store(written > unchanged, std::sync::atomic::Ordering::Relaxed);
                for c in counts {
                    pages += 1;
                    tracing::debug!(
                        page = pages,
                        added = c.added,
                        changed = c.changed + c.reappeared,
                        unchanged = c.unchanged,
                        duplicates = c.duplicates,
                        "page stored"
                    );
                }
                unidentified += batch
                    .iter()
                    .map(|p| p.rejected - p.rejected_ids.len() as u64)
                    .sum::<u64>();
                // Freeing a transaction's offers (thousands of strings) is not the writer's
                // work: it is the one thread of a run that cannot be parallel.
                free_elsewhere(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(PAGES_PER_TRANSACTION),
                ));
            }
            Err(e) => {
                return WriterDone {
                    store,
                    pages,
                    unidentified,
                    error: Some(e),
                }
            }
        }
    }
    WriterDone {
        store,
        pages,
        unidentified,
        error: None,
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
