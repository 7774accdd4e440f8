//! The canonical offer: one model every platform is normalized into, its content hash and its diff.
//!
//! Everything here is pure (no IO, no clock): platform files build [`Offer`]s, the store persists
//! them, and [`diff`] explains what changed between two versions.

mod check;
mod columns;
mod diff;
mod hash;
mod location;
mod normalize;
mod notify;
pub mod push;
pub mod run;
mod terms;

pub use check::{check, is_iso_currency, MAX_OFFER_JSON_BYTES, MAX_PAYOUT};
pub use columns::Columns;
pub use diff::{diff, Diff, FieldChange};
pub use hash::content_hash;
pub use location::{redact_url, Location, PgLocation};
pub use normalize::{
    normalize_categories, normalize_countries, normalize_country, normalize_currency,
    normalize_platforms, parse_decimal, parse_timestamp, unix_to_utc,
};
pub use notify::{NotifyEvent, NotifyRule, NOTIFY_SAMPLE};
pub use push::{
    merged, Decision, Held, Mapping, OpKind, OutboxState, PlannedOp, Planner, PushFields,
};
pub use run::{ChangeKind, RunState, StopReason};
pub use terms::{cap_period, Cap, PayoutUnit, SourceApproval};

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

/// Lifecycle status of an offer in the mirror.
///
/// `Removed` is never produced by a platform: the store sets it when a complete run no longer
/// sees the offer. Unknown platform statuses map to `Other` (the original stays in `raw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferStatus {
    Active,
    Paused,
    Pending,
    Expired,
    Removed,
    Other,
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 6] = [
        OfferStatus::Active,
        OfferStatus::Paused,
        OfferStatus::Pending,
        OfferStatus::Expired,
        OfferStatus::Removed,
        OfferStatus::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Active => "active",
            OfferStatus::Paused => "paused",
            OfferStatus::Pending => "pending",
            OfferStatus::Expired => "expired",
            OfferStatus::Removed => "removed",
            OfferStatus::Other => "other",
        }
    }
}

impl FromStr for OfferStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OfferStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = OfferStatus::ALL.iter().map(|v| v.as_str()).collect();
                format!("{s:?} is not one of {}", known.join(", "))
            })
    }
}

impl fmt::Display for OfferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the affiliate is paid. Platform spellings (`cpa`, `RPA`, `CPA+CPS`, ...) map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutType {
    Cpa,
    Cpi,
    Cpl,
    Cpc,
    Cps,
    Cpm,
    Other,
}

impl PayoutType {
    pub const ALL: [PayoutType; 7] = [
        PayoutType::Cpa,
        PayoutType::Cpi,
        PayoutType::Cpl,
        PayoutType::Cpc,
        PayoutType::Cps,
        PayoutType::Cpm,
        PayoutType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutType::Cpa => "CPA",
            PayoutType::Cpi => "CPI",
            PayoutType::Cpl => "CPL",
            PayoutType::Cpc => "CPC",
            PayoutType::Cps => "CPS",
            PayoutType::Cpm => "CPM",
            PayoutType::Other => "other",
        }
    }

    /// Lenient mapping of a platform's spelling; anything unknown is `Other`.
    pub fn from_platform(s: &str) -> PayoutType {
        let s = s.trim();
        PayoutType::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .unwrap_or(PayoutType::Other)
    }
}

impl FromStr for PayoutType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PayoutType::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown payout type {s:?}"))
    }
}

/// One offer, normalized. Lists are sorted and de-duplicated, money is decimal, times are UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub external_id: String,
    pub name: String,
    pub status: OfferStatus,
    pub payout: Option<Decimal>,
    pub currency: Option<String>,
    pub payout_type: Option<PayoutType>,
    pub revenue: Option<Decimal>,
    pub countries: Vec<String>,
    pub platforms: Vec<String>,
    pub categories: Vec<String>,
    pub tracking_url: Option<String>,
    pub preview_url: Option<String>,
    pub advertiser: Option<String>,
    pub description: Option<String>,
    pub icon_url: Option<String>,
    pub app_package: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Every payout the platform lists (Affise `payments[]`, ...); the primary one is also in
    /// `payout`/`revenue`/`currency`. Empty for platforms with a single payout.
    pub payouts: Vec<PayoutTier>,
    /// What `payout` measures: an amount, or a percentage of the sale.
    pub payout_unit: PayoutUnit,
    /// Countries the offer must not run in (beside the allowed `countries`).
    pub excluded_countries: Vec<String>,
    /// Whether the affiliate may run it, as the source says (`None`: the source does not say).
    pub approval: Option<SourceApproval>,
    /// Daily / monthly / lifetime caps, as the source lists them.
    pub caps: Vec<Cap>,
}

/// One of several payouts of an offer, as stored in the `payouts` JSON column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PayoutTier {
    /// Affiliate payout, decimal text.
    pub payout: Option<String>,
    /// Advertiser price (network revenue), decimal text.
    pub revenue: Option<String>,
    pub currency: Option<String>,
    pub countries: Vec<String>,
    /// The platform's payout type (`fixed`, `percent`, `CPA`, ...).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub goal: Option<String>,
    pub title: Option<String>,
}

impl PayoutTier {
    /// Canonical form: decimals normalized, countries ISO and sorted, currency upper-case.
    pub fn normalized(mut self) -> PayoutTier {
        let dec = |d: Option<String>| d.and_then(|d| parse_decimal(&d)).map(|d| d.to_string());
        self.payout = dec(self.payout);
        self.revenue = dec(self.revenue);
        self.currency = self.currency.as_deref().and_then(normalize_currency);
        self.countries = normalize_countries(self.countries.iter().map(String::as_str));
        self
    }
}

impl Offer {
    /// An active offer with only an id and a name; platform files fill in the rest.
    pub fn new(external_id: impl Into<String>, name: impl Into<String>) -> Offer {
        Offer {
            external_id: external_id.into(),
            name: name.into(),
            status: OfferStatus::Active,
            payout: None,
            currency: None,
            payout_type: None,
            revenue: None,
            countries: Vec::new(),
            platforms: Vec::new(),
            categories: Vec::new(),
            tracking_url: None,
            preview_url: None,
            advertiser: None,
            description: None,
            icon_url: None,
            app_package: None,
            starts_at: None,
            ends_at: None,
            payouts: Vec::new(),
            payout_unit: PayoutUnit::Amount,
            excluded_countries: Vec::new(),
            approval: None,
            caps: Vec::new(),
        }
    }

    /// Bring every field into canonical form. Idempotent: `o.normalized().normalized() == o.normalized()`.
    pub fn normalized(mut self) -> Offer {
        trim_in_place(&mut self.external_id);
        trim_in_place(&mut self.name);
        self.payout = self.payout.map(|d| d.normalize());
        self.revenue = self.revenue.map(|d| d.normalize());
        if let Some(c) = self.currency.take() {
            self.currency = normalize_currency(&c);
        }
        self.countries = normalize_countries(self.countries.iter().map(String::as_str));
        self.excluded_countries =
            normalize_countries(self.excluded_countries.iter().map(String::as_str));
        self.caps.sort();
        self.caps.dedup();
        self.platforms = normalize_platforms(self.platforms.iter().map(String::as_str));
        self.categories = normalize_categories(self.categories.iter().map(String::as_str));
        self.payouts = std::mem::take(&mut self.payouts)
            .into_iter()
            .map(PayoutTier::normalized)
            .collect();
        self.payouts.sort();
        self.payouts.dedup();
        for field in [
            &mut self.tracking_url,
            &mut self.preview_url,
            &mut self.advertiser,
            &mut self.description,
            &mut self.icon_url,
            &mut self.app_package,
        ] {
            if let Some(v) = field.as_mut() {
                trim_in_place(v);
                if v.is_empty() {
                    *field = None;
                }
            }
        }
        self
    }
}

/// Trim without reallocating when there is nothing to trim (the common case).
fn trim_in_place(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_string();
    }
}

/// RFC 3339, UTC, whole seconds, `Z` suffix: the one timestamp format of the database.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // The common case without chrono's format-string machinery (it is on the per-offer path):
    // the same text as `to_rfc3339_opts(SecondsFormat::Secs, true)`.
    if (0..=9999).contains(&t.year()) {
        use std::fmt::Write;
        let mut s = String::with_capacity(20);
        let _ = write!(
            s,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            // A leap second (nanosecond >= 1e9) is written as :60 by chrono too.
            t.second() + u32::from(t.nanosecond() >= 1_000_000_000)
        );
        return s;
    }
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An offer as a source delivered it: normalized, hashed, and with the platform's JSON as received.
#[derive(Debug, Clone)]
pub struct SourcedOffer {
    pub offer: Offer,
    pub content_hash: String,
    /// `offer` in the mirror's text encoding, when it was encoded ahead (see [`Self::encode`]).
    pub columns: Option<Columns>,
    pub raw: String,
}

impl SourcedOffer {
    /// Normalize `offer` and compute its hash.
    pub fn new(offer: Offer, raw: impl Into<String>) -> SourcedOffer {
        let offer = offer.normalized();
        SourcedOffer {
            content_hash: content_hash(&offer),
            columns: None,
            offer,
            raw: raw.into(),
        }
    }

    /// Encode the mirror's text columns now. A run does this on its fetch side while its pages
    /// are mostly new or changed, so the writer thread only binds them; an unchanged offer is
    /// never written, so a re-sync does not encode ahead.
    pub fn encode(&mut self) {
        if self.columns.is_none() {
            self.columns = Some(Columns::of(&self.offer));
        }
    }

    /// The text columns: encoded ahead, or now.
    pub fn columns(&self) -> std::borrow::Cow<'_, Columns> {
        match &self.columns {
            Some(c) => std::borrow::Cow::Borrowed(c),
            None => std::borrow::Cow::Owned(Columns::of(&self.offer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone, Utc};
    use proptest::prelude::*;

    fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop::sample::select(items).prop_map(String::from)
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[ a-zA-Z0-9:/.?=&]{0,16}")
    }

    fn money() -> impl Strategy<Value = Option<Decimal>> {
        prop::option::of((0i64..10_000_000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s)))
    }

    fn tier() -> impl Strategy<Value = PayoutTier> {
        (
            prop::option::of(pick(&["1.50", "1.5", " 2 ", "0.100", "x"])),
            prop::option::of(pick(&["3", "3.0", "10.25"])),
            prop::option::of(pick(&["usd", "USD", " eur", "x"])),
            prop::collection::vec(pick(&["us", "GB", "uk", "de", "ZZ"]), 0..4),
            prop::option::of(pick(&["fixed", "percent"])),
        )
            .prop_map(|(payout, revenue, currency, countries, kind)| PayoutTier {
                payout,
                revenue,
                currency,
                countries,
                kind,
                goal: None,
                title: None,
            })
    }

    /// Offers as platforms send them: sloppy case and spacing, duplicates, junk codes, any order.
    fn offer() -> impl Strategy<Value = Offer> {
        let lists = (
            prop::collection::vec(
                pick(&["us", "US", " gb", "UK", "de", "XX", "fr ", "JP", ""]),
                0..6,
            ),
            prop::collection::vec(
                pick(&["Android", "iOS", "iphone", "web", "PC", " android "]),
                0..4,
            ),
            prop::collection::vec(pick(&["Games", " Finance", "Games ", "Dating", ""]), 0..4),
            prop::collection::vec(tier(), 0..3),
        );
        let scalars = (
            "[ a-zA-Z0-9]{0,12}",
            prop::sample::select(&OfferStatus::ALL[..]),
            money(),
            prop::option::of(pick(&["usd", "USD", " eur ", "JPY", "dollars"])),
            prop::option::of(prop::sample::select(&PayoutType::ALL[..])),
            money(),
        );
        let texts = (
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            prop::option::of(0i64..4_000_000_000),
            prop::option::of(0i64..4_000_000_000),
        );
        (scalars, lists, texts).prop_map(
            |(
                (name, status, payout, currency, payout_type, revenue),
                (countries, platforms, categories, payouts),
                (tracking_url, preview_url, description, app_package, starts, ends),
            )| {
                let mut o = Offer::new("id-1", name);
                o.status = status;
                o.payout = payout;
                o.currency = currency;
                o.payout_type = payout_type;
                o.revenue = revenue;
                o.countries = countries;
                o.platforms = platforms;
                o.categories = categories;
                o.payouts = payouts;
                o.tracking_url = tracking_url;
                o.preview_url = preview_url;
                o.description = description;
                o.app_package = app_package;
                o.starts_at = starts.and_then(|s| Utc.timestamp_opt(s, 0).single());
                o.ends_at = ends.and_then(|s| Utc.timestamp_opt(s, 0).single());
                o
            },
        )
    }

    proptest! {
        /// Columns encoded ahead on the fetch side are the ones the writer would encode.
        #[test]
        fn columns_encoded_ahead_are_the_same(o in offer()) {
            let mut s = SourcedOffer::new(o, "{}");
            prop_assert!(s.columns.is_none());
            let now = s.columns().into_owned();
            s.encode();
            prop_assert_eq!(s.columns.as_ref(), Some(&now));
        }

        #[test]
        fn normalization_is_idempotent(o in offer()) {
            let once = o.normalized();
            prop_assert_eq!(once.clone().normalized(), once);
        }

        /// Reordering any list the platform sends changes neither the canonical offer nor its hash.
        #[test]
        fn the_hash_ignores_list_order(o in offer(), k in 0usize..7) {
            let mut shuffled = o.clone();
            for l in [&mut shuffled.countries, &mut shuffled.platforms, &mut shuffled.categories] {
                l.reverse();
                let n = l.len().max(1);
                l.rotate_left(k % n);
            }
            shuffled.payouts.reverse();
            for t in &mut shuffled.payouts {
                t.countries.reverse();
            }
            let (a, b) = (o.normalized(), shuffled.normalized());
            prop_assert_eq!(content_hash(&a), content_hash(&b));
            prop_assert_eq!(a, b);
        }

        /// Applying diff(a, b) to a yields b, also after the diff went through its JSON column.
        #[test]
        fn a_diff_applied_yields_the_new_version(a in offer(), b in offer()) {
            let (a, b) = (a.normalized(), b.normalized());
            let d = diff(&a, &b);
            prop_assert_eq!(d.apply(&a).unwrap(), b.clone());
            let stored: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_value(d.to_json()).unwrap();
            let replayed = Diff(
                a.field_values()
                    .into_iter()
                    .filter_map(|(field, old)| {
                        stored.get(field).map(|c| FieldChange { field, old, new: c["new"].clone() })
                    })
                    .collect(),
            );
            prop_assert_eq!(replayed.apply(&a).unwrap(), b);
        }
    }

    proptest! {
        /// The hand-rolled formatter writes exactly what chrono's RFC 3339 formatter writes.
        #[test]
        fn format_timestamp_matches_chrono(secs in -70_000_000_000i64..300_000_000_000i64, nanos in 0u32..1_000_000_000) {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            prop_assert_eq!(format_timestamp(t), t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }
}
