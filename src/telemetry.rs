//! Logging: `tracing` to stderr, human-readable on a terminal and JSON otherwise (pipes, files,
//! systemd's journal); `OFFERSYNC_LOG_FORMAT=human|json` decides explicitly. Level via
//! `RUST_LOG` (default `info`, or what the caller asks for: the demo and `--once` on a terminal
//! use `warn` to keep their output readable).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let terminal = std::io::stderr().is_terminal();
    let json = match std::env::var("OFFERSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("human") => false,
        _ => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.with_ansi(terminal).with_target(false).try_init()
    };
}
