//! Source platforms behind one trait.
//!
//! A [`Source`] turns "give me page k" into an [`HttpRequest`] and a response into a [`Page`] of
//! canonical offers plus the pagination state. It never touches the store, the retry loop, the
//! pacing or the clock: the sync engine (`crate::sync`) and the HTTP layer (`crate::http`) do.
//!
//! # Adding a platform
//! 1. `src/sources/<kind>.rs` implementing [`Source`] (build requests, parse pages, normalize
//!    offers, classify errors with [`Failure`]s).
//! 2. `src/config/platform/<kind>.rs`: the keys only it takes (a serde struct), their
//!    validation, its page limits and default pace, as a `Declaration`; a `SourceKind` variant
//!    with its arm in `SourceKind::declaration`, and a `PlatformOptions` variant for its options.
//! 3. Its arm in [`build`], a twin in `crate::sandbox`, and its README section with the
//!    "Platform keys" line (a test compares it with the declaration).

pub mod affise;
pub mod cake;
pub mod everflow;
pub mod generic;
pub mod hasoffers;
pub mod lenient;
pub mod offer18;
pub mod offerslook;
#[cfg(test)]
mod testing;
pub mod trackier;
pub mod trackly;
pub mod youmi;

use crate::config::{Secret, SourceConfig, SourceKind};
use crate::http::{Failure, HttpRequest, HttpResponse};
use crate::model::SourcedOffer;
use serde_json::value::RawValue;

/// Where a run is in a source's feed. `pass` lets a source walk several listings in one run
/// (Trackly's archived offers); `token` carries cursor/next-URL pagination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub pass: u32,
    pub page: u64,
    pub token: Option<String>,
}

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor {
            pass: 0,
            page: 1,
            token: None,
        }
    }
}

impl Cursor {
    /// The next page of the same pass (a platform naming page `u64::MAX` meets `max_pages`
    /// long before this saturates).
    pub fn next_page(&self) -> Cursor {
        Cursor {
            pass: self.pass,
            page: self.page.saturating_add(1),
            token: None,
        }
    }
}

/// An offer the platform sent that could not be normalized; skipped and counted, never silently.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub external_id: Option<String>,
    pub reason: String,
}

/// A page's rows as owned raw JSON, each exactly as the platform sent it.
pub(crate) fn own_rows(rows: &[&RawValue]) -> Vec<Box<RawValue>> {
    rows.iter().map(|r| (*r).to_owned()).collect()
}

/// A page of a feed that counts its rows: `total` rows in pages of `page_size`, this one at
/// `cursor` with `rows`. The feed ends with an empty page, a page past the total, or (without
/// a total) a short page; an empty page is a valid end.
pub(crate) fn counted_page(
    rows: Vec<Box<RawValue>>,
    cursor: &Cursor,
    page_size: u64,
    total: Option<u64>,
) -> RowsPage {
    let page_size = page_size.max(1);
    let end = rows.is_empty()
        || match total {
            Some(t) => cursor.page.saturating_mul(page_size) >= t,
            None => (rows.len() as u64) < page_size,
        };
    RowsPage {
        rows,
        next: (!end).then(|| cursor.next_page()),
        expected_pages: total.map(|t| t.div_ceil(page_size)),
    }
}

/// The id at JSON `pointer` of a row that could not be read as the platform's offer (text or
/// number), so that its rejection still names it.
pub(crate) fn id_at(raw: &RawValue, pointer: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    match v.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The offer a platform row normalizes to, unless it fails the plausibility checks
/// (`model::check`): then the rejection, naming the offer. The row's JSON becomes the stored
/// payload without a copy.
fn accept(offer: crate::model::Offer, raw: Box<RawValue>) -> Result<SourcedOffer, Rejected> {
    let checked = if raw.get().contains('\u{FFFD}') {
        // The HTTP layer replaced bytes that were not UTF-8 (see `http::Endpoint`).
        Err("the offer contains bytes that are not valid UTF-8".to_string())
    } else {
        crate::model::check(&offer, raw.get().len())
    };
    match checked {
        Ok(()) => Ok(SourcedOffer::new(
            offer,
            String::from(Box::<str>::from(raw)),
        )),
        Err(reason) => Err(Rejected {
            external_id: Some(offer.external_id.trim().to_string()),
            reason,
        }),
    }
}

/// The row's id, or the rejection every platform gives a row without one.
pub(crate) fn require_id(id: Option<String>) -> Result<String, Rejected> {
    id.filter(|s| !s.trim().is_empty()).ok_or_else(|| Rejected {
        external_id: None,
        reason: "offer has no id".into(),
    })
}

/// One page as the platform's envelope delivered it: its rows not yet normalized, and the
/// pagination state. Knowing the next cursor before normalizing lets the sync engine fetch the
/// next page while it normalizes this one.
#[derive(Debug, Clone)]
pub struct RowsPage {
    pub rows: Vec<Box<RawValue>>,
    /// As [`Page::next`].
    pub next: Option<Cursor>,
    /// As [`Page::expected_pages`].
    pub expected_pages: Option<u64>,
}

impl RowsPage {
    /// Normalize every row: the offers, and the rows rejected (never silently dropped).
    pub fn normalize<S: Source + ?Sized>(self, source: &S, cursor: &Cursor) -> Page {
        let mut offers = Vec::with_capacity(self.rows.len());
        let mut rejected = Vec::new();
        for raw in self.rows {
            match source
                .normalize_row(cursor, &raw)
                .and_then(|o| accept(o, raw))
            {
                Ok(o) => offers.push(o),
                Err(r) => rejected.push(r),
            }
        }
        Page {
            offers,
            rejected,
            next: self.next,
            expected_pages: self.expected_pages,
        }
    }
}

/// One parsed page.
#[derive(Debug, Clone)]
pub struct Page {
    pub offers: Vec<SourcedOffer>,
    pub rejected: Vec<Rejected>,
    /// The next page to fetch, or `None` when the platform's own end signal was reached
    /// (total reached, short or empty page, no next page).
    pub next: Option<Cursor>,
    /// How many pages this pass should have, when the platform says (`total`, `totalPages`).
    pub expected_pages: Option<u64>,
}

pub trait Source: Send + Sync {
    /// Where the feed starts.
    fn first_cursor(&self) -> Cursor {
        Cursor::default()
    }

    /// The request for the page at `cursor`. Must not perform IO.
    fn request(&self, cursor: &Cursor) -> HttpRequest;

    /// What the response means: a page of raw rows, or a [`Failure`] saying whether retrying
    /// can help. Must not perform IO or sleep. Rows are normalized by [`Source::normalize_row`].
    fn parse_rows(&self, cursor: &Cursor, response: &HttpResponse) -> Result<RowsPage, Failure>;

    /// One row of the page at `cursor` as a canonical offer (not yet normalized: the engine
    /// checks it, normalizes it and keeps `raw` as the stored payload), or why it was rejected.
    fn normalize_row(
        &self,
        cursor: &Cursor,
        raw: &RawValue,
    ) -> Result<crate::model::Offer, Rejected>;

    /// [`Source::parse_rows`] and every row normalized.
    fn parse(&self, cursor: &Cursor, response: &HttpResponse) -> Result<Page, Failure> {
        Ok(self.parse_rows(cursor, response)?.normalize(self, cursor))
    }
}

/// Construct the platform adapter for a configured source.
pub fn build(cfg: &SourceConfig, api_key: Secret) -> Result<Box<dyn Source>, String> {
    match cfg.kind {
        SourceKind::Trackly => Ok(Box::new(trackly::Trackly::new(cfg, api_key)?)),
        SourceKind::Offerslook => Ok(Box::new(offerslook::Offerslook::new(cfg, api_key)?)),
        SourceKind::S2s => Ok(Box::new(youmi::Youmi::new(cfg, api_key)?)),
        SourceKind::Affise => Ok(Box::new(affise::Affise::new(cfg, api_key)?)),
        SourceKind::Generic => Ok(Box::new(generic::Generic::new(cfg, api_key)?)),
        SourceKind::Everflow => Ok(Box::new(everflow::Everflow::new(cfg, api_key)?)),
        SourceKind::HasOffers => Ok(Box::new(hasoffers::HasOffers::new(cfg, api_key)?)),
        SourceKind::Trackier => Ok(Box::new(trackier::Trackier::new(cfg, api_key)?)),
        SourceKind::Offer18 => Ok(Box::new(offer18::Offer18::new(cfg, api_key)?)),
        SourceKind::Cake => Ok(Box::new(cake::Cake::new(cfg, api_key)?)),
    }
}
