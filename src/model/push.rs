//! The push vocabulary shared by the planner (`push`), the store and the target platforms: what
//! a target holds of an offer, the operations that bring it in step, and their states. Pure.

use super::run::text_enum;
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The fields pushed to a target, by name, as JSON values.
pub type PushFields = Map<String, Value>;

text_enum! {
    /// The operations a target understands (`push_outbox.op`).
    OpKind {
        Create => "create",
        Update => "update",
        Pause => "pause",
        Activate => "activate",
    }
}

text_enum! {
    /// Where an outbox operation is (`push_outbox.state`).
    OutboxState {
        Pending => "pending",
        InFlight => "in_flight",
        /// A create whose outcome is unknown: looked up or planned again, never resent blindly.
        Ambiguous => "ambiguous",
        Done => "done",
        Failed => "failed",
        Dead => "dead",
        /// A create the target's contract rules out; never sent.
        Skipped => "skipped",
    }
}

/// What a target holds of an offer, from `target_offers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub target_offer_id: String,
    /// `true` while the target offer is live (not paused by us, not hidden).
    pub active: bool,
    /// Created hidden from affiliates by a staged create and not revealed yet (planned like a
    /// paused offer: an activate reveals it).
    pub hidden: bool,
    /// Not on the target yet: a create of the offer is in flight or its outcome is unknown,
    /// and this is what it will leave. Changes are planned against it and delivered after it.
    pub pending: bool,
    /// The fields as last pushed.
    pub pushed: PushFields,
}

impl Mapping {
    /// A live offer on the target with `pushed` as its fields.
    pub fn live(target_offer_id: impl Into<String>, pushed: PushFields) -> Mapping {
        Mapping {
            target_offer_id: target_offer_id.into(),
            active: true,
            hidden: false,
            pending: false,
            pushed,
        }
    }
}

/// One planned operation: for a create every pushed field, for an update or activate only the
/// `always` fields that changed since the last push.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOp {
    pub kind: OpKind,
    pub fields: PushFields,
    /// Set when the target's contract rules the operation out (a create missing a field the
    /// platform requires): it is recorded as `skipped` with this reason and never sent.
    pub skipped: Option<String>,
}

impl PlannedOp {
    pub fn new(kind: OpKind, fields: PushFields) -> PlannedOp {
        PlannedOp {
            kind,
            fields,
            skipped: None,
        }
    }
}

/// `fields` merged into what was pushed before (after an update or activate succeeded).
pub fn merged(mut pushed: PushFields, fields: &PushFields) -> PushFields {
    for (k, v) in fields {
        if v.is_null() {
            pushed.remove(k);
        } else {
            pushed.insert(k.clone(), v.clone());
        }
    }
    pushed
}

/// What the store asks about pushing while it writes a page, a removal or a re-plan: the store
/// hands the planner each offer that needs a decision (added, changed, reappeared, removed) with
/// what each target holds of it, and writes the operation decided in the same transaction. The
/// rules live behind this trait (`push::plan`); the store only reads and writes.
pub trait Planner {
    /// How many targets there are; they are numbered from 0.
    fn target_count(&self) -> usize;
    /// Target `i`'s name.
    fn target_name(&self, i: usize) -> &str;
    /// Whether target `i` takes offers of `source`.
    fn takes(&self, i: usize, source: &str) -> bool;
    /// The operation that brings `mapping` (what target `i` holds, or will hold once a create
    /// in flight lands) in step with `offer`, if any.
    fn plan(
        &self,
        i: usize,
        source: &str,
        offer: &super::Offer,
        mapping: Option<&Mapping>,
    ) -> Option<PlannedOp>;
}
