//! The console in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! fantoccini) against the real daemon: log in, filter offers, open one, approve two queued
//! offers and see them delivered to the Affise twin, retry a dead push, release a held removal.
//! A screenshot of every page is kept in `target/console-screenshots/` (phone-sized too).
//!
//! Needs `chromedriver` and `chromium` (Debian's `chromium-driver` and `chromium`, installed by
//! `.ci/run`; `OFFERSYNC_CHROMEDRIVER` and `OFFERSYNC_CHROMIUM` name other paths). Without them
//! the test fails, saying so: it is never skipped. Everything runs on 127.0.0.1.

use crate::console::{Console, TOKEN};
use crate::daemon::until;
use crate::harness::{free_port, SOURCE};
use crate::push::{af, oi};
use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn tool(var: &str, default: &str, package: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "the browser tests need {path} (Debian package {package}; `.ci/run` installs it, or set {var})"
    );
    path
}

struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
    profile: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let exe = tool(
        "OFFERSYNC_CHROMEDRIVER",
        "/usr/bin/chromedriver",
        "chromium-driver",
    );
    let port = free_port();
    let child = Command::new(exe)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::console::client();
    let t0 = std::time::Instant::now();
    while client.get(format!("{url}/status")).send().await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    Driver {
        child,
        url,
        profile: profile.path().to_string_lossy().into_owned(),
        _profile: profile,
    }
}

async fn browser(d: &Driver) -> Client {
    let chromium = tool("OFFERSYNC_CHROMIUM", "/usr/bin/chromium", "chromium");
    // Without these, Chromium waits on the network (closed here) or on a first-run dialog.
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", d.profile)])
    .collect::<Vec<_>>();
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    // chromedriver listens on 127.0.0.1 over plain HTTP: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a Chromium session")
}

fn shots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(b: &Client, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// Wait for the page at `path` (a prefix of path and query) to be loaded.
async fn at(b: &Client, path: &str) {
    let t0 = std::time::Instant::now();
    loop {
        let u = b.current_url().await.unwrap();
        let here = format!("{}?{}", u.path(), u.query().unwrap_or_default());
        if here.starts_with(path) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "still at {here}, not {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(b: &Client, css: &str) -> String {
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_filters_approves_retries_and_releases_in_chromium() {
    tokio::time::timeout(Duration::from_secs(180), scenario())
        .await
        .expect("the browser scenario finishes within 3 minutes");
}

async fn scenario() {
    let c = Console::start(30, "127.0.0.1", true).await;
    let d = driver().await;
    let b = browser(&d).await;
    let u = |p: &str| format!("{}{p}", c.url);

    // Log in.
    b.goto(&u("/login")).await.unwrap();
    shot(&b, "login").await;
    b.find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&b, "form.login button[type=submit]").await;
    at(&b, "/?").await;
    assert_eq!(text(&b, "h1").await, "Overview");
    assert!(text(&b, "header").await.contains("Log out"));
    shot(&b, "overview").await;

    // Filter offers: active ones of one country.
    let offers = c.app.offers();
    let country = offers
        .iter()
        .find_map(|o| o.offer.countries.first().cloned())
        .expect("offers with countries");
    let want = offers
        .iter()
        .filter(|o| o.offer.status.as_str() == "active" && o.offer.countries.contains(&country))
        .count();
    b.goto(&u("/offers")).await.unwrap();
    b.find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("active")
        .await
        .unwrap();
    b.find(Locator::Css("input[name=country]"))
        .await
        .unwrap()
        .send_keys(&country.to_string())
        .await
        .unwrap();
    click(&b, "form.filters button[type=submit]").await;
    at(&b, "/offers?source=&status=active").await;
    let rows = b.find_all(Locator::Css("#offers tbody tr")).await.unwrap();
    assert_eq!(rows.len(), want.min(50), "the filtered rows");
    for r in &rows {
        let t = r.text().await.unwrap();
        assert!(
            t.contains("active") && t.contains(&country.to_string()),
            "{t}"
        );
    }
    shot(&b, "offers").await;

    // One offer.
    click(&b, "#offers tbody tr td:nth-child(2) a").await;
    at(&b, "/offer?").await;
    assert!(text(&b, "#raw").await.contains('{'));
    shot(&b, "offer").await;

    // Approve two queued offers: delivered to the Affise twin.
    assert_eq!(af(&c.app, |t| t.offers.len()), 0);
    let waiting = c.state_count("af", "awaiting_approval");
    b.goto(&u("/approvals")).await.unwrap();
    shot(&b, "approvals").await;
    let boxes = b.find_all(Locator::Css("input[name=sel]")).await.unwrap();
    assert_eq!(boxes.len() as i64, waiting);
    for cb in &boxes[..2] {
        cb.click().await.unwrap();
    }
    click(&b, "button[value=approve]").await;
    at(&b, "/approvals?notice=").await;
    assert!(
        text(&b, ".notice")
            .await
            .contains("af: 2 operation(s) released"),
        "{}",
        text(&b, ".notice").await
    );
    until(
        Duration::from_secs(20),
        "two offers on the Affise twin",
        || af(&c.app, |t| t.offers.len()) == 2,
    )
    .await;
    assert_eq!(c.state_count("af", "awaiting_approval"), waiting - 2);
    shot(&b, "approvals-after").await;

    // Retry the dead push.
    assert_eq!(c.state_count("oi", "dead"), 1);
    let creates_before = oi(&c.app, |t| t.offers.len());
    b.goto(&u("/dead")).await.unwrap();
    assert!(text(&b, "table.dead").await.contains("HTTP 400"));
    shot(&b, "dead").await;
    click(&b, "form[action='/dead/retry'] button").await;
    at(&b, "/dead?notice=").await;
    assert!(text(&b, ".notice")
        .await
        .contains("1 dead operation(s) back in the queue"));
    until(Duration::from_secs(20), "the dead create delivered", || {
        c.state_count("oi", "dead") == 0 && oi(&c.app, |t| t.offers.len()) == creates_before + 1
    })
    .await;

    // Release the held removal.
    b.goto(&u("/removals")).await.unwrap();
    assert!(text(&b, "#held").await.contains(SOURCE));
    shot(&b, "removals").await;
    click(&b, "form[action='/removals/approve'] button").await;
    at(&b, "/removals?notice=").await;
    let notice = text(&b, ".notice").await;
    assert!(
        notice.contains(&format!("removed {} offer(s)", offers.len())),
        "{notice}"
    );
    let run = &c.app.store().runs_of(SOURCE, 1).unwrap()[0];
    assert_eq!(run.reason.as_deref(), Some("removals_approved"));

    // A phone's width.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&u("/approvals")).await.unwrap();
    shot(&b, "approvals-phone").await;
    b.goto(&u("/")).await.unwrap();
    shot(&b, "overview-phone").await;
    b.close().await.unwrap();
}
