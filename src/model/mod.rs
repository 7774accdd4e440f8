//! The canonical offer: one model every platform is normalized into, its content hash and its diff.
//!
//! Everything here is pure (no IO, no clock): platform files build [`Offer`]s, the store persists
//! them, and [`diff`] explains what changed between two versions.

mod check;
mod diff;
mod hash;
mod normalize;

pub use check::{check, is_iso_currency, MAX_OFFER_JSON_BYTES, MAX_PAYOUT};
pub use diff::{diff, Diff, FieldChange};
pub use hash::content_hash;
pub use normalize::{
    normalize_categories, normalize_countries, normalize_country, normalize_currency,
    normalize_platforms, parse_decimal, parse_timestamp, unix_to_utc,
};

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
            .ok_or_else(|| format!("unknown offer status {s:?}"))
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
    pub raw: String,
}

impl SourcedOffer {
    /// Normalize `offer` and compute its hash.
    pub fn new(offer: Offer, raw: impl Into<String>) -> SourcedOffer {
        let offer = offer.normalized();
        SourcedOffer {
            content_hash: content_hash(&offer),
            offer,
            raw: raw.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_timestamp;
    use chrono::{SecondsFormat, TimeZone, Utc};
    use proptest::prelude::*;

    proptest! {
        /// The hand-rolled formatter writes exactly what chrono's RFC 3339 formatter writes.
        #[test]
        fn format_timestamp_matches_chrono(secs in -70_000_000_000i64..300_000_000_000i64, nanos in 0u32..1_000_000_000) {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            prop_assert_eq!(format_timestamp(t), t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }
}
