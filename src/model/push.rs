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
        /// Waits for an operator: a create on a target with `approval = "manual"`, or an update
        /// whose payout jumps further than the target's guard allows.
        AwaitingApproval => "awaiting_approval",
        /// An operator rejected it: never sent, and planned again only into this state, until
        /// approved.
        Rejected => "rejected",
    }
}

/// An operator's decision on an offer for a target (`push_decisions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its create may go out; a payout jump to exactly `payout` (decimal text) may go out.
    Approved { payout: Option<String> },
    /// Not created (and a held payout jump not sent) until approved.
    Rejected,
}

/// Why a planned operation waits instead of going out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Until an operator approves it; the reason says what is held (and the old and new payout
    /// for a jump).
    Approval(String),
    /// An operator rejected it.
    Rejected,
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
    /// Detached by an operator (or because the target's operators stopped it by hand): never
    /// updated, paused or activated until attached again.
    pub detached: bool,
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
            detached: false,
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
    /// Set when the operation waits for an operator (`awaiting_approval`) or was rejected.
    pub held: Option<Held>,
}

impl PlannedOp {
    pub fn new(kind: OpKind, fields: PushFields) -> PlannedOp {
        PlannedOp {
            kind,
            fields,
            skipped: None,
            held: None,
        }
    }

    /// The outbox state it is written in.
    pub fn state(&self) -> OutboxState {
        match (&self.skipped, &self.held) {
            (Some(_), _) => OutboxState::Skipped,
            (None, Some(Held::Approval(_))) => OutboxState::AwaitingApproval,
            (None, Some(Held::Rejected)) => OutboxState::Rejected,
            (None, None) => OutboxState::Pending,
        }
    }

    /// Why it is not sent, when it is not (`push_outbox.last_error`).
    pub fn why_not_sent(&self) -> Option<String> {
        match (&self.skipped, &self.held) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(Held::Approval(r))) => Some(r.clone()),
            (None, Some(Held::Rejected)) => Some("rejected by an operator".into()),
            (None, None) => None,
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
    /// `decision` is what an operator decided for the offer on this target, if anything.
    fn plan(
        &self,
        i: usize,
        source: &str,
        offer: &super::Offer,
        mapping: Option<&Mapping>,
        decision: Option<&Decision>,
    ) -> Option<PlannedOp>;
}
