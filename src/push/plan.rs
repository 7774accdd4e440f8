//! The push planner: pure functions from a canonical offer, a target's config and what the
//! target already holds (the mapping) to the one operation that brings the target in step.
//! No IO, no clock: tested with plain values.

pub use super::render::{apply_ratio, render, PUSH_FIELDS};
use super::rules::{create_hold, guard_payout};
use crate::config::{FieldPolicy, TargetConfig};
pub use crate::model::{merged, Mapping, OpKind, PlannedOp, PushFields};
use crate::model::{Decision, Offer, OfferStatus, Planner, SourceApproval};
use serde_json::Value;

/// Why a create of these fields would be refused by the target, if it would: a field its
/// document requires is missing or empty.
fn missing_required(target: &TargetConfig, fields: &PushFields) -> Option<String> {
    let missing: Vec<&str> = target
        .kind
        .required_on_create()
        .iter()
        .copied()
        .filter(|f| match fields.get(*f) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        })
        .collect();
    (!missing.is_empty()).then(|| {
        let required = target.kind.required_on_create();
        format!(
            "not created: {} requires {} on create, and this offer has no {}",
            target.kind.as_str(),
            required.join(", "),
            missing.join(" and no ")
        )
    })
}

fn policy(target: &TargetConfig, field: &str) -> FieldPolicy {
    target
        .fields
        .get(field)
        .copied()
        .unwrap_or(FieldPolicy::Always)
}

/// Whether the offer should be live on the target: active at the source, with a tracking URL to
/// send traffic to (Offerslook lists offers awaiting approval without one), and through the
/// filters.
pub fn wanted(target: &TargetConfig, offer: &Offer) -> bool {
    offer.tracking_url.as_deref().is_some_and(|u| !u.is_empty()) && passes(target, offer)
}

/// Whether the offer passes the target's status and filters (a tracking URL aside).
fn passes(target: &TargetConfig, offer: &Offer) -> bool {
    let f = &target.filters;
    let status_ok = match &f.status {
        Some(list) => list.contains(&offer.status),
        None => offer.status == OfferStatus::Active,
    };
    let overlap = |want: &Option<Vec<String>>, have: &[String]| {
        want.as_ref().is_none_or(|w| {
            w.iter()
                .any(|x| have.iter().any(|h| h.eq_ignore_ascii_case(x)))
        })
    };
    let listed = |list: &Option<Vec<String>>, v: Option<&str>| {
        list.as_ref()
            .is_some_and(|l| v.is_some_and(|v| l.iter().any(|x| x.eq_ignore_ascii_case(v))))
    };
    // Blocklists: an excluded advertiser or id, or only excluded countries.
    let blocked = listed(&f.exclude_advertisers, offer.advertiser.as_deref())
        || listed(&f.exclude_external_ids, Some(&offer.external_id))
        || f.exclude_countries.as_ref().is_some_and(|ex| {
            !offer.countries.is_empty() && offer.countries.iter().all(|c| ex.contains(c))
        });
    offer.status != OfferStatus::Removed
        // Offers the affiliate must still apply for at the source are not runnable
        // (`inspect offers --approval requires_approval` lists them).
        && SourceApproval::runnable(offer.approval)
        && !blocked
        && status_ok
        && overlap(&f.countries, &offer.countries)
        // A country filter is not met by countries the offer excludes.
        && f.countries.as_ref().is_none_or(|w| {
            offer.countries.iter().any(|c| {
                w.iter().any(|x| x.eq_ignore_ascii_case(c)) && !offer.excluded_countries.contains(c)
            })
        })
        && overlap(&f.categories, &offer.categories)
        && f.min_payout
            .is_none_or(|min| offer.payout.is_some_and(|p| p >= min))
        && f.payout_types
            .as_ref()
            .is_none_or(|t| offer.payout_type.is_some_and(|p| t.contains(&p)))
}

/// The operation that brings `mapping` (what the target holds) in step with `offer`, if any.
/// `decision` is what an operator decided for the offer on this target.
pub fn plan(
    target: &TargetConfig,
    source: &str,
    offer: &Offer,
    mapping: Option<&Mapping>,
    decision: Option<&Decision>,
) -> Option<PlannedOp> {
    let want = wanted(target, offer);
    let rendered = render(target, source, offer);
    match mapping {
        // An offer that would be pushed but for its missing tracking URL (or another field the
        // target requires) is recorded as skipped, with the reason, instead of failing there.
        None if want || passes(target, offer) => {
            let fields: PushFields = rendered
                .into_iter()
                .filter(|(k, _)| policy(target, k) != FieldPolicy::Never)
                .collect();
            let skipped = missing_required(target, &fields);
            let held = create_hold(target, source, offer, decision);
            Some(PlannedOp {
                kind: OpKind::Create,
                fields,
                skipped,
                held,
            })
        }
        None => None,
        // Detached: the target's operators own it.
        Some(m) if m.detached => None,
        Some(m) if !want => m
            .active
            .then(|| PlannedOp::new(OpKind::Pause, PushFields::new())),
        Some(m) => {
            let required = target.kind.required_on_create();
            let changed: PushFields = PUSH_FIELDS
                .iter()
                .filter(|k| policy(target, k) == FieldPolicy::Always)
                .filter(|k| rendered.get(**k) != m.pushed.get(**k))
                // A required field the offer lost is left as the target has it (the platform
                // refuses an offer without it).
                .filter(|k| rendered.contains_key(**k) || !required.contains(*k))
                .map(|k| {
                    (
                        k.to_string(),
                        rendered.get(*k).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect();
            let (changed, held) = guard_payout(target, m, changed, decision);
            // `[targets.defaults] hidden = true` (Offerit): a created offer stays hidden from
            // affiliates, as wanted; it is never revealed by offersync.
            let live = m.active || (m.hidden && target.controls.defaults.hidden == Some(true));
            let op = if !live {
                PlannedOp::new(OpKind::Activate, changed)
            } else if !changed.is_empty() {
                PlannedOp::new(OpKind::Update, changed)
            } else {
                return None;
            };
            Some(PlannedOp { held, ..op })
        }
    }
}

/// The targets of a sync, a re-plan or a preview, as the store's [`Planner`].
pub struct Targets<'a>(pub &'a [TargetConfig]);

impl Planner for Targets<'_> {
    fn target_count(&self) -> usize {
        self.0.len()
    }

    fn target_name(&self, i: usize) -> &str {
        &self.0[i].name
    }

    fn takes(&self, i: usize, source: &str) -> bool {
        self.0[i].sources.iter().any(|s| s == source)
    }

    fn plan(
        &self,
        i: usize,
        source: &str,
        offer: &Offer,
        mapping: Option<&Mapping>,
        decision: Option<&Decision>,
    ) -> Option<PlannedOp> {
        plan(&self.0[i], source, offer, mapping, decision)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{CredentialSpec, Secret, TargetFilters, TargetKind};
    use crate::model::{parse_decimal, PayoutType};
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;

    pub(crate) fn target(kind: TargetKind) -> TargetConfig {
        TargetConfig {
            name: "t".into(),
            kind,
            base_url: "https://n.example/api".into(),
            enabled: true,
            api_username: Some("ops".into()),
            credential: CredentialSpec::Literal(Secret::new("k")),
            sources: vec!["s".into()],
            payout_ratio: parse_decimal("0.80").unwrap(),
            tracking_url_template: Some("{tracking_url}&sub={source}".into()),
            name_template: Some("{name} [{countries}]".into()),
            advertiser_id: None,
            create_status: None,
            currency: "USD".into(),
            fields: BTreeMap::new(),
            filters: TargetFilters::default(),
            controls: crate::config::Controls::default(),
            http: crate::config::HttpPolicy {
                timeout: std::time::Duration::from_secs(30),
                connect_timeout: std::time::Duration::from_secs(10),
                max_attempts: 3,
                initial_interval: std::time::Duration::from_millis(500),
                max_interval: std::time::Duration::from_secs(30),
                max_elapsed: std::time::Duration::from_secs(300),
                max_retry_after: std::time::Duration::from_secs(300),
                requests_per_second: 5.0,
                burst: 1,
                run_timeout: None,
            },
            redelivery_interval: std::time::Duration::from_secs(60),
            dead_after: std::time::Duration::from_secs(86_400),
            index: 0,
        }
    }

    pub(crate) fn offer() -> Offer {
        let mut o = Offer::new("9", "Game");
        o.payout = parse_decimal("1.255");
        o.currency = Some("USD".into());
        o.payout_type = Some(PayoutType::Cpa);
        o.countries = vec!["GB".into(), "US".into()];
        o.tracking_url = Some("https://t.example/c?o=9&click={click_id}".into());
        o
    }

    #[test]
    fn import_defaults_and_excluded_countries_shape_what_is_pushed() {
        let mut t = target(TargetKind::Affise);
        t.controls.defaults.description_prefix = Some("[net] ".into());
        t.controls.defaults.categories = Some(vec!["Imported".into()]);
        t.controls.defaults.currency = Some("EUR".into());
        t.filters.exclude_countries = Some(vec!["US".into()]);
        let mut o = offer();
        o.description = Some("Install and play".into());
        o.currency = None;
        let f = render(&t, "s", &o);
        assert_eq!(f["description"], "[net] Install and play");
        assert_eq!(f["categories"], serde_json::json!(["Imported"]));
        assert_eq!(f["countries"], serde_json::json!(["GB"]));
        assert_eq!(f["currency"], "EUR", "the default for a source without one");
        // The source's own values win over the defaults.
        o.categories = vec!["Games".into()];
        o.currency = Some("USD".into());
        let f = render(&t, "s", &o);
        assert_eq!(f["categories"], serde_json::json!(["Games"]));
        assert_eq!(f["currency"], "USD");
        // Only excluded countries left: not pushed at all.
        o.countries = vec!["US".into()];
        assert!(plan(&t, "s", &o, None, None).is_none());
    }

    #[test]
    fn payout_ratio_rounds_half_even_to_the_currency_unit() {
        let r = parse_decimal("0.8").unwrap();
        assert_eq!(
            apply_ratio(parse_decimal("1.255").unwrap(), r, Some("USD")).to_string(),
            "1"
        );
        assert_eq!(
            apply_ratio(parse_decimal("1.3125").unwrap(), r, Some("USD")).to_string(),
            "1.05"
        );
        assert_eq!(
            apply_ratio(parse_decimal("0.03125").unwrap(), r, Some("EUR")).to_string(),
            "0.02",
            "0.025 → even"
        );
        assert_eq!(
            apply_ratio(parse_decimal("0.04375").unwrap(), r, Some("EUR")).to_string(),
            "0.04",
            "0.035 → even"
        );
        assert_eq!(
            apply_ratio(parse_decimal("156.25").unwrap(), r, Some("JPY")).to_string(),
            "125"
        );
        assert_eq!(
            apply_ratio(parse_decimal("3.125").unwrap(), r, Some("JPY")).to_string(),
            "2",
            "2.5 → even"
        );
    }

    #[test]
    fn render_applies_templates_and_rewrites_click_macros() {
        let f = render(&target(TargetKind::Offerit), "s", &offer());
        assert_eq!(f["name"], "Game [GB,US]");
        assert_eq!(
            f["url"],
            "https://t.example/c?o=9&click=%%click_hash%%&sub=s"
        );
        assert_eq!(
            (f["payout"].as_str(), f["cost"].as_str()),
            (Some("1"), Some("1.255"))
        );
        let f = render(&target(TargetKind::Affise), "s", &offer());
        assert_eq!(f["url"], "https://t.example/c?o=9&click={clickid}&sub=s");
    }

    #[test]
    fn plan_covers_create_update_pause_activate_and_nothing() {
        let t = target(TargetKind::Offerit);
        let o = offer();
        let create = plan(&t, "s", &o, None, None).unwrap();
        assert_eq!(create.kind, OpKind::Create);
        let mapping = Mapping::live("400", create.fields.clone());
        assert_eq!(
            plan(&t, "s", &o, Some(&mapping), None),
            None,
            "nothing changed: nothing to do"
        );
        let mut changed = o.clone();
        changed.payout = parse_decimal("2.5");
        let up = plan(&t, "s", &changed, Some(&mapping), None).unwrap();
        assert_eq!(up.kind, OpKind::Update);
        assert_eq!(up.fields.keys().collect::<Vec<_>>(), vec!["cost", "payout"]);
        let mut paused = o.clone();
        paused.status = OfferStatus::Paused;
        assert_eq!(
            plan(&t, "s", &paused, Some(&mapping), None).unwrap().kind,
            OpKind::Pause
        );
        let was_paused = Mapping {
            active: false,
            ..mapping.clone()
        };
        assert_eq!(
            plan(&t, "s", &paused, Some(&was_paused), None),
            None,
            "paused once only"
        );
        let back = plan(&t, "s", &o, Some(&was_paused), None).unwrap();
        assert_eq!((back.kind, back.fields.len()), (OpKind::Activate, 0));
        let mut removed = o.clone();
        removed.status = OfferStatus::Removed;
        assert_eq!(
            plan(&t, "s", &removed, None, None),
            None,
            "never create what is gone"
        );
    }

    #[test]
    fn filters_and_field_policies() {
        let mut t = target(TargetKind::Affise);
        t.filters.countries = Some(vec!["DE".into()]);
        assert!(!wanted(&t, &offer()));
        t.filters.countries = Some(vec!["us".into()]);
        t.filters.min_payout = parse_decimal("2");
        assert!(!wanted(&t, &offer()), "below the minimum payout");
        t.filters.min_payout = None;
        t.filters.payout_types = Some(vec![PayoutType::Cpi]);
        assert!(!wanted(&t, &offer()));
        t.filters.payout_types = None;
        assert!(wanted(&t, &offer()));
        let mut no_link = offer();
        no_link.tracking_url = None;
        assert!(
            !wanted(&t, &no_link),
            "nothing to send traffic to: never pushed (paused if it was)"
        );

        t.fields.insert("name".into(), FieldPolicy::Once);
        t.fields.insert("description".into(), FieldPolicy::Never);
        let mut o = offer();
        o.description = Some("secret sauce".into());
        let create = plan(&t, "s", &o, None, None).unwrap();
        assert!(create.fields.contains_key("name") && !create.fields.contains_key("description"));
        let mapping = Mapping::live("1", create.fields);
        o.name = "Renamed".into();
        o.description = Some("new sauce".into());
        assert_eq!(
            plan(&t, "s", &o, Some(&mapping), None),
            None,
            "once and never fields are not kept in step"
        );
    }

    mod properties {
        use super::*;
        use crate::model::OfferStatus;
        use proptest::prelude::*;

        /// One version of the offer as a sync may see it.
        fn version() -> impl Strategy<Value = Offer> {
            (
                prop::sample::select(&OfferStatus::ALL[..]),
                prop::option::of(0i64..100_000),
                prop::bool::ANY,
                prop::sample::subsequence(vec!["US", "GB", "DE"], 0..3),
                prop::option::of("[a-z]{1,6}"),
            )
                .prop_map(|(status, cents, has_url, countries, name)| {
                    let mut o = offer();
                    o.status = status;
                    o.payout = cents.map(|c| Decimal::new(c, 2));
                    if !has_url {
                        o.tracking_url = None;
                    }
                    o.countries = countries.into_iter().map(String::from).collect();
                    if let Some(n) = name {
                        o.name = n;
                    }
                    o
                })
        }

        fn mapping() -> impl Strategy<Value = Mapping> {
            (prop::bool::ANY, version()).prop_map(|(active, o)| Mapping {
                active,
                ..Mapping::live("77", render(&target(TargetKind::Offerit), "s", &o))
            })
        }

        fn any_target() -> impl Strategy<Value = TargetConfig> {
            (
                prop::sample::select(vec![TargetKind::Offerit, TargetKind::Affise]),
                prop::bool::ANY,
            )
                .prop_map(|(kind, us_only)| {
                    let mut t = target(kind);
                    if us_only {
                        t.filters.countries = Some(vec!["us".into()]);
                    }
                    t
                })
        }

        proptest! {
            #[test]
            fn a_mapped_offer_is_never_created(t in any_target(), o in version(), m in mapping()) {
                let op = plan(&t, "s", &o, Some(&m), None);
                prop_assert!(op.is_none_or(|op| op.kind != OpKind::Create));
            }

            /// Whatever sequence of versions a target is planned through (each operation
            /// delivered before the next sync), it receives at most one create, and one as soon
            /// as a version is wanted.
            #[test]
            fn never_two_creates_for_one_offer(t in any_target(), versions in prop::collection::vec(version(), 1..12)) {
                let mut held: Option<Mapping> = None;
                let mut creates = 0;
                for o in &versions {
                    let Some(op) = plan(&t, "s", o, held.as_ref(), None).filter(|op| op.skipped.is_none()) else { continue };
                    match op.kind {
                        OpKind::Create => {
                            creates += 1;
                            held = Some(Mapping::live("1", op.fields));
                        }
                        OpKind::Update | OpKind::Activate => {
                            let m = held.as_mut().expect("update of a held offer");
                            m.pushed = merged(std::mem::take(&mut m.pushed), &op.fields);
                            m.active = true;
                        }
                        OpKind::Pause => held.as_mut().expect("pause of a held offer").active = false,
                    }
                }
                prop_assert!(creates <= 1, "{creates} creates");
                // Wanted, and complete enough for the target's create contract.
                let ever_wanted = versions
                    .iter()
                    .any(|o| wanted(&t, o) && missing_required(&t, &render(&t, "s", o)).is_none());
                prop_assert_eq!(creates == 1, ever_wanted);
            }
        }
    }
}
