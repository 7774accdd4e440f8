//! The one HTTP layer shared by every source and target: a reqwest client with timeouts, pacing
//! before each request, and the retry loop (exponential backoff with jitter from the `backoff`
//! crate, `Retry-After` honoured). Platform files never sleep or retry: they build an
//! [`HttpRequest`] and answer "what does this response mean" with a [`Failure`] class.

mod redact;
mod retry_after;

pub use redact::{redact_path, redact_url};
pub use retry_after::parse_retry_after;

use crate::config::{HttpPolicy, Secret};
use backoff::backoff::Backoff;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A request as a platform file builds it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub basic_auth: Option<(String, Secret)>,
    pub form: Option<Vec<(String, String)>>,
    pub json: Option<serde_json::Value>,
}

impl HttpRequest {
    pub fn get(url: Url) -> HttpRequest {
        HttpRequest {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            basic_auth: None,
            form: None,
            json: None,
        }
    }

    /// Add a header whose value is a credential: marked sensitive so it never shows in Debug output.
    pub fn secret_header(mut self, name: &'static str, secret: &Secret) -> HttpRequest {
        if let Ok(mut v) = HeaderValue::from_str(secret.expose()) {
            v.set_sensitive(true);
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }
}

/// A response with its body read in full.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl HttpResponse {
    /// The `Retry-After` hint, if the response carries a usable one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
    }

    /// The first bytes of the body as text, for error messages.
    pub fn body_excerpt(&self) -> String {
        let n = self.body.len().min(200);
        let mut s = String::from_utf8_lossy(&self.body[..n]).into_owned();
        if self.body.len() > n {
            s.push('…');
        }
        s
    }
}

/// What a failed attempt means for the retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The platform asked us to slow down (429, 503 + Retry-After, an in-body "too many requests").
    RateLimited,
    /// Worth retrying: connect errors, timeouts, 5xx, 408, a body cut short or not JSON.
    Transient,
    /// Retrying cannot help: bad credentials, forbidden, not found, bad request.
    Permanent,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Transient => "transient",
            FailureClass::Permanent => "permanent",
        }
    }

    /// The default meaning of an HTTP status that is not a success.
    pub fn of_status(status: StatusCode, retry_after: Option<Duration>) -> FailureClass {
        match status.as_u16() {
            429 => FailureClass::RateLimited,
            503 if retry_after.is_some() => FailureClass::RateLimited,
            408 | 500..=599 => FailureClass::Transient,
            _ => FailureClass::Permanent,
        }
    }
}

/// One failed attempt, as the platform file (or the transport) explains it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Transient, message)
    }

    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Permanent, message)
    }
}

/// A call that failed for good: permanently, or after the retry budget ran out.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub class: FailureClass,
    pub message: String,
    pub attempts: u32,
}

/// Request accounting of one endpoint, read into `sync_runs` at the end of a run.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
        )
    }
}

/// Spaces requests at least `1 / requests_per_second` apart, allowing `burst` back to back.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    burst: u32,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(requests_per_second: f64, burst: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / requests_per_second.max(1e-6)),
            burst: burst.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Wait for this request's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            // Unused capacity accumulates up to `burst` slots.
            let earliest = now - self.interval * (self.burst - 1);
            let slot = (*next).max(earliest);
            *next = slot + self.interval;
            slot
        };
        // A deadline already reached still costs a timer-wheel tick (~1 ms) in tokio: skip it.
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }
}

/// Everything needed to call one platform account: client, policy, pacing, counters, secrets.
pub struct Endpoint {
    name: String,
    client: reqwest::Client,
    policy: HttpPolicy,
    pacer: Arc<Pacer>,
    secrets: Vec<Secret>,
    pub counters: Arc<Counters>,
}

impl Endpoint {
    pub fn new(name: &str, policy: HttpPolicy, secrets: Vec<Secret>) -> Result<Endpoint, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .user_agent(concat!("offersync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Endpoint {
            name: name.to_string(),
            client,
            pacer: Arc::new(Pacer::new(policy.requests_per_second, policy.burst)),
            policy,
            secrets,
            counters: Arc::new(Counters::default()),
        })
    }

    /// Replace the secrets in `text` (a platform's error message, say) by `***`.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.scrub(&t).into_owned())
    }

    /// Send the request built by `build` and interpret the answer with `interpret`, pacing every
    /// attempt and retrying transient and rate-limited failures within the policy's budget.
    pub async fn call<T>(
        &self,
        build: impl Fn() -> HttpRequest,
        interpret: impl Fn(&HttpResponse) -> Result<T, Failure>,
    ) -> Result<T, CallError> {
        let mut backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.policy.initial_interval)
            .with_max_interval(self.policy.max_interval)
            .with_max_elapsed_time(Some(self.policy.max_elapsed))
            .build();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let req = build();
            let path = redact_path(&req.url);
            self.pacer.wait().await;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let failure = match self.send(req).await {
                Ok(resp) => match interpret(&resp) {
                    Ok(v) => return Ok(v),
                    Err(f) => f,
                },
                Err(f) => f,
            };
            let message = self.scrub(&failure.message);
            if failure.class == FailureClass::RateLimited {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            let give_up = |why: &str| CallError {
                class: failure.class,
                message: format!("{message} ({why})"),
                attempts: attempt,
            };
            if failure.class == FailureClass::Permanent {
                return Err(give_up("not retried"));
            }
            if attempt >= self.policy.max_attempts {
                return Err(give_up(&format!("gave up after {attempt} attempts")));
            }
            let wait = match failure.retry_after {
                Some(hint) => hint.min(self.policy.max_retry_after),
                None => match backoff.next_backoff() {
                    Some(d) => d,
                    None => return Err(give_up("retry budget of max_elapsed exhausted")),
                },
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                endpoint = %self.name,
                path = %path,
                attempt,
                class = failure.class.as_str(),
                wait_ms = wait.as_millis() as u64,
                error = %message,
                "request failed, retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, Failure> {
        let shown = redact_url(&req.url);
        let mut rb = self
            .client
            .request(req.method, req.url)
            .headers(req.headers);
        if let Some((user, pass)) = &req.basic_auth {
            rb = rb.basic_auth(user, Some(pass.expose()));
        }
        if let Some(form) = &req.form {
            rb = rb.form(form);
        }
        if let Some(json) = &req.json {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json.to_string());
        }
        let transport = |e: reqwest::Error| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_body() || e.is_decode() {
                "response body cut short"
            } else {
                "request failed"
            };
            Failure::transient(format!("{what}: {shown}: {}", error_chain(&e)))
        };
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// An error and its causes on one line, without the URL reqwest would add.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    if parts.is_empty() {
        "no detail".into()
    } else {
        parts.join(": ")
    }
}
