//! Syncing the simulated Trackly: the mirror matches the source, history records exactly what
//! changed, and failed or suspicious runs never remove anything.

use crate::harness::{TestApp, SOURCE};
use offersync::model::OfferStatus;
use offersync::sandbox::trackly::wire_json;
use offersync::sandbox::{Fault, FaultRule};
use offersync::store::query::ChangeFilter;
use offersync::store::{RunState, StoredOffer};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

/// The sandbox's live catalogue as served on the wire, keyed by offer id.
pub(crate) fn served(app: &TestApp) -> BTreeMap<String, Value> {
    app.sandbox.with_trackly(|t| {
        t.catalog
            .live(|_| true)
            .iter()
            .map(|o| (o.id.clone(), wire_json(o)))
            .collect()
    })
}

/// Check one stored offer against the JSON the platform served, field by field.
pub(crate) fn assert_mirrors(stored: &StoredOffer, wire: &Value) {
    let o = &stored.offer;
    let id = wire["id"].as_str().unwrap();
    assert_eq!(o.external_id, id);
    assert_eq!(o.name, wire["name"].as_str().unwrap(), "name of {id}");
    let status = match wire["status"].as_str().unwrap() {
        "active" => OfferStatus::Active,
        "paused" => OfferStatus::Paused,
        other => panic!("unexpected status {other}"),
    };
    assert_eq!(o.status, status, "status of {id}");
    let payout = Decimal::from_str(&wire["payout"].to_string())
        .unwrap()
        .normalize();
    assert_eq!(o.payout, Some(payout), "payout of {id}");
    assert_eq!(
        o.payout_type.map(|p| p.as_str()),
        Some(
            wire["payout_type"]
                .as_str()
                .unwrap()
                .to_ascii_uppercase()
                .as_str()
        ),
        "payout_type of {id}"
    );
    let mut countries: Vec<String> = wire["metadata"]["geo"]
        .as_str()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    countries.sort();
    countries.dedup();
    assert_eq!(o.countries, countries, "countries of {id}");
    assert_eq!(
        o.categories,
        vec![wire["metadata"]["vertical"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        o.tracking_url.as_deref(),
        wire["tracking_url"].as_str(),
        "tracking_url of {id}"
    );
    assert_eq!(
        o.advertiser.as_deref(),
        wire["advertiser_id"].as_str(),
        "advertiser of {id}"
    );
    assert_eq!(
        (o.currency.as_deref(), o.revenue, o.description.as_deref()),
        (None, None, None)
    );
    let raw: Value = serde_json::from_str(&stored.raw).unwrap();
    assert_eq!(
        &raw, wire,
        "raw payload of {id} is the platform's JSON as received"
    );
}

fn changes_of(app: &TestApp, run_id: i64) -> Vec<Value> {
    app.store()
        .query_changes(&ChangeFilter {
            run_id: Some(run_id),
            limit: 100_000,
            ..ChangeFilter::default()
        })
        .unwrap()
        .to_objects()
}

fn live_count(app: &TestApp) -> usize {
    app.offers()
        .iter()
        .filter(|o| o.offer.status != OfferStatus::Removed)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_mirrors_1000_offers_over_10_pages_field_by_field() {
    let app = TestApp::new(1000).await;
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    assert_eq!(
        (
            run.pages,
            run.offers_seen,
            run.added,
            run.changed,
            run.removed
        ),
        (10, 1000, 1000, 0, 0)
    );
    assert_eq!(
        (run.requests, run.retries, run.duplicates, run.rejected),
        (10, 0, 0, 0)
    );

    let served = served(&app);
    let stored = app.offers();
    assert_eq!(stored.len(), 1000);
    assert!(
        served.values().any(|w| w["status"] == "paused"),
        "the catalogue has paused offers too"
    );
    for s in &stored {
        assert_mirrors(s, &served[&s.offer.external_id]);
    }
    let changes = changes_of(&app, run.id);
    assert_eq!(changes.len(), 1000);
    assert!(changes
        .iter()
        .all(|c| c["kind"] == "added" && c["diff"] == json!({})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sync_records_exactly_the_added_changed_and_removed_offers() {
    let app = TestApp::new(1000).await;
    assert_eq!(app.sync().await.state, RunState::Complete);

    let (added, changed, removed) = app.sandbox.with_trackly(|t| {
        let live = t.catalog.live_indices();
        let added: Vec<String> = t
            .catalog
            .add(5)
            .into_iter()
            .map(|i| t.catalog.offer(i).id)
            .collect();
        let mut changed = BTreeMap::new();
        for &i in live.iter().skip(100).step_by(111).take(7) {
            let before = t.catalog.offer(i).payout_cents;
            t.catalog.update(i, |o| o.payout_cents += 150);
            changed.insert(t.catalog.offer(i).id, before);
        }
        let removed: Vec<String> = live
            .iter()
            .skip(5)
            .step_by(250)
            .take(3)
            .map(|&i| t.catalog.offer(i).id)
            .collect();
        for &i in live.iter().skip(5).step_by(250).take(3) {
            t.catalog.remove(i);
        }
        (added, changed, removed)
    });
    assert_eq!((added.len(), changed.len(), removed.len()), (5, 7, 3));

    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    assert_eq!(
        (run.added, run.changed, run.removed, run.offers_seen),
        (5, 7, 3, 1002)
    );
    assert_eq!(run.unchanged, 1002 - 5 - 7);

    let changes = changes_of(&app, run.id);
    assert_eq!(
        changes.len(),
        15,
        "exactly the 15 differences: {changes:#?}"
    );
    let ids_of = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = changes
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| c["external_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(ids_of("added"), sorted(added));
    assert_eq!(ids_of("removed"), sorted(removed.clone()));
    assert_eq!(
        ids_of("changed"),
        changed.keys().cloned().collect::<Vec<_>>()
    );
    for c in changes.iter().filter(|c| c["kind"] == "changed") {
        let before = changed[c["external_id"].as_str().unwrap()];
        let old = Decimal::new(before, 2).normalize().to_string();
        let new = Decimal::new(before + 150, 2).normalize().to_string();
        assert_eq!(
            c["diff"],
            json!({"payout": {"old": old, "new": new}}),
            "{c}"
        );
    }
    for c in changes.iter().filter(|c| c["kind"] == "removed") {
        assert_eq!(c["diff"]["status"]["new"], "removed");
    }
    let stored = app.offers();
    for id in &removed {
        let o = stored.iter().find(|o| &o.offer.external_id == id).unwrap();
        assert_eq!(o.offer.status, OfferStatus::Removed);
        assert!(o.removed_at.is_some());
    }
    // A third sync with nothing changed records nothing and rewrites no offer.
    let before: Vec<String> = stored.iter().map(|o| o.updated_at.clone()).collect();
    let run3 = app.sync().await;
    assert_eq!(
        (
            run3.state,
            run3.added,
            run3.changed,
            run3.removed,
            run3.unchanged
        ),
        (RunState::Complete, 0, 0, 0, 1002)
    );
    assert!(changes_of(&app, run3.id).is_empty());
    let after: Vec<String> = app.offers().iter().map(|o| o.updated_at.clone()).collect();
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_on_page_6_is_partial_and_removes_nothing() {
    let app = TestApp::new(1000).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox.with_trackly(|t| {
        for i in [1, 2, 3] {
            t.catalog.remove(i);
        }
        t.faults.push(FaultRule::on_page(6, Fault::ServerError));
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Partial, "{run:?}");
    assert_eq!(run.reason.as_deref(), Some("transient"));
    let err = run.error.clone().unwrap();
    assert!(
        err.contains("page 6")
            && err.contains("HTTP 500")
            && err.contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!((run.pages, run.removed), (5, 0));
    assert_eq!(
        (run.requests, run.retries),
        (8, 2),
        "5 good pages + 3 tries of page 6"
    );
    assert_eq!(live_count(&app), 1000, "a partial run removes nothing");
    assert!(changes_of(&app, run.id)
        .iter()
        .all(|c| c["kind"] != "removed"));

    // Once the platform recovers, a complete run removes the three offers.
    app.sandbox.with_trackly(|t| t.faults.clear());
    let run = app.sync().await;
    assert_eq!((run.state, run.removed), (RunState::Complete, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_on_two_pages_is_stored_and_counted_once() {
    let app = TestApp::new(1000).await;
    app.sandbox.with_trackly(|t| {
        t.faults
            .push(FaultRule::once_on_page(2, Fault::DuplicatePrevious))
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    assert_eq!(
        (run.offers_seen, run.added, run.duplicates),
        (1000, 1000, 1)
    );
    assert_eq!(app.offers().len(), 1000);
    assert_eq!(changes_of(&app, run.id).len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_repeating_the_previous_one_ends_the_run_partial() {
    let app = TestApp::new(1000).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox.with_trackly(|t| {
        t.catalog.remove(999);
        t.faults.push(FaultRule::on_page(4, Fault::RepeatPrevious));
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Partial, "{run:?}");
    assert_eq!(run.reason.as_deref(), Some("repeated_page"));
    assert!(run
        .error
        .as_deref()
        .unwrap()
        .contains("repeats the previous page"));
    assert_eq!(
        (run.pages, run.removed),
        (3, 0),
        "three pages stored, the repeat not"
    );
    assert_eq!(live_count(&app), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_feed_after_a_full_one_is_held_until_approved() {
    let app = TestApp::new(300).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox.with_trackly(|t| t.catalog.clear());
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Held, "{run:?}");
    assert_eq!((run.removed, run.held_removals), (0, 300));
    assert_eq!(run.reason.as_deref(), Some("mass_removal_guard"));
    assert!(run
        .error
        .as_deref()
        .unwrap()
        .contains("approve-removals trackly-test"));
    assert_eq!(live_count(&app), 300, "nothing removed while held");

    let out = app.bin(&["approve-removals", SOURCE], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        crate::harness::text(&out.stderr)
    );
    assert!(crate::harness::text(&out.stdout).contains("removed 300 offer(s) held by run 2"));
    assert_eq!(live_count(&app), 0);
    let removed = changes_of(&app, run.id)
        .iter()
        .filter(|c| c["kind"] == "removed")
        .count();
    assert_eq!(
        removed, 300,
        "the removals are recorded against the held run"
    );
    let again = app.bin(&["approve-removals", SOURCE], &[]).await;
    assert!(crate::harness::text(&again.stdout).contains("nothing to approve"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_clears_when_the_offers_come_back() {
    let app = TestApp::new(300).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox
        .with_trackly(|t| t.faults.push(FaultRule::always(Fault::Empty)));
    assert_eq!(app.sync().await.state, RunState::Held);
    app.sandbox.with_trackly(|t| t.faults.clear());
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.removed, run.changed, run.unchanged),
        (RunState::Complete, 0, 0, 300)
    );
    let out = app.bin(&["approve-removals", SOURCE], &[]).await;
    assert!(
        crate::harness::text(&out.stdout).contains("nothing to approve"),
        "{}",
        crate::harness::text(&out.stdout)
    );
    assert_eq!(live_count(&app), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_waits_for_the_grace_runs() {
    let app = TestApp::new(200).await;
    app.configure("removal_grace_runs = 2");
    assert_eq!(app.sync().await.state, RunState::Complete);
    app.sandbox.with_trackly(|t| t.catalog.remove(10));
    assert_eq!(
        app.sync().await.removed,
        0,
        "missed once: still within grace"
    );
    let run = app.sync().await;
    assert_eq!(run.removed, 1, "missed by two complete runs: removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_coming_back_after_removal_is_recorded_as_reappeared() {
    let app = TestApp::new(120).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    let id = app.sandbox.with_trackly(|t| {
        let o = t.catalog.offer(7);
        t.catalog.remove(7);
        o.id
    });
    assert_eq!(app.sync().await.removed, 1);
    app.sandbox.with_trackly(|t| t.catalog.restore(7));
    let run = app.sync().await;
    assert_eq!((run.changed, run.removed), (1, 0));
    let changes = changes_of(&app, run.id);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["kind"], "reappeared");
    assert_eq!(changes[0]["external_id"], id.as_str());
    assert_eq!(changes[0]["diff"]["status"]["old"], "removed");
    let o = app.store().offer(SOURCE, &id).unwrap().unwrap();
    assert!(o.removed_at.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_fails_the_run_with_the_platforms_message_and_no_retry() {
    let app = TestApp::new(50).await;
    app.write_config(crate::harness::SourceOpts {
        page_size: 100,
        api_key_line: "api_key = \"trk_wrongkey\"".into(),
        extra: String::new(),
    });
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert_eq!(run.reason.as_deref(), Some("permanent"));
    let err = run.error.unwrap();
    assert!(
        err.contains("Trackly answered HTTP 401: Unauthorized (code invalid_api_key): The API key *** is invalid"),
        "{err}"
    );
    assert_eq!((run.requests, run.retries), (1, 0));
    // The platform's side of the story (what wiremock's `.expect(1)` would check).
    assert_eq!(
        app.sandbox.with_trackly(|t| t.requests),
        1,
        "a permanent error is never retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_malformed_pages_are_retried_honouring_retry_after() {
    let app = TestApp::new(300).await;
    app.sandbox.with_trackly(|t| {
        t.faults.push(FaultRule::once_on_page(
            2,
            Fault::RateLimited {
                retry_after: Some("1".into()),
            },
        ));
        t.faults.push(FaultRule::once_on_page(3, Fault::Malformed));
    });
    let started = std::time::Instant::now();
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    assert_eq!(
        (run.requests, run.retries, run.rate_limited, run.offers_seen),
        (5, 2, 1, 300)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_offers_are_mirrored_as_expired_when_asked_for() {
    let app = TestApp::new(150).await;
    app.configure("include_archived = true");
    let archived = app.sandbox.with_trackly(|t| {
        t.catalog.update(4, |o| o.status = "archived");
        t.catalog.offer(4).id
    });
    let run = app.sync().await;
    assert_eq!(
        (run.state, run.offers_seen, run.pages),
        (RunState::Complete, 150, 3),
        "{run:?}"
    );
    let o = app.store().offer(SOURCE, &archived).unwrap().unwrap();
    assert_eq!(o.offer.status, OfferStatus::Expired);
    assert_eq!(app.offers().len(), 150);
}
