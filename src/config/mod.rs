//! Configuration: defaults → TOML file → `OFFERSYNC__...` environment overrides, deserialized
//! with unknown keys rejected, then validated into [`Config`]. Every error names its key path
//! (`sources[1].schedule`) and what is wrong, and all errors are reported at once.

mod env;
mod platform;
mod raw;
mod secret;

pub use platform::{
    AffiseApi, FieldRule, GenericAuth, GenericPaging, GenericSpec, OfferslookApi,
    OfferslookEndpoint, PathStep, PlatformOptions, RecordsAre, Transform,
};
pub use secret::Secret;

use raw::{RawConfig, RawSource, RawTarget};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::model::{normalize_country, parse_decimal, OfferStatus, PayoutType};

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
    pub sources: Vec<SourceConfig>,
    pub targets: Vec<TargetConfig>,
    /// Valid but probably not what the operator means (printed by `check`, logged by the
    /// daemon), each with its key path.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    pub busy_timeout: Duration,
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

/// The platforms offersync can read offers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Trackly,
    Offerslook,
    /// Youmi / Adxmi publisher server-to-server offer feed.
    S2s,
    Affise,
    Generic,
}

impl SourceKind {
    pub const ALL: [SourceKind; 5] = [
        SourceKind::Trackly,
        SourceKind::Offerslook,
        SourceKind::S2s,
        SourceKind::Affise,
        SourceKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Trackly => "trackly",
            SourceKind::Offerslook => "offerslook",
            SourceKind::S2s => "s2s",
            SourceKind::Affise => "affise",
            SourceKind::Generic => "generic",
        }
    }
}

/// How a credential is supplied; resolved to a [`Secret`] only by commands that call platforms.
#[derive(Debug, Clone)]
pub enum CredentialSpec {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file. A relative path is looked up in `$CREDENTIALS_DIRECTORY` (systemd's
    /// `LoadCredential=`) first, then in `base`, the config file's folder: never in the
    /// current directory, so `sudo offersync check` finds what the service finds.
    File {
        path: PathBuf,
        base: PathBuf,
    },
    Literal(Secret),
}

/// Per-request timeouts and retry budget of one source or target.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_attempts: u32,
    pub initial_interval: Duration,
    pub max_interval: Duration,
    pub max_elapsed: Duration,
    pub max_retry_after: Duration,
    pub requests_per_second: f64,
    pub burst: u32,
    /// Wall-clock budget of a whole run; past it the run stops as partial.
    pub run_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub base_url: String,
    pub enabled: bool,
    pub credential: CredentialSpec,
    pub schedule: String,
    /// A random delay of up to this long before each scheduled run (spreads load).
    pub schedule_jitter: Duration,
    pub page_size: u32,
    pub max_pages: u64,
    pub rate_limit_group: Option<String>,
    pub removal_grace_runs: u32,
    pub max_removal_fraction: f64,
    pub http: HttpPolicy,
    /// Kind-specific options.
    pub options: PlatformOptions,
    /// Index in the config file's `[[sources]]` array, for error messages.
    pub index: usize,
}

impl SourceConfig {
    /// What is valid but probably not meant, for `check`.
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let PlatformOptions::S2s { country: None, .. } = &self.options {
            out.push(format!(
                "sources[{}].country is not set: the platform then filters offers by the country of the IP address offersync calls from (\"When it is empty, the country where the IP is located will be used\"); set the countries you want, e.g. country = \"US,GB\"",
                self.index
            ));
        }
        out
    }
}

/// Per-field push policy (`always` keeps the target in step, `once` sets it at create only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPolicy {
    Always,
    Once,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Offerit,
    Affise,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Offerit => "offerit",
            TargetKind::Affise => "affise",
        }
    }

    /// The pushed fields a create must carry, per the platform's own document: Offerit's
    /// `add_offer` requires `name` and `url` (seed 003); Affise's `POST /3.0/admin/offer` requires
    /// `title`, `advertiser`, `url` and a payout (seed 001; the advertiser comes from the config).
    pub fn required_on_create(self) -> &'static [&'static str] {
        match self {
            TargetKind::Offerit => &["name", "url"],
            TargetKind::Affise => &["name", "url", "payout"],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TargetFilters {
    pub status: Option<Vec<OfferStatus>>,
    pub countries: Option<Vec<String>>,
    pub min_payout: Option<Decimal>,
    pub payout_types: Option<Vec<PayoutType>>,
    pub categories: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub base_url: String,
    pub enabled: bool,
    pub api_username: Option<String>,
    pub credential: CredentialSpec,
    pub sources: Vec<String>,
    pub payout_ratio: Decimal,
    pub tracking_url_template: Option<String>,
    pub name_template: Option<String>,
    pub advertiser_id: Option<String>,
    pub create_status: Option<String>,
    /// The currency of offers whose source gives none (Affise's `payments[0][currency]`).
    pub currency: String,
    pub fields: BTreeMap<String, FieldPolicy>,
    pub filters: TargetFilters,
    pub requests_per_second: f64,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub retry_initial_interval: Duration,
    /// How long a failed operation waits before a later delivery tries it again (doubling per
    /// failure, at most an hour); also the first pause of the target's breaker.
    pub redelivery_interval: Duration,
    /// Index in the config file's `[[targets]]` array, for error messages.
    pub index: usize,
    /// An operation that keeps failing is dead only after `max_attempts` *and* this long since
    /// its first failure (an outage of a few hours kills nothing).
    pub dead_after: Duration,
}

impl TargetConfig {
    /// Timeouts and retry budget of calls to this target.
    pub fn http(&self) -> HttpPolicy {
        HttpPolicy {
            timeout: self.timeout,
            connect_timeout: Duration::from_secs(10),
            max_attempts: self.max_attempts,
            initial_interval: self.retry_initial_interval,
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(300),
            requests_per_second: self.requests_per_second,
            burst: 1,
            run_timeout: None,
        }
    }

    /// A fingerprint of everything that decides what the target should hold.
    pub fn plan_fingerprint(&self) -> String {
        let text = format!(
            "{:?}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.kind,
            self.base_url,
            self.sources,
            self.payout_ratio,
            self.tracking_url_template,
            self.name_template,
            (&self.advertiser_id, &self.currency),
            self.create_status,
            self.fields,
            self.filters
        );
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }
}

impl Config {
    /// Load, deserialize and validate the config at `path` (environment overrides applied).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = || {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        };
        let read_error = |e: config::ConfigError| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // The names in the file, so that overrides can name a source or a target.
        let plain = config::Config::builder()
            .add_source(file())
            .build()
            .map_err(read_error)?;
        let names = |list: &str| -> Vec<String> {
            plain
                .get_array(list)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.into_table().ok()?.remove("name")?.into_string().ok())
                .collect()
        };
        let overrides = env::overrides(std::env::vars(), &names("sources"), &names("targets"))
            .map_err(|errors| ConfigError::Invalid {
                path: path.to_path_buf(),
                errors,
            })?;
        let builder = env::apply(config::Config::builder().add_source(file()), &overrides)
            .map_err(|e| ConfigError::Invalid {
                path: path.to_path_buf(),
                errors: vec![e],
            })?;
        let built = builder.build().map_err(read_error)?;
        let raw: RawConfig = serde_path_to_error::deserialize(built).map_err(|e| {
            let key = e.path().to_string();
            let message = env::suggest(&e.into_inner().to_string());
            // A bad key or value that came from the environment is blamed on its variable.
            let key = match overrides.iter().find(|o| {
                key == o.key || o.key.starts_with(&format!("{key}.")) || key.starts_with(&o.key)
            }) {
                Some(o) => format!("{key} (from environment variable {})", o.variable),
                None if key == "." => "(top level)".into(),
                None => key,
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                key,
                message,
            }
        })?;
        warn_if_world_readable(path, &raw);
        validate(path, raw)
    }

    /// Load from a TOML string (the demo's embedded config and tests); no environment overrides.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Read {
                path: origin.to_path_buf(),
                message: e.to_string(),
            })?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(built).map_err(|e| ConfigError::Parse {
                path: origin.to_path_buf(),
                key: e.path().to_string(),
                message: e.into_inner().to_string(),
            })?;
        validate(origin, raw)
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
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
        sources
            .chain(targets)
            .filter_map(|(key, spec)| resolve_credential(&key, spec).err())
            .collect()
    }
}

fn warn_if_world_readable(path: &Path, raw: &RawConfig) {
    use std::os::unix::fs::PermissionsExt;
    let has_literal = raw.sources.iter().any(|s| s.api_key.is_some())
        || raw.targets.iter().any(|t| t.api_key.is_some());
    if let Ok(meta) = std::fs::metadata(path) {
        if has_literal && meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                path = %path.display(),
                "config file holds a literal api_key and is readable by every user; chmod 600 it or use api_key_env / api_key_file"
            );
        }
    }
}

/// Collects every validation error with its key path.
struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, key: impl std::fmt::Display, message: impl std::fmt::Display) {
        self.0.push(format!("{key}: {message}"));
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

fn validate(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let mut errs = Errors(Vec::new());
    // Relative credential files are looked up beside the config file.
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if raw.database.path.trim().is_empty() {
        errs.push("database.path", "must not be empty");
    }
    let database = DatabaseConfig {
        path: PathBuf::from(&raw.database.path),
        busy_timeout: Duration::from_secs(raw.database.busy_timeout_seconds.unwrap_or(10)),
    };
    let daemon = DaemonConfig {
        metrics_listen: raw.daemon.metrics_listen.clone(),
        max_concurrent_sources: raw.daemon.max_concurrent_sources.unwrap_or(4),
        run_on_start: raw.daemon.run_on_start.unwrap_or(false),
        shutdown_timeout: Duration::from_secs(raw.daemon.shutdown_timeout_seconds.unwrap_or(30)),
        stale_after: Duration::from_secs(raw.daemon.stale_after_seconds.unwrap_or(3600)),
        delivery_interval: Duration::from_secs(
            raw.daemon.delivery_interval_seconds.unwrap_or(60).max(1),
        ),
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

    let mut seen = HashSet::new();
    let mut sources = Vec::new();
    for (i, s) in raw.sources.into_iter().enumerate() {
        let key = format!("sources[{i}]");
        if !seen.insert(s.name.clone()) {
            errs.push(
                format!("{key}.name"),
                format!("duplicate source name {:?}", s.name),
            );
        }
        if let Some(src) = validate_source(&key, i, s, &base, &mut errs) {
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
        if let Some(tgt) = validate_target(&key, i, t, &base, &mut errs) {
            targets.push(tgt);
        }
    }

    if errs.0.is_empty() {
        let warnings = sources.iter().flat_map(SourceConfig::warnings).collect();
        Ok(Config {
            path: path.to_path_buf(),
            database,
            daemon,
            sources,
            targets,
            warnings,
        })
    } else {
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            errors: errs.0,
        })
    }
}

fn credential(
    key: &str,
    env: Option<String>,
    file: Option<String>,
    literal: Option<String>,
    base: &Path,
    errs: &mut Errors,
) -> Option<CredentialSpec> {
    match (env, file, literal) {
        (Some(e), None, None) if !e.is_empty() => Some(CredentialSpec::Env(e)),
        (None, Some(f), None) if !f.is_empty() => Some(CredentialSpec::File {
            path: PathBuf::from(f),
            base: base.to_path_buf(),
        }),
        (None, None, Some(k)) if !k.is_empty() => Some(CredentialSpec::Literal(Secret::new(k))),
        (None, None, None) => {
            errs.push(
                format!("{key}.api_key_env"),
                "missing credential: set one of api_key_env, api_key_file or api_key",
            );
            None
        }
        _ => {
            errs.push(
                format!("{key}.api_key_env"),
                "set exactly one non-empty of api_key_env, api_key_file or api_key",
            );
            None
        }
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

fn validate_source(
    key: &str,
    index: usize,
    s: RawSource,
    base: &Path,
    errs: &mut Errors,
) -> Option<SourceConfig> {
    let before = errs.0.len();
    if !valid_name(&s.name) {
        errs.push(format!("{key}.name"), format!("{:?}: {NAME_HELP}", s.name));
    }
    let kind = SourceKind::ALL.into_iter().find(|k| k.as_str() == s.kind);
    if kind.is_none() {
        let known: Vec<_> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        errs.push(
            format!("{key}.kind"),
            format!(
                "unknown kind {:?} (expected one of: {})",
                s.kind,
                known.join(", ")
            ),
        );
    }
    validate_url(key, &s.base_url, errs);
    let options = kind.map(|k| platform::validate(key, k, &s, errs));
    let cred = credential(key, s.api_key_env, s.api_key_file, s.api_key, base, errs);
    let schedule = s.schedule.unwrap_or_else(|| "0 */15 * * * *".to_string());
    if let Err(e) = validate_cron(&schedule) {
        errs.push(
            format!("{key}.schedule"),
            format!("{schedule:?} is not a cron expression with seconds ({e}); example: \"0 */15 * * * *\""),
        );
    }
    let (max_page, default_page) = options
        .as_ref()
        .map_or((100, 100), PlatformOptions::page_limits);
    let page_size = s.page_size.unwrap_or(default_page);
    if page_size == 0 || page_size > max_page {
        errs.push(
            format!("{key}.page_size"),
            format!(
                "{page_size} is out of range: {} serves 1 to {max_page} offers per page",
                s.kind
            ),
        );
    }
    let rps = s.requests_per_second.unwrap_or_else(|| {
        options
            .as_ref()
            .map_or(5.0, PlatformOptions::default_requests_per_second)
    });
    if !(rps.is_finite() && rps > 0.0) {
        errs.push(
            format!("{key}.requests_per_second"),
            "must be a positive number",
        );
    }
    let fraction = s.max_removal_fraction.unwrap_or(0.5);
    if !(fraction > 0.0 && fraction <= 1.0) {
        errs.push(
            format!("{key}.max_removal_fraction"),
            format!("{fraction} is out of range (0, 1]"),
        );
    }
    let grace = s.removal_grace_runs.unwrap_or(1);
    if grace == 0 {
        errs.push(format!("{key}.removal_grace_runs"), "must be at least 1");
    }
    let max_attempts = s.max_attempts.unwrap_or(5);
    if max_attempts == 0 {
        errs.push(format!("{key}.max_attempts"), "must be at least 1");
    }
    if let Some(g) = &s.rate_limit_group {
        if !valid_name(g) {
            errs.push(
                format!("{key}.rate_limit_group"),
                format!("{g:?}: {NAME_HELP}"),
            );
        }
    }
    if errs.0.len() > before {
        return None;
    }
    Some(SourceConfig {
        name: s.name,
        kind: kind?,
        base_url: s.base_url,
        enabled: s.enabled.unwrap_or(true),
        credential: cred?,
        schedule,
        schedule_jitter: Duration::from_secs(s.schedule_jitter_seconds.unwrap_or(0)),
        page_size,
        max_pages: s.max_pages.unwrap_or(100_000).max(1),
        rate_limit_group: s.rate_limit_group,
        removal_grace_runs: grace,
        max_removal_fraction: fraction,
        http: HttpPolicy {
            timeout: Duration::from_secs(s.timeout_seconds.unwrap_or(30).max(1)),
            connect_timeout: Duration::from_secs(s.connect_timeout_seconds.unwrap_or(10).max(1)),
            max_attempts,
            initial_interval: Duration::from_millis(s.retry_initial_interval_ms.unwrap_or(500)),
            max_interval: Duration::from_secs(s.retry_max_interval_seconds.unwrap_or(60)),
            max_elapsed: Duration::from_secs(s.retry_max_elapsed_seconds.unwrap_or(300)),
            max_retry_after: Duration::from_secs(s.max_retry_after_seconds.unwrap_or(300)),
            requests_per_second: rps,
            burst: s.burst.unwrap_or(1).max(1),
            run_timeout: s
                .run_timeout_seconds
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        },
        options: options?,
        index,
    })
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

fn validate_target(
    key: &str,
    index: usize,
    t: RawTarget,
    base: &Path,
    errs: &mut Errors,
) -> Option<TargetConfig> {
    let before = errs.0.len();
    if !valid_name(&t.name) {
        errs.push(format!("{key}.name"), format!("{:?}: {NAME_HELP}", t.name));
    }
    let kind = match t.kind.as_str() {
        "offerit" => Some(TargetKind::Offerit),
        "affise" => Some(TargetKind::Affise),
        other => {
            errs.push(
                format!("{key}.kind"),
                format!("unknown kind {other:?} (expected one of: offerit, affise)"),
            );
            None
        }
    };
    validate_url(key, &t.base_url, errs);
    let cred = credential(key, t.api_key_env, t.api_key_file, t.api_key, base, errs);
    if kind == Some(TargetKind::Offerit) && t.api_username.is_none() {
        errs.push(
            format!("{key}.api_username"),
            "required for kind \"offerit\"",
        );
    }
    let ratio = match t.payout_ratio.as_deref().map(parse_decimal) {
        None => Decimal::ONE,
        Some(Some(d)) if d > Decimal::ZERO => d,
        Some(_) => {
            errs.push(
                format!("{key}.payout_ratio"),
                "must be a positive decimal such as \"0.80\"",
            );
            Decimal::ONE
        }
    };
    if kind == Some(TargetKind::Affise)
        && t.advertiser_id
            .as_deref()
            .is_none_or(|a| a.trim().is_empty())
    {
        errs.push(
            format!("{key}.advertiser_id"),
            "required for kind \"affise\": every create must name its advertiser (Affise's `advertiser`, an advertiser id such as \"5e39279bac611cda7e5765ab\")",
        );
    }
    let currency = match t.currency.as_deref().map(crate::model::normalize_currency) {
        None => "USD".to_string(),
        Some(Some(c)) if crate::model::is_iso_currency(&c) => c,
        Some(_) => {
            errs.push(
                format!("{key}.currency"),
                format!(
                    "{:?} is not an ISO 4217 currency code",
                    t.currency.unwrap_or_default()
                ),
            );
            "USD".to_string()
        }
    };
    let mut fields = BTreeMap::new();
    for (field, policy) in t.fields {
        let p = match policy.as_str() {
            "always" => FieldPolicy::Always,
            "once" => FieldPolicy::Once,
            "never" => FieldPolicy::Never,
            other => {
                errs.push(
                    format!("{key}.fields.{field}"),
                    format!("{other:?} is not one of always, once, never"),
                );
                continue;
            }
        };
        if p == FieldPolicy::Never {
            if let Some(k) = kind.filter(|k| k.required_on_create().contains(&field.as_str())) {
                errs.push(
                    format!("{key}.fields.{field}"),
                    format!(
                        "\"never\" is not possible: {} requires {field} on every create",
                        k.as_str()
                    ),
                );
            }
        }
        fields.insert(field, p);
    }
    let f = t.filters;
    let status = f.status.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                OfferStatus::from_str(s)
                    .map_err(|e| errs.push(format!("{key}.filters.status[{i}]"), e))
                    .ok()
            })
            .collect()
    });
    let countries = f.countries.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = normalize_country(c);
                if n.is_none() {
                    errs.push(
                        format!("{key}.filters.countries[{i}]"),
                        format!("{c:?} is not an ISO 3166-1 alpha-2 code"),
                    );
                }
                n
            })
            .collect()
    });
    let payout_types = f.payout_types.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                PayoutType::from_str(&s.to_ascii_uppercase())
                    .map_err(|e| errs.push(format!("{key}.filters.payout_types[{i}]"), e))
                    .ok()
            })
            .collect()
    });
    let min_payout = f.min_payout.as_deref().and_then(|m| {
        let d = parse_decimal(m);
        if d.is_none() {
            errs.push(
                format!("{key}.filters.min_payout"),
                format!("{m:?} is not a decimal"),
            );
        }
        d
    });
    let rps = t.requests_per_second.unwrap_or(5.0);
    if !(rps.is_finite() && rps > 0.0) {
        errs.push(
            format!("{key}.requests_per_second"),
            "must be a positive number",
        );
    }
    let max_attempts = t.max_attempts.unwrap_or(5);
    if max_attempts == 0 {
        errs.push(format!("{key}.max_attempts"), "must be at least 1");
    }
    if errs.0.len() > before {
        return None;
    }
    Some(TargetConfig {
        name: t.name,
        kind: kind?,
        base_url: t.base_url,
        enabled: t.enabled.unwrap_or(true),
        api_username: t.api_username,
        credential: cred?,
        sources: t.sources,
        payout_ratio: ratio,
        tracking_url_template: t.tracking_url_template,
        name_template: t.name_template,
        advertiser_id: t.advertiser_id,
        create_status: t.create_status,
        currency,
        fields,
        filters: TargetFilters {
            status,
            countries,
            min_payout,
            payout_types,
            categories: f.categories,
        },
        requests_per_second: rps,
        max_attempts,
        timeout: Duration::from_secs(t.timeout_seconds.unwrap_or(30).max(1)),
        retry_initial_interval: Duration::from_millis(t.retry_initial_interval_ms.unwrap_or(500)),
        redelivery_interval: Duration::from_secs(
            t.redelivery_interval_seconds.unwrap_or(60).max(1),
        ),
        dead_after: Duration::from_secs(t.dead_after_seconds.unwrap_or(86_400)),
        index,
    })
}

/// Where a relative `api_key_file = "NAME"` is looked for, in order: systemd's credentials
/// (`$CREDENTIALS_DIRECTORY/NAME`, and `offersync_NAME`, the name the units'
/// `LoadCredential=offersync:/etc/offersync/credentials` gives each file of that directory),
/// then beside the config file (`credentials/NAME`, then `NAME`): the service and
/// `sudo offersync check` find the same key, and never in the current directory.
fn credential_candidates(path: &Path, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let dir = Path::new(&dir);
        out.push(dir.join(path));
        let flat = path.to_string_lossy().replace('/', "_");
        out.push(dir.join(format!("offersync_{flat}")));
    }
    out.push(base.join("credentials").join(path));
    out.push(base.join(path));
    out
}

/// Resolve a credential to its value. `key` is the config key path used in the error.
pub fn resolve_credential(key: &str, spec: &CredentialSpec) -> Result<Secret, String> {
    match spec {
        CredentialSpec::Literal(s) => Ok(s.clone()),
        CredentialSpec::Env(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
            Ok(_) => Err(format!(
                "{key}.api_key_env: environment variable {var} is empty"
            )),
            Err(_) => Err(format!(
                "{key}.api_key_env: environment variable {var} is not set"
            )),
        },
        CredentialSpec::File { path, base } => {
            let full = if path.is_relative() {
                credential_candidates(path, base)
                    .into_iter()
                    .find(|p| p.exists())
                    .unwrap_or_else(|| base.join(path))
            } else {
                path.clone()
            };
            match std::fs::read_to_string(&full) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(format!("{key}.api_key_file: {} is empty", full.display())),
                Err(e) => Err(format!(
                    "{key}.api_key_file: cannot read {}: {e}",
                    full.display()
                )),
            }
        }
    }
}
