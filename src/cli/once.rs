//! `offersync --once`, `offersync check` and `offersync approve-removals`.

use super::output;
use super::UsageError;
use crate::config::{Config, SourceConfig};
use crate::http::Limiters;
use crate::store::ApproveOutcome;
use crate::sync::{self, RunReport, SyncContext};
use std::process::ExitCode;

pub(crate) fn context(config: &Config) -> SyncContext {
    SyncContext::new(config.database.path.clone(), config.database.busy_timeout)
}

/// The sources `--source` names (all must exist; disabled ones run when named), else every
/// enabled source.
fn select<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a SourceConfig>, UsageError> {
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

fn prepare(sources: &[&SourceConfig], config: &Config) -> Result<Vec<sync::Prepared>, UsageError> {
    sync::prepare(sources, &Limiters::new()).map_err(|errors| {
        UsageError::Other(format!(
            "config {} is invalid:\n  {}",
            config.path.display(),
            errors.join("\n  ")
        ))
    })
}

pub(crate) async fn run(config: &Config, names: &[String]) -> Result<ExitCode, UsageError> {
    let selected = select(config, names)?;
    if selected.is_empty() {
        return Err(UsageError::Other(format!(
            "no enabled sources in {}; add a [[sources]] table or name one with --source",
            config.path.display()
        )));
    }
    if !config.targets.is_empty() {
        tracing::warn!(
            targets = config.targets.len(),
            "pushing to targets is not implemented in this version; configured targets are validated but not used"
        );
    }
    let prepared = prepare(&selected, config)?;
    let reports = sync::run_all(
        &context(config),
        prepared,
        config.daemon.max_concurrent_sources,
    )
    .await;
    output::print_run_summary(&reports, None);
    Ok(exit_code(&reports))
}

pub(crate) fn exit_code(reports: &[RunReport]) -> ExitCode {
    if reports.iter().all(RunReport::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub(crate) async fn check(config: &Config, config_only: bool) -> Result<ExitCode, UsageError> {
    println!(
        "config {}: ok ({} source(s), {} target(s))",
        config.path.display(),
        config.sources.len(),
        config.targets.len()
    );
    if config_only {
        return Ok(ExitCode::SUCCESS);
    }
    let all: Vec<&SourceConfig> = config.sources.iter().collect();
    let prepared = prepare(&all, config)?;
    let mut ok = true;
    for p in prepared {
        let cursor = p.source.first_cursor();
        let probe = p
            .endpoint
            .call(|| p.source.request(&cursor), |r| p.source.parse(&cursor, r))
            .await;
        match probe {
            Ok(page) => println!(
                "source {}: ok ({} offers on the first page)",
                p.cfg.name,
                page.offers.len()
            ),
            Err(e) => {
                ok = false;
                println!("source {}: FAILED: {}", p.cfg.name, e.message);
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn approve(config: &Config, name: &str) -> Result<ExitCode, UsageError> {
    let cfg = select(config, &[name.to_string()])?[0];
    match sync::approve_removals(&context(config), cfg) {
        Ok(Ok(ApproveOutcome::Approved { run_id, removed })) => {
            println!("{name}: removed {removed} offer(s) held by run {run_id}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(ApproveOutcome::NothingHeld { last })) => {
            match last {
                Some((id, state)) => {
                    println!("{name}: nothing to approve (its last complete run, {id}, is {state})")
                }
                None => println!("{name}: nothing to approve (no complete run yet)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Err(holder)) => {
            eprintln!(
                "offersync: {name} is being synced by {holder}; try again when that run ends"
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("offersync: {name}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
