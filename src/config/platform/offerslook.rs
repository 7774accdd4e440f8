//! `kind = "offerslook"`: the Offerslook network and affiliate APIs.

use super::{no_warnings, one_of, parse_keys, Declaration, Errors, PlatformOptions};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferslookApi {
    Network,
    Affiliate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferslookEndpoint {
    /// `/v1/offers` or `/aff/v1/offers`: flat rows.
    Offers,
    /// `/v1/batches/offers` or `/aff/v1/batches/offers`: nested rows with sub-resources.
    Batches,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    /// `network` (default) or `affiliate`.
    api: Option<String>,
    /// `batches` (default) or `offers`.
    endpoint: Option<String>,
    /// The network name (network API) or the affiliate's e-mail: the Basic-auth user.
    username: Option<String>,
    /// `filters[...]` query parameters.
    filters: Option<BTreeMap<String, String>>,
    /// Numeric application codes that mean "Too Many Request".
    rate_limit_codes: Option<Vec<i64>>,
}

fn validate(key: &str, table: Map<String, Value>, errs: &mut Errors) -> PlatformOptions {
    let k: Keys = parse_keys(key, table, errs);
    let api = one_of(
        &format!("{key}.api"),
        k.api.as_deref(),
        OfferslookApi::Network,
        &[
            ("network", OfferslookApi::Network),
            ("affiliate", OfferslookApi::Affiliate),
        ],
        errs,
    );
    let endpoint = one_of(
        &format!("{key}.endpoint"),
        k.endpoint.as_deref(),
        OfferslookEndpoint::Batches,
        &[
            ("offers", OfferslookEndpoint::Offers),
            ("batches", OfferslookEndpoint::Batches),
        ],
        errs,
    );
    let username = k.username.unwrap_or_default();
    if username.is_empty() {
        errs.push(
            format!("{key}.username"),
            "required for kind \"offerslook\": the network name (api = \"network\") or the affiliate's e-mail (api = \"affiliate\")",
        );
    }
    let filters = k
        .filters
        .into_iter()
        .flatten()
        .map(|(field, value)| {
            // `status` → filters[status]; `geo_country[EQUAL_TO]` → filters[geo_country][EQUAL_TO]
            let name = match field.split_once('[') {
                Some((f, op)) => format!("filters[{f}][{op}"),
                None => format!("filters[{field}]"),
            };
            (name, value)
        })
        .collect();
    PlatformOptions::Offerslook {
        api,
        endpoint,
        username,
        filters,
        rate_limit_codes: k.rate_limit_codes.unwrap_or_default(),
    }
}

fn page_limits(options: &PlatformOptions) -> (u32, u32) {
    let PlatformOptions::Offerslook { api, endpoint, .. } = options else {
        return (100, 100);
    };
    let max = match (api, endpoint) {
        (OfferslookApi::Network, OfferslookEndpoint::Offers) => 1000,
        (OfferslookApi::Network, OfferslookEndpoint::Batches) => 100,
        (OfferslookApi::Affiliate, OfferslookEndpoint::Offers) => 200,
        (OfferslookApi::Affiliate, OfferslookEndpoint::Batches) => 100,
    };
    (max, max)
}

pub(super) const DECLARATION: Declaration = Declaration {
    name: "offerslook",
    keys: super::keys_of::<Keys>,
    validate,
    page_limits,
    default_requests_per_second: 5.0,
    warnings: no_warnings,
};
