//! Daemon mode (`offersync` without `--once`): a cron job per enabled source, one delivery
//! worker per target, graceful shutdown and config reload.
//!
//! - A tick whose source is still running is skipped and logged, never overlapped;
//!   `max_concurrent_sources` bounds parallel runs; the learnt pace (limiters) survives runs.
//! - SIGTERM / SIGINT: stop scheduling, let running page transactions and pushes finish (runs end
//!   `partial` with reason `shutdown`), bounded by `shutdown_timeout_seconds`, exit 0. A second
//!   signal exits at once (SQLite's WAL keeps the database consistent).
//! - SIGHUP: reload the config; a config that does not validate is logged and the old one kept.
//!   Sources and targets follow the new config; `[database]` and `[daemon]` changes need a restart.

mod observe;

pub use observe::health;

use crate::config::{Config, SourceConfig};
use crate::http::Limiters;
use crate::store::Store;
use crate::sync::{self, RunReport, Shutdown, SyncContext};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_cron_scheduler::{Job, JobScheduler};

/// Shared state of the running daemon.
pub struct Daemon {
    path: PathBuf,
    config: RwLock<Arc<Config>>,
    limiters: Limiters,
    shutdown: Shutdown,
    running: Mutex<HashSet<String>>,
    slots: Arc<tokio::sync::Semaphore>,
    deliver_now: tokio::sync::Notify,
    /// The last run of each source, for the systemd status line and `/healthz`.
    pub last_runs: Mutex<BTreeMap<String, RunReport>>,
}

impl Daemon {
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap().clone()
    }

    /// Ask every delivery worker for a pass now (the console does after an approval).
    pub fn deliver_soon(&self) {
        self.deliver_now.notify_waiters();
    }

    fn status_line(&self) -> String {
        let last = self.last_runs.lock().unwrap();
        let parts: Vec<String> = last
            .iter()
            .map(|(name, r)| match r {
                RunReport::Finished(t) => {
                    format!("{name}: {} ({} offers)", t.state.as_str(), t.offers_seen)
                }
                RunReport::Skipped { .. } => format!("{name}: skipped"),
                RunReport::Error { .. } => format!("{name}: error"),
            })
            .collect();
        if parts.is_empty() {
            "waiting for the first scheduled run".into()
        } else {
            parts.join("; ")
        }
    }
}

/// A pseudo-random delay below `max` (jitter needs no cryptographic randomness).
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    Duration::from_millis(nanos % max.as_millis().max(1) as u64)
}

/// One scheduled (or start-up) run of `name`.
async fn tick(d: Arc<Daemon>, name: String, scheduled: bool) {
    if d.shutdown.is_set() {
        return;
    }
    let config = d.config();
    let Some(src) = config.source(&name).filter(|s| s.enabled).cloned() else {
        return;
    };
    if !d.running.lock().unwrap().insert(name.clone()) {
        tracing::warn!(source = %name, "previous run still going; this tick is skipped");
        return;
    }
    if scheduled && !src.schedule_jitter.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(jitter(src.schedule_jitter)) => {}
            _ = d.shutdown.wait() => {}
        }
    }
    let permit = d.slots.clone().acquire_owned().await;
    if !d.shutdown.is_set() && permit.is_ok() {
        run_one(&d, &config, &src).await;
    }
    d.running.lock().unwrap().remove(&name);
    d.deliver_now.notify_waiters();
}

async fn run_one(d: &Daemon, config: &Config, src: &SourceConfig) {
    let prepared = match sync::prepare(&[src], &d.limiters) {
        Ok(mut p) => p.remove(0),
        Err(errors) => {
            // Recorded like any run, so inspect, /metrics and /healthz say so.
            let message = errors.join("; ");
            tracing::error!(source = %src.name, errors = %message, "source cannot run");
            let (db, name, rules) = (
                config.database.clone(),
                src.name.clone(),
                config.notify_rules(),
            );
            let report = tokio::task::spawn_blocking(move || {
                sync::record_unrunnable(
                    &db,
                    &name,
                    crate::model::StopReason::Credentials,
                    &message,
                    &rules,
                )
            })
            .await
            .unwrap_or_else(|e| RunReport::Error {
                source: src.name.clone(),
                error: e.to_string(),
            });
            observe::run_finished(&report, std::time::Duration::ZERO);
            d.last_runs.lock().unwrap().insert(src.name.clone(), report);
            crate::notify::status(&d.status_line());
            return;
        }
    };
    let ctx = SyncContext::for_database(&config.database)
        .with_targets(config.targets.clone())
        .with_notify(config.notify_rules())
        .with_shutdown(d.shutdown.clone());
    let started = std::time::Instant::now();
    let report = sync::run_source(&ctx, &prepared.cfg, prepared.source, prepared.endpoint).await;
    observe::run_finished(&report, started.elapsed());
    d.last_runs.lock().unwrap().insert(src.name.clone(), report);
    crate::notify::status(&d.status_line());
}

/// Send what the store recorded for the notifier `name`: every 5 seconds, what has waited its
/// `batch_seconds`; at shutdown, everything.
async fn notify_worker(d: Arc<Daemon>, name: String) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => false,
            _ = d.shutdown.wait() => true,
        };
        let config = d.config();
        match crate::webhook::prepare(&config, &d.limiters) {
            Ok(all) => {
                if let Some(n) = all.iter().find(|n| n.cfg.rule.name == name) {
                    let r = crate::webhook::deliver(&config.database, n, stopping).await;
                    if let Some(e) = &r.error {
                        tracing::error!(notifier = %name, error = %e, "notifications could not be delivered");
                    }
                }
            }
            Err(errors) => {
                tracing::error!(notifier = %name, errors = %errors.join("; "), "notifier cannot run")
            }
        }
        if stopping {
            return;
        }
    }
}

/// Deliver `target`'s outbox after every sync of its sources and every `delivery_interval`.
async fn delivery_worker(d: Arc<Daemon>, target: String) {
    loop {
        let interval = d.config().daemon.delivery_interval;
        tokio::select! {
            _ = d.deliver_now.notified() => {}
            _ = tokio::time::sleep(interval) => {}
            _ = d.shutdown.wait() => return,
        }
        let config = d.config();
        let Some(t) = config
            .targets
            .iter()
            .find(|t| t.name == target && t.enabled)
        else {
            continue;
        };
        match crate::push::prepare_targets(&[t], &d.limiters) {
            Ok(mut p) => {
                let p = p.remove(0);
                let r = crate::push::deliver::deliver(
                    &config.database,
                    &p.cfg,
                    p.target,
                    p.endpoint,
                    &d.shutdown,
                )
                .await;
                if let Some(e) = &r.error {
                    tracing::error!(target = %target, error = %e, "delivery could not run");
                }
                observe::delivered(&r);
                let (path, busy, rules, name) = (
                    config.database.location.clone(),
                    config.database.busy_timeout,
                    config.notify_rules(),
                    target.clone(),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    crate::webhook::record_dead(&path, busy, &name, &rules)
                })
                .await;
            }
            Err(errors) => {
                tracing::error!(target = %target, errors = %errors.join("; "), "target cannot run")
            }
        }
        let c = config.clone();
        let _ = tokio::task::spawn_blocking(move || observe::outbox_depth(&c)).await;
    }
}

async fn schedule(d: &Arc<Daemon>) -> Result<JobScheduler, String> {
    let sched = JobScheduler::new()
        .await
        .map_err(|e| format!("cannot start the scheduler: {e}"))?;
    for src in d.config().sources.iter().filter(|s| s.enabled) {
        let (d2, name) = (d.clone(), src.name.clone());
        let job = Job::new_async(src.schedule.as_str(), move |_, _| {
            let (d, name) = (d2.clone(), name.clone());
            Box::pin(async move {
                // Runs are spawned so a slow one never holds the scheduler's tick.
                tokio::spawn(tick(d, name, true));
            })
        })
        .map_err(|e| format!("sources ({}): schedule {:?}: {e}", src.name, src.schedule))?;
        sched
            .add(job)
            .await
            .map_err(|e| format!("cannot schedule {}: {e}", src.name))?;
    }
    sched
        .start()
        .await
        .map_err(|e| format!("cannot start the scheduler: {e}"))?;
    Ok(sched)
}

fn reload(d: &Daemon) -> bool {
    match Config::load(&d.path) {
        Ok(new) => {
            let sources = new.sources.len();
            *d.config.write().unwrap() = Arc::new(new);
            tracing::info!(sources, "config reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload failed; kept the previous config");
            false
        }
    }
}

/// Why the daemon could not start (the command exits 2).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database cannot be used (with its path and a hint).
    #[error("{0}")]
    Database(String),
    /// Signals, the scheduler or the metrics listener could not be set up.
    #[error("{0}")]
    Start(String),
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(path: PathBuf) -> Result<ExitCode, DaemonError> {
    let config = Config::load(&path)?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "config");
    }
    drop(
        Store::open(&config.database.location, config.database.busy_timeout)
            .map_err(|e| DaemonError::Database(e.explain(&config.database.location)))?,
    );
    let (shutdown_tx, shutdown) = Shutdown::new();
    let d = Arc::new(Daemon {
        path,
        slots: Arc::new(tokio::sync::Semaphore::new(
            config.daemon.max_concurrent_sources,
        )),
        limiters: Limiters::new(),
        shutdown,
        running: Mutex::new(HashSet::new()),
        deliver_now: tokio::sync::Notify::new(),
        last_runs: Mutex::new(BTreeMap::new()),
        config: RwLock::new(Arc::new(config)),
    });
    let config = d.config();
    let start = |e: std::io::Error| DaemonError::Start(format!("cannot handle signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(start)?;
    let mut int = signal(SignalKind::interrupt()).map_err(start)?;
    let mut hup = signal(SignalKind::hangup()).map_err(start)?;
    let mut sched = schedule(&d).await.map_err(DaemonError::Start)?;
    if let Some(listen) = &config.daemon.metrics_listen {
        observe::serve(listen, d.clone())
            .await
            .map_err(DaemonError::Start)?;
    }
    if config.console.enabled {
        let (d1, d2) = (d.clone(), d.clone());
        let host = crate::console::Host {
            config: Arc::new(move || d1.config()),
            deliver_soon: Arc::new(move || d2.deliver_soon()),
            started: chrono::Utc::now(),
        };
        let addr = crate::console::serve(&config.console, host)
            .await
            .map_err(DaemonError::Start)?;
        crate::notify::status(&format!("console on http://{addr}/"));
    }
    let workers: Vec<_> = config
        .targets
        .iter()
        .filter(|t| t.enabled)
        .map(|t| tokio::spawn(delivery_worker(d.clone(), t.name.clone())))
        .chain(
            config
                .notify
                .iter()
                .map(|n| tokio::spawn(notify_worker(d.clone(), n.rule.name.clone()))),
        )
        .collect();
    if config.daemon.run_on_start {
        for s in config.sources.iter().filter(|s| s.enabled) {
            tokio::spawn(tick(d.clone(), s.name.clone(), false));
        }
    }
    tracing::info!(
        sources = config.sources.iter().filter(|s| s.enabled).count(),
        targets = config.targets.iter().filter(|t| t.enabled).count(),
        "daemon started"
    );
    crate::notify::ready(&d.status_line());
    let watchdog = crate::notify::spawn_watchdog();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                crate::notify::reloading();
                if reload(&d) {
                    let _ = sched.shutdown().await;
                    match schedule(&d).await {
                        Ok(s) => sched = s,
                        Err(e) => tracing::error!(error = %e, "could not schedule the reloaded config"),
                    }
                }
                crate::notify::ready(&d.status_line());
            }
        }
    }
    drain(&d, shutdown_tx, &mut sched, term, int, &workers).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    crate::notify::flush(Duration::from_secs(1));
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Stop scheduling, tell running work to stop, and wait for it (at most
/// `shutdown_timeout_seconds`); a second signal exits at once.
async fn drain(
    d: &Daemon,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    sched: &mut JobScheduler,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    workers: &[tokio::task::JoinHandle<()>],
) {
    let config = d.config();
    tracing::info!("shutting down: letting running pages and pushes finish");
    crate::notify::stopping();
    let _ = shutdown_tx.send(true);
    let _ = sched.shutdown().await;
    // A second signal exits at once.
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("offersync: second signal, exiting now");
        std::process::exit(130);
    });
    let deadline = tokio::time::Instant::now() + config.daemon.shutdown_timeout;
    while !d.running.lock().unwrap().is_empty() || workers.iter().any(|w| !w.is_finished()) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("shutdown_timeout_seconds reached; exiting with work still running (the database stays consistent)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
