//! `kind = "s2s"`: the Youmi / Adxmi publisher server-to-server offer feed.

use super::{parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `android` or `ios` (required).
    os: Option<String>,
    /// Required on Android, with `andid` (the platform answers -3006 otherwise).
    gaid: Option<String>,
    andid: Option<String>,
    /// Countries to ask for (`US,GB`); empty means the caller's IP country.
    country: Option<String>,
    thirdparty_id: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let os = k.os.unwrap_or_default();
    if !matches!(os.as_str(), "android" | "ios") {
        errs.push(
            format!("{key}.os"),
            "required for kind \"s2s\": \"android\" or \"ios\"",
        );
    }
    if os == "android" {
        for (name, v) in [("gaid", &k.gaid), ("andid", &k.andid)] {
            if v.as_deref().is_none_or(str::is_empty) {
                errs.push(format!("{key}.{name}"), "required when os = \"android\" (the platform rejects the request with -3006 otherwise)");
            }
        }
    }
    PlatformOptions::S2s {
        os,
        gaid: k.gaid,
        andid: k.andid,
        country: k.country,
        thirdparty_id: k.thirdparty_id,
    }
}

fn warnings(key: &str, options: &PlatformOptions) -> Vec<String> {
    match options {
        PlatformOptions::S2s { country: None, .. } => vec![format!(
            "{key}.country is not set: the platform then filters offers by the country of the IP address offersync calls from (\"When it is empty, the country where the IP is located will be used\"); set the countries you want, e.g. country = \"US,GB\""
        )],
        _ => Vec::new(),
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "s2s",
    keys: super::keys_of::<Keys>,
    validate,
    // EN docs: 500; ZH docs: 10000.
    page_limits: |_| (10_000, 500),
    // 50 requests per 10 minutes per publisher.
    default_requests_per_second: 50.0 / 600.0,
    warnings,
};
