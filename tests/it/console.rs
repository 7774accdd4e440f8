//! The operator console over HTTP, through the real daemon binary: read access on loopback and
//! elsewhere, logins (cookie flags, the failed-login limit), CSRF and Origin checks on every
//! action, the security headers, and the token never shown or logged. The browser tests
//! (`browser.rs`) use the same setup.

use crate::daemon::until;
use crate::harness::{free_port, TestApp, SOURCE};
use crate::push::{configure, deliver_all, oi};
use offersync::sandbox::{Fault, FaultRule};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const TOKEN: &str = "console-token-0123456789abcdef-marker";

/// A daemon serving the console over a prepared mirror: `offers` offers synced once; target
/// `oi` delivered (one operation dead: the twin refused it), target `af` in approval mode (all
/// its creates wait); with `held`, the source's catalogue then emptied and synced again, so
/// that run holds every removal.
pub(crate) struct Console {
    pub app: TestApp,
    pub url: String,
    child: Child,
    log_path: std::path::PathBuf,
}

impl Console {
    pub async fn start(offers: usize, listen_ip: &str, held: bool) -> Console {
        let app = TestApp::new(offers).await;
        configure(
            &app,
            // No scheduled run during a test: the mirror stays as prepared.
            "schedule = \"0 0 0 1 1 *\"",
            "timeout_seconds = 2\nredelivery_interval_seconds = 1",
            "approval = \"manual\"\ntimeout_seconds = 2",
        );
        app.sync().await;
        oi(&app, |t| {
            t.faults.push(FaultRule::always(Fault::BadRequest).times(1))
        });
        deliver_all(&app).await;
        oi(&app, |t| t.faults.clear());
        if held {
            app.sandbox.with_trackly(|t| t.catalog.clear());
            app.sync().await;
        }
        let port = free_port();
        let token_path = app.dir.path().join("console-token");
        std::fs::write(&token_path, format!("{TOKEN}\n")).unwrap();
        let mut text = std::fs::read_to_string(&app.config_path).unwrap();
        text.push_str(&format!(
            "\n[daemon]\ndelivery_interval_seconds = 1\n\n[console]\nenabled = true\nlisten = \"{listen_ip}:{port}\"\ntoken_file = {:?}\n",
            token_path.to_string_lossy()
        ));
        std::fs::write(&app.config_path, text).unwrap();
        let log_path = app.dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_offersync"))
            .arg("--config")
            .arg(&app.config_path)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let c = Console {
            app,
            url,
            child,
            log_path,
        };
        let probe = format!("{}/static/console.css", c.url);
        let client = client();
        let t0 = std::time::Instant::now();
        while client.get(&probe).send().await.is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the console did not come up: {}",
                c.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn state_count(&self, target: &str, state: &str) -> i64 {
        crate::push::outbox_states(&self.app, target)
            .into_iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| n)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(set_cookie: &[String], name: &str) -> Option<String> {
    set_cookie.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

/// The value of the first hidden `csrf` field in a page.
fn csrf_of(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[i..].split('"').next()?.to_string())
}

/// Log in with `token`: (status, session cookie if any, the Set-Cookie lines).
async fn login(url: &str, token: &str) -> (u16, Option<String>, Vec<String>) {
    let c = client();
    let form = c.get(format!("{url}/login")).send().await.unwrap();
    let nonce = cookie_value(&cookies(&form), "offersync_login").expect("a login cookie");
    let csrf = csrf_of(&form.text().await.unwrap()).unwrap();
    assert_eq!(
        nonce, csrf,
        "the login form's CSRF field matches its cookie"
    );
    let r = c
        .post(format!("{url}/login"))
        .header("cookie", format!("offersync_login={nonce}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&token={token}"))
        .send()
        .await
        .unwrap();
    let set = cookies(&r);
    (
        r.status().as_u16(),
        cookie_value(&set, "offersync_session"),
        set,
    )
}

async fn get(url: &str, session: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().get(url);
    if let Some(s) = session {
        req = req.header("cookie", format!("offersync_session={s}"));
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

async fn post(url: &str, session: Option<&str>, body: &str, origin: Option<&str>) -> u16 {
    let mut req = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("cookie", format!("offersync_session={s}"));
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_pages_read_freely_and_every_action_needs_a_session_and_its_csrf_token() {
    let c = Console::start(12, "127.0.0.1", false).await;
    let waiting = c.state_count("af", "awaiting_approval");
    assert!(waiting > 2, "the queue is prepared");
    let mut bodies = Vec::new();
    for page in ["/", "/offers", "/approvals", "/removals", "/dead"] {
        let (status, headers, body) = get(&format!("{}{page}", c.url), None).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            !body.contains("<script") && !body.contains("style="),
            "{page}"
        );
        assert!(
            !body.contains("name=\"csrf\""),
            "no action forms without a login"
        );
        bodies.push(body);
    }
    let approve_all = "target=af&action=approve_all";
    let decide = format!("{}/approvals/decide", c.url);
    assert_eq!(post(&decide, None, approve_all, None).await, 401);

    let (status, session, set) = login(&c.url, "wrong-token-0123456789").await;
    assert_eq!((status, session.is_none()), (401, true));
    assert!(set.iter().all(|s| !s.starts_with("offersync_session=")));
    let (status, session, set) = login(&c.url, TOKEN).await;
    assert_eq!(status, 303, "{set:?}");
    let session = session.unwrap();
    let line = set
        .iter()
        .find(|s| s.starts_with("offersync_session="))
        .unwrap();
    assert!(
        line.contains("; HttpOnly")
            && line.contains("; SameSite=Strict")
            && line.contains("; Path=/"),
        "{line}"
    );

    // With a session: no token, a wrong one, or a foreign Origin are refused.
    assert_eq!(post(&decide, Some(&session), approve_all, None).await, 403);
    let wrong = format!("{approve_all}&csrf=00{}", "ab".repeat(31));
    assert_eq!(post(&decide, Some(&session), &wrong, None).await, 403);
    let (_, _, page) = get(&format!("{}/approvals", c.url), Some(&session)).await;
    let csrf = csrf_of(&page).expect("forms carry the session's CSRF token");
    let right = format!("{approve_all}&csrf={csrf}");
    assert_eq!(
        post(&decide, Some(&session), &right, Some("http://evil.example")).await,
        403
    );
    assert_eq!(
        c.state_count("af", "awaiting_approval"),
        waiting,
        "nothing refused changed anything"
    );
    // GET never acts.
    let (status, _, _) = get(&format!("{decide}?{right}"), Some(&session)).await;
    assert_eq!(status, 405);

    // Reject one ticked offer: it stays off the target, and "approve all" leaves it.
    let (_, _, page) = get(&format!("{}/approvals", c.url), Some(&session)).await;
    let pick = page
        .split("name=\"sel\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let reject = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("target", "af")
        .append_pair("action", "reject")
        .append_pair("sel", &pick)
        .finish();
    assert_eq!(post(&decide, Some(&session), &reject, None).await, 303);
    assert_eq!(c.state_count("af", "rejected"), 1);

    assert_eq!(post(&decide, Some(&session), &right, None).await, 303);
    assert_eq!(c.state_count("af", "awaiting_approval"), 0);
    until(
        Duration::from_secs(20),
        "the released creates delivered",
        || crate::push::af(&c.app, |t| t.offers.len()) as i64 == waiting - 1,
    )
    .await;
    assert_eq!(
        c.state_count("af", "rejected"),
        1,
        "approve all leaves the rejected"
    );

    // Detach and attach one offer the Offerit twin holds, from its page.
    let held = crate::harness::sql_strings(
        &c.app,
        "SELECT external_id FROM target_offers WHERE target = 'oi' LIMIT 1",
    )
    .remove(0)
    .remove(0);
    let detached = || {
        crate::harness::sql_i64(
            &c.app,
            "SELECT count(*) FROM target_offers WHERE detached_at IS NOT NULL",
        )
    };
    let (_, _, page) = get(
        &format!("{}/offer?source={SOURCE}&id={held}", c.url),
        Some(&session),
    )
    .await;
    assert!(page.contains("action=\"/offer/detach\""), "{page}");
    let form = |csrf: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", csrf)
            .append_pair("target", "oi")
            .append_pair("source", SOURCE)
            .append_pair("id", &held)
            .finish()
    };
    let detach = format!("{}/offer/detach", c.url);
    assert_eq!(post(&detach, Some(&session), &form("bad"), None).await, 403);
    assert_eq!(detached(), 0);
    assert_eq!(post(&detach, Some(&session), &form(&csrf), None).await, 303);
    assert_eq!(detached(), 1);
    let attach = format!("{}/offer/attach", c.url);
    assert_eq!(post(&attach, Some(&session), &form(&csrf), None).await, 303);
    assert_eq!(detached(), 0);

    // Logged out, the session no longer acts.
    let (_, _, page) = get(&format!("{}/", c.url), Some(&session)).await;
    let csrf = csrf_of(&page).unwrap();
    assert_eq!(
        post(
            &format!("{}/logout", c.url),
            Some(&session),
            &format!("csrf={csrf}"),
            None
        )
        .await,
        303
    );
    assert_eq!(post(&decide, Some(&session), &right, None).await, 401);

    // The token, and the source's and targets' keys, are on no page and in no log line.
    let (_, _, offer) = get(
        &format!("{}/offer?source={SOURCE}&id={}", c.url, first_id(&c)),
        None,
    )
    .await;
    assert!(offer.contains("Raw payload"), "{offer}");
    bodies.push(offer);
    let log = c.log();
    for secret in [
        TOKEN,
        c.app.api_key.as_str(),
        offersync::sandbox::OFFERIT_KEY,
        offersync::sandbox::AFFISE_TARGET_KEY,
    ] {
        assert!(!log.contains(secret), "a secret in the daemon's log");
        assert!(
            bodies.iter().all(|b| !b.contains(secret)),
            "a secret on a page"
        );
    }
    assert!(
        log.contains("console login"),
        "logins are logged (without the token)"
    );
}

fn first_id(c: &Console) -> String {
    c.app
        .store()
        .offers_of(SOURCE)
        .unwrap()
        .first()
        .unwrap()
        .offer
        .external_id
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elsewhere_every_page_needs_a_login_and_failed_logins_back_off() {
    let c = Console::start(3, "0.0.0.0", false).await;
    for page in ["/", "/offers", "/approvals", "/offer?source=x&id=y"] {
        let (status, headers, _) = get(&format!("{}{page}", c.url), None).await;
        assert_eq!(status, 303, "{page}");
        assert_eq!(headers["location"], "/login");
    }
    // HEAD reads too: it must not answer what the page would be without a login.
    let head = client()
        .head(format!("{}/offers", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 303);
    let (status, _, _) = get(&format!("{}/static/console.css", c.url), None).await;
    assert_eq!(status, 200, "the style sheet of the login page");
    // A login form posted without its own CSRF cookie is refused.
    let bare = client()
        .post(format!("{}/login", c.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf=x&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 403);

    for _ in 0..offersync::console::FREE_FAILURES {
        assert_eq!(login(&c.url, "guess-guess-guess-guess").await.0, 401);
    }
    // Locked out now: even the right token is not looked at.
    let c2 = client();
    let form = c2.get(format!("{}/login", c.url)).send().await.unwrap();
    let nonce = cookie_value(&cookies(&form), "offersync_login").unwrap();
    let r = c2
        .post(format!("{}/login", c.url))
        .header("cookie", format!("offersync_login={nonce}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={nonce}&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // After the wait, the right token works, and pages open.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, session, _) = login(&c.url, TOKEN).await;
    assert_eq!(status, 303);
    let (status, _, body) = get(&format!("{}/", c.url), session.as_deref()).await;
    assert_eq!(status, 200);
    assert!(body.contains("Sources"));
}

/// `demo --serve` as the README tells a new user: it prints the console's URL and token, the
/// token logs in, two offers approved on the approval-mode target are delivered, and Ctrl-C
/// (SIGINT) stops it with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_prints_a_console_where_an_offer_can_be_approved() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let out_path = dir.path().join("demo.out");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .args(["demo", "--serve", "--offers", "40", "--db"])
        .arg(&db)
        .args(["--console-listen", &format!("127.0.0.1:{port}")])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let t0 = std::time::Instant::now();
    while !read().contains("\ntoken  ") {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no token printed: {}",
            read()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = read();
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("open   "))
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token  "))
        .unwrap()
        .to_string();
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let c = client();
    let t0 = std::time::Instant::now();
    while c
        .get(format!("{url}/static/console.css"))
        .send()
        .await
        .is_err()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the console is not up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, session, _) = login(&url, &token).await;
    assert_eq!(status, 303);
    let session = session.unwrap();
    let (_, _, page) = get(
        &format!("{url}/approvals?target=affise-demo-target"),
        Some(&session),
    )
    .await;
    let csrf = csrf_of(&page).unwrap();
    let picks: Vec<String> = page
        .match_indices("name=\"sel\" value=\"")
        .take(2)
        .map(|(i, m)| page[i + m.len()..].split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(picks.len(), 2, "offers wait for approval");
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf", &csrf)
        .append_pair("target", "affise-demo-target")
        .append_pair("action", "approve");
    for p in &picks {
        body.append_pair("sel", p);
    }
    let decide = format!("{url}/approvals/decide");
    assert_eq!(
        post(&decide, Some(&session), &body.finish(), None).await,
        303
    );
    let done = || {
        offersync::store::Store::open_read_only(&db, Duration::from_secs(5))
            .and_then(|s| s.outbox_counts("affise-demo-target"))
            .map(|c| {
                c.into_iter()
                    .find(|(s, _)| s == "done")
                    .map_or(0, |(_, n)| n)
            })
            .unwrap_or(0)
    };
    until(
        Duration::from_secs(30),
        "the two approved offers delivered",
        || done() == 2,
    )
    .await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("demo --serve did not stop on SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0));
}
