//! Operators' decisions on PostgreSQL, the twin of `../decisions.rs`: approving or rejecting
//! what waits in the outbox (`push_decisions` remembers them, so later plans honour them), and
//! detaching or attaching a target offer (`target_offers.detached_at`). Each is one
//! transaction, and each is a few statements whatever the number of offers (the offers are
//! passed as arrays).
//!
//! SQLite serializes these writers with every other by `BEGIN IMMEDIATE`. Here a page writer
//! (another host, perhaps) may plan the same offer at the same moment, and a plan reads the
//! decision and the mapping it is made with. So a decision first takes a share lock on the
//! offers' `offer_rows` rows: a page writer updates an offer's row before planning it, in the
//! same transaction, so the two are serialized per offer (a page that got there first is
//! waited for and its operations are then what the decision applies to; one that comes second
//! waits and plans with the decision). The outbox rows themselves are written by the last
//! statement before the commit, and only while they still wait (a deliverer's claim in
//! progress is waited for, and an operation it claimed is left alone).

use super::Pg;
use crate::store::pg::outbox::PgOutboxTx;
use crate::store::{Decided, Result, Selection};
use postgres::types::{ToSql, Type};
use postgres::GenericClient;

type P<'a> = (&'a (dyn ToSql + Sync), Type);

/// The states an approval releases (a rejection is released by name only).
const WAITING: &str = "('awaiting_approval', 'rejected')";

/// What a detach drops: every operation not yet sent.
const UNSENT: &str = "('pending', 'failed', 'skipped', 'awaiting_approval', 'rejected')";

/// Decimal text, as `push_decisions.payout` (numeric) takes it; anything else is not a payout.
const DECIMAL: &str = r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$";

/// The offers as two parallel arrays, each offer once, in the order first named.
fn columns(offers: &[(String, String)]) -> (Vec<&str>, Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    offers
        .iter()
        .filter(|o| seen.insert((o.0.as_str(), o.1.as_str())))
        .map(|(s, e)| (s.as_str(), e.as_str()))
        .unzip()
}

/// Share-lock the offers' rows in key order (see the module's doc).
fn lock_offers(c: &mut impl GenericClient, sources: &[&str], ids: &[&str]) -> Result<()> {
    c.query_typed(
        "SELECT 1 FROM offer_rows o
         JOIN unnest($1::text[], $2::text[]) AS u (source, external_id)
           ON o.source = u.source AND o.external_id = u.external_id
         ORDER BY o.source, o.external_id FOR SHARE OF o",
        &[(&sources, Type::TEXT_ARRAY), (&ids, Type::TEXT_ARRAY)],
    )?;
    Ok(())
}

/// How many operations each offer had changed (`touched`: the offers of the changed rows), and
/// the offers that had none.
fn tally(sources: &[&str], ids: &[&str], touched: &[postgres::Row]) -> Decided {
    let mut counts = std::collections::HashMap::<(String, String), u64>::new();
    for r in touched {
        *counts.entry((r.get(0), r.get(1))).or_default() += 1;
    }
    let mut out = Decided::default();
    for (s, e) in sources.iter().zip(ids) {
        match counts.get(&(s.to_string(), e.to_string())) {
            Some(n) => out.operations += n,
            None => out.recorded_only.push((s.to_string(), e.to_string())),
        }
    }
    out
}

impl Pg {
    /// Release what waits for approval on `target` (or was rejected): its state becomes
    /// `pending`, and the decision (with the payout approved) is remembered.
    pub fn approve(&mut self, target: &str, which: &Selection, now: &str) -> Result<Decided> {
        let mut tx = self.client.get_mut().transaction()?;
        let offers: Vec<(String, String)> = match which {
            Selection::All => tx
                .query_typed(
                    "SELECT source, external_id FROM push_outbox
                     WHERE target = $1 AND state = 'awaiting_approval'
                     GROUP BY source, external_id ORDER BY min(id)",
                    &[(&target, Type::TEXT)],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            Selection::Offers(list) => list.clone(),
        };
        let (sources, ids) = columns(&offers);
        lock_offers(&mut tx, &sources, &ids)?;
        let params: [P<'_>; 4] = [
            (&target, Type::TEXT),
            (&sources, Type::TEXT_ARRAY),
            (&ids, Type::TEXT_ARRAY),
            (&now, Type::TEXT),
        ];
        // The payout approved: the one the latest waiting operation carries.
        tx.execute_typed(
            &format!(
                "INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
                 SELECT $1, u.source, u.external_id, 'approved',
                        (SELECT CASE WHEN w.payout ~ '{DECIMAL}' THEN w.payout::numeric END
                         FROM (SELECT p.payload ->> 'payout' AS payout FROM push_outbox p
                               WHERE p.target = $1 AND p.source = u.source
                                 AND p.external_id = u.external_id AND p.state IN {WAITING}
                               ORDER BY p.id DESC LIMIT 1) w),
                        $4
                 FROM unnest($2::text[], $3::text[]) AS u (source, external_id)
                 ON CONFLICT (target, source, external_id) DO UPDATE SET decision = 'approved',
                     payout = excluded.payout, decided_at = excluded.decided_at"
            ),
            &params,
        )?;
        let touched = tx.query_typed(
            &format!(
                "UPDATE push_outbox p SET state = 'pending', last_error = NULL, next_attempt_at = NULL
                 FROM unnest($2::text[], $3::text[]) AS u (source, external_id)
                 WHERE p.target = $1 AND p.source = u.source AND p.external_id = u.external_id
                   AND p.state IN {WAITING}
                 RETURNING p.source, p.external_id"
            ),
            &params[..3],
        )?;
        tx.commit()?;
        Ok(tally(&sources, &ids, &touched))
    }

    /// Reject these offers on `target`: what waits for them (a create, or a held payout jump)
    /// becomes `rejected` and is never sent; later plans keep it rejected until approved.
    pub fn reject(
        &mut self,
        target: &str,
        offers: &[(String, String)],
        now: &str,
    ) -> Result<Decided> {
        let mut tx = self.client.get_mut().transaction()?;
        let (sources, ids) = columns(offers);
        lock_offers(&mut tx, &sources, &ids)?;
        let params: [P<'_>; 4] = [
            (&target, Type::TEXT),
            (&sources, Type::TEXT_ARRAY),
            (&ids, Type::TEXT_ARRAY),
            (&now, Type::TEXT),
        ];
        tx.execute_typed(
            "INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
             SELECT $1, u.source, u.external_id, 'rejected', NULL, $4
             FROM unnest($2::text[], $3::text[]) AS u (source, external_id)
             ON CONFLICT (target, source, external_id) DO UPDATE SET decision = 'rejected',
                 payout = NULL, decided_at = excluded.decided_at",
            &params,
        )?;
        let touched = tx.query_typed(
            "UPDATE push_outbox p SET state = 'rejected', last_error = 'rejected by an operator'
             FROM unnest($2::text[], $3::text[]) AS u (source, external_id)
             WHERE p.target = $1 AND p.source = u.source AND p.external_id = u.external_id
               AND (p.state = 'awaiting_approval' OR (p.op = 'create' AND p.state IN ('pending', 'failed')))
             RETURNING p.source, p.external_id",
            &params[..3],
        )?;
        tx.commit()?;
        Ok(tally(&sources, &ids, &touched))
    }
}

impl PgOutboxTx<'_> {
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
        let params: [P<'_>; 5] = [
            (&target, Type::TEXT),
            (&source, Type::TEXT),
            (&external_id, Type::TEXT),
            (&now, Type::TEXT),
            (&reason, Type::TEXT),
        ];
        lock_offer(&mut self.tx, source, external_id)?;
        let n = self.tx.execute_typed(
            "UPDATE target_offers SET detached_at = $4, detached_reason = $5
             WHERE target = $1 AND source = $2 AND external_id = $3",
            &params,
        )?;
        if n > 0 {
            self.tx.execute_typed(
                &format!(
                    "DELETE FROM push_outbox WHERE target = $1 AND source = $2 AND external_id = $3
                       AND state IN {UNSENT}"
                ),
                &params[..3],
            )?;
        }
        Ok(n > 0)
    }

    /// Attach a detached target offer again (the caller plans it afresh in the same
    /// transaction). `false` when it was not detached.
    pub fn attach(&mut self, target: &str, source: &str, external_id: &str) -> Result<bool> {
        lock_offer(&mut self.tx, source, external_id)?;
        let n = self.tx.execute_typed(
            "UPDATE target_offers SET detached_at = NULL, detached_reason = NULL
             WHERE target = $1 AND source = $2 AND external_id = $3 AND detached_at IS NOT NULL",
            &[
                (&target, Type::TEXT),
                (&source, Type::TEXT),
                (&external_id, Type::TEXT),
            ],
        )?;
        Ok(n > 0)
    }
}

/// Share-lock one offer's row (see the module's doc).
fn lock_offer(c: &mut impl GenericClient, source: &str, external_id: &str) -> Result<()> {
    c.query_typed(
        "SELECT 1 FROM offer_rows WHERE source = $1 AND external_id = $2 FOR SHARE",
        &[(&source, Type::TEXT), (&external_id, Type::TEXT)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::planning::testkit::{
        both, fresh_pair, lite_offer, lite_outbox, offer, pg_offer, pg_outbox, target, two_on_one,
    };
    use super::*;
    use crate::config::Approval;
    use crate::push::Targets;
    use crate::store::query::Table;
    use crate::store::Store;

    const NOW: &str = "2024-06-01T12:00:00Z";

    fn decisions_pg(pg: &Pg) -> Table {
        pg.table(
            "SELECT target, source, external_id, decision, payout::text AS payout, decided_at
             FROM push_decisions ORDER BY target, source, external_id",
            &[],
        )
        .unwrap()
    }

    fn decisions_lite(s: &Store) -> Table {
        s.table(
            "SELECT target, source, external_id, decision, payout, decided_at
             FROM push_decisions ORDER BY target, source, external_id",
            vec![],
        )
        .unwrap()
    }

    fn outbox_pg(pg: &Pg) -> Table {
        pg.table(
            "SELECT id, target, source, external_id, op, state, last_error, next_attempt_at
             FROM push_outbox ORDER BY id",
            &[],
        )
        .unwrap()
    }

    fn outbox_lite(s: &Store) -> Table {
        s.table(
            "SELECT id, target, source, external_id, op, state, last_error, next_attempt_at
             FROM push_outbox ORDER BY id",
            vec![],
        )
        .unwrap()
    }

    /// Operations in every state, for two targets; valid SQL on both backends.
    const SEED: &str = r#"
INSERT INTO offer_rows (id, source, external_id, name, status, content_hash, first_seen_at, updated_at, raw)
VALUES (1, 's', '1', 'One', 'active', 'h', 't', 't', '{}'), (2, 's', '2', 'Two', 'active', 'h', 't', 't', '{}'),
       (3, 's', '3', 'Three', 'active', 'h', 't', 't', '{}'), (4, 's', '4', 'Four', 'active', 'h', 't', 't', '{}');
INSERT INTO push_outbox (id, target, source, external_id, op, payload, state, attempts, next_attempt_at,
                         last_error, created_at)
VALUES (1, 't', 's', '1', 'create', '{"name":"One","payout":"1.50"}', 'awaiting_approval', 0, NULL, 'awaits approval', 'c'),
       (2, 't', 's', '2', 'update', '{"payout":2.5}', 'awaiting_approval', 0, 'n', 'payout +150%', 'c'),
       (3, 't', 's', '3', 'create', '{"name":"Three","payout":"x"}', 'rejected', 0, NULL, 'rejected by an operator', 'c'),
       (4, 't', 's', '4', 'create', '{"name":"Four"}', 'pending', 0, NULL, NULL, 'c'),
       (5, 't', 's', '4', 'update', '{"name":"Four!"}', 'failed', 2, 'n', 'HTTP 502', 'c'),
       (6, 'u', 's', '1', 'create', '{"name":"One"}', 'awaiting_approval', 0, NULL, 'awaits approval', 'c'),
       (7, 't', 's', '2', 'create', '{"name":"Two"}', 'done', 1, NULL, NULL, 'c'),
       (8, 't', 's', '1', 'create', '{"name":"One"}', 'in_flight', 1, NULL, NULL, 'c');
INSERT INTO push_decisions (target, source, external_id, decision, payout, decided_at)
VALUES ('t', 's', '3', 'rejected', NULL, 'earlier');
INSERT INTO target_offers (target, source, external_id, target_offer_id, state)
VALUES ('t', 's', '2', '902', 'active'), ('t', 's', '4', '904', 'active');
"#;

    fn seeded() -> (Pg, tempfile::TempDir, Store) {
        let (mut pg, dir, s) = fresh_pair();
        both(&mut pg, &s, SEED);
        (pg, dir, s)
    }

    fn same(pg: &Pg, s: &Store) {
        assert_eq!(outbox_pg(pg), outbox_lite(s));
        assert_eq!(decisions_pg(pg), decisions_lite(s));
    }

    fn offers(list: &[&str]) -> Vec<(String, String)> {
        list.iter()
            .map(|e| ("s".to_string(), e.to_string()))
            .collect()
    }

    #[test]
    fn approving_everything_releases_what_awaits_approval_on_that_target_only() {
        let (mut pg, _d, mut s) = seeded();
        let got = pg.approve("t", &Selection::All, NOW).unwrap();
        assert_eq!(got, s.approve("t", &Selection::All, NOW).unwrap());
        same(&pg, &s);
        assert_eq!(got.operations, 2);
        assert!(got.recorded_only.is_empty());
        let o = outbox_pg(&pg).to_objects();
        assert_eq!(
            (o[0]["state"].as_str(), &o[0]["last_error"]),
            (Some("pending"), &serde_json::Value::Null)
        );
        assert_eq!(o[1]["state"], "pending");
        assert!(o[1]["next_attempt_at"].is_null());
        assert_eq!(
            o[2]["state"], "rejected",
            "a rejection is released by name only"
        );
        assert_eq!(o[5]["state"], "awaiting_approval", "another target");
        let d = decisions_pg(&pg).to_objects();
        assert_eq!(
            d.iter()
                .map(|d| (
                    d["external_id"].as_str().unwrap(),
                    d["decision"].as_str().unwrap(),
                    d["payout"].clone()
                ))
                .collect::<Vec<_>>(),
            [
                ("1", "approved", "1.50".into()),
                ("2", "approved", "2.5".into()),
                ("3", "rejected", serde_json::Value::Null)
            ]
        );
        // Nothing waits any more: approving again records nothing.
        assert_eq!(
            pg.approve("t", &Selection::All, NOW).unwrap(),
            Decided::default()
        );
    }

    #[test]
    fn approving_by_name_releases_rejections_and_records_the_rest() {
        let (mut pg, _d, mut s) = seeded();
        let which = Selection::Offers(offers(&["3", "4", "9", "1", "3"]));
        let got = pg.approve("t", &which, NOW).unwrap();
        // SQLite handles a name given twice as a second decision over nothing waiting.
        let lite = s
            .approve("t", &Selection::Offers(offers(&["3", "4", "9", "1"])), NOW)
            .unwrap();
        assert_eq!(got, lite);
        // SQLite keeps any text as the approved payout; `numeric` takes a decimal only, so "x"
        // is none (the planner compares it as a decimal: the same "no approved payout").
        s.conn()
            .execute(
                "UPDATE push_decisions SET payout = NULL WHERE payout = 'x'",
                [],
            )
            .unwrap();
        same(&pg, &s);
        assert_eq!(got.operations, 2);
        assert_eq!(got.recorded_only, offers(&["4", "9"]));
        let o = outbox_pg(&pg).to_objects();
        assert_eq!(o[2]["state"], "pending");
        assert_eq!(o[3]["state"], "pending", "untouched");
        assert_eq!(o[4]["state"], "failed", "untouched");
        assert_eq!(o[7]["state"], "in_flight", "untouched");
        // "x" is no payout: approved without one.
        let d = decisions_pg(&pg).to_objects();
        assert_eq!(d[1]["external_id"], "3");
        assert_eq!(
            (d[1]["decision"].as_str(), &d[1]["payout"]),
            (Some("approved"), &serde_json::Value::Null)
        );
        assert_eq!(d[1]["decided_at"], NOW, "the earlier rejection replaced");
    }

    #[test]
    fn rejecting_holds_creates_and_approval_waits_but_never_what_is_under_way() {
        let (mut pg, _d, mut s) = seeded();
        let list = offers(&["1", "2", "4", "9"]);
        let got = pg.reject("t", &list, NOW).unwrap();
        assert_eq!(got, s.reject("t", &list, NOW).unwrap());
        same(&pg, &s);
        // 1: awaiting create; 2: held payout jump; 4: the pending create (not its failed update).
        assert_eq!(got.operations, 3);
        assert_eq!(got.recorded_only, offers(&["9"]));
        let o = outbox_pg(&pg).to_objects();
        let states: Vec<&str> = o.iter().map(|r| r["state"].as_str().unwrap()).collect();
        assert_eq!(
            states,
            [
                "rejected",
                "rejected",
                "rejected",
                "rejected",
                "failed",
                "awaiting_approval",
                "done",
                "in_flight"
            ]
        );
        assert_eq!(o[3]["last_error"], "rejected by an operator");
        // Approved later by name: released again, decision replaced.
        let again = pg
            .approve("t", &Selection::Offers(offers(&["4"])), NOW)
            .unwrap();
        assert_eq!(again.operations, 1);
        assert_eq!(outbox_pg(&pg).to_objects()[3]["state"], "pending");
        let d = decisions_pg(&pg).to_objects();
        assert_eq!(
            d.iter().find(|d| d["external_id"] == "4").unwrap()["decision"],
            "approved"
        );
    }

    #[test]
    fn detach_drops_what_waits_and_attach_only_undoes_a_detach() {
        let (mut pg, _d, mut s) = seeded();
        let (a, b) = (
            pg.outbox_tx(|tx| tx.detach("t", "s", "4", "by hand", NOW))
                .unwrap(),
            s.outbox_tx(|tx| tx.detach("t", "s", "4", "by hand", NOW))
                .unwrap(),
        );
        assert!(a && b);
        // Not held by the target: nothing happens.
        assert!(!pg
            .outbox_tx(|tx| tx.detach("t", "s", "1", "x", NOW))
            .unwrap());
        assert!(!s
            .outbox_tx(|tx| tx.detach("t", "s", "1", "x", NOW))
            .unwrap());
        same(&pg, &s);
        let ids: Vec<i64> = outbox_pg(&pg)
            .rows
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect();
        assert_eq!(
            ids,
            [1, 2, 3, 6, 7, 8],
            "4's pending and failed ops dropped"
        );
        let mapping = |pg: &Pg| {
            pg.table(
                "SELECT detached_at, detached_reason FROM target_offers WHERE target = 't' AND external_id = '4'",
                &[],
            )
            .unwrap()
            .rows
            .remove(0)
        };
        assert_eq!(
            mapping(&pg),
            [serde_json::Value::from(NOW), "by hand".into()]
        );
        assert!(
            !pg.outbox_tx(|tx| tx.attach("t", "s", "2")).unwrap(),
            "not detached"
        );
        assert!(
            !pg.outbox_tx(|tx| tx.attach("t", "s", "9")).unwrap(),
            "not held"
        );
        assert!(pg.outbox_tx(|tx| tx.attach("t", "s", "4")).unwrap());
        assert!(s.outbox_tx(|tx| tx.attach("t", "s", "4")).unwrap());
        assert!(
            !pg.outbox_tx(|tx| tx.attach("t", "s", "4")).unwrap(),
            "once"
        );
        assert_eq!(
            mapping(&pg),
            [serde_json::Value::Null, serde_json::Value::Null]
        );
        same(&pg, &s);
    }

    /// Through the planner: a manual target's create waits, approval releases it and later
    /// plans keep it released; a rejection stays rejected across plans. The same on SQLite.
    #[test]
    fn later_plans_honour_the_decisions() {
        let (mut pg, _d, mut s) = fresh_pair();
        let mut t = target("t", &["s"]);
        t.controls.approval = Approval::Manual;
        let cfg = [t];
        let planner = Targets(&cfg);
        let (mut a, mut b) = (offer("1"), offer("2"));
        let plan = |pg: &mut Pg, s: &mut Store, o: &crate::model::Offer| {
            pg_offer(pg, "s", o);
            lite_offer(s, "s", o);
            let mut tx = pg.client.get_mut().transaction().unwrap();
            super::super::planning::plan_offer(&mut tx, &planner, "s", o, NOW).unwrap();
            tx.commit().unwrap();
            let tx = s.conn_mut().transaction().unwrap();
            crate::store::planning::plan_offer(&tx, &planner, "s", o, NOW).unwrap();
            tx.commit().unwrap();
        };
        plan(&mut pg, &mut s, &a);
        plan(&mut pg, &mut s, &b);
        let states =
            |pg: &mut Pg| -> Vec<String> { pg_outbox(pg).into_iter().map(|r| r.5).collect() };
        assert_eq!(states(&mut pg), ["awaiting_approval", "awaiting_approval"]);
        let approved = Selection::Offers(offers(&["1"]));
        assert_eq!(
            pg.approve("t", &approved, NOW).unwrap(),
            s.approve("t", &approved, NOW).unwrap()
        );
        assert_eq!(
            pg.reject("t", &offers(&["2"]), NOW).unwrap(),
            s.reject("t", &offers(&["2"]), NOW).unwrap()
        );
        a.name = "Renamed".into();
        b.name = "Renamed too".into();
        plan(&mut pg, &mut s, &a);
        plan(&mut pg, &mut s, &b);
        assert_eq!(states(&mut pg), ["pending", "rejected"]);
        assert_eq!(pg_outbox(&mut pg), lite_outbox(&s));
        assert_eq!(decisions_pg(&pg), decisions_lite(&s));
    }

    /// A page writer that has updated an offer's row and is about to plan it (another host) is
    /// waited for: the approval then applies to the operation that page wrote, not to the one
    /// it replaced.
    #[test]
    fn an_approval_waits_for_a_page_planning_the_same_offer() {
        let (mut pg, mut writer) = two_on_one();
        pg.client.get_mut().batch_execute(SEED).unwrap();
        let mut page = writer.client.get_mut().transaction().unwrap();
        page.batch_execute("UPDATE offer_rows SET name = 'One, renamed' WHERE id = 1")
            .unwrap();
        let approver = std::thread::spawn(move || {
            let got = pg
                .approve("t", &Selection::Offers(offers(&["1"])), NOW)
                .unwrap();
            (pg, got)
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!approver.is_finished(), "the approval waits for the page");
        // The page's plan: the waiting create replaced (read without the decision).
        page.batch_execute(
            "UPDATE push_outbox SET payload = '{\"name\":\"One, renamed\",\"payout\":\"2.00\"}'
             WHERE id = 1 AND state = 'awaiting_approval'",
        )
        .unwrap();
        page.commit().unwrap();
        let (pg, got) = approver.join().unwrap();
        assert_eq!(got.operations, 1);
        let o = outbox_pg(&pg).to_objects();
        assert_eq!(o[0]["state"], "pending");
        let d = decisions_pg(&pg).to_objects();
        assert_eq!(
            d[0]["payout"], "2.00",
            "the payout of the operation the page wrote"
        );
    }
}
