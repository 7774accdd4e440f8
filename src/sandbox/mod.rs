//! Simulated platforms on 127.0.0.1 for `offersync demo`, the tests and the benchmarks.
//!
//! Test equipment, not product: each twin follows the wire contract in APIS.md (shapes, quirks,
//! errors) so the real adapters can be exercised without the internet. Each platform is served
//! under its own prefix: Trackly at `{url}/trackly/api`.

pub mod catalog;
pub mod limits;
pub mod trackly;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A misbehaviour a twin can be told to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429, with this `Retry-After` header value if any.
    RateLimited { retry_after: Option<String> },
    /// HTTP 500 with the platform's error envelope.
    ServerError,
    /// HTTP 401 with the platform's error envelope.
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

/// What the sandbox serves.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub seed: u64,
    pub trackly_offers: usize,
    pub trackly_api_key: String,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            seed: 42,
            trackly_offers: 250,
            trackly_api_key: "trk_sandbox0000000000000000000000000".into(),
        }
    }
}

/// A running sandbox; stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    pub trackly: trackly::Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sandbox {
    /// Bind 127.0.0.1 on a free port and serve on the current tokio runtime.
    pub async fn start(cfg: SandboxConfig) -> std::io::Result<Sandbox> {
        let trackly = Arc::new(Mutex::new(trackly::TracklyState::new(
            cfg.seed,
            cfg.trackly_offers,
            &cfg.trackly_api_key,
        )));
        let app = axum::Router::new()
            .route(
                "/trackly/api/v2/offers",
                axum::routing::get(trackly::list_offers),
            )
            .with_state(trackly.clone());
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

    /// Run `f` on the Trackly twin's state (mutate the catalogue, add faults, read counters).
    pub fn with_trackly<T>(&self, f: impl FnOnce(&mut trackly::TracklyState) -> T) -> T {
        f(&mut self.trackly.lock().unwrap())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
