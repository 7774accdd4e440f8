//! `offersync check`: the config, the credentials and each platform answering.

use super::once::{invalid, prepare};
use super::UsageError;
use crate::config::{Config, SourceConfig};
use std::process::ExitCode;

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
