//! The operator console in the browser (`[console]`), served by the daemon: server-rendered HTML
//! (maud), no JavaScript. `pages.rs` renders what is read (overview, offers, one offer),
//! `queue.rs` the approval queue, held removals and dead pushes with their actions, `auth.rs`
//! logins, sessions, CSRF and the login limit, `layout.rs` the frame and the style sheet.
//!
//! Security model: on a loopback listener read pages need no login; on any other listener every
//! page but the login form does; every action needs a session and the session's CSRF token, is
//! a POST, and is refused when the `Origin` header names another host. Every answer carries a
//! strict Content-Security-Policy (nothing inline, nothing from elsewhere), `nosniff`,
//! `no-referrer`, `no-store`; every HTML answer is scrubbed of the configured secrets (source
//! and target keys, webhook URLs, the console token) before it leaves. Actions call
//! `crate::ops`, the code the command line calls.

mod auth;
mod layout;
mod pages;
mod queue;

use crate::config::{resolve_secret, Config, ConsoleConfig, Secret};
use auth::{Auth, LoginError, LOGIN_COOKIE, SESSION_COOKIE};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use layout::Viewer;
use maud::{html, Markup};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use auth::{FREE_FAILURES, GLOBAL_FAILURES_PER_MINUTE};

/// A new login token (32 random bytes as hex), for `demo --serve`.
pub fn new_token() -> String {
    auth::random_token()
}

/// The Content-Security-Policy of every answer.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console needs from the process serving it.
#[derive(Clone)]
pub struct Host {
    /// The config in force (it follows reloads).
    pub config: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
    /// Ask for a delivery pass soon (after an approval or a retry).
    pub deliver_soon: Arc<dyn Fn() + Send + Sync>,
    /// When the process started (for the health report).
    pub started: chrono::DateTime<chrono::Utc>,
}

pub(crate) struct Console {
    host: Host,
    auth: Auth,
    open_reads: bool,
    /// The secrets scrubbed from every page, for the config they were read from.
    secrets: Mutex<(usize, Arc<Vec<Secret>>)>,
}

type App = Arc<Console>;

impl Console {
    fn config(&self) -> Arc<Config> {
        (self.host.config)()
    }

    /// Every secret the config gives (what resolves), and the token: re-read when the config
    /// is reloaded.
    fn secrets(&self) -> Arc<Vec<Secret>> {
        let config = self.config();
        let key = Arc::as_ptr(&config) as usize;
        let mut cached = self.secrets.lock().unwrap();
        if cached.0 != key {
            let mut all = vec![self.auth_token()];
            for s in &config.sources {
                all.extend(crate::config::resolve_credential("s", &s.credential).ok());
            }
            for t in &config.targets {
                all.extend(crate::config::resolve_credential("t", &t.credential).ok());
            }
            for n in &config.notify {
                all.extend(resolve_secret("n", "url", &n.url).ok());
            }
            *cached = (key, Arc::new(all));
        }
        cached.1.clone()
    }

    fn auth_token(&self) -> Secret {
        self.auth.token().clone()
    }
}

/// Start serving the console on `cfg.listen`; the address it listens on.
pub async fn serve(cfg: &ConsoleConfig, host: Host) -> Result<SocketAddr, String> {
    let spec = cfg
        .token
        .as_ref()
        .ok_or("console.token_env: the console needs a login token")?;
    let token = resolve_secret("console", "token", spec)?;
    if token.expose().chars().count() < 16 {
        return Err(
            "console: the token must be at least 16 characters (e.g. `openssl rand -hex 32`)"
                .into(),
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("console.listen: cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("console.listen: {e}"))?;
    let app: App = Arc::new(Console {
        host,
        auth: Auth::new(token, cfg.session_ttl),
        open_reads: cfg.open_reads(),
        secrets: Mutex::new((0, Arc::new(Vec::new()))),
    });
    let router = router(app);
    tracing::info!(listen = %addr, open_reads = cfg.open_reads(), "serving the console");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(addr)
}

fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/", get(pages::overview))
        .route("/offers", get(pages::offers))
        .route("/offer", get(pages::offer))
        .route("/approvals", get(queue::approvals))
        .route("/removals", get(queue::removals))
        .route("/dead", get(queue::dead))
        .route("/approvals/decide", post(queue::decide))
        .route("/removals/approve", post(queue::approve_removals))
        .route("/dead/retry", post(queue::retry_dead))
        .route("/offer/detach", post(queue::detach))
        .route("/offer/attach", post(queue::attach))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/console.css", get(css))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The session cookie's value, if any.
fn session_id(headers: &HeaderMap) -> Option<String> {
    let h = headers.get(header::COOKIE)?.to_str().ok()?;
    auth::cookie(h, SESSION_COOKIE).map(String::from)
}

/// Every request: who is looking, whether they may, and the headers and scrubbing of every
/// answer.
async fn guard(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let csrf = session_id(req.headers()).and_then(|id| app.auth.session(&id));
    let public = path == "/login" || path.starts_with("/static/");
    // Every method but POST reads (HEAD included); POST handlers check the session and the
    // CSRF token themselves, and answer 401 without a session.
    let reads = req.method() != axum::http::Method::POST;
    let mut res = if !app.open_reads && csrf.is_none() && !public && reads {
        Redirect::to("/login").into_response()
    } else {
        req.extensions_mut().insert(Viewer { csrf });
        next.run(req).await
    };
    let h = res.headers_mut();
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !html {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    for s in app.secrets().iter() {
        text = s.scrub(&text).into_owned();
    }
    Response::from_parts(parts, Body::from(text))
}

/// An HTML answer.
fn respond(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        layout::CSS,
    )
        .into_response()
}

async fn not_found(axum::Extension(v): axum::Extension<Viewer>) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        layout::page("Not found", "", &v, None, html! { p { "No such page." } }),
    )
}

/// A form body's fields, repeated names kept (checkboxes).
fn form(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// May this POST act? A session, its CSRF token in the form, and no foreign `Origin`. The
/// form's fields when it may.
fn authorize(
    viewer: &Viewer,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<(String, String)>, Box<Response>> {
    let form = self::form(body);
    let Some(expected) = &viewer.csrf else {
        return Err(Box::new(respond(
            StatusCode::UNAUTHORIZED,
            layout::page(
                "Log in first",
                "",
                viewer,
                None,
                html! { p { "Actions need a login. " a href="/login" { "Log in" } } },
            ),
        )));
    };
    if !same_origin(headers) || !field(&form, "csrf").is_some_and(|t| auth::same(t, expected)) {
        return Err(Box::new(forbidden(viewer)));
    }
    Ok(form)
}

fn forbidden(viewer: &Viewer) -> Response {
    respond(
        StatusCode::FORBIDDEN,
        layout::page(
            "Refused",
            "",
            viewer,
            None,
            html! { p { "This form is stale or did not come from this console. Reload the page and try again." } },
        ),
    )
}

/// No `Origin`, an opaque one (`null`: what browsers send with `Referrer-Policy: no-referrer`),
/// or one naming the host the request was sent to. The CSRF token is the check; this refuses
/// what a browser says came from another site.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == "null" {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// Run blocking work (SQLite) off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("internal error: {e}")))
}

/// The page for an error that stopped a page or an action.
fn failure(viewer: &Viewer, message: &str) -> Response {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        layout::page(
            "Unavailable",
            "",
            viewer,
            None,
            html! { p.error { (message) } },
        ),
    )
}

/// Back to `to` with a notice.
fn back(to: &str, notice: &str) -> Response {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("notice", notice)
        .finish();
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}{q}")).into_response()
}

async fn login_form(
    axum::Extension(v): axum::Extension<Viewer>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    login_page(&v, StatusCode::OK, q.get("notice").map(String::as_str))
}

fn login_page(v: &Viewer, status: StatusCode, notice: Option<&str>) -> Response {
    let nonce = auth::random_token();
    let body = html! {
        form.login method="post" action="/login" {
            input type="hidden" name="csrf" value=(nonce);
            p { label { "Token " input type="password" name="token" autocomplete="current-password" required; } }
            p { button type="submit" { "Log in" } }
        }
        p.hint { "The token is the one the daemon reads from console.token_env or console.token_file." }
    };
    let mut res = respond(status, layout::page("Log in", "/login", v, notice, body));
    let cookie = format!("{LOGIN_COOKIE}={nonce}; HttpOnly; SameSite=Strict; Path=/login");
    if let Ok(c) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(v): axum::Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let nonce = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| auth::cookie(c, LOGIN_COOKIE));
    let fresh = match (nonce, field(&f, "csrf")) {
        (Some(a), Some(b)) => auth::same(a, b),
        _ => false,
    };
    if !fresh || !same_origin(&headers) {
        return forbidden(&v);
    }
    match app.auth.login(peer.ip(), field(&f, "token").unwrap_or("")) {
        Ok(id) => {
            tracing::info!(client = %peer.ip(), "console login");
            let mut res = Redirect::to("/").into_response();
            let ttl = app.auth.ttl().as_secs();
            for c in [
                format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={ttl}"),
                format!("{LOGIN_COOKIE}=; HttpOnly; SameSite=Strict; Path=/login; Max-Age=0"),
            ] {
                if let Ok(c) = HeaderValue::from_str(&c) {
                    res.headers_mut().append(header::SET_COOKIE, c);
                }
            }
            res
        }
        Err(LoginError::Wrong) => {
            tracing::warn!(client = %peer.ip(), "console login refused: wrong token");
            login_page(&v, StatusCode::UNAUTHORIZED, Some("Wrong token."))
        }
        Err(LoginError::Limited(wait)) => {
            tracing::warn!(client = %peer.ip(), wait_seconds = wait.as_secs(), "console login refused: too many failures");
            let secs = wait.as_secs().max(1);
            let mut res = login_page(
                &v,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!("Too many failed logins; try again in {secs} s.")),
            );
            if let Ok(h) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, h);
            }
            res
        }
    }
}

async fn logout(
    State(app): State<App>,
    axum::Extension(v): axum::Extension<Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&v, &headers, &body) {
        return *r;
    }
    if let Some(id) = session_id(&headers) {
        app.auth.logout(&id);
    }
    let mut res = Redirect::to("/login?notice=Logged+out.").into_response();
    if let Ok(c) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    )) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}
