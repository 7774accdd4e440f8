//! One run of one source: lease → pages (fetch, parse, store, each page whole in one
//! transaction) → finalize.
//!
//! The fetch loop (async, `fetch.rs`) and the writer (a blocking thread owning the database
//! connection, `writer.rs`) are joined by a channel of a few pages (`writer::queue_depth`), so
//! memory is bounded by a few pages whatever the catalogue size (invariant 1) and fetching the
//! next page overlaps with storing the previous one. Pages that queued up while the writer was busy share its next
//! transaction. The pagination guards are a pure struct (`guards.rs`); how a run ends is decided
//! by a pure function and then recorded (`outcome.rs`); the lease is a guard released on every
//! path (`lease.rs`). Removal detection runs only when the source's own end signal was reached
//! (invariant 3).

mod context;
mod fetch;
mod guards;
mod lease;
mod outcome;
mod prepare;
mod writer;

pub use context::{
    holder_token, hostname, PageProgress, ProgressSink, RunReport, Shutdown, SyncContext,
};
pub use prepare::{limiter_key, prepare, Prepared};

use crate::config::SourceConfig;
use crate::http::Endpoint;
use crate::model::{format_timestamp, StopReason};
use crate::push::Targets;
use crate::sources::Source;
use crate::store::{
    ApproveOutcome, LeaseHolder, LeaseOutcome, RunState, RunTotals, Store, StoreError,
};
use chrono::Utc;
use fetch::FetchLoop;
use lease::RunLease;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

fn now() -> String {
    format_timestamp(Utc::now())
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
    let start = {
        let (ctx, name) = (ctx.clone(), name.clone());
        tokio::task::spawn_blocking(move || start_run(&ctx, &name)).await
    };
    let (store, lease) = match start {
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
    let span = tracing::info_span!("sync_run", source = %name, run_id = lease.run_id());
    run_pages(ctx, cfg, source, endpoint, store, lease)
        .instrument(span)
        .await
}

/// Take the source's lease and create its run (blocking). The lease guard releases the lease if
/// creating the run fails.
#[allow(clippy::type_complexity)]
fn start_run(
    ctx: &SyncContext,
    name: &str,
) -> Result<Result<(Store, RunLease), LeaseHolder>, StoreError> {
    let (holder, pid) = (holder_token(), std::process::id());
    let mut store = ctx.open()?;
    match store.acquire_lease(name, &holder, pid, &ctx.host, ctx.lease_ttl, Utc::now())? {
        LeaseOutcome::Held(h) => return Ok(Err(h)),
        LeaseOutcome::Acquired {
            took_over: Some(prev),
        } => {
            tracing::warn!(source = %name, previous = %prev, "took over a stale lease");
        }
        LeaseOutcome::Acquired { took_over: None } => {}
    }
    let mut lease = RunLease::taken(name, &holder, ctx.db_path.clone(), ctx.busy_timeout);
    let run_id = store.create_run(name, &now(), pid, &ctx.host)?;
    lease.set_run(run_id);
    store.set_lease_run(name, &holder, run_id)?;
    Ok(Ok((store, lease)))
}

/// The pages of a started run: the writer on its thread, the fetch loop here, then the end.
async fn run_pages(
    ctx: &SyncContext,
    cfg: &SourceConfig,
    source: Arc<dyn Source>,
    endpoint: Arc<Endpoint>,
    store: Store,
    lease: RunLease,
) -> RunReport {
    let targets = ctx.targets_of(&cfg.name);
    let name = cfg.name.clone();
    tracing::info!("sync started");
    let (req0, retry0, limited0) = endpoint.counters.snapshot();
    let (tx, rx) = tokio::sync::mpsc::channel(writer::queue_depth(&store));
    let encode_ahead = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer_task = {
        let (name, holder, targets) = (name.clone(), lease.holder().to_string(), targets.clone());
        let run_id = lease.run_id();
        let span = tracing::Span::current();
        let (encode_ahead, connect_timeout) = (encode_ahead.clone(), ctx.busy_timeout);
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                writer::writer(
                    store,
                    rx,
                    run_id,
                    name,
                    holder,
                    targets,
                    &encode_ahead,
                    connect_timeout,
                )
            })
        })
    };
    let mut fetch = FetchLoop::new(ctx, cfg, source, endpoint.clone(), encode_ahead);
    let ending = fetch.run(tx).await;
    let started = fetch.started;
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
    let notify = ctx.notify.clone();
    let span = tracing::Span::current();
    let report = tokio::task::spawn_blocking(move || {
        span.in_scope(|| outcome::finish(done, ending, &cfg, lease, (&targets, &notify), counters))
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

/// Record a run of `source` that could not start (its credential cannot be resolved, say) as
/// `failed` with `reason` and `error`, so it shows in `inspect runs`, `/metrics` and
/// `/healthz` like any other run.
pub fn record_unrunnable(
    db: &crate::config::DatabaseConfig,
    source: &str,
    reason: StopReason,
    error: &str,
    notify: &[crate::model::NotifyRule],
) -> RunReport {
    let record = || -> Result<Option<RunTotals>, StoreError> {
        let mut store = Store::open(&db.location, db.busy_timeout)?;
        let id = store.create_run(source, &now(), std::process::id(), &db.worker)?;
        store.finish_run(
            id,
            RunState::Failed,
            Some(reason.as_str()),
            Some(error),
            (0, 0, 0),
            notify,
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
    let names: Vec<String> = prepared.iter().map(|p| p.cfg.name.clone()).collect();
    for (i, p) in prepared.into_iter().enumerate() {
        let (ctx, sem) = (ctx.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let report = run_source(&ctx, &p.cfg, p.source, p.endpoint).await;
            (i, report)
        });
    }
    let mut reports: Vec<Option<RunReport>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => reports[i] = Some(r),
            Err(e) => tracing::error!(error = %e, "a source task panicked"),
        }
    }
    reports
        .into_iter()
        .zip(names)
        .map(|(r, source)| {
            r.unwrap_or_else(|| RunReport::Error {
                source,
                error: "the run's task panicked".into(),
            })
        })
        .collect()
}
