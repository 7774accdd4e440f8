//! A `[[targets]]` table validated.

use super::raw::{RawFilters, RawTarget};
use super::{credential, valid_name, validate_url, CredentialSpec, Errors, HttpPolicy, NAME_HELP};
use crate::model::{normalize_country, parse_decimal, OfferStatus, PayoutType};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Per-field push policy (`always` keeps the target in step, `once` sets it at create only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPolicy {
    Always,
    Once,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Offerit,
    Affise,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Offerit => "offerit",
            TargetKind::Affise => "affise",
        }
    }

    /// The pushed fields a create must carry, per the platform's own document: Offerit's
    /// `add_offer` requires `name` and `url` (seed 003); Affise's `POST /3.0/admin/offer` requires
    /// `title`, `advertiser`, `url` and a payout (seed 001; the advertiser comes from the config).
    pub fn required_on_create(self) -> &'static [&'static str] {
        match self {
            TargetKind::Offerit => &["name", "url"],
            TargetKind::Affise => &["name", "url", "payout"],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TargetFilters {
    pub status: Option<Vec<OfferStatus>>,
    pub countries: Option<Vec<String>>,
    pub min_payout: Option<Decimal>,
    pub payout_types: Option<Vec<PayoutType>>,
    pub categories: Option<Vec<String>>,
    /// Blocklists: an offer of these advertisers, or with these ids, is never pushed (and is
    /// paused where it is already live).
    pub exclude_advertisers: Option<Vec<String>>,
    pub exclude_external_ids: Option<Vec<String>>,
    /// Dropped from the pushed countries; an offer targeting only these is not pushed.
    pub exclude_countries: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub base_url: String,
    pub enabled: bool,
    pub api_username: Option<String>,
    pub credential: CredentialSpec,
    pub sources: Vec<String>,
    pub payout_ratio: Decimal,
    pub tracking_url_template: Option<String>,
    pub name_template: Option<String>,
    pub advertiser_id: Option<String>,
    pub create_status: Option<String>,
    /// The currency of offers whose source gives none (Affise's `payments[0][currency]`).
    pub currency: String,
    pub fields: BTreeMap<String, FieldPolicy>,
    pub filters: TargetFilters,
    /// Timeouts, pace and retry budget of calls to this target.
    pub http: HttpPolicy,
    /// Approval queue, payout-jump guard, import defaults.
    pub controls: super::controls::Controls,
    /// How long a failed operation waits before a later delivery tries it again (doubling per
    /// failure, at most an hour); also the first pause of the target's breaker.
    pub redelivery_interval: Duration,
    /// Index in the config file's `[[targets]]` array, for error messages.
    pub index: usize,
    /// An operation that keeps failing is dead only after `max_attempts` *and* this long since
    /// its first failure (an outage of a few hours kills nothing).
    pub dead_after: Duration,
}

impl TargetConfig {
    /// A fingerprint of everything that decides what the target should hold.
    pub fn plan_fingerprint(&self) -> String {
        let text = format!(
            "{:?}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.kind,
            self.base_url,
            self.sources,
            self.payout_ratio,
            self.tracking_url_template,
            self.name_template,
            (&self.advertiser_id, &self.currency),
            self.create_status,
            self.fields,
            self.filters,
            self.controls
        );
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }
}

pub(super) fn validate_target(
    key: &str,
    index: usize,
    mut t: RawTarget,
    base: &Path,
    errs: &mut Errors,
) -> Option<TargetConfig> {
    let before = errs.0.len();
    if !valid_name(&t.name) {
        errs.push(format!("{key}.name"), format!("{:?}: {NAME_HELP}", t.name));
    }
    let kind = match t.kind.as_str() {
        "offerit" => Some(TargetKind::Offerit),
        "affise" => Some(TargetKind::Affise),
        other => {
            errs.push(
                format!("{key}.kind"),
                format!("unknown kind {other:?} (expected one of: offerit, affise)"),
            );
            None
        }
    };
    validate_url(key, &t.base_url, errs);
    kind_requirements(key, kind, &t, errs);
    let controls = super::controls::validate_controls(key, kind, &mut t, errs);
    let cred = credential(key, t.api_key_env, t.api_key_file, t.api_key, base, errs);
    let ratio = payout_ratio(key, t.payout_ratio.as_deref(), errs);
    let currency = default_currency(key, t.currency.as_deref(), errs);
    let fields = validate_fields(key, kind, t.fields, errs);
    let filters = validate_filters(key, t.filters, errs);
    let rps = t.requests_per_second.unwrap_or(5.0);
    let max_attempts = t.max_attempts.unwrap_or(5);
    super::source::check_pace(key, rps, max_attempts, errs);
    if errs.0.len() > before {
        return None;
    }
    Some(TargetConfig {
        name: t.name,
        kind: kind?,
        base_url: t.base_url,
        enabled: t.enabled.unwrap_or(true),
        api_username: t.api_username,
        credential: cred?,
        sources: t.sources,
        payout_ratio: ratio,
        tracking_url_template: t.tracking_url_template,
        name_template: t.name_template,
        advertiser_id: t.advertiser_id,
        create_status: t.create_status,
        currency,
        fields,
        filters,
        controls,
        http: HttpPolicy {
            timeout: Duration::from_secs(t.timeout_seconds.unwrap_or(30).max(1)),
            connect_timeout: Duration::from_secs(10),
            max_attempts,
            initial_interval: Duration::from_millis(t.retry_initial_interval_ms.unwrap_or(500)),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(300),
            requests_per_second: rps,
            burst: 1,
            run_timeout: None,
        },
        redelivery_interval: Duration::from_secs(
            t.redelivery_interval_seconds.unwrap_or(60).max(1),
        ),
        dead_after: Duration::from_secs(t.dead_after_seconds.unwrap_or(86_400)),
        index,
    })
}

/// `fields.<name> = "always" | "once" | "never"`; a field the target requires on create
/// cannot be `never`.
fn validate_fields(
    key: &str,
    kind: Option<TargetKind>,
    raw: BTreeMap<String, String>,
    errs: &mut Errors,
) -> BTreeMap<String, FieldPolicy> {
    let mut fields = BTreeMap::new();
    for (field, policy) in raw {
        let p = match policy.as_str() {
            "always" => FieldPolicy::Always,
            "once" => FieldPolicy::Once,
            "never" => FieldPolicy::Never,
            other => {
                errs.push(
                    format!("{key}.fields.{field}"),
                    format!("{other:?} is not one of always, once, never"),
                );
                continue;
            }
        };
        if p == FieldPolicy::Never {
            if let Some(k) = kind.filter(|k| k.required_on_create().contains(&field.as_str())) {
                errs.push(
                    format!("{key}.fields.{field}"),
                    format!(
                        "\"never\" is not possible: {} requires {field} on every create",
                        k.as_str()
                    ),
                );
            }
        }
        fields.insert(field, p);
    }
    fields
}

/// `[targets.filters]`: statuses, ISO countries, payout types and a decimal minimum.
fn validate_filters(key: &str, f: RawFilters, errs: &mut Errors) -> TargetFilters {
    let key = format!("{key}.filters");
    let status = f.status.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                OfferStatus::from_str(s)
                    .map_err(|e| errs.push(format!("{key}.status[{i}]"), e))
                    .ok()
            })
            .collect()
    });
    TargetFilters {
        status,
        countries: country_list(&format!("{key}.countries"), f.countries, errs),
        min_payout: decimal(&format!("{key}.min_payout"), f.min_payout, errs),
        payout_types: payout_type_list(&format!("{key}.payout_types"), f.payout_types, errs),
        categories: f.categories,
        exclude_advertisers: f.exclude_advertisers,
        exclude_external_ids: f.exclude_external_ids,
        exclude_countries: country_list(
            &format!("{key}.exclude_countries"),
            f.exclude_countries,
            errs,
        ),
    }
}

/// ISO 3166-1 alpha-2 codes, normalized; each bad one an error at `key[i]`.
pub(super) fn country_list(
    key: &str,
    list: Option<Vec<String>>,
    errs: &mut Errors,
) -> Option<Vec<String>> {
    list.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = normalize_country(c);
                if n.is_none() {
                    errs.push(
                        format!("{key}[{i}]"),
                        format!("{c:?} is not an ISO 3166-1 alpha-2 code"),
                    );
                }
                n
            })
            .collect()
    })
}

/// Payout types (`CPA`, `cpi`, ...); each bad one an error at `key[i]`.
pub(super) fn payout_type_list(
    key: &str,
    list: Option<Vec<String>>,
    errs: &mut Errors,
) -> Option<Vec<PayoutType>> {
    list.map(|v| {
        v.iter()
            .enumerate()
            .filter_map(|(i, s)| {
                PayoutType::from_str(&s.to_ascii_uppercase())
                    .map_err(|e| errs.push(format!("{key}[{i}]"), e))
                    .ok()
            })
            .collect()
    })
}

/// A decimal written as text (`"0.50"`).
pub(super) fn decimal(key: &str, text: Option<String>, errs: &mut Errors) -> Option<Decimal> {
    text.as_deref().and_then(|m| {
        let d = parse_decimal(m);
        if d.is_none() {
            errs.push(key, format!("{m:?} is not a decimal"));
        }
        d
    })
}

/// What a kind requires: Offerit's API user, Affise's advertiser.
fn kind_requirements(key: &str, kind: Option<TargetKind>, t: &RawTarget, errs: &mut Errors) {
    if kind == Some(TargetKind::Offerit) && t.api_username.is_none() {
        errs.push(
            format!("{key}.api_username"),
            "required for kind \"offerit\"",
        );
    }
    if kind == Some(TargetKind::Affise)
        && t.advertiser_id
            .as_deref()
            .is_none_or(|a| a.trim().is_empty())
    {
        errs.push(
            format!("{key}.advertiser_id"),
            "required for kind \"affise\": every create must name its advertiser (Affise's `advertiser`, an advertiser id such as \"5e39279bac611cda7e5765ab\")",
        );
    }
}

/// `payout_ratio`: a positive decimal (default 1).
fn payout_ratio(key: &str, text: Option<&str>, errs: &mut Errors) -> Decimal {
    match text.map(parse_decimal) {
        None => Decimal::ONE,
        Some(Some(d)) if d > Decimal::ZERO => d,
        Some(_) => {
            errs.push(
                format!("{key}.payout_ratio"),
                "must be a positive decimal such as \"0.80\"",
            );
            Decimal::ONE
        }
    }
}

/// `currency`: the ISO 4217 code of offers whose source gives none (default USD).
fn default_currency(key: &str, text: Option<&str>, errs: &mut Errors) -> String {
    match text.map(crate::model::normalize_currency) {
        None => "USD".to_string(),
        Some(Some(c)) if crate::model::is_iso_currency(&c) => c,
        Some(_) => {
            errs.push(
                format!("{key}.currency"),
                format!(
                    "{:?} is not an ISO 4217 currency code",
                    text.unwrap_or_default()
                ),
            );
            "USD".to_string()
        }
    }
}
