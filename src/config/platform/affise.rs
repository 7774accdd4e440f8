//! `kind = "affise"`: the Affise admin (`/3.0/offers`) or partner (`/3.0/partner/offers`) API.

use super::{no_warnings, one_of, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffiseApi {
    Admin,
    Partner,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `admin` (default) or `partner`.
    api: Option<String>,
    /// `status[]` values asked for (default all three).
    statuses: Option<Vec<String>>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let api = one_of(
        &format!("{key}.api"),
        k.api.as_deref(),
        AffiseApi::Admin,
        &[("admin", AffiseApi::Admin), ("partner", AffiseApi::Partner)],
        errs,
    );
    let statuses = k.statuses.unwrap_or_else(|| {
        // All three for admin keys, so stopped and suspended offers are seen, not "removed".
        ["active", "stopped", "suspended"]
            .map(String::from)
            .to_vec()
    });
    for (i, st) in statuses.iter().enumerate() {
        if !matches!(st.as_str(), "active" | "stopped" | "suspended") {
            errs.push(
                format!("{key}.statuses[{i}]"),
                format!("{st:?} is not one of active, stopped, suspended"),
            );
        }
    }
    PlatformOptions::Affise { api, statuses }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "affise",
    keys: super::keys_of::<Keys>,
    validate,
    // Default 100 per page; the maximum is undocumented.
    page_limits: |_| (500, 100),
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
