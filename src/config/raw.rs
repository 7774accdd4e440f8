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
    pub run_on_start: Option<bool>,
    pub shutdown_timeout_seconds: Option<u64>,
    pub stale_after_seconds: Option<u64>,
    pub delivery_interval_seconds: Option<u64>,
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
    // trackly
    pub include_archived: Option<bool>,
    // offerslook, affise
    pub api: Option<String>,
    // offerslook
    pub endpoint: Option<String>,
    pub username: Option<String>,
    pub filters: Option<BTreeMap<String, String>>,
    pub rate_limit_codes: Option<Vec<i64>>,
    // s2s (Youmi / Adxmi)
    pub os: Option<String>,
    pub gaid: Option<String>,
    pub andid: Option<String>,
    pub country: Option<String>,
    pub thirdparty_id: Option<String>,
    // affise
    pub statuses: Option<Vec<String>>,
    // generic
    pub generic: Option<RawGeneric>,
}

/// `[sources.generic]`: a declarative description of any JSON offer API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeneric {
    /// Dotted path to the records (an array, or an object whose values are records).
    pub records_path: String,
    /// `array` (default) or `object_values` (Offer18's `data` keyed by offer id).
    pub records_are: Option<String>,
    #[serde(default)]
    pub auth: RawGenericAuth,
    #[serde(default)]
    pub pagination: RawGenericPagination,
    /// Extra query parameters sent with every request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Canonical field → `path|transform|...`.
    pub fields: BTreeMap<String, String>,
    /// Platform status value → canonical status.
    #[serde(default)]
    pub status_map: BTreeMap<String, String>,
    /// Dotted path to a field whose presence/value marks an error body (with HTTP 200).
    pub error_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenericAuth {
    /// `header`, `query`, `basic` or `none` (default `header`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Header or query parameter name (`X-Api-Key`, `api-key`, ...).
    pub name: Option<String>,
    /// Basic auth user; the API key is the password.
    pub username: Option<String>,
    /// Header value prefix (`Bearer `).
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenericPagination {
    /// `page` (default), `offset`, `cursor`, `next_url` or `none`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub page_param: Option<String>,
    pub size_param: Option<String>,
    pub first_page: Option<u64>,
    pub offset_param: Option<String>,
    pub cursor_param: Option<String>,
    pub cursor_path: Option<String>,
    pub next_url_path: Option<String>,
    pub total_path: Option<String>,
    pub total_pages_path: Option<String>,
    pub has_more_path: Option<String>,
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
