//! The store's verbs: each one dispatches to the backend that holds the mirror. Every verb has
//! the same name, parameters and meaning on both backends (`sqlite::*`, `pg::*`).

use super::query::{ChangeFilter, OfferFilter, Table};
use super::*;
use crate::model::{Mapping, NotifyRule, Offer, OutboxState, PlannedOp, Planner};
use chrono::{DateTime, Utc};
use std::time::Duration;

impl Store {
    /// The schema version (the same numbers on both backends).
    pub fn schema_version(&self) -> Result<i64> {
        match &self.db {
            Db::Sqlite(s) => s.schema_version(),
            Db::Pg(p) => pg::blocking(|| p.schema_version()),
        }
    }

    /// A health check of the database: `ok` when healthy. SQLite: `PRAGMA integrity_check`;
    /// PostgreSQL (whose server guards its own pages): the mirror's own invariants.
    pub fn integrity_check(&self) -> Result<String> {
        match &self.db {
            Db::Sqlite(s) => s.integrity_check(),
            Db::Pg(p) => pg::blocking(|| p.integrity_check()),
        }
    }

    /// A page of offers (see the module's doc for what it reads).
    pub fn console_offers(&self, q: &OfferQuery) -> Result<OfferPage> {
        match &self.db {
            Db::Sqlite(s) => s.console_offers(q),
            Db::Pg(p) => pg::blocking(|| p.console_offers(q)),
        }
    }

    /// Every column of one offer (the `offers` view), or `None`.
    pub fn console_offer(&self, source: &str, external_id: &str) -> Result<Option<Table>> {
        match &self.db {
            Db::Sqlite(s) => s.console_offer(source, external_id),
            Db::Pg(p) => pg::blocking(|| p.console_offer(source, external_id)),
        }
    }

    /// One offer's change history, newest first (at most `limit`).
    pub fn console_history(&self, source: &str, external_id: &str, limit: usize) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.console_history(source, external_id, limit),
            Db::Pg(p) => pg::blocking(|| p.console_history(source, external_id, limit)),
        }
    }

    /// What `target` holds for one offer (the mapping) and its latest outbox rows.
    pub fn console_offer_on(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<(Table, Table)> {
        match &self.db {
            Db::Sqlite(s) => s.console_offer_on(target, source, external_id),
            Db::Pg(p) => pg::blocking(|| p.console_offer_on(target, source, external_id)),
        }
    }

    /// How many operations of `target` are in `state`, and the first `limit` of them (oldest
    /// first, from `offset`), with the offer's current name, payout and countries.
    pub fn console_queue(
        &self,
        target: &str,
        state: &str,
        limit: usize,
        offset: usize,
    ) -> Result<(i64, Vec<QueuedOp>)> {
        match &self.db {
            Db::Sqlite(s) => s.console_queue(target, state, limit, offset),
            Db::Pg(p) => pg::blocking(|| p.console_queue(target, state, limit, offset)),
        }
    }

    /// The removals `source`'s last complete run holds, if it was held.
    pub fn console_held(&self, source: &str) -> Result<Option<HeldRun>> {
        match &self.db {
            Db::Sqlite(s) => s.console_held(source),
            Db::Pg(p) => pg::blocking(|| p.console_held(source)),
        }
    }

    /// `source`'s last run: state, reason, counts, rate-limit waits, timestamps, error.
    pub fn console_last_run(&self, source: &str) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.console_last_run(source),
            Db::Pg(p) => pg::blocking(|| p.console_last_run(source)),
        }
    }

    /// `target`'s operations per state, each counted up to `cap` (`cap + 1` means "more"): a
    /// count walks its range of `push_outbox_queue`, so a million `done` rows would cost tens
    /// of milliseconds on every overview.
    pub fn console_outbox_counts(&self, target: &str, cap: i64) -> Result<Vec<(String, i64)>> {
        match &self.db {
            Db::Sqlite(s) => s.console_outbox_counts(target, cap),
            Db::Pg(p) => pg::blocking(|| p.console_outbox_counts(target, cap)),
        }
    }

    /// Release what waits for approval on `target` (or was rejected): its state becomes
    /// `pending`, and the decision (with the payout approved) is remembered.
    pub fn approve(&mut self, target: &str, which: &Selection, now: &str) -> Result<Decided> {
        match &mut self.db {
            Db::Sqlite(s) => s.approve(target, which, now),
            Db::Pg(p) => pg::blocking(|| p.approve(target, which, now)),
        }
    }

    /// Reject these offers on `target`: what waits for them (a create, or a held payout jump)
    /// becomes `rejected` and is never sent; later plans keep it rejected until approved.
    pub fn reject(
        &mut self,
        target: &str,
        offers: &[(String, String)],
        now: &str,
    ) -> Result<Decided> {
        match &mut self.db {
            Db::Sqlite(s) => s.reject(target, offers, now),
            Db::Pg(p) => pg::blocking(|| p.reject(target, offers, now)),
        }
    }

    /// Try to take the lease on `source` for `holder` (a token unique to this run).
    #[allow(clippy::too_many_arguments)]
    pub fn acquire_lease(
        &mut self,
        source: &str,
        holder: &str,
        pid: u32,
        host: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        match &mut self.db {
            Db::Sqlite(s) => s.acquire_lease(source, holder, pid, host, ttl, now),
            Db::Pg(p) => pg::blocking(|| p.acquire_lease(source, holder, pid, host, ttl, now)),
        }
    }

    /// Record which run the lease belongs to (so a takeover can close it).
    pub fn set_lease_run(&mut self, source: &str, holder: &str, run_id: i64) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.set_lease_run(source, holder, run_id),
            Db::Pg(p) => pg::blocking(|| p.set_lease_run(source, holder, run_id)),
        }
    }

    /// Refresh the heartbeat of a lease we hold (long deliveries). Fails with `LeaseLost` when
    /// another process has taken it over: the caller must stop.
    pub fn heartbeat_lease(&mut self, source: &str, holder: &str, now: &str) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.heartbeat_lease(source, holder, now),
            Db::Pg(p) => pg::blocking(|| p.heartbeat_lease(source, holder, now)),
        }
    }

    /// Release the lease if we still hold it.
    pub fn release_lease(&mut self, source: &str, holder: &str) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.release_lease(source, holder),
            Db::Pg(p) => pg::blocking(|| p.release_lease(source, holder)),
        }
    }

    /// Report `target`'s dead operations that were not reported yet (one row per notifier).
    pub fn report_dead(&mut self, target: &str, rules: &[NotifyRule], now: &str) -> Result<u64> {
        match &mut self.db {
            Db::Sqlite(s) => s.report_dead(target, rules, now),
            Db::Pg(p) => pg::blocking(|| p.report_dead(target, rules, now)),
        }
    }

    /// The pending notifications of `notifier` due now (created at or before `created_before`
    /// and not waiting for a retry), oldest first.
    pub fn due_notifications(
        &self,
        notifier: &str,
        created_before: &str,
        now: &str,
    ) -> Result<Vec<Notification>> {
        match &self.db {
            Db::Sqlite(s) => s.due_notifications(notifier, created_before, now),
            Db::Pg(p) => pg::blocking(|| p.due_notifications(notifier, created_before, now)),
        }
    }

    /// These notifications went out (as one message).
    pub fn notifications_sent(&mut self, ids: &[i64], now: &str) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.notifications_sent(ids, now),
            Db::Pg(p) => pg::blocking(|| p.notifications_sent(ids, now)),
        }
    }

    /// A delivery of these failed: retried from `next_attempt_at`, or dead.
    pub fn notifications_failed(
        &mut self,
        ids: &[i64],
        error: &str,
        dead: bool,
        next_attempt_at: &str,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.notifications_failed(ids, error, dead, next_attempt_at),
            Db::Pg(p) => pg::blocking(|| p.notifications_failed(ids, error, dead, next_attempt_at)),
        }
    }

    /// The most delivery attempts among these notifications.
    pub fn notification_attempts(&self, ids: &[i64]) -> Result<i64> {
        match &self.db {
            Db::Sqlite(s) => s.notification_attempts(ids),
            Db::Pg(p) => pg::blocking(|| p.notification_attempts(ids)),
        }
    }

    /// How many notifications of `notifier` are in `state`.
    pub fn notifications_in(&self, notifier: &str, state: &str) -> Result<i64> {
        match &self.db {
            Db::Sqlite(s) => s.notifications_in(notifier, state),
            Db::Pg(p) => pg::blocking(|| p.notifications_in(notifier, state)),
        }
    }

    /// Write pages in one transaction (the writer batches the pages that queued up while it was
    /// busy; each page is applied whole or not at all). In each page new offers are inserted
    /// (`added`), changed ones rewritten with a field-level diff (`changed`, or `reappeared`
    /// after a removal), unchanged ones only touch the narrow `offer_seen` row, and ids already
    /// seen in this run are counted as duplicates and skipped. Fails with `LeaseLost` (and
    /// writes nothing) if another process took the source's lease over.
    pub fn apply_pages(
        &mut self,
        run_id: i64,
        source: &str,
        holder: &str,
        pages: &[PageBatch],
        planner: &dyn Planner,
        now: &str,
    ) -> Result<Vec<PageCounts>> {
        match &mut self.db {
            Db::Sqlite(s) => s.apply_pages(run_id, source, holder, pages, planner, now),
            Db::Pg(p) => {
                pg::blocking(|| p.apply_pages(run_id, source, holder, pages, planner, now))
            }
        }
    }

    /// One offer with its bookkeeping, removed ones included.
    pub fn offer(&self, source: &str, external_id: &str) -> Result<Option<StoredOffer>> {
        match &self.db {
            Db::Sqlite(s) => s.offer(source, external_id),
            Db::Pg(p) => pg::blocking(|| p.offer(source, external_id)),
        }
    }

    /// Every offer of a source (removed ones included), ordered by external id. For tests and
    /// tools; a sync never loads a whole catalogue.
    pub fn offers_of(&self, source: &str) -> Result<Vec<StoredOffer>> {
        match &self.db {
            Db::Sqlite(s) => s.offers_of(source),
            Db::Pg(p) => pg::blocking(|| p.offers_of(source)),
        }
    }

    /// Operations a process left `in_flight` when it died mid-call (one deliverer per target
    /// holds the lease, so none belongs to a live process): a create without a mapping may or
    /// may not have reached the target and becomes `ambiguous`; everything else is idempotent
    /// and goes back to `pending`. Returns (ambiguous, requeued).
    pub fn settle_in_flight(&mut self, target: &str, now: &str) -> Result<(u64, u64)> {
        match &mut self.db {
            Db::Sqlite(s) => s.settle_in_flight(target, now),
            Db::Pg(p) => pg::blocking(|| p.settle_in_flight(target, now)),
        }
    }

    /// Claim the next due operation of `target` (the oldest one of an offer with nothing earlier
    /// waiting, unresolved or in flight) and mark it in flight.
    pub fn claim_next(&mut self, target: &str, now: &str) -> Result<Option<OutboxOp>> {
        match &mut self.db {
            Db::Sqlite(s) => s.claim_next(target, now),
            Db::Pg(p) => pg::blocking(|| p.claim_next(target, now)),
        }
    }

    /// When the next unresolved create of `target` is due, if one waits.
    pub fn next_ambiguous_due(&self, target: &str) -> Result<Option<String>> {
        match &self.db {
            Db::Sqlite(s) => s.next_ambiguous_due(target),
            Db::Pg(p) => pg::blocking(|| p.next_ambiguous_due(target)),
        }
    }

    /// The operation failed this pass: `failed` (retried from `next_attempt_at`) or `dead`. The
    /// pass counts as one attempt.
    pub fn fail_op(
        &mut self,
        op_id: i64,
        error: &str,
        dead: bool,
        next_attempt_at: &str,
        now: &str,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.fail_op(op_id, error, dead, next_attempt_at, now),
            Db::Pg(p) => pg::blocking(|| p.fail_op(op_id, error, dead, next_attempt_at, now)),
        }
    }

    /// The create's outcome is unknown: `ambiguous` until it is looked up (or re-planned) at
    /// `next_attempt_at`. Counts as one attempt.
    pub fn mark_ambiguous(
        &mut self,
        op_id: i64,
        error: &str,
        next_attempt_at: &str,
        now: &str,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.mark_ambiguous(op_id, error, next_attempt_at, now),
            Db::Pg(p) => pg::blocking(|| p.mark_ambiguous(op_id, error, next_attempt_at, now)),
        }
    }

    /// Put a claimed operation back as it was, without counting an attempt (the target refused
    /// us as a whole, or delivery stopped): it is retried from `next_attempt_at`.
    pub fn release_op(
        &mut self,
        op: &OutboxOp,
        error: &str,
        next_attempt_at: Option<&str>,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.release_op(op, error, next_attempt_at),
            Db::Pg(p) => pg::blocking(|| p.release_op(op, error, next_attempt_at)),
        }
    }

    /// Dead operations of `target` (or of every target), oldest first.
    pub fn dead_ops(&self, target: Option<&str>) -> Result<Vec<OutboxOp>> {
        match &self.db {
            Db::Sqlite(s) => s.dead_ops(target),
            Db::Pg(p) => pg::blocking(|| p.dead_ops(target)),
        }
    }

    /// How many operations of `target` are in `state`.
    pub fn count_in_state(&self, target: &str, state: OutboxState) -> Result<i64> {
        match &self.db {
            Db::Sqlite(s) => s.count_in_state(target, state),
            Db::Pg(p) => pg::blocking(|| p.count_in_state(target, state)),
        }
    }

    /// How many operations are dead, for `target` or every target.
    pub fn dead_count(&self, target: Option<&str>) -> Result<i64> {
        match &self.db {
            Db::Sqlite(s) => s.dead_count(target),
            Db::Pg(p) => pg::blocking(|| p.dead_count(target)),
        }
    }

    /// Outbox counts of a target by state.
    pub fn outbox_counts(&self, target: &str) -> Result<Vec<(String, i64)>> {
        match &self.db {
            Db::Sqlite(s) => s.outbox_counts(target),
            Db::Pg(p) => pg::blocking(|| p.outbox_counts(target)),
        }
    }

    /// The delivery breaker of `target`.
    pub fn target_health(&self, target: &str) -> Result<TargetHealth> {
        match &self.db {
            Db::Sqlite(s) => s.target_health(target),
            Db::Pg(p) => pg::blocking(|| p.target_health(target)),
        }
    }

    pub fn set_target_health(
        &mut self,
        target: &str,
        health: &TargetHealth,
        now: &str,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.set_target_health(target, health, now),
            Db::Pg(p) => pg::blocking(|| p.set_target_health(target, health, now)),
        }
    }

    /// The hash of the target config the target was last planned with.
    pub fn target_plan_hash(&self, target: &str) -> Result<Option<String>> {
        match &self.db {
            Db::Sqlite(s) => s.target_plan_hash(target),
            Db::Pg(p) => pg::blocking(|| p.target_plan_hash(target)),
        }
    }

    /// Plan every offer of the planner's one target's sources again (its config changed), in
    /// chunks so memory stays bounded, then remember the config hash. Returns the operations
    /// now waiting.
    pub fn replan_target(
        &mut self,
        planner: &dyn Planner,
        config_hash: &str,
        now: &str,
    ) -> Result<u64> {
        match &mut self.db {
            Db::Sqlite(s) => s.replan_target(planner, config_hash, now),
            Db::Pg(p) => pg::blocking(|| p.replan_target(planner, config_hash, now)),
        }
    }

    /// What delivering the planner's one target would do now: every offer of its sources planned against what
    /// the target holds (or will hold once a create in flight lands). Reads only.
    /// Walks the mirror in chunks (memory stays bounded); keeps the first `limit` operations and
    /// counts all of them by kind.
    pub fn preview_target(&self, planner: &dyn Planner, limit: usize) -> Result<Preview> {
        match &self.db {
            Db::Sqlite(s) => s.preview_target(planner, limit),
            Db::Pg(p) => pg::blocking(|| p.preview_target(planner, limit)),
        }
    }

    pub fn query_offers(&self, f: &OfferFilter) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_offers(f),
            Db::Pg(p) => pg::blocking(|| p.query_offers(f)),
        }
    }

    pub fn query_changes(&self, f: &ChangeFilter) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_changes(f),
            Db::Pg(p) => pg::blocking(|| p.query_changes(f)),
        }
    }

    /// `inspect leases`: every lease held, sources first, then targets (`target:NAME`).
    pub fn query_leases(&self) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_leases(),
            Db::Pg(p) => pg::blocking(|| p.query_leases()),
        }
    }

    pub fn query_history(&self, source: &str, external_id: &str) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_history(source, external_id),
            Db::Pg(p) => pg::blocking(|| p.query_history(source, external_id)),
        }
    }

    pub fn query_runs(&self, source: Option<&String>, limit: usize) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_runs(source, limit),
            Db::Pg(p) => pg::blocking(|| p.query_runs(source, limit)),
        }
    }

    pub fn query_pushes(
        &self,
        target: Option<&String>,
        state: Option<&String>,
        limit: usize,
    ) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_pushes(target, state, limit),
            Db::Pg(p) => pg::blocking(|| p.query_pushes(target, state, limit)),
        }
    }

    /// Notifications, newest first.
    pub fn query_notifications(
        &self,
        notifier: Option<&String>,
        state: Option<&String>,
        limit: usize,
    ) -> Result<Table> {
        match &self.db {
            Db::Sqlite(s) => s.query_notifications(notifier, state, limit),
            Db::Pg(p) => pg::blocking(|| p.query_notifications(notifier, state, limit)),
        }
    }

    /// Per source: offers by status and the last run. Per target: outbox rows by state.
    pub fn query_stats(&self) -> Result<(Table, Table)> {
        match &self.db {
            Db::Sqlite(s) => s.query_stats(),
            Db::Pg(p) => pg::blocking(|| p.query_stats()),
        }
    }

    /// Removal detection at the end of a complete run (invariants 3 and 7): every live offer of
    /// `source` not seen by `run_id` has its missed-run count raised; those missed for
    /// `grace` complete runs are marked removed, unless they are more than `max_fraction` of the
    /// live offers, in which case nothing is removed and the run is held.
    #[allow(clippy::too_many_arguments)]
    pub fn finalize_complete(
        &mut self,
        run_id: i64,
        source: &str,
        holder: &str,
        grace: u32,
        max_fraction: f64,
        planner: &dyn Planner,
        now: &str,
    ) -> Result<FinalizeOutcome> {
        match &mut self.db {
            Db::Sqlite(s) => {
                s.finalize_complete(run_id, source, holder, grace, max_fraction, planner, now)
            }
            Db::Pg(p) => pg::blocking(|| {
                p.finalize_complete(run_id, source, holder, grace, max_fraction, planner, now)
            }),
        }
    }

    /// Apply the removals held by the source's last complete run, if it was held. The caller
    /// holds the source's lease.
    pub fn approve_removals(
        &mut self,
        source: &str,
        grace: u32,
        planner: &dyn Planner,
        now: &str,
    ) -> Result<ApproveOutcome> {
        match &mut self.db {
            Db::Sqlite(s) => s.approve_removals(source, grace, planner, now),
            Db::Pg(p) => pg::blocking(|| p.approve_removals(source, grace, planner, now)),
        }
    }

    pub fn create_run(&mut self, source: &str, now: &str, pid: u32, host: &str) -> Result<i64> {
        match &mut self.db {
            Db::Sqlite(s) => s.create_run(source, now, pid, host),
            Db::Pg(p) => pg::blocking(|| p.create_run(source, now, pid, host)),
        }
    }

    pub fn run(&self, run_id: i64) -> Result<Option<RunTotals>> {
        match &self.db {
            Db::Sqlite(s) => s.run(run_id),
            Db::Pg(p) => pg::blocking(|| p.run(run_id)),
        }
    }

    /// Every source name the database knows (from offers or runs).
    pub fn source_names(&self) -> Result<Vec<String>> {
        match &self.db {
            Db::Sqlite(s) => s.source_names(),
            Db::Pg(p) => pg::blocking(|| p.source_names()),
        }
    }

    /// When the source's last complete run finished.
    pub fn last_complete_at(&self, source: &str) -> Result<Option<String>> {
        match &self.db {
            Db::Sqlite(s) => s.last_complete_at(source),
            Db::Pg(p) => pg::blocking(|| p.last_complete_at(source)),
        }
    }

    /// Runs of a source, newest first.
    pub fn runs_of(&self, source: &str, limit: usize) -> Result<Vec<RunTotals>> {
        match &self.db {
            Db::Sqlite(s) => s.runs_of(source, limit),
            Db::Pg(p) => pg::blocking(|| p.runs_of(source, limit)),
        }
    }
}

impl OutboxTx<'_, '_> {
    /// Detach the target offer: never updated, paused or activated until attached; what waits
    /// for it is dropped. `false` when the target holds no such offer.
    pub fn detach(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool> {
        match self {
            OutboxTx::Sqlite(t) => t.detach(target, source, external_id, reason, now),
            OutboxTx::Pg(t) => pg::blocking(|| t.detach(target, source, external_id, reason, now)),
        }
    }

    /// Attach a detached target offer again (the caller plans it afresh in the same
    /// transaction). `false` when it was not detached.
    pub fn attach(&mut self, target: &str, source: &str, external_id: &str) -> Result<bool> {
        match self {
            OutboxTx::Sqlite(t) => t.attach(target, source, external_id),
            OutboxTx::Pg(t) => pg::blocking(|| t.attach(target, source, external_id)),
        }
    }

    /// The canonical offer as stored (removed ones included).
    pub fn offer(&mut self, source: &str, external_id: &str) -> Result<Option<Offer>> {
        match self {
            OutboxTx::Sqlite(t) => t.offer(source, external_id),
            OutboxTx::Pg(t) => pg::blocking(|| t.offer(source, external_id)),
        }
    }

    /// The mapping to plan against (a pending one while a create is in flight or unresolved).
    pub fn mapping(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Mapping>> {
        match self {
            OutboxTx::Sqlite(t) => t.mapping(target, source, external_id),
            OutboxTx::Pg(t) => pg::blocking(|| t.mapping(target, source, external_id)),
        }
    }

    /// What an operator decided for the offer on `target`, if anything.
    pub fn decision(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<Option<crate::model::Decision>> {
        match self {
            OutboxTx::Sqlite(t) => t.decision(target, source, external_id),
            OutboxTx::Pg(t) => pg::blocking(|| t.decision(target, source, external_id)),
        }
    }

    /// Write (or replace, or drop) the offer's waiting operation; see [`Store`]'s planning.
    pub fn enqueue(
        &mut self,
        target: &str,
        source: &str,
        external_id: &str,
        op: Option<&PlannedOp>,
        possible_duplicate: bool,
        now: &str,
    ) -> Result<()> {
        match self {
            OutboxTx::Sqlite(t) => {
                t.enqueue(target, source, external_id, op, possible_duplicate, now)
            }
            OutboxTx::Pg(t) => {
                pg::blocking(|| t.enqueue(target, source, external_id, op, possible_duplicate, now))
            }
        }
    }

    /// Drop an operation (it was re-planned).
    pub fn delete_op(&mut self, id: i64) -> Result<()> {
        match self {
            OutboxTx::Sqlite(t) => t.delete_op(id),
            OutboxTx::Pg(t) => pg::blocking(|| t.delete_op(id)),
        }
    }

    /// The operation succeeded: mark it done and record what the target now holds, together.
    /// `target_offer_id` is the new id after a create; `hidden` that the create left the offer
    /// invisible to affiliates (Offerit's staged create).
    pub fn finish_op(
        &mut self,
        op: &OutboxOp,
        target_offer_id: Option<&str>,
        hidden: bool,
        now: &str,
    ) -> Result<()> {
        match self {
            OutboxTx::Sqlite(t) => t.finish_op(op, target_offer_id, hidden, now),
            OutboxTx::Pg(t) => pg::blocking(|| t.finish_op(op, target_offer_id, hidden, now)),
        }
    }
}
