//! The operator's commands: `approve` and `reject` what waits in a target's approval queue,
//! `detach` and `attach` a target offer. The actions are `crate::ops`'s (the console calls the
//! same); this file parses, prints and maps outcomes to exit codes.

use super::UsageError;
use crate::config::Config;
use crate::ops::{self, OpsError};
use crate::store::{Decided, Selection};
use std::process::ExitCode;

/// An action's error as the command's: an unknown name is a usage error, a database that cannot
/// be used says so with its path.
pub(crate) fn ops_error(config: &Config) -> impl Fn(OpsError) -> UsageError + '_ {
    move |e| match e {
        OpsError::Unknown(m) => UsageError::Other(m),
        OpsError::Store(e) => super::db_error(&config.database.location)(e),
    }
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
    let t = ops::target(config, name).map_err(ops_error(config))?;
    let which = match (all, source) {
        (true, None) => Selection::All,
        (false, Some(s)) if !ids.is_empty() => Selection::Offers(offers(s, ids)),
        _ => {
            return Err(UsageError::Other(
                "approve takes --all, or a SOURCE and one or more EXTERNAL_IDs".into(),
            ))
        }
    };
    let d = ops::approve(config, &t.name, &which).map_err(ops_error(config))?;
    report("released", &t.name, &d);
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
    let d = ops::reject(config, name, &offers(source, ids)).map_err(ops_error(config))?;
    report("rejected", name, &d);
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
    if detach {
        let reason = "detached by an operator (offersync detach)";
        if !ops::detach(config, name, source, external_id, reason).map_err(ops_error(config))? {
            eprintln!("offersync: {name} holds no offer {source} {external_id}; nothing detached");
            return Ok(ExitCode::from(1));
        }
        println!("{name}: {source} {external_id} detached: offersync will not update, pause or activate it");
        return Ok(ExitCode::SUCCESS);
    }
    match ops::attach(config, name, source, external_id).map_err(ops_error(config))? {
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
