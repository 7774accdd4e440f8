//! How a run ends: why the fetch loop stopped ([`Ending`]), the pure decision of the run's state
//! and reason from it ([`decide`], [`after_finalize`]), and the IO that records it ([`finish`]).

use super::lease::RunLease;
use super::writer::WriterDone;
use crate::config::{SourceConfig, TargetConfig};
use crate::http::{CallError, FailureClass};
use crate::model::{NotifyRule, StopReason};
use crate::push::Targets;
use crate::store::{FinalizeOutcome, RunState, StoreError};

use super::RunReport;

/// Why the fetch loop stopped.
#[derive(Debug)]
pub(super) enum Ending {
    /// The platform's end signal was reached.
    Complete,
    /// A pagination guard, the run budget or a shutdown stopped the run.
    Guard(StopReason, String),
    Call {
        page: u64,
        error: CallError,
    },
    /// The writer failed; its error is reported from the writer's result.
    Writer,
}

/// A run's final state, reason and message.
pub(super) type Verdict = (RunState, Option<StopReason>, Option<String>);

/// What to do with a run whose fetch loop ended.
#[derive(Debug, PartialEq)]
pub(super) enum Decision {
    /// Record this.
    Record(Verdict),
    /// The feed was read to its end: run removal detection, then [`after_finalize`].
    Finalize,
}

/// The run's state from how it ended, before any removal detection. `pages` is what the writer
/// stored, `unidentified` the rejected offers without an id, `store_error` the writer's error.
pub(super) fn decide(
    store_error: Option<&StoreError>,
    ending: Ending,
    pages: u64,
    unidentified: u64,
) -> Decision {
    // Something stored: partial; nothing: failed.
    let stopped = |reason: StopReason| {
        let state = if pages > 0 {
            RunState::Partial
        } else {
            RunState::Failed
        };
        (state, Some(reason))
    };
    let verdict = |(state, reason): (RunState, Option<StopReason>), msg: String| {
        Decision::Record((state, reason, Some(msg)))
    };
    match (store_error, ending) {
        (Some(e), _) => verdict(stopped(StopReason::Database), e.to_string()),
        (None, Ending::Writer) => verdict(
            (RunState::Failed, Some(StopReason::Database)),
            "the page writer stopped".into(),
        ),
        (None, Ending::Guard(reason, msg)) => verdict(stopped(reason), msg),
        (None, Ending::Call { page, error }) => {
            // A spent rate-limit budget is not a failure: what was stored stays, the next run
            // starts over.
            let sr = match (error.class, error.reason) {
                (FailureClass::RateLimited, _) => {
                    (RunState::Partial, Some(StopReason::RateLimited))
                }
                (_, Some(reason)) => stopped(reason),
                (FailureClass::Transient, None) => stopped(StopReason::Transient),
                (FailureClass::Permanent, None) => stopped(StopReason::Permanent),
                (FailureClass::Ambiguous, None) => stopped(StopReason::Ambiguous),
            };
            verdict(sr, format!("page {page}: {}", error.message))
        }
        (None, Ending::Complete) if unidentified > 0 => verdict(
            (RunState::Complete, Some(StopReason::RemovalsSkipped)),
            format!(
                "{unidentified} rejected offers had no id, so any offer missing from this run may be one of them; removal detection was skipped for this run"
            ),
        ),
        (None, Ending::Complete) => Decision::Finalize,
    }
}

/// The run's state after removal detection.
pub(super) fn after_finalize(
    outcome: Result<FinalizeOutcome, &StoreError>,
    cfg: &SourceConfig,
) -> Verdict {
    match outcome {
        Ok(FinalizeOutcome::Removed(_)) => (RunState::Complete, None, None),
        Ok(FinalizeOutcome::Held { candidates, live }) => {
            let msg = format!(
                "mass-removal guard: this run would remove {candidates} of {live} live offers ({:.0}% > max_removal_fraction {:.0}%); nothing was removed. If the source really dropped them, run `offersync approve-removals {}`",
                candidates as f64 * 100.0 / live.max(1) as f64,
                cfg.max_removal_fraction * 100.0,
                cfg.name
            );
            (
                RunState::Held,
                Some(StopReason::MassRemovalGuard),
                Some(msg),
            )
        }
        Err(e) => (
            RunState::Partial,
            Some(StopReason::Database),
            Some(e.to_string()),
        ),
    }
}

/// Decide the run's final state, run removal detection for complete runs, record it, release
/// the lease (unless another process took it over).
pub(super) fn finish(
    done: WriterDone,
    ending: Ending,
    cfg: &SourceConfig,
    lease: RunLease,
    (targets, notify): (&[TargetConfig], &[NotifyRule]),
    counters: (u64, u64, u64),
) -> RunReport {
    let WriterDone {
        mut store,
        pages,
        unidentified,
        second_batches,
        error,
    } = done;
    if second_batches > 0 {
        tracing::debug!(
            batches = second_batches,
            "batches written on the run's second connection"
        );
    }
    let run_id = lease.run_id();
    let lease_lost = matches!(error, Some(StoreError::LeaseLost { .. }));
    let (state, reason, message) = match decide(error.as_ref(), ending, pages, unidentified) {
        Decision::Record(v) => v,
        Decision::Finalize => {
            let outcome = store.finalize_complete(
                run_id,
                &cfg.name,
                lease.holder(),
                cfg.removal_grace_runs,
                cfg.max_removal_fraction,
                &Targets(targets),
                &super::now(),
            );
            after_finalize(outcome.as_ref().copied(), cfg)
        }
    };
    match (state, reason) {
        (RunState::Held, _) => tracing::warn!(
            source = %cfg.name,
            detail = message.as_deref().unwrap_or(""),
            "removals held by the mass-removal guard"
        ),
        (_, Some(StopReason::RemovalsSkipped)) => {
            tracing::warn!(source = %cfg.name, unidentified, "removal detection skipped")
        }
        _ => {}
    }
    let record = store
        .finish_run(
            run_id,
            state,
            reason.map(StopReason::as_str),
            message.as_deref(),
            counters,
            notify,
            &super::now(),
        )
        .and_then(|_| {
            if lease_lost {
                lease.forget();
                Ok(())
            } else {
                lease.release(&mut store)
            }
        })
        .and_then(|_| store.run(run_id));
    match record {
        Ok(Some(t)) => RunReport::Finished(t),
        Ok(None) => RunReport::Error {
            source: cfg.name.clone(),
            error: format!("run {run_id} vanished from sync_runs"),
        },
        Err(e) => RunReport::Error {
            source: cfg.name.clone(),
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(class: FailureClass, reason: Option<StopReason>) -> Ending {
        Ending::Call {
            page: 3,
            error: CallError {
                class,
                message: "boom".into(),
                attempts: 1,
                status: None,
                reason,
            },
        }
    }

    fn recorded(d: Decision) -> Verdict {
        match d {
            Decision::Record(v) => v,
            Decision::Finalize => panic!("expected a verdict"),
        }
    }

    #[test]
    fn a_stop_is_partial_when_something_was_stored_and_failed_otherwise() {
        let g = || Ending::Guard(StopReason::RepeatedPage, "loop".into());
        assert_eq!(
            recorded(decide(None, g(), 2, 0)),
            (
                RunState::Partial,
                Some(StopReason::RepeatedPage),
                Some("loop".into())
            )
        );
        assert_eq!(recorded(decide(None, g(), 0, 0)).0, RunState::Failed);
        let (state, reason, msg) =
            recorded(decide(None, call(FailureClass::Permanent, None), 0, 0));
        assert_eq!(
            (state, reason),
            (RunState::Failed, Some(StopReason::Permanent))
        );
        assert_eq!(msg.as_deref(), Some("page 3: boom"));
    }

    #[test]
    fn a_spent_rate_limit_budget_is_partial_even_before_any_page() {
        let v = recorded(decide(None, call(FailureClass::RateLimited, None), 0, 0));
        assert_eq!(
            (v.0, v.1),
            (RunState::Partial, Some(StopReason::RateLimited))
        );
        // A more specific reason wins over the class.
        let v = recorded(decide(
            None,
            call(FailureClass::Transient, Some(StopReason::Incomplete)),
            4,
            0,
        ));
        assert_eq!(v.1, Some(StopReason::Incomplete));
    }

    #[test]
    fn only_a_clean_end_runs_removal_detection() {
        assert_eq!(decide(None, Ending::Complete, 5, 0), Decision::Finalize);
        let v = recorded(decide(None, Ending::Complete, 5, 2));
        assert_eq!(
            (v.0, v.1),
            (RunState::Complete, Some(StopReason::RemovalsSkipped))
        );
        let e = StoreError::LeaseLost {
            source_name: "s".into(),
        };
        let v = recorded(decide(Some(&e), Ending::Complete, 5, 0));
        assert_eq!((v.0, v.1), (RunState::Partial, Some(StopReason::Database)));
        assert_eq!(
            recorded(decide(None, Ending::Writer, 5, 0)).0,
            RunState::Failed
        );
    }
}
