//! Operators in control, through the real binary against the target twins: the approval queue
//! (manual approval, auto-approve rules, reject), the payout-jump guard, detach/attach, and
//! blocklists.

use crate::harness::{sql_i64, text, TestApp, SOURCE};
use crate::push::{af, configure, deliver_all, oi, outbox_states};

fn state_count(app: &TestApp, target: &str, state: &str) -> i64 {
    outbox_states(app, target)
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n)
}

/// `inspect pushes --target TARGET --state awaiting_approval` through the binary, as JSON.
async fn queue(app: &TestApp, target: &str) -> serde_json::Value {
    let q = app
        .bin(
            &[
                "inspect",
                "pushes",
                "--target",
                target,
                "--state",
                "awaiting_approval",
                "--format",
                "json",
            ],
            &[],
        )
        .await;
    assert!(q.status.success(), "{}", text(&q.stderr));
    serde_json::from_slice(&q.stdout).unwrap()
}

fn active_offers(app: &TestApp) -> Vec<offersync::sandbox::catalog::SimOffer> {
    app.sandbox
        .with_trackly(|t| t.catalog.live(|s| s == "active"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_approval_holds_every_create_and_approve_all_releases_each_once() {
    let app = TestApp::new(40).await;
    configure(&app, "", "", "approval = \"manual\"");
    let active = active_offers(&app);
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(af(&app, |t| t.offers.len()), 0, "nothing created on Affise");
    assert_eq!(
        state_count(&app, "af", "awaiting_approval"),
        active.len() as i64
    );
    assert_eq!(
        oi(&app, |t| t.live().len()),
        active.len(),
        "the other target (approval = auto) is not held"
    );
    // The queue is visible.
    let rows = queue(&app, "af").await;
    assert_eq!(rows.as_array().unwrap().len(), active.len());
    assert!(
        rows[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("offersync approve af"),
        "{rows}"
    );
    let plan = app.bin(&["push", "--plan", "--target", "af"], &[]).await;
    assert!(
        text(&plan.stderr).contains(&format!("{} awaiting_approval", active.len())),
        "{}",
        text(&plan.stderr)
    );

    // Later syncs keep them waiting; approve --all releases each, once.
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(af(&app, |t| t.offers.len()), 0);
    let out = app.bin(&["approve", "af", "--all", "--deliver"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("af: {} operation(s) released", active.len())),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(af(&app, |t| t.offers.len()), active.len());
    for o in &active {
        let ext = format!("{SOURCE}:{}", o.id);
        assert_eq!(af(&app, |t| t.find("external_offer_id", &ext).len()), 1);
    }
    // Approved offers stay approved: a change is an update, nothing waits again.
    app.sandbox.with_trackly(|t| {
        t.catalog
            .update(active[0].index, |o| o.name.push_str(" v2"))
    });
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(state_count(&app, "af", "awaiting_approval"), 0);
    assert_eq!(af(&app, |t| t.offers.len()), active.len());
    let again = app.bin(&["approve", "af", "--all"], &[]).await;
    assert!(text(&again.stdout).contains("0 operation(s) released"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_offer_survives_later_changes_until_approved() {
    let app = TestApp::new(20).await;
    configure(&app, "", "", "approval = \"manual\"");
    let active = active_offers(&app);
    let (x, y) = (&active[0], &active[1]);
    app.sync().await;
    let out = app.bin(&["reject", "af", SOURCE, &x.id], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state_count(&app, "af", "rejected"), 1);
    // The source changes it: still rejected, and --all does not release it.
    app.sandbox.with_trackly(|t| {
        t.catalog.update(x.index, |o| o.payout_cents += 500);
    });
    app.sync().await;
    assert_eq!(state_count(&app, "af", "rejected"), 1);
    let out = app.bin(&["approve", "af", "--all", "--deliver"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ext_x = format!("{SOURCE}:{}", x.id);
    let ext_y = format!("{SOURCE}:{}", y.id);
    assert_eq!(af(&app, |t| t.find("external_offer_id", &ext_x).len()), 0);
    assert_eq!(af(&app, |t| t.find("external_offer_id", &ext_y).len()), 1);
    // Approved by name, it is created once.
    let out = app
        .bin(&["approve", "af", SOURCE, &x.id, "--deliver"], &[])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(af(&app, |t| t.find("external_offer_id", &ext_x).len()), 1);
    assert_eq!(state_count(&app, "af", "rejected"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_approve_rules_let_matching_creates_through() {
    let app = TestApp::new(60).await;
    configure(
        &app,
        "",
        "",
        "approval = \"manual\"\n[targets.auto_approve]\ncountries = [\"US\"]",
    );
    let active = active_offers(&app);
    let us = active
        .iter()
        .filter(|o| o.countries.contains(&"US"))
        .count();
    assert!(us > 0 && us < active.len(), "the catalogue has both kinds");
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(af(&app, |t| t.offers.len()), us);
    assert_eq!(
        state_count(&app, "af", "awaiting_approval"),
        (active.len() - us) as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_jump_is_held_while_the_rest_of_the_offer_updates() {
    let app = TestApp::new(20).await;
    configure(&app, "", "", "max_payout_increase = 1.0");
    app.sync().await;
    deliver_all(&app).await;
    let a = active_offers(&app)[0].clone();
    let ext = format!("{SOURCE}:{}", a.id);
    let held = |app: &TestApp| af(app, |t| t.find("external_offer_id", &ext)[0].1.clone());
    let before = held(&app).fields["payments[0][revenue]"].clone();
    app.sandbox.with_trackly(|t| {
        t.catalog.update(a.index, |o| {
            o.payout_cents *= 10;
            o.name.push_str(" (new)");
        })
    });
    app.sync().await;
    deliver_all(&app).await;
    let now = held(&app);
    assert!(now.fields["title"].ends_with(" (new)"), "{:?}", now.fields);
    assert_eq!(
        now.fields["payments[0][revenue]"], before,
        "the payout did not move"
    );
    // The payout waits alone, with the old and new values in the reason.
    assert_eq!(state_count(&app, "af", "awaiting_approval"), 1);
    let rows = queue(&app, "af").await;
    let reason = rows[0]["last_error"].as_str().unwrap().to_string();
    assert!(
        reason.contains(" -> ")
            && reason.contains("(+900%)")
            && reason.contains("max_payout_increase = 100%"),
        "{reason}"
    );
    // Approving releases it, once; the next sync holds nothing again.
    let out = app
        .bin(&["approve", "af", SOURCE, &a.id, "--deliver"], &[])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = held(&app).fields["payments[0][revenue]"].clone();
    assert_eq!(
        rust_decimal::Decimal::from_str_exact(&after).unwrap(),
        rust_decimal::Decimal::from_str_exact(&before).unwrap() * rust_decimal::Decimal::TEN
    );
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(state_count(&app, "af", "awaiting_approval"), 0);
    // A cut beyond a decrease guard is held the same way.
    configure(&app, "", "", "max_payout_decrease = 0.5");
    app.sandbox
        .with_trackly(|t| t.catalog.update(a.index, |o| o.payout_cents /= 10));
    app.sync().await;
    deliver_all(&app).await;
    assert_eq!(held(&app).fields["payments[0][revenue]"], after);
    assert_eq!(state_count(&app, "af", "awaiting_approval"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_offer_is_never_touched_until_attached() {
    let app = TestApp::new(20).await;
    configure(&app, "", "", "");
    app.sync().await;
    deliver_all(&app).await;
    let b = active_offers(&app)[1].clone();
    let out = app.bin(&["detach", "oi", SOURCE, &b.id], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    app.sandbox.with_trackly(|t| {
        t.catalog.update(b.index, |o| o.name.push_str(" renamed"));
    });
    app.sync().await;
    oi(&app, |t| t.calls.clear());
    deliver_all(&app).await;
    assert!(
        oi(&app, |t| t.calls.is_empty()),
        "nothing sent for a detached offer"
    );
    // Removed at the source: still not paused while detached.
    app.sandbox.with_trackly(|t| t.catalog.remove(b.index));
    app.sync().await;
    deliver_all(&app).await;
    assert!(oi(&app, |t| t.calls.is_empty()));
    let listed = app
        .bin(
            &[
                "inspect", "pushes", "--state", "detached", "--format", "json",
            ],
            &[],
        )
        .await;
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["external_id"], b.id.as_str());
    // Attached again: a fresh plan (the offer is gone at the source, so a pause).
    let out = app.bin(&["attach", "oi", SOURCE, &b.id], &[]).await;
    assert!(
        text(&out.stdout).contains("planned: pause"),
        "{}",
        text(&out.stdout)
    );
    deliver_all(&app).await;
    assert_eq!(oi(&app, |t| t.calls.clone()), vec!["PATCH pause_offer"]);
    let again = app
        .bin(&["detach", "oi", SOURCE, "no-such-offer"], &[])
        .await;
    assert_eq!(again.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklisted_offers_are_never_created_and_paused_when_already_there() {
    let app = TestApp::new(40).await;
    let active = active_offers(&app);
    let x = active[0].clone();
    let filters = format!(
        "[targets.filters]\nexclude_external_ids = [{:?}]\nexclude_countries = [\"JP\"]",
        x.id
    );
    configure(&app, "", &filters, "");
    app.sync().await;
    deliver_all(&app).await;
    assert!(
        oi(&app, |t| t.find("name", &x.name).is_empty()),
        "never created"
    );
    let live: Vec<_> = oi(&app, |t| {
        t.live().into_iter().map(|(_, o)| o.clone()).collect()
    });
    for held in &live {
        assert!(
            !held
                .fields
                .get("authorized")
                .is_some_and(|c| c.split(',').any(|c| c == "JP")),
            "JP is never pushed: {:?}",
            held.fields
        );
    }
    let pushable =
        |o: &&offersync::sandbox::catalog::SimOffer| o.id != x.id && o.countries != ["JP"];
    assert_eq!(
        live.len(),
        active.iter().filter(pushable).count(),
        "offers targeting only JP are not pushed"
    );
    // An advertiser blocklisted later: what it has on the target is paused.
    let y = active.iter().find(|o| pushable(o)).unwrap().clone();
    configure(
        &app,
        "",
        &format!("{filters}\nexclude_advertisers = [{:?}]", y.advertiser_id),
        "",
    );
    let by_y = active
        .iter()
        .filter(pushable)
        .filter(|o| o.advertiser_id == y.advertiser_id)
        .count();
    oi(&app, |t| t.calls.clear());
    deliver_all(&app).await;
    let calls = oi(&app, |t| t.calls.clone());
    assert_eq!(
        calls.iter().filter(|c| *c == "PATCH pause_offer").count(),
        by_y,
        "every live offer of the advertiser is paused: {calls:?}"
    );
    assert_eq!(calls.len(), by_y, "nothing else is sent: {calls:?}");
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM target_offers WHERE target = 'oi' AND state = 'paused'"
        ),
        by_y as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_affise_offer_stopped_by_hand_is_detached_and_never_reactivated() {
    let app = TestApp::new(20).await;
    configure(&app, "", "", "");
    app.sync().await;
    deliver_all(&app).await;
    let a = active_offers(&app)[0].clone();
    let ext = format!("{SOURCE}:{}", a.id);
    // The network's operators stop it in the Affise UI.
    let id = af(&app, |t| {
        let id = t.find("external_offer_id", &ext)[0].0;
        t.offers.get_mut(&id).unwrap().status = "stopped".into();
        id
    });
    app.sandbox.with_trackly(|t| {
        t.catalog.update(a.index, |o| o.name.push_str(" renamed"));
    });
    app.sync().await;
    af(&app, |t| t.calls.clear());
    let reports = deliver_all(&app).await;
    assert!(reports.iter().all(|r| r.error.is_none()), "{reports:?}");
    assert_eq!(
        af(&app, |t| t.calls.clone()),
        vec![format!("GET read {id}")],
        "read, then left alone"
    );
    assert_eq!(af(&app, |t| t.offers[&id].status.clone()), "stopped");
    let listed = app
        .bin(
            &[
                "inspect", "pushes", "--state", "detached", "--target", "af", "--format", "json",
            ],
            &[],
        )
        .await;
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert!(
        rows[0]["detached_reason"]
            .as_str()
            .unwrap()
            .contains("by its operators"),
        "{rows}"
    );
    // Later changes, and the offer leaving and coming back, never touch it.
    app.sandbox.with_trackly(|t| t.catalog.remove(a.index));
    app.sync().await;
    app.sandbox.with_trackly(|t| t.catalog.restore(a.index));
    app.sync().await;
    af(&app, |t| t.calls.clear());
    deliver_all(&app).await;
    assert!(
        af(&app, |t| t.calls.is_empty()),
        "{:?}",
        af(&app, |t| t.calls.clone())
    );
    assert_eq!(af(&app, |t| t.offers[&id].status.clone()), "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_defaults_reach_the_targets_creates() {
    let app = TestApp::new(10).await;
    configure(
        &app,
        "",
        "[targets.defaults]\nhidden = true",
        "[targets.defaults]\nprivacy = \"protected\"",
    );
    let active = active_offers(&app);
    app.sync().await;
    deliver_all(&app).await;
    let created: Vec<_> = af(&app, |t| t.offers.values().cloned().collect());
    assert_eq!(created.len(), active.len());
    assert!(created.iter().all(|o| o.fields["privacy"] == "protected"));
    // Offerit keeps its creates hidden from affiliates: never revealed, nothing more sent.
    assert_eq!(oi(&app, |t| t.offers.len()), active.len());
    assert_eq!(oi(&app, |t| t.live().len()), 0);
    oi(&app, |t| t.calls.clear());
    app.sync().await;
    deliver_all(&app).await;
    assert!(oi(&app, |t| t.calls.is_empty()));
    // A bad value names its key.
    configure(&app, "", "[targets.defaults]\nprivacy = \"open\"", "");
    let out = app.bin(&["check", "--config-only"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("targets[0].defaults.privacy: only applies to kind \"affise\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_keys_name_themselves() {
    let app = TestApp::new(1).await;
    for (extra, want) in [
        (
            "approval = \"sometimes\"",
            "targets[1].approval: \"sometimes\" is not one of auto, manual",
        ),
        (
            "max_payout_decrease = 2.0",
            "targets[1].max_payout_decrease: 2 is out of range",
        ),
        (
            "max_payout_increase = -1.0",
            "targets[1].max_payout_increase: -1 is out of range",
        ),
        (
            "[targets.auto_approve]\ncountries = [\"US\"]",
            "targets[1].auto_approve: only applies with approval = \"manual\"",
        ),
        (
            "approval = \"manual\"\n[targets.auto_approve]\ncountries = [\"USA\"]",
            "targets[1].auto_approve.countries[0]",
        ),
        (
            "[targets.filters]\nexclude_countries = [\"Mars\"]",
            "targets[1].filters.exclude_countries[0]",
        ),
        (
            "[targets.defaults]\nprivacy = \"open\"",
            "targets[1].defaults.privacy: \"open\" is not one of public, protected, private",
        ),
        (
            "[targets.defaults]\nhidden = true",
            "targets[1].defaults.hidden: only applies to kind \"offerit\"",
        ),
    ] {
        configure(&app, "", "", extra);
        let out = app.bin(&["check", "--config-only"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{extra}");
        assert!(
            text(&out.stderr).contains(want),
            "{extra}: {}",
            text(&out.stderr)
        );
    }
}
