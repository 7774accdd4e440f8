//! Rendering an offer for a target: the fields it is sent (name and tracking-link templates,
//! the payout ratio rounded to the currency's minor unit, the target's click macro). Pure.

use crate::config::{TargetConfig, TargetKind};
use crate::model::PushFields;
use crate::model::{format_timestamp, Offer};
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
    let (description, countries, categories) = with_controls(target, offer);
    put("description", s(&description));
    let list = |l: &[String]| Value::Array(l.iter().cloned().map(Value::String).collect());
    put("countries", list(&countries));
    put("categories", list(&categories));
    if let Some(p) = offer.payout {
        put(
            "payout",
            Value::String(
                apply_ratio(p, target.payout_ratio, Some(currency(target, offer))).to_string(),
            ),
        );
        put("cost", Value::String(p.normalize().to_string()));
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

/// The description, countries and categories as the target's controls shape them: the
/// description prefix, excluded countries dropped (an offer left with none is filtered out),
/// default categories for an offer without any.
fn with_controls(
    target: &TargetConfig,
    offer: &Offer,
) -> (Option<String>, Vec<String>, Vec<String>) {
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
        .filter(|c| !excluded.contains(c))
        .cloned()
        .collect();
    let categories = match &defaults.categories {
        Some(d) if offer.categories.is_empty() => d.clone(),
        _ => offer.categories.clone(),
    };
    (description, countries, categories)
}
