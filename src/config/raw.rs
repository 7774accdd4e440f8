//! The config file as written: serde structs that reject unknown keys. `super::validate` turns
//! them into the checked [`super::Config`].

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database: RawDatabase,
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub console: RawConsole,
    /// Split by [`RawSource::split`]: which keys a table may have depends on its kind.
    #[serde(default)]
    pub sources: Vec<Map<String, Value>>,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub notify: Vec<RawNotify>,
}

/// A `[[notify]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub name: String,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<String>,
    /// `slack` (default) or `json`.
    pub format: Option<String>,
    /// Default: every event.
    pub events: Option<Vec<String>>,
    pub sources: Option<Vec<String>>,
    pub targets: Option<Vec<String>>,
    pub min_payout_change: Option<f64>,
    pub batch_seconds: Option<u64>,
    pub max_attempts: Option<u32>,
    pub timeout_seconds: Option<u64>,
    pub retry_initial_interval_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub path: Option<String>,
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub busy_timeout_seconds: Option<u64>,
    pub lease_ttl_seconds: Option<u64>,
    pub worker_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub metrics_listen: Option<String>,
    pub max_concurrent_sources: Option<usize>,
    pub run_on_start: Option<bool>,
    pub shutdown_timeout_seconds: Option<u64>,
    pub stale_after_seconds: Option<u64>,
    pub delivery_interval_seconds: Option<u64>,
}

/// `[console]`: the operator console in the browser.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    pub session_minutes: Option<u64>,
}

/// A `[[sources]]` table as written: the keys every kind takes, and the platform keys (those
/// some kind's declaration in `super::platform` takes), still as written.
#[derive(Debug)]
pub struct RawSource {
    pub common: RawCommon,
    pub platform: Map<String, Value>,
}

/// The keys of a `[[sources]]` table that every kind takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommon {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub enabled: Option<bool>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
    pub api_key: Option<String>,
    pub schedule: Option<String>,
    pub schedule_jitter_seconds: Option<u64>,
    pub page_size: Option<u32>,
    pub max_pages: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub burst: Option<u32>,
    pub rate_limit_group: Option<String>,
    pub removal_grace_runs: Option<u32>,
    pub max_removal_fraction: Option<f64>,
    pub timeout_seconds: Option<u64>,
    pub connect_timeout_seconds: Option<u64>,
    pub max_attempts: Option<u32>,
    pub retry_initial_interval_ms: Option<u64>,
    pub retry_max_interval_seconds: Option<u64>,
    pub retry_max_elapsed_seconds: Option<u64>,
    pub max_retry_after_seconds: Option<u64>,
    pub run_timeout_seconds: Option<u64>,
}

impl RawSource {
    /// Split the `index`th `[[sources]]` table into its common keys (type-checked here) and its
    /// platform keys. A key no kind takes is an error, as `(key path, message)`.
    pub fn split(index: usize, table: Map<String, Value>) -> Result<RawSource, (String, String)> {
        let common_keys = super::platform::keys_of::<RawCommon>();
        let (common, platform): (Map<_, _>, Map<_, _>) = table
            .into_iter()
            .partition(|(k, _)| common_keys.contains(&k.as_str()));
        if let Some(unknown) = platform
            .keys()
            .find(|k| super::platform::kinds_taking(k).is_empty())
        {
            // Worded like serde's own message, so that the suggestion logic reads it.
            let kind = common.get("kind").and_then(Value::as_str);
            let expected: Vec<String> = common_keys
                .iter()
                .copied()
                .chain(
                    kind.and_then(super::SourceKind::from_name)
                        .map_or(&[][..], super::SourceKind::keys)
                        .iter()
                        .copied(),
                )
                .map(|k| format!("`{k}`"))
                .collect();
            return Err((
                format!("sources[{index}]"),
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    expected.join(", ")
                ),
            ));
        }
        let common = serde_path_to_error::deserialize(Value::Object(common)).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." {
                format!("sources[{index}]")
            } else {
                format!("sources[{index}].{path}")
            };
            (key, e.into_inner().to_string())
        })?;
        Ok(RawSource { common, platform })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub enabled: Option<bool>,
    pub api_username: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
    pub api_key: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    pub payout_ratio: Option<String>,
    pub tracking_url_template: Option<String>,
    pub name_template: Option<String>,
    pub advertiser_id: Option<String>,
    pub create_status: Option<String>,
    pub currency: Option<String>,
    pub requests_per_second: Option<f64>,
    pub max_attempts: Option<u32>,
    pub timeout_seconds: Option<u64>,
    pub retry_initial_interval_ms: Option<u64>,
    pub redelivery_interval_seconds: Option<u64>,
    pub dead_after_seconds: Option<u64>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub filters: RawFilters,
    /// `auto` (default) or `manual`: creates wait for `offersync approve`.
    pub approval: Option<String>,
    /// With `approval = "manual"`: creates matching these go out without waiting.
    pub auto_approve: Option<RawAutoApprove>,
    /// Payout-jump guard: fractions (`1.0` = +100 %, `0.5` = -50 %).
    pub max_payout_increase: Option<f64>,
    pub max_payout_decrease: Option<f64>,
    /// What a create carries when the source gives nothing (or the field's policy is `never`).
    #[serde(default)]
    pub defaults: RawDefaults,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoApprove {
    pub countries: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub min_payout: Option<String>,
    pub payout_types: Option<Vec<String>>,
    pub advertisers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub categories: Option<Vec<String>>,
    pub currency: Option<String>,
    pub description_prefix: Option<String>,
    /// Affise: `public`, `protected` or `private`.
    pub privacy: Option<String>,
    /// Offerit: create offers hidden from affiliates (`true`) until an operator shows them.
    pub hidden: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilters {
    pub status: Option<Vec<String>>,
    pub countries: Option<Vec<String>>,
    pub min_payout: Option<String>,
    pub payout_types: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    /// Blocklists: never pushed (and paused when already on the target).
    pub exclude_advertisers: Option<Vec<String>>,
    pub exclude_external_ids: Option<Vec<String>>,
    /// Dropped from what is pushed; an offer targeting only these is not pushed.
    pub exclude_countries: Option<Vec<String>>,
}
