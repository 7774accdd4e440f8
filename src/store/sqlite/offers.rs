//! Writes to the mirror: each page whole in one transaction (upserts, change records, run counters, lease
//! heartbeat), removal detection at the end of a complete run, and approval of held removals.

use super::{Result, Sqlite, StoreError};
use crate::model::{diff, ChangeKind, Offer, OfferStatus, PayoutType, Planner, SourcedOffer};
use rusqlite::{params, CachedStatement, OptionalExtension, Row, Transaction};

/// What one page did to the mirror.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageCounts {
    pub seen: u64,
    pub added: u64,
    pub changed: u64,
    pub reappeared: u64,
    pub unchanged: u64,
    pub duplicates: u64,
}

/// An offer as stored, with its bookkeeping.
#[derive(Debug, Clone)]
pub struct StoredOffer {
    pub source: String,
    pub offer: Offer,
    pub content_hash: String,
    pub first_seen_at: String,
    pub last_seen_at: String,
    pub updated_at: String,
    pub removed_at: Option<String>,
    pub raw: String,
}

pub(in crate::store) const OFFER_COLUMNS: &str = "name, status, payout, currency, payout_type, revenue, countries, platforms, \
    categories, tracking_url, preview_url, advertiser, description, icon_url, app_package, starts_at, ends_at, \
    payouts, payout_unit, excluded_countries, approval, caps";

/// Rebuild an offer from the canonical columns starting at `at`.
pub(in crate::store) fn offer_from_row(
    external_id: String,
    r: &Row<'_>,
    at: usize,
) -> rusqlite::Result<Offer> {
    super::super::offer_from_columns(external_id, |i| r.get::<_, Option<String>>(at + i))
}

pub(in crate::store) fn heartbeat(
    tx: &Transaction<'_>,
    source: &str,
    holder: &str,
    now: &str,
) -> Result<()> {
    let n = tx
        .prepare_cached(
            "UPDATE source_leases SET heartbeat_at = ?3 WHERE source = ?1 AND holder = ?2",
        )?
        .execute(params![source, holder, now])?;
    if n == 0 {
        return Err(StoreError::LeaseLost {
            source_name: source.to_string(),
        });
    }
    Ok(())
}

/// One `offer_changes` row.
struct ChangeRow<'a> {
    run_id: i64,
    /// The offer's `offer_rows.id` (what `offer_changes_by_offer` is keyed on).
    offer_id: i64,
    source: &'a str,
    external_id: &'a str,
    kind: ChangeKind,
    diff: &'a str,
    now: &'a str,
}

fn record_change(change: &mut CachedStatement<'_>, c: &ChangeRow<'_>) -> Result<()> {
    change.execute(params![
        c.run_id,
        c.source,
        c.external_id,
        c.kind.as_str(),
        c.diff,
        c.now,
        c.offer_id
    ])?;
    Ok(())
}

impl Sqlite {
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
        let tx = super::gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
        heartbeat(&tx, source, holder, now)?;
        let mut counts = Vec::with_capacity(pages.len());
        {
            let mut st = OfferStatements::prepare(&tx)?;
            for page in pages {
                counts.push(apply_page(
                    &tx, &mut st, run_id, source, page, planner, now,
                )?);
            }
        }
        tx.commit()?;
        Ok(counts)
    }
}

/// One page for [`Store::apply_pages`]: its offers, how many rows the source rejected, and the
/// (offer id, reason) of those whose reasons are kept.
#[derive(Debug, Default)]
pub struct PageBatch {
    pub offers: Vec<SourcedOffer>,
    pub rejected: u64,
    pub rejections: Vec<(Option<String>, String)>,
    /// The ids of every rejected offer that has one (marked seen, so never removed for bad data).
    pub rejected_ids: Vec<String>,
}

/// The statements a page transaction runs for each offer, prepared once per transaction:
/// the statement cache would otherwise hash each SQL text on every lookup, and the wide
/// INSERT's text would be formatted again for every offer.
struct OfferStatements<'t> {
    /// Live, same content, not yet seen by this run: mark it seen.
    seen_unchanged: CachedStatement<'t>,
    /// A new offer's wide row; nothing when the offer is already in the mirror.
    insert_new: CachedStatement<'t>,
    insert_seen: CachedStatement<'t>,
    find: CachedStatement<'t>,
    touch: CachedStatement<'t>,
    change: CachedStatement<'t>,
}

impl<'t> OfferStatements<'t> {
    fn prepare(tx: &'t Transaction<'_>) -> Result<OfferStatements<'t>> {
        Ok(OfferStatements {
            seen_unchanged: tx.prepare_cached(
                "UPDATE offer_seen SET last_run_id = ?3, last_seen_at = ?4, missed_runs = 0
                 WHERE offer_id = (SELECT id FROM offer_rows WHERE source = ?1 AND external_id = ?2)
                   AND live_hash = ?5 AND last_run_id <> ?3",
            )?,
            insert_new: tx.prepare_cached(&format!(
                "INSERT INTO offer_rows (source, external_id, {OFFER_COLUMNS}, content_hash, first_seen_at,
                                         updated_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                         ?20, ?24, ?25, ?26, ?27, ?21, ?22, ?22, ?23)
                 ON CONFLICT (source, external_id) DO NOTHING"
            ))?,
            insert_seen: tx.prepare_cached(
                "INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at, live_hash)
                 VALUES (last_insert_rowid(), ?1, ?2, ?3)",
            )?,
            // Index-only on offer_rows (the rowid is in the unique key's index), then the
            // narrow offer_seen row: an unchanged offer never reads its wide row.
            find: tx.prepare_cached(
                "SELECT s.offer_id, s.live_hash, s.last_run_id
                 FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
                 WHERE o.source = ?1 AND o.external_id = ?2",
            )?,
            touch: tx.prepare_cached(
                "UPDATE offer_seen SET last_run_id = ?2, last_seen_at = ?3, missed_runs = 0 WHERE offer_id = ?1",
            )?,
            change: tx.prepare_cached(
                "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at, offer_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
        })
    }
}

/// What the page loop expects of the next offer, from the one before: a re-sync sees long
/// runs of unchanged offers, a first sync long runs of new ones, and trying the one statement
/// that settles the expected case first saves a lookup per offer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unchanged,
    New,
    Unknown,
}

/// One page inside the writer's transaction, with its run counters.
fn apply_page(
    tx: &Transaction<'_>,
    st: &mut OfferStatements<'_>,
    run_id: i64,
    source: &str,
    page: &PageBatch,
    planner: &dyn Planner,
    now: &str,
) -> Result<PageCounts> {
    let mut c = PageCounts::default();
    let mut expect = Expect::Unchanged;
    for item in &page.offers {
        c.seen += 1;
        match expect {
            Expect::Unchanged => {
                let n = st.seen_unchanged.execute(params![
                    source,
                    item.offer.external_id,
                    run_id,
                    now,
                    item.content_hash
                ])?;
                if n == 1 {
                    c.unchanged += 1;
                    continue;
                }
            }
            Expect::New => {
                if insert_offer(tx, st, run_id, source, item, planner, now)? {
                    c.added += 1;
                    continue;
                }
            }
            Expect::Unknown => {}
        }
        let before = c;
        apply_offer(tx, st, run_id, source, item, planner, now, &mut c)?;
        expect = if c.unchanged > before.unchanged {
            Expect::Unchanged
        } else if c.added > before.added {
            Expect::New
        } else {
            Expect::Unknown
        };
    }
    // A rejected offer is still at the source: it was seen, so it is not counted missed (its
    // last good version stays in the mirror rather than being removed for bad data).
    for external_id in &page.rejected_ids {
        tx.prepare_cached(
            "UPDATE offer_seen SET last_run_id = ?3, last_seen_at = ?4, missed_runs = 0
             WHERE offer_id = (SELECT id FROM offer_rows WHERE source = ?1 AND external_id = ?2)
               AND live_hash IS NOT NULL",
        )?
        .execute(params![source, external_id, run_id, now])?;
    }
    for (external_id, reason) in &page.rejections {
        tx.prepare_cached(
            "INSERT INTO offer_rejections (run_id, source, external_id, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![run_id, source, external_id, reason, now])?;
    }
    tx.prepare_cached(
        "UPDATE sync_runs SET pages = pages + 1, offers_seen = offers_seen + ?2, added = added + ?3,
                    changed = changed + ?4, unchanged = unchanged + ?5, duplicates = duplicates + ?6,
                    rejected = rejected + ?7
             WHERE id = ?1",
        )?
        .execute(params![
            run_id,
            (c.seen - c.duplicates) as i64,
            c.added as i64,
            (c.changed + c.reappeared) as i64,
            c.unchanged as i64,
            c.duplicates as i64,
            page.rejected as i64
        ])?;
    Ok(c)
}

impl Sqlite {
    /// One offer with its bookkeeping, removed ones included.
    pub fn offer(&self, source: &str, external_id: &str) -> Result<Option<StoredOffer>> {
        let sql = format!(
            "SELECT o.source, o.external_id, o.content_hash, o.first_seen_at, s.last_seen_at, o.updated_at,
                    o.removed_at, o.raw, {OFFER_COLUMNS}
             FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id
             WHERE o.source = ?1 AND o.external_id = ?2"
        );
        Ok(self
            .conn
            .query_row(&sql, params![source, external_id], |r| {
                Ok(StoredOffer {
                    source: r.get(0)?,
                    offer: offer_from_row(r.get(1)?, r, 8)?,
                    content_hash: r.get(2)?,
                    first_seen_at: r.get(3)?,
                    last_seen_at: r.get(4)?,
                    updated_at: r.get(5)?,
                    removed_at: r.get(6)?,
                    raw: r.get(7)?,
                })
            })
            .optional()?)
    }

    /// Every offer of a source (removed ones included), ordered by external id. For tests and
    /// tools; a sync never loads a whole catalogue.
    pub fn offers_of(&self, source: &str) -> Result<Vec<StoredOffer>> {
        let ids: Vec<String> = self
            .conn
            .prepare("SELECT external_id FROM offer_rows WHERE source = ?1 ORDER BY external_id")?
            .query_map([source], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter()
            .filter_map(|id| self.offer(source, id).transpose())
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_offer(
    tx: &Transaction<'_>,
    st: &mut OfferStatements<'_>,
    run_id: i64,
    source: &str,
    item: &SourcedOffer,
    planner: &dyn Planner,
    now: &str,
    c: &mut PageCounts,
) -> Result<()> {
    let o = &item.offer;
    let found = st
        .find
        .query_row(params![source, o.external_id], |r| {
            // Compared in place: no String per offer for the hash.
            let live_same = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Text(h) => h == item.content_hash.as_bytes(),
                _ => false,
            };
            Ok((r.get::<_, i64>(0)?, live_same, r.get::<_, i64>(2)?))
        })
        .optional()?;
    match found {
        Some((_, _, last_run)) if last_run == run_id => c.duplicates += 1,
        Some((id, true, _)) => {
            st.touch.execute(params![id, run_id, now])?;
            c.unchanged += 1;
        }
        None => {
            if !insert_offer(tx, st, run_id, source, item, planner, now)? {
                return Err(StoreError::Inconsistent(format!(
                    "offer {source}/{} has a row in offer_rows but none in offer_seen",
                    o.external_id
                )));
            }
            c.added += 1;
        }
        Some((id, false, _)) => {
            match rewrite_offer(tx, st, id, run_id, source, item, planner, now)? {
                None => c.unchanged += 1,
                Some(ChangeKind::Reappeared) => c.reappeared += 1,
                Some(_) => c.changed += 1,
            }
        }
    }
    Ok(())
}

/// A new offer: its wide row, its `offer_seen` row, an `added` change, and a plan. `false`
/// (and nothing written) when the mirror already has the offer.
fn insert_offer(
    tx: &Transaction<'_>,
    st: &mut OfferStatements<'_>,
    run_id: i64,
    source: &str,
    item: &SourcedOffer,
    planner: &dyn Planner,
    now: &str,
) -> Result<bool> {
    let o = &item.offer;
    let k = item.columns();
    let n = st.insert_new.execute(params![
        source,
        o.external_id,
        o.name,
        o.status.as_str(),
        k.payout,
        o.currency,
        o.payout_type.map(PayoutType::as_str),
        k.revenue,
        k.countries,
        k.platforms,
        k.categories,
        o.tracking_url,
        o.preview_url,
        o.advertiser,
        o.description,
        o.icon_url,
        o.app_package,
        k.starts_at,
        k.ends_at,
        k.payouts,
        item.content_hash,
        now,
        item.raw,
        o.payout_unit.as_str(),
        k.excluded_countries,
        o.approval.map(|a| a.as_str()),
        k.caps
    ])?;
    if n == 0 {
        return Ok(false);
    }
    let offer_id = tx.last_insert_rowid();
    st.insert_seen
        .execute(params![run_id, now, item.content_hash])?;
    record_change(
        &mut st.change,
        &ChangeRow {
            run_id,
            offer_id,
            source,
            external_id: &o.external_id,
            kind: ChangeKind::Added,
            diff: "{}",
            now,
        },
    )?;
    super::planning::plan_offer(tx, planner, source, o, now)?;
    Ok(true)
}

/// A known offer whose content hash differs: rewrite it, record the field-level diff (a change,
/// or a reappearance after a removal) and plan it. `None` when the canonical content is the
/// same after all (only the hash is refreshed).
#[allow(clippy::too_many_arguments)]
fn rewrite_offer(
    tx: &Transaction<'_>,
    st: &mut OfferStatements<'_>,
    id: i64,
    run_id: i64,
    source: &str,
    item: &SourcedOffer,
    planner: &dyn Planner,
    now: &str,
) -> Result<Option<ChangeKind>> {
    let o = &item.offer;
    let k = item.columns();
    let old = tx
        .prepare_cached(&format!(
            "SELECT {OFFER_COLUMNS} FROM offer_rows WHERE id = ?1"
        ))?
        .query_row([id], |r| offer_from_row(o.external_id.clone(), r, 0))?;
    let was_removed = old.status == OfferStatus::Removed;
    let d = diff(&old, o);
    tx.prepare_cached(
    "UPDATE offer_rows SET name = ?3, status = ?4, payout = ?5, currency = ?6, payout_type = ?7,
            revenue = ?8, countries = ?9, platforms = ?10, categories = ?11, tracking_url = ?12,
            preview_url = ?13, advertiser = ?14, description = ?15, icon_url = ?16,
            app_package = ?17, starts_at = ?18, ends_at = ?19, payouts = ?20, content_hash = ?21,
            updated_at = CASE WHEN ?24 THEN ?22 ELSE updated_at END, raw = ?23, removed_at = NULL,
            payout_unit = ?25, excluded_countries = ?26, approval = ?27, caps = ?28
     WHERE id = ?1 AND external_id = ?2",
)?
.execute(params![
    id, o.external_id, o.name, o.status.as_str(), k.payout, o.currency,
    o.payout_type.map(PayoutType::as_str), k.revenue, k.countries, k.platforms, k.categories,
    o.tracking_url, o.preview_url, o.advertiser, o.description, o.icon_url, o.app_package,
    k.starts_at, k.ends_at, k.payouts, item.content_hash, now, item.raw, !d.is_empty(),
    o.payout_unit.as_str(), k.excluded_countries, o.approval.map(|a| a.as_str()), k.caps
])?;
    tx.prepare_cached(
        "UPDATE offer_seen SET last_run_id = ?2, last_seen_at = ?3, missed_runs = 0, live_hash = ?4
     WHERE offer_id = ?1",
    )?
    .execute(params![id, run_id, now, item.content_hash])?;
    if d.is_empty() {
        // Same canonical content under a different hash (a row written by an older
        // normalization): refresh the hash, record nothing.
        return Ok(None);
    }
    let kind = if was_removed {
        ChangeKind::Reappeared
    } else {
        ChangeKind::Changed
    };
    record_change(
        &mut st.change,
        &ChangeRow {
            run_id,
            offer_id: id,
            source,
            external_id: &o.external_id,
            kind,
            diff: &d.to_json().to_string(),
            now,
        },
    )?;
    super::planning::plan_offer(tx, planner, source, o, now)?;
    Ok(Some(kind))
}

/// The canonical offer as stored, inside a transaction (for planning).
pub(in crate::store) fn offer_in(
    tx: &rusqlite::Connection,
    source: &str,
    external_id: &str,
) -> Result<Option<Offer>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {OFFER_COLUMNS} FROM offer_rows WHERE source = ?1 AND external_id = ?2"
        ))?
        .query_row(params![source, external_id], |r| {
            offer_from_row(external_id.to_string(), r, 0)
        })
        .optional()?)
}
