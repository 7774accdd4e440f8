//! Logging: `tracing` to stderr, human-readable on a terminal, JSON when
//! `OFFERSYNC_LOG_FORMAT=json` or under systemd (`JOURNAL_STREAM` set); level via `RUST_LOG`
//! (default `info`, or what the caller asks for: the demo keeps its output readable with `warn`).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = match std::env::var("OFFERSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok(_) => false,
        Err(_) => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init()
    };
}
