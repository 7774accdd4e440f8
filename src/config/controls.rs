//! The operator controls of a target, validated: the approval queue (`approval`,
//! `[targets.auto_approve]`), the payout-jump guard (`max_payout_increase`,
//! `max_payout_decrease`) and import defaults (`[targets.defaults]`).

use super::raw::{RawAutoApprove, RawDefaults, RawTarget};
use super::target::{country_list, decimal, payout_type_list};
use super::{Errors, TargetKind};
use crate::model::PayoutType;
use rust_decimal::Decimal;

/// Whether creates go out at once or wait for `offersync approve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    #[default]
    Auto,
    Manual,
}

/// Creates that go out without waiting on a `manual` target: each list set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoApprove {
    pub countries: Option<Vec<String>>,
    pub categories: Option<Vec<String>>,
    pub min_payout: Option<Decimal>,
    pub payout_types: Option<Vec<PayoutType>>,
    pub advertisers: Option<Vec<String>>,
}

/// What a create carries when the source gives nothing (or the field's policy is `never`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetDefaults {
    pub categories: Option<Vec<String>>,
    pub currency: Option<String>,
    /// Put before every pushed description.
    pub description_prefix: Option<String>,
    /// Affise `privacy` of created offers: `public`, `protected` or `private`.
    pub privacy: Option<String>,
    /// Offerit: create offers hidden from affiliates.
    pub hidden: Option<bool>,
}

/// The controls of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    pub approval: Approval,
    pub auto_approve: Option<AutoApprove>,
    /// Largest payout rise let through without approval, as a fraction (`1.0` = +100 %).
    pub max_payout_increase: Option<Decimal>,
    /// Largest payout cut let through without approval, as a fraction (`0.5` = -50 %).
    pub max_payout_decrease: Option<Decimal>,
    pub defaults: TargetDefaults,
}

pub(super) fn validate_controls(
    key: &str,
    kind: Option<TargetKind>,
    t: &mut RawTarget,
    errs: &mut Errors,
) -> Controls {
    let approval = match t.approval.as_deref() {
        None | Some("auto") => Approval::Auto,
        Some("manual") => Approval::Manual,
        Some(other) => {
            errs.push(
                format!("{key}.approval"),
                format!("{other:?} is not one of auto, manual"),
            );
            Approval::Auto
        }
    };
    let auto_approve = t.auto_approve.take().map(|a| {
        if approval != Approval::Manual {
            errs.push(
                format!("{key}.auto_approve"),
                "only applies with approval = \"manual\"",
            );
        }
        auto_approve(&format!("{key}.auto_approve"), a, errs)
    });
    let fraction = |name: &str, v: Option<f64>, max: f64, errs: &mut Errors| {
        v.and_then(|f| match Decimal::from_f64_retain(f) {
            Some(d) if f > 0.0 && f <= max => Some(d.normalize()),
            _ => {
                errs.push(
                    format!("{key}.{name}"),
                    format!("{f} is out of range: a fraction above 0 and at most {max}"),
                );
                None
            }
        })
    };
    let max_payout_increase = fraction("max_payout_increase", t.max_payout_increase, 1e6, errs);
    let max_payout_decrease = fraction("max_payout_decrease", t.max_payout_decrease, 1.0, errs);
    let defaults = defaults(key, kind, std::mem::take(&mut t.defaults), errs);
    Controls {
        approval,
        auto_approve,
        max_payout_increase,
        max_payout_decrease,
        defaults,
    }
}

fn auto_approve(key: &str, a: RawAutoApprove, errs: &mut Errors) -> AutoApprove {
    AutoApprove {
        countries: country_list(&format!("{key}.countries"), a.countries, errs),
        categories: a.categories,
        min_payout: decimal(&format!("{key}.min_payout"), a.min_payout, errs),
        payout_types: payout_type_list(&format!("{key}.payout_types"), a.payout_types, errs),
        advertisers: a.advertisers,
    }
}

fn defaults(
    key: &str,
    kind: Option<TargetKind>,
    d: RawDefaults,
    errs: &mut Errors,
) -> TargetDefaults {
    let key = format!("{key}.defaults");
    let currency = d.currency.and_then(|c| {
        let n = crate::model::normalize_currency(&c).filter(|n| crate::model::is_iso_currency(n));
        if n.is_none() {
            errs.push(
                format!("{key}.currency"),
                format!("{c:?} is not an ISO 4217 currency code"),
            );
        }
        n
    });
    if let Some(p) = &d.privacy {
        if kind.is_some_and(|k| k != TargetKind::Affise) {
            errs.push(format!("{key}.privacy"), "only applies to kind \"affise\"");
        } else if !matches!(p.as_str(), "public" | "protected" | "private") {
            // Seed 001's create example sends `privacy=protected`; APIS.md 2.5 lists the three.
            errs.push(
                format!("{key}.privacy"),
                format!("{p:?} is not one of public, protected, private"),
            );
        }
    }
    if d.hidden.is_some() && kind.is_some_and(|k| k != TargetKind::Offerit) {
        errs.push(format!("{key}.hidden"), "only applies to kind \"offerit\"");
    }
    TargetDefaults {
        categories: d.categories,
        currency,
        description_prefix: d.description_prefix,
        privacy: d.privacy,
        hidden: d.hidden,
    }
}
