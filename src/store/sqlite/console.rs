//! Read queries behind the operator console's pages. Every one is served by an existing index,
//! whatever the mirror's size (no index was added for the console: the page-write path pays for
//! each index on `offer_rows`):
//!
//! - offers: keyset pages in `(source, external_id)` order, the unique index of `offer_rows`.
//!   Filters the index cannot answer (status, country, payout, approval, text) are applied to a
//!   window of at most [`SCAN_WINDOW`] offers of that order; a page that did not fill within
//!   the window says where the scan stopped, and the next page continues from there. A page thus
//!   reads at most `SCAN_WINDOW` rows, never the whole table.
//! - one offer: the same index; its history by `offer_changes_by_offer`, its state on each
//!   target by `target_offers`' primary key and `push_outbox_by_offer`.
//! - approval queue, dead operations, outbox counts: `push_outbox_queue (target, state, id)`.
//! - last runs and held removals: `sync_runs_by_source (source, id)`.

use super::query::Table;
use super::{Result, Sqlite};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension};

/// The most offers one offers page examines for the filters no index answers.
pub const SCAN_WINDOW: usize = 20_000;

/// What the offers page asks for. Empty strings are no filter.
#[derive(Debug, Clone, Default)]
pub struct OfferQuery {
    pub source: Option<String>,
    pub status: Option<String>,
    /// ISO alpha-2, matched in `countries`.
    pub country: Option<String>,
    /// The source-side approval state.
    pub approval: Option<String>,
    /// Name or external id contains this (case-insensitive for ASCII).
    pub search: Option<String>,
    pub min_payout: Option<f64>,
    pub max_payout: Option<f64>,
    /// Start after this `(source, external_id)`.
    pub after: Option<(String, String)>,
    pub limit: usize,
}

/// One line of the offers page.
#[derive(Debug, Clone)]
pub struct OfferLine {
    pub source: String,
    pub external_id: String,
    pub name: String,
    pub status: String,
    pub payout: Option<String>,
    pub payout_unit: String,
    pub currency: Option<String>,
    pub payout_type: Option<String>,
    pub countries: String,
    pub approval: Option<String>,
}

/// A page of offers and where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct OfferPage {
    pub offers: Vec<OfferLine>,
    /// Where the next page starts, when there may be more.
    pub next: Option<(String, String)>,
    /// The window was used up before the page filled: the offers examined.
    pub scanned_to: Option<(String, String)>,
}

impl OfferPage {
    /// The page from up to `limit + 1` matching offers read in key order, and `end`, the last
    /// key of the scan window when the window (not the matches) ended the read. Both backends'
    /// pages are made here.
    pub(crate) fn of(
        mut offers: Vec<OfferLine>,
        limit: usize,
        end: Option<(String, String)>,
    ) -> OfferPage {
        let mut page = OfferPage::default();
        if offers.len() > limit {
            offers.truncate(limit);
            page.next = offers
                .last()
                .map(|o| (o.source.clone(), o.external_id.clone()));
        } else if let Some(end) = end {
            // Not filled within the window: continue after it.
            page.next = Some(end.clone());
            page.scanned_to = Some(end);
        }
        page.offers = offers;
        page
    }
}

/// An outbox row as the console shows it, with the offer's current name and payout.
#[derive(Debug, Clone)]
pub struct QueuedOp {
    pub id: i64,
    pub source: String,
    pub external_id: String,
    pub op: String,
    pub state: String,
    pub attempts: i64,
    pub payload: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub first_failed_at: Option<String>,
    pub name: Option<String>,
    pub payout: Option<String>,
    pub currency: Option<String>,
    pub countries: Option<String>,
}

/// A source's last complete (or held) run, when it holds removals.
#[derive(Debug, Clone)]
pub struct HeldRun {
    pub run_id: i64,
    pub held_removals: i64,
    pub offers_seen: i64,
    pub error: Option<String>,
    pub finished_at: Option<String>,
}

fn opt_text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Sqlite {
    /// A page of offers (see the module's doc for what it reads).
    pub fn console_offers(&self, q: &OfferQuery) -> Result<OfferPage> {
        let mut window = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        let arg = |v: SqlValue, args: &mut Vec<SqlValue>| {
            args.push(v);
            format!("?{}", args.len())
        };
        // Bounds written the way SQLite turns them into an index range: with a source, on
        // `external_id` alone; without, as row values.
        let source = opt_text(&q.source);
        if let Some(s) = source {
            let p = arg(SqlValue::Text(s.into()), &mut args);
            window.push(format!("source = {p}"));
            if let Some((_, id)) = q.after.as_ref().filter(|(a, _)| a == s) {
                let b = arg(SqlValue::Text(id.clone()), &mut args);
                window.push(format!("external_id > {b}"));
            }
        } else if let Some((s, id)) = &q.after {
            let a = arg(SqlValue::Text(s.clone()), &mut args);
            let b = arg(SqlValue::Text(id.clone()), &mut args);
            window.push(format!("(source, external_id) > ({a}, {b})"));
        }
        let window_where = if window.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", window.join(" AND "))
        };
        let window_args = args.clone();
        let mut filters = Vec::new();
        if let Some(s) = opt_text(&q.status) {
            let p = arg(SqlValue::Text(s.into()), &mut args);
            filters.push(format!("o.status = {p}"));
        }
        if let Some(s) = opt_text(&q.approval) {
            let p = arg(SqlValue::Text(s.into()), &mut args);
            filters.push(format!("o.approval = {p}"));
        }
        if let Some(c) = opt_text(&q.country) {
            let p = arg(SqlValue::Text(c.to_ascii_uppercase()), &mut args);
            filters.push(format!(
                "EXISTS (SELECT 1 FROM json_each(o.countries) WHERE value = {p})"
            ));
        }
        if let Some(t) = opt_text(&q.search) {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let p = arg(SqlValue::Text(format!("%{escaped}%")), &mut args);
            filters.push(format!(
                "(o.name LIKE {p} ESCAPE '\\' OR o.external_id LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(v) = q.min_payout {
            let p = arg(SqlValue::Real(v), &mut args);
            filters.push(format!("CAST(o.payout AS REAL) >= {p}"));
        }
        if let Some(v) = q.max_payout {
            let p = arg(SqlValue::Real(v), &mut args);
            filters.push(format!("CAST(o.payout AS REAL) <= {p}"));
        }
        let filtered = !filters.is_empty();
        let limit = q.limit.max(1);
        // With filters the index cannot answer, the page looks no further than the window's
        // last key (an index-only walk of at most SCAN_WINDOW entries).
        let end: Option<(String, String)> = if filtered {
            self.conn
                .prepare_cached(&format!(
                    "SELECT source, external_id FROM offer_rows {window_where}
                     ORDER BY source, external_id LIMIT 1 OFFSET {}",
                    SCAN_WINDOW - 1
                ))?
                .query_row(rusqlite::params_from_iter(window_args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
        } else {
            None
        };
        let mut conds: Vec<String> = window;
        if let Some((s, id)) = &end {
            let b = arg(SqlValue::Text(id.clone()), &mut args);
            if source.is_some() {
                conds.push(format!("external_id <= {b}"));
            } else {
                let a = arg(SqlValue::Text(s.clone()), &mut args);
                conds.push(format!("(source, external_id) <= ({a}, {b})"));
            }
        }
        conds.extend(filters);
        let sql = format!(
            "SELECT o.source, o.external_id, o.name, o.status, o.payout, o.payout_unit, o.currency,
                    o.payout_type, o.countries, o.approval
             FROM offer_rows o {}
             ORDER BY o.source, o.external_id LIMIT {}",
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            },
            limit + 1
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let offers: Vec<OfferLine> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok(OfferLine {
                    source: r.get(0)?,
                    external_id: r.get(1)?,
                    name: r.get(2)?,
                    status: r.get(3)?,
                    payout: r.get(4)?,
                    payout_unit: r.get(5)?,
                    currency: r.get(6)?,
                    payout_type: r.get(7)?,
                    countries: r.get(8)?,
                    approval: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(OfferPage::of(offers, limit, end))
    }

    /// Every column of one offer (the `offers` view), or `None`.
    pub fn console_offer(&self, source: &str, external_id: &str) -> Result<Option<Table>> {
        let t = self.console_table(
            "SELECT * FROM offers WHERE source = ?1 AND external_id = ?2",
            vec![
                SqlValue::Text(source.into()),
                SqlValue::Text(external_id.into()),
            ],
        )?;
        Ok((!t.rows.is_empty()).then_some(t))
    }

    /// One offer's change history, newest first (at most `limit`).
    pub fn console_history(&self, source: &str, external_id: &str, limit: usize) -> Result<Table> {
        self.console_table(
            &format!(
                "SELECT id, at, run_id, kind, diff FROM offer_changes
                 WHERE offer_id = (SELECT id FROM offer_rows WHERE source = ?1 AND external_id = ?2)
                 ORDER BY id DESC LIMIT {limit}"
            ),
            vec![
                SqlValue::Text(source.into()),
                SqlValue::Text(external_id.into()),
            ],
        )
    }

    /// What `target` holds for one offer (the mapping) and its latest outbox rows.
    pub fn console_offer_on(
        &self,
        target: &str,
        source: &str,
        external_id: &str,
    ) -> Result<(Table, Table)> {
        let key = vec![
            SqlValue::Text(target.into()),
            SqlValue::Text(source.into()),
            SqlValue::Text(external_id.into()),
        ];
        let mapping = self.console_table(
            "SELECT target_offer_id, state, payout_value, pushed_at, detached_at, detached_reason
             FROM target_offers WHERE target = ?1 AND source = ?2 AND external_id = ?3",
            key.clone(),
        )?;
        let ops = self.console_table(
            "SELECT id, op, state, attempts, last_error, created_at, done_at FROM push_outbox
             WHERE target = ?1 AND source = ?2 AND external_id = ?3 ORDER BY id DESC LIMIT 10",
            key,
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
        let total: i64 = self.conn.query_row(
            "SELECT count(*) FROM push_outbox WHERE target = ?1 AND state = ?2",
            params![target, state],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.source, p.external_id, p.op, p.state, p.attempts, p.payload, p.last_error,
                    p.created_at, p.first_failed_at, o.name, o.payout, o.currency, o.countries
             FROM push_outbox p
             LEFT JOIN offer_rows o ON o.source = p.source AND o.external_id = p.external_id
             WHERE p.target = ?1 AND p.state = ?2 ORDER BY p.id LIMIT ?3 OFFSET ?4",
        )?;
        let rows = stmt
            .query_map(params![target, state, limit as i64, offset as i64], |r| {
                Ok(QueuedOp {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    external_id: r.get(2)?,
                    op: r.get(3)?,
                    state: r.get(4)?,
                    attempts: r.get(5)?,
                    payload: r.get(6)?,
                    last_error: r.get(7)?,
                    created_at: r.get(8)?,
                    first_failed_at: r.get(9)?,
                    name: r.get(10)?,
                    payout: r.get(11)?,
                    currency: r.get(12)?,
                    countries: r.get(13)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok((total, rows))
    }

    /// The removals `source`'s last complete run holds, if it was held.
    pub fn console_held(&self, source: &str) -> Result<Option<HeldRun>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, state, held_removals, offers_seen, error, finished_at FROM sync_runs
                 WHERE source = ?1 AND state IN ('complete', 'held') ORDER BY id DESC LIMIT 1",
                [source],
                |r| {
                    let state: String = r.get(1)?;
                    Ok((state == "held").then(|| -> rusqlite::Result<HeldRun> {
                        Ok(HeldRun {
                            run_id: r.get(0)?,
                            held_removals: r.get(2)?,
                            offers_seen: r.get(3)?,
                            error: r.get(4)?,
                            finished_at: r.get(5)?,
                        })
                    }))
                },
            )
            .optional()?
            .flatten()
            .transpose()?)
    }

    /// `source`'s last run: state, reason, counts, rate-limit waits, timestamps, error.
    pub fn console_last_run(&self, source: &str) -> Result<Table> {
        self.console_table(
            "SELECT id, state, reason, started_at, finished_at, pages, offers_seen, added, changed,
                    removed, unchanged, rejected, held_removals, requests, retries, rate_limited, error
             FROM sync_runs WHERE source = ?1 ORDER BY id DESC LIMIT 1",
            vec![SqlValue::Text(source.into())],
        )
    }

    /// `target`'s operations per state, each counted up to `cap` (`cap + 1` means "more"): a
    /// count walks its range of `push_outbox_queue`, so a million `done` rows would cost tens
    /// of milliseconds on every overview.
    pub fn console_outbox_counts(&self, target: &str, cap: i64) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM push_outbox WHERE target = ?1 AND state = ?2 LIMIT ?3)",
        )?;
        crate::model::OutboxState::ALL
            .iter()
            .map(|s| {
                let n: i64 = stmt.query_row(params![target, s.as_str(), cap + 1], |r| r.get(0))?;
                Ok((s.as_str().to_string(), n))
            })
            .collect()
    }

    fn console_table(&self, sql: &str, args: Vec<SqlValue>) -> Result<Table> {
        self.table(sql, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every page of a filtered walk: each match exactly once, in order, whatever the window.
    #[test]
    fn filtered_pages_visit_each_match_once_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::Sqlite::open(
            &dir.path().join("m.db"),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let n = SCAN_WINDOW * 2 + 5_000;
        let tx = store.conn.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO offer_rows (source, external_id, name, status, payout, countries,
                                             content_hash, first_seen_at, updated_at, raw)
                     VALUES (?1, ?2, 'x', ?3, ?4, ?5, 'h', 't', 't', '{}')",
                )
                .unwrap();
            for i in 0..n {
                let source = if i < n / 3 { "a" } else { "b" };
                let status = if i % 997 == 0 { "paused" } else { "active" };
                let countries = if i % 2 == 0 { "[\"US\"]" } else { "[\"GB\"]" };
                ins.execute(params![
                    source,
                    format!("{i:08}"),
                    status,
                    format!("{}", i % 40),
                    countries
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        let walk = |q: OfferQuery| {
            let mut q = q;
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let p = store.console_offers(&q).unwrap();
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
        };
        let paused: Vec<(String, String)> = (0..n)
            .filter(|i| i % 997 == 0)
            .map(|i| {
                (
                    (if i < n / 3 { "a" } else { "b" }).to_string(),
                    format!("{i:08}"),
                )
            })
            .collect();
        let (seen, pages) = walk(OfferQuery {
            status: Some("paused".into()),
            limit: 10,
            ..OfferQuery::default()
        });
        assert_eq!(seen, paused, "in order, each once");
        assert!(pages >= 3, "windows were crossed: {pages}");
        // A source and a country and a payout range.
        let (seen, _) = walk(OfferQuery {
            source: Some("b".into()),
            country: Some("us".into()),
            min_payout: Some(10.0),
            max_payout: Some(12.0),
            limit: 50,
            ..OfferQuery::default()
        });
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
        // Unfiltered: plain keyset pages.
        let (seen, _) = walk(OfferQuery {
            limit: 5_000,
            ..OfferQuery::default()
        });
        assert_eq!(seen.len(), n);
    }
}
