//! The config file as written: serde structs that reject unknown keys. `super::validate` turns
//! them into the checked [`super::Config`].

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database: RawDatabase,
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub path: String,
    pub busy_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub metrics_listen: Option<String>,
    pub max_concurrent_sources: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub enabled: Option<bool>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
    pub api_key: Option<String>,
    pub schedule: Option<String>,
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
    // trackly
    pub include_archived: Option<bool>,
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
    pub requests_per_second: Option<f64>,
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub filters: RawFilters,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilters {
    pub status: Option<Vec<String>>,
    pub countries: Option<Vec<String>>,
    pub min_payout: Option<String>,
    pub payout_types: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
}
