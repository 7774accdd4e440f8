//! Planning into the outbox on PostgreSQL: the twin of `../planning.rs`.
//!
//! What each target holds of an offer (`target_offers`, or a pending mapping while a create is in
//! flight or unresolved), the planner asked inside the caller's transaction, and its decision
//! written as the offer's one waiting operation (a newer plan replaces it).
//!
//! SQLite serializes every writer with `BEGIN IMMEDIATE`; here a page writer (source lease) and a
//! deliverer (target lease, on another host perhaps) may work on the same offer at once. So:
//! - the waiting operation to replace is read `FOR UPDATE` (a deliverer's `claim_next` skips a
//!   row locked this way, and we wait for a claim in progress to end), and it is only replaced or
//!   dropped while it is still waiting (`AND state IN (...)`): an operation a deliverer claimed
//!   meanwhile is never overwritten, the new plan is queued behind it instead;
//! - what may remain of a race (two planners both queuing an operation for the same offer) is
//!   two operations in order, which delivery handles as it handles any queue: one at a time per
//!   offer, each against the mapping read when it is claimed (a create becomes an update when
//!   the target holds the offer), so there is never a duplicate create.
//!
//! Each planned offer costs one read (mapping, pending create, decision and waiting operation in
//! one statement) and one write, each a single round trip (`query_typed`: no prepare step).

use super::Pg;
use crate::model::{Decision, Held, Mapping, Offer, OfferStatus, OutboxState, PlannedOp, Planner};
use crate::store::{Preview, Result};
use postgres::types::{ToSql, Type};
use postgres::GenericClient;

/// The states of a waiting (not yet delivered, not in flight) operation.
const WAITING: &str = "('pending', 'failed', 'skipped', 'awaiting_approval', 'rejected')";

/// How many offers a re-plan or preview reads at a time, and a removal streams per fetch.
const CHUNK: i64 = 500;

type P<'a> = (&'a (dyn ToSql + Sync), Type);

fn mapping_of(
    target_offer_id: String,
    state: &str,
    pushed: Option<String>,
    detached: bool,
) -> Mapping {
    Mapping {
        target_offer_id,
        active: state == "active",
        hidden: state == "hidden",
        pending: false,
        pushed: pushed
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        detached,
    }
}

fn pending_of(payload: String) -> Mapping {
    Mapping {
        target_offer_id: String::new(),
        active: true,
        hidden: false,
        pending: true,
        pushed: serde_json::from_str(&payload).unwrap_or_default(),
        detached: false,
    }
}

fn decision_of(decision: Option<String>, payout: Option<String>) -> Option<Decision> {
    decision.map(|d| match d.as_str() {
        "rejected" => Decision::Rejected,
        _ => Decision::Approved { payout },
    })
}

/// What the target holds of the offer, from `target_offers`.
pub(crate) fn real_mapping(
    c: &mut impl GenericClient,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    let row = c.query_typed_opt(
        "SELECT target_offer_id, state, pushed_payload::text, detached_at IS NOT NULL
         FROM target_offers WHERE target = $1 AND source = $2 AND external_id = $3",
        &[
            (&target, Type::TEXT),
            (&source, Type::TEXT),
            (&external_id, Type::TEXT),
        ],
    )?;
    Ok(row.map(|r| mapping_of(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3))))
}

/// The mapping to plan against: what the target holds, or, while a create of the offer is in
/// flight or unresolved, the offer that create will leave (a pending mapping).
pub(crate) fn effective_mapping(
    c: &mut impl GenericClient,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    if let Some(m) = real_mapping(c, target, source, external_id)? {
        return Ok(Some(m));
    }
    let pending = c.query_typed_opt(
        "SELECT payload::text FROM push_outbox WHERE target = $1 AND source = $2 AND external_id = $3
         AND op = 'create' AND state IN ('in_flight', 'ambiguous') ORDER BY id DESC LIMIT 1",
        &[
            (&target, Type::TEXT),
            (&source, Type::TEXT),
            (&external_id, Type::TEXT),
        ],
    )?;
    Ok(pending.map(|r| pending_of(r.get(0))))
}

/// What an operator decided for the offer on `target`, if anything (`push_decisions`).
pub(crate) fn decision(
    c: &mut impl GenericClient,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Option<Decision>> {
    let row = c.query_typed_opt(
        "SELECT decision, payout::text FROM push_decisions
         WHERE target = $1 AND source = $2 AND external_id = $3",
        &[
            (&target, Type::TEXT),
            (&source, Type::TEXT),
            (&external_id, Type::TEXT),
        ],
    )?;
    Ok(row.and_then(|r| decision_of(r.get(0), r.get(1))))
}

/// Everything planning one offer on one target reads, in one statement: the effective mapping,
/// the decision, and the waiting operation a new plan replaces (locked).
struct Inputs {
    mapping: Option<Mapping>,
    decision: Option<Decision>,
    waiting: Option<i64>,
}

fn inputs(
    c: &mut impl GenericClient,
    target: &str,
    source: &str,
    external_id: &str,
) -> Result<Inputs> {
    // First the waiting operation, locked: a deliverer's claim or another plan of this offer
    // is waited for here. Then, in a statement of its own (under READ COMMITTED each statement
    // sees what was committed before it began), what the plan depends on: a decision an
    // operator committed while this waited is seen, not lost.
    let waiting: Option<i64> = c
        .query_typed(
            &format!(
                "SELECT w.id FROM push_outbox w
                 WHERE w.target = $1 AND w.source = $2 AND w.external_id = $3
                   AND w.state IN {WAITING}
                 ORDER BY w.id DESC LIMIT 1 FOR UPDATE"
            ),
            &[
                (&target, Type::TEXT),
                (&source, Type::TEXT),
                (&external_id, Type::TEXT),
            ],
        )?
        .first()
        .map(|r| r.get(0));
    let r = c.query_typed_one(
        "SELECT m.target_offer_id, m.state, m.pushed_payload::text, m.detached_at IS NOT NULL,
                (SELECT p.payload::text FROM push_outbox p
                 WHERE p.target = $1 AND p.source = $2 AND p.external_id = $3
                   AND p.op = 'create' AND p.state IN ('in_flight', 'ambiguous')
                 ORDER BY p.id DESC LIMIT 1),
                d.decision, d.payout::text
         FROM (VALUES (1)) AS one (x)
         LEFT JOIN target_offers m
           ON m.target = $1 AND m.source = $2 AND m.external_id = $3
         LEFT JOIN push_decisions d
           ON d.target = $1 AND d.source = $2 AND d.external_id = $3",
        &[
            (&target, Type::TEXT),
            (&source, Type::TEXT),
            (&external_id, Type::TEXT),
        ],
    )?;
    let real = r
        .get::<_, Option<String>>(0)
        .map(|id| mapping_of(id, r.get::<_, &str>(1), r.get(2), r.get(3)));
    let mapping = real.or_else(|| r.get::<_, Option<String>>(4).map(pending_of));
    Ok(Inputs {
        mapping,
        decision: decision_of(r.get(5), r.get(6)),
        waiting,
    })
}

/// Ask the planner about `offer` for every target that takes its source, and write (or
/// replace, or drop) its waiting operation on each.
pub(crate) fn plan_offer(
    tx: &mut postgres::Transaction<'_>,
    planner: &dyn Planner,
    source: &str,
    offer: &Offer,
    now: &str,
) -> Result<()> {
    for i in (0..planner.target_count()).filter(|i| planner.takes(*i, source)) {
        let target = planner.target_name(i);
        let got = inputs(tx, target, source, &offer.external_id)?;
        let op = planner.plan(
            i,
            source,
            offer,
            got.mapping.as_ref(),
            got.decision.as_ref(),
        );
        write_op(
            tx,
            got.waiting,
            (target, source, &offer.external_id),
            op.as_ref(),
            false,
            now,
        )?;
    }
    Ok(())
}

/// Replace the offer's waiting (pending or failed) operation for `target` with `op`, or drop it
/// when nothing is to be done any more. Operations in flight, unresolved, done or dead are left
/// alone (a new one is queued behind them).
pub(crate) fn enqueue(
    c: &mut impl GenericClient,
    target: &str,
    source: &str,
    external_id: &str,
    op: Option<&PlannedOp>,
    possible_duplicate: bool,
    now: &str,
) -> Result<()> {
    let waiting: Option<i64> = c
        .query_typed_opt(
            &format!(
                "SELECT id FROM push_outbox WHERE target = $1 AND source = $2 AND external_id = $3
                 AND state IN {WAITING} ORDER BY id DESC LIMIT 1 FOR UPDATE"
            ),
            &[
                (&target, Type::TEXT),
                (&source, Type::TEXT),
                (&external_id, Type::TEXT),
            ],
        )?
        .map(|r| r.get(0));
    write_op(
        c,
        waiting,
        (target, source, external_id),
        op,
        possible_duplicate,
        now,
    )
}

/// Write `op` over the waiting operation `waiting` (still waiting: one a deliverer claimed in
/// the meantime is left alone and `op` is queued behind it), or drop it, or queue `op`.
fn write_op(
    c: &mut impl GenericClient,
    waiting: Option<i64>,
    (target, source, external_id): (&str, &str, &str),
    op: Option<&PlannedOp>,
    possible_duplicate: bool,
    now: &str,
) -> Result<()> {
    // A create the target's contract rules out waits as `skipped`, one held for an operator
    // as `awaiting_approval` or `rejected` (with the reason), until a later plan replaces it;
    // neither is delivered.
    let Some(op) = op else {
        if let Some(id) = waiting {
            c.execute_typed(
                &format!("DELETE FROM push_outbox WHERE id = $1 AND state IN {WAITING}"),
                &[(&id, Type::INT8)],
            )?;
        }
        return Ok(());
    };
    let payload = serde_json::to_string(&op.fields).unwrap_or_default();
    let kind = op.kind.as_str();
    let state = op.state().as_str();
    let why = op.why_not_sent();
    if let Some(id) = waiting {
        let params: [P<'_>; 6] = [
            (&id, Type::INT8),
            (&kind, Type::TEXT),
            (&payload, Type::TEXT),
            (&possible_duplicate, Type::BOOL),
            (&state, Type::TEXT),
            (&why, Type::TEXT),
        ];
        let n = c.execute_typed(
            &format!(
                "UPDATE push_outbox SET op = $2, payload = $3::jsonb, state = $5, next_attempt_at = NULL,
                        last_error = $6, possible_duplicate = possible_duplicate OR $4
                 WHERE id = $1 AND state IN {WAITING}"
            ),
            &params,
        )?;
        if n == 1 {
            return Ok(());
        }
    }
    let params: [P<'_>; 9] = [
        (&target, Type::TEXT),
        (&source, Type::TEXT),
        (&external_id, Type::TEXT),
        (&kind, Type::TEXT),
        (&payload, Type::TEXT),
        (&now, Type::TEXT),
        (&possible_duplicate, Type::BOOL),
        (&state, Type::TEXT),
        (&why, Type::TEXT),
    ];
    c.execute_typed(
        "INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at,
                                  possible_duplicate, last_error)
         VALUES ($1, $2, $3, $4, $5::jsonb, $8, $6, $7, $9)",
        &params,
    )?;
    Ok(())
}

/// Before offers matching `missing_sql` are marked removed: ask the planner about each as a
/// removed offer (it pauses what a target holds live, or will hold once a create in flight or
/// unresolved lands, and drops waiting operations). `missing_sql` is a `FROM ... WHERE` over
/// `offer_rows o` with the parameters `$1` (source, text) and `$2` (grace, bigint). Streams the
/// offers through a portal, [`CHUNK`] at a time: a mass removal never holds them all.
pub(crate) fn plan_removed(
    tx: &mut postgres::Transaction<'_>,
    planner: &dyn Planner,
    source: &str,
    grace: u32,
    missing_sql: &str,
    now: &str,
) -> Result<()> {
    if !(0..planner.target_count()).any(|i| planner.takes(i, source)) {
        return Ok(());
    }
    let grace = i64::from(grace);
    let portal = tx.bind(
        &format!(
            "SELECT o.external_id, {} {missing_sql} ORDER BY o.external_id",
            super::offer_columns_of("o")
        ),
        &[&source, &grace],
    )?;
    loop {
        let rows = tx.query_portal(&portal, CHUNK as i32)?;
        for row in &rows {
            let mut offer = super::offer_from_row(row.try_get(0)?, row, 1)?;
            offer.status = OfferStatus::Removed;
            plan_offer(tx, planner, source, &offer, now)?;
        }
        if rows.len() < CHUNK as usize {
            break;
        }
    }
    Ok(())
}

/// The canonical offer as stored (removed ones included).
pub(crate) fn offer_in(
    c: &mut impl GenericClient,
    source: &str,
    external_id: &str,
) -> Result<Option<Offer>> {
    let row = c.query_typed_opt(
        &format!(
            "SELECT {} FROM offer_rows WHERE source = $1 AND external_id = $2",
            super::OFFER_COLUMNS
        ),
        &[(&source, Type::TEXT), (&external_id, Type::TEXT)],
    )?;
    Ok(match row {
        Some(r) => Some(super::offer_from_row(external_id.to_string(), &r, 0)?),
        None => None,
    })
}

/// The next chunk of the mirror after offer id `after`: `(id, source, offer)`, in id order.
fn offers_after(c: &mut impl GenericClient, after: i64) -> Result<Vec<(i64, String, Offer)>> {
    let rows = c.query_typed(
        &format!(
            "SELECT id, source, external_id, {} FROM offer_rows WHERE id > $1 ORDER BY id LIMIT {CHUNK}",
            super::OFFER_COLUMNS
        ),
        &[(&after, Type::INT8)],
    )?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                super::offer_from_row(r.try_get(2)?, r, 3)?,
            ))
        })
        .collect()
}

impl Pg {
    /// The hash of the target config the target was last planned with.
    pub fn target_plan_hash(&self, target: &str) -> Result<Option<String>> {
        let mut c = self.client.borrow_mut();
        Ok(c.query_typed_opt(
            "SELECT config_hash FROM target_plans WHERE target = $1",
            &[(&target, Type::TEXT)],
        )?
        .map(|r| r.get(0)))
    }

    /// Plan every offer of the planner's one target's sources again (its config changed), in
    /// chunks so memory stays bounded (one transaction per chunk, as on SQLite), then remember
    /// the config hash. Returns the operations now waiting.
    pub fn replan_target(
        &mut self,
        planner: &dyn Planner,
        config_hash: &str,
        now: &str,
    ) -> Result<u64> {
        let name = planner.target_name(0).to_string();
        let client = self.client.get_mut();
        let mut last_id = 0i64;
        loop {
            let mut tx = client.transaction()?;
            let batch = offers_after(&mut tx, last_id)?;
            let Some(&(id, _, _)) = batch.last() else {
                tx.execute_typed(
                    "INSERT INTO target_plans (target, config_hash, planned_at) VALUES ($1, $2, $3)
                     ON CONFLICT (target) DO UPDATE SET config_hash = excluded.config_hash,
                         planned_at = excluded.planned_at",
                    &[
                        (&name, Type::TEXT),
                        (&config_hash, Type::TEXT),
                        (&now, Type::TEXT),
                    ],
                )?;
                tx.commit()?;
                break;
            };
            last_id = id;
            for (_, source, offer) in batch.iter().filter(|(_, s, _)| planner.takes(0, s)) {
                plan_offer(&mut tx, planner, source, offer, now)?;
            }
            tx.commit()?;
        }
        let n: i64 = client
            .query_typed_one(
                "SELECT count(*) FROM push_outbox WHERE target = $1 AND state IN ('pending', 'failed')",
                &[(&name, Type::TEXT)],
            )?
            .get(0);
        Ok(n as u64)
    }

    /// What delivering the planner's one target would do now: every offer of its sources
    /// planned against what the target holds (or will hold once a create in flight lands).
    /// Reads only. Walks the mirror in chunks (memory stays bounded); keeps the first `limit`
    /// operations and counts all of them by kind.
    pub fn preview_target(&self, planner: &dyn Planner, limit: usize) -> Result<Preview> {
        let target = planner.target_name(0);
        let mut c = self.client.borrow_mut();
        let c = &mut *c;
        let mut shown = Vec::new();
        let mut counts = std::collections::BTreeMap::new();
        let mut last_id = 0i64;
        loop {
            let batch = offers_after(c, last_id)?;
            let Some(&(id, _, _)) = batch.last() else {
                break;
            };
            last_id = id;
            for (_, source, offer) in batch.into_iter().filter(|(_, s, _)| planner.takes(0, s)) {
                let m = effective_mapping(c, target, &source, &offer.external_id)?;
                let d = decision(c, target, &source, &offer.external_id)?;
                if let Some(op) = planner.plan(0, &source, &offer, m.as_ref(), d.as_ref()) {
                    // What waits for an operator is counted apart from what would go out.
                    let key = match op.held {
                        Some(Held::Approval(_)) => OutboxState::AwaitingApproval.as_str(),
                        Some(Held::Rejected) => OutboxState::Rejected.as_str(),
                        None => op.kind.as_str(),
                    };
                    *counts.entry(key).or_insert(0) += 1;
                    if shown.len() < limit {
                        shown.push((source, offer.external_id, op));
                    }
                }
            }
        }
        Ok(Preview { shown, counts })
    }
}

/// Test equipment shared by the pg outbox, planning and notify tests: a PostgreSQL mirror and a
/// SQLite twin fed the same offers, and their outboxes read back alike.
#[cfg(test)]
pub(crate) mod testkit {
    use super::super::{testing, Pg};
    use crate::config::{TargetConfig, TargetKind};
    use crate::model::Offer;
    use crate::store::Store;
    use serde_json::Value;

    pub(crate) fn target(name: &str, sources: &[&str]) -> TargetConfig {
        let mut t = crate::push::plan::tests::target(TargetKind::Affise);
        t.name = name.into();
        t.sources = sources.iter().map(|s| s.to_string()).collect();
        t
    }

    pub(crate) fn offer(id: &str) -> Offer {
        let mut o = crate::push::plan::tests::offer();
        o.external_id = id.into();
        o.name = format!("Game {id}");
        o
    }

    fn text_list(v: &[String]) -> String {
        serde_json::to_string(v).unwrap()
    }

    /// Store `o` (live, seen by run 1) as the canonical offer of `source` in PostgreSQL.
    pub(crate) fn pg_offer(pg: &mut Pg, source: &str, o: &Offer) -> i64 {
        let c = pg.client.get_mut();
        let payout = o.payout.map(|p| p.to_string());
        let payout_type = o.payout_type.map(|p| p.as_str());
        let id: i64 = c
            .query_one(
                "INSERT INTO offer_rows (source, external_id, name, status, payout, currency, payout_type,
                        countries, tracking_url, advertiser, content_hash, first_seen_at, updated_at, raw)
                 VALUES ($1, $2, $3, $4, $5::text::numeric, $6, $7, $8::text::jsonb, $9, $10, 'h',
                         '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '{}')
                 ON CONFLICT (source, external_id) DO UPDATE SET name = excluded.name,
                     status = excluded.status, payout = excluded.payout, tracking_url = excluded.tracking_url
                 RETURNING id",
                &[
                    &source,
                    &o.external_id,
                    &o.name,
                    &o.status.as_str(),
                    &payout,
                    &o.currency,
                    &payout_type,
                    &text_list(&o.countries),
                    &o.tracking_url,
                    &o.advertiser,
                ],
            )
            .unwrap()
            .get(0);
        c.execute(
            "INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at, missed_runs, live_hash)
             VALUES ($1, 1, '2024-01-01T00:00:00Z', 0, 'h') ON CONFLICT (offer_id) DO NOTHING",
            &[&id],
        )
        .unwrap();
        id
    }

    /// The same in SQLite.
    pub(crate) fn lite_offer(s: &Store, source: &str, o: &Offer) {
        s.conn()
            .execute(
                "INSERT INTO offer_rows (source, external_id, name, status, payout, currency, payout_type,
                        countries, tracking_url, advertiser, content_hash, first_seen_at, updated_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'h',
                         '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '{}')
                 ON CONFLICT (source, external_id) DO UPDATE SET name = excluded.name,
                     status = excluded.status, payout = excluded.payout, tracking_url = excluded.tracking_url",
                rusqlite::params![
                    source,
                    o.external_id,
                    o.name,
                    o.status.as_str(),
                    o.payout.map(|p| p.to_string()),
                    o.currency,
                    o.payout_type.map(|p| p.as_str()),
                    text_list(&o.countries),
                    o.tracking_url,
                    o.advertiser,
                ],
            )
            .unwrap();
        s.conn()
            .execute(
                "INSERT OR IGNORE INTO offer_seen (offer_id, last_run_id, last_seen_at, missed_runs, live_hash)
                 SELECT id, 1, '2024-01-01T00:00:00Z', 0, 'h' FROM offer_rows
                 WHERE source = ?1 AND external_id = ?2",
                rusqlite::params![source, o.external_id],
            )
            .unwrap();
    }

    /// A fresh SQLite mirror in a temporary directory.
    pub(crate) fn lite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("m.db"), std::time::Duration::from_secs(5)).unwrap();
        (dir, s)
    }

    /// One outbox row, as both backends can show it: target, source, external_id, op, payload,
    /// state, last_error, possible_duplicate, attempts.
    pub(crate) type Row = (
        String,
        String,
        String,
        String,
        Value,
        String,
        Option<String>,
        bool,
        i64,
    );

    pub(crate) fn pg_outbox(pg: &mut Pg) -> Vec<Row> {
        pg.client
            .get_mut()
            .query(
                "SELECT target, source, external_id, op, payload::text, state, last_error,
                        possible_duplicate, attempts FROM push_outbox ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    serde_json::from_str(r.get::<_, &str>(4)).unwrap(),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                )
            })
            .collect()
    }

    pub(crate) fn lite_outbox(s: &Store) -> Vec<Row> {
        s.conn()
            .prepare(
                "SELECT target, source, external_id, op, payload, state, last_error,
                        possible_duplicate, attempts FROM push_outbox ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    serde_json::from_str(&r.get::<_, String>(4)?).unwrap(),
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Run one SQL statement on both backends (written with `$n` for both: SQLite reads `$1`
    /// as a numbered parameter too).
    pub(crate) fn both(pg: &mut Pg, s: &Store, sql: &str) {
        pg.client.get_mut().batch_execute(sql).unwrap();
        s.conn().execute_batch(sql).unwrap();
    }

    /// Two connections (two "hosts") to one fresh mirror.
    pub(crate) fn two_on_one() -> (Pg, Pg) {
        let db = crate::sandbox::postgres::TestServer::global().fresh();
        let at = super::super::PgLocation {
            url: db.url,
            password: Some(db.password),
        };
        let open = || Pg::open(&at, std::time::Duration::from_secs(10)).unwrap();
        (open(), open())
    }

    pub(crate) fn fresh_pair() -> (Pg, tempfile::TempDir, Store) {
        let pg = testing::fresh();
        let (dir, s) = lite();
        (pg, dir, s)
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::push::Targets;

    /// Plan `o` of source `s` in one transaction on both backends.
    fn plan_both(pg: &mut Pg, lite: &mut crate::store::Store, t: &Targets<'_>, o: &Offer) {
        let mut tx = pg.client.get_mut().transaction().unwrap();
        plan_offer(&mut tx, t, "s", o, "2024-01-02T00:00:00Z").unwrap();
        tx.commit().unwrap();
        let tx = lite.conn_mut().transaction().unwrap();
        crate::store::planning::plan_offer(&tx, t, "s", o, "2024-01-02T00:00:00Z").unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn a_newer_plan_replaces_the_waiting_op_and_a_needless_one_is_dropped() {
        let (mut pg, _d, mut lite) = fresh_pair();
        let cfg = [target("t", &["s"]), target("u", &["other"])];
        let t = Targets(&cfg);
        let mut o = offer("1");
        plan_both(&mut pg, &mut lite, &t, &o);
        let rows = pg_outbox(&mut pg);
        assert_eq!(
            rows.len(),
            1,
            "only the target that takes the source: {rows:?}"
        );
        assert_eq!(
            (rows[0].0.as_str(), rows[0].3.as_str(), rows[0].5.as_str()),
            ("t", "create", "pending")
        );
        // A change before delivery coalesces into the one waiting create.
        o.name = "Renamed".into();
        plan_both(&mut pg, &mut lite, &t, &o);
        let rows = pg_outbox(&mut pg);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].4.to_string().contains("Renamed"), "{:?}", rows[0].4);
        assert_eq!(rows, lite_outbox(&lite));
        // No longer wanted, never created: nothing is left to do.
        o.status = OfferStatus::Removed;
        plan_both(&mut pg, &mut lite, &t, &o);
        assert!(pg_outbox(&mut pg).is_empty());
        assert_eq!(pg_outbox(&mut pg), lite_outbox(&lite));
    }

    #[test]
    fn changes_during_a_create_in_flight_are_planned_against_it_and_queued_behind() {
        let (mut pg, _d, mut lite) = fresh_pair();
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        let mut o = offer("1");
        plan_both(&mut pg, &mut lite, &t, &o);
        both(&mut pg, &lite, "UPDATE push_outbox SET state = 'in_flight'");
        // The pending mapping is what the create will leave.
        {
            let c = pg.client.get_mut();
            let m = effective_mapping(c, "t", "s", "1").unwrap().unwrap();
            assert!(m.pending && m.active && m.target_offer_id.is_empty());
            assert!(real_mapping(c, "t", "s", "1").unwrap().is_none());
        }
        o.name = "Renamed".into();
        plan_both(&mut pg, &mut lite, &t, &o);
        o.status = OfferStatus::Removed;
        plan_both(&mut pg, &mut lite, &t, &o);
        let rows = pg_outbox(&mut pg);
        let ops: Vec<(&str, &str)> = rows.iter().map(|r| (r.3.as_str(), r.5.as_str())).collect();
        // The update was replaced by the pause (one waiting op), behind the create in flight.
        assert_eq!(ops, [("create", "in_flight"), ("pause", "pending")]);
        assert_eq!(rows, lite_outbox(&lite));
    }

    #[test]
    fn a_plan_never_overwrites_an_op_a_deliverer_claimed_meanwhile() {
        let mut pg = super::super::testing::fresh();
        let c = pg.client.get_mut();
        let cfg = [target("t", &["s"])];
        let o = offer("1");
        let op = Targets(&cfg).plan(0, "s", &o, None, None).unwrap();
        let mut tx = c.transaction().unwrap();
        enqueue(&mut tx, "t", "s", "1", Some(&op), false, "now").unwrap();
        let id: i64 = tx
            .query_one("SELECT id FROM push_outbox", &[])
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        // The planner read `id` as waiting; a deliverer claims it before the write.
        c.execute("UPDATE push_outbox SET state = 'in_flight'", &[])
            .unwrap();
        let mut tx = c.transaction().unwrap();
        write_op(&mut tx, Some(id), ("t", "s", "1"), Some(&op), true, "now").unwrap();
        write_op(&mut tx, None, ("t", "s", "1"), None, false, "now").unwrap();
        tx.commit().unwrap();
        let rows = pg_outbox(&mut pg);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].5, "in_flight");
        assert!(!rows[0].7, "the claimed op is untouched");
        assert_eq!((rows[1].5.as_str(), rows[1].7), ("pending", true));
        // And a drop that raced with a claim drops nothing.
        let c = pg.client.get_mut();
        let mut tx = c.transaction().unwrap();
        write_op(&mut tx, Some(id), ("t", "s", "1"), None, false, "now").unwrap();
        tx.commit().unwrap();
        assert_eq!(pg_outbox(&mut pg).len(), 2);
    }

    #[test]
    fn a_page_replanning_a_waiting_op_holds_it_against_claims_until_it_commits() {
        let (mut a, mut b) = two_on_one();
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        let mut o = offer("1");
        let mut tx = a.client.get_mut().transaction().unwrap();
        plan_offer(&mut tx, &t, "s", &o, "now").unwrap();
        tx.commit().unwrap();
        b.client
            .get_mut()
            .batch_execute("SET lock_timeout = '2s'")
            .unwrap();
        // The page writer replaces the waiting create and has not committed yet.
        o.name = "Renamed".into();
        let mut tx = a.client.get_mut().transaction().unwrap();
        plan_offer(&mut tx, &t, "s", &o, "now").unwrap();
        assert!(
            b.claim_next("t", "now").unwrap().is_none(),
            "skipped while locked, not waited for"
        );
        tx.commit().unwrap();
        let op = b.claim_next("t", "now").unwrap().unwrap();
        assert!(serde_json::to_string(&op.fields)
            .unwrap()
            .contains("Renamed"));
        // Planned again while it is in flight: queued behind, the claimed op untouched.
        o.name = "Again".into();
        let mut tx = a.client.get_mut().transaction().unwrap();
        plan_offer(&mut tx, &t, "s", &o, "now").unwrap();
        tx.commit().unwrap();
        let rows = pg_outbox(&mut a);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].5, "in_flight");
        assert!(rows[0].4.to_string().contains("Renamed"));
        // Against the pending mapping the create leaves: an update of the name only.
        assert_eq!(
            (rows[1].3.as_str(), rows[1].5.as_str()),
            ("update", "pending")
        );
    }

    #[test]
    fn decisions_and_held_creates_are_written_as_their_state() {
        let (mut pg, _d, mut lite) = fresh_pair();
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        both(
            &mut pg,
            &lite,
            "INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
             VALUES ('t', 's', '1', 'rejected', NULL, 'x'), ('t', 's', '2', 'approved', '1.50', 'x')",
        );
        {
            let c = pg.client.get_mut();
            assert_eq!(
                decision(c, "t", "s", "1").unwrap(),
                Some(Decision::Rejected)
            );
            assert_eq!(
                decision(c, "t", "s", "2").unwrap(),
                Some(Decision::Approved {
                    payout: Some("1.50".into())
                })
            );
            assert_eq!(decision(c, "t", "s", "3").unwrap(), None);
        }
        for id in ["1", "2", "3"] {
            plan_both(&mut pg, &mut lite, &t, &offer(id));
        }
        // A create the contract rules out (no tracking URL on an Affise create) is skipped.
        let mut bare = offer("4");
        bare.tracking_url = None;
        plan_both(&mut pg, &mut lite, &t, &bare);
        let rows = pg_outbox(&mut pg);
        assert_eq!(rows, lite_outbox(&lite));
        assert_eq!(rows[0].5, "rejected");
        assert_eq!(rows[0].6.as_deref(), Some("rejected by an operator"));
        assert_eq!(rows[1].5, "pending");
    }

    #[test]
    fn a_mass_removal_is_streamed_and_pauses_every_live_offer() {
        let (mut pg, _d, mut lite) = fresh_pair();
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        let n = 1234;
        for i in 0..n {
            let o = offer(&format!("{i:05}"));
            pg_offer(&mut pg, "s", &o);
            lite_offer(&lite, "s", &o);
        }
        pg_offer(&mut pg, "other", &offer("x"));
        lite_offer(&lite, "other", &offer("x"));
        both(
            &mut pg,
            &lite,
            "INSERT INTO target_offers (target, source, external_id, target_offer_id, state, pushed_payload)
             SELECT 't', source, external_id, 'a' || external_id, 'active', '{}' FROM offer_rows;
             UPDATE offer_seen SET missed_runs = 3
             WHERE offer_id IN (SELECT id FROM offer_rows WHERE external_id < '01000' OR source = 'other');",
        );
        let missing = "FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                       WHERE o.source = $1 AND s.live_hash IS NOT NULL AND s.missed_runs >= $2";
        let mut tx = pg.client.get_mut().transaction().unwrap();
        plan_removed(&mut tx, &t, "s", 2, missing, "now").unwrap();
        tx.commit().unwrap();
        let tx = lite.conn_mut().transaction().unwrap();
        crate::store::planning::plan_removed(&tx, &t, "s", 2, &missing.replace('$', "?"), "now")
            .unwrap();
        tx.commit().unwrap();
        let rows = pg_outbox(&mut pg);
        assert_eq!(rows.len(), 1000);
        assert!(rows.iter().all(|r| r.3 == "pause" && r.1 == "s"));
        assert_eq!(rows, lite_outbox(&lite));
        // A source no target takes plans nothing.
        let mut tx = pg.client.get_mut().transaction().unwrap();
        plan_removed(&mut tx, &t, "other", 2, missing, "now").unwrap();
        tx.commit().unwrap();
        assert_eq!(pg_outbox(&mut pg).len(), 1000);
    }

    #[test]
    fn a_replan_plans_every_offer_of_the_targets_sources_and_remembers_the_hash() {
        let (mut pg, _d, mut lite) = fresh_pair();
        for i in 0..1100 {
            let mut o = offer(&format!("{i:05}"));
            if i % 10 == 0 {
                o.status = OfferStatus::Paused;
            }
            pg_offer(&mut pg, "s", &o);
            lite_offer(&lite, "s", &o);
        }
        pg_offer(&mut pg, "other", &offer("x"));
        lite_offer(&lite, "other", &offer("x"));
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        assert_eq!(pg.target_plan_hash("t").unwrap(), None);
        let n = pg.replan_target(&t, "h1", "now").unwrap();
        let m = lite.replan_target(&t, "h1", "now").unwrap();
        assert_eq!((n, m), (990, 990));
        assert_eq!(pg.target_plan_hash("t").unwrap().as_deref(), Some("h1"));
        assert_eq!(pg_outbox(&mut pg), lite_outbox(&lite));
        // Again with a new hash: the waiting creates are replaced, not doubled.
        assert_eq!(pg.replan_target(&t, "h2", "now").unwrap(), 990);
        assert_eq!(pg.target_plan_hash("t").unwrap().as_deref(), Some("h2"));
        assert_eq!(pg_outbox(&mut pg).len(), 990);
    }

    #[test]
    fn a_preview_counts_what_delivery_would_do_and_writes_nothing() {
        let (mut pg, _d, lite) = fresh_pair();
        for i in 0..700 {
            let o = offer(&format!("{i:05}"));
            pg_offer(&mut pg, "s", &o);
            lite_offer(&lite, "s", &o);
        }
        both(
            &mut pg,
            &lite,
            "INSERT INTO target_offers (target, source, external_id, target_offer_id, state, pushed_payload)
             SELECT 't', source, external_id, 'a', 'active', '{}' FROM offer_rows WHERE external_id < '00100';
             INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at)
             VALUES ('t', 's', '00200', 'create', '{\"title\": \"x\"}', 'in_flight', 'now');
             INSERT INTO push_decisions (target, source, external_id, decision, decided_at)
             VALUES ('t', 's', '00300', 'rejected', 'x');",
        );
        let cfg = [target("t", &["s"])];
        let t = Targets(&cfg);
        let p = pg.preview_target(&t, 5).unwrap();
        let q = lite.preview_target(&t, 5).unwrap();
        assert_eq!(p.counts, q.counts);
        assert_eq!(p.shown, q.shown);
        assert_eq!(p.shown.len(), 5);
        assert_eq!(p.counts.get("update"), Some(&101), "{:?}", p.counts);
        assert_eq!(p.counts.get("rejected"), Some(&1));
        assert_eq!(p.counts.get("create"), Some(&598));
        assert_eq!(pg_outbox(&mut pg).len(), 1, "a preview only reads");
    }
}
