//! The one HTTP layer shared by every source and target: shared reqwest clients with timeouts,
//! adaptive pacing before each request (`pace`), failure classification (`classify`) and the
//! retry loop (`retry`: exponential backoff with jitter, `Retry-After` honoured). Platform files never sleep or retry: they build an
//! [`HttpRequest`] and answer "what does this response mean" with a [`Failure`] class.

mod classify;
mod pace;
mod redact;
mod retry;
mod retry_after;

pub use classify::{Failure, FailureClass};
pub use pace::{Hold, Limiters, PaceSnapshot, RateLimitHeaders, RateLimiter};
pub use redact::{redact_path, redact_url};
pub use retry_after::parse_retry_after;

use crate::config::{HttpPolicy, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use retry::{retry, RetryCtx};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A request as a platform file builds it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub basic_auth: Option<(String, Secret)>,
    pub form: Option<Vec<(String, String)>>,
    /// A JSON body (`Content-Type: application/json`).
    pub json: Option<String>,
    /// Sending it twice does no harm (reads, updates, pauses). A request that is not (a
    /// create) is retried only when the platform surely did not act on it; any other failure
    /// ends the call as [`FailureClass::Ambiguous`].
    pub idempotent: bool,
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
            idempotent: true,
        }
    }

    /// A POST of `body` as JSON.
    pub fn post_json(url: Url, body: String) -> HttpRequest {
        let mut req = HttpRequest::get(url);
        req.method = Method::POST;
        req.json = Some(body);
        req
    }

    /// The same request, marked as one that must not be sent twice blindly.
    pub fn not_idempotent(mut self) -> HttpRequest {
        self.idempotent = false;
        self
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

    /// The body as the platform's JSON envelope `T`. A success status with a body that does not
    /// decode (cut short, an HTML error page) is transient; any other status is classified by
    /// the status, with the body's first bytes in the message.
    pub fn envelope<'a, T: serde::Deserialize<'a>>(&'a self, platform: &str) -> Result<T, Failure> {
        serde_json::from_slice(&self.body).map_err(|e| {
            if self.status.is_success() {
                Failure::transient(format!(
                    "{platform} answered HTTP {} with a body that is not its JSON envelope ({e}): {}",
                    self.status.as_u16(),
                    self.body_excerpt()
                ))
            } else {
                Failure::from_response(
                    self,
                    format!("{platform} answered HTTP {}: {}", self.status.as_u16(), self.body_excerpt()),
                )
            }
        })
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

/// A call that failed for good: permanently, or after the retry budget ran out.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub class: FailureClass,
    pub message: String,
    pub attempts: u32,
    /// The HTTP status of the last answer, if there was one.
    pub status: Option<u16>,
    /// A stop reason more specific than the class (see [`Failure::reason`]).
    pub reason: Option<crate::model::StopReason>,
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

/// Everything needed to call one platform account: client, policy, pacing, counters, secrets.
pub struct Endpoint {
    name: String,
    role: crate::metrics::Role,
    client: reqwest::Client,
    policy: HttpPolicy,
    limiter: Arc<RateLimiter>,
    secrets: Vec<Secret>,
    pub counters: Arc<Counters>,
}

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// A redirect offersync refused to follow.
#[derive(Debug, thiserror::Error)]
enum RedirectRefused {
    #[error("redirect from {from} to {to} leaves the origin (scheme, host and port) the credential was configured for; not followed")]
    CrossOrigin { from: String, to: String },
    #[error("redirect loop: {to} was already visited (from {from})")]
    Loop { from: String, to: String },
    #[error("more than {MAX_REDIRECTS} redirects (last from {from} to {to})")]
    TooMany { from: String, to: String },
}

/// Follow only redirects that stay on the origin of the first URL (scheme, host, port), at most
/// [`MAX_REDIRECTS`], never in a loop: a credential travels in headers, the query or Basic auth,
/// and reqwest's default policy strips only `Authorization` when the host changes.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let from = attempt
            .previous()
            .last()
            .map(redact_url)
            .unwrap_or_default();
        let to = redact_url(attempt.url());
        let Some(first) = first else {
            return attempt.follow();
        };
        if attempt.url().origin() != first.origin() {
            attempt.error(RedirectRefused::CrossOrigin { from, to })
        } else if attempt.previous().iter().any(|u| u == attempt.url()) {
            attempt.error(RedirectRefused::Loop { from, to })
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(RedirectRefused::TooMany { from, to })
        } else {
            attempt.follow()
        }
    })
}

/// One reqwest client per connect timeout, shared by every endpoint of the process (connection
/// pools, TLS roots and DNS caches are built once).
fn shared_client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, reqwest::Client>>> = OnceLock::new();
    let mut map = CLIENTS.get_or_init(Default::default).lock().unwrap();
    if let Some(c) = map.get(&connect_timeout) {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("offersync/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    map.insert(connect_timeout, client.clone());
    Ok(client)
}

impl Endpoint {
    /// `limiter` paces this endpoint (shared with its `rate_limit_group`, if any).
    pub fn new(
        name: &str,
        role: crate::metrics::Role,
        policy: HttpPolicy,
        secrets: Vec<Secret>,
        limiter: Arc<RateLimiter>,
    ) -> Result<Endpoint, String> {
        Ok(Endpoint {
            name: name.to_string(),
            role,
            client: shared_client(policy.connect_timeout)?,
            limiter,
            policy,
            secrets,
            counters: Arc::new(Counters::default()),
        })
    }

    pub fn pace(&self) -> PaceSnapshot {
        self.limiter.snapshot()
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
        // A path can be a secret itself (a webhook URL's): scrubbed like any text.
        let path = self.scrub(&redact_path(&build().url));
        let scrub = |t: &str| self.scrub(t);
        let ctx = RetryCtx {
            endpoint: &self.name,
            role: self.role,
            path: &path,
            policy: &self.policy,
            limiter: &self.limiter,
            counters: &self.counters,
            scrub: &scrub,
        };
        let (build, interpret, shown_path) = (&build, &interpret, path.as_str());
        let idempotent = build().idempotent;
        retry(&ctx, idempotent, move || async move {
            let sent = std::time::Instant::now();
            let resp = self.send(build()).await;
            crate::metrics::request(self.role, &self.name, sent.elapsed().as_secs_f64());
            let resp = resp?;
            if let Some(hold) = self
                .limiter
                .on_headers(&resp.headers, self.policy.max_retry_after)
            {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                crate::metrics::rate_limit_hold(self.role, &self.name);
                tracing::warn!(
                    endpoint = %self.name,
                    path = shown_path,
                    wait_s = hold.waited.as_secs_f64(),
                    reset_s = hold.reset.as_secs_f64(),
                    capped = hold.waited < hold.reset,
                    "rate-limit budget spent (X-RateLimit-Remaining: 0); holding requests until the reset"
                );
            }
            interpret(&resp)
        })
        .await
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, Failure> {
        let shown = redact_url(&req.url);
        let mut rb = self
            .client
            .request(req.method, req.url)
            .timeout(self.policy.timeout)
            .headers(req.headers);
        if let Some((user, pass)) = &req.basic_auth {
            rb = rb.basic_auth(user, Some(pass.expose()));
        }
        if let Some(form) = &req.form {
            rb = rb.form(form);
        }
        if let Some(json) = req.json {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json);
        }
        let transport = |e: reqwest::Error| {
            if e.is_redirect() {
                return Failure::permanent(format!("{shown}: {}", error_chain(&e)));
            }
            let what = if e.is_connect() {
                "could not connect"
            } else if e.is_timeout() {
                "timed out"
            } else if e.is_body() || e.is_decode() {
                "response body cut short"
            } else {
                "request failed"
            };
            let mut f = Failure::transient(format!("{what}: {shown}: {}", error_chain(&e)));
            // A connect error (refused, unreachable, DNS, connect timeout): nothing was sent.
            f.before_send = e.is_connect();
            f
        };
        let mut resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Read at most MAX_RESPONSE_BYTES: a runaway body must not take the process's memory.
        let too_big = || {
            Failure::permanent(format!(
                "response body larger than {} MiB: {shown}",
                MAX_RESPONSE_BYTES >> 20
            ))
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_big());
        }
        let buf = if resp.content_length().is_some() {
            // Framed by a length within the limit: read it whole (no copy for a single chunk).
            resp.bytes().await.map_err(transport)?
        } else {
            let mut buf = bytes::BytesMut::with_capacity(64 << 10);
            while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(too_big());
                }
                buf.extend_from_slice(&chunk);
            }
            buf.freeze()
        };
        let body = match std::str::from_utf8(&buf) {
            Ok(_) => buf,
            // JSON must be UTF-8. Rather than lose the whole page to a few bad bytes, they become
            // U+FFFD here and the offers containing them are rejected one by one.
            Err(_) => {
                tracing::warn!(url = %shown, "response body is not valid UTF-8; the offers with invalid bytes will be rejected");
                bytes::Bytes::from(String::from_utf8_lossy(&buf).into_owned())
            }
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The largest response body read (a page of offers is typically well under 1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

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
