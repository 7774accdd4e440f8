//! Writes to the mirror on PostgreSQL: the pages of a run, all in one transaction (upserts,
//! change records, rejections, run counters, lease heartbeat), and reading offers back.
//!
//! A call to [`Pg::apply_pages`] is a handful of statements whatever the number of offers in
//! its pages, so a round trip is paid per statement and not per offer:
//! 1. the heartbeat (which also keeps the lease row locked until the commit: a takeover waits);
//! 2. one lookup of every id of the pages (`external_id = ANY($2)`, the narrow `offer_seen`
//!    columns only), after which every offer is classified in memory, in page order, exactly as
//!    the SQLite loop does: an id already seen by this run (in an earlier call, earlier in these
//!    pages, or marked seen by a rejection of an earlier page) is a duplicate, an unknown one
//!    new, a live one with the same hash unchanged, any other a candidate change;
//! 3. the old rows of the candidate changes (one `id = ANY($1)`), diffed in memory with
//!    `model::diff` (no difference: only the hash is refreshed, counted unchanged);
//! 4. one statement per kind of write, over arrays (`unnest`): new rows with their `offer_seen`
//!    rows, the unchanged offers marked seen, the changed rows rewritten, their change records
//!    (in the order the offers came, as on SQLite), the rejected ids marked seen, the
//!    rejections, and the run counters.
//!
//! Statements on this path are sent typed (`query_typed`): one round trip each, no prepare.

use super::super::{PageBatch, PageCounts, Result, StoreError, StoredOffer};
use super::lease::heartbeat;
use super::{offer_columns_of, offer_from_row, Pg, OFFER_COLUMNS};
use crate::model::{diff, ChangeKind, Columns, Offer, OfferStatus, PayoutType, Planner, SourcedOffer};
use postgres::types::{ToSql, Type};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The wide columns a page writes from an offer, with the cast each text value needs, in the
/// order of [`wide_values`].
const WIDE: [(&str, &str); 24] = [
    ("name", ""),
    ("status", ""),
    ("payout", "::numeric"),
    ("currency", ""),
    ("payout_type", ""),
    ("revenue", "::numeric"),
    ("countries", "::jsonb"),
    ("platforms", "::jsonb"),
    ("categories", "::jsonb"),
    ("tracking_url", ""),
    ("preview_url", ""),
    ("advertiser", ""),
    ("description", ""),
    ("icon_url", ""),
    ("app_package", ""),
    ("starts_at", ""),
    ("ends_at", ""),
    ("payouts", "::jsonb"),
    ("payout_unit", ""),
    ("excluded_countries", "::jsonb"),
    ("approval", ""),
    ("caps", "::jsonb"),
    ("content_hash", ""),
    ("raw", "::jsonb"),
];

/// An offer's [`WIDE`] values, as text.
fn wide_values<'a>(item: &'a SourcedOffer, k: &'a Columns) -> [Option<&'a str>; 24] {
    let o = &item.offer;
    [
        Some(o.name.as_str()),
        Some(o.status.as_str()),
        k.payout.as_deref(),
        o.currency.as_deref(),
        o.payout_type.map(PayoutType::as_str),
        k.revenue.as_deref(),
        Some(k.countries.as_str()),
        Some(k.platforms.as_str()),
        Some(k.categories.as_str()),
        o.tracking_url.as_deref(),
        o.preview_url.as_deref(),
        o.advertiser.as_deref(),
        o.description.as_deref(),
        o.icon_url.as_deref(),
        o.app_package.as_deref(),
        k.starts_at.as_deref(),
        k.ends_at.as_deref(),
        Some(k.payouts.as_str()),
        Some(o.payout_unit.as_str()),
        Some(k.excluded_countries.as_str()),
        o.approval.map(|a| a.as_str()),
        Some(k.caps.as_str()),
        Some(item.content_hash.as_str()),
        Some(item.raw.as_str()),
    ]
}

/// `$first::text[], $first+1::text[], ...` for the [`WIDE`] arrays, and the `u.` column list.
fn wide_unnest(first: usize) -> (String, String) {
    let arrays = (0..WIDE.len())
        .map(|i| format!("${}::text[]", first + i))
        .collect::<Vec<_>>()
        .join(", ");
    let names = WIDE.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
    (arrays, names)
}

/// New offers: their wide rows and their `offer_seen` rows in one statement. `$1` source,
/// `$2` now, `$3` run, `$4` external ids, then the [`WIDE`] arrays.
static INSERT_NEW: LazyLock<String> = LazyLock::new(|| {
    let (arrays, names) = wide_unnest(5);
    let values = WIDE
        .iter()
        .map(|(c, cast)| format!("u.{c}{cast}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH ins AS (
             INSERT INTO offer_rows (source, external_id, {names}, first_seen_at, updated_at)
             SELECT $1, u.external_id, {values}, $2, $2
             FROM unnest($4::text[], {arrays}) WITH ORDINALITY AS u(external_id, {names}, ord)
             ORDER BY u.ord
             ON CONFLICT (source, external_id) DO NOTHING
             RETURNING id, external_id, content_hash
         ), seen AS (
             INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at, live_hash)
             SELECT id, $3, $2, content_hash FROM ins
         )
         SELECT id, external_id FROM ins"
    )
});

/// Changed offers rewritten, and their `offer_seen` rows (the new live hash). `$1` now, `$2` run,
/// `$3` ids, `$4` whether the canonical content changed (else `updated_at` stays), then the
/// [`WIDE`] arrays.
static REWRITE: LazyLock<String> = LazyLock::new(|| {
    let (arrays, names) = wide_unnest(5);
    let sets = WIDE
        .iter()
        .map(|(c, cast)| format!("{c} = u.{c}{cast}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH up AS (
             UPDATE offer_rows o SET {sets},
                    updated_at = CASE WHEN u.touch THEN $1 ELSE o.updated_at END, removed_at = NULL
             FROM unnest($3::bigint[], $4::boolean[], {arrays}) AS u(id, touch, {names})
             WHERE o.id = u.id
             RETURNING o.id, o.content_hash
         )
         UPDATE offer_seen s SET last_run_id = $2, last_seen_at = $1, missed_runs = 0,
                live_hash = up.content_hash
         FROM up WHERE s.offer_id = up.id"
    )
});

/// A typed parameter.
type P<'a> = (&'a (dyn ToSql + Sync), Type);

/// A `StoreError::Pg` from inside a verb, named with the database it happened on.
pub(crate) fn named(shown: &str) -> impl Fn(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Pg { source, .. } => StoreError::Pg {
            at: shown.to_string(),
            source,
        },
        e => e,
    }
}

impl Pg {
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
        let shown = self.shown.clone();
        let mut tx = self.client.get_mut().transaction()?;
        let counts = apply_in(&mut tx, run_id, source, holder, pages, planner, now)
            .map_err(named(&shown))?;
        tx.commit().map_err(|e| named(&shown)(e.into()))?;
        Ok(counts)
    }
}

/// What the page walk decided for one offer that is written.
enum Write {
    /// Index into the new offers.
    New(usize),
    /// Index into the candidate changes.
    Candidate(usize),
}

/// A known offer, from the lookup.
struct Known {
    id: i64,
    /// `None` when the offer has a wide row but no `offer_seen` row (an inconsistent mirror).
    seen: Option<(Option<String>, i64)>,
}

/// A known offer whose hash differs: its row id, its page, and (once diffed) what it is.
struct Candidate<'a> {
    id: i64,
    page: usize,
    item: &'a SourcedOffer,
    kind: Option<ChangeKind>,
    diff: String,
}

#[allow(clippy::too_many_arguments)]
fn apply_in(
    tx: &mut postgres::Transaction<'_>,
    run_id: i64,
    source: &str,
    holder: &str,
    pages: &[PageBatch],
    planner: &dyn Planner,
    now: &str,
) -> Result<Vec<PageCounts>> {
    heartbeat(tx, source, holder)?;
    // A page lost to a crash of the database server is fetched again by the next run (the
    // same trade as SQLite's synchronous=NORMAL); only this transaction, never the outbox's.
    tx.batch_execute("SET LOCAL synchronous_commit = off")?;
    let mut counts = vec![PageCounts::default(); pages.len()];
    if pages.iter().all(|p| p.offers.is_empty() && p.rejected_ids.is_empty()) {
        run_counters(tx, run_id, pages, &counts)?;
        return Ok(counts);
    }

    // 2. What the mirror has of every id in these pages.
    let mut ids: Vec<&str> = Vec::new();
    {
        let mut unique = HashSet::new();
        for p in pages {
            for id in p
                .offers
                .iter()
                .map(|o| o.offer.external_id.as_str())
                .chain(p.rejected_ids.iter().map(String::as_str))
            {
                if unique.insert(id) {
                    ids.push(id);
                }
            }
        }
    }
    let rows = tx.query_typed(
        "SELECT o.external_id, o.id, s.offer_id IS NOT NULL, s.live_hash, s.last_run_id
         FROM offer_rows o LEFT JOIN offer_seen s ON s.offer_id = o.id
         WHERE o.source = $1 AND o.external_id = ANY($2)",
        &[(&source, Type::TEXT), (&ids, Type::TEXT_ARRAY)],
    )?;
    let known: HashMap<String, Known> = rows
        .iter()
        .map(|r| {
            let has_seen: bool = r.get(2);
            (
                r.get(0),
                Known {
                    id: r.get(1),
                    seen: has_seen.then(|| (r.get(3), r.get(4))),
                },
            )
        })
        .collect();

    // The walk, in page order, as SQLite's loop (see the module docs).
    let mut seen_now: HashSet<&str> = HashSet::new();
    let seen_before = |id: &str| {
        known
            .get(id)
            .and_then(|k| k.seen.as_ref())
            .is_some_and(|(_, last_run)| *last_run == run_id)
    };
    let mut new: Vec<&SourcedOffer> = Vec::new();
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    let mut unchanged: Vec<i64> = Vec::new();
    let mut order: Vec<Write> = Vec::new();
    for (pi, page) in pages.iter().enumerate() {
        let c = &mut counts[pi];
        for item in &page.offers {
            c.seen += 1;
            let id = item.offer.external_id.as_str();
            if seen_now.contains(id) || seen_before(id) {
                c.duplicates += 1;
                continue;
            }
            seen_now.insert(id);
            match known.get(id) {
                None => {
                    order.push(Write::New(new.len()));
                    new.push(item);
                    c.added += 1;
                }
                Some(Known { seen: None, .. }) => {
                    return Err(StoreError::Inconsistent(format!(
                        "offer {source}/{id} has a row in offer_rows but none in offer_seen"
                    )))
                }
                Some(Known {
                    id: row,
                    seen: Some((live, _)),
                }) => {
                    if live.as_deref() == Some(item.content_hash.as_str()) {
                        unchanged.push(*row);
                        c.unchanged += 1;
                    } else {
                        order.push(Write::Candidate(candidates.len()));
                        candidates.push(Candidate {
                            id: *row,
                            page: pi,
                            item,
                            kind: None,
                            diff: String::new(),
                        });
                    }
                }
            }
        }
        // A rejected offer that is live is marked seen (after the page's offers, as on
        // SQLite): a later page's offer with its id is a duplicate.
        for id in &page.rejected_ids {
            let live = known
                .get(id.as_str())
                .and_then(|k| k.seen.as_ref())
                .is_some_and(|(live, _)| live.is_some());
            if live && !seen_before(id) {
                seen_now.insert(id.as_str());
            }
        }
    }

    // 3. The candidates' old rows, diffed.
    if !candidates.is_empty() {
        let wanted: Vec<i64> = candidates.iter().map(|c| c.id).collect();
        let old: HashMap<i64, postgres::Row> = tx
            .query_typed(
                &format!("SELECT id, {OFFER_COLUMNS} FROM offer_rows WHERE id = ANY($1)"),
                &[(&wanted, Type::INT8_ARRAY)],
            )?
            .into_iter()
            .map(|r| (r.get(0), r))
            .collect();
        for cand in &mut candidates {
            let o = &cand.item.offer;
            let row = old.get(&cand.id).ok_or_else(|| {
                StoreError::Inconsistent(format!(
                    "offer {source}/{} vanished during the page",
                    o.external_id
                ))
            })?;
            let before = offer_from_row(o.external_id.clone(), row, 1)?;
            let d = diff(&before, o);
            let c = &mut counts[cand.page];
            if d.is_empty() {
                // Same canonical content under a different hash (a row written by an older
                // normalization): refresh the hash, record nothing.
                c.unchanged += 1;
            } else if before.status == OfferStatus::Removed {
                cand.kind = Some(ChangeKind::Reappeared);
                c.reappeared += 1;
            } else {
                cand.kind = Some(ChangeKind::Changed);
                c.changed += 1;
            }
            if !d.is_empty() {
                cand.diff = d.to_json().to_string();
            }
        }
    }

    // 4. The writes.
    let mut new_ids: HashMap<String, i64> = HashMap::new();
    if !new.is_empty() {
        let cols: Vec<_> = new.iter().map(|i| i.columns()).collect();
        let eids: Vec<&str> = new.iter().map(|i| i.offer.external_id.as_str()).collect();
        let wide = columns_of(new.iter().copied().zip(cols.iter().map(|c| &**c)));
        let mut params: Vec<P<'_>> = vec![
            (&source, Type::TEXT),
            (&now, Type::TEXT),
            (&run_id, Type::INT8),
            (&eids, Type::TEXT_ARRAY),
        ];
        params.extend(wide.iter().map(|a| (a as &(dyn ToSql + Sync), Type::TEXT_ARRAY)));
        for r in tx.query_typed(&INSERT_NEW, &params)? {
            new_ids.insert(r.get(1), r.get(0));
        }
        if new_ids.len() != new.len() {
            return Err(StoreError::Inconsistent(format!(
                "offers of {source} were inserted by another writer during this page (is its lease held elsewhere?)"
            )));
        }
    }
    if !unchanged.is_empty() {
        tx.execute_typed(
            "UPDATE offer_seen SET last_run_id = $1, last_seen_at = $2, missed_runs = 0
             WHERE offer_id = ANY($3)",
            &[
                (&run_id, Type::INT8),
                (&now, Type::TEXT),
                (&unchanged, Type::INT8_ARRAY),
            ],
        )?;
    }
    if !candidates.is_empty() {
        let cols: Vec<_> = candidates.iter().map(|c| c.item.columns()).collect();
        let rows: Vec<i64> = candidates.iter().map(|c| c.id).collect();
        let touch: Vec<bool> = candidates.iter().map(|c| c.kind.is_some()).collect();
        let wide = columns_of(candidates.iter().map(|c| c.item).zip(cols.iter().map(|c| &**c)));
        let mut params: Vec<P<'_>> = vec![
            (&now, Type::TEXT),
            (&run_id, Type::INT8),
            (&rows, Type::INT8_ARRAY),
            (&touch, Type::BOOL_ARRAY),
        ];
        params.extend(wide.iter().map(|a| (a as &(dyn ToSql + Sync), Type::TEXT_ARRAY)));
        tx.execute_typed(&REWRITE, &params)?;
    }
    // The change records, in the order the offers came.
    let (mut ch_eid, mut ch_kind, mut ch_diff, mut ch_id) = (vec![], vec![], vec![], vec![]);
    let mut planned: Vec<&Offer> = Vec::new();
    for w in &order {
        match *w {
            Write::New(i) => {
                let o = &new[i].offer;
                ch_eid.push(o.external_id.as_str());
                ch_kind.push(ChangeKind::Added.as_str());
                ch_diff.push("{}");
                ch_id.push(new_ids[&o.external_id]);
                planned.push(o);
            }
            Write::Candidate(i) => {
                let c = &candidates[i];
                if let Some(kind) = c.kind {
                    ch_eid.push(c.item.offer.external_id.as_str());
                    ch_kind.push(kind.as_str());
                    ch_diff.push(c.diff.as_str());
                    ch_id.push(c.id);
                    planned.push(&c.item.offer);
                }
            }
        }
    }
    if !ch_eid.is_empty() {
        tx.execute_typed(
            "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at, offer_id)
             SELECT $1, $2, u.external_id, u.kind, u.diff::jsonb, $3, u.offer_id
             FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[]) WITH ORDINALITY
                  AS u(external_id, kind, diff, offer_id, ord)
             ORDER BY u.ord",
            &[
                (&run_id, Type::INT8),
                (&source, Type::TEXT),
                (&now, Type::TEXT),
                (&ch_eid, Type::TEXT_ARRAY),
                (&ch_kind, Type::TEXT_ARRAY),
                (&ch_diff, Type::TEXT_ARRAY),
                (&ch_id, Type::INT8_ARRAY),
            ],
        )?;
    }
    // Planning, offer by offer in the order they came, only when a target takes the source.
    if (0..planner.target_count()).any(|i| planner.takes(i, source)) {
        for o in planned {
            super::planning::plan_offer(tx, planner, source, o, now)?;
        }
    }
    // A rejected offer is still at the source: it was seen, so it is not counted missed (its
    // last good version stays in the mirror rather than being removed for bad data).
    let rejected: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.rejected_ids.iter().map(String::as_str))
        .collect();
    if !rejected.is_empty() {
        tx.execute_typed(
            "UPDATE offer_seen s SET last_run_id = $1, last_seen_at = $2, missed_runs = 0
             FROM offer_rows o
             WHERE o.id = s.offer_id AND o.source = $3 AND o.external_id = ANY($4)
               AND s.live_hash IS NOT NULL",
            &[
                (&run_id, Type::INT8),
                (&now, Type::TEXT),
                (&source, Type::TEXT),
                (&rejected, Type::TEXT_ARRAY),
            ],
        )?;
    }
    let (rj_eid, rj_reason): (Vec<Option<&str>>, Vec<&str>) = pages
        .iter()
        .flat_map(|p| p.rejections.iter())
        .map(|(id, reason)| (id.as_deref(), reason.as_str()))
        .unzip();
    if !rj_eid.is_empty() {
        tx.execute_typed(
            "INSERT INTO offer_rejections (run_id, source, external_id, reason, at)
             SELECT $1, $2, u.external_id, u.reason, $3
             FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(external_id, reason, ord)
             ORDER BY u.ord",
            &[
                (&run_id, Type::INT8),
                (&source, Type::TEXT),
                (&now, Type::TEXT),
                (&rj_eid, Type::TEXT_ARRAY),
                (&rj_reason, Type::TEXT_ARRAY),
            ],
        )?;
    }
    run_counters(tx, run_id, pages, &counts)?;
    Ok(counts)
}

/// The [`WIDE`] values of `items` as one text array per column.
fn columns_of<'a>(
    items: impl Iterator<Item = (&'a SourcedOffer, &'a Columns)>,
) -> Vec<Vec<Option<&'a str>>> {
    let mut arrays: Vec<Vec<Option<&str>>> = vec![Vec::new(); WIDE.len()];
    for (item, k) in items {
        for (a, v) in arrays.iter_mut().zip(wide_values(item, k)) {
            a.push(v);
        }
    }
    arrays
}

/// The run's counters, for all the pages at once (the sums of what SQLite adds page by page).
fn run_counters(
    tx: &mut postgres::Transaction<'_>,
    run_id: i64,
    pages: &[PageBatch],
    counts: &[PageCounts],
) -> Result<()> {
    let sum = |f: &dyn Fn(&PageCounts) -> u64| counts.iter().map(f).sum::<u64>() as i64;
    let n_pages = pages.len() as i64;
    let seen = sum(&|c| c.seen - c.duplicates);
    let added = sum(&|c| c.added);
    let changed = sum(&|c| c.changed + c.reappeared);
    let unchanged = sum(&|c| c.unchanged);
    let duplicates = sum(&|c| c.duplicates);
    let rejected = pages.iter().map(|p| p.rejected).sum::<u64>() as i64;
    tx.execute_typed(
        "UPDATE sync_runs SET pages = pages + $2, offers_seen = offers_seen + $3, added = added + $4,
                changed = changed + $5, unchanged = unchanged + $6, duplicates = duplicates + $7,
                rejected = rejected + $8
         WHERE id = $1",
        &[
            (&run_id, Type::INT8),
            (&n_pages, Type::INT8),
            (&seen, Type::INT8),
            (&added, Type::INT8),
            (&changed, Type::INT8),
            (&unchanged, Type::INT8),
            (&duplicates, Type::INT8),
            (&rejected, Type::INT8),
        ],
    )?;
    Ok(())
}

/// The columns of [`stored_of`], in its order.
static STORED_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "o.source, o.external_id, o.content_hash, o.first_seen_at, s.last_seen_at, o.updated_at,
         o.removed_at, o.raw::text, {}",
        offer_columns_of("o")
    )
});

fn stored_of(r: &postgres::Row) -> std::result::Result<StoredOffer, postgres::Error> {
    Ok(StoredOffer {
        source: r.try_get(0)?,
        offer: offer_from_row(r.try_get(1)?, r, 8)?,
        content_hash: r.try_get(2)?,
        first_seen_at: r.try_get(3)?,
        last_seen_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        removed_at: r.try_get(6)?,
        raw: r.try_get(7)?,
    })
}

impl Pg {
    /// One offer with its bookkeeping, removed ones included.
    pub fn offer(&self, source: &str, external_id: &str) -> Result<Option<StoredOffer>> {
        let err = self.err();
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                &format!(
                    "SELECT {} FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                     WHERE o.source = $1 AND o.external_id = $2",
                    *STORED_COLUMNS
                ),
                &[&source, &external_id],
            )
            .map_err(&err)?;
        row.map(|r| stored_of(&r)).transpose().map_err(err)
    }

    /// Every offer of a source (removed ones included), ordered by external id (byte order, as
    /// on SQLite). For tests and tools; a sync never loads a whole catalogue.
    pub fn offers_of(&self, source: &str) -> Result<Vec<StoredOffer>> {
        let err = self.err();
        let rows = self
            .client
            .borrow_mut()
            .query(
                &format!(
                    "SELECT {} FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                     WHERE o.source = $1 ORDER BY o.external_id COLLATE \"C\"",
                    *STORED_COLUMNS
                ),
                &[&source],
            )
            .map_err(&err)?;
        rows.iter()
            .map(|r| stored_of(r).map_err(&err))
            .collect()
    }
}
