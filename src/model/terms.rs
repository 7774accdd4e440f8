//! The terms of an offer that the connector catalogue brought into the canonical model (schema
//! 8): a payout's unit (an amount, or a percentage of the sale), the source-side approval state,
//! and caps.

use super::run::text_enum;
use std::fmt;
use std::str::FromStr;

text_enum! {
    /// What `payout` measures (`offer_rows.payout_unit`).
    #[derive(Default)]
    PayoutUnit {
        /// An amount in `currency` (the default).
        #[default]
        Amount => "amount",
        /// A percentage of the sale (CPS / revenue share): `payout = 30` is 30 %, never $30.
        Percent => "percent",
    }
}

text_enum! {
    /// Whether the affiliate may run the offer, as the source says (`offer_rows.approval`; NULL
    /// when the source does not say, which counts as runnable).
    SourceApproval {
        /// Approved for this affiliate (or public).
        Approved => "approved",
        /// Visible, but the affiliate must apply first (Everflow `require_approval`, HasOffers
        /// `require_approval = 1`, CAKE "Apply To Run").
        RequiresApproval => "requires_approval",
        /// Applied for, not decided yet.
        Pending => "pending",
        /// The application was refused.
        Rejected => "rejected",
    }
}

impl SourceApproval {
    /// Whether an offer in this state can be run (and so pushed as runnable).
    pub fn runnable(state: Option<SourceApproval>) -> bool {
        matches!(state, None | Some(SourceApproval::Approved))
    }
}

/// One cap of an offer (`offer_rows.caps`, a JSON array).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Cap {
    /// `daily`, `monthly` or `lifetime`.
    pub period: String,
    /// `conversions` or `budget` (an amount in the offer's currency).
    pub kind: String,
    /// Decimal text.
    pub value: String,
}

impl Cap {
    pub fn new(period: &str, kind: &str, value: impl fmt::Display) -> Cap {
        Cap {
            period: period.into(),
            kind: kind.into(),
            value: value.to_string(),
        }
    }
}

/// `daily` / `monthly` / `lifetime` from the words platforms use (`day`, `month`, `total`...).
pub fn cap_period(word: &str) -> Option<&'static str> {
    match word.trim().to_ascii_lowercase().as_str() {
        "day" | "daily" => Some("daily"),
        "month" | "monthly" => Some("monthly"),
        "lifetime" | "total" | "all" | "global" | "overall" => Some("lifetime"),
        _ => None,
    }
}
