//! `kind = "trackier"`: the Trackier publisher API v2 (`/v2/publisher/campaigns`), also on
//! white-label hosts.

use super::{no_warnings, one_of, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackierKeyIn {
    /// The `X-Api-Key` header (default).
    Header,
    /// The `apiKey` query parameter (redacted from every URL shown).
    Query,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// Where the key goes: `header` (default, `X-Api-Key`) or `query` (`apiKey`).
    api_key_in: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let api_key_in = one_of(
        &format!("{key}.api_key_in"),
        k.api_key_in.as_deref(),
        TrackierKeyIn::Header,
        &[
            ("header", TrackierKeyIn::Header),
            ("query", TrackierKeyIn::Query),
        ],
        errs,
    );
    PlatformOptions::Trackier { api_key_in }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "trackier",
    keys: super::keys_of::<Keys>,
    validate,
    // `limit` defaults to 1000 on the platform.
    page_limits: |_| (1000, 1000),
    // The documented limit: 5 requests per second, HTTP 429 past it.
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
