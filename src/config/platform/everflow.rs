//! `kind = "everflow"`: the Everflow affiliate API (`/v1/affiliates/offersrunnable` or
//! `/v1/affiliates/alloffers`).

use super::{no_warnings, one_of, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EverflowListing {
    /// `/v1/affiliates/offersrunnable`: the offers the affiliate may run (approved and public).
    Runnable,
    /// `/v1/affiliates/alloffers`: every offer visible to the affiliate, approval pending or not.
    All,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `runnable` (default) or `all`.
    listing: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let listing = one_of(
        &format!("{key}.listing"),
        k.listing.as_deref(),
        EverflowListing::Runnable,
        &[
            ("runnable", EverflowListing::Runnable),
            ("all", EverflowListing::All),
        ],
        errs,
    );
    PlatformOptions::Everflow { listing }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "everflow",
    keys: super::keys_of::<Keys>,
    validate,
    // The docs' default page is 50; clients use up to 2000.
    page_limits: |_| (2000, 500),
    // Affiliate entities get 5 requests per second (shared by every key of the organisation).
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
