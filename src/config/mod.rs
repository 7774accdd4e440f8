//! Configuration: defaults → TOML file → `OFFERSYNC__...` environment overrides, deserialized
//! with unknown keys rejected, then validated into [`Config`]. Every error names its key path
//! (`sources[1].schedule`) and what is wrong, and all errors are reported at once.

//!
//! `load.rs` reads, `raw.rs` is the file as written, `source.rs` and `target.rs` validate one
//! table each, `platform/` holds one file per source platform (its keys and checks), and
//! `credentials.rs` resolves keys.

mod console;
mod controls;
mod credentials;
mod database;
mod env;
mod load;
mod notify;
mod platform;
mod raw;
mod secret;
mod source;
mod target;

pub use console::{ConsoleConfig, DEFAULT_CONSOLE_LISTEN};
pub use controls::{Approval, AutoApprove, Controls, TargetDefaults};
pub use credentials::{resolve_credential, resolve_secret, CredentialSpec};
pub use notify::{NotifierConfig, NotifyFormat};
pub use platform::{
    AffiseApi, EverflowListing, FieldRule, GenericAuth, GenericPaging, GenericSpec,
    HasOffersMethod, OfferslookApi, OfferslookEndpoint, PathStep, PlatformOptions, RecordsAre,
    SourceKind, TrackierKeyIn, Transform,
};
pub use secret::Secret;
pub use source::{HttpPolicy, SourceConfig};
pub use target::{FieldPolicy, TargetConfig, TargetFilters, TargetKind};

pub use crate::model::{redact_url, Location, PgLocation};
use credentials::credential;
pub use database::hostname;
use raw::{RawConfig, RawSource};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the config is read from when neither `--config` nor `$OFFERSYNC_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/offersync/offersync.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config {path}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("config {path} is invalid:\n  {}", .errors.join("\n  "))]
    Invalid { path: PathBuf, errors: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub database: DatabaseConfig,
    pub daemon: DaemonConfig,
    /// `[console]`: the operator console (off unless `enabled`).
    pub console: ConsoleConfig,
    pub sources: Vec<SourceConfig>,
    pub targets: Vec<TargetConfig>,
    /// Webhook notifiers (`[[notify]]`).
    pub notify: Vec<NotifierConfig>,
    /// Valid but probably not what the operator means (printed by `check`, logged by the
    /// daemon), each with its key path.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The SQLite file (`path`) or the PostgreSQL database (`url`, with its password).
    pub location: Location,
    /// SQLite: how long to wait for another writer's lock. PostgreSQL: the connect timeout.
    pub busy_timeout: Duration,
    /// A source or target lease whose heartbeat is older than this is taken over by another
    /// worker (`lease_ttl_seconds`; on one host a dead holder's lease is taken at once).
    pub lease_ttl: Duration,
    /// Who this process is in leases and runs (`worker_id`, default the host name): each
    /// daemon sharing a PostgreSQL database needs its own.
    pub worker: String,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub metrics_listen: Option<String>,
    pub max_concurrent_sources: usize,
    /// Sync every enabled source once at start-up, before the first scheduled tick.
    pub run_on_start: bool,
    /// How long SIGTERM waits for running page transactions and pushes.
    pub shutdown_timeout: Duration,
    /// `/healthz` answers 503 when a source's last complete run is older than this.
    pub stale_after: Duration,
    /// How often each target's outbox is delivered (also right after a sync of its sources).
    pub delivery_interval: Duration,
}

impl Config {
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// What every notifier wants recorded.
    pub fn notify_rules(&self) -> Vec<crate::model::NotifyRule> {
        self.notify.iter().map(|n| n.rule.clone()).collect()
    }

    /// Resolve every enabled source's and target's credential now (environment variables set,
    /// files readable and not empty): the errors, each naming its key.
    pub fn credential_errors(&self) -> Vec<String> {
        let sources = self
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (format!("sources[{}]", s.index), &s.credential));
        let targets = self
            .targets
            .iter()
            .filter(|t| t.enabled)
            .map(|t| (format!("targets[{}]", t.index), &t.credential));
        let console = self
            .console
            .token
            .as_ref()
            .filter(|_| self.console.enabled)
            .and_then(|spec| resolve_secret("console", "token", spec).err());
        sources
            .chain(targets)
            .filter_map(|(key, spec)| resolve_credential(&key, spec).err())
            .chain(console)
            .collect()
    }
}

/// Collects every validation error with its key path.
pub(crate) struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, key: impl std::fmt::Display, message: impl std::fmt::Display) {
        self.0.push(format!("{key}: {message}"));
    }
}

/// `[database]`: exactly one of `path` (SQLite) and `url` (PostgreSQL); a PostgreSQL password
/// comes from `password_env` or `password_file`, never from the config file itself.
fn validate_database(
    d: &raw::RawDatabase,
    base: &Path,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Location {
    let fallback = || Location::Sqlite(PathBuf::from("offersync.db"));
    match (&d.path, &d.url) {
        (Some(path), None) => {
            if path.trim().is_empty() {
                errs.push("database.path", "must not be empty");
            }
            if d.password_env.is_some() || d.password_file.is_some() {
                errs.push(
                    "database.password_env",
                    "a password is for database.url (PostgreSQL); an SQLite file has none",
                );
            }
            Location::Sqlite(PathBuf::from(path))
        }
        (None, Some(url)) => {
            let shown = redact_url(url);
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                errs.push(
                    "database.url",
                    format!("{shown:?} is not a postgres:// URL (like \"postgres://offersync@db.example:5432/offersync\")"),
                );
                return fallback();
            }
            if let Err(e) = url.parse::<postgres::Config>() {
                errs.push("database.url", format!("{shown:?}: {e}"));
                return fallback();
            }
            if shown != *url {
                warnings.push(
                    "database.url: contains a password; move it to database.password_env or password_file (it is never logged either way)".into(),
                );
            }
            let spec = match (&d.password_env, &d.password_file) {
                (Some(e), None) => Some(credentials::CredentialSpec::Env(e.clone())),
                (None, Some(f)) => Some(credentials::CredentialSpec::File {
                    path: f.into(),
                    base: base.to_path_buf(),
                }),
                (None, None) => None,
                _ => {
                    errs.push(
                        "database.password_env",
                        "set at most one of password_env or password_file",
                    );
                    None
                }
            };
            let password =
                match spec.map(|s| credentials::resolve_secret("database", "password", &s)) {
                    Some(Ok(secret)) => Some(secret.expose().to_string()),
                    Some(Err(e)) => {
                        errs.0.push(e);
                        None
                    }
                    None => None,
                };
            Location::Postgres(PgLocation {
                url: url.clone(),
                password,
            })
        }
        (Some(_), Some(_)) => {
            errs.push(
                "database.url",
                "set either database.path (SQLite) or database.url (PostgreSQL), not both",
            );
            fallback()
        }
        (None, None) => {
            errs.push(
                "database.path",
                "missing: set database.path (an SQLite file) or database.url (PostgreSQL)",
            );
            fallback()
        }
    }
}

const NAME_HELP: &str =
    "use letters, digits, '-', '_' or '.' (it is used in the database and on the command line)";

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate(
    path: &Path,
    mut raw: RawConfig,
    raw_sources: Vec<RawSource>,
) -> Result<Config, ConfigError> {
    let mut errs = Errors(Vec::new());
    // Relative credential files are looked up beside the config file.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut warnings = Vec::new();
    let database = DatabaseConfig {
        location: validate_database(&raw.database, &base, &mut errs, &mut warnings),
        busy_timeout: Duration::from_secs(raw.database.busy_timeout_seconds.unwrap_or(10)),
        lease_ttl: Duration::from_secs(raw.database.lease_ttl_seconds.unwrap_or(900)),
        worker: match &raw.database.worker_id {
            Some(w) => {
                if !valid_name(w) {
                    errs.push("database.worker_id", NAME_HELP);
                }
                w.clone()
            }
            None => hostname(),
        },
    };
    if raw.database.lease_ttl_seconds.is_some_and(|s| s < 2) {
        errs.push("database.lease_ttl_seconds", "must be at least 2");
    }
    let daemon = validate_daemon(&raw.daemon, &mut errs);
    let console = console::validate_console(&raw.console, &base, &mut errs);

    let mut seen = HashSet::new();
    let mut sources = Vec::new();
    for (i, s) in raw_sources.into_iter().enumerate() {
        let key = format!("sources[{i}]");
        if !seen.insert(s.common.name.clone()) {
            errs.push(
                format!("{key}.name"),
                format!("duplicate source name {:?}", s.common.name),
            );
        }
        if let Some(src) = source::validate_source(&key, i, s, &base, &mut errs) {
            sources.push(src);
        }
    }

    let mut seen_targets = HashSet::new();
    let mut targets = Vec::new();
    for (i, t) in raw.targets.into_iter().enumerate() {
        let key = format!("targets[{i}]");
        if !seen_targets.insert(t.name.clone()) {
            errs.push(
                format!("{key}.name"),
                format!("duplicate target name {:?}", t.name),
            );
        }
        for (j, s) in t.sources.iter().enumerate() {
            if !seen.contains(s) {
                errs.push(
                    format!("{key}.sources[{j}]"),
                    format!("names source {s:?}, which is not configured"),
                );
            }
        }
        if let Some(tgt) = target::validate_target(&key, i, t, &base, &mut errs) {
            targets.push(tgt);
        }
    }

    let notify = notify::validate_notifiers(
        std::mem::take(&mut raw.notify),
        &seen,
        &seen_targets,
        &base,
        &mut errs,
    );
    if errs.0.is_empty() {
        warnings.extend(sources.iter().flat_map(SourceConfig::warnings));
        Ok(Config {
            path: path.to_path_buf(),
            database,
            daemon,
            console,
            sources,
            targets,
            notify,
            warnings,
        })
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: errs.0,
        })
    }
}

fn validate_url(key: &str, url: &str, errs: &mut Errors) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => errs.push(
            format!("{key}.base_url"),
            format!("scheme {:?} is not http or https", u.scheme()),
        ),
        Err(e) => errs.push(
            format!("{key}.base_url"),
            format!("{url:?} is not a URL ({e})"),
        ),
    }
}

/// Check a six-field cron expression (with seconds) the way the scheduler will parse it.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `[daemon]` with its defaults.
fn validate_daemon(d: &raw::RawDaemon, errs: &mut Errors) -> DaemonConfig {
    let daemon = DaemonConfig {
        metrics_listen: d.metrics_listen.clone(),
        max_concurrent_sources: d.max_concurrent_sources.unwrap_or(4),
        run_on_start: d.run_on_start.unwrap_or(false),
        shutdown_timeout: Duration::from_secs(d.shutdown_timeout_seconds.unwrap_or(30)),
        stale_after: Duration::from_secs(d.stale_after_seconds.unwrap_or(3600)),
        delivery_interval: Duration::from_secs(d.delivery_interval_seconds.unwrap_or(60).max(1)),
    };
    if daemon.max_concurrent_sources == 0 {
        errs.push("daemon.max_concurrent_sources", "must be at least 1");
    }
    if let Some(listen) = &daemon.metrics_listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            errs.push(
                "daemon.metrics_listen",
                format!("{listen:?} is not an address like \"127.0.0.1:9464\""),
            );
        }
    }
    daemon
}
