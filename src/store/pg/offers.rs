//! Writes to the mirror on PostgreSQL: the pages of a run, all in one transaction (upserts,
//! change records, rejections, lease heartbeat, run counters), and reading offers back.
//!
//! A call to [`Pg::apply_pages`] is a handful of statements whatever the number of offers in
//! its pages, so a round trip is paid per statement and not per offer:
//! 1. when the last call saw mostly unchanged offers (a re-sync), one `UPDATE` that marks seen
//!    every offer of the pages whose live hash is the hash it came with and that this run has
//!    not seen yet: on a re-sync that settles the pages in one statement, and nothing is looked
//!    up at all;
//! 2. one lookup of every other id of the pages (one probe of the unique index per id, the
//!    narrow `offer_seen` columns only), after which every offer is classified in memory, in
//!    page order, exactly as the SQLite loop does: an id already seen by this run (in an earlier
//!    call, earlier in these pages, or marked seen by a rejection of an earlier page) is a
//!    duplicate, an unknown one new, a live one with the same hash unchanged, any other a
//!    candidate change;
//! 3. the old rows of the candidate changes (one `id = ANY($1)`), diffed in memory with
//!    `model::diff` (no difference: only the hash is refreshed, counted unchanged);
//! 4. one statement per kind of write: new rows and their `offer_seen` rows with COPY, the
//!    unchanged offers marked seen and the changed rows rewritten over arrays, their change
//!    records with COPY (in the order the offers came, as on SQLite), the rejected ids marked
//!    seen, the rejections;
//! 5. the heartbeat (which keeps the lease row locked until the commit: a takeover waits), with
//!    `synchronous_commit = off` for this transaction, and the run counters ([`close`]).
//!
//! A run may write two calls at a time, on two connections (`sync::writer`); the writer never
//! gives them an offer id in common, so each call reads and writes rows the other does not
//! touch, and they meet only at the lease and run rows of step 5, for the length of a commit.
//!
//! Statements on this path are sent typed (`query_typed`): one round trip each, no prepare.

use super::super::{PageBatch, PageCounts, Result, StoreError, StoredOffer};
use super::lease::heartbeat;
use super::{offer_columns_of, offer_from_row, Pg, OFFER_COLUMNS};
use crate::model::{
    diff, ChangeKind, Columns, Offer, OfferStatus, PayoutType, Planner, SourcedOffer,
};
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

/// One row of COPY's text format: fields separated by tabs, `\N` for NULL, and backslash,
/// tab, newline and carriage return escaped.
fn copy_row<'a>(buf: &mut String, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        match field {
            None => buf.push_str("\\N"),
            Some(s) => push_escaped(buf, s),
        }
    }
    buf.push('\n');
}

/// `s` with COPY's escapes, in one pass over its bytes (a `contains` with a set of chars
/// decodes every char first: a tenth of a first sync's client time went there). The four
/// bytes escaped are ASCII, never part of a longer UTF-8 sequence, so the runs between them
/// are whole chars.
fn push_escaped(buf: &mut String, s: &str) {
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => continue,
        };
        buf.push_str(&s[from..i]);
        buf.push_str(escaped);
        from = i + 1;
    }
    buf.push_str(&s[from..]);
}

/// A COPY stream that could not be written: the client reports the database's error (or a
/// broken connection) as an I/O error around it.
fn copy_failed(e: std::io::Error) -> StoreError {
    let text = e.to_string();
    match e
        .into_inner()
        .and_then(|inner| inner.downcast::<postgres::Error>().ok())
    {
        Some(pg) => StoreError::from(*pg),
        None => StoreError::Stream(text),
    }
}

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
        let mut expect_unchanged = self.expect_unchanged;
        let mut tx = self.client.get_mut().transaction()?;
        let written = apply_in(
            &mut tx,
            run_id,
            source,
            holder,
            pages,
            planner,
            now,
            &mut expect_unchanged,
        );
        let counts = match written {
            Ok(c) => c,
            Err(e) => {
                drop(tx);
                return Err(named(&shown)(self.lost_or(e, source, holder)));
            }
        };
        tx.commit().map_err(|e| named(&shown)(e.into()))?;
        self.expect_unchanged = expect_unchanged;
        Ok(counts)
    }

    /// The error of a page that failed (its transaction rolled back): `LeaseLost` instead when
    /// the lease is no longer this holder's. The lease is checked at the end of a page
    /// ([`close`]), so a page of a worker that was taken over may fail before that, on the
    /// offers the new holder wrote meanwhile; it is still a lost lease, and is told as one.
    fn lost_or(&mut self, e: StoreError, source: &str, holder: &str) -> StoreError {
        if matches!(e, StoreError::LeaseLost { .. }) {
            return e;
        }
        let held = self.client.get_mut().query_typed(
            "SELECT 1 FROM source_leases WHERE source = $1 AND holder = $2",
            &[(&source, Type::TEXT), (&holder, Type::TEXT)],
        );
        match held {
            Ok(rows) if rows.is_empty() => StoreError::LeaseLost {
                source_name: source.to_string(),
            },
            _ => e,
        }
    }
}

/// What the page walk decided for one offer that is written.
enum Write {
    /// Index into the new offers.
    New(usize),
    /// Index into the candidate changes.
    Candidate(usize),
}

/// A known offer, from the lookup (or settled by the unchanged `UPDATE`).
struct Known {
    id: i64,
    /// `None` when the offer has a wide row but no `offer_seen` row (an inconsistent mirror).
    seen: Option<(Option<String>, i64)>,
    /// Already marked seen by this call's unchanged `UPDATE` (step 2): its first offer is
    /// unchanged and nothing more is written for it.
    settled: bool,
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
    expect_unchanged: &mut bool,
) -> Result<Vec<PageCounts>> {
    let mut counts = vec![PageCounts::default(); pages.len()];
    if pages
        .iter()
        .all(|p| p.offers.is_empty() && p.rejected_ids.is_empty())
    {
        close(tx, source, holder, run_id, pages, &counts)?;
        return Ok(counts);
    }

    // 1. The ids of these pages, each once, with the hash of the first offer that has it (an
    // id that only comes rejected has none).
    let mut ids: Vec<&str> = Vec::new();
    let mut hashes: Vec<Option<&str>> = Vec::new();
    {
        let mut slot: HashMap<&str, usize> = HashMap::new();
        for p in pages {
            for item in &p.offers {
                let id = item.offer.external_id.as_str();
                match slot.get(id) {
                    Some(&i) => {
                        hashes[i].get_or_insert(item.content_hash.as_str());
                    }
                    None => {
                        slot.insert(id, ids.len());
                        ids.push(id);
                        hashes.push(Some(item.content_hash.as_str()));
                    }
                }
            }
            for id in &p.rejected_ids {
                if !slot.contains_key(id.as_str()) {
                    slot.insert(id.as_str(), ids.len());
                    ids.push(id.as_str());
                    hashes.push(None);
                }
            }
        }
    }
    let mut known: HashMap<String, Known> = HashMap::new();
    if *expect_unchanged {
        // A re-sync: every offer whose live hash is the one it came with, and that this run
        // has not seen yet, is marked seen here, in one statement. Its first offer in these
        // pages is the one whose hash was compared, so the walk below counts it unchanged
        // (or a duplicate, if a rejection of an earlier page marked its id seen first, which
        // writes the same row). A lateral probe per id, as in the lookup below.
        let settled = tx.query_typed(
            "UPDATE offer_seen AS s SET last_run_id = $3, last_seen_at = $4, missed_runs = 0
             FROM unnest($2::text[], $5::text[]) WITH ORDINALITY AS q(external_id, hash, ord)
             CROSS JOIN LATERAL (
                 SELECT id FROM offer_rows
                 WHERE source = $1 AND external_id = q.external_id
                 LIMIT 1
             ) AS o
             WHERE s.offer_id = o.id AND s.live_hash = q.hash AND s.last_run_id <> $3
             RETURNING q.ord, s.offer_id",
            &[
                (&source, Type::TEXT),
                (&ids, Type::TEXT_ARRAY),
                (&run_id, Type::INT8),
                (&now, Type::TEXT),
                (&hashes, Type::TEXT_ARRAY),
            ],
        )?;
        for r in &settled {
            let i = r.get::<_, i64>(0) as usize - 1;
            known.insert(
                ids[i].to_string(),
                Known {
                    id: r.get(1),
                    // Not seen by this run before this call (the UPDATE's condition).
                    seen: hashes[i].map(|h| (Some(h.to_string()), i64::MIN)),
                    settled: true,
                },
            );
        }
    }
    let rest: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !known.contains_key(*id))
        .collect();
    if !rest.is_empty() {
        // What the mirror has of every other id.
        let rows = tx.query_typed(
            // One probe of the unique (source, external_id) index per id, whatever the table's
            // statistics say: the lateral subquery is keyed by each id, so it cannot become a
            // hash join over the whole source (which is what `external_id = ANY($2)` or a
            // plain join turn into while the table has no statistics yet, during a first sync:
            // the planner takes `source = $1` for selective and reads every row of the source
            // once per call).
            "SELECT o.external_id, o.id, s.offer_id IS NOT NULL, s.live_hash, s.last_run_id
             FROM unnest($2::text[]) AS q(external_id)
             CROSS JOIN LATERAL (
                 SELECT id, external_id FROM offer_rows
                 WHERE source = $1 AND external_id = q.external_id
                 LIMIT 1
             ) AS o
             LEFT JOIN LATERAL (
                 SELECT offer_id, live_hash, last_run_id FROM offer_seen WHERE offer_id = o.id LIMIT 1
             ) AS s ON true",
            &[(&source, Type::TEXT), (&rest, Type::TEXT_ARRAY)],
        )?;
        known.extend(rows.iter().map(|r| {
            let has_seen: bool = r.get(2);
            (
                r.get(0),
                Known {
                    id: r.get(1),
                    seen: has_seen.then(|| (r.get(3), r.get(4))),
                    settled: false,
                },
            )
        }));
    }

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
                    settled,
                }) => {
                    if live.as_deref() == Some(item.content_hash.as_str()) {
                        if !settled {
                            unchanged.push(*row);
                        }
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

    // The next call settles unchanged offers first if they were most of this one's.
    let unchanged_now: u64 = counts.iter().map(|c| c.unchanged).sum();
    *expect_unchanged = unchanged_now as usize > new.len() + candidates.len();

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
        // Their ids first, then the rows with COPY: no per-row executor work, no speculative
        // insertion (ON CONFLICT), no arrays to take apart. An offer another writer inserted
        // meanwhile (a lease held elsewhere) fails the COPY on the unique key: nothing of the
        // call is written, as with any failure.
        let ids: Vec<i64> = tx
            .query_typed(
                // The sequence by name, a constant: `pg_get_serial_sequence` would be
                // evaluated (a catalog lookup) for every row, a tenth of a first sync's
                // server time. The test `the_id_sequence_has_the_name_the_writer_uses`
                // holds the name.
                "SELECT nextval('offer_rows_id_seq'::regclass)
                 FROM generate_series(1, $1::bigint) ORDER BY 1",
                &[(&(new.len() as i64), Type::INT8)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut rows = String::with_capacity(new.len() * 1024);
        let mut seen = String::with_capacity(new.len() * 64);
        let (id_text, run_text) = (
            ids.iter().map(i64::to_string).collect::<Vec<_>>(),
            run_id.to_string(),
        );
        for ((item, id), id_text) in new.iter().zip(&ids).zip(&id_text) {
            let cols = item.columns();
            let mut fields = vec![
                Some(id_text.as_str()),
                Some(source),
                Some(item.offer.external_id.as_str()),
            ];
            fields.extend(wide_values(item, &cols));
            fields.extend([Some(now), Some(now)]);
            copy_row(&mut rows, fields);
            copy_row(
                &mut seen,
                [
                    Some(id_text.as_str()),
                    Some(run_text.as_str()),
                    Some(now),
                    Some(item.content_hash.as_str()),
                ],
            );
            new_ids.insert(item.offer.external_id.clone(), *id);
        }
        let inserted = (|| -> Result<()> {
            let names = WIDE.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
            let mut w = tx.copy_in(&format!(
                "COPY offer_rows (id, source, external_id, {names}, first_seen_at, updated_at) FROM STDIN"
            ))?;
            std::io::Write::write_all(&mut w, rows.as_bytes()).map_err(copy_failed)?;
            w.finish()?;
            let mut w = tx.copy_in(
                "COPY offer_seen (offer_id, last_run_id, last_seen_at, live_hash) FROM STDIN",
            )?;
            std::io::Write::write_all(&mut w, seen.as_bytes()).map_err(copy_failed)?;
            w.finish()?;
            Ok(())
        })();
        match inserted {
            Err(StoreError::Pg { source: e, .. })
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                return Err(StoreError::Inconsistent(format!(
                    "offers of {source} were inserted by another writer during this page (is its lease held elsewhere?)"
                )))
            }
            other => other?,
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
        let wide = columns_of(
            candidates
                .iter()
                .map(|c| c.item)
                .zip(cols.iter().map(|c| &**c)),
        );
        let mut params: Vec<P<'_>> = vec![
            (&now, Type::TEXT),
            (&run_id, Type::INT8),
            (&rows, Type::INT8_ARRAY),
            (&touch, Type::BOOL_ARRAY),
        ];
        params.extend(
            wide.iter()
                .map(|a| (a as &(dyn ToSql + Sync), Type::TEXT_ARRAY)),
        );
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
        // COPY keeps the rows' order, so the ids follow the order the offers came.
        let (run_text, mut text) = (run_id.to_string(), String::with_capacity(ch_eid.len() * 96));
        for (((eid, kind), diff), id) in ch_eid.iter().zip(&ch_kind).zip(&ch_diff).zip(&ch_id) {
            let id = id.to_string();
            copy_row(
                &mut text,
                [
                    Some(run_text.as_str()),
                    Some(source),
                    Some(*eid),
                    Some(*kind),
                    Some(*diff),
                    Some(now),
                    Some(id.as_str()),
                ],
            );
        }
        let mut w = tx.copy_in(
            "COPY offer_changes (run_id, source, external_id, kind, diff, at, offer_id) FROM STDIN",
        )?;
        std::io::Write::write_all(&mut w, text.as_bytes()).map_err(copy_failed)?;
        w.finish()?;
    }
    // Planning, offer by offer in the order they came, only when a target takes the source.
    if (0..planner.target_count()).any(|i| planner.takes(i, source)) {
        for o in planned {
            super::planning::plan_offer(tx, planner, source, o, now)?;
        }
    }
    // A rejected offer is still at the source: it was seen, so it is not counted missed (its
    // last good version stays in the mirror rather than being removed for bad data).
    // Their rows are known by now: in the mirror before this call, or inserted by it.
    let rejected: Vec<i64> = pages
        .iter()
        .flat_map(|p| p.rejected_ids.iter())
        .filter_map(|id| {
            known
                .get(id.as_str())
                .map(|k| k.id)
                .or_else(|| new_ids.get(id).copied())
        })
        .collect::<std::collections::BTreeSet<i64>>()
        .into_iter()
        .collect();
    if !rejected.is_empty() {
        tx.execute_typed(
            "UPDATE offer_seen SET last_run_id = $1, last_seen_at = $2, missed_runs = 0
             WHERE offer_id = ANY($3) AND live_hash IS NOT NULL",
            &[
                (&run_id, Type::INT8),
                (&now, Type::TEXT),
                (&rejected, Type::INT8_ARRAY),
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
    close(tx, source, holder, run_id, pages, &counts)?;
    Ok(counts)
}

/// The end of a page transaction: the heartbeat, then the run counters.
///
/// The heartbeat fails with `LeaseLost` when another worker took the lease over, and otherwise
/// keeps the lease row locked until the commit: a takeover that comes now waits for the commit
/// and then sees the fresh heartbeat. It comes last so that the lock is held for the end of a
/// page only, not while its offers are written: the run's other page connection
/// (`sync::writer`) writes its pages meanwhile, and another daemon asking for the lease waits
/// for a commit, not for a page. A takeover that commits while a page is being written (its
/// holder's heartbeat was older than the TTL) makes that page fail here, and nothing of it is
/// written. Lease row, then run row: the order a takeover locks them in.
///
/// In the same round trip `SET LOCAL synchronous_commit = off`, for this transaction only: a
/// page lost to a crash of the database server is fetched again by the next run (the same
/// trade as SQLite's synchronous=NORMAL). Never for the outbox's transactions.
fn close(
    tx: &mut postgres::Transaction<'_>,
    source: &str,
    holder: &str,
    run_id: i64,
    pages: &[PageBatch],
    counts: &[PageCounts],
) -> Result<()> {
    heartbeat(tx, source, holder, true)?;
    run_counters(tx, run_id, pages, counts)
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
        rows.iter().map(|r| stored_of(r).map_err(&err)).collect()
    }
}

/// Both backends fed the same pages, and what they stored read back alike.
#[cfg(test)]
pub(crate) mod twin {
    use super::super::{testing, Pg};
    use crate::model::{parse_decimal, Cap, Offer, PayoutTier, PayoutType, Planner, SourcedOffer};
    use crate::store::{PageBatch, PageCounts, Store};
    use serde_json::Value;

    pub(crate) const HOLDER: &str = "tok";

    /// An offer with every column set; `v` varies its payout (a change).
    pub(crate) fn offer(id: &str, v: u32) -> SourcedOffer {
        let mut o = Offer::new(id, format!("Offer {id}"));
        o.payout = parse_decimal(&format!("{}.50", 1 + v));
        o.revenue = parse_decimal("3.125");
        o.currency = Some("USD".into());
        o.payout_type = Some(PayoutType::Cpa);
        o.countries = vec!["US".into(), "DE".into()];
        o.platforms = vec!["android".into()];
        o.categories = vec!["Games".into()];
        o.tracking_url = Some(format!("https://t.example/{id}"));
        o.advertiser = Some("Acme".into());
        o.description = Some("Play \"it\" – with ünïcode".into());
        o.starts_at = Some(
            chrono::DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z")
                .unwrap()
                .into(),
        );
        o.payouts = vec![PayoutTier {
            payout: Some("1.5".into()),
            revenue: None,
            currency: Some("USD".into()),
            countries: vec!["US".into()],
            kind: Some("fixed".into()),
            goal: Some("install".into()),
            title: None,
        }];
        o.excluded_countries = vec!["RU".into()];
        o.approval = Some(crate::model::SourceApproval::Approved);
        o.caps = vec![Cap::new("daily", "conversions", 100)];
        SourcedOffer::new(
            o,
            format!(r#"{{"id": "{id}", "v": {v}, "nested": {{"b": 1, "a": [1, 2]}}}}"#),
        )
    }

    /// A page of `offers`, rejected ids and reasons.
    pub(crate) fn page(offers: Vec<SourcedOffer>, rejected_ids: &[&str]) -> PageBatch {
        PageBatch {
            rejected: rejected_ids.len() as u64 + 1,
            rejections: rejected_ids
                .iter()
                .map(|id| (Some(id.to_string()), format!("bad {id}")))
                .chain([(None, "no id".to_string())])
                .collect(),
            rejected_ids: rejected_ids.iter().map(|s| s.to_string()).collect(),
            offers,
        }
    }

    pub(crate) struct Twin {
        pub pg: Pg,
        pub lite: Store,
        _dir: tempfile::TempDir,
    }

    pub(crate) fn now(run: i64) -> String {
        format!("2024-05-{:02}T12:00:00Z", run)
    }

    impl Twin {
        /// Fresh mirrors, with the lease on `s` taken on both.
        pub(crate) fn new() -> Twin {
            let mut pg = testing::fresh();
            let dir = tempfile::tempdir().unwrap();
            let mut lite =
                Store::open(dir.path().join("m.db"), std::time::Duration::from_secs(5)).unwrap();
            let ttl = std::time::Duration::from_secs(900);
            let pid = std::process::id();
            let t = chrono::Utc::now();
            assert!(matches!(
                pg.acquire_lease("s", HOLDER, pid, "h", ttl, t).unwrap(),
                crate::store::LeaseOutcome::Acquired { .. }
            ));
            lite.acquire_lease("s", HOLDER, pid, "h", ttl, t).unwrap();
            Twin {
                pg,
                lite,
                _dir: dir,
            }
        }

        /// A run on both (the same id on both).
        pub(crate) fn run(&mut self, n: i64) -> i64 {
            let a = self.pg.create_run("s", &now(n), 1, "h").unwrap();
            let b = self.lite.create_run("s", &now(n), 1, "h").unwrap();
            assert_eq!(a, b);
            a
        }

        /// The same pages (built twice by `pages`) through both, in one call each: the counts.
        pub(crate) fn apply(
            &mut self,
            run: i64,
            planner: &dyn Planner,
            pages: impl Fn() -> Vec<PageBatch>,
        ) -> Vec<PageCounts> {
            let a = self
                .pg
                .apply_pages(run, "s", HOLDER, &pages(), planner, &now(run))
                .unwrap();
            let b = self
                .lite
                .apply_pages(run, "s", HOLDER, &pages(), planner, &now(run))
                .unwrap();
            assert_eq!(a, b, "page counts differ between PostgreSQL and SQLite");
            a
        }

        /// Finalize complete run `run` on both, with the same outcome.
        pub(crate) fn finalize(
            &mut self,
            run: i64,
            grace: u32,
            max_fraction: f64,
            planner: &dyn Planner,
        ) -> crate::store::FinalizeOutcome {
            let a = self
                .pg
                .finalize_complete(run, "s", HOLDER, grace, max_fraction, planner, &now(run))
                .unwrap();
            let b = self
                .lite
                .finalize_complete(run, "s", HOLDER, grace, max_fraction, planner, &now(run))
                .unwrap();
            assert_eq!(a, b, "finalize differs between PostgreSQL and SQLite");
            a
        }

        /// Everything both stored about offers and runs is the same.
        pub(crate) fn assert_same(&mut self) {
            assert_eq!(
                stored(&self.pg.offers_of("s").unwrap()),
                stored(&self.lite.offers_of("s").unwrap())
            );
            assert_eq!(self.pg_changes(), self.lite_changes(), "offer_changes");
            assert_eq!(self.pg_seen(), self.lite_seen(), "offer_seen");
            assert_eq!(
                self.pg_rejections(),
                self.lite_rejections(),
                "offer_rejections"
            );
            let runs = |r: Vec<crate::store::RunTotals>| -> Vec<String> {
                r.into_iter()
                    .map(|t| {
                        format!(
                            "{:?}",
                            crate::store::RunTotals {
                                duration_seconds: None,
                                ..t
                            }
                        )
                    })
                    .collect()
            };
            assert_eq!(
                runs(self.pg.runs_of("s", 100).unwrap()),
                runs(self.lite.runs_of("s", 100).unwrap())
            );
        }

        /// `(external_id, kind, diff, offer external id)` in id order.
        pub(crate) fn pg_changes(&mut self) -> Vec<(i64, String, String, Value, String)> {
            self.pg
                .client
                .get_mut()
                .query(
                    "SELECT c.run_id, c.external_id, c.kind, c.diff::text, o.external_id FROM offer_changes c
                     JOIN offer_rows o ON o.id = c.offer_id ORDER BY c.id",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), serde_json::from_str(r.get(3)).unwrap(), r.get(4)))
                .collect()
        }

        pub(crate) fn lite_changes(&self) -> Vec<(i64, String, String, Value, String)> {
            self.lite
                .conn()
                .prepare(
                    "SELECT c.run_id, c.external_id, c.kind, c.diff, o.external_id FROM offer_changes c
                     JOIN offer_rows o ON o.id = c.offer_id ORDER BY c.id",
                )
                .unwrap()
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, serde_json::from_str(&r.get::<_, String>(3)?).unwrap(), r.get(4)?))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }

        fn pg_seen(&mut self) -> Vec<(String, i64, String, i64, Option<String>)> {
            self.pg
                .client
                .get_mut()
                .query(
                    "SELECT o.external_id, s.last_run_id, s.last_seen_at, s.missed_runs, s.live_hash
                     FROM offer_seen s JOIN offer_rows o ON o.id = s.offer_id ORDER BY o.id",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect()
        }

        fn lite_seen(&self) -> Vec<(String, i64, String, i64, Option<String>)> {
            self.lite
                .conn()
                .prepare(
                    "SELECT o.external_id, s.last_run_id, s.last_seen_at, s.missed_runs, s.live_hash
                     FROM offer_seen s JOIN offer_rows o ON o.id = s.offer_id ORDER BY o.id",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }

        fn pg_rejections(&mut self) -> Vec<(i64, Option<String>, String, String)> {
            self.pg
                .client
                .get_mut()
                .query(
                    "SELECT run_id, external_id, reason, at FROM offer_rejections ORDER BY id",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        }

        fn lite_rejections(&self) -> Vec<(i64, Option<String>, String, String)> {
            self.lite
                .conn()
                .prepare("SELECT run_id, external_id, reason, at FROM offer_rejections ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        }

        /// Run one SQL text on both.
        pub(crate) fn both(&mut self, sql: &str) {
            self.pg.client.get_mut().batch_execute(sql).unwrap();
            self.lite.conn().execute_batch(sql).unwrap();
        }
    }

    /// A stored offer as both backends can show it (the raw JSON compared as JSON: `jsonb`
    /// does not keep the text's spacing or key order).
    pub(crate) fn stored(v: &[crate::store::StoredOffer]) -> Vec<String> {
        v.iter()
            .map(|s| {
                let raw: Value = serde_json::from_str(&s.raw).unwrap();
                format!(
                    "{} {:?} {} {} {} {} {:?} {raw}",
                    s.source,
                    s.offer,
                    s.content_hash,
                    s.first_seen_at,
                    s.last_seen_at,
                    s.updated_at,
                    s.removed_at
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::twin::*;
    use super::*;
    use crate::push::Targets;

    const NO_TARGETS: Targets<'static> = Targets(&[]);

    fn counts(
        seen: u64,
        added: u64,
        changed: u64,
        reappeared: u64,
        unchanged: u64,
        duplicates: u64,
    ) -> PageCounts {
        PageCounts {
            seen,
            added,
            changed,
            reappeared,
            unchanged,
            duplicates,
        }
    }

    #[test]
    fn copy_rows_escape_the_four_bytes_and_keep_every_other_char() {
        let mut row = String::new();
        copy_row(
            &mut row,
            [Some("ü\\\tä\n✓\r"), None, Some(""), Some("plain \\N")],
        );
        assert_eq!(row, "ü\\\\\\tä\\n✓\\r\t\\N\t\tplain \\\\N\n");
    }

    #[test]
    fn text_with_copy_escapes_round_trips() {
        // New offers are written with COPY's text format: backslashes, tabs, newlines, carriage
        // returns and a `\N` in the text itself must come back as they went in.
        let mut t = Twin::new();
        let r1 = t.run(1);
        let tricky = || {
            let mut o = offer("q\\t\tid", 0);
            o.offer.name = "tab\there, line\nthere, cr\rhere, \\N and C:\\path\\".into();
            o.offer.description = Some("\\\t\n\r ünï ✓".into());
            o.offer.tracking_url = Some("https://t.example/?a=1\\b".into());
            SourcedOffer::new(
                o.offer,
                r#"{"name": "line\nbreak \\ \t tab", "quote": "\"", "u": "\u00e9"}"#.to_string(),
            )
        };
        let got = t.apply(r1, &NO_TARGETS, || vec![page(vec![tricky()], &[])]);
        assert_eq!(got, vec![counts(1, 1, 0, 0, 0, 0)]);
        t.assert_same();
        let stored = t.pg.offer("s", "q\\t\tid").unwrap().unwrap();
        assert_eq!(stored.offer, tricky().offer);
        let raw: serde_json::Value = serde_json::from_str(&stored.raw).unwrap();
        assert_eq!(raw["name"], "line\nbreak \\ \t tab");
        assert_eq!(raw["u"], "é");
        // The same content next run is unchanged: the hash was stored as it went in.
        let r2 = t.run(2);
        let got = t.apply(r2, &NO_TARGETS, || vec![page(vec![tricky()], &[])]);
        assert_eq!(got, vec![counts(1, 0, 0, 0, 1, 0)]);
    }

    #[test]
    fn new_unchanged_changed_and_duplicates_are_counted_and_stored_as_on_sqlite() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        // Duplicates across pages of one call and inside one page.
        let got = t.apply(r1, &NO_TARGETS, || {
            vec![
                page(vec![offer("a", 0), offer("b", 0), offer("c", 0)], &["x"]),
                page(vec![offer("c", 1), offer("d", 0), offer("d", 0)], &[]),
            ]
        });
        assert_eq!(
            got,
            vec![counts(3, 3, 0, 0, 0, 0), counts(3, 1, 0, 0, 0, 2)]
        );
        // A later call of the same run: every id already seen is a duplicate.
        let got = t.apply(r1, &NO_TARGETS, || {
            vec![page(vec![offer("a", 0), offer("e", 0)], &[])]
        });
        assert_eq!(got, vec![counts(2, 1, 0, 0, 0, 1)]);
        t.assert_same();
        // synchronous_commit was off for the page transactions only.
        let sc: String =
            t.pg.client
                .get_mut()
                .query_one("SHOW synchronous_commit", &[])
                .unwrap()
                .get(0);
        assert_eq!(sc, "on");
        let stored = t.pg.offer("s", "a").unwrap().unwrap();
        assert_eq!(stored.offer, offer("a", 0).offer);
        assert_eq!(stored.first_seen_at, now(1));
        let r = t.pg.run(r1).unwrap().unwrap();
        assert_eq!(
            (r.pages, r.offers_seen, r.added, r.duplicates, r.rejected),
            (3, 5, 5, 3, 4)
        );

        // Run 2: a unchanged, b changed, d changed twice in the call (the second a duplicate).
        let r2 = t.run(2);
        let got = t.apply(r2, &NO_TARGETS, || {
            vec![
                page(vec![offer("a", 0), offer("b", 7)], &[]),
                page(vec![offer("d", 3), offer("d", 4), offer("f", 0)], &[]),
            ]
        });
        assert_eq!(
            got,
            vec![counts(2, 0, 1, 0, 1, 0), counts(3, 1, 1, 0, 0, 1)]
        );
        t.assert_same();
        let b = t.pg.offer("s", "b").unwrap().unwrap();
        assert_eq!(b.updated_at, now(2));
        assert_eq!(b.first_seen_at, now(1));
        assert_eq!(b.offer.payout, parse("8.50"));
        let a = t.pg.offer("s", "a").unwrap().unwrap();
        assert_eq!(
            (a.updated_at.as_str(), a.last_seen_at.as_str()),
            (now(1).as_str(), now(2).as_str())
        );
        let changes = t.pg_changes();
        let last = changes.iter().rev().find(|c| c.1 == "b").unwrap();
        assert_eq!(last.2, "changed");
        assert_eq!(
            last.3,
            serde_json::json!({"payout": {"old": "1.5", "new": "8.5"}})
        );
        assert_eq!(t.pg.offer("s", "nope").unwrap().map(|o| o.source), None);
    }

    #[test]
    fn a_resync_settles_unchanged_offers_first_and_counts_as_on_sqlite() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        let all = ["a", "b", "c", "d", "f", "g"];
        t.apply(r1, &NO_TARGETS, || {
            vec![page(all.iter().map(|id| offer(id, 0)).collect(), &[])]
        });
        assert!(
            !t.pg.expect_unchanged,
            "a first sync looks offers up directly"
        );
        let r2 = t.run(2);
        t.apply(r2, &NO_TARGETS, || {
            vec![page(
                all.iter()
                    .filter(|id| **id != "f")
                    .map(|id| offer(id, 0))
                    .collect(),
                &[],
            )]
        });
        assert!(
            t.pg.expect_unchanged,
            "a re-sync settles unchanged offers first"
        );
        assert_eq!(
            t.finalize(r2, 1, 1.0, &NO_TARGETS),
            crate::store::FinalizeOutcome::Removed(1)
        );
        let r3 = t.run(3);
        // d is seen by an earlier call of this run.
        let got = t.apply(r3, &NO_TARGETS, || vec![page(vec![offer("d", 0)], &[])]);
        assert_eq!(got, vec![counts(1, 0, 0, 0, 1, 0)]);
        // a unchanged, then a changed copy (a duplicate); b changed first, then its old
        // content (a duplicate: the first copy is the one compared); c rejected on page 1
        // (seen), then sent unchanged (a duplicate); d a duplicate of the earlier call; e new;
        // f removed and back with the same content (reappeared); g changed; z only rejected.
        let got = t.apply(r3, &NO_TARGETS, || {
            vec![
                page(
                    vec![offer("a", 0), offer("a", 1), offer("b", 5), offer("b", 0)],
                    &["c"],
                ),
                page(
                    vec![
                        offer("c", 0),
                        offer("d", 0),
                        offer("e", 0),
                        offer("f", 0),
                        offer("g", 2),
                    ],
                    &["z"],
                ),
            ]
        });
        assert_eq!(
            got,
            vec![counts(4, 0, 1, 0, 1, 2), counts(5, 1, 1, 1, 0, 2)]
        );
        t.assert_same();
        let b = t.pg.offer("s", "b").unwrap().unwrap();
        assert_eq!(b.offer.payout, parse("6.50"));
        assert_eq!(t.pg.offer("s", "a").unwrap().unwrap().last_seen_at, now(3));
    }

    #[test]
    fn the_id_sequence_has_the_name_the_writer_uses() {
        // The page writer draws new offer ids from `offer_rows_id_seq` by name.
        let mut pg = crate::store::pg::testing::fresh();
        let name: String = pg
            .client
            .get_mut()
            .query_one("SELECT pg_get_serial_sequence('offer_rows', 'id')", &[])
            .unwrap()
            .get(0);
        assert_eq!(name.rsplit('.').next(), Some("offer_rows_id_seq"));
    }

    fn parse(s: &str) -> Option<rust_decimal::Decimal> {
        crate::model::parse_decimal(s)
    }

    #[test]
    fn a_removed_offer_that_comes_back_reappears() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.apply(r1, &NO_TARGETS, || {
            vec![page(vec![offer("a", 0), offer("b", 0)], &[])]
        });
        let r2 = t.run(2);
        t.apply(r2, &NO_TARGETS, || vec![page(vec![offer("a", 0)], &[])]);
        assert_eq!(
            t.finalize(r2, 1, 1.0, &NO_TARGETS),
            crate::store::FinalizeOutcome::Removed(1)
        );
        assert_eq!(
            t.pg.offer("s", "b").unwrap().unwrap().removed_at,
            Some(now(2))
        );
        let r3 = t.run(3);
        // Same content as before its removal: still a reappearance (its status comes back).
        let got = t.apply(r3, &NO_TARGETS, || {
            vec![page(vec![offer("b", 0), offer("a", 0)], &[])]
        });
        assert_eq!(got, vec![counts(2, 0, 0, 1, 1, 0)]);
        t.assert_same();
        let b = t.pg.offer("s", "b").unwrap().unwrap();
        assert_eq!(
            (b.removed_at, b.updated_at.as_str()),
            (None, now(3).as_str())
        );
        let kinds: Vec<String> = t
            .pg_changes()
            .into_iter()
            .map(|c| format!("{}:{}", c.1, c.2))
            .collect();
        assert_eq!(kinds, ["a:added", "b:added", "b:removed", "b:reappeared"]);
        assert_eq!(t.pg.run(r3).unwrap().unwrap().changed, 1);
    }

    #[test]
    fn a_new_hash_for_the_same_content_only_refreshes_the_hash() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.apply(r1, &NO_TARGETS, || vec![page(vec![offer("a", 0)], &[])]);
        // As if written by an older normalization.
        t.both(
            "UPDATE offer_rows SET content_hash = 'old'; UPDATE offer_seen SET live_hash = 'old';",
        );
        let r2 = t.run(2);
        let got = t.apply(r2, &NO_TARGETS, || vec![page(vec![offer("a", 0)], &[])]);
        assert_eq!(got, vec![counts(1, 0, 0, 0, 1, 0)]);
        t.assert_same();
        let a = t.pg.offer("s", "a").unwrap().unwrap();
        assert_eq!(
            (a.content_hash, a.updated_at),
            (offer("a", 0).content_hash, now(1))
        );
        assert_eq!(t.pg_changes().len(), 1, "nothing recorded but the add");
    }

    #[test]
    fn a_rejected_offer_is_marked_seen_and_a_later_copy_is_a_duplicate() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.apply(r1, &NO_TARGETS, || {
            vec![page(vec![offer("a", 0), offer("b", 0)], &[])]
        });
        let r2 = t.run(2);
        // a rejected on page 1 (seen), then sent fine on page 2: a duplicate. z is unknown; a
        // rejected z marks nothing, so z on page 2 is new.
        let got = t.apply(r2, &NO_TARGETS, || {
            vec![
                page(vec![offer("b", 0)], &["a", "z"]),
                page(vec![offer("a", 1), offer("z", 0)], &["b"]),
            ]
        });
        assert_eq!(
            got,
            vec![counts(1, 0, 0, 0, 1, 0), counts(2, 1, 0, 0, 0, 1)]
        );
        t.assert_same();
        assert_eq!(
            t.pg.offer("s", "a").unwrap().unwrap().offer,
            offer("a", 0).offer
        );
        // Pages one by one give the same as pages in one call.
        let mut u = Twin::new();
        let r1 = u.run(1);
        u.apply(r1, &NO_TARGETS, || {
            vec![page(vec![offer("a", 0), offer("b", 0)], &[])]
        });
        let r2 = u.run(2);
        let a = u.apply(r2, &NO_TARGETS, || {
            vec![page(vec![offer("b", 0)], &["a", "z"])]
        });
        let b = u.apply(r2, &NO_TARGETS, || {
            vec![page(vec![offer("a", 1), offer("z", 0)], &["b"])]
        });
        assert_eq!([a, b].concat(), got);
        assert_eq!(
            stored(&u.pg.offers_of("s").unwrap()),
            stored(&t.pg.offers_of("s").unwrap())
        );
    }

    #[test]
    fn a_page_whose_lease_was_taken_over_writes_nothing() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.pg.client
            .get_mut()
            .batch_execute("UPDATE source_leases SET holder = 'another-process'")
            .unwrap();
        let pages = vec![page(vec![offer("a", 0), offer("b", 0)], &["x"])];
        let e =
            t.pg.apply_pages(r1, "s", HOLDER, &pages, &NO_TARGETS, &now(1))
                .unwrap_err();
        assert!(
            matches!(e, StoreError::LeaseLost { ref source_name } if source_name == "s"),
            "{e}"
        );
        assert!(t.pg.offers_of("s").unwrap().is_empty());
        let c = t.pg.client.get_mut();
        let n: i64 = c
            .query_one(
                "SELECT (SELECT count(*) FROM offer_rows) + (SELECT count(*) FROM offer_changes)
                      + (SELECT count(*) FROM offer_rejections) + (SELECT pages FROM sync_runs)",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
        // The lease is checked at a page's end: a page that fails before it, on what the new
        // holder wrote (here an offer row the page cannot classify), still says the lease is
        // lost, not what it tripped on.
        c.batch_execute(
            "INSERT INTO offer_rows (source, external_id, name, status, content_hash, first_seen_at,
                                     updated_at, raw)
             VALUES ('s', 'c', 'C', 'active', 'h', 'x', 'x', '{}')",
        )
        .unwrap();
        let pages = vec![page(vec![offer("c", 0)], &[])];
        let e =
            t.pg.apply_pages(r1, "s", HOLDER, &pages, &NO_TARGETS, &now(1))
                .unwrap_err();
        assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
    }

    #[test]
    fn a_page_that_fails_midway_writes_nothing() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.apply(r1, &NO_TARGETS, || vec![page(vec![offer("a", 0)], &[])]);
        // An offer row without its offer_seen row: the page fails after its new offers were
        // classified, and nothing of it stays.
        t.pg.client
            .get_mut()
            .batch_execute("DELETE FROM offer_seen")
            .unwrap();
        let r2 = t.run(2);
        let pages = vec![
            page(vec![offer("b", 0)], &[]),
            page(vec![offer("a", 0)], &[]),
        ];
        let e =
            t.pg.apply_pages(r2, "s", HOLDER, &pages, &NO_TARGETS, &now(2))
                .unwrap_err();
        assert!(matches!(e, StoreError::Inconsistent(_)), "{e}");
        let c = t.pg.client.get_mut();
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM offer_rows WHERE external_id = 'b'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
        let pages: i64 = c
            .query_one("SELECT pages FROM sync_runs WHERE id = $1", &[&r2])
            .unwrap()
            .get(0);
        assert_eq!(pages, 0);
        // A bad value fails in the server (a `raw` that is not JSON): the whole call is undone.
        t.pg.client
            .get_mut()
            .batch_execute("DELETE FROM offer_rows")
            .unwrap();
        let mut bad = offer("c", 0);
        bad.raw = "not json".into();
        let pages = vec![page(vec![offer("d", 0)], &[]), page(vec![bad], &[])];
        assert!(t
            .pg
            .apply_pages(r2, "s", HOLDER, &pages, &NO_TARGETS, &now(2))
            .is_err());
        assert!(t.pg.offers_of("s").unwrap().is_empty());
    }

    #[test]
    fn new_and_changed_offers_are_planned_in_order_as_on_sqlite() {
        use super::super::planning::testkit::{lite_outbox, pg_outbox, target};
        let mut t = Twin::new();
        let cfg = [target("t", &["s"]), target("u", &["other"])];
        let planner = Targets(&cfg);
        let r1 = t.run(1);
        t.apply(r1, &planner, || {
            vec![
                page(vec![offer("b", 0), offer("a", 0), offer("b", 0)], &[]),
                page(vec![offer("c", 0)], &[]),
            ]
        });
        let first = pg_outbox(&mut t.pg);
        assert_eq!(first.len(), 3);
        let r2 = t.run(2);
        t.apply(r2, &planner, || {
            vec![page(
                vec![offer("c", 2), offer("a", 0), offer("d", 0), offer("b", 1)],
                &[],
            )]
        });
        t.assert_same();
        let pg = pg_outbox(&mut t.pg);
        assert_eq!(pg, lite_outbox(&t.lite));
        let order: Vec<(&str, &str)> = pg.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect();
        assert_eq!(
            order,
            [
                ("b", "create"),
                ("a", "create"),
                ("c", "create"),
                ("d", "create")
            ]
        );
        assert!(pg.iter().all(|r| r.0 == "t"));
        // The changed ones replaced their waiting creates with their new content; the
        // unchanged one was not planned again.
        assert_ne!(pg[0].4, first[0].4, "b's create carries its new payout");
        assert_eq!(pg[1], first[1]);
    }

    #[test]
    fn ids_are_compared_byte_for_byte_and_listed_in_byte_order() {
        let mut t = Twin::new();
        let r1 = t.run(1);
        t.apply(r1, &NO_TARGETS, || {
            vec![page(
                vec![
                    offer("b", 0),
                    offer("B", 0),
                    offer("a", 0),
                    offer("10", 0),
                    offer("9", 0),
                    offer("é", 0),
                ],
                &[],
            )]
        });
        t.assert_same();
        let ids: Vec<String> =
            t.pg.offers_of("s")
                .unwrap()
                .into_iter()
                .map(|o| o.offer.external_id)
                .collect();
        assert_eq!(ids, ["10", "9", "B", "a", "b", "é"]);
    }
}
