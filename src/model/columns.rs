//! An offer's fields in the mirror's text encoding: decimals as normalized text, lists and
//! structured fields as JSON arrays, timestamps as RFC 3339. Computed when an offer is sourced,
//! on the fetch side of a run, so the writer thread (the one that cannot be parallel) only binds
//! them.

use super::{format_timestamp, Offer};

/// The encoded columns of one offer (the text ones the store does not take as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    pub payout: Option<String>,
    pub revenue: Option<String>,
    pub countries: String,
    pub platforms: String,
    pub categories: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub payouts: String,
    pub excluded_countries: String,
    pub caps: String,
}

impl Columns {
    pub fn of(o: &Offer) -> Columns {
        let json = |l: &Vec<String>| serde_json::to_string(l).unwrap_or_else(|_| "[]".into());
        Columns {
            payout: o.payout.map(|d| d.normalize().to_string()),
            revenue: o.revenue.map(|d| d.normalize().to_string()),
            countries: json(&o.countries),
            platforms: json(&o.platforms),
            categories: json(&o.categories),
            starts_at: o.starts_at.map(format_timestamp),
            ends_at: o.ends_at.map(format_timestamp),
            payouts: serde_json::to_string(&o.payouts).unwrap_or_else(|_| "[]".into()),
            excluded_countries: json(&o.excluded_countries),
            caps: serde_json::to_string(&o.caps).unwrap_or_else(|_| "[]".into()),
        }
    }
}
