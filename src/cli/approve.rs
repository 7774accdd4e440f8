//! `offersync approve-removals SOURCE`: apply what the mass-removal guard held.

use super::once::select;
use super::UsageError;
use crate::config::Config;
use crate::ops::{self, OpsError};
use crate::store::ApproveOutcome;
use std::process::ExitCode;

pub(crate) fn approve(config: &Config, name: &str) -> Result<ExitCode, UsageError> {
    select(config, &[name.to_string()])?;
    match ops::approve_removals(config, name) {
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
        Err(OpsError::Store(e)) if e.is_unusable() => {
            Err(super::db_error(&config.database.location)(e))
        }
        Err(e) => {
            eprintln!("offersync: {name}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
