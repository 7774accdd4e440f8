//! The rate-limit layer against the sandbox: Retry-After in both forms, 503, budgets that run
//! out (partial, pages kept), rate-limit headers honoured before a 429, sources isolated from
//! each other's limits, and groups sharing one pace.

use crate::harness::{TestApp, SOURCE};
use offersync::config::Config;
use offersync::http::Limiters;
use offersync::sandbox::limits::{Limit, LimitAnswer};
use offersync::sandbox::{Fault, FaultRule};
use offersync::store::RunState;
use offersync::sync::{self, RunReport, SyncContext};
use std::time::{Duration, Instant};

const KEY_B: &str = "trk_second000000000000000000000000";

/// Rewrite the config with two sources on the same twin: the harness's one and "second" (with
/// `KEY_B`), paced at `rps`, each with `extra` lines (pages of 10 unless they say otherwise).
fn two_sources(app: &TestApp, rps: u32, extra_a: &str, extra_b: &str) {
    app.sandbox
        .with_trackly(|t| t.extra_keys.push(KEY_B.into()));
    let text = format!(
        r#"
{db}
[[sources]]
name = "{SOURCE}"
kind = "trackly"
base_url = {url:?}
api_key = {key_a:?}
requests_per_second = {rps}
{extra_a}
[[sources]]
name = "second"
kind = "trackly"
base_url = {url:?}
api_key = {KEY_B:?}
requests_per_second = {rps}
{extra_b}
"#,
        db = app.database_toml(),
        url = app.sandbox.trackly_base_url(),
        key_a = app.api_key,
    );
    std::fs::write(&app.config_path, text).unwrap();
}

/// Run every configured source concurrently; return each one's report and wall time.
async fn run_timed(app: &TestApp) -> Vec<(RunReport, Duration)> {
    let config = Config::load(&app.config_path).unwrap();
    let sources: Vec<_> = config.sources.iter().collect();
    let prepared = sync::prepare(&sources, &Limiters::new()).unwrap();
    let ctx = SyncContext::for_database(&config.database);
    let runs = prepared.into_iter().map(|p| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let r = sync::run_source(&ctx, &p.cfg, p.source, p.endpoint).await;
            (r, t0.elapsed())
        })
    });
    let mut out = Vec::new();
    for r in runs.collect::<Vec<_>>() {
        out.push(r.await.unwrap());
    }
    out
}

fn finished(r: &RunReport) -> &offersync::store::RunTotals {
    match r {
        RunReport::Finished(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_as_http_date_and_503_are_honoured() {
    let app = TestApp::new(300).await;
    let date = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    app.sandbox.with_trackly(|t| {
        t.faults.push(FaultRule::once_on_page(
            2,
            Fault::RateLimited {
                retry_after: Some(date),
            },
        ));
    });
    let t0 = Instant::now();
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.rate_limited, run.retries),
        (RunState::Complete, 1, 1),
        "{run:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "waited for the date: {:?}",
        t0.elapsed()
    );

    // A 503 with Retry-After is a rate limit too; the key's limiter answers it.
    app.sandbox.with_trackly(|t| {
        t.limits.insert(
            app.api_key.clone(),
            Limit::bucket(1.0, 2.0, LimitAnswer::Unavailable(1)),
        );
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    assert!(run.rate_limited >= 1, "{run:?}");
    assert_eq!(
        run.rate_limited,
        app.sandbox
            .with_trackly(|t| t.limits[&app.api_key].rejected) as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_budget_ends_the_run_partial_with_its_pages_kept() {
    let app = TestApp::new(500).await;
    // Retry-After: 0 is no hint: the client backs off (never an instant retry) and gives up.
    app.sandbox.with_trackly(|t| {
        t.faults.push(FaultRule::on_page(
            3,
            Fault::RateLimited {
                retry_after: Some("0".into()),
            },
        ));
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Partial, "{run:?}");
    assert_eq!(run.reason.as_deref(), Some("rate_limited"));
    assert!(run
        .error
        .as_deref()
        .unwrap()
        .contains("gave up after 3 attempts"));
    assert_eq!((run.pages, run.offers_seen, run.removed), (2, 200, 0));
    assert_eq!((run.requests, run.retries, run.rate_limited), (5, 2, 3));
    assert_eq!(app.offers().len(), 200, "stored pages stay");

    // Rate limited from the first page: still partial (not failed), nothing lost.
    app.sandbox.with_trackly(|t| {
        t.faults.clear();
        t.faults
            .push(FaultRule::always(Fault::RateLimited { retry_after: None }));
    });
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.reason.as_deref(), run.pages),
        (RunState::Partial, Some("rate_limited"), 0)
    );

    // The next run starts over cleanly.
    app.sandbox.with_trackly(|t| t.faults.clear());
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.added, run.unchanged),
        (RunState::Complete, 300, 200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_are_respected_before_a_429() {
    let app = TestApp::new(300).await;
    app.write_config(crate::harness::SourceOpts {
        page_size: 10,
        api_key_line: format!("api_key = {:?}", app.api_key),
        extra: String::new(),
    });
    let app_key = app.api_key.clone();
    app.sandbox.with_trackly(|t| {
        t.limits.insert(
            app_key,
            Limit::window(
                10,
                Duration::from_millis(400),
                LimitAnswer::RetryAfterSeconds(1),
            ),
        );
    });
    let t0 = Instant::now();
    let run = app.sync().await;
    assert_eq!((run.state, run.pages), (RunState::Complete, 30), "{run:?}");
    let rejected = app
        .sandbox
        .with_trackly(|t| t.limits[&app.api_key].rejected);
    assert_eq!(
        rejected, 0,
        "the budget announced in X-RateLimit-* was never exceeded"
    );
    assert!(
        run.rate_limited >= 1,
        "the holds on a spent budget are counted: {run:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "30 requests at 10 per 400 ms: {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_source_does_not_slow_another() {
    let app = TestApp::new(300).await;
    two_sources(&app, 1000, "page_size = 5", "page_size = 10");
    let limited = app.api_key.clone();
    // 20 requests per second with a one-second bucket; the first source needs 60 pages.
    app.sandbox.with_trackly(|t| {
        t.limits.insert(
            limited,
            Limit::bucket(20.0, 20.0, LimitAnswer::RetryAfterSeconds(1)),
        );
    });
    let runs = run_timed(&app).await;
    let (a, a_time) = (finished(&runs[0].0), runs[0].1);
    let (b, b_time) = (finished(&runs[1].0), runs[1].1);
    assert_eq!((a.state, b.state), (RunState::Complete, RunState::Complete));
    assert!(
        a.rate_limited > 0 && a_time >= Duration::from_millis(1500),
        "{a:?} {a_time:?}"
    );
    assert_eq!(b.rate_limited, 0);
    assert!(
        b_time < Duration::from_millis(600),
        "the other source ran at its own pace: {b_time:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_in_one_rate_limit_group_share_one_pace() {
    let app = TestApp::new(100).await;
    // Alone, each source's 10 pages at 20/s take ~0.45 s; sharing one pace, 20 pages take ~0.95 s.
    two_sources(
        &app,
        20,
        "page_size = 10\nrate_limit_group = \"acme\"",
        "page_size = 10\nrate_limit_group = \"acme\"",
    );
    let t0 = Instant::now();
    let runs = run_timed(&app).await;
    let shared = t0.elapsed();
    assert!(runs
        .iter()
        .all(|(r, _)| finished(r).state == RunState::Complete));
    assert!(
        shared >= Duration::from_millis(900),
        "one pace for the group: {shared:?}"
    );

    two_sources(&app, 20, "page_size = 10", "page_size = 10");
    let t0 = Instant::now();
    run_timed(&app).await;
    let separate = t0.elapsed();
    assert!(
        separate < Duration::from_millis(800),
        "separate paces run side by side: {separate:?}"
    );
}
