//! `offersync push`: deliver the outbox, `--plan` to preview it, `--retry-dead` to plan dead
//! operations again; also the delivery `--once` and the demo run after their syncs.

use super::once::invalid;
use super::output;
use super::UsageError;
use crate::config::Config;
use crate::config::TargetConfig;
use crate::http::Limiters;
use crate::push;
use crate::store::Store;
use std::process::ExitCode;

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

pub(crate) fn selected_targets<'a>(
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

pub(crate) fn prepare_targets(
    targets: &[&TargetConfig],
    config: &Config,
) -> Result<Vec<push::PreparedTarget>, UsageError> {
    push::prepare_targets(targets, &Limiters::new()).map_err(invalid(config))
}

/// Deliver every prepared target's outbox (`ops::deliver_each`, the console's too); the reports.
pub(crate) async fn deliver_each(
    config: &Config,
    targets: Vec<push::PreparedTarget>,
) -> Vec<push::deliver::DeliveryReport> {
    crate::ops::deliver_each(config, targets).await
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
    // Created and migrated here, so a database that cannot be used is exit 2 before anything.
    drop(super::open_db(config)?);
    if args.retry_dead {
        let mut n = 0;
        for t in &selected {
            n += crate::ops::requeue_dead(config, &t.name)
                .map_err(super::decide::ops_error(config))?;
        }
        eprintln!("{n} dead operation(s) back in the queue");
    }
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
pub(crate) fn no_dead(config: &Config, targets: &[&TargetConfig]) -> bool {
    let Ok(store) = Store::open_read_only(&config.database.location, config.database.busy_timeout)
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
    let store = super::open_read_only_db(&config.database.location, config.database.busy_timeout)?;
    let mut rows = Vec::new();
    for t in selected_targets(config, only)? {
        let crate::store::Preview { shown, counts } =
            push::preview(&store, t, limit).map_err(super::db_error(&config.database.location))?;
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
