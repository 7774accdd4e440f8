//! `kind = "offer18"`: the Offer18 affiliate offers API (`/api/af/offers`).

use super::{no_warnings, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// The affiliate's id (`aid`, required).
    affiliate_id: Option<String>,
    /// The network's id (`mid`, required).
    network_id: Option<String>,
    /// The number of the first page: 0 (default, what production clients send) or 1 (the
    /// docs' example).
    first_page: Option<u64>,
    /// Ask for approved offers only (`authorized=1`, default true).
    authorized_only: Option<bool>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    for (name, v) in [
        ("affiliate_id", &k.affiliate_id),
        ("network_id", &k.network_id),
    ] {
        if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
            errs.push(
                format!("{key}.{name}"),
                format!(
                    "required for kind \"offer18\": the {} id Offer18 gives in its API settings",
                    if name == "affiliate_id" {
                        "affiliate (aid)"
                    } else {
                        "network (mid)"
                    }
                ),
            );
        }
    }
    let first_page = k.first_page.unwrap_or(0);
    if first_page > 1 {
        errs.push(
            format!("{key}.first_page"),
            format!("{first_page} is not 0 or 1"),
        );
    }
    PlatformOptions::Offer18 {
        affiliate_id: k.affiliate_id.unwrap_or_default(),
        network_id: k.network_id.unwrap_or_default(),
        first_page: first_page.min(1),
        authorized_only: k.authorized_only.unwrap_or(true),
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "offer18",
    keys: super::keys_of::<Keys>,
    validate,
    // Clients send an undocumented `limit=1000`.
    page_limits: |_| (1000, 1000),
    // No rate limit is documented.
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
