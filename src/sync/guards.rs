//! The pagination guards (invariant 6), as a pure struct the fetch loop consults: the page cap,
//! a page repeating the previous one (a looping paginator), more pages than the platform's own
//! total, and completeness earned (an empty page before the platform's page count is a page
//! missing, not the end). No IO: tested with plain values.

use crate::http::Failure;
use crate::model::{SourcedOffer, StopReason};
use crate::sources::{Cursor, RowsPage};

/// Why a guard stopped the run, and what to tell the operator.
pub type Stop = (StopReason, String);

/// Where the fetch loop is, as the guards see it.
#[derive(Debug, Clone)]
pub struct Pagination {
    max_pages: u64,
    /// Pages fetched in this run.
    pages: u64,
    /// Pages fetched in the current pass (a source may walk several listings).
    pass_pages: u64,
    /// Fingerprint of the previous page's ids.
    prev_ids: Option<u64>,
    /// Fingerprint of the page being handled, the previous one once the loop advances.
    this_ids: Option<u64>,
}

impl Pagination {
    pub fn new(max_pages: u64) -> Pagination {
        Pagination {
            max_pages,
            pages: 0,
            pass_pages: 0,
            prev_ids: None,
            this_ids: None,
        }
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Before fetching another page: the page cap.
    pub fn may_fetch(&self) -> Result<(), Stop> {
        if self.pages >= self.max_pages {
            return Err((
                StopReason::PageCap,
                format!(
                    "stopped after max_pages = {} pages without reaching the end of the feed",
                    self.max_pages
                ),
            ));
        }
        Ok(())
    }

    /// The number within its pass (1-based) of the page at `next`, fetched after the page at
    /// `current`; `None` when the cap leaves no room for it.
    pub fn ahead(&self, current: &Cursor, next: &Cursor) -> Option<u64> {
        (self.pages + 1 < self.max_pages).then(|| {
            if next.pass == current.pass {
                self.pass_pages + 2
            } else {
                1
            }
        })
    }

    /// The number within its pass of the page about to be fetched.
    pub fn this_nth(&self) -> u64 {
        self.pass_pages + 1
    }

    /// A page at `cursor` arrived with `offers`: count it, and stop if it repeats the
    /// previous page's ids.
    pub fn arrived(&mut self, cursor: &Cursor, offers: &[SourcedOffer]) -> Result<(), Stop> {
        self.pages += 1;
        self.pass_pages += 1;
        self.this_ids = ids_fingerprint(offers);
        if self.this_ids.is_some() && self.this_ids == self.prev_ids {
            return Err((
                StopReason::RepeatedPage,
                format!(
                    "page {} (pass {}) repeats the previous page's {} offer ids; the platform's pagination is looping",
                    cursor.page,
                    cursor.pass,
                    offers.len()
                ),
            ));
        }
        Ok(())
    }

    /// After the page is stored: stop if the pass has more pages than the platform's total
    /// implies (one extra page is allowed: a total that grew during the run).
    pub fn beyond_total(&self, expected_pages: Option<u64>) -> Result<(), Stop> {
        match expected_pages.filter(|exp| self.pass_pages > exp.saturating_add(1)) {
            Some(exp) => Err((
                StopReason::BeyondTotal,
                format!(
                    "fetched {} pages but the platform's total implies {exp}; stopping instead of looping",
                    self.pass_pages
                ),
            )),
            None => Ok(()),
        }
    }

    /// Move on from the page at `current` to `next`: a new pass starts its counts afresh.
    pub fn advance(&mut self, current: &Cursor, next: &Cursor) {
        self.prev_ids = self.this_ids.take();
        if next.pass != current.pass {
            self.pass_pages = 0;
            self.prev_ids = None;
        }
    }
}

/// Completeness is earned: a page without rows before the platform's own page count is not
/// the end of the feed but a page missing (transient: retried, then the run ends `partial`
/// with reason `incomplete`). A count implying more pages than `max_pages` is not believed
/// (a total of 10^30 would otherwise keep every run from ending): the run then ends on the
/// platform's other signals (an empty or short page, no next page).
pub fn earned_end(mut rows: RowsPage, nth: u64, max_pages: u64) -> Result<RowsPage, Failure> {
    if rows.expected_pages.is_some_and(|e| e > max_pages) {
        rows.expected_pages = None;
    }
    match rows.expected_pages {
        Some(expected) if rows.rows.is_empty() && nth < expected => Err(Failure::transient(
            format!(
                "page {nth} of this listing is empty although the platform says it has {expected} pages; the feed is incomplete"
            ),
        )
        .with_reason(StopReason::Incomplete)),
        _ => Ok(rows),
    }
}

/// A hash of a page's offer ids in order, `None` for a page without offers.
fn ids_fingerprint(offers: &[SourcedOffer]) -> Option<u64> {
    if offers.is_empty() {
        return None;
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for o in offers {
        h.update(o.offer.external_id.as_bytes());
        h.update(&[0]);
    }
    Some(h.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Offer;

    fn offers(ids: &[&str]) -> Vec<SourcedOffer> {
        ids.iter()
            .map(|id| SourcedOffer::new(Offer::new(*id, format!("offer {id}")), "{}"))
            .collect()
    }

    fn at(pass: u32, page: u64) -> Cursor {
        Cursor {
            pass,
            page,
            token: None,
        }
    }

    #[test]
    fn a_page_repeating_the_previous_one_stops_the_run() {
        let mut p = Pagination::new(100);
        p.arrived(&at(0, 1), &offers(&["a", "b"])).unwrap();
        p.advance(&at(0, 1), &at(0, 2));
        let (reason, msg) = p.arrived(&at(0, 2), &offers(&["a", "b"])).unwrap_err();
        assert_eq!(reason, StopReason::RepeatedPage);
        assert!(msg.contains("page 2 (pass 0) repeats"), "{msg}");
    }

    #[test]
    fn the_same_ids_in_a_new_pass_or_two_empty_pages_are_no_loop() {
        let mut p = Pagination::new(100);
        p.arrived(&at(0, 1), &offers(&["a"])).unwrap();
        p.advance(&at(0, 1), &at(1, 1));
        assert_eq!(p.this_nth(), 1, "a new pass starts at its first page");
        p.arrived(&at(1, 1), &offers(&["a"])).unwrap();
        p.advance(&at(1, 1), &at(1, 2));
        p.arrived(&at(1, 2), &[]).unwrap();
        p.advance(&at(1, 2), &at(1, 3));
        p.arrived(&at(1, 3), &[]).unwrap();
        assert_eq!((p.pages(), p.this_nth()), (4, 4));
    }

    #[test]
    fn the_page_cap_stops_before_fetching_and_fetching_ahead() {
        let mut p = Pagination::new(2);
        p.may_fetch().unwrap();
        assert_eq!(p.ahead(&at(0, 1), &at(0, 2)), Some(2));
        p.arrived(&at(0, 1), &offers(&["a"])).unwrap();
        // The second page is the last the cap allows: nothing is fetched ahead of it.
        assert_eq!(p.ahead(&at(0, 2), &at(0, 3)), None);
        p.advance(&at(0, 1), &at(0, 2));
        p.arrived(&at(0, 2), &offers(&["b"])).unwrap();
        assert_eq!(p.may_fetch().unwrap_err().0, StopReason::PageCap);
    }

    #[test]
    fn more_pages_than_the_total_implies_stop_after_one_extra() {
        let mut p = Pagination::new(100);
        for (n, id) in ["a", "b", "c"].iter().enumerate() {
            p.arrived(&at(0, n as u64 + 1), &offers(&[id])).unwrap();
            if n < 2 {
                p.beyond_total(Some(1)).unwrap();
            }
            p.advance(&at(0, n as u64 + 1), &at(0, n as u64 + 2));
        }
        assert_eq!(
            p.beyond_total(Some(1)).unwrap_err().0,
            StopReason::BeyondTotal
        );
        assert!(p.beyond_total(None).is_ok());
    }

    #[test]
    fn an_empty_page_before_the_platforms_count_is_a_missing_page() {
        let rows = |n: usize, expected: Option<u64>| RowsPage {
            rows: (0..n)
                .map(|_| serde_json::value::RawValue::from_string("{}".into()).unwrap())
                .collect(),
            next: None,
            expected_pages: expected,
        };
        let e = earned_end(rows(0, Some(3)), 2, 100).unwrap_err();
        assert_eq!(e.reason, Some(StopReason::Incomplete));
        assert!(
            earned_end(rows(0, Some(3)), 3, 100).is_ok(),
            "the last page may be empty"
        );
        assert!(earned_end(rows(1, Some(3)), 2, 100).is_ok());
        // A total beyond max_pages is not believed.
        let r = earned_end(rows(0, Some(1_000)), 2, 100).unwrap();
        assert_eq!(r.expected_pages, None);
    }
}
