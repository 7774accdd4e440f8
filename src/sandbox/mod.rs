//! Simulated platforms on 127.0.0.1 for `offersync demo`, the tests and the benchmarks.
//!
//! Test equipment, not product: each twin follows the wire contract in APIS.md (shapes, quirks,
//! errors) so the real adapters can be exercised without the internet. Every twin serves the
//! same kind of deterministic catalogue (`catalog`) through the shared request flow (`twin`),
//! under its own prefix:
//!
//! | platform | base_url to configure |
//! |---|---|
//! | Trackly | `{url}/trackly/api` |
//! | Offerslook | `{url}/offerslook` (`/v1/offers`, `/v1/batches/offers`, `/aff/v1/...`) |
//! | Youmi / Adxmi | `{url}/youmi/v1/online` (seed envelope), `{url}/youmi/v2/offline` (flat) |
//! | Affise | `{url}/affise` (`/3.0/offers`, `/3.0/partner/offers`) |
//! | Everflow | `{url}/everflow` (`/v1/affiliates/offersrunnable`, `/v1/affiliates/alloffers`) |
//! | Trackier | `{url}/trackier` (`/v2/publisher/campaigns`) |
//! | Offer18 | `{url}/offer18` (`/api/af/offers`, pages from 0); `{url}/offer18/one` (pages from 1) |
//! | CAKE | `{url}/cake` (`/affiliates/api/4/offers.asmx/OfferFeed`, XML) |
//! | HasOffers / TUNE | `{url}/hasoffers` (`/Apiv3/json`); `{url}/hasoffers/strict` rejects `contain[]=TrackingLink` |

pub mod affise;
pub mod cake;
pub mod catalog;
mod connectors;
pub mod everflow;
pub mod hasoffers;
pub mod limits;
pub mod offer18;
pub mod offerslook;
pub mod postgres;
pub mod targets;
pub mod trackier;
pub mod trackly;
pub mod twin;
pub mod youmi;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twin::{QueryPairs, Shared, TwinState, Wire};

/// A misbehaviour a twin can be told to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429, with this `Retry-After` header value if any.
    RateLimited { retry_after: Option<String> },
    /// The platform's in-body "too many requests" error at this HTTP status (twins without one
    /// send a plain 429).
    InBodyRateLimited { status: u16 },
    /// HTTP 500 with the platform's error envelope.
    ServerError,
    /// The platform's "invalid credentials" answer.
    Unauthorized,
    /// HTTP 200 with a JSON body cut short.
    Malformed,
    /// HTTP 200 with an HTML error page.
    HtmlError,
    /// Serve the previous page again (a looping paginator).
    RepeatPrevious,
    /// Prepend the previous page's last offer (an offset feed that shifted).
    DuplicatePrevious,
    /// An empty listing with total 0 (an outage or a revoked key answering "nothing").
    Empty,
    /// Answer normally, after this delay.
    Delay(Duration),
    /// Answer normally, with the body passed through this function first (tests corrupt rows).
    Rewrite(Rewrite),
    /// Send half of the body, then abort the connection.
    ResetMidBody,
    /// A page without rows while the totals still say there are more (a feed losing a page).
    EmptyPage,
    /// Answer normally, with these extra headers (`X-RateLimit-*`, say).
    ExtraHeaders(Vec<(String, String)>),
    /// Target twins: refuse the call with HTTP 400 (a validation error).
    BadRequest,
    /// Target twins: carry out the call, then answer HTTP 500 (the answer to a create that
    /// went through is lost).
    ServerErrorAfterAction,
    /// Target twins: carry out the call, then answer HTTP 200 with an HTML page.
    HtmlAfterAction,
    /// Target twins: carry out the call, then answer success without the new offer's id.
    NoIdAfterAction,
    /// Target twins: carry out the call, then answer after this delay (later than the
    /// client's timeout, say).
    SlowAfterAction(Duration),
}

/// A body rewrite for [`Fault::Rewrite`].
#[derive(Clone)]
pub struct Rewrite(pub Arc<RewriteFn>);

/// What a [`Rewrite`] does to a response body.
pub type RewriteFn = dyn Fn(&mut Vec<u8>) + Send + Sync;

impl Rewrite {
    pub fn new(f: impl Fn(&mut Vec<u8>) + Send + Sync + 'static) -> Rewrite {
        Rewrite(Arc::new(f))
    }
}

/// Rewrites compare by identity.
impl PartialEq for Rewrite {
    fn eq(&self, other: &Rewrite) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrite(..)")
    }
}

/// When a fault applies: on one page (or any page), for a number of requests (or forever).
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub page: Option<u64>,
    pub remaining: Option<u32>,
    pub fault: Fault,
}

impl FaultRule {
    pub fn on_page(page: u64, fault: Fault) -> FaultRule {
        FaultRule {
            page: Some(page),
            remaining: None,
            fault,
        }
    }

    pub fn once_on_page(page: u64, fault: Fault) -> FaultRule {
        FaultRule {
            page: Some(page),
            remaining: Some(1),
            fault,
        }
    }

    pub fn always(fault: Fault) -> FaultRule {
        FaultRule {
            page: None,
            remaining: None,
            fault,
        }
    }

    pub fn times(mut self, n: u32) -> FaultRule {
        self.remaining = Some(n);
        self
    }
}

/// The first rule matching `page`, consumed once.
pub(crate) fn take_fault(rules: &mut Vec<FaultRule>, page: u64) -> Option<Fault> {
    let i = rules
        .iter()
        .position(|r| r.page.is_none_or(|p| p == page) && r.remaining != Some(0))?;
    let fault = rules[i].fault.clone();
    if let Some(n) = rules[i].remaining.as_mut() {
        *n -= 1;
        if *n == 0 {
            rules.remove(i);
        }
    }
    Some(fault)
}

/// The keys the twins accept by default.
pub const OFFERSLOOK_KEY: &str = "ol_sandbox00000000000000000000000";
pub const S2S_APP_ID: &str = "ym_sandbox_app_0000000000000000";
pub const AFFISE_KEY: &str = "af_sandbox00000000000000000000000";
pub const EVERFLOW_KEY: &str = "ef_sandbox00000000000000000000000";
pub const HASOFFERS_KEY: &str = "ho_sandbox00000000000000000000000";
pub const TRACKIER_KEY: &str = "tk_sandbox00000000000000000000000";
pub const OFFER18_KEY: &str = "o18_sandbox0000000000000000000000";
pub const CAKE_KEY: &str = "ck_sandbox00000000000000000000000";
/// The simulated Offerit target's credentials.
pub const OFFERIT_KEY: &str = "oi_target0000000000000000000000000";
pub const OFFERIT_USERNAME: &str = "ops";
/// The simulated Affise target's key.
pub const AFFISE_TARGET_KEY: &str = "af_target0000000000000000000000000";

/// What the sandbox serves: offers per twin, and Trackly's key.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub seed: u64,
    pub trackly_offers: usize,
    pub trackly_api_key: String,
    pub offerslook_offers: usize,
    pub s2s_offers: usize,
    pub affise_offers: usize,
    pub everflow_offers: usize,
    pub hasoffers_offers: usize,
    pub trackier_offers: usize,
    pub offer18_offers: usize,
    pub cake_offers: usize,
    /// The credentials the twins accept (tests set unique markers to grep for leaks).
    pub offerslook_key: String,
    pub s2s_app_id: String,
    pub affise_key: String,
    pub everflow_key: String,
    pub hasoffers_key: String,
    pub trackier_key: String,
    pub offer18_key: String,
    pub cake_key: String,
    pub offerit_key: String,
    pub affise_target_key: String,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            seed: 42,
            trackly_offers: 250,
            trackly_api_key: "trk_sandbox0000000000000000000000000".into(),
            offerslook_offers: 120,
            s2s_offers: 90,
            affise_offers: 150,
            everflow_offers: 130,
            hasoffers_offers: 110,
            trackier_offers: 140,
            offer18_offers: 120,
            cake_offers: 115,
            offerslook_key: OFFERSLOOK_KEY.into(),
            s2s_app_id: S2S_APP_ID.into(),
            affise_key: AFFISE_KEY.into(),
            everflow_key: EVERFLOW_KEY.into(),
            hasoffers_key: HASOFFERS_KEY.into(),
            trackier_key: TRACKIER_KEY.into(),
            offer18_key: OFFER18_KEY.into(),
            cake_key: CAKE_KEY.into(),
            offerit_key: OFFERIT_KEY.into(),
            affise_target_key: AFFISE_TARGET_KEY.into(),
        }
    }
}

/// A running sandbox; stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    pub trackly: Shared,
    pub offerslook: Shared,
    pub s2s: Shared,
    pub affise: Shared,
    pub everflow: Shared,
    pub hasoffers: Shared,
    pub trackier: Shared,
    pub offer18: Shared,
    pub cake: Shared,
    /// The simulated Offerit target.
    pub offerit_target: targets::SharedTarget,
    /// The simulated Affise target (admin offer API).
    pub affise_target: targets::SharedTarget,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn route<W: Wire>(state: &Shared, wire: W) -> axum::routing::MethodRouter {
    let (state, wire) = (state.clone(), Arc::new(wire));
    axum::routing::get(
        move |headers: axum::http::HeaderMap,
              axum::extract::Query(q): axum::extract::Query<QueryPairs>| {
            twin::handle(state.clone(), wire.clone(), headers, q)
        },
    )
}

impl Sandbox {
    /// Bind 127.0.0.1 on a free port and serve on the current tokio runtime.
    pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
        let state = |seed_offset: u64, n: usize, key: &str| {
            Arc::new(Mutex::new(TwinState::new(cfg.seed + seed_offset, n, key)))
        };
        let trackly = state(0, cfg.trackly_offers, &cfg.trackly_api_key);
        let offerslook = state(1, cfg.offerslook_offers, &cfg.offerslook_key);
        let s2s = state(2, cfg.s2s_offers, &cfg.s2s_app_id);
        let affise = state(3, cfg.affise_offers, &cfg.affise_key);
        let everflow = state(4, cfg.everflow_offers, &cfg.everflow_key);
        let hasoffers = state(5, cfg.hasoffers_offers, &cfg.hasoffers_key);
        let trackier = state(6, cfg.trackier_offers, &cfg.trackier_key);
        let offer18 = state(7, cfg.offer18_offers, &cfg.offer18_key);
        let cake = state(8, cfg.cake_offers, &cfg.cake_key);
        use axum::body::Bytes;
        use axum::extract::{Path, RawQuery};
        use axum::http::{HeaderMap, Method};
        use offerslook::Offerslook;
        let offerit_target = Arc::new(Mutex::new(targets::TargetTwin::new(
            &cfg.offerit_key,
            OFFERIT_USERNAME,
        )));
        let affise_target = Arc::new(Mutex::new(targets::TargetTwin::new(
            &cfg.affise_target_key,
            "",
        )));
        let (oi, af1, af2, af3, af4) = (
            offerit_target.clone(),
            affise_target.clone(),
            affise_target.clone(),
            affise_target.clone(),
            affise_target.clone(),
        );
        let app = axum::Router::new()
            .route(
                "/offerit/api/offer/{action}",
                axum::routing::any(
                    move |Path(a): Path<String>,
                          m: Method,
                          h: HeaderMap,
                          RawQuery(q): RawQuery,
                          b: Bytes| {
                        targets::offerit(oi.clone(), a, m, h, q.unwrap_or_default(), b)
                    },
                ),
            )
            .route(
                "/affise-target/3.0/admin/offer",
                axum::routing::any(
                    move |m: Method, h: HeaderMap, RawQuery(q): RawQuery, b: Bytes| {
                        targets::affise(af1.clone(), None, m, h, q.unwrap_or_default(), b)
                    },
                ),
            )
            .route(
                "/affise-target/3.0/admin/offer/{id}",
                axum::routing::any(
                    move |Path(id): Path<String>,
                          m: Method,
                          h: HeaderMap,
                          RawQuery(q): RawQuery,
                          b: Bytes| {
                        targets::affise(af2.clone(), Some(id), m, h, q.unwrap_or_default(), b)
                    },
                ),
            )
            .route(
                "/affise-target/3.0/offer/{id}",
                axum::routing::get(
                    move |Path(id): Path<String>, h: HeaderMap, RawQuery(q): RawQuery| {
                        targets::affise(
                            af4.clone(),
                            Some(id),
                            Method::GET,
                            h,
                            q.unwrap_or_default(),
                            Bytes::new(),
                        )
                    },
                ),
            )
            .route(
                "/affise-target/3.0/offers",
                axum::routing::any(
                    move |m: Method, h: HeaderMap, RawQuery(q): RawQuery, b: Bytes| {
                        targets::affise(af3.clone(), None, m, h, q.unwrap_or_default(), b)
                    },
                ),
            )
            .route("/trackly/api/v2/offers", route(&trackly, trackly::Trackly))
            .route(
                "/offerslook/v1/offers",
                route(
                    &offerslook,
                    Offerslook {
                        batch: false,
                        max_limit: 1000,
                    },
                ),
            )
            .route(
                "/offerslook/v1/batches/offers",
                route(
                    &offerslook,
                    Offerslook {
                        batch: true,
                        max_limit: 100,
                    },
                ),
            )
            .route(
                "/offerslook/aff/v1/offers",
                route(
                    &offerslook,
                    Offerslook {
                        batch: false,
                        max_limit: 200,
                    },
                ),
            )
            .route(
                "/offerslook/aff/v1/batches/offers",
                route(
                    &offerslook,
                    Offerslook {
                        batch: true,
                        max_limit: 100,
                    },
                ),
            )
            .route("/youmi/v1/online", route(&s2s, youmi::Youmi { seed: true }))
            .route(
                "/youmi/v2/offline",
                route(&s2s, youmi::Youmi { seed: false }),
            )
            .route(
                "/affise/3.0/offers",
                route(&affise, affise::Affise { partner: false }),
            )
            .route(
                "/affise/3.0/partner/offers",
                route(&affise, affise::Affise { partner: true }),
            );
        let app = connectors::routes(app, [&everflow, &hasoffers, &trackier, &offer18, &cake]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Sandbox {
            addr,
            trackly,
            offerslook,
            s2s,
            affise,
            everflow,
            hasoffers,
            trackier,
            offer18,
            cake,
            offerit_target,
            affise_target,
            stop: Some(stop),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `base_url` to configure for a Trackly source.
    pub fn trackly_base_url(&self) -> String {
        format!("{}/trackly/api", self.url())
    }

    /// The `base_url` to configure for an Offerslook source.
    pub fn offerslook_base_url(&self) -> String {
        format!("{}/offerslook", self.url())
    }

    /// The `base_url` of the Youmi feed: the seed envelope (`v1/online`) or the flat v2 one.
    pub fn s2s_base_url(&self, seed_envelope: bool) -> String {
        if seed_envelope {
            format!("{}/youmi/v1/online", self.url())
        } else {
            format!("{}/youmi/v2/offline", self.url())
        }
    }

    /// The `base_url` to configure for an Affise source.
    pub fn affise_base_url(&self) -> String {
        format!("{}/affise", self.url())
    }

    /// The `base_url` of the simulated Offerit target.
    pub fn offerit_target_url(&self) -> String {
        format!("{}/offerit/api", self.url())
    }

    /// The `base_url` of the simulated Affise target.
    pub fn affise_target_url(&self) -> String {
        format!("{}/affise-target", self.url())
    }

    /// Run `f` on a target twin's state.
    pub fn with_target<T>(
        twin: &targets::SharedTarget,
        f: impl FnOnce(&mut targets::TargetTwin) -> T,
    ) -> T {
        f(&mut twin.lock().unwrap())
    }

    /// Run `f` on the Trackly twin's state (mutate the catalogue, add faults, read counters).
    pub fn with_trackly<T>(&self, f: impl FnOnce(&mut TwinState) -> T) -> T {
        Self::with(&self.trackly, f)
    }

    /// Run `f` on a twin's state.
    pub fn with<T>(twin: &Shared, f: impl FnOnce(&mut TwinState) -> T) -> T {
        f(&mut twin.lock().unwrap())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
