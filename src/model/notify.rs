//! The notification vocabulary: the events a notifier can subscribe to and the rule the store
//! applies when it records them (which events, which sources and targets, how large a payout
//! move must be). Pure.

use super::run::text_enum;
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

text_enum! {
    /// What a notification reports (`notify_outbox.event`).
    NotifyEvent {
        OfferAdded => "offer_added",
        OfferRemoved => "offer_removed",
        PayoutChanged => "payout_changed",
        StatusChanged => "status_changed",
        RunFailed => "run_failed",
        /// The mass-removal guard held a run's removals.
        RunHeld => "run_held",
        PushDead => "push_dead",
        AwaitingApproval => "awaiting_approval",
    }
}

/// One `[[notify]]` table as the store applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyRule {
    pub name: String,
    pub events: Vec<NotifyEvent>,
    /// Only these sources (`None`: all).
    pub sources: Option<Vec<String>>,
    /// Only these targets, for push events (`None`: all).
    pub targets: Option<Vec<String>>,
    /// Report a payout move only when it is at least this fraction of the old payout.
    pub min_payout_change: Option<Decimal>,
}

impl NotifyRule {
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }

    pub fn covers_source(&self, source: &str) -> bool {
        self.sources
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == source))
    }

    pub fn covers_target(&self, target: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == target))
    }

    /// Whether a payout move from `old` to `new` is large enough to report.
    pub fn payout_move_counts(&self, old: Option<Decimal>, new: Option<Decimal>) -> bool {
        match (self.min_payout_change, old, new) {
            (None, _, _) => true,
            (Some(min), Some(old), Some(new)) if !old.is_zero() => ((new - old) / old).abs() >= min,
            // From or to nothing, or from zero: always a move worth reporting.
            (Some(_), _, _) => true,
        }
    }
}

/// How many offers a notification lists by name (the rest are counted).
pub const NOTIFY_SAMPLE: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_decimal;

    #[test]
    fn small_payout_moves_are_not_reported_when_a_minimum_is_set() {
        let mut r = NotifyRule {
            name: "n".into(),
            events: vec![NotifyEvent::PayoutChanged],
            sources: Some(vec!["a".into()]),
            targets: None,
            min_payout_change: parse_decimal("0.10"),
        };
        let d = |s: &str| parse_decimal(s);
        assert!(!r.payout_move_counts(d("2.00"), d("2.10")), "+5 %");
        assert!(r.payout_move_counts(d("2.00"), d("2.20")), "+10 %");
        assert!(r.payout_move_counts(d("2.00"), d("1.00")), "-50 %");
        assert!(r.payout_move_counts(None, d("1.00")));
        r.min_payout_change = None;
        assert!(r.payout_move_counts(d("2.00"), d("2.01")));
        assert!(r.covers_source("a") && !r.covers_source("b") && r.covers_target("t"));
    }
}
