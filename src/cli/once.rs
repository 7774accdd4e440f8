//! `offersync --once`: sync the selected sources once, then push their changes.

use super::output;
use super::push::{deliver_each, no_dead, prepare_targets, selected_targets};
use super::UsageError;
use crate::config::{Config, SourceConfig};
use crate::http::Limiters;
use crate::push;
use crate::sync::{self, RunReport, SyncContext};
use std::io::IsTerminal;
use std::process::ExitCode;

pub(crate) fn context(config: &Config) -> SyncContext {
    crate::ops::sync_context(config)
}

/// The sources `--source` names (all must exist; disabled ones run when named), else every
/// enabled source.
pub(crate) fn select<'a>(
    config: &'a Config,
    names: &[String],
) -> Result<Vec<&'a SourceConfig>, UsageError> {
    if names.is_empty() {
        return Ok(config.sources.iter().filter(|s| s.enabled).collect());
    }
    names
        .iter()
        .map(|n| {
            config.source(n).ok_or_else(|| {
                let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
                UsageError::Other(format!(
                    "--source {n}: no such source in {} (configured: {})",
                    config.path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })
        })
        .collect()
}

pub(crate) fn prepare(
    sources: &[&SourceConfig],
    config: &Config,
) -> Result<Vec<sync::Prepared>, UsageError> {
    sync::prepare(sources, &Limiters::new()).map_err(invalid(config))
}

pub(crate) async fn run(
    config: &Config,
    names: &[String],
    (push, notify): (bool, bool),
    format: Option<output::Format>,
) -> Result<ExitCode, UsageError> {
    let selected = select(config, names)?;
    if selected.is_empty() {
        return Err(UsageError::Other(format!(
            "no enabled sources in {}; add a [[sources]] table or name one with --source",
            config.path.display()
        )));
    }
    let prepared = prepare(&selected, config)?;
    // Credentials of the targets are checked before anything runs, like the sources'.
    let push_to = if push {
        selected_targets(config, None)?
    } else {
        Vec::new()
    };
    let targets = prepare_targets(&push_to, config)?;
    // The notifiers' URLs too (a notifier that cannot send is a config error, found now).
    let notifiers = if notify {
        crate::webhook::prepare(config, &crate::http::Limiters::new()).map_err(invalid(config))?
    } else {
        Vec::new()
    };
    // A database that cannot be used stops everything before anything is fetched.
    drop(super::open_db(config)?);
    let mut ctx = context(config);
    if std::io::stderr().is_terminal() {
        ctx = ctx.with_progress(std::sync::Arc::new(super::progress::Bars::new()));
    }
    let reports = sync::run_all(&ctx, prepared, config.daemon.max_concurrent_sources).await;
    let deliveries = deliver_each(config, targets).await;
    output::print_once_summary(&reports, &deliveries, format);
    // What the runs and deliveries recorded for the notifiers goes out now (all of it: the
    // batching window is this run). A failed message stays pending for the next run or the
    // daemon; it does not change the exit code.
    for n in &notifiers {
        let r = crate::webhook::deliver(&config.database, n, true).await;
        if let Some(e) = &r.error {
            tracing::error!(notifier = %r.notifier, error = %e, "notifications could not be delivered");
        }
    }
    let pushed_ok = deliveries.iter().all(push::deliver::DeliveryReport::ok);
    let none_dead = no_dead(config, &push_to);
    let pushed_ok = pushed_ok && none_dead;
    Ok(if reports.iter().all(RunReport::ok) && pushed_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn exit_code(reports: &[RunReport]) -> ExitCode {
    if reports.iter().all(RunReport::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Credential and adapter problems found while preparing, as the config error they are.
pub(crate) fn invalid(config: &Config) -> impl FnOnce(Vec<String>) -> UsageError + '_ {
    |errors| {
        UsageError::Config(crate::config::ConfigError::Invalid {
            path: config.path.clone(),
            errors,
        })
    }
}
