//! What a run's end reports to the notifiers: the rules, written once for both backends. The
//! backends answer the questions (which offers changed how, what waits for approval) and
//! write the rows, through [`ReportSql`], inside the transaction that records the run's end.

use super::Result;
use crate::model::{NotifyEvent, NotifyRule, RunState, NOTIFY_SAMPLE};
use serde_json::{json, Value};

/// `(external_id, name, old, new)` of one reported offer.
pub(crate) type Sample = (String, String, Value, Value);

/// A run as its report needs it: id, state, reason, error, started_at.
pub(crate) type RunRow = (i64, String, Option<String>, Option<String>, String);

/// The reads and writes a run's report needs, in the caller's transaction.
pub(crate) trait ReportSql {
    /// The offers of `run_id` (started at `started_at`) whose change is of one of `kinds` (and,
    /// with `field`, touches that field and passes `keep(old, new)`): how many, and the first
    /// `NOTIFY_SAMPLE`.
    fn changed_offers(
        &mut self,
        run: (i64, &str),
        kinds: &[&str],
        field: Option<&str>,
        keep: &dyn Fn(&Value, &Value) -> bool,
    ) -> Result<(u64, Vec<Sample>)>;

    /// One `notify_outbox` row for `rule`.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        rule: &NotifyRule,
        event: NotifyEvent,
        source: Option<&str>,
        target: Option<&str>,
        payload: &Value,
        now: &str,
    ) -> Result<()>;

    /// How many creates of `source` wait for approval per target, queued since `started_at`.
    fn awaiting(&mut self, source: &str, started_at: &str) -> Result<Vec<(String, i64)>>;
}

/// A dead operation to report: id, source, external_id, last error.
pub(crate) type DeadOp = (i64, String, String, Option<String>);

/// One `push_dead` row per rule that wants it for `target`, naming the first dead operations.
pub(crate) fn report_dead(
    tx: &mut impl ReportSql,
    target: &str,
    rules: &[NotifyRule],
    dead: &[DeadOp],
    now: &str,
) -> Result<()> {
    if dead.is_empty() {
        return Ok(());
    }
    let sample: Vec<Value> = dead
        .iter()
        .take(NOTIFY_SAMPLE)
        .map(|(_, s, id, e)| json!({"source": s, "external_id": id, "error": e}))
        .collect();
    let payload = json!({"event": "push_dead", "target": target,
                         "count": dead.len(), "offers": sample});
    for rule in rules
        .iter()
        .filter(|r| r.wants(NotifyEvent::PushDead) && r.covers_target(target))
    {
        tx.insert(
            rule,
            NotifyEvent::PushDead,
            None,
            Some(target),
            &payload,
            now,
        )?;
    }
    Ok(())
}

/// The creates a run queued for approval, one row per target `rule` covers.
fn report_awaiting(
    tx: &mut impl ReportSql,
    rule: &NotifyRule,
    source: &str,
    run_id: i64,
    started_at: &str,
    now: &str,
) -> Result<()> {
    for (target, n) in tx
        .awaiting(source, started_at)?
        .into_iter()
        .filter(|(t, _)| rule.covers_target(t))
    {
        let payload = json!({"event": "awaiting_approval", "source": source,
                             "target": target, "run_ids": [run_id], "count": n,
                             "offers": []});
        tx.insert(
            rule,
            NotifyEvent::AwaitingApproval,
            Some(source),
            Some(&target),
            &payload,
            now,
        )?;
    }
    Ok(())
}

/// One batched report of offers: how many, and the first ones by name.
pub(crate) fn offers_payload(
    event: NotifyEvent,
    source: &str,
    run_id: i64,
    (count, offers): &(u64, Vec<Sample>),
) -> Value {
    let sample: Vec<Value> = offers
        .iter()
        .take(NOTIFY_SAMPLE)
        .map(|(id, name, old, new)| {
            let mut o = json!({"external_id": id, "name": name});
            if !old.is_null() || !new.is_null() {
                o["old"] = old.clone();
                o["new"] = new.clone();
            }
            o
        })
        .collect();
    json!({"event": event.as_str(), "source": source, "run_ids": [run_id],
           "count": count, "offers": sample})
}

fn decimal(v: &Value) -> Option<rust_decimal::Decimal> {
    v.as_str().and_then(crate::model::parse_decimal)
}

/// Record the reports of a run's offers and outcome for every rule that covers `source`.
pub(crate) fn report_run(
    tx: &mut impl ReportSql,
    rules: &[NotifyRule],
    source: &str,
    (run_id, state, reason, error, started_at): RunRow,
    now: &str,
) -> Result<()> {
    let rules: Vec<&NotifyRule> = rules.iter().filter(|r| r.covers_source(source)).collect();
    if rules.is_empty() {
        return Ok(());
    }
    let any = |_: &Value, _: &Value| true;
    let mut lists = Vec::new();
    for (event, kinds, field) in [
        (NotifyEvent::OfferAdded, &["added"][..], None),
        (NotifyEvent::OfferRemoved, &["removed"][..], None),
        (
            NotifyEvent::StatusChanged,
            &["changed", "reappeared"][..],
            Some("status"),
        ),
    ] {
        if rules.iter().any(|r| r.wants(event)) {
            lists.push((
                event,
                tx.changed_offers((run_id, &started_at), kinds, field, &any)?,
            ));
        }
    }
    for rule in &rules {
        let mut reports: Vec<(NotifyEvent, (u64, Vec<Sample>))> = lists
            .iter()
            .filter(|(e, _)| rule.wants(*e))
            .cloned()
            .collect();
        if rule.wants(NotifyEvent::PayoutChanged) {
            // Each rule its own minimum move.
            let keep =
                |old: &Value, new: &Value| rule.payout_move_counts(decimal(old), decimal(new));
            let moved = tx.changed_offers(
                (run_id, &started_at),
                &["changed", "reappeared"],
                Some("payout"),
                &keep,
            )?;
            reports.push((NotifyEvent::PayoutChanged, moved));
        }
        for (event, summary) in reports.iter().filter(|(_, (n, _))| *n > 0) {
            let payload = offers_payload(*event, source, run_id, summary);
            tx.insert(rule, *event, Some(source), None, &payload, now)?;
        }
        let outcome = match state.parse::<RunState>() {
            Ok(RunState::Failed) => Some(NotifyEvent::RunFailed),
            Ok(RunState::Held) => Some(NotifyEvent::RunHeld),
            _ => None,
        };
        if let Some(event) = outcome.filter(|e| rule.wants(*e)) {
            let payload = json!({"event": event.as_str(), "source": source, "run_ids": [run_id],
                                 "count": 1, "state": state, "reason": reason, "error": error});
            tx.insert(rule, event, Some(source), None, &payload, now)?;
        }
        if rule.wants(NotifyEvent::AwaitingApproval) {
            report_awaiting(tx, rule, source, run_id, &started_at, now)?;
        }
    }
    Ok(())
}
