//! One run of one source: lease → pages (fetch, parse, store, each page whole in one
//! transaction) → finalize.
//!
//! The fetch loop (async) and the writer (a blocking thread owning the SQLite connection) are
//! joined by a channel of `QUEUED_PAGES`, so memory is bounded by a few pages whatever the
//! catalogue size (invariant 1) and fetching the next page overlaps with storing the previous
//! one. Pages that queued up while the writer was busy share its next transaction.
//! Removal detection runs only when the source's own end signal was reached (invariant 3).

use crate::config::{SourceConfig, TargetConfig};
use crate::http::{CallError, Endpoint, Failure, FailureClass, Limiters};
use crate::model::{format_timestamp, SourcedOffer, StopReason};
use crate::push::Targets;
use crate::sources::{Cursor, Rejected, RowsPage, Source};
use crate::store::{
    ApproveOutcome, FinalizeOutcome, LeaseHolder, LeaseOutcome, PageBatch, RunState, RunTotals,
    Store, StoreError,
};
use chrono::Utc;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Where and as whom runs write.
#[derive(Debug, Clone)]
pub struct SyncContext {
    pub db_path: PathBuf,
    pub busy_timeout: Duration,
    /// A lease whose heartbeat is older than this is taken over even if its holder may be alive
    /// (another host). Heartbeats are written with every page.
    pub lease_ttl: Duration,
    pub host: String,
    /// Push targets: changes of the sources they list are planned into the outbox.
    pub targets: Arc<Vec<TargetConfig>>,
    /// Set when the process is stopping: runs end after the page in flight.
    pub shutdown: Shutdown,
    /// Told about every page (progress bars of `--once` on a terminal).
    pub progress: Option<Arc<dyn ProgressSink>>,
}

/// Where a run is, after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageProgress {
    pub pages: u64,
    /// Pages the platform says the current listing has, when it says.
    pub expected_pages: Option<u64>,
    pub offers: u64,
    pub retries: u64,
    pub rate_limited: u64,
}

/// Receives progress of runs; must be cheap (it is called on the fetch path).
pub trait ProgressSink: Send + Sync {
    fn page(&self, source: &str, progress: PageProgress);
    fn finished(&self, source: &str, report: &RunReport);
}

impl std::fmt::Debug for dyn ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// A shutdown signal runs can check between pages and wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: tokio::sync::watch::Receiver<bool>,
    /// For `never`: the sender, kept so the channel never closes.
    _never: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

impl Shutdown {
    /// A signal and the sender that sets it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Shutdown { rx, _never: None })
    }

    /// A signal that is never set (one-shot commands stop with the process).
    pub fn never() -> Shutdown {
        let (tx, rx) = tokio::sync::watch::channel(false);
        Shutdown {
            rx,
            _never: Some(Arc::new(tx)),
        }
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the signal is set (never, if its sender is gone without setting it).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl SyncContext {
    pub fn new(db_path: PathBuf, busy_timeout: Duration) -> SyncContext {
        SyncContext {
            db_path,
            busy_timeout,
            lease_ttl: Duration::from_secs(900),
            host: hostname(),
            targets: Arc::new(Vec::new()),
            shutdown: Shutdown::never(),
            progress: None,
        }
    }

    /// The same context, reporting progress to `sink`.
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> SyncContext {
        self.progress = Some(sink);
        self
    }

    /// The same context, stopping runs when `shutdown` is set.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> SyncContext {
        self.shutdown = shutdown;
        self
    }

    /// The same context, planning pushes for `targets`.
    pub fn with_targets(mut self, targets: Vec<TargetConfig>) -> SyncContext {
        self.targets = Arc::new(targets);
        self
    }

    /// The enabled targets fed by `source`.
    pub fn targets_of(&self, source: &str) -> Vec<TargetConfig> {
        self.targets
            .iter()
            .filter(|t| t.enabled && t.sources.iter().any(|s| s == source))
            .cloned()
            .collect()
    }

    fn open(&self) -> Result<Store, StoreError> {
        Store::open(&self.db_path, self.busy_timeout)
    }
}

/// How a run attempt ended.
#[derive(Debug, Clone)]
pub enum RunReport {
    /// The run ran (whatever its final state); its `sync_runs` row.
    Finished(RunTotals),
    /// Another process holds the source's lease.
    Skipped { source: String, holder: LeaseHolder },
    /// The run could not start or could not record its end (database unavailable).
    Error { source: String, error: String },
}

impl RunReport {
    /// Whether the run counts as a success for the exit code.
    pub fn ok(&self) -> bool {
        match self {
            RunReport::Finished(t) => t.state == RunState::Complete,
            RunReport::Skipped { .. } => true,
            RunReport::Error { .. } => false,
        }
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A token unique to one run or delivery, for leases.
pub fn holder_token() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> String {
    format_timestamp(Utc::now())
}

/// Why the fetch loop stopped.
enum Ending {
    /// The platform's end signal was reached.
    Complete,
    /// A pagination guard stopped the run (reason code, message).
    Guard(StopReason, String),
    Call {
        page: u64,
        error: CallError,
    },
    /// The writer failed; its error is reported from the writer's result.
    Writer,
}

struct WriterDone {
    store: Store,
    pages: u64,
    /// Rejected offers without an id (they could be any offer the run did not see).
    unidentified: u64,
    error: Option<StoreError>,
}

/// Rejection reasons kept in `offer_rejections` per run (all are counted in `sync_runs`).
const REJECTIONS_KEPT_PER_RUN: usize = 1000;

/// Pages the fetch loop may run ahead of the writer.
const QUEUED_PAGES: usize = 4;
/// Most pages the writer stores in one transaction.
const PAGES_PER_TRANSACTION: usize = 8;

/// Writes pages as they arrive until the channel closes or a write fails. Pages that queued up
/// while the writer was busy share one transaction (each page whole or not at all), which saves
/// a commit, and a rewrite of the same narrow pages, per page when the database is the
/// bottleneck; a lone page is stored at once.
fn writer(
    mut store: Store,
    mut rx: tokio::sync::mpsc::Receiver<PageBatch>,
    run_id: i64,
    source: String,
    holder: String,
    targets: Vec<TargetConfig>,
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
        match store.apply_pages(run_id, &source, &holder, &batch, &Targets(&targets), &now()) {
            Ok(counts) => {
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
                batch.clear();
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

/// Sync one source once. Never panics on platform input; every outcome is recorded in `sync_runs`
/// when the database is reachable.
pub async fn run_source(
    ctx: &SyncContext,
    cfg: &SourceConfig,
    source: Arc<dyn Source>,
    endpoint: Arc<Endpoint>,
) -> RunReport {
    let name = cfg.name.clone();
    let holder = holder_token();
    let pid = std::process::id();
    let start = {
        let (ctx, name, holder) = (ctx.clone(), name.clone(), holder.clone());
        tokio::task::spawn_blocking(
            move || -> Result<Result<(Store, i64), LeaseHolder>, StoreError> {
                let mut store = ctx.open()?;
                match store.acquire_lease(
                    &name,
                    &holder,
                    pid,
                    &ctx.host,
                    ctx.lease_ttl,
                    Utc::now(),
                )? {
                    LeaseOutcome::Held(h) => return Ok(Err(h)),
                    LeaseOutcome::Acquired {
                        took_over: Some(prev),
                    } => {
                        tracing::warn!(source = %name, previous = %prev, "took over a stale lease");
                    }
                    LeaseOutcome::Acquired { took_over: None } => {}
                }
                let run_id = store.create_run(&name, &now(), pid, &ctx.host)?;
                store.set_lease_run(&name, &holder, run_id)?;
                Ok(Ok((store, run_id)))
            },
        )
        .await
    };
    let (store, run_id) = match start {
        Ok(Ok(Ok(v))) => v,
        Ok(Ok(Err(holder))) => {
            tracing::warn!(source = %name, holder = %holder, "source is being synced by another process; skipped");
            return RunReport::Skipped {
                source: name,
                holder,
            };
        }
        Ok(Err(e)) => {
            return RunReport::Error {
                source: name,
                error: e.to_string(),
            }
        }
        Err(e) => {
            return RunReport::Error {
                source: name,
                error: format!("run task failed: {e}"),
            }
        }
    };
    let span = tracing::info_span!("sync_run", source = %name, run_id);
    run_pages(ctx, cfg, source, endpoint, store, run_id, holder)
        .instrument(span)
        .await
}

async fn run_pages(
    ctx: &SyncContext,
    cfg: &SourceConfig,
    source: Arc<dyn Source>,
    endpoint: Arc<Endpoint>,
    store: Store,
    run_id: i64,
    holder: String,
) -> RunReport {
    let targets = ctx.targets_of(&cfg.name);
    let shutdown = ctx.shutdown.clone();
    let name = cfg.name.clone();
    tracing::info!("sync started");
    let started = std::time::Instant::now();
    let (req0, retry0, limited0) = endpoint.counters.snapshot();
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUED_PAGES);
    let writer_task = {
        let (name, holder, targets) = (name.clone(), holder.clone(), targets.clone());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| writer(store, rx, run_id, name, holder, targets))
        })
    };

    // One request in flight while the previous page is normalized: its cursor is known from
    // the envelope, before normalization, so fetching overlaps with the CPU work.
    // `nth` is the page's number within its pass (1-based), for the completeness guard.
    let max_pages = cfg.max_pages;
    let fetch = |cursor: Cursor, nth: u64| {
        let (source, endpoint) = (source.clone(), endpoint.clone());
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                endpoint
                    .call(
                        || source.request(&cursor),
                        |resp| {
                            source
                                .parse_rows(&cursor, resp)
                                .and_then(|rows| earned_end(rows, nth, max_pages))
                        },
                    )
                    .await
            }
            .instrument(span),
        )
    };
    let mut inflight: Option<tokio::task::JoinHandle<Result<RowsPage, CallError>>> = None;
    let mut cursor = source.first_cursor();
    // Fingerprint of the previous page's ids (invariant 6: a page repeating it means a loop).
    let mut prev_ids: Option<u64> = None;
    let mut pages = 0u64;
    let mut pass_pages = 0u64;
    let mut rejected_logged = 0usize;
    let mut rejections_kept = 0usize;
    let mut offers_total = 0u64;
    let ending = loop {
        if shutdown.is_set() {
            break Ending::Guard(
                StopReason::Shutdown,
                format!("stopped by shutdown after {pages} pages"),
            );
        }
        if pages >= cfg.max_pages {
            break Ending::Guard(
                StopReason::PageCap,
                format!(
                    "stopped after max_pages = {} pages without reaching the end of the feed",
                    cfg.max_pages
                ),
            );
        }
        let mut call = inflight
            .take()
            .unwrap_or_else(|| fetch(cursor.clone(), pass_pages + 1));
        let budget = cfg
            .http
            .run_timeout
            .map(|b| b.saturating_sub(started.elapsed()));
        let bounded = async {
            match budget {
                None => Ok((&mut call).await),
                Some(b) => tokio::time::timeout(b, &mut call).await,
            }
        };
        let page = tokio::select! {
            r = bounded => match r {
                Ok(r) => r,
                Err(_) => {
                    call.abort();
                    let secs = cfg.http.run_timeout.unwrap_or_default().as_secs();
                    break Ending::Guard(StopReason::RunTimeout, format!("stopped after run_timeout_seconds = {secs}"));
                }
            },
            // A shutdown does not wait out a rate-limit pause or a retry.
            _ = shutdown.wait() => {
                call.abort();
                break Ending::Guard(StopReason::Shutdown, format!("stopped by shutdown after {pages} pages"));
            }
        };
        let rows = match page {
            Ok(Ok(p)) => p,
            Ok(Err(error)) => {
                break Ending::Call {
                    page: pages + 1,
                    error,
                }
            }
            Err(join) => {
                break Ending::Call {
                    page: pages + 1,
                    error: CallError {
                        class: FailureClass::Permanent,
                        message: format!("the page's fetch task failed: {join}"),
                        attempts: 0,
                        status: None,
                        reason: None,
                    },
                }
            }
        };
        if let Some(n) = &rows.next {
            if pages + 1 < cfg.max_pages && !shutdown.is_set() {
                let nth = if n.pass == cursor.pass {
                    pass_pages + 2
                } else {
                    1
                };
                inflight = Some(fetch(n.clone(), nth));
            }
        }
        let page = rows.normalize(&*source, &cursor);
        pages += 1;
        pass_pages += 1;
        let ids = ids_fingerprint(&page.offers);
        if ids.is_some() && ids == prev_ids {
            break Ending::Guard(
                StopReason::RepeatedPage,
                format!(
                    "page {} (pass {}) repeats the previous page's {} offer ids; the platform's pagination is looping",
                    cursor.page, cursor.pass, page.offers.len()
                ),
            );
        }
        let mut rejections = Vec::new();
        for r in &page.rejected {
            if rejected_logged < 20 {
                log_rejected(&name, r);
                rejected_logged += 1;
            }
            if rejections_kept < REJECTIONS_KEPT_PER_RUN {
                // Platform text: never let a credential it echoes reach the database.
                rejections.push((
                    r.external_id.as_deref().map(|id| endpoint.scrub(id)),
                    endpoint.scrub(&r.reason),
                ));
                rejections_kept += 1;
            }
        }
        let next = page.next.clone();
        let beyond_total = page
            .expected_pages
            .filter(|exp| pass_pages > exp.saturating_add(1));
        offers_total += page.offers.len() as u64;
        if let Some(p) = &ctx.progress {
            let (_, retries, limited) = endpoint.counters.snapshot();
            p.page(
                &name,
                PageProgress {
                    pages,
                    expected_pages: page.expected_pages,
                    offers: offers_total,
                    retries: retries - retry0,
                    rate_limited: limited - limited0,
                },
            );
        }
        let batch = PageBatch {
            offers: page.offers,
            rejected: page.rejected.len() as u64,
            rejections,
            rejected_ids: page
                .rejected
                .into_iter()
                .filter_map(|r| r.external_id)
                .collect(),
        };
        if tx.send(batch).await.is_err() {
            break Ending::Writer;
        }
        if let Some(exp) = beyond_total {
            break Ending::Guard(
                StopReason::BeyondTotal,
                format!("fetched {pass_pages} pages but the platform's total implies {exp}; stopping instead of looping"),
            );
        }
        prev_ids = ids;
        match next {
            None => break Ending::Complete,
            Some(n) => {
                if n.pass != cursor.pass {
                    pass_pages = 0;
                    prev_ids = None;
                }
                cursor = n;
            }
        }
    };
    if let Some(next) = inflight.take() {
        // A guard stopped the run: the page fetched ahead is not wanted.
        next.abort();
    }
    drop(tx);
    let done = match writer_task.await {
        Ok(d) => d,
        Err(e) => {
            return RunReport::Error {
                source: name,
                error: format!("writer task failed: {e}"),
            }
        }
    };
    let (req1, retry1, limited1) = endpoint.counters.snapshot();
    let counters = (req1 - req0, retry1 - retry0, limited1 - limited0);
    let cfg = cfg.clone();
    let span = tracing::Span::current();
    let report = tokio::task::spawn_blocking(move || {
        span.in_scope(|| finish(done, ending, &cfg, run_id, &holder, &targets, counters))
    })
    .await
    .unwrap_or_else(|e| RunReport::Error {
        source: name.clone(),
        error: format!("finalize task failed: {e}"),
    });
    if let Some(p) = &ctx.progress {
        p.finished(&name, &report);
    }
    if let RunReport::Finished(t) = &report {
        log_finished(t, started.elapsed());
    }
    report
}

/// Completeness is earned: a page without rows before the platform's own page count is not
/// the end of the feed but a page missing (transient: retried, then the run ends `partial`
/// with reason `incomplete`). A count implying more pages than `max_pages` is not believed
/// (a total of 10^30 would otherwise keep every run from ending): the run then ends on the
/// platform's other signals (an empty or short page, no next page).
fn earned_end(mut rows: RowsPage, nth: u64, max_pages: u64) -> Result<RowsPage, Failure> {
    if rows.expected_pages.is_some_and(|e| e > max_pages) {
        rows.expected_pages = None;
    }
    match rows.expected_pages {
        Some(expected) if rows.rows.is_empty() && nth < expected => Err(Failure::transient(
            format!(
                "page {nth} of this listing is empty although the platform says it has {expected} pages; the feed is incomplete"
            ),
        )
        .with_reason(StopReason::Incomplete)),
        _ => Ok(rows),
    }
}

/// A hash of a page's offer ids in order, `None` for a page without offers.
fn ids_fingerprint(offers: &[SourcedOffer]) -> Option<u64> {
    if offers.is_empty() {
        return None;
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for o in offers {
        h.update(o.offer.external_id.as_bytes());
        h.update(&[0]);
    }
    Some(h.digest())
}

fn log_rejected(source: &str, r: &Rejected) {
    tracing::warn!(
        source,
        offer = r.external_id.as_deref().unwrap_or("(no id)"),
        reason = %r.reason,
        "offer rejected"
    );
}

fn log_finished(t: &RunTotals, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let fields = (
        t.pages,
        t.offers_seen,
        t.added,
        t.changed,
        t.removed,
        t.rejected,
    );
    match t.state {
        RunState::Complete => tracing::info!(
            state = t.state.as_str(),
            pages = fields.0,
            offers = fields.1,
            added = fields.2,
            changed = fields.3,
            removed = fields.4,
            rejected = fields.5,
            seconds = secs,
            "sync finished"
        ),
        _ => tracing::warn!(
            state = t.state.as_str(),
            reason = t.reason.as_deref().unwrap_or(""),
            error = t.error.as_deref().unwrap_or(""),
            pages = fields.0,
            offers = fields.1,
            added = fields.2,
            changed = fields.3,
            seconds = secs,
            "sync did not complete"
        ),
    }
}

/// Decide the run's final state, run removal detection for complete runs, record, release.
#[allow(clippy::too_many_arguments)]
fn finish(
    done: WriterDone,
    ending: Ending,
    cfg: &SourceConfig,
    run_id: i64,
    holder: &str,
    targets: &[TargetConfig],
    (requests, retries, rate_limited): (u64, u64, u64),
) -> RunReport {
    let WriterDone {
        mut store,
        pages,
        unidentified,
        error,
    } = done;
    let stopped = |reason: StopReason| {
        if pages > 0 {
            (RunState::Partial, reason)
        } else {
            (RunState::Failed, reason)
        }
    };
    let lease_lost = matches!(error, Some(StoreError::LeaseLost { .. }));
    let (state, reason, message): (RunState, Option<StopReason>, Option<String>) = match (
        &error, ending,
    ) {
        (Some(e), _) => {
            let (s, r) = stopped(StopReason::Database);
            (s, Some(r), Some(e.to_string()))
        }
        (None, Ending::Writer) => (
            RunState::Failed,
            Some(StopReason::Database),
            Some("the page writer stopped".into()),
        ),
        (None, Ending::Guard(reason, msg)) => {
            let (s, r) = stopped(reason);
            (s, Some(r), Some(msg))
        }
        (None, Ending::Call { page, error }) => {
            // A spent rate-limit budget is not a failure: what was stored stays, the next run
            // starts over.
            let (s, r) = match (error.class, error.reason) {
                (FailureClass::RateLimited, _) => (RunState::Partial, StopReason::RateLimited),
                (_, Some(reason)) => stopped(reason),
                (FailureClass::Transient, None) => stopped(StopReason::Transient),
                (FailureClass::Permanent, None) => stopped(StopReason::Permanent),
                (FailureClass::Ambiguous, None) => stopped(StopReason::Ambiguous),
            };
            (s, Some(r), Some(format!("page {page}: {}", error.message)))
        }
        (None, Ending::Complete) if unidentified > 0 => {
            let msg = format!(
                "{unidentified} rejected offers had no id, so any offer missing from this run may be one of them; removal detection was skipped for this run"
            );
            tracing::warn!(source = %cfg.name, unidentified, "removal detection skipped");
            (
                RunState::Complete,
                Some(StopReason::RemovalsSkipped),
                Some(msg),
            )
        }
        (None, Ending::Complete) => {
            match store.finalize_complete(
                run_id,
                &cfg.name,
                holder,
                cfg.removal_grace_runs,
                cfg.max_removal_fraction,
                &Targets(targets),
                &now(),
            ) {
                Ok(FinalizeOutcome::Removed(_)) => (RunState::Complete, None, None),
                Ok(FinalizeOutcome::Held { candidates, live }) => {
                    let msg = format!(
                        "mass-removal guard: this run would remove {candidates} of {live} live offers ({:.0}% > max_removal_fraction {:.0}%); nothing was removed. If the source really dropped them, run `offersync approve-removals {}`",
                        candidates as f64 * 100.0 / live.max(1) as f64,
                        cfg.max_removal_fraction * 100.0,
                        cfg.name
                    );
                    tracing::warn!(source = %cfg.name, candidates, live, "removals held by the mass-removal guard");
                    (
                        RunState::Held,
                        Some(StopReason::MassRemovalGuard),
                        Some(msg),
                    )
                }
                Err(e) => (
                    RunState::Partial,
                    Some(StopReason::Database),
                    Some(e.to_string()),
                ),
            }
        }
    };
    let record = store
        .finish_run(
            run_id,
            state,
            reason.map(StopReason::as_str),
            message.as_deref(),
            requests,
            retries,
            rate_limited,
            &now(),
        )
        .and_then(|_| {
            if lease_lost {
                Ok(())
            } else {
                store.release_lease(&cfg.name, holder)
            }
        })
        .and_then(|_| store.run(run_id));
    match record {
        Ok(Some(t)) => RunReport::Finished(t),
        Ok(None) => RunReport::Error {
            source: cfg.name.clone(),
            error: format!("run {run_id} vanished from sync_runs"),
        },
        Err(e) => RunReport::Error {
            source: cfg.name.clone(),
            error: e.to_string(),
        },
    }
}

/// Record a run of `source` that could not start (its credential cannot be resolved, say) as
/// `failed` with `reason` and `error`, so it shows in `inspect runs`, `/metrics` and
/// `/healthz` like any other run.
pub fn record_unrunnable(
    db_path: &std::path::Path,
    busy_timeout: Duration,
    source: &str,
    reason: StopReason,
    error: &str,
) -> RunReport {
    let record = || -> Result<Option<RunTotals>, StoreError> {
        let mut store = Store::open(db_path, busy_timeout)?;
        let id = store.create_run(source, &now(), std::process::id(), &hostname())?;
        store.finish_run(
            id,
            RunState::Failed,
            Some(reason.as_str()),
            Some(error),
            0,
            0,
            0,
            &now(),
        )?;
        store.run(id)
    };
    match record() {
        Ok(Some(t)) => RunReport::Finished(t),
        Ok(None) => RunReport::Error {
            source: source.to_string(),
            error: "the run row vanished".into(),
        },
        Err(e) => RunReport::Error {
            source: source.to_string(),
            error: e.to_string(),
        },
    }
}

/// Apply the removals the mass-removal guard held for `cfg`'s source, under the source's lease.
pub fn approve_removals(
    ctx: &SyncContext,
    cfg: &SourceConfig,
) -> Result<Result<ApproveOutcome, LeaseHolder>, StoreError> {
    let mut store = Store::open_existing(&ctx.db_path, ctx.busy_timeout)?;
    let holder = holder_token();
    if let LeaseOutcome::Held(h) = store.acquire_lease(
        &cfg.name,
        &holder,
        std::process::id(),
        &ctx.host,
        ctx.lease_ttl,
        Utc::now(),
    )? {
        return Ok(Err(h));
    }
    let targets = ctx.targets_of(&cfg.name);
    let outcome = store.approve_removals(
        &cfg.name,
        cfg.removal_grace_runs,
        &Targets(&targets),
        &now(),
    );
    store.release_lease(&cfg.name, &holder)?;
    outcome.map(Ok)
}

/// A source ready to run: its config, its adapter and its endpoint.
pub struct Prepared {
    pub cfg: SourceConfig,
    pub source: Arc<dyn Source>,
    pub endpoint: Arc<Endpoint>,
}

/// The limiter key of a source: its `rate_limit_group`, or the source itself.
pub fn limiter_key(cfg: &SourceConfig) -> String {
    match &cfg.rate_limit_group {
        Some(g) => format!("group:{g}"),
        None => format!("source:{}", cfg.name),
    }
}

/// Resolve credentials and build adapters for `sources`, pacing each with its limiter from
/// `limiters` (shared within a `rate_limit_group`). Every problem is reported, keyed by its
/// config path, before anything runs.
pub fn prepare(
    sources: &[&SourceConfig],
    limiters: &Limiters,
) -> Result<Vec<Prepared>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for cfg in sources {
        let key = format!("sources[{}]", cfg.index);
        let secret = match crate::config::resolve_credential(&key, &cfg.credential) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let built = crate::sources::build(cfg, secret.clone()).and_then(|source| {
            let limiter = limiters.get(
                &limiter_key(cfg),
                cfg.http.requests_per_second,
                cfg.http.burst,
            );
            let endpoint = Endpoint::new(
                &cfg.name,
                crate::metrics::Role::Source,
                cfg.http.clone(),
                vec![secret],
                limiter,
            )?;
            Ok(Prepared {
                cfg: (*cfg).clone(),
                source: Arc::from(source),
                endpoint: Arc::new(endpoint),
            })
        });
        match built {
            Ok(p) => out.push(p),
            Err(e) => errors.push(format!("{key} ({}): {e}", cfg.name)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Run every prepared source once, at most `max_concurrent` at a time; one source failing never
/// stops another (invariant 9). Reports come back in the order given.
pub async fn run_all(
    ctx: &SyncContext,
    prepared: Vec<Prepared>,
    max_concurrent: usize,
) -> Vec<RunReport> {
    let sem = Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = prepared.len();
    for (i, p) in prepared.into_iter().enumerate() {
        let (ctx, sem) = (ctx.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let name = p.cfg.name.clone();
            let report = run_source(&ctx, &p.cfg, p.source, p.endpoint).await;
            (i, name, report)
        });
    }
    let mut reports: Vec<Option<RunReport>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, _, r)) => reports[i] = Some(r),
            Err(e) => tracing::error!(error = %e, "a source task panicked"),
        }
    }
    reports
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| RunReport::Error {
                source: "?".into(),
                error: "task panicked".into(),
            })
        })
        .collect()
}
