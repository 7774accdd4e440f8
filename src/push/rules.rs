//! The operators' rules the planner applies: the approval queue (`approval = "manual"` and
//! `[targets.auto_approve]`, operators' decisions) and the payout-jump guard. Pure.

use crate::config::{Approval, TargetConfig};
use crate::model::{parse_decimal, Decision, Held, Mapping, Offer, PushFields};
use rust_decimal::Decimal;
use serde_json::Value;

/// Whether a create on a `manual` target goes out without waiting: every list of
/// `[targets.auto_approve]` that is set matches.
fn auto_approved(target: &TargetConfig, offer: &Offer) -> bool {
    let Some(a) = &target.controls.auto_approve else {
        return false;
    };
    let overlap = |want: &Option<Vec<String>>, have: &[String]| {
        want.as_ref().is_none_or(|w| {
            w.iter()
                .any(|x| have.iter().any(|h| h.eq_ignore_ascii_case(x)))
        })
    };
    overlap(&a.countries, &offer.countries)
        && overlap(&a.categories, &offer.categories)
        && a.min_payout
            .is_none_or(|min| offer.payout.is_some_and(|p| p >= min))
        && a.payout_types
            .as_ref()
            .is_none_or(|t| offer.payout_type.is_some_and(|p| t.contains(&p)))
        && a.advertisers.as_ref().is_none_or(|l| {
            offer
                .advertiser
                .as_deref()
                .is_some_and(|v| l.iter().any(|x| x.eq_ignore_ascii_case(v)))
        })
}

/// Why a create waits for an operator, if it does.
pub(super) fn create_hold(
    target: &TargetConfig,
    source: &str,
    offer: &Offer,
    decision: Option<&Decision>,
) -> Option<Held> {
    match decision {
        Some(Decision::Rejected) => Some(Held::Rejected),
        Some(Decision::Approved { .. }) => None,
        None if target.controls.approval == Approval::Manual && !auto_approved(target, offer) => {
            Some(Held::Approval(format!(
                "new offer awaiting approval (target {} has approval = \"manual\"): offersync approve {} {source} {}",
                target.name, target.name, offer.external_id
            )))
        }
        None => None,
    }
}

/// The fields that move with the payout: held together by the payout-jump guard.
const PAYOUT_FIELDS: &[&str] = &["payout", "cost", "currency"];

fn as_decimal(v: Option<&Value>) -> Option<Decimal> {
    match v? {
        Value::String(s) => parse_decimal(s),
        Value::Number(n) => parse_decimal(&n.to_string()),
        _ => None,
    }
}

/// The payout-jump guard: when `changed` moves the payout further than the target allows (and
/// no operator approved exactly this payout), the other changes go out now and the payout
/// waits, alone, in a later operation; `None` in the second place when nothing is held.
pub(super) fn guard_payout(
    target: &TargetConfig,
    m: &Mapping,
    changed: PushFields,
    decision: Option<&Decision>,
) -> (PushFields, Option<Held>) {
    let c = &target.controls;
    let (Some(new), Some(old)) = (
        as_decimal(changed.get("payout")),
        as_decimal(m.pushed.get("payout")),
    ) else {
        return (changed, None);
    };
    let too_far = if new > old {
        c.max_payout_increase
            .is_some_and(|max| old.is_zero() || (new - old) / old > max)
    } else {
        c.max_payout_decrease
            .is_some_and(|max| !old.is_zero() && (old - new) / old > max)
    };
    let approved = matches!(decision, Some(Decision::Approved { payout: Some(p) })
        if parse_decimal(p) == Some(new));
    if !too_far || approved {
        return (changed, None);
    }
    let (payout, rest): (PushFields, PushFields) = changed
        .into_iter()
        .partition(|(k, _)| PAYOUT_FIELDS.contains(&k.as_str()));
    if !rest.is_empty() {
        return (rest, None);
    }
    let held = match decision {
        Some(Decision::Rejected) => Held::Rejected,
        _ => {
            let pct = |d: Decimal| (d * Decimal::ONE_HUNDRED).round_dp(0);
            let (key, max) = if new > old {
                ("max_payout_increase", c.max_payout_increase)
            } else {
                ("max_payout_decrease", c.max_payout_decrease)
            };
            let change = if old.is_zero() {
                "from zero".to_string()
            } else {
                format!("{:+}%", pct((new - old) / old))
            };
            Held::Approval(format!(
                "payout jump held: {old} -> {new} ({change}) exceeds {key} = {}%",
                pct(max.unwrap_or_default())
            ))
        }
    };
    (payout, Some(held))
}
