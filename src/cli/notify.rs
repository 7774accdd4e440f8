//! `offersync notify --test NAME`: send one test message through a notifier now.

use super::UsageError;
use crate::config::Config;
use std::process::ExitCode;

pub(crate) async fn test(config: &Config, name: &str) -> Result<ExitCode, UsageError> {
    if !config.notify.iter().any(|n| n.rule.name == name) {
        let known: Vec<&str> = config.notify.iter().map(|n| n.rule.name.as_str()).collect();
        return Err(UsageError::Other(format!(
            "no notifier {name:?} in {} (configured: {})",
            config.path.display(),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )));
    }
    let notifiers = crate::webhook::prepare(config, &crate::http::Limiters::new())
        .map_err(super::once::invalid(config))?;
    let n = notifiers
        .iter()
        .find(|n| n.cfg.rule.name == name)
        .expect("prepared with the config");
    match crate::webhook::send_test(n).await {
        Ok(()) => {
            println!("{name}: test message sent");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("offersync: {name}: the test message was not delivered: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
