//! `offersync --once`, `offersync check` and `offersync approve-removals`.

use super::output;
use super::UsageError;
use crate::config::TargetConfig;
use crate::config::{Config, SourceConfig};
use crate::http::Limiters;
use crate::push;
use crate::store::{ApproveOutcome, Store};
use crate::sync::{self, RunReport, SyncContext};
use std::io::IsTerminal;
use std::process::ExitCode;

pub(crate) fn context(config: &Config) -> SyncContext {
    SyncContext::new(config.database.path.clone(), config.database.busy_timeout)
        .with_targets(config.targets.clone())
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Only this target
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    /// Put dead operations back in the queue and deliver
    #[arg(long, conflicts_with = "plan")]
    retry_dead: bool,
    /// Print what the next delivery would create, update, pause or activate (sends nothing)
    #[arg(long)]
    plan: bool,
    /// With --plan: show at most this many operations per target (all are counted)
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    format: Option<output::Format>,
}

fn selected_targets<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> Result<Vec<&'a TargetConfig>, UsageError> {
    if let Some(name) = only {
        return match config.targets.iter().find(|t| t.name == name) {
            Some(t) => Ok(vec![t]),
            None => Err(UsageError::Other(format!(
                "--target {name}: no such target in {}",
                config.path.display()
            ))),
        };
    }
    Ok(config.targets.iter().filter(|t| t.enabled).collect())
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

pub(crate) fn prepare_targets(
    targets: &[&TargetConfig],
    config: &Config,
) -> Result<Vec<push::PreparedTarget>, UsageError> {
    push::prepare_targets(targets, &Limiters::new()).map_err(invalid(config))
}

/// Deliver every prepared target's outbox; prints a summary (`format`: `None` for the default,
/// `Some` to choose; not printed at all when `print` is false) and returns the reports.
pub(crate) async fn deliver_each(
    config: &Config,
    targets: Vec<push::PreparedTarget>,
) -> Vec<push::deliver::DeliveryReport> {
    let mut reports = Vec::new();
    for t in targets {
        reports.push(
            push::deliver::deliver(
                &config.database.path,
                config.database.busy_timeout,
                &t.cfg,
                t.target,
                t.endpoint,
                &sync::Shutdown::never(),
            )
            .await,
        );
    }
    reports
}

/// Deliver and print the summary; whether all went well.
pub(crate) async fn deliver_all(
    config: &Config,
    targets: Vec<push::PreparedTarget>,
    format: Option<output::Format>,
) -> bool {
    let reports = deliver_each(config, targets).await;
    output::print_delivery_summary(&reports, format);
    reports.iter().all(push::deliver::DeliveryReport::ok)
}

pub(crate) async fn push(config: &Config, args: PushArgs) -> Result<ExitCode, UsageError> {
    let selected = selected_targets(config, args.target.as_deref())?;
    if selected.is_empty() {
        return Err(UsageError::Other(format!(
            "no enabled targets in {}",
            config.path.display()
        )));
    }
    if args.plan {
        return dry_run(config, args.target.as_deref(), args.limit, args.format);
    }
    let mut store = super::open_db(config)?;
    if args.retry_dead {
        let mut n = 0;
        for t in &selected {
            n += push::deliver::requeue_dead(&mut store, t)
                .map_err(super::db_error(&config.database.path))?;
        }
        eprintln!("{n} dead operation(s) back in the queue");
    }
    drop(store);
    let prepared = prepare_targets(&selected, config)?;
    let ok = deliver_all(config, prepared, args.format).await;
    let none_dead = no_dead(config, &selected);
    Ok(if ok && none_dead {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether none of `targets` has dead operations (they are reported, and the exit code is 1
/// until they are requeued or dropped).
fn no_dead(config: &Config, targets: &[&TargetConfig]) -> bool {
    let Ok(store) = Store::open_read_only(&config.database.path, config.database.busy_timeout)
    else {
        return false;
    };
    let mut none = true;
    for t in targets {
        match store.dead_count(Some(&t.name)) {
            Ok(0) => {}
            Ok(n) => {
                none = false;
                eprintln!(
                    "offersync: target {}: {n} dead operation(s); see `offersync inspect pushes --target {} --state dead`, then `offersync push --retry-dead --target {}`",
                    t.name, t.name, t.name
                );
            }
            Err(e) => {
                none = false;
                eprintln!("offersync: target {}: {e}", t.name);
            }
        }
    }
    none
}

/// What each target would be sent, planned from the mirror as it is. Reads only.
pub(crate) fn dry_run(
    config: &Config,
    only: Option<&str>,
    limit: usize,
    format: Option<output::Format>,
) -> Result<ExitCode, UsageError> {
    let store = super::open_read_only_db(&config.database.path, config.database.busy_timeout)?;
    let mut rows = Vec::new();
    for t in selected_targets(config, only)? {
        let crate::store::Preview { shown, counts } =
            push::preview(&store, t, limit).map_err(super::db_error(&config.database.path))?;
        let total: u64 = counts.values().sum();
        let by_kind: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        eprintln!(
            "target {}: {} operation(s){}{}",
            t.name,
            total,
            if by_kind.is_empty() {
                String::new()
            } else {
                format!(": {}", by_kind.join(", "))
            },
            if total as usize > shown.len() {
                format!(" (showing the first {})", shown.len())
            } else {
                String::new()
            }
        );
        for (source, external_id, op) in shown {
            rows.push(vec![
                t.name.clone().into(),
                op.kind.as_str().into(),
                source.into(),
                external_id.into(),
                op.skipped.map_or(serde_json::Value::Null, Into::into),
                serde_json::Value::Object(op.fields),
            ]);
        }
    }
    let table = crate::store::query::Table {
        columns: [
            "target",
            "op",
            "source",
            "external_id",
            "skipped",
            "payload",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    output::print(&table, output::Format::resolve(format));
    Ok(ExitCode::SUCCESS)
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

pub(crate) fn prepare(
    sources: &[&SourceConfig],
    config: &Config,
) -> Result<Vec<sync::Prepared>, UsageError> {
    sync::prepare(sources, &Limiters::new()).map_err(invalid(config))
}

pub(crate) async fn run(
    config: &Config,
    names: &[String],
    push: bool,
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
    // A database that cannot be used stops everything before anything is fetched.
    drop(super::open_db(config)?);
    let mut ctx = context(config);
    if std::io::stderr().is_terminal() {
        ctx = ctx.with_progress(std::sync::Arc::new(super::progress::Bars::new()));
    }
    let reports = sync::run_all(&ctx, prepared, config.daemon.max_concurrent_sources).await;
    let deliveries = deliver_each(config, targets).await;
    output::print_once_summary(&reports, &deliveries, format);
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

pub(crate) async fn check(config: &Config, config_only: bool) -> Result<ExitCode, UsageError> {
    // Credentials that cannot be resolved are a config error (the unit's ExecStartPre runs
    // `check --config-only`, so a missing key stops the service before it reports ready).
    let errors = config.credential_errors();
    if !errors.is_empty() {
        return Err(invalid(config)(errors));
    }
    println!(
        "config {}: ok ({} source(s), {} target(s))",
        config.path.display(),
        config.sources.len(),
        config.targets.len()
    );
    for w in &config.warnings {
        println!("warning: {w}");
    }
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
        Err(e) if e.is_unusable() => Err(super::db_error(&config.database.path)(e)),
        Err(e) => {
            eprintln!("offersync: {name}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
