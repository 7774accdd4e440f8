//! Pushing to the simulated Offerit and Affise targets: creates with filters and payout ratio,
//! updates, pauses and re-activations, filter changes, field policies, retries and dead
//! operations, dry runs, crash reconciliation and coalescing.

use crate::harness::{sql_i64, text, TestApp, SOURCE};
use offersync::config::Config;
use offersync::http::Limiters;
use offersync::push::deliver::{deliver, DeliveryReport};
use offersync::sandbox::targets::TargetTwin;
use offersync::sandbox::{self, Fault, FaultRule, Sandbox};
use offersync::store::RunState;
use rust_decimal::Decimal;
use std::str::FromStr;

pub(crate) fn targets_toml(app: &TestApp, offerit_extra: &str, affise_extra: &str) -> String {
    format!(
        r#"
[[targets]]
name = "oi"
kind = "offerit"
base_url = {oi:?}
api_username = "ops"
api_key = {oi_key:?}
sources = ["{SOURCE}"]
payout_ratio = "0.80"
tracking_url_template = "{{tracking_url}}&sub={{source}}"
requests_per_second = 10000
max_attempts = 2
retry_initial_interval_ms = 10
{offerit_extra}

[[targets]]
name = "af"
kind = "affise"
base_url = {af:?}
api_key = {af_key:?}
advertiser_id = "5bc9d7c16d73e41c008b4567"
sources = ["{SOURCE}"]
requests_per_second = 10000
max_attempts = 2
retry_initial_interval_ms = 10
{affise_extra}
"#,
        oi = app.sandbox.offerit_target_url(),
        oi_key = sandbox::OFFERIT_KEY,
        af = app.sandbox.affise_target_url(),
        af_key = sandbox::AFFISE_TARGET_KEY,
    )
}

/// Rewrite the config: the harness's Trackly source plus the two targets.
pub(crate) fn configure(
    app: &TestApp,
    source_extra: &str,
    offerit_extra: &str,
    affise_extra: &str,
) {
    app.configure(source_extra);
    let mut text = std::fs::read_to_string(&app.config_path).unwrap();
    text.push_str(&targets_toml(app, offerit_extra, affise_extra));
    std::fs::write(&app.config_path, text).unwrap();
}

pub(crate) async fn deliver_all(app: &TestApp) -> Vec<DeliveryReport> {
    let config = Config::load(&app.config_path).unwrap();
    let targets: Vec<_> = config.targets.iter().collect();
    let mut out = Vec::new();
    for t in offersync::push::prepare_targets(&targets, &Limiters::new()).unwrap() {
        out.push(
            deliver(
                &config.database,
                &t.cfg,
                t.target,
                t.endpoint,
                &offersync::sync::Shutdown::never(),
            )
            .await,
        );
    }
    out
}

pub(crate) fn oi<T>(app: &TestApp, f: impl FnOnce(&mut TargetTwin) -> T) -> T {
    Sandbox::with_target(&app.sandbox.offerit_target, f)
}

pub(crate) fn af<T>(app: &TestApp, f: impl FnOnce(&mut TargetTwin) -> T) -> T {
    Sandbox::with_target(&app.sandbox.affise_target, f)
}

pub(crate) fn outbox_states(app: &TestApp, target: &str) -> Vec<(String, i64)> {
    app.store().outbox_counts(target).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_creates_each_offer_once_per_target_with_filters_ratio_and_macros() {
    let app = TestApp::new(120).await;
    configure(&app, "", "[targets.filters]\ncountries = [\"US\"]", "");
    assert_eq!(app.sync().await.state, RunState::Complete);
    let reports = deliver_all(&app).await;
    assert!(reports.iter().all(DeliveryReport::ok), "{reports:?}");

    let offers = app.offers();
    let active: Vec<_> = offers
        .iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .collect();
    let with_us: Vec<_> = active
        .iter()
        .filter(|o| o.offer.countries.contains(&"US".to_string()))
        .collect();
    assert!(!with_us.is_empty() && with_us.len() < active.len());
    assert_eq!(
        oi(&app, |t| t.offers.len()),
        with_us.len(),
        "Offerit: active offers targeting US only"
    );
    assert_eq!(
        af(&app, |t| t.offers.len()),
        active.len(),
        "Affise: every active offer"
    );
    // Offerit creates are staged: add_offer with hidden=1, then edit_offer hidden=0 once the
    // offerid is recorded (two operations per offer).
    assert_eq!(reports[0].done as usize, 2 * with_us.len());
    assert_eq!(
        oi(&app, |t| t.live().len()),
        with_us.len(),
        "every one revealed"
    );

    for o in &with_us {
        let held = oi(&app, |t| {
            t.find("name", &o.offer.name)
                .into_iter()
                .map(|(_, h)| h.clone())
                .collect::<Vec<_>>()
        });
        assert_eq!(
            held.len(),
            1,
            "exactly one Offerit offer for {}",
            o.offer.external_id
        );
        let f = &held[0].fields;
        let expected = (o.offer.payout.unwrap() * Decimal::from_str("0.8").unwrap())
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven)
            .normalize();
        // Offerit pays per click for CPC offers, per conversion otherwise (seed 003).
        let (commission, amount) = match o.offer.payout_type {
            Some(offersync::model::PayoutType::Cpc) => ("click", "flat_amount_per_click"),
            _ => ("cpa", "flat_amount_per_conversion"),
        };
        assert_eq!(f["commission_type"], commission);
        assert_eq!(
            f[amount],
            expected.to_string(),
            "payout ratio, half-even to cents"
        );
        assert_eq!(
            f["advertiser_cost_flat"],
            o.offer.payout.unwrap().to_string()
        );
        assert!(
            f["url"].ends_with("aff_click_id=%%click_hash%%&sub=trackly-test"),
            "{}",
            f["url"]
        );
        assert_eq!(f["authorized"], o.offer.countries.join(","));
    }
    let ext = format!("{SOURCE}:{}", active[0].offer.external_id);
    let held = af(&app, |t| {
        t.find("external_offer_id", &ext)
            .into_iter()
            .map(|(_, h)| h.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0].status, "active",
        "create_status defaults to active (Affise's own default is stopped)"
    );
    assert_eq!(
        held[0].fields["payments[0][revenue]"],
        active[0].offer.payout.unwrap().to_string(),
        "ratio 1"
    );
    assert_eq!(held[0].fields["payments[0][type]"], "fixed");
    assert!(
        held[0].fields["url"].contains("aff_click_id={clickid}"),
        "{}",
        held[0].fields["url"]
    );
    assert_eq!(
        outbox_states(&app, "af"),
        vec![("done".to_string(), active.len() as i64)]
    );
    // Every mapping carries the fingerprint of what was pushed.
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM target_offers WHERE pushed_hash IS NULL OR length(pushed_hash) <> 16"
        ),
        0
    );
    assert!(
        sql_i64(
            &app,
            "SELECT count(DISTINCT pushed_hash) FROM target_offers"
        ) > 1,
        "different offers, different fingerprints"
    );

    // Nothing changed: nothing is sent.
    let calls = (oi(&app, |t| t.calls.len()), af(&app, |t| t.calls.len()));
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(
        (oi(&app, |t| t.calls.len()), af(&app, |t| t.calls.len())),
        calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_become_updates_countries_calls_pauses_and_activations() {
    let app = TestApp::new(60).await;
    configure(&app, "", "", "");
    app.sync().await;
    deliver_all(&app).await;
    let live = app
        .sandbox
        .with_trackly(|t| t.catalog.live(|s| s == "active"));
    let (a, b, c) = (live[0].clone(), live[1].clone(), live[2].clone());
    app.sandbox.with_trackly(|t| {
        t.catalog.update(a.index, |o| o.payout_cents += 100);
        t.catalog.update(b.index, |o| o.countries = vec!["JP"]);
        t.catalog.remove(c.index);
    });
    let run = app.sync().await;
    assert_eq!((run.changed, run.removed), (2, 1));
    oi(&app, |t| t.calls.clear());
    let reports = deliver_all(&app).await;
    assert!(reports.iter().all(DeliveryReport::ok), "{reports:?}");
    let calls = oi(&app, |t| t.calls.clone());
    let mut sorted = calls.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["PATCH edit_offer", "PATCH pause_offer", "PATCH set_offer_countries"],
        "a payout edit, a countries change (edit_offer has nothing else to say), one pause: {calls:?}"
    );
    let held_b = oi(&app, |t| t.find("name", &b.name)[0].1.clone());
    assert_eq!(held_b.fields["authorized"], "JP");
    let held_c = oi(&app, |t| t.find("name", &c.name)[0].1.clone());
    assert_eq!(held_c.status, "expired", "Offerit pauses by expiring");
    let ext_c = format!("{SOURCE}:{}", c.id);
    assert_eq!(
        af(&app, |t| t.find("external_offer_id", &ext_c)[0]
            .1
            .status
            .clone()),
        "stopped"
    );

    // Removed stays paused once; coming back re-activates.
    app.sync().await;
    oi(&app, |t| t.calls.clear());
    deliver_all(&app).await;
    assert!(oi(&app, |t| t.calls.is_empty()), "paused once only");
    app.sandbox.with_trackly(|t| t.catalog.restore(c.index));
    let run = app.sync().await;
    assert_eq!(run.changed, 1, "reappeared");
    deliver_all(&app).await;
    assert_eq!(oi(&app, |t| t.calls.clone()), vec!["PATCH activate_offer"]);
    assert_eq!(
        oi(&app, |t| t.find("name", &c.name)[0].1.status.clone()),
        "active"
    );
    assert_eq!(
        af(&app, |t| t.find("external_offer_id", &ext_c)[0]
            .1
            .status
            .clone()),
        "active"
    );
    assert_eq!(
        oi(&app, |t| t.find("name", &c.name).len()),
        1,
        "never created twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_change_pauses_what_no_longer_passes_and_once_fields_stay() {
    let app = TestApp::new(80).await;
    configure(
        &app,
        "",
        "[targets.filters]\ncountries = [\"US\"]",
        "[targets.fields]\nname = \"once\"",
    );
    app.sync().await;
    deliver_all(&app).await;
    let us_before = oi(&app, |t| t.offers.len());
    // The operator narrows the Offerit target to GB.
    configure(
        &app,
        "",
        "[targets.filters]\ncountries = [\"GB\"]",
        "[targets.fields]\nname = \"once\"",
    );
    let reports = deliver_all(&app).await;
    assert!(reports.iter().all(DeliveryReport::ok), "{reports:?}");
    let offers = app.offers();
    let active = |c: &str| {
        offers
            .iter()
            .filter(|o| {
                o.offer.status == offersync::model::OfferStatus::Active
                    && o.offer.countries.contains(&c.to_string())
            })
            .map(|o| o.offer.name.clone())
            .collect::<Vec<_>>()
    };
    let (us, gb) = (active("US"), active("GB"));
    assert_eq!(us.len(), us_before);
    oi(&app, |t| {
        for (_, o) in t.offers.iter() {
            let name = &o.fields["name"];
            let should_be_live = gb.contains(name);
            assert_eq!(o.status == "active", should_be_live, "{name}: {}", o.status);
        }
        let live = t.offers.values().filter(|o| o.status == "active").count();
        assert_eq!(
            live,
            gb.len(),
            "GB offers live (created if new), the rest paused"
        );
    });

    // A `once` field is set at create and never overwritten.
    let first = app
        .offers()
        .into_iter()
        .find(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .unwrap();
    let idx = app.sandbox.with_trackly(|t| {
        t.catalog
            .live(|_| true)
            .into_iter()
            .find(|o| o.id == first.offer.external_id)
            .unwrap()
            .index
    });
    app.sandbox.with_trackly(|t| {
        t.catalog
            .update(idx, |o| o.name = "Renamed by the advertiser".into())
    });
    assert_eq!(app.sync().await.changed, 1);
    af(&app, |t| t.calls.clear());
    deliver_all(&app).await;
    let ext = format!("{SOURCE}:{}", first.offer.external_id);
    assert_eq!(
        af(&app, |t| t.find("external_offer_id", &ext)[0].1.fields
            ["title"]
            .clone()),
        first.offer.name
    );
    assert!(
        af(&app, |t| t.calls.is_empty()),
        "nothing else changed, so nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_target_is_retried_within_the_call() {
    // (Outages, the breaker, dead operations and `push --retry-dead` are in failures.rs.)
    let app = TestApp::new(20).await;
    configure(&app, "", "", "enabled = false");
    app.sync().await;
    // Offerit answers 429 once (with Retry-After), then works: retried inside the call.
    oi(&app, |t| {
        t.faults.push(
            FaultRule::always(Fault::RateLimited {
                retry_after: Some("1".into()),
            })
            .times(1),
        )
    });
    let reports = deliver_all(&app).await;
    assert!(reports[0].ok(), "{:?}", reports[0]);
    assert_eq!(reports[0].dead, 0);
    let active = app
        .offers()
        .iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .count();
    assert_eq!(oi(&app, |t| t.live().len()), active);
    assert_eq!(
        oi(&app, |t| t
            .calls
            .iter()
            .filter(|c| c.ends_with("add_offer"))
            .count()),
        active + 1,
        "the refused create was sent again (a 429 is never carried out), and only it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing_and_records_nothing() {
    let app = TestApp::new(30).await;
    configure(&app, "", "", "");
    app.sync().await;
    let before = match &app.pg {
        None => {
            let _ = std::fs::read(&app.db_path).unwrap();
            vec![]
        }
        // Every table's row count: what "records nothing" means on PostgreSQL.
        Some(db) => crate::harness::pg_row_counts(db),
    };
    let store_counts = |app: &TestApp| {
        (
            outbox_states(app, "oi"),
            outbox_states(app, "af"),
            app.store().runs_of(SOURCE, 10).unwrap().len(),
        )
    };
    let counts = store_counts(&app);
    let out = app.bin(&["--once", "--dry-run"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let creates = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "create")
        .count();
    let creates_af = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "create" && r["target"] == "af")
        .count();
    assert!(
        creates > 0
            && plan
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["payload"]["name"].is_string())
    );
    assert_eq!(
        (oi(&app, |t| t.calls.len()), af(&app, |t| t.calls.len())),
        (0, 0),
        "nothing sent"
    );
    assert_eq!(store_counts(&app), counts, "nothing recorded");
    assert_eq!(
        app.sandbox.with_trackly(|t| t.requests),
        1,
        "nothing fetched beyond the first sync's one page"
    );
    if let Some(db) = &app.pg {
        assert_eq!(
            crate::harness::pg_row_counts(db),
            before,
            "no row added or removed"
        );
    }
    let plan2 = app.bin(&["push", "--plan", "--target", "af"], &[]).await;
    let p2: serde_json::Value = serde_json::from_slice(&plan2.stdout).unwrap();
    assert!(p2.as_array().unwrap().iter().all(|r| r["target"] == "af"));
    assert!(
        text(&plan2.stderr).contains(&format!(
            "target af: {creates_af} operation(s): {creates_af} create"
        )),
        "{}",
        text(&plan2.stderr)
    );
    let limited = app
        .bin(&["push", "--plan", "--target", "af", "--limit", "3"], &[])
        .await;
    let p3: serde_json::Value = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(p3.as_array().unwrap().len(), 3);
    assert!(text(&limited.stderr).contains("(showing the first 3)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_interrupted_by_a_crash_is_reconciled() {
    let app = TestApp::new(3).await;
    configure(&app, "", "", "");
    // The process dies between the target's answer and the commit of the first create.
    let crash = app
        .bin(&["--once"], &[("OFFERSYNC_FAILPOINT", "after_push_call")])
        .await;
    assert!(!crash.status.success(), "the failpoint aborted the process");
    assert!(text(&crash.stderr).contains("failpoint after_push_call"));
    let (oi_before, af_before) = (oi(&app, |t| t.offers.len()), af(&app, |t| t.offers.len()));
    assert_eq!(
        oi_before + af_before,
        1,
        "exactly one create reached a target before the crash"
    );
    let in_flight = sql_i64(
        &app,
        "SELECT count(*) FROM push_outbox WHERE state = 'in_flight'",
    );
    assert_eq!(in_flight, 1);

    // Restart: Offerit cannot be searched, so its create is retried once and flagged; Affise
    // is searched by external_offer_id, so its create is recognised and never sent again.
    let again = app.bin(&["--once"], &[]).await;
    assert!(
        again.status.success(),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
    let active = app
        .offers()
        .iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .count();
    let flagged = crate::harness::sql_i64(
        &app,
        "SELECT count(*) FROM push_outbox WHERE target = 'oi' AND possible_duplicate = true",
    );
    let left = crate::harness::sql_i64(
        &app,
        "SELECT count(*) FROM push_outbox WHERE state <> 'done'",
    );
    assert_eq!(left, 0, "everything delivered, nothing in flight");
    assert_eq!(
        af(&app, |t| t.offers.len()),
        active,
        "Affise: exactly one offer per source offer"
    );
    assert_eq!(
        oi(&app, |t| t.offers.len()) as i64,
        active as i64 + flagged,
        "Offerit: duplicates only where flagged"
    );
    assert_eq!(
        (oi_before, af_before),
        (1, 0),
        "targets are delivered in config order: Offerit first"
    );
    assert_eq!(
        flagged, 1,
        "the interrupted Offerit create was retried and flagged"
    );
    // The other order: crash on the Affise create (Offerit already done).
    let app = TestApp::new(3).await;
    configure(&app, "", "[targets.filters]\ncountries = [\"AQ\"]", "");
    let crash = app
        .bin(&["--once"], &[("OFFERSYNC_FAILPOINT", "after_push_call")])
        .await;
    assert!(!crash.status.success());
    assert_eq!(af(&app, |t| t.offers.len()), 1);
    let again = app.bin(&["--once"], &[]).await;
    assert!(again.status.success());
    let active = app
        .offers()
        .iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .count();
    assert_eq!(
        af(&app, |t| t.offers.len()),
        active,
        "the lookup found the interrupted create: no duplicate"
    );
    let pushes = app
        .bin(&["inspect", "pushes", "--format", "json"], &[])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&pushes.stdout).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["possible_duplicate"] == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_changed_twice_before_delivery_get_one_update_with_the_latest_values() {
    let app = TestApp::new(1000).await;
    configure(&app, "", "[targets.filters]\ncountries = [\"AQ\"]", "");
    app.sync().await;
    deliver_all(&app).await;
    let live = app
        .sandbox
        .with_trackly(|t| t.catalog.live(|s| s == "active"));
    for bump in [100, 250] {
        app.sandbox.with_trackly(|t| {
            for o in &live {
                t.catalog
                    .update(o.index, |x| x.payout_cents = o.payout_cents + bump);
            }
        });
        let run = app.sync().await;
        assert_eq!(run.changed as usize, live.len());
    }
    let pending = outbox_states(&app, "af");
    assert_eq!(
        pending,
        vec![
            ("done".to_string(), live.len() as i64),
            ("pending".to_string(), live.len() as i64)
        ]
    );
    af(&app, |t| t.calls.clear());
    let reports = deliver_all(&app).await;
    assert_eq!(reports[1].done as usize, live.len());
    // Each update is preceded by a read of the offer (an offer stopped by hand on Affise is
    // left alone, README "Operators in control"): count the updates.
    assert_eq!(
        af(&app, |t| t
            .calls
            .iter()
            .filter(|c| !c.starts_with("GET read"))
            .count()),
        live.len(),
        "one update per offer, not two"
    );
    for o in live.iter().take(50) {
        let ext = format!("{SOURCE}:{}", o.id);
        let latest = Decimal::new(o.payout_cents + 250, 2)
            .normalize()
            .to_string();
        assert_eq!(
            af(&app, |t| t.find("external_offer_id", &ext)[0].1.fields
                ["payments[0][revenue]"]
                .clone()),
            latest
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_deliver_to_the_same_target_at_once() {
    let app = TestApp::new(20).await;
    configure(&app, "", "", "");
    let synced = app.bin(&["--once", "--no-push"], &[]).await;
    assert!(synced.status.success(), "{}", text(&synced.stderr));
    assert_eq!(
        (oi(&app, |t| t.calls.len()), af(&app, |t| t.calls.len())),
        (0, 0),
        "--no-push sends nothing"
    );
    // Slow targets, so both processes are delivering at the same time.
    oi(&app, |t| t.delay = std::time::Duration::from_millis(60));
    af(&app, |t| t.delay = std::time::Duration::from_millis(60));
    let (a, b) = tokio::join!(app.bin(&["push"], &[]), app.bin(&["push"], &[]));
    let mut skipped = 0;
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        skipped += v
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["skipped"].is_string())
            .count();
    }
    // While one process delivers to a target the other skips it (one that comes after the
    // first finished simply finds nothing left to send).
    assert!(skipped >= 1, "a concurrent delivery was skipped");
    let active = app
        .offers()
        .iter()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .count();
    assert_eq!(
        oi(&app, |t| t.offers.len()),
        active,
        "no duplicate on Offerit"
    );
    assert_eq!(
        af(&app, |t| t.offers.len()),
        active,
        "no duplicate on Affise"
    );
    assert_eq!(
        outbox_states(&app, "oi"),
        vec![("done".to_string(), 2 * active as i64)],
        "a staged create and its reveal per offer"
    );
}
