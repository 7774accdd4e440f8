//! Source platforms behind one trait.
//!
//! A [`Source`] turns "give me page k" into an [`HttpRequest`] and a response into a [`Page`] of
//! canonical offers plus the pagination state. It never touches the store, the retry loop, the
//! pacing or the clock: the sync engine (`crate::sync`) and the HTTP layer (`crate::http`) do.
//!
//! # Adding a platform
//! 1. Add a file here implementing [`Source`] (build requests, parse pages, normalize offers,
//!    classify errors with [`Failure`]s).
//! 2. Add its kind to `config::SourceKind` (and its options to the raw config with validation).
//! 3. Construct it in [`build`], give it a sandbox twin in `crate::sandbox`, and document its
//!    normalization in the README's platform table.

pub mod affise;
pub mod generic;
pub mod lenient;
pub mod offerslook;
pub mod trackly;
pub mod youmi;

use crate::config::{Secret, SourceConfig, SourceKind};
use crate::http::{Failure, HttpRequest, HttpResponse};
use crate::model::SourcedOffer;

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
    /// The next page of the same pass.
    pub fn next_page(&self) -> Cursor {
        Cursor {
            pass: self.pass,
            page: self.page + 1,
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

/// Normalize every row of a page: the offers, and the rows rejected (never silently dropped).
pub(crate) fn normalize_rows(
    rows: &[&serde_json::value::RawValue],
    normalize: impl Fn(&serde_json::value::RawValue) -> Result<SourcedOffer, Rejected>,
) -> (Vec<SourcedOffer>, Vec<Rejected>) {
    let mut offers = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    for raw in rows {
        match normalize(raw) {
            Ok(o) => offers.push(o),
            Err(r) => rejected.push(r),
        }
    }
    (offers, rejected)
}

/// The row's id, or the rejection every platform gives a row without one.
pub(crate) fn require_id(id: Option<String>) -> Result<String, Rejected> {
    id.filter(|s| !s.trim().is_empty()).ok_or_else(|| Rejected {
        external_id: None,
        reason: "offer has no id".into(),
    })
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

    /// What the response means: a page, or a [`Failure`] saying whether retrying can help.
    /// Must not perform IO or sleep.
    fn parse(&self, cursor: &Cursor, response: &HttpResponse) -> Result<Page, Failure>;
}

/// Construct the platform adapter for a configured source.
pub fn build(cfg: &SourceConfig, api_key: Secret) -> Result<Box<dyn Source>, String> {
    match cfg.kind {
        SourceKind::Trackly => Ok(Box::new(trackly::Trackly::new(cfg, api_key)?)),
        SourceKind::Offerslook => Ok(Box::new(offerslook::Offerslook::new(cfg, api_key)?)),
        SourceKind::S2s => Ok(Box::new(youmi::Youmi::new(cfg, api_key)?)),
        SourceKind::Affise => Ok(Box::new(affise::Affise::new(cfg, api_key)?)),
        SourceKind::Generic => Ok(Box::new(generic::Generic::new(cfg, api_key)?)),
    }
}
