//! `kind = "trackly"`: Trackly SMS API v2.

use super::{no_warnings, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// Walk `status=archived` as a second pass.
    include_archived: Option<bool>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    PlatformOptions::Trackly {
        include_archived: k.include_archived.unwrap_or(false),
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "trackly",
    keys: super::keys_of::<Keys>,
    validate,
    // `limit` is at most 100 (the docs' maximum).
    page_limits: |_| (100, 100),
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
