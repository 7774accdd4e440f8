//! `kind = "hasoffers"`: the HasOffers / TUNE affiliate API (`Target=Affiliate_Offer`).

use super::{no_warnings, one_of, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasOffersMethod {
    /// `Method=findAll`: every offer the affiliate can see, approved or not.
    FindAll,
    /// `Method=findMyApprovedOffers`: only the offers the affiliate is approved for.
    FindMyApprovedOffers,
}

/// The `contain[]` models asked for when `contain` is not set.
const DEFAULT_CONTAINS: [&str; 3] = ["Country", "OfferCategory", "TrackingLink"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `findAll` (default) or `findMyApprovedOffers`.
    method: Option<String>,
    /// The `contain[]` models (default Country, OfferCategory, TrackingLink).
    contain: Option<Vec<String>>,
    /// The network's default currency: the currency of offers whose `currency` is null.
    default_currency: Option<String>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let method = one_of(
        &format!("{key}.method"),
        k.method.as_deref(),
        HasOffersMethod::FindAll,
        &[
            ("findAll", HasOffersMethod::FindAll),
            (
                "findMyApprovedOffers",
                HasOffersMethod::FindMyApprovedOffers,
            ),
        ],
        errs,
    );
    let contain = k
        .contain
        .unwrap_or_else(|| DEFAULT_CONTAINS.map(String::from).to_vec());
    for (i, c) in contain.iter().enumerate() {
        if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errs.push(
                format!("{key}.contain[{i}]"),
                format!("{c:?} is not a HasOffers model name (e.g. \"Country\")"),
            );
        }
    }
    let default_currency = k.default_currency.map(|c| c.trim().to_ascii_uppercase());
    if let Some(c) = &default_currency {
        if !crate::model::is_iso_currency(c) {
            errs.push(
                format!("{key}.default_currency"),
                format!("{c:?} is not an ISO 4217 code"),
            );
        }
    }
    PlatformOptions::HasOffers {
        method,
        contain,
        default_currency,
    }
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "hasoffers",
    keys: super::keys_of::<Keys>,
    validate,
    // `limit` is free (without it everything comes in one answer); pages of 100 by default.
    page_limits: |_| (1000, 100),
    // 50 calls per 10 seconds per network.
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
