//! The operator's commands: `approve` and `reject` what waits in a target's approval queue,
//! `detach` and `attach` a target offer.

use super::UsageError;
use crate::config::{Config, TargetConfig};
use crate::model::format_timestamp;
use crate::store::{Decided, Selection};
use std::process::ExitCode;

fn target<'a>(config: &'a Config, name: &str) -> Result<&'a TargetConfig, UsageError> {
    config
        .targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
            UsageError::Other(format!(
                "no target {name:?} in {} (configured: {})",
                config.path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
}

fn now() -> String {
    format_timestamp(chrono::Utc::now())
}

fn offers(source: &str, ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| (source.to_string(), id.clone()))
        .collect()
}

fn report(verb: &str, target: &str, d: &Decided) {
    println!("{target}: {} operation(s) {verb}", d.operations);
    for (s, id) in &d.recorded_only {
        eprintln!(
            "offersync: {target}: nothing waits for {s} {id}; the decision is recorded and its next plan follows it"
        );
    }
}

/// `offersync approve TARGET (--all | SOURCE EXTERNAL_ID...) [--deliver]`.
pub(crate) async fn approve(
    config: &Config,
    name: &str,
    all: bool,
    source: Option<&str>,
    ids: &[String],
    deliver: bool,
) -> Result<ExitCode, UsageError> {
    let t = target(config, name)?;
    let which = match (all, source) {
        (true, None) => Selection::All,
        (false, Some(s)) if !ids.is_empty() => Selection::Offers(offers(s, ids)),
        _ => {
            return Err(UsageError::Other(
                "approve takes --all, or a SOURCE and one or more EXTERNAL_IDs".into(),
            ))
        }
    };
    let mut store = super::open_db(config)?;
    let d = store
        .approve(&t.name, &which, &now())
        .map_err(super::db_error(&config.database.path))?;
    report("released", &t.name, &d);
    drop(store);
    if !deliver {
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = super::push::prepare_targets(&[t], config)?;
    let ok = super::push::deliver_all(config, prepared, None).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `offersync reject TARGET SOURCE EXTERNAL_ID...`.
pub(crate) fn reject(
    config: &Config,
    name: &str,
    source: &str,
    ids: &[String],
) -> Result<ExitCode, UsageError> {
    let t = target(config, name)?;
    let mut store = super::open_db(config)?;
    let d = store
        .reject(&t.name, &offers(source, ids), &now())
        .map_err(super::db_error(&config.database.path))?;
    report("rejected", &t.name, &d);
    Ok(ExitCode::SUCCESS)
}

/// `offersync detach|attach TARGET SOURCE EXTERNAL_ID`.
pub(crate) fn detach_or_attach(
    config: &Config,
    name: &str,
    source: &str,
    external_id: &str,
    detach: bool,
) -> Result<ExitCode, UsageError> {
    let t = target(config, name)?;
    let mut store = super::open_db(config)?;
    let db_err = super::db_error(&config.database.path);
    if detach {
        let reason = "detached by an operator (offersync detach)";
        if !crate::push::controls::detach(&mut store, t, source, external_id, reason, &now())
            .map_err(db_err)?
        {
            eprintln!("offersync: {name} holds no offer {source} {external_id}; nothing detached");
            return Ok(ExitCode::from(1));
        }
        println!("{name}: {source} {external_id} detached: offersync will not update, pause or activate it");
        return Ok(ExitCode::SUCCESS);
    }
    match crate::push::controls::attach(&mut store, t, source, external_id, &now())
        .map_err(db_err)?
    {
        None => {
            eprintln!(
                "offersync: {name}: {source} {external_id} is not detached; nothing to attach"
            );
            Ok(ExitCode::from(1))
        }
        Some(op) => {
            let next = op.map_or("nothing to send".to_string(), |k| format!("planned: {k}"));
            println!("{name}: {source} {external_id} attached ({next})");
            Ok(ExitCode::SUCCESS)
        }
    }
}
