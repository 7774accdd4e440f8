//! Rendering an offer for a target: the fields it is sent (name and tracking-link templates,
//! the payout ratio rounded to the currency's minor unit, the target's click macro). Pure.

use crate::config::{TargetConfig, TargetKind};
use crate::model::PushFields;
use crate::model::{format_timestamp, Offer, PayoutUnit};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// The fields a target can be sent, with their default policy (`always`).
pub const PUSH_FIELDS: &[&str] = &[
    "name",
    "url",
    "preview_url",
    "description",
    "countries",
    "categories",
    "payout",
    "cost",
    "currency",
    "payout_type",
    "starts_at",
    "ends_at",
    "app_package",
    "icon_url",
    "payout_unit",
    "excluded_countries",
    "caps",
];

/// Currencies without minor units (ISO 4217 exponent 0) that payouts are rounded to.
const ZERO_DECIMAL_CURRENCIES: &[&str] = &[
    "JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG", "RWF",
];

/// `payout × ratio`, rounded half-even to the currency's minor unit (cents for most).
pub fn apply_ratio(payout: Decimal, ratio: Decimal, currency: Option<&str>) -> Decimal {
    let dp = if currency.is_some_and(|c| ZERO_DECIMAL_CURRENCIES.contains(&c)) {
        0
    } else {
        2
    };
    (payout * ratio)
        .round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

/// Click-id macros sources use, and each target's own macro.
const SOURCE_CLICK_MACROS: &[&str] = &[
    "{click_id}",
    "{clickid}",
    "{transaction_id}",
    "{aff_click_id}",
];

fn target_click_macro(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Offerit => "%%click_hash%%",
        TargetKind::Affise => "{clickid}",
    }
}

fn fill(template: &str, offer: &Offer, source: &str) -> String {
    template
        .replace("{name}", &offer.name)
        .replace(
            "{tracking_url}",
            offer.tracking_url.as_deref().unwrap_or_default(),
        )
        .replace("{external_id}", &offer.external_id)
        .replace("{source}", source)
        .replace(
            "{advertiser}",
            offer.advertiser.as_deref().unwrap_or_default(),
        )
        .replace("{countries}", &offer.countries.join(","))
}

/// Everything the target would be sent for this offer (before field policies).
pub fn render(target: &TargetConfig, source: &str, offer: &Offer) -> PushFields {
    let mut f = PushFields::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            f.insert(k.to_string(), v);
        }
    };
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let name = fill(
        target.name_template.as_deref().unwrap_or("{name}"),
        offer,
        source,
    );
    put("name", Value::String(name));
    if offer.tracking_url.is_some() {
        let mut url = match &target.tracking_url_template {
            Some(t) => fill(t, offer, source),
            None => offer.tracking_url.clone().unwrap_or_default(),
        };
        for m in SOURCE_CLICK_MACROS {
            url = url.replace(m, target_click_macro(target.kind));
        }
        put("url", Value::String(url));
    }
    put("preview_url", s(&offer.preview_url));
    let (description, countries, categories, excluded) = with_controls(target, offer);
    put("description", s(&description));
    let list = |l: &[String]| Value::Array(l.iter().cloned().map(Value::String).collect());
    put("countries", list(&countries));
    if !excluded.is_empty() {
        put("excluded_countries", list(&excluded));
    }
    put("categories", list(&categories));
    if let Some(p) = offer.payout {
        // A percentage is scaled by the ratio like an amount, but never rounded to a currency
        // unit nor sent as one (the targets send it as a share of the sale).
        let unit = (offer.payout_unit == PayoutUnit::Amount).then(|| currency(target, offer));
        put(
            "payout",
            Value::String(apply_ratio(p, target.payout_ratio, unit).to_string()),
        );
        put("cost", Value::String(p.normalize().to_string()));
    }
    if offer.payout_unit == PayoutUnit::Percent {
        put("payout_unit", Value::String("percent".into()));
    }
    if !offer.caps.is_empty() {
        put(
            "caps",
            serde_json::to_value(&offer.caps).unwrap_or(Value::Null),
        );
    }
    put(
        "currency",
        Value::String(currency(target, offer).to_string()),
    );
    put(
        "payout_type",
        offer
            .payout_type
            .map_or(Value::Null, |p| Value::String(p.as_str().into())),
    );
    put(
        "starts_at",
        offer
            .starts_at
            .map_or(Value::Null, |t| Value::String(format_timestamp(t))),
    );
    put(
        "ends_at",
        offer
            .ends_at
            .map_or(Value::Null, |t| Value::String(format_timestamp(t))),
    );
    put("app_package", s(&offer.app_package));
    put("icon_url", s(&offer.icon_url));
    f
}

/// The offer's currency, or the target's default for sources that give none.
fn currency<'a>(target: &'a TargetConfig, offer: &'a Offer) -> &'a str {
    offer
        .currency
        .as_deref()
        .or(target.controls.defaults.currency.as_deref())
        .unwrap_or(&target.currency)
}

/// The description, countries, categories and excluded countries as the target's controls
/// shape them: the description prefix, the target's excluded countries dropped from the
/// allowed ones (an offer left with none is filtered out) and added to the offer's own
/// exclusions, default categories for an offer without any.
fn with_controls(
    target: &TargetConfig,
    offer: &Offer,
) -> (Option<String>, Vec<String>, Vec<String>, Vec<String>) {
    let defaults = &target.controls.defaults;
    let description = match (&defaults.description_prefix, &offer.description) {
        (Some(prefix), Some(d)) => Some(format!("{prefix}{d}")),
        (_, d) => d.clone(),
    };
    let excluded = target
        .filters
        .exclude_countries
        .as_deref()
        .unwrap_or_default();
    let countries = offer
        .countries
        .iter()
        .filter(|c| !excluded.contains(c) && !offer.excluded_countries.contains(c))
        .cloned()
        .collect();
    let mut excluded: Vec<String> = offer
        .excluded_countries
        .iter()
        .chain(excluded)
        .cloned()
        .collect();
    excluded.sort();
    excluded.dedup();
    let categories = match &defaults.categories {
        Some(d) if offer.categories.is_empty() => d.clone(),
        _ => offer.categories.clone(),
    };
    (description, countries, categories, excluded)
}
