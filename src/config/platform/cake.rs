//! `kind = "cake"`: the CAKE affiliate API's `OfferFeed` (each network runs its own host).

use super::{no_warnings, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The placeholders a `tracking_url_template` may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 3] = ["{affiliate_id}", "{campaign_id}", "{offer_id}"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// The affiliate's id (`affiliate_id`, required).
    affiliate_id: Option<String>,
    /// The tracking link of a running offer, from `{affiliate_id}`, `{campaign_id}` and
    /// `{offer_id}` (the feed has none; one `GetCampaign` call per offer is not made).
    tracking_url_template: Option<String>,
    /// The currency a bare `$` means (default USD).
    dollar_currency: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let affiliate_id = k.affiliate_id.unwrap_or_default();
    if affiliate_id.trim().is_empty() {
        errs.push(
            format!("{key}.affiliate_id"),
            "required for kind \"cake\": the affiliate id the network's CAKE gives you",
        );
    }
    if let Some(t) = &k.tracking_url_template {
        // Every `{...}` must be one of the placeholders.
        let mut rest = t.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c + 1);
            let name = close.map_or(&rest[open..], |c| &rest[open..c]);
            if !TEMPLATE_PLACEHOLDERS.contains(&name) {
                errs.push(
                    format!("{key}.tracking_url_template"),
                    format!(
                        "{name:?} is not a placeholder; use {}",
                        TEMPLATE_PLACEHOLDERS.join(", ")
                    ),
                );
                break;
            }
            rest = &rest[close.unwrap_or(rest.len())..];
        }
        if !t.starts_with("https://") && !t.starts_with("http://") {
            errs.push(
                format!("{key}.tracking_url_template"),
                "must be an http(s) URL",
            );
        }
    }
    let dollar_currency = k
        .dollar_currency
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "USD".into());
    if !crate::model::is_iso_currency(&dollar_currency) {
        errs.push(
            format!("{key}.dollar_currency"),
            format!("{dollar_currency:?} is not an ISO 4217 code"),
        );
    }
    PlatformOptions::Cake {
        affiliate_id,
        tracking_url_template: k.tracking_url_template,
        dollar_currency,
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "cake",
    keys: super::keys_of::<Keys>,
    validate,
    // `row_limit` is free (0 returns everything); pages of 500 by default.
    page_limits: |_| (5000, 500),
    // No rate limit is documented.
    default_requests_per_second: 2.0,
    warnings: no_warnings,
};
