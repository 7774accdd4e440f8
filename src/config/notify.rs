//! `[[notify]]` tables: webhook notifiers (Slack-compatible or plain JSON) for offer changes
//! and failures. The URL is a secret (it authorizes posting to the channel): given as `url`,
//! `url_env` or `url_file`, redacted like keys.

use super::raw::RawNotify;
use super::{CredentialSpec, Errors, HttpPolicy, Secret};
use crate::model::{parse_decimal, NotifyEvent, NotifyRule};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How a notification is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// `{"text": ..., "blocks": [...]}`: Slack incoming webhooks, and the many tools that take
    /// the same payload (Mattermost, Rocket.Chat, Discord's `/slack` endpoint).
    Slack,
    /// One JSON object per (batched) event, with the schema the README documents.
    Json,
}

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub rule: NotifyRule,
    pub url: CredentialSpec,
    pub format: NotifyFormat,
    /// Events of one kind and source within this window go out as one message.
    pub batch_seconds: Duration,
    /// Delivery passes before a notification is dead.
    pub max_attempts: u32,
    pub http: HttpPolicy,
    pub index: usize,
}

pub(super) fn validate_notifiers(
    raw: Vec<RawNotify>,
    sources: &HashSet<String>,
    targets: &HashSet<String>,
    base: &Path,
    errs: &mut Errors,
) -> Vec<NotifierConfig> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, n) in raw.into_iter().enumerate() {
        let key = format!("notify[{i}]");
        if !super::valid_name(&n.name) {
            errs.push(
                format!("{key}.name"),
                format!("{:?}: {}", n.name, super::NAME_HELP),
            );
        }
        if !names.insert(n.name.clone()) {
            errs.push(
                format!("{key}.name"),
                format!("duplicate notifier name {:?}", n.name),
            );
        }
        let url = url_spec(&key, n.url, n.url_env, n.url_file, base, errs);
        let format = match n.format.as_deref() {
            None | Some("slack") => NotifyFormat::Slack,
            Some("json") => NotifyFormat::Json,
            Some(other) => {
                errs.push(
                    format!("{key}.format"),
                    format!("{other:?} is not one of slack, json"),
                );
                NotifyFormat::Slack
            }
        };
        let events = event_list(&key, n.events, errs);
        for (list, known, what) in [
            (&n.sources, sources, "source"),
            (&n.targets, targets, "target"),
        ] {
            for (j, s) in list.iter().flatten().enumerate() {
                if !known.contains(s) {
                    errs.push(
                        format!("{key}.{what}s[{j}]"),
                        format!("names {what} {s:?}, which is not configured"),
                    );
                }
            }
        }
        let min_payout_change = fraction(&key, n.min_payout_change, errs);
        let max_attempts = n.max_attempts.unwrap_or(10);
        if max_attempts == 0 {
            errs.push(format!("{key}.max_attempts"), "must be at least 1");
        }
        let Some(url) = url else { continue };
        out.push(NotifierConfig {
            rule: NotifyRule {
                name: n.name,
                events,
                sources: n.sources,
                targets: n.targets,
                min_payout_change,
            },
            url,
            format,
            batch_seconds: Duration::from_secs(n.batch_seconds.unwrap_or(60)),
            max_attempts,
            http: http_policy(n.timeout_seconds, n.retry_initial_interval_ms),
            index: i,
        });
    }
    out
}

/// `url`, `url_env` or `url_file`: exactly one.
fn url_spec(
    key: &str,
    url: Option<String>,
    env: Option<String>,
    file: Option<String>,
    base: &Path,
    errs: &mut Errors,
) -> Option<CredentialSpec> {
    match (url, env, file) {
        (Some(u), None, None) if !u.is_empty() => {
            super::validate_url(key, &u, errs);
            Some(CredentialSpec::Literal(Secret::new(u)))
        }
        (None, Some(e), None) if !e.is_empty() => Some(CredentialSpec::Env(e)),
        (None, None, Some(f)) if !f.is_empty() => Some(CredentialSpec::File {
            path: f.into(),
            base: base.to_path_buf(),
        }),
        _ => {
            errs.push(
                format!("{key}.url"),
                "set exactly one non-empty of url, url_env or url_file",
            );
            None
        }
    }
}

/// `events`: names of `NotifyEvent`s (default: all).
fn event_list(key: &str, events: Option<Vec<String>>, errs: &mut Errors) -> Vec<NotifyEvent> {
    match events {
        None => NotifyEvent::ALL.to_vec(),
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(j, e)| {
                NotifyEvent::from_str(e)
                    .map_err(|m| errs.push(format!("{key}.events[{j}]"), m))
                    .ok()
            })
            .collect(),
    }
}

/// A notifier's calls: 3 tries per pass, gently paced.
fn http_policy(timeout_seconds: Option<u64>, retry_initial_interval_ms: Option<u64>) -> HttpPolicy {
    HttpPolicy {
        timeout: Duration::from_secs(timeout_seconds.unwrap_or(10).max(1)),
        connect_timeout: Duration::from_secs(5),
        max_attempts: 3,
        initial_interval: Duration::from_millis(retry_initial_interval_ms.unwrap_or(500)),
        max_interval: Duration::from_secs(10),
        max_elapsed: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(60),
        requests_per_second: 1.0,
        burst: 5,
        run_timeout: None,
    }
}

/// `min_payout_change`: a fraction of at least 0.
fn fraction(key: &str, v: Option<f64>, errs: &mut Errors) -> Option<rust_decimal::Decimal> {
    v.and_then(|f| {
        let d = parse_decimal(&f.to_string()).filter(|d| *d >= rust_decimal::Decimal::ZERO);
        if d.is_none() {
            errs.push(
                format!("{key}.min_payout_change"),
                format!("{f} is not a fraction such as 0.2 (20 %)"),
            );
        }
        d
    })
}
