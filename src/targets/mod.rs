//! Target platforms behind one trait: a [`Target`] turns an operation (create, update, pause,
//! activate) into HTTP requests and says what each answer means. Like sources, targets never
//! touch the store, retry, pace or sleep: the delivery worker (`crate::push::deliver`) and the
//! HTTP layer do.

pub mod affise;
pub mod offerit;

use crate::config::{Secret, TargetConfig, TargetKind};
use crate::http::{Failure, HttpRequest, HttpResponse};
use crate::model::{OpKind, PushFields};

/// One operation as a target sees it.
pub struct TargetOp<'a> {
    pub kind: OpKind,
    /// The fields this operation changes (every pushed field for a create).
    pub fields: &'a PushFields,
    /// Every field the target will hold once this operation is done.
    pub all: &'a PushFields,
    /// The target's id of the offer (for everything but a create).
    pub target_offer_id: Option<&'a str>,
    /// `source:external_id`, for targets that store an external reference.
    pub external_ref: &'a str,
    /// The target holds the offer hidden from affiliates (created by a staged create, not yet
    /// revealed): an activate reveals it.
    pub hidden: bool,
}

pub trait Target: Send + Sync {
    /// The requests that carry out `op`, sent in order. All but a create are idempotent; a
    /// create's request is marked [`HttpRequest::not_idempotent`], so the HTTP layer never
    /// sends it twice blindly.
    fn requests(&self, op: &TargetOp<'_>) -> Vec<HttpRequest>;

    /// What the answer to request `index` of `op` means; for a create, the new offer's id. A
    /// create answered with success but no usable id is [`Failure::ambiguous`].
    fn interpret(
        &self,
        op: &TargetOp<'_>,
        index: usize,
        resp: &HttpResponse,
    ) -> Result<Option<String>, Failure>;

    /// A request that finds the offers a create whose outcome is unknown may have made, if the
    /// platform can be searched (Offerit cannot).
    fn lookup(&self, external_ref: &str) -> Option<HttpRequest>;

    /// The ids of the offers carrying `external_ref` in the lookup's answer (empty when the
    /// create did not go through), oldest first.
    fn interpret_lookup(
        &self,
        external_ref: &str,
        resp: &HttpResponse,
    ) -> Result<Vec<String>, Failure>;

    /// A request that reads the target offer `target_offer_id`, where the target can be read
    /// (Affise); `None` where it cannot (Offerit), so there only `offersync detach` protects
    /// an offer the network's operators changed by hand.
    fn read(&self, _target_offer_id: &str) -> Option<HttpRequest> {
        None
    }

    /// Whether the offer read is live on the target (not stopped or suspended by hand).
    fn interpret_read(&self, _resp: &HttpResponse) -> Result<bool, Failure> {
        Ok(true)
    }

    /// Whether a create leaves the offer hidden from affiliates until an activate reveals it
    /// (a target that cannot be searched stages its creates, so a lost answer leaves at most
    /// an invisible orphan).
    fn creates_hidden(&self) -> bool {
        false
    }
}

/// Construct the target for a config.
pub fn build(cfg: &TargetConfig, api_key: Secret) -> Result<Box<dyn Target>, String> {
    match cfg.kind {
        TargetKind::Offerit => Ok(Box::new(offerit::Offerit::new(cfg, api_key)?)),
        TargetKind::Affise => Ok(Box::new(affise::Affise::new(cfg, api_key)?)),
    }
}

/// A field as form text: strings bare, lists comma-joined, other values as JSON.
pub(crate) fn form_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `2026-01-01T00:00:00Z` → `2026-01-01` (Offerit dates) or `2026-01-01 00:00:00` (Affise).
pub(crate) fn date_part(v: &serde_json::Value, with_time: bool) -> Option<String> {
    let t = crate::model::parse_timestamp(v.as_str()?)?;
    Some(if with_time {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_decimal, Cap, OpKind, PayoutType, PayoutUnit};
    use crate::push::plan::plan;
    use crate::push::plan::tests::{offer, target};
    use std::collections::BTreeMap;

    /// The create form `kind`'s target would send for a percentage payout that excludes CN and
    /// has a daily cap (payout ratio 0.80 in the test target).
    fn create_form(kind: TargetKind) -> BTreeMap<String, String> {
        let mut o = offer();
        o.payout = parse_decimal("30");
        o.payout_unit = PayoutUnit::Percent;
        o.payout_type = Some(PayoutType::Cps);
        o.countries = vec![];
        o.excluded_countries = vec!["CN".into()];
        o.caps = vec![Cap::new("daily", "conversions", 100)];
        let t = target(kind);
        let op = plan(&t, "s", &o, None, None).unwrap();
        let top = TargetOp {
            kind: OpKind::Create,
            fields: &op.fields,
            all: &op.fields,
            target_offer_id: None,
            external_ref: "s:9",
            hidden: false,
        };
        let reqs = build(&t, Secret::new("k")).unwrap().requests(&top);
        reqs[0].form.clone().unwrap().into_iter().collect()
    }

    #[test]
    fn a_percentage_goes_to_offerit_as_a_share_of_the_sale_never_as_an_amount() {
        let f = create_form(TargetKind::Offerit);
        assert_eq!(f["commission_type"], "cps");
        assert_eq!(f["percentage_of_customer_conversion"], "24", "30 % x 0.80");
        assert_eq!(f["advertiser_cost_type"], "sale");
        assert!(!f.contains_key("flat_amount_per_conversion"), "{f:?}");
        // Seed 003: with 'sale', advertiser_cost_flat is the advertiser's percentage.
        assert_eq!(f["advertiser_cost_flat"], "30");
        assert_eq!(f["unauthorized"], "CN");
        assert!(!f.contains_key("authorized"), "worldwide but CN: {f:?}");
    }

    #[test]
    fn a_percentage_goes_to_affise_as_a_percent_payment_with_exclusions_and_caps() {
        let f = create_form(TargetKind::Affise);
        assert_eq!(f["payments[0][type]"], "percent");
        assert_eq!(f["payments[0][revenue]"], "24");
        assert_eq!(f["payments[0][countries][]"], "CN");
        assert_eq!(f["payments[0][country_exclude]"], "1");
        assert_eq!(
            (
                f["caps[0][period]"].as_str(),
                f["caps[0][type]"].as_str(),
                f["caps[0][value]"].as_str()
            ),
            ("day", "conversions", "100")
        );
        assert_eq!(
            (
                f["caps[0][goal_type]"].as_str(),
                f["caps[0][affiliate_type]"].as_str()
            ),
            ("all", "all"),
            "as seed 001's example sends them"
        );
    }

    #[test]
    fn an_offer_awaiting_approval_at_its_source_is_not_pushed() {
        let mut o = offer();
        o.approval = Some(crate::model::SourceApproval::RequiresApproval);
        assert!(plan(&target(TargetKind::Affise), "s", &o, None, None).is_none());
        o.approval = Some(crate::model::SourceApproval::Approved);
        assert!(plan(&target(TargetKind::Affise), "s", &o, None, None).is_some());
    }
}
