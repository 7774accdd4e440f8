//! Ordinary failures (issue 16), each reproduced with a loopback server: answers lost after a
//! create, a removal while a create is in flight, redirects to other origins, far
//! `X-RateLimit-Reset`s, pages missing mid-feed, absurd totals, a target outage, a lost
//! delivery lease and databases that cannot be used.

use crate::daemon::{until, Daemon};
use crate::harness::{sql_i64, text, Proxy, Recorder, SourceOpts, TestApp, SOURCE};
use crate::push::{af, configure, deliver_all, oi, outbox_states, targets_toml};
use offersync::config::Config;
use offersync::http::Limiters;
use offersync::push::deliver::{deliver, DeliveryReport};
use offersync::sandbox::{Fault, FaultRule, Rewrite};
use offersync::store::RunState;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Commands that open the mirror, each in its own way (sync, read, deliver, decide).
const DB_COMMANDS: [&[&str]; 4] = [
    &["--once"],
    &["inspect", "offers"],
    &["push"],
    &["approve-removals", SOURCE],
];

fn active(app: &TestApp) -> Vec<offersync::store::StoredOffer> {
    app.offers()
        .into_iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .collect()
}

/// Fast targets whose calls time out after a second and are redelivered a second later.
const QUICK: &str = "timeout_seconds = 1\nredelivery_interval_seconds = 1";

/// The faults that carry a create out and lose its answer.
fn lost_answers() -> Vec<(&'static str, Fault)> {
    vec![
        (
            "an answer later than timeout_seconds",
            Fault::SlowAfterAction(Duration::from_millis(2500)),
        ),
        ("HTTP 500 after creating", Fault::ServerErrorAfterAction),
        ("HTML at HTTP 200", Fault::HtmlAfterAction),
        ("success without an id", Fault::NoIdAfterAction),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_never_leaves_a_duplicate_on_affise_or_a_live_one_on_offerit() {
    for (what, fault) in lost_answers() {
        let app = TestApp::new(8).await;
        configure(&app, "", QUICK, QUICK);
        oi(&app, |t| {
            t.faults.push(FaultRule::always(fault.clone()).times(2))
        });
        af(&app, |t| {
            t.faults.push(FaultRule::always(fault.clone()).times(2))
        });
        let out = app.bin(&["--once"], &[("RUST_LOG", "warn")]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let live = active(&app);
        assert!(live.len() >= 4, "{what}");
        assert_eq!(
            sql_i64(
                &app,
                "SELECT count(*) FROM push_outbox WHERE state <> 'done'"
            ),
            0,
            "{what}: every operation settled within the run"
        );

        // Affise is searched by external_offer_id before anything is sent again.
        let held = af(&app, |t| t.offers.clone());
        let mut by_ext: BTreeMap<String, usize> = BTreeMap::new();
        for h in held.values() {
            *by_ext
                .entry(h.fields["external_offer_id"].clone())
                .or_default() += 1;
        }
        assert_eq!(held.len(), live.len(), "{what}: one Affise offer per offer");
        assert!(by_ext.values().all(|n| *n == 1), "{what}: {by_ext:?}");
        let creates_sent = af(&app, |t| {
            t.calls.iter().filter(|c| *c == "POST create").count()
        });
        assert_eq!(
            creates_sent,
            live.len(),
            "{what}: no Affise create was sent twice"
        );

        // Offerit cannot be searched: creates are staged hidden, so the lost answers left
        // hidden orphans only, each flagged; every offer is live exactly once.
        let oi_held = oi(&app, |t| t.offers.clone());
        let mut live_by_name: BTreeMap<String, usize> = BTreeMap::new();
        for h in oi_held.values().filter(|h| h.is_live()) {
            *live_by_name.entry(h.fields["name"].clone()).or_default() += 1;
        }
        for o in &live {
            assert_eq!(
                live_by_name.get(&o.offer.name).copied(),
                Some(1),
                "{what}: {} live once on Offerit",
                o.offer.external_id
            );
        }
        let orphans: Vec<_> = oi_held.values().filter(|h| !h.is_live()).collect();
        assert_eq!(
            orphans.len(),
            2,
            "{what}: the two lost answers left orphans"
        );
        assert!(orphans
            .iter()
            .all(|h| h.fields.get("hidden").map(String::as_str) == Some("1")));
        assert_eq!(
            sql_i64(
                &app,
                "SELECT count(*) FROM push_outbox WHERE target = 'oi' AND possible_duplicate = true"
            ),
            2,
            "{what}: each re-sent create is flagged"
        );
    }
}

/// Deliver both targets at the same time (in-process).
async fn deliver_both(app: &TestApp) -> Vec<DeliveryReport> {
    let config = Config::load(&app.config_path).unwrap();
    let targets: Vec<_> = config.targets.iter().collect();
    let prepared = offersync::push::prepare_targets(&targets, &Limiters::new()).unwrap();
    let never = offersync::sync::Shutdown::never();
    let runs = prepared.into_iter().map(|t| {
        let (db, never) = (config.database.clone(), never.clone());
        async move { deliver(&db, &t.cfg, t.target, t.endpoint, &never).await }
    });
    futures_util::future::join_all(runs).await
}

fn catalog_index_of(app: &TestApp, id_or_name: &str) -> usize {
    app.sandbox.with_trackly(|t| {
        t.catalog
            .live(|_| true)
            .into_iter()
            .find(|o| o.id == id_or_name || o.name == id_or_name)
            .map(|o| o.index)
            .expect("offer in the catalogue")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_during_an_in_flight_create_ends_paused_on_both_targets() {
    let app = TestApp::new(10).await;
    configure(&app, "", "", "");
    assert_eq!(app.sync().await.state, RunState::Complete);
    // The first create of each target is carried out at once and answered 1.5 s later.
    for twin in [&app.sandbox.offerit_target, &app.sandbox.affise_target] {
        twin.lock()
            .unwrap()
            .faults
            .push(FaultRule::always(Fault::SlowAfterAction(Duration::from_millis(1500))).times(1));
    }
    let deliveries = deliver_both(&app);
    let remove = async {
        until(Duration::from_secs(10), "both first creates", || {
            oi(&app, |t| !t.offers.is_empty()) && af(&app, |t| !t.offers.is_empty())
        })
        .await;
        let (name, ext) = (
            oi(&app, |t| {
                t.offers.values().next().unwrap().fields["name"].clone()
            }),
            af(&app, |t| {
                t.offers.values().next().unwrap().fields["external_offer_id"].clone()
            }),
        );
        let id = ext.strip_prefix(&format!("{SOURCE}:")).unwrap().to_string();
        assert_eq!(
            catalog_index_of(&app, &name),
            catalog_index_of(&app, &id),
            "both targets create the same first offer"
        );
        // The source drops the offer while both creates are in flight; a sync records it.
        let index = catalog_index_of(&app, &id);
        app.sandbox.with_trackly(|t| t.catalog.remove(index));
        let run = app.sync().await;
        assert_eq!((run.state, run.removed), (RunState::Complete, 1));
        id
    };
    let (reports, id) = tokio::join!(deliveries, remove);
    for r in &reports {
        assert!(r.error.is_none(), "{r:?}");
    }
    deliver_all(&app).await;
    let ext = format!("{SOURCE}:{id}");
    let af_copies = af(&app, |t| {
        t.find("external_offer_id", &ext)
            .into_iter()
            .map(|(_, h)| h.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(af_copies.len(), 1);
    assert_eq!(af_copies[0].status, "stopped", "paused on Affise");
    let name = app.store().offer(SOURCE, &id).unwrap().unwrap().offer.name;
    let oi_copies = oi(&app, |t| {
        t.find("name", &name)
            .into_iter()
            .map(|(_, h)| h.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(oi_copies.len(), 1);
    assert!(
        !oi_copies[0].is_live(),
        "never live on Offerit: {oi_copies:?}"
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE state <> 'done'"
        ),
        0
    );
    // Every other offer is live once on each target.
    let others = active(&app);
    assert_eq!(af(&app, |t| t.live().len()), others.len());
    assert_eq!(oi(&app, |t| t.live().len()), others.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_create_sent_and_removal_synced_leaves_nothing_live() {
    // Offerit first (config order): the process dies right after its first create's answer.
    let app = TestApp::new(10).await;
    configure(&app, "", "", "");
    let crash = app
        .bin(&["--once"], &[("OFFERSYNC_FAILPOINT", "after_push_call")])
        .await;
    assert!(text(&crash.stderr).contains("failpoint after_push_call"));
    let name = oi(&app, |t| {
        t.offers.values().next().unwrap().fields["name"].clone()
    });
    let index = catalog_index_of(&app, &name);
    app.sandbox.with_trackly(|t| t.catalog.remove(index));
    let again = app.bin(&["--once"], &[]).await;
    assert!(
        again.status.success(),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
    let copies = oi(&app, |t| t.find("name", &name).len());
    assert_eq!(
        copies, 1,
        "the create was not sent again for a removed offer"
    );
    assert!(oi(&app, |t| t.find("name", &name)[0].1.fields["hidden"] == "1"));
    assert_eq!(oi(&app, |t| t.live().len()), active(&app).len());
    assert_eq!(af(&app, |t| t.find("title", &name).len()), 0);

    // Affise first: its lookup finds the create and the removal pauses it.
    let app = TestApp::new(10).await;
    configure(&app, "", "[targets.filters]\ncountries = [\"AQ\"]", "");
    let crash = app
        .bin(&["--once"], &[("OFFERSYNC_FAILPOINT", "after_push_call")])
        .await;
    assert!(!crash.status.success());
    let ext = af(&app, |t| {
        t.offers.values().next().unwrap().fields["external_offer_id"].clone()
    });
    let id = ext.strip_prefix(&format!("{SOURCE}:")).unwrap().to_string();
    let index = catalog_index_of(&app, &id);
    app.sandbox.with_trackly(|t| t.catalog.remove(index));
    let again = app.bin(&["--once"], &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let copies = af(&app, |t| {
        t.find("external_offer_id", &ext)
            .into_iter()
            .map(|(_, h)| h.status.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(copies, vec!["stopped".to_string()]);
    assert_eq!(af(&app, |t| t.live().len()), active(&app).len());
}

fn trackly_page(n: usize) -> String {
    let offers: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("6640000000000000000000{i:02}"), "name": format!("Redirected {i}"),
                "tracking_url": "https://t.example/c", "payout": 1.5, "payout_type": "cpa", "status": "active"})
        })
        .collect();
    serde_json::json!({"offers": offers, "pagination": {"page": 1, "per_page": 100, "total": n, "total_pages": 1}})
        .to_string()
}

const MARKER: &str = "trk_redirectmarker0000000000000000";

fn redirect_source(app: &TestApp, base_url: &str) {
    app.write_config(SourceOpts {
        page_size: 100,
        api_key_line: format!("api_key = {MARKER:?}"),
        extra: String::new(),
    });
    let cfg = std::fs::read_to_string(&app.config_path).unwrap();
    let cfg = cfg.replace(&app.sandbox.trackly_base_url(), base_url);
    std::fs::write(&app.config_path, cfg).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_only_on_the_same_origin() {
    let app = TestApp::new(1).await;
    // The other origin would serve offers, and must never see the key.
    let elsewhere = Recorder::start(|_| (200, vec![], trackly_page(3))).await;
    for status in [301u16, 302, 307, 308] {
        let to = format!("{}/stolen/v2/offers", elsewhere.url);
        let redirector = Recorder::start(move |_| {
            (status, vec![("location".into(), to.clone())], String::new())
        })
        .await;
        redirect_source(&app, &redirector.url);
        let out = app.bin(&["--once"], &[("RUST_LOG", "trace")]).await;
        assert_eq!(out.status.code(), Some(1), "HTTP {status}");
        let run = &app.store().runs_of(SOURCE, 1).unwrap()[0];
        assert_eq!(
            (run.state, run.reason.as_deref()),
            (RunState::Failed, Some("permanent")),
            "HTTP {status}: {run:?}"
        );
        let err = run.error.clone().unwrap();
        assert!(
            err.contains("leaves the origin")
                && err.contains(&redirector.url.replace("http://", ""))
                && err.contains(&elsewhere.url.replace("http://", "")),
            "HTTP {status}: {err}"
        );
        assert_eq!(redirector.received().len(), 1, "not retried");
        let all = format!("{}{}{err}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(MARKER), "the key never shows");
    }
    assert!(
        elsewhere.received().is_empty(),
        "no request reached the other origin"
    );

    // Same origin: followed.
    let same = Recorder::start(|path| {
        if path.starts_with("/moved/") {
            (200, vec![], trackly_page(2))
        } else {
            (
                307,
                vec![("location".into(), path.replacen("/old/", "/moved/", 1))],
                String::new(),
            )
        }
    })
    .await;
    redirect_source(&app, &format!("{}/old", same.url));
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = &app.store().runs_of(SOURCE, 1).unwrap()[0];
    assert_eq!((run.state, run.added), (RunState::Complete, 2));
    assert!(
        same.received()[1].path.starts_with("/old/moved/")
            || same.received()[1].path.starts_with("/moved/")
    );
    assert!(same.received()[1]
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == MARKER));

    // A loop is refused too.
    let looping = Recorder::start(|path| {
        (
            302,
            vec![("location".into(), path.to_string())],
            String::new(),
        )
    })
    .await;
    redirect_source(&app, &looping.url);
    app.bin(&["--once"], &[]).await;
    let err = app.store().runs_of(SOURCE, 1).unwrap()[0]
        .error
        .clone()
        .unwrap();
    assert!(err.contains("redirect loop"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_redirecting_elsewhere_never_receives_nor_leaks_the_key() {
    let app = TestApp::new(5).await;
    let twin = app.sandbox.affise_target_url();
    let redirector = Recorder::start(move |path| {
        (
            307,
            vec![("location".into(), format!("{twin}{path}"))],
            String::new(),
        )
    })
    .await;
    configure(&app, "", "", "");
    let cfg = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace(&app.sandbox.affise_target_url(), &redirector.url);
    std::fs::write(&app.config_path, cfg).unwrap();
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(af(&app, |t| t.calls.is_empty()), "the twin got nothing");
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE target = 'af' AND state = 'dead'"
        ),
        0,
        "a target that redirects away is a target problem: nothing dies"
    );
    let err = crate::harness::sql_strings(
        &app,
        "SELECT last_error FROM push_outbox WHERE target = 'af' AND last_error IS NOT NULL LIMIT 1",
    )
    .remove(0)
    .remove(0);
    assert!(err.contains("leaves the origin"), "{err}");
}

fn reset_in(secs: i64) -> Fault {
    Fault::ExtraHeaders(vec![
        ("x-ratelimit-limit".into(), "100".into()),
        ("x-ratelimit-remaining".into(), "0".into()),
        (
            "x-ratelimit-reset".into(),
            (chrono::Utc::now().timestamp() + secs).to_string(),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_rate_limit_reset_is_capped_logged_counted_and_bounded_by_the_budget() {
    let app = TestApp::new(30).await;
    app.write_config(SourceOpts {
        page_size: 10,
        api_key_line: format!("api_key = {:?}", app.api_key),
        extra: "max_retry_after_seconds = 1".into(),
    });
    app.sandbox
        .with_trackly(|t| t.faults.push(FaultRule::always(reset_in(86_400))));
    let t0 = Instant::now();
    let out = app.bin(&["--once"], &[("RUST_LOG", "warn")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let run = &app.store().runs_of(SOURCE, 1).unwrap()[0];
    assert_eq!((run.state, run.pages), (RunState::Complete, 3));
    assert_eq!(run.rate_limited, 3, "each hold is counted");
    let log = text(&out.stderr);
    assert!(
        log.contains("holding requests until the reset") && log.contains(SOURCE),
        "{log}"
    );

    // A hold longer than what is left of the retry budget is not waited out.
    app.write_config(SourceOpts {
        page_size: 10,
        api_key_line: format!("api_key = {:?}", app.api_key),
        extra: "max_retry_after_seconds = 30\nretry_max_elapsed_seconds = 2".into(),
    });
    let t0 = Instant::now();
    let run = app.sync().await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(
        (run.state, run.reason.as_deref(), run.pages),
        (RunState::Partial, Some("rate_limited"), 1),
        "{run:?}"
    );
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .contains("beyond the retry budget"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_missing_mid_feed_is_not_the_end_and_removes_nothing() {
    let app = TestApp::new(1000).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox
        .with_trackly(|t| t.faults.push(FaultRule::on_page(8, Fault::EmptyPage)));
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.reason.as_deref(), run.removed, run.pages),
        (RunState::Partial, Some("incomplete"), 0, 7),
        "{run:?}"
    );
    assert!(run.error.as_deref().unwrap().contains("page 8"), "{run:?}");
    assert_eq!(
        app.offers()
            .iter()
            .filter(|o| o.removed_at.is_none())
            .count(),
        1000
    );
    // Missing once: retried, and the run completes.
    app.sandbox.with_trackly(|t| {
        t.faults.clear();
        t.faults.push(FaultRule::once_on_page(8, Fault::EmptyPage));
    });
    let run = app.sync().await;
    assert_eq!((run.state, run.removed), (RunState::Complete, 0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_total_neither_overflows_nor_stops_the_run() {
    let app = TestApp::new(250).await;
    app.sandbox.with_trackly(|t| {
        t.faults
            .push(FaultRule::always(Fault::Rewrite(Rewrite::new(|body| {
                let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
                v["pagination"]["total"] = serde_json::json!(1e30);
                v["pagination"]["total_pages"] = serde_json::json!(1e30);
                *body = serde_json::to_vec(&v).unwrap();
            }))))
    });
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.added, run.pages),
        (RunState::Complete, 250, 4),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_second_target_outage_loses_and_kills_nothing() {
    let app = TestApp::new(12).await;
    let upstream = app.sandbox.url().replace("http://", "");
    let proxy = Proxy::start(&upstream).await;
    proxy.down();
    let tail = targets_toml(
        &app,
        "enabled = false",
        "timeout_seconds = 2\nredelivery_interval_seconds = 1",
    )
    .replace(
        &app.sandbox.affise_target_url(),
        &format!("{}/affise-target", proxy.url()),
    );
    let daemon = Daemon::start_with(&app, "delivery_interval_seconds = 1", "", &tail);
    let t0 = Instant::now();
    while !(app.mirror_exists()
        && app
            .store()
            .runs_of(SOURCE, 1)
            .unwrap()
            .first()
            .is_some_and(|r| r.state == RunState::Complete))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no complete run: {}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while t0.elapsed() < Duration::from_secs(20) {
        assert_eq!(
            sql_i64(
                &app,
                "SELECT count(*) FROM push_outbox WHERE state = 'dead'"
            ),
            0,
            "nothing dies during the outage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(af(&app, |t| t.calls.is_empty()), "the port was closed");
    let tripped = sql_i64(
        &app,
        "SELECT count(*) FROM target_state WHERE target = 'af' AND failures >= 3",
    );
    assert_eq!(tripped, 1, "the breaker paused delivery");
    let stats = app
        .bin(
            &[
                "inspect",
                "stats",
                "--section",
                "targets",
                "--format",
                "json",
            ],
            &[],
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        v[0]["paused_until"].is_string() && v[0]["failures_in_a_row"].as_i64() >= Some(3),
        "{v}"
    );
    proxy.up().await;
    let want = active(&app).len();
    until(Duration::from_secs(60), "delivery after the outage", || {
        sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE target = 'af' AND state <> 'done'",
        ) == 0
            && af(&app, |t| t.offers.len()) == want
    })
    .await;
    let (code, _, _, log) = daemon.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("delivery pauses"), "the breaker is logged");
    let held = af(&app, |t| t.offers.clone());
    let mut by_ext: BTreeMap<String, usize> = BTreeMap::new();
    for h in held.values() {
        *by_ext
            .entry(h.fields["external_offer_id"].clone())
            .or_default() += 1;
    }
    assert!(by_ext.values().all(|n| *n == 1), "{by_ext:?}");
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE state = 'dead'"
        ),
        0
    );
    assert_eq!(
        outbox_states(&app, "af"),
        vec![("done".to_string(), want as i64)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_loses_its_lease_stops() {
    let app = TestApp::new(20).await;
    configure(&app, "", "enabled = false", "");
    app.sync().await;
    af(&app, |t| t.delay = Duration::from_millis(150));
    let deliveries = deliver_both(&app);
    let steal = async {
        until(Duration::from_secs(10), "the first create", || {
            af(&app, |t| !t.calls.is_empty())
        })
        .await;
        crate::harness::sql_exec(
            &app,
            "UPDATE source_leases SET holder = 'another-process' WHERE source = 'target:af'",
        );
    };
    let (reports, ()) = tokio::join!(deliveries, steal);
    let r = reports.iter().find(|r| r.target == "af").unwrap();
    assert!(
        r.error
            .as_deref()
            .unwrap_or_default()
            .contains("taken over"),
        "{r:?}"
    );
    assert!(
        af(&app, |t| t.calls.len()) <= 3,
        "delivery stopped within an operation of losing the lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_failing_every_request_kills_nothing_and_a_refused_operation_dies() {
    let app = TestApp::new(20).await;
    configure(&app, "", "enabled = false", QUICK);
    app.sync().await;
    // Down for good: the breaker opens after three operations; nothing dies.
    af(&app, |t| {
        t.faults.push(FaultRule::always(Fault::ServerError))
    });
    let of_af =
        |reports: Vec<DeliveryReport>| reports.into_iter().find(|r| r.target == "af").unwrap();
    let r = of_af(deliver_all(&app).await);
    assert!(r.paused_until.is_some() && !r.ok(), "{r:?}");
    assert_eq!((r.dead, r.done, r.ambiguous), (0, 0, 3), "{r:?}");
    assert_eq!(
        af(&app, |t| t.calls.len()),
        3,
        "three tries, then the breaker"
    );
    // Back up: the unresolved creates are looked up (they never went through) and sent once.
    af(&app, |t| t.faults.clear());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = of_af(deliver_all(&app).await);
    let want = active(&app).len();
    assert_eq!(r.done as usize, want, "{r:?}");
    assert_eq!(af(&app, |t| t.offers.len()), want);

    // A refused operation (HTTP 400) dies at once, and the exit code says so until requeued.
    let live = app
        .sandbox
        .with_trackly(|t| t.catalog.live(|s| s == "active"));
    app.sandbox
        .with_trackly(|t| t.catalog.update(live[0].index, |o| o.payout_cents += 100));
    app.sync().await;
    af(&app, |t| {
        t.faults.push(FaultRule::always(Fault::BadRequest).times(1))
    });
    let out = app.bin(&["push"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("1 dead operation(s)"),
        "{}",
        text(&out.stderr)
    );
    let pushes = app
        .bin(
            &["inspect", "pushes", "--state", "dead", "--format", "json"],
            &[],
        )
        .await;
    let v: serde_json::Value = serde_json::from_slice(&pushes.stdout).unwrap();
    assert!(
        v[0]["last_error"].as_str().unwrap().contains("HTTP 400"),
        "{v}"
    );
    let out = app.bin(&["push", "--retry-dead"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("1 dead operation(s) back in the queue"));
    assert_eq!(
        outbox_states(&app, "af"),
        vec![("done".to_string(), want as i64 + 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_used_is_reported_loudly_with_exit_2() {
    let app = TestApp::new(5).await;
    configure(&app, "", "", "");
    if let Some(db) = &app.pg {
        return unusable_postgres_is_reported_with_exit_2(&app, db).await;
    }
    // Not an SQLite file.
    std::fs::write(
        &app.db_path,
        b"this is not a database, it is a shopping list\n",
    )
    .unwrap();
    for args in DB_COMMANDS {
        let out = app.bin(args, &[]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(app.db_path.to_str().unwrap()) && err.contains("hint:"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(&app.db_path).unwrap(),
        b"this is not a database, it is a shopping list\n",
        "never overwritten"
    );

    // Newer than this binary.
    std::fs::remove_file(&app.db_path).unwrap();
    {
        let conn = rusqlite::Connection::open(&app.db_path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("schema version 99"),
        "{}",
        text(&out.stderr)
    );

    // A path that cannot be created.
    let cfg = std::fs::read_to_string(&app.config_path).unwrap().replace(
        app.db_path.to_str().unwrap(),
        &format!("{}/sub/x.db", app.config_path.display()),
    );
    std::fs::write(&app.config_path, cfg).unwrap();
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("hint:"), "{}", text(&out.stderr));
}

/// The PostgreSQL run of the test above: a schema newer than this binary, a refused password
/// and a server that does not answer each make every command exit 2 naming the database, and
/// the newer schema is never touched.
async fn unusable_postgres_is_reported_with_exit_2(
    app: &TestApp,
    db: &offersync::sandbox::postgres::TestDb,
) {
    // Newer than this binary.
    assert!(app.bin(&["--once"], &[]).await.status.success());
    crate::harness::sql_exec(app, "UPDATE offersync_schema SET version = 99");
    all_exit_2(app, db, &db.url, "newer schema", "schema version 99", false).await;
    assert_eq!(
        sql_i64(app, "SELECT version FROM offersync_schema"),
        99,
        "never migrated down"
    );
    // A password the server refuses.
    let pgpass = app.dir.path().join("pgpass");
    std::fs::write(&pgpass, "not-the-password").unwrap();
    all_exit_2(app, db, &db.url, "refused password", "password", true).await;
    std::fs::write(&pgpass, &db.password).unwrap();
    // A server that does not answer.
    let port = db.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let elsewhere = db.url.replace(
        &format!(":{port}/"),
        &format!(":{}/", crate::harness::free_port()),
    );
    let cfg = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace(&db.url, &elsewhere);
    std::fs::write(&app.config_path, cfg).unwrap();
    all_exit_2(app, db, &elsewhere, "no server", "", true).await;
}

/// Every command exits 2 with a message naming the database at `url` and containing `want`
/// (and what to do about it, with `hint`), never the password.
async fn all_exit_2(
    app: &TestApp,
    db: &offersync::sandbox::postgres::TestDb,
    url: &str,
    what: &str,
    want: &str,
    hint: bool,
) {
    for args in DB_COMMANDS {
        let out = app.bin(args, &[]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {args:?}: {err}");
        assert!(
            err.contains(url) && err.contains(want),
            "{what}: {args:?}: {err}"
        );
        assert!(!err.contains(&db.password), "{what}: the password leaks");
        assert!(
            !hint || err.contains("hint:"),
            "{what}: {args:?}: no hint: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_reveal_and_a_removal_leave_the_offer_paused() {
    // Offerit only: the process dies right after the twin revealed the first staged offer
    // (edit_offer hidden=0), before offersync recorded it; the source then drops that offer.
    let app = TestApp::new(6).await;
    configure(&app, "", "", "enabled = false");
    let crash = app
        .bin(
            &["--once"],
            &[("OFFERSYNC_FAILPOINT", "after_push_call:activate")],
        )
        .await;
    assert!(text(&crash.stderr).contains("failpoint after_push_call"));
    let revealed: Vec<String> = oi(&app, |t| {
        t.live()
            .into_iter()
            .map(|(_, h)| h.fields["name"].clone())
            .collect()
    });
    assert_eq!(revealed.len(), 1, "one offer was revealed on the twin");
    let index = catalog_index_of(&app, &revealed[0]);
    app.sandbox.with_trackly(|t| t.catalog.remove(index));
    let again = app.bin(&["--once"], &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let copies = oi(&app, |t| {
        t.find("name", &revealed[0])
            .into_iter()
            .map(|(_, h)| h.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(copies.len(), 1);
    assert!(
        !copies[0].is_live(),
        "removed at the source, so not live: {copies:?}"
    );
    assert_eq!(oi(&app, |t| t.live().len()), active(&app).len());
}
