//! `[console]`: the operator console the daemon serves in the browser. Off unless `enabled`; its
//! own listener (default `127.0.0.1:9187`, apart from `/metrics`, which scrapers reach
//! unauthenticated); the token operators log in with, from `token_env` or `token_file` (never
//! written in the file itself, never printed).

use super::credentials::CredentialSpec;
use super::raw::RawConsole;
use super::Errors;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Where the console listens unless `console.listen` says: loopback only, so that read pages
/// need no login and nothing is reachable from the network until an operator decides so.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:9187";

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// The login token (`token_env` or `token_file`); `None` only when the console is off.
    pub token: Option<CredentialSpec>,
    /// How long a login lasts without activity.
    pub session_ttl: Duration,
}

impl ConsoleConfig {
    /// Whether read pages may be served without a login: only on a loopback listener.
    pub fn open_reads(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

pub(super) fn validate_console(c: &RawConsole, base: &Path, errs: &mut Errors) -> ConsoleConfig {
    let enabled = c.enabled.unwrap_or(false);
    let listen_text = c.listen.as_deref().unwrap_or(DEFAULT_CONSOLE_LISTEN);
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            errs.push(
                "console.listen",
                format!("{listen_text:?} is not an address like \"{DEFAULT_CONSOLE_LISTEN}\""),
            );
            DEFAULT_CONSOLE_LISTEN.parse().expect("a valid default")
        }
    };
    let token = match (&c.token_env, &c.token_file) {
        (Some(e), None) if !e.trim().is_empty() => Some(CredentialSpec::Env(e.clone())),
        (None, Some(f)) if !f.trim().is_empty() => Some(CredentialSpec::File {
            path: f.into(),
            base: base.to_path_buf(),
        }),
        (None, None) => {
            if enabled {
                errs.push(
                    "console.token_env",
                    "the console needs a login token: set token_env or token_file",
                );
            }
            None
        }
        _ => {
            errs.push(
                "console.token_env",
                "set exactly one non-empty of token_env or token_file",
            );
            None
        }
    };
    let minutes = c.session_minutes.unwrap_or(480);
    if minutes == 0 {
        errs.push("console.session_minutes", "must be at least 1");
    }
    ConsoleConfig {
        enabled,
        listen,
        token,
        session_ttl: Duration::from_secs(minutes.max(1) * 60),
    }
}
