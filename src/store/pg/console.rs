//! Read queries behind the operator console's pages on PostgreSQL, with the SQLite backend's
//! semantics (`../console.rs`) and the same indexes (none added):
//!
//! - offers: keyset pages in `(source, external_id)` order, the unique index of `offer_rows`
//!   (`offer_rows_source_external_id_key`); filters the index cannot answer are applied to a
//!   window of at most [`SCAN_WINDOW`] offers of that order, found by an index walk, and the
//!   page's scan is bounded by the window's last key, so a page reads at most `SCAN_WINDOW`
//!   rows whatever the mirror's size.
//! - one offer: the same index; its history by `offer_changes_by_offer (offer_id, id)`, its
//!   state on a target by `target_offers`' primary key and `push_outbox_by_offer`.
//! - approval queue, dead operations, outbox counts: `push_outbox_queue (target, state, id)`;
//!   the counts of every state in one round trip.
//! - last runs and held removals: `sync_runs_by_source (source, id)`.
//!
//! Text is compared in the database's collation: the order of the pages is that of the
//! `(source, external_id)` index, as on SQLite, and is SQLite's byte order when the database's
//! collation is `C` (`C.UTF-8`).

use super::query::{ascii_like, compact_json, contains_pattern};
use super::Pg;
use crate::store::console::{HeldRun, OfferLine, OfferPage, OfferQuery, QueuedOp, SCAN_WINDOW};
use crate::store::query::Table;
use crate::store::Result;
use postgres::types::ToSql;
use postgres::{GenericClient, IsolationLevel};

type Arg = Box<dyn ToSql + Sync>;

fn opt_text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The statements of one offers page: the query for the window's last key (run when the page
/// has filters), and the page's query bounded by `end`. The first `window_args` of `args` are
/// the end query's.
struct OffersSql {
    end: Option<String>,
    window_args: usize,
    page: String,
    args: Vec<Arg>,
}

fn offers_sql(q: &OfferQuery, end: Option<&(String, String)>) -> OffersSql {
    let mut args: Vec<Arg> = Vec::new();
    let arg = |v: Arg, args: &mut Vec<Arg>| {
        args.push(v);
        format!("${}", args.len())
    };
    let mut window = Vec::new();
    // With a source, the range is on `external_id` within it; without, on the row value
    // (a btree index condition in PostgreSQL).
    let source = opt_text(&q.source);
    if let Some(s) = source {
        let p = arg(Box::new(s.to_string()), &mut args);
        window.push(format!("source = {p}"));
        if let Some((_, id)) = q.after.as_ref().filter(|(a, _)| a == s) {
            let b = arg(Box::new(id.clone()), &mut args);
            window.push(format!("external_id > {b}"));
        }
    } else if let Some((s, id)) = &q.after {
        let a = arg(Box::new(s.clone()), &mut args);
        let b = arg(Box::new(id.clone()), &mut args);
        window.push(format!("(source, external_id) > ({a}, {b})"));
    }
    let window_args = args.len();
    let where_of = |conds: &[String]| {
        if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        }
    };
    let mut filters = Vec::new();
    if let Some(s) = opt_text(&q.status) {
        let p = arg(Box::new(s.to_string()), &mut args);
        filters.push(format!("o.status = {p}"));
    }
    if let Some(s) = opt_text(&q.approval) {
        let p = arg(Box::new(s.to_string()), &mut args);
        filters.push(format!("o.approval = {p}"));
    }
    if let Some(c) = opt_text(&q.country) {
        let p = arg(Box::new(c.to_ascii_uppercase()), &mut args);
        filters.push(format!("o.countries ? {p}"));
    }
    if let Some(t) = opt_text(&q.search) {
        let p = arg(Box::new(contains_pattern(t)), &mut args);
        filters.push(format!(
            "({} OR {})",
            ascii_like("o.name", &p),
            ascii_like("o.external_id", &p)
        ));
    }
    if let Some(v) = q.min_payout {
        let p = arg(Box::new(v), &mut args);
        filters.push(format!("o.payout::float8 >= {p}"));
    }
    if let Some(v) = q.max_payout {
        let p = arg(Box::new(v), &mut args);
        filters.push(format!("o.payout::float8 <= {p}"));
    }
    let end_sql = (!filters.is_empty()).then(|| {
        format!(
            "SELECT source, external_id FROM offer_rows {}
             ORDER BY source, external_id LIMIT 1 OFFSET {}",
            where_of(&window),
            SCAN_WINDOW - 1
        )
    });
    let mut conds = window;
    if let Some((s, id)) = end {
        let b = arg(Box::new(id.clone()), &mut args);
        if source.is_some() {
            conds.push(format!("external_id <= {b}"));
        } else {
            let a = arg(Box::new(s.clone()), &mut args);
            conds.push(format!("(source, external_id) <= ({a}, {b})"));
        }
    }
    conds.extend(filters);
    let page = format!(
        "SELECT o.source, o.external_id, o.name, o.status, o.payout::text, o.payout_unit, o.currency,
                o.payout_type, o.countries::text, o.approval
         FROM offer_rows o {}
         ORDER BY o.source, o.external_id LIMIT {}",
        where_of(&conds),
        q.limit.max(1) + 1
    );
    OffersSql {
        end: end_sql,
        window_args,
        page,
        args,
    }
}

/// Planner settings for a filtered offers page, local to its transaction. PostgreSQL estimates
/// a row-value range (`(source, external_id) > (a, b)`) by its first column only, so it takes a
/// window of 20,000 offers for most of the table and, when the filters look rare, prefers
/// reading the whole table and sorting it. The window is bounded by its keys: walking the
/// index in order reads at most `SCAN_WINDOW` rows and stops as soon as the page is full.
const INDEX_WALK: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                          SET LOCAL enable_sort = off";

/// The offers of a page's statement.
fn offer_lines(c: &mut impl GenericClient, stmt: &OffersSql) -> Result<Vec<OfferLine>> {
    c.query(stmt.page.as_str(), &refs(&stmt.args))?
        .iter()
        .map(|r| {
            Ok(OfferLine {
                source: r.try_get(0)?,
                external_id: r.try_get(1)?,
                name: r.try_get(2)?,
                status: r.try_get(3)?,
                payout: r.try_get(4)?,
                payout_unit: r.try_get(5)?,
                currency: r.try_get(6)?,
                payout_type: r.try_get(7)?,
                countries: compact_json(&r.try_get::<_, String>(8)?),
                approval: r.try_get(9)?,
            })
        })
        .collect()
}

fn refs(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref()).collect()
}

impl Pg {
    /// A page of offers (see the module's doc for what it reads).
    pub fn console_offers(&self, q: &OfferQuery) -> Result<OfferPage> {
        let limit = q.limit.max(1);
        let first = offers_sql(q, None);
        let mut c = self.client.borrow_mut();
        let (end, offers) = match &first.end {
            None => (None, offer_lines(&mut *c, &first)?),
            Some(end_sql) => {
                // Filters the index cannot answer: the page looks no further than the window's
                // last key, both statements in one snapshot, walking the index (see
                // INDEX_WALK).
                let mut tx = c
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?;
                tx.batch_execute(INDEX_WALK)?;
                let end: Option<(String, String)> = tx
                    .query_opt(end_sql.as_str(), &refs(&first.args[..first.window_args]))?
                    .map(|r| (r.get(0), r.get(1)));
                let offers = match &end {
                    Some(_) => offer_lines(&mut tx, &offers_sql(q, end.as_ref()))?,
                    None => offer_lines(&mut tx, &first)?,
                };
                tx.commit()?;
                (end, offers)
            }
        };
        Ok(OfferPage::of(offers, limit, end))
    }

    /// Every column of one offer (the `offers` view), or `None`.
    pub fn console_offer(&self, source: &str, external_id: &str) -> Result<Option<Table>> {
        let t = self.table(
            "SELECT * FROM offers WHERE source = $1 AND external_id = $2",
            &[&source, &external_id],
        )?;
        Ok((!t.rows.is_empty()).then_some(t))
    }

    /// One offer's change history, newest first (at most `limit`).
    pub fn console_history(&self, source: &str, external_id: &str, limit: usize) -> Result<Table> {
        self.table(
            &format!(
                "SELECT id, at, run_id, kind, diff FROM offer_changes
                 WHERE offer_id = (SELECT id FROM offer_rows WHERE source = $1 AND external_id = $2)
                 ORDER BY id DESC LIMIT {limit}"
            ),
            &[&source, &external_id],
        )
    }

    /// What `target` holds for one offer (the mapping) and its latest outbox rows.
    pub fn console_offer_on(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<(Table, Table)> {
        let key: [&(dyn ToSql + Sync); 3] = [&target, &source, &external_id];
        let mapping = self.table(
            "SELECT target_offer_id, state, payout_value, pushed_at, detached_at, detached_reason
             FROM target_offers WHERE target = $1 AND source = $2 AND external_id = $3",
            &key,
        )?;
        let ops = self.table(
            "SELECT id, op, state, attempts, last_error, created_at, done_at FROM push_outbox
             WHERE target = $1 AND source = $2 AND external_id = $3 ORDER BY id DESC LIMIT 10",
            &key,
        )?;
        Ok((mapping, ops))
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
        let mut c = self.client.borrow_mut();
        let total: i64 = c
            .query_one(
                "SELECT count(*) FROM push_outbox WHERE target = $1 AND state = $2",
                &[&target, &state],
            )?
            .get(0);
        let rows = c
            .query(
                "SELECT p.id, p.source, p.external_id, p.op, p.state, p.attempts, p.payload::text,
                        p.last_error, p.created_at, p.first_failed_at, o.name, o.payout::text,
                        o.currency, o.countries::text
                 FROM push_outbox p
                 LEFT JOIN offer_rows o ON o.source = p.source AND o.external_id = p.external_id
                 WHERE p.target = $1 AND p.state = $2 ORDER BY p.id LIMIT $3 OFFSET $4",
                &[&target, &state, &(limit as i64), &(offset as i64)],
            )?
            .iter()
            .map(|r| {
                Ok(QueuedOp {
                    id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    external_id: r.try_get(2)?,
                    op: r.try_get(3)?,
                    state: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    payload: compact_json(&r.try_get::<_, String>(6)?),
                    last_error: r.try_get(7)?,
                    created_at: r.try_get(8)?,
                    first_failed_at: r.try_get(9)?,
                    name: r.try_get(10)?,
                    payout: r.try_get(11)?,
                    currency: r.try_get(12)?,
                    countries: r
                        .try_get::<_, Option<String>>(13)?
                        .map(|c| compact_json(&c)),
                })
            })
            .collect::<Result<_>>()?;
        Ok((total, rows))
    }

    /// The removals `source`'s last complete run holds, if it was held.
    pub fn console_held(&self, source: &str) -> Result<Option<HeldRun>> {
        let row = self.client.borrow_mut().query_opt(
            "SELECT id, state, held_removals, offers_seen, error, finished_at FROM sync_runs
             WHERE source = $1 AND state IN ('complete', 'held') ORDER BY id DESC LIMIT 1",
            &[&source],
        )?;
        let Some(r) = row else { return Ok(None) };
        if r.try_get::<_, String>(1)? != "held" {
            return Ok(None);
        }
        Ok(Some(HeldRun {
            run_id: r.try_get(0)?,
            held_removals: r.try_get(2)?,
            offers_seen: r.try_get(3)?,
            error: r.try_get(4)?,
            finished_at: r.try_get(5)?,
        }))
    }

    /// `source`'s last run: state, reason, counts, rate-limit waits, timestamps, error.
    pub fn console_last_run(&self, source: &str) -> Result<Table> {
        self.table(
            "SELECT id, state, reason, started_at, finished_at, pages, offers_seen, added, changed,
                    removed, unchanged, rejected, held_removals, requests, retries, rate_limited, error
             FROM sync_runs WHERE source = $1 ORDER BY id DESC LIMIT 1",
            &[&source],
        )
    }

    /// `target`'s operations per state, each counted up to `cap` (`cap + 1` means "more"), all
    /// states in one statement: each count is a bounded walk of `push_outbox_queue`.
    pub fn console_outbox_counts(&self, target: &str, cap: i64) -> Result<Vec<(String, i64)>> {
        let states: Vec<&str> = crate::model::OutboxState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        self.client
            .borrow_mut()
            .query(OUTBOX_COUNTS, &[&target, &states, &(cap + 1)])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

const OUTBOX_COUNTS: &str = "SELECT u.state,
        (SELECT count(*) FROM (SELECT 1 FROM push_outbox p
                               WHERE p.target = $1 AND p.state = u.state LIMIT $3) capped)
     FROM unnest($2::text[]) WITH ORDINALITY AS u(state, n) ORDER BY u.n";

#[cfg(test)]
mod tests {
    use super::super::query::tests::{both, sqlite};
    use super::super::testing::fresh;
    use super::*;
    use crate::store::Store;
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// Offers `0..n` as in the SQLite backend's paging test, on both backends.
    fn many(n: usize) -> (Pg, tempfile::TempDir, Store) {
        let pg = fresh();
        pg.client
            .borrow_mut()
            .batch_execute(&format!(
                "INSERT INTO offer_rows (source, external_id, name, status, payout, countries,
                                         content_hash, first_seen_at, updated_at, raw)
                 SELECT CASE WHEN i < {third} THEN 'a' ELSE 'b' END, lpad(i::text, 8, '0'), 'x',
                        CASE WHEN i % 997 = 0 THEN 'paused' ELSE 'active' END, (i % 40)::text::numeric,
                        CASE WHEN i % 2 = 0 THEN '[\"US\"]' ELSE '[\"GB\"]' END::jsonb,
                        'h', 't', 't', '{{}}'
                 FROM generate_series(0, {last}) AS g(i);
                 ANALYZE offer_rows;",
                third = n / 3,
                last = n - 1
            ))
            .unwrap();
        let (dir, store) = sqlite();
        store
            .conn()
            .execute_batch(&format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {last})
                 INSERT INTO offer_rows (source, external_id, name, status, payout, countries,
                                         content_hash, first_seen_at, updated_at, raw)
                 SELECT CASE WHEN i < {third} THEN 'a' ELSE 'b' END, printf('%08d', i), 'x',
                        CASE WHEN i % 997 = 0 THEN 'paused' ELSE 'active' END, CAST(i % 40 AS TEXT),
                        CASE WHEN i % 2 = 0 THEN '[\"US\"]' ELSE '[\"GB\"]' END,
                        'h', 't', 't', '{{}}'
                 FROM g;",
                third = n / 3,
                last = n - 1
            ))
            .unwrap();
        (pg, dir, store)
    }

    /// A page as comparable text: its offers, where the next starts, where the scan stopped.
    fn shown(p: &OfferPage) -> String {
        format!("{:?} {:?} {:?}", p.offers, p.next, p.scanned_to)
    }

    /// Walk every page of `q` on both backends, page by page the same; the keys seen.
    fn walk(pg: &Pg, store: &Store, q: OfferQuery) -> (Vec<(String, String)>, usize) {
        let mut q = q;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let p = pg.console_offers(&q).unwrap();
            assert_eq!(
                shown(&p),
                shown(&store.console_offers(&q).unwrap()),
                "{q:?}"
            );
            pages += 1;
            seen.extend(
                p.offers
                    .iter()
                    .map(|o| (o.source.clone(), o.external_id.clone())),
            );
            match p.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
            assert!(pages < 1000);
        }
        (seen, pages)
    }

    /// Every page of a filtered walk: each match exactly once, in order, whatever the window,
    /// and each page the same as SQLite's.
    #[test]
    fn filtered_pages_visit_each_match_once_across_windows() {
        let n = SCAN_WINDOW * 2 + 5_000;
        let (pg, _dir, store) = many(n);
        let paused: Vec<(String, String)> = (0..n)
            .filter(|i| i % 997 == 0)
            .map(|i| {
                (
                    (if i < n / 3 { "a" } else { "b" }).to_string(),
                    format!("{i:08}"),
                )
            })
            .collect();
        let (seen, pages) = walk(
            &pg,
            &store,
            OfferQuery {
                status: Some("paused".into()),
                limit: 10,
                ..OfferQuery::default()
            },
        );
        assert_eq!(seen, paused, "in order, each once");
        assert!(pages >= 3, "windows were crossed: {pages}");
        // A source and a country and a payout range.
        let (seen, _) = walk(
            &pg,
            &store,
            OfferQuery {
                source: Some("b".into()),
                country: Some("us".into()),
                min_payout: Some(10.0),
                max_payout: Some(12.0),
                limit: 50,
                ..OfferQuery::default()
            },
        );
        let want: BTreeSet<String> = (n / 3..n)
            .filter(|i| i % 2 == 0 && (10..=12).contains(&(i % 40)))
            .map(|i| format!("{i:08}"))
            .collect();
        assert_eq!(
            seen.iter()
                .map(|(_, id)| id.clone())
                .collect::<BTreeSet<_>>(),
            want
        );
        assert!(seen.iter().all(|(s, _)| s == "b"));
        // Text search (ASCII case-insensitive) starting after a key of another source.
        let (seen, _) = walk(
            &pg,
            &store,
            OfferQuery {
                search: Some("0000099".into()),
                after: Some(("a".into(), "00000500".into())),
                limit: 3,
                ..OfferQuery::default()
            },
        );
        assert_eq!(seen.len(), 10, "00000990 to 00000999: {seen:?}");
        // Unfiltered: plain keyset pages.
        let (seen, _) = walk(
            &pg,
            &store,
            OfferQuery {
                limit: 5_000,
                ..OfferQuery::default()
            },
        );
        assert_eq!(seen.len(), n);
    }

    /// The plan of each statement an offers page runs: an index range walk of `offer_rows`,
    /// never a sequential scan, on a table five windows large.
    #[test]
    fn offers_pages_walk_the_unique_index() {
        let (pg, _dir, _store) = many(SCAN_WINDOW * 5);
        let after = |s: &str, id: &str| Some((s.to_string(), id.to_string()));
        let queries = [
            OfferQuery {
                limit: 50,
                ..OfferQuery::default()
            },
            OfferQuery {
                after: after("b", "00050000"),
                limit: 50,
                ..OfferQuery::default()
            },
            OfferQuery {
                status: Some("paused".into()),
                limit: 50,
                ..OfferQuery::default()
            },
            OfferQuery {
                status: Some("paused".into()),
                after: after("a", "00020000"),
                limit: 50,
                ..OfferQuery::default()
            },
            // Less than a window left: the page's query has no end bound.
            OfferQuery {
                status: Some("paused".into()),
                after: after("b", "00095000"),
                limit: 50,
                ..OfferQuery::default()
            },
            OfferQuery {
                source: Some("b".into()),
                country: Some("US".into()),
                search: Some("x".into()),
                min_payout: Some(3.0),
                max_payout: Some(30.0),
                after: after("b", "00050000"),
                limit: 50,
                ..OfferQuery::default()
            },
            OfferQuery {
                approval: Some("pending".into()),
                source: Some("a".into()),
                limit: 50,
                ..OfferQuery::default()
            },
        ];
        // With the page's planner settings when it has filters, as the verb runs it.
        let explain = |sql: &str, args: &[Arg], filtered: bool| -> String {
            let mut c = pg.client.borrow_mut();
            let mut tx = c.transaction().unwrap();
            if filtered {
                tx.batch_execute(INDEX_WALK).unwrap();
            }
            let plan: Vec<String> = tx
                .query(&format!("EXPLAIN {sql}"), &refs(args))
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains("offer_rows_source_external_id_key") && !plan.contains("Seq Scan"),
                "{sql}\n{plan}"
            );
            plan
        };
        let mut bounded = 0;
        for q in &queries {
            // The statements the verb runs, in its order.
            let first = offers_sql(q, None);
            let Some(end_sql) = &first.end else {
                explain(&first.page, &first.args, false);
                continue;
            };
            explain(end_sql, &first.args[..first.window_args], true);
            let end: Option<(String, String)> = pg
                .client
                .borrow_mut()
                .query_opt(end_sql.as_str(), &refs(&first.args[..first.window_args]))
                .unwrap()
                .map(|r| (r.get(0), r.get(1)));
            bounded += end.is_some() as usize;
            let page = offers_sql(q, end.as_ref());
            let plan = explain(&page.page, &page.args, true);
            assert!(plan.contains("Index Cond"), "{plan}");
        }
        assert_eq!(bounded, 4, "windows bounded the filtered pages but one");
    }

    /// The table with its JSON text cells (`raw`, `caps`, ...) parsed: jsonb keeps an
    /// object's keys in its own order (shorter keys first), not in the order SQLite stored.
    fn as_json(t: &Table) -> Table {
        let mut t = t.clone();
        for cell in t.rows.iter_mut().flatten() {
            let parsed = cell
                .as_str()
                .filter(|s| s.starts_with('{') || s.starts_with('['))
                .and_then(|s| serde_json::from_str(s).ok());
            if let Some(v) = parsed {
                *cell = v;
            }
        }
        t
    }

    #[test]
    fn one_offer_its_history_and_targets_are_the_same_tables() {
        let (pg, _dir, store) = both();
        for (s, id) in [
            ("alpha", "A-1"),
            ("alpha", "a-2"),
            ("alpha", "A-3"),
            ("beta", "B-2"),
        ] {
            assert_eq!(
                pg.console_offer(s, id).unwrap().map(|t| as_json(&t)),
                store.console_offer(s, id).unwrap().map(|t| as_json(&t)),
                "{s} {id}"
            );
            for limit in [1, 200] {
                assert_eq!(
                    pg.console_history(s, id, limit).unwrap(),
                    store.console_history(s, id, limit).unwrap()
                );
            }
            for target in ["aff", "other", "nobody"] {
                assert_eq!(
                    pg.console_offer_on(target, s, id).unwrap(),
                    store.console_offer_on(target, s, id).unwrap(),
                    "{target} {s} {id}"
                );
            }
        }
        assert_eq!(pg.console_offer("alpha", "none").unwrap(), None);
        let one = pg.console_offer("alpha", "A-1").unwrap().unwrap();
        let o = one.to_objects().remove(0);
        assert_eq!(o["payout"], "1.50");
        assert_eq!(o["payout_value"], 1.5);
        assert_eq!(o["revenue"], "2.00");
        assert_eq!(o["countries"], serde_json::json!(["US", "GB"]));
        assert_eq!(o["payouts"], r#"[{"amount":"1.50","country":"US"}]"#);
        assert_eq!(
            o["raw"],
            r#"{"id":"A-1","name":"Summer Sale","payout":1.50}"#
        );
        assert_eq!(o["last_seen_at"], "2024-05-02T10:00:00Z");
        // jsonb keeps neither the bytes nor the key order of a raw payload: the same JSON,
        // every other column the same.
        let (p, q) = (
            pg.console_offer("beta", "B-1").unwrap().unwrap(),
            store.console_offer("beta", "B-1").unwrap().unwrap(),
        );
        assert_eq!(p.columns, q.columns);
        let raw = p.columns.iter().position(|c| c == "raw").unwrap();
        let json = |t: &Table| -> Value {
            serde_json::from_str(t.rows[0][raw].as_str().unwrap()).unwrap()
        };
        assert_eq!(json(&p), json(&q));
        assert_eq!(p.rows[0][..raw], q.rows[0][..raw]);
        assert_eq!(p.rows[0][3 + 1], "-2.5");
        let (mapping, ops) = pg.console_offer_on("aff", "beta", "B-1").unwrap();
        assert_eq!(mapping.rows[0][2], Value::from(3.0));
        assert_eq!(mapping.rows[0][4], "2024-05-03T09:00:00Z");
        assert_eq!(ops.rows.len(), 1);
        let (_, ops) = pg.console_offer_on("aff", "alpha", "A-1").unwrap();
        assert_eq!(
            ops.rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
            [Value::from(3), Value::from(1)]
        );
        let h = pg.console_history("alpha", "A-1", 1).unwrap();
        assert_eq!(h.rows.len(), 1);
        assert_eq!(h.rows[0][0], 3);
    }

    #[test]
    fn queue_runs_and_counts_are_the_same_as_sqlite() {
        let (pg, _dir, store) = both();
        for (target, state, limit, offset) in [
            ("aff", "awaiting_approval", 10, 0),
            ("aff", "failed", 10, 0),
            ("aff", "dead", 10, 0),
            ("other", "pending", 10, 0),
            ("other", "pending", 10, 1),
            ("aff", "rejected", 0, 0),
            ("nobody", "pending", 10, 0),
        ] {
            let (pt, pr) = pg.console_queue(target, state, limit, offset).unwrap();
            let (st, sr) = store.console_queue(target, state, limit, offset).unwrap();
            assert_eq!(pt, st);
            assert_eq!(format!("{pr:?}"), format!("{sr:?}"), "{target} {state}");
        }
        let (total, ops) = pg.console_queue("aff", "failed", 10, 0).unwrap();
        assert_eq!(total, 1);
        assert_eq!(ops[0].payload, r#"{"payout":"1.50"}"#);
        assert_eq!(ops[0].payout.as_deref(), Some("1.50"));
        assert_eq!(ops[0].countries.as_deref(), Some(r#"["US","GB"]"#));
        assert_eq!(
            ops[0].first_failed_at.as_deref(),
            Some("2024-05-02T10:03:00Z")
        );
        let (total, ops) = pg.console_queue("other", "pending", 10, 1).unwrap();
        assert_eq!((total, ops.len()), (1, 0));

        for source in ["alpha", "beta", "gamma", "zeta"] {
            assert_eq!(
                format!("{:?}", pg.console_held(source).unwrap()),
                format!("{:?}", store.console_held(source).unwrap())
            );
            assert_eq!(
                pg.console_last_run(source).unwrap(),
                store.console_last_run(source).unwrap()
            );
        }
        let held = pg.console_held("alpha").unwrap().unwrap();
        assert_eq!(
            (held.run_id, held.held_removals, held.offers_seen),
            (3, 2, 3)
        );
        assert!(
            pg.console_held("beta").unwrap().is_none(),
            "failed runs hold nothing"
        );
        // A complete run after the held one: nothing is held any more.
        pg.client
            .borrow_mut()
            .batch_execute(
                "INSERT INTO sync_runs (id, source, started_at, state) VALUES (9, 'alpha', 't', 'complete')",
            )
            .unwrap();
        assert!(pg.console_held("alpha").unwrap().is_none());
        assert_eq!(pg.console_last_run("alpha").unwrap().rows[0][0], 9);

        for (target, cap) in [("aff", 100), ("other", 100), ("nobody", 5)] {
            assert_eq!(
                pg.console_outbox_counts(target, cap).unwrap(),
                store.console_outbox_counts(target, cap).unwrap()
            );
        }
        // Capped: `cap + 1` says "more than cap".
        pg.client
            .borrow_mut()
            .batch_execute(
                "INSERT INTO push_outbox (id, target, source, external_id, op, payload, state, created_at)
                 SELECT 100 + i, 'aff', 'alpha', 'x' || i, 'create', '{}', 'done', 't' FROM generate_series(1, 20) i",
            )
            .unwrap();
        let counts = pg.console_outbox_counts("aff", 5).unwrap();
        let want: Vec<&str> = crate::model::OutboxState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            counts.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            want
        );
        let n = |s: &str| counts.iter().find(|(x, _)| x == s).unwrap().1;
        assert_eq!(n("done"), 6);
        assert_eq!(n("failed"), 1);
        assert_eq!(n("pending"), 0);
    }

    /// The console's other reads can use their indexes (checked with sequential scans
    /// disabled: a plan that still scans has no index to use).
    #[test]
    fn point_reads_use_indexes() {
        let pg = fresh();
        let mut c = pg.client.borrow_mut();
        c.batch_execute("SET enable_seqscan = off").unwrap();
        for sql in [
            "SELECT * FROM offers WHERE source = 'a' AND external_id = 'b'",
            "SELECT id FROM offer_changes WHERE offer_id = (SELECT id FROM offer_rows WHERE source = 'a' AND external_id = 'b') ORDER BY id DESC LIMIT 5",
            "SELECT target_offer_id FROM target_offers WHERE target = 't' AND source = 'a' AND external_id = 'b'",
            "SELECT id FROM push_outbox WHERE target = 't' AND source = 'a' AND external_id = 'b' ORDER BY id DESC LIMIT 10",
            "SELECT count(*) FROM push_outbox WHERE target = 't' AND state = 'dead'",
            "SELECT p.id, o.name FROM push_outbox p LEFT JOIN offer_rows o ON o.source = p.source AND o.external_id = p.external_id WHERE p.target = 't' AND p.state = 'dead' ORDER BY p.id LIMIT 10 OFFSET 5",
            "SELECT id FROM sync_runs WHERE source = 'a' AND state IN ('complete', 'held') ORDER BY id DESC LIMIT 1",
            "SELECT id FROM sync_runs WHERE source = 'a' ORDER BY id DESC LIMIT 1",
        ] {
            let plan: Vec<String> = c
                .query(&format!("EXPLAIN {sql}"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(!plan.join("\n").contains("Seq Scan"), "{sql}\n{}", plan.join("\n"));
        }
        let states: Vec<&str> = vec!["pending", "done"];
        let plan: Vec<String> = c
            .query(
                &format!("EXPLAIN {OUTBOX_COUNTS}"),
                &[&"t", &states, &5_i64],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Only Scan") && !plan.contains("Seq Scan"),
            "{plan}"
        );
    }
}
