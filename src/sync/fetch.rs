//! The fetch loop of one run: one request in flight while the previous page is normalized, each
//! page checked by the guards and sent to the writer; it ends with an [`Ending`].

use super::guards::{earned_end, Pagination};
use super::outcome::Ending;
use super::{PageProgress, SyncContext};
use crate::config::SourceConfig;
use crate::http::{CallError, Endpoint, FailureClass};
use crate::model::StopReason;
use crate::sources::{Cursor, Page, Rejected, RowsPage, Source};
use crate::store::PageBatch;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Rejection reasons kept in `offer_rejections` per run (all are counted in `sync_runs`).
const REJECTIONS_KEPT_PER_RUN: usize = 1000;
/// Rejections logged per run (the rest are counted).
const REJECTIONS_LOGGED_PER_RUN: usize = 20;

type Fetch = JoinHandle<Result<RowsPage, CallError>>;

pub(super) struct FetchLoop<'a> {
    pub ctx: &'a SyncContext,
    pub cfg: &'a SourceConfig,
    pub source: Arc<dyn Source>,
    pub endpoint: Arc<Endpoint>,
    pub started: Instant,
    /// The endpoint's (retries, rate-limited) counters when the run started.
    pub counters_at_start: (u64, u64),
    guards: Pagination,
    rejected_logged: usize,
    rejections_kept: usize,
    offers_total: u64,
    /// Set by the writer while pages are mostly new or changed: encode their columns here.
    encode_ahead: Arc<std::sync::atomic::AtomicBool>,
}

impl<'a> FetchLoop<'a> {
    pub fn new(
        ctx: &'a SyncContext,
        cfg: &'a SourceConfig,
        source: Arc<dyn Source>,
        endpoint: Arc<Endpoint>,
        encode_ahead: Arc<std::sync::atomic::AtomicBool>,
    ) -> FetchLoop<'a> {
        let (_, retries, limited) = endpoint.counters.snapshot();
        FetchLoop {
            ctx,
            cfg,
            source,
            endpoint,
            started: Instant::now(),
            counters_at_start: (retries, limited),
            guards: Pagination::new(cfg.max_pages),
            rejected_logged: 0,
            rejections_kept: 0,
            offers_total: 0,
            encode_ahead,
        }
    }

    /// Fetch the page at `cursor` (the `nth` of its pass) on the runtime.
    fn spawn(&self, cursor: Cursor, nth: u64) -> Fetch {
        let (source, endpoint) = (self.source.clone(), self.endpoint.clone());
        let max_pages = self.cfg.max_pages;
        tokio::spawn(
            async move {
                endpoint
                    .call(
                        || source.request(&cursor),
                        |resp| {
                            source
                                .parse_rows(&cursor, resp)
                                .and_then(|rows| earned_end(rows, nth, max_pages))
                        },
                    )
                    .await
            }
            .instrument(tracing::Span::current()),
        )
    }

    fn shutdown_stop(&self) -> Ending {
        Ending::Guard(
            StopReason::Shutdown,
            format!("stopped by shutdown after {} pages", self.guards.pages()),
        )
    }

    /// The page `call` fetches, unless the run's budget runs out or a shutdown comes first (a
    /// shutdown does not wait out a rate-limit pause or a retry).
    async fn await_page(&self, call: &mut Fetch) -> Result<RowsPage, Ending> {
        let budget = self
            .cfg
            .http
            .run_timeout
            .map(|b| b.saturating_sub(self.started.elapsed()));
        let bounded = async {
            match budget {
                None => Ok((&mut *call).await),
                Some(b) => tokio::time::timeout(b, &mut *call).await,
            }
        };
        let page = self.guards.pages() + 1;
        let joined = tokio::select! {
            r = bounded => match r {
                Ok(r) => r,
                Err(_) => {
                    call.abort();
                    let secs = self.cfg.http.run_timeout.unwrap_or_default().as_secs();
                    return Err(Ending::Guard(StopReason::RunTimeout, format!("stopped after run_timeout_seconds = {secs}")));
                }
            },
            _ = self.ctx.shutdown.wait() => {
                call.abort();
                return Err(self.shutdown_stop());
            }
        };
        match joined {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => Err(Ending::Call { page, error }),
            Err(join) => Err(Ending::Call {
                page,
                error: CallError {
                    class: FailureClass::Permanent,
                    message: format!("the page's fetch task failed: {join}"),
                    attempts: 0,
                    status: None,
                    reason: None,
                },
            }),
        }
    }

    /// Fetch, check and send pages to the writer until the feed ends or something stops it.
    pub async fn run(&mut self, tx: tokio::sync::mpsc::Sender<PageBatch>) -> Ending {
        let mut inflight: Option<Fetch> = None;
        let mut cursor = self.source.first_cursor();
        let ending = loop {
            if self.ctx.shutdown.is_set() {
                break self.shutdown_stop();
            }
            if let Err((reason, msg)) = self.guards.may_fetch() {
                break Ending::Guard(reason, msg);
            }
            let mut call = inflight
                .take()
                .unwrap_or_else(|| self.spawn(cursor.clone(), self.guards.this_nth()));
            let rows = match self.await_page(&mut call).await {
                Ok(rows) => rows,
                Err(ending) => break ending,
            };
            // The next cursor is known from the envelope: fetch it while this page normalizes.
            if let Some(n) = &rows.next {
                if let (Some(nth), false) =
                    (self.guards.ahead(&cursor, n), self.ctx.shutdown.is_set())
                {
                    inflight = Some(self.spawn(n.clone(), nth));
                }
            }
            let mut page = rows.normalize(&*self.source, &cursor);
            if self.encode_ahead.load(std::sync::atomic::Ordering::Relaxed) {
                page.offers
                    .iter_mut()
                    .for_each(crate::model::SourcedOffer::encode);
            }
            if let Err((reason, msg)) = self.guards.arrived(&cursor, &page.offers) {
                break Ending::Guard(reason, msg);
            }
            let (next, expected) = (page.next.clone(), page.expected_pages);
            self.progress(&page);
            if tx.send(self.batch(page)).await.is_err() {
                break Ending::Writer;
            }
            if let Err((reason, msg)) = self.guards.beyond_total(expected) {
                break Ending::Guard(reason, msg);
            }
            match next {
                None => break Ending::Complete,
                Some(n) => {
                    self.guards.advance(&cursor, &n);
                    cursor = n;
                }
            }
        };
        if let Some(next) = inflight.take() {
            // A guard stopped the run: the page fetched ahead is not wanted.
            next.abort();
        }
        ending
    }

    fn progress(&mut self, page: &Page) {
        self.offers_total += page.offers.len() as u64;
        if let Some(p) = &self.ctx.progress {
            let (_, retries, limited) = self.endpoint.counters.snapshot();
            p.page(
                &self.cfg.name,
                PageProgress {
                    pages: self.guards.pages(),
                    expected_pages: page.expected_pages,
                    offers: self.offers_total,
                    retries: retries - self.counters_at_start.0,
                    rate_limited: limited - self.counters_at_start.1,
                },
            );
        }
    }

    /// The page for the writer: its offers, and its rejections (logged and kept up to the
    /// run's limits, every one counted).
    fn batch(&mut self, page: Page) -> PageBatch {
        let mut rejections = Vec::new();
        for r in &page.rejected {
            if self.rejected_logged < REJECTIONS_LOGGED_PER_RUN {
                log_rejected(&self.cfg.name, r);
                self.rejected_logged += 1;
            }
            if self.rejections_kept < REJECTIONS_KEPT_PER_RUN {
                // Platform text: never let a credential it echoes reach the database.
                rejections.push((
                    r.external_id.as_deref().map(|id| self.endpoint.scrub(id)),
                    self.endpoint.scrub(&r.reason),
                ));
                self.rejections_kept += 1;
            }
        }
        PageBatch {
            offers: page.offers,
            rejected: page.rejected.len() as u64,
            rejections,
            rejected_ids: page
                .rejected
                .into_iter()
                .filter_map(|r| r.external_id)
                .collect(),
        }
    }
}

fn log_rejected(source: &str, r: &Rejected) {
    tracing::warn!(
        source,
        offer = r.external_id.as_deref().unwrap_or("(no id)"),
        reason = %r.reason,
        "offer rejected"
    );
}
