//! What every run shares: where it writes, its targets, the shutdown signal, progress, and the
//! report a run attempt ends with.

use crate::config::TargetConfig;
use crate::store::{LeaseHolder, Location, RunState, RunTotals, Store, StoreError};
use chrono::Utc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where and as whom runs write.
#[derive(Debug, Clone)]
pub struct SyncContext {
    pub db_path: Location,
    pub busy_timeout: Duration,
    /// A lease whose heartbeat is older than this is taken over even if its holder may be alive
    /// (another host). Heartbeats are written with every page.
    pub lease_ttl: Duration,
    pub host: String,
    /// Push targets: changes of the sources they list are planned into the outbox.
    pub targets: Arc<Vec<TargetConfig>>,
    /// What the notifiers want reported when a run ends.
    pub notify: Arc<Vec<crate::model::NotifyRule>>,
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
    /// Runs on the config's database, as its worker, with its lease TTL.
    pub fn for_database(db: &crate::config::DatabaseConfig) -> SyncContext {
        let mut ctx = SyncContext::new(db.location.clone(), db.busy_timeout);
        ctx.lease_ttl = db.lease_ttl;
        ctx.host = db.worker.clone();
        ctx
    }

    pub fn new(db_path: impl Into<Location>, busy_timeout: Duration) -> SyncContext {
        SyncContext {
            db_path: db_path.into(),
            busy_timeout,
            lease_ttl: Duration::from_secs(900),
            host: hostname(),
            targets: Arc::new(Vec::new()),
            notify: Arc::new(Vec::new()),
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

    /// The same context, recording notifications for `rules`.
    pub fn with_notify(mut self, rules: Vec<crate::model::NotifyRule>) -> SyncContext {
        self.notify = Arc::new(rules);
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

    pub(super) fn open(&self) -> Result<Store, StoreError> {
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

pub use crate::config::hostname;

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
