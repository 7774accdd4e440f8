//! The operators' actions, once: approve and reject what waits in a target's approval queue,
//! detach and attach a target offer, release the removals the mass-removal guard held, put dead
//! operations back in the queue, deliver. The command line (`cli::decide`, `cli::approve`,
//! `cli::push`) and the console call these and only print or render their answers, so no rule
//! exists twice.

use crate::config::{Config, TargetConfig};
use crate::model::{format_timestamp, OpKind};
use crate::store::{ApproveOutcome, Decided, LeaseHolder, Selection, Store, StoreError};
use crate::sync::{self, SyncContext};

/// Why an action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The config names no such target or source (with what it does name).
    #[error("{0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now() -> String {
    format_timestamp(chrono::Utc::now())
}

fn known(names: Vec<&str>) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The target `name` of `config`.
pub fn target<'a>(config: &'a Config, name: &str) -> Result<&'a TargetConfig, OpsError> {
    config
        .targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            OpsError::Unknown(format!(
                "no target {name:?} in {} (configured: {})",
                config.path.display(),
                known(config.targets.iter().map(|t| t.name.as_str()).collect())
            ))
        })
}

fn open(config: &Config) -> Result<Store, OpsError> {
    Ok(Store::open(
        &config.database.location,
        config.database.busy_timeout,
    )?)
}

/// Release what waits for approval on `target` (`Selection::All`: everything awaiting, not the
/// rejected; named offers: rejected ones too). Delivery follows with the next pass.
pub fn approve(config: &Config, target: &str, which: &Selection) -> Result<Decided, OpsError> {
    let t = self::target(config, target)?;
    Ok(open(config)?.approve(&t.name, which, &now())?)
}

/// Reject these offers on `target`: never created until approved by name.
pub fn reject(
    config: &Config,
    target: &str,
    offers: &[(String, String)],
) -> Result<Decided, OpsError> {
    let t = self::target(config, target)?;
    Ok(open(config)?.reject(&t.name, offers, &now())?)
}

/// Detach one target offer: offersync stops updating, pausing or activating it. `false` when the
/// target holds no such offer.
pub fn detach(
    config: &Config,
    target: &str,
    source: &str,
    external_id: &str,
    reason: &str,
) -> Result<bool, OpsError> {
    let t = self::target(config, target)?;
    Ok(crate::push::controls::detach(
        &mut open(config)?,
        t,
        source,
        external_id,
        reason,
        &now(),
    )?)
}

/// Attach a detached offer again with a fresh plan: `None` when it was not detached, else what
/// is now planned for it.
pub fn attach(
    config: &Config,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Option<OpKind>>, OpsError> {
    let t = self::target(config, target)?;
    Ok(crate::push::controls::attach(
        &mut open(config)?,
        t,
        source,
        external_id,
        &now(),
    )?)
}

/// The context a sync-side action runs in: the config's database, targets and notifiers.
pub fn sync_context(config: &Config) -> SyncContext {
    SyncContext::for_database(&config.database)
        .with_targets(config.targets.clone())
        .with_notify(config.notify_rules())
}

/// Apply the removals the mass-removal guard held for `source` (under its lease: `Err(holder)`
/// when another process is syncing it).
pub fn approve_removals(
    config: &Config,
    source: &str,
) -> Result<Result<ApproveOutcome, LeaseHolder>, OpsError> {
    let cfg = config.source(source).ok_or_else(|| {
        OpsError::Unknown(format!(
            "no source {source:?} in {} (configured: {})",
            config.path.display(),
            known(config.sources.iter().map(|s| s.name.as_str()).collect())
        ))
    })?;
    Ok(sync::approve_removals(&sync_context(config), cfg)?)
}

/// Plan `target`'s dead operations again from the mirror as it is now (a stale payload is never
/// resent); how many there were. Delivery follows with the next pass.
pub fn requeue_dead(config: &Config, target: &str) -> Result<u64, OpsError> {
    let t = self::target(config, target)?;
    Ok(crate::push::deliver::requeue_dead(&mut open(config)?, t)?)
}

/// Deliver every prepared target's outbox, each pass followed by the durable report of its dead
/// operations for the notifiers that want them.
pub async fn deliver_each(
    config: &Config,
    targets: Vec<crate::push::PreparedTarget>,
) -> Vec<crate::push::deliver::DeliveryReport> {
    let mut reports = Vec::new();
    let rules = config.notify_rules();
    for t in targets {
        let name = t.cfg.name.clone();
        reports.push(
            crate::push::deliver::deliver(
                &config.database,
                &t.cfg,
                t.target,
                t.endpoint,
                &sync::Shutdown::never(),
            )
            .await,
        );
        crate::webhook::record_dead(
            &config.database.location,
            config.database.busy_timeout,
            &name,
            &rules,
        );
    }
    reports
}
