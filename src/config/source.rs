//! A `[[sources]]` table validated: the keys every kind takes here, the platform's own keys in
//! `super::platform`.

use super::platform::{self, PlatformOptions, SourceKind};
use super::raw::{RawCommon, RawSource};
use super::{
    credential, valid_name, validate_cron, validate_url, CredentialSpec, Errors, NAME_HELP,
};
use std::path::Path;
use std::time::Duration;

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
    pub(super) fn warnings(&self) -> Vec<String> {
        self.kind
            .warnings(&format!("sources[{}]", self.index), &self.options)
    }
}

/// The pace and retry budget every source and target validates the same way.
pub(super) fn check_pace(key: &str, rps: f64, max_attempts: u32, errs: &mut Errors) {
    if !(rps.is_finite() && rps > 0.0) {
        errs.push(
            format!("{key}.requests_per_second"),
            "must be a positive number",
        );
    }
    if max_attempts == 0 {
        errs.push(format!("{key}.max_attempts"), "must be at least 1");
    }
}

pub(super) fn validate_source(
    key: &str,
    index: usize,
    raw: RawSource,
    base: &Path,
    errs: &mut Errors,
) -> Option<SourceConfig> {
    let before = errs.0.len();
    let s = raw.common;
    if !valid_name(&s.name) {
        errs.push(format!("{key}.name"), format!("{:?}: {NAME_HELP}", s.name));
    }
    let kind = source_kind(key, &s.kind, errs);
    validate_url(key, &s.base_url, errs);
    let options = kind.map(|k| platform::validate(key, k, raw.platform, errs));
    let cred = credential(
        key,
        s.api_key_env.clone(),
        s.api_key_file.clone(),
        s.api_key.clone(),
        base,
        errs,
    );
    let schedule = s
        .schedule
        .clone()
        .unwrap_or_else(|| "0 */15 * * * *".to_string());
    if let Err(e) = validate_cron(&schedule) {
        errs.push(
            format!("{key}.schedule"),
            format!("{schedule:?} is not a cron expression with seconds ({e}); example: \"0 */15 * * * *\""),
        );
    }
    let page_size = page_size(key, &s, kind.zip(options.as_ref()), errs);
    let rps = s
        .requests_per_second
        .unwrap_or_else(|| kind.map_or(5.0, SourceKind::default_requests_per_second));
    let max_attempts = s.max_attempts.unwrap_or(5);
    check_pace(key, rps, max_attempts, errs);
    let (fraction, grace) = removal_rules(key, &s, errs);
    if errs.0.len() > before {
        return None;
    }
    let http = http_policy(&s, rps, max_attempts);
    Some(SourceConfig {
        http,
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
        options: options?,
        index,
    })
}

/// Timeouts and retry budget as written, with their defaults.
fn http_policy(s: &RawCommon, rps: f64, max_attempts: u32) -> HttpPolicy {
    HttpPolicy {
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
    }
}

/// `page_size`: within what the platform serves (default: the platform's).
fn page_size(
    key: &str,
    s: &RawCommon,
    platform: Option<(SourceKind, &PlatformOptions)>,
    errs: &mut Errors,
) -> u32 {
    let (max_page, default_page) = platform.map_or((100, 100), |(k, o)| k.page_limits(o));
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
    page_size
}

/// `max_removal_fraction`, `removal_grace_runs` and `rate_limit_group` checked.
fn removal_rules(key: &str, s: &RawCommon, errs: &mut Errors) -> (f64, u32) {
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
    if let Some(g) = &s.rate_limit_group {
        if !valid_name(g) {
            errs.push(
                format!("{key}.rate_limit_group"),
                format!("{g:?}: {NAME_HELP}"),
            );
        }
    }
    (fraction, grace)
}

/// `kind`: one of the declared platforms.
fn source_kind(key: &str, name: &str, errs: &mut Errors) -> Option<SourceKind> {
    let kind = SourceKind::from_name(name);
    if kind.is_none() {
        let known: Vec<_> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        errs.push(
            format!("{key}.kind"),
            format!(
                "unknown kind {:?} (expected one of: {})",
                name,
                known.join(", ")
            ),
        );
    }
    kind
}
