//! The connector catalogue of APIS.md §8 (Everflow, HasOffers, Trackier, Offer18, CAKE), each
//! against its twin through the real binary's `--once`: every offer stored with exact decimal
//! payouts, ISO currencies and countries as the twin served them; a second run after catalogue
//! changes records exactly those changes; the platform's own rate-limit style is survived with
//! every offer.

use crate::harness::{sql_i64, text, TestApp};
use offersync::model::{OfferStatus, PayoutType};
use offersync::sandbox::catalog::SimOffer;
use offersync::sandbox::limits::{Limit, LimitAnswer};
use offersync::sandbox::twin::Shared;
use offersync::sandbox::{self, Sandbox};
use offersync::store::StoredOffer;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

/// The name of the one source of every config written here.
const SOURCE: &str = "src";

/// One platform of the catalogue: how to configure it against its twin, and how to read what
/// its twin served.
struct Platform {
    kind: &'static str,
    twin: fn(&Sandbox) -> &Shared,
    /// The `[[sources]]` table's platform lines (kind, base_url, key, platform keys).
    keys: fn(&Sandbox) -> String,
    /// The external id of catalogue offer `index`.
    id: fn(usize) -> String,
    /// A catalogue index whose payout is an amount (its change must show).
    amount_index: usize,
    /// Check one stored offer against the twin's offer.
    check: fn(&SimOffer, &StoredOffer),
}

fn config(app: &TestApp, p: &Platform, extra: &str) {
    let text = format!(
        "[database]\npath = {:?}\n[[sources]]\nname = \"{SOURCE}\"\n{}\npage_size = 20\nrequests_per_second = 1000\nmax_attempts = 10\nretry_initial_interval_ms = 10\nretry_max_interval_seconds = 1\nremoval_grace_runs = 1\n{extra}\n",
        app.db_path.to_string_lossy(),
        (p.keys)(&app.sandbox)
    );
    std::fs::write(&app.config_path, text).unwrap();
}

/// `--once` through the real binary, which must succeed; the run's row.
async fn once(app: &TestApp) -> (i64, i64, i64, i64, String) {
    let (code, row) = once_exit(app).await;
    assert_eq!(code, Some(0), "{row:?}");
    row
}

/// `--once` through the real binary: its exit code, and the run's row.
async fn once_exit(app: &TestApp) -> (Option<i32>, (i64, i64, i64, i64, String)) {
    let out = app.bin(&["--once"], &[]).await;
    let code = out.status.code();
    if code != Some(0) {
        eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
    }
    (code, last_run(app))
}

fn last_run(app: &TestApp) -> (i64, i64, i64, i64, String) {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    conn.query_row(
        "SELECT id, added, changed, removed, state FROM sync_runs WHERE source = ?1 ORDER BY id DESC LIMIT 1",
        [SOURCE],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .unwrap()
}

fn live(app: &TestApp) -> Vec<StoredOffer> {
    app.store()
        .offers_of(SOURCE)
        .unwrap()
        .into_iter()
        .filter(|o| o.offer.status != OfferStatus::Removed)
        .collect()
}

/// Every live catalogue offer is stored and matches what the twin served.
fn assert_mirrors(app: &TestApp, p: &Platform) {
    let served = Sandbox::with((p.twin)(&app.sandbox), |t| t.catalog.live(|_| true));
    let stored = live(app);
    assert_eq!(stored.len(), served.len(), "{}: every offer stored", p.kind);
    for o in &served {
        let id = (p.id)(o.index);
        let s = stored
            .iter()
            .find(|s| s.offer.external_id == id)
            .unwrap_or_else(|| panic!("{}: offer {id} is stored", p.kind));
        (p.check)(o, s);
    }
}

/// A decimal from a JSON number or string, exactly as written.
fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
    .map(|d| d.normalize())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The raw payload is the row exactly as the twin served it.
fn raw_is(s: &StoredOffer, row: &Value) {
    assert_eq!(
        &serde_json::from_str::<Value>(&s.raw).unwrap(),
        row,
        "raw of {}",
        s.offer.external_id
    );
}

async fn mirrors_every_offer(p: &Platform) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    let (_, added, _, _, state) = once(&app).await;
    assert_eq!(state, "complete", "{}", p.kind);
    assert!(added > 100, "{}: {added} offers added", p.kind);
    assert_mirrors(&app, p);
}

/// After a clean run: one payout changed, one offer paused, one removed, two added. The next
/// run records exactly those five changes.
async fn records_exactly_the_changes(p: &Platform) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    assert_eq!(once(&app).await.4, "complete", "{}", p.kind);
    let a = p.amount_index;
    let added = Sandbox::with((p.twin)(&app.sandbox), |t| {
        // An active offer to pause, and another to remove.
        let b = (a + 1..)
            .find(|i| t.catalog.offer(*i).status == "active")
            .unwrap();
        let c = b + 1;
        t.catalog.update(a, |o| o.payout_cents += 111);
        t.catalog.update(b, |o| o.status = "paused");
        t.catalog.remove(c);
        (b, c, t.catalog.add(2))
    });
    let (b, c, added) = added;
    let (run, added_n, changed, removed, state) = once(&app).await;
    assert_eq!(
        (state.as_str(), added_n, changed, removed),
        ("complete", 2, 2, 1),
        "{}",
        p.kind
    );
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut stmt = conn
        .prepare("SELECT external_id, kind FROM offer_changes WHERE run_id = ?1")
        .unwrap();
    let got: BTreeSet<(String, String)> = stmt
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut want: BTreeSet<(String, String)> = [
        ((p.id)(a), "changed"),
        ((p.id)(b), "changed"),
        ((p.id)(c), "removed"),
    ]
    .into_iter()
    .map(|(i, k)| (i, k.to_string()))
    .collect();
    want.extend(added.iter().map(|i| ((p.id)(*i), "added".to_string())));
    assert_eq!(got, want, "{}", p.kind);
    let paused = live(&app)
        .into_iter()
        .find(|s| s.offer.external_id == (p.id)(b))
        .unwrap();
    assert_eq!(paused.offer.status, OfferStatus::Paused, "{}", p.kind);
    assert_mirrors(&app, p);
}

/// The platform's own rate-limit answer on every request over `limit`: the run completes with
/// every offer, and the twin refused some requests.
async fn survives_its_rate_limit(p: &Platform, limit: Limit) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    let key = Sandbox::with((p.twin)(&app.sandbox), |t| {
        let key = t.api_key.clone();
        t.limits.insert(key.clone(), limit);
        key
    });
    let (run, _, _, _, state) = once(&app).await;
    assert_eq!(state, "complete", "{}", p.kind);
    let refused = Sandbox::with((p.twin)(&app.sandbox), |t| t.limits[&key].rejected);
    assert!(refused > 0, "{}: the limit was hit", p.kind);
    let counted = sql_i64(
        &app,
        &format!("SELECT rate_limited FROM sync_runs WHERE id = {run}"),
    );
    assert_eq!(counted, refused as i64, "{}: every refusal counted", p.kind);
    assert_mirrors(&app, p);
}

// ---------------------------------------------------------------------------------------
// Everflow

fn everflow_check(o: &SimOffer, s: &StoredOffer) {
    let row = sandbox::everflow::row(o, false);
    let got = &s.offer;
    raw_is(s, &row);
    assert_eq!(got.name, row["name"].as_str().unwrap());
    let status = match row["offer_status"].as_str().unwrap() {
        "active" => OfferStatus::Active,
        "paused" => OfferStatus::Paused,
        "pending" => OfferStatus::Pending,
        other => panic!("{other}"),
    };
    assert_eq!(got.status, status);
    let first = &row["relationship"]["payouts"]["entries"][0];
    let kind = first["payout_type"].as_str().unwrap();
    if kind == "cps" {
        assert_eq!(
            (got.payout, got.payout_type),
            (None, Some(PayoutType::Cps)),
            "a percentage is not an amount"
        );
    } else {
        assert_eq!(
            got.payout,
            dec(&first["payout_amount"]),
            "{}",
            got.external_id
        );
        let want = if kind == "cpc" {
            PayoutType::Cpc
        } else {
            PayoutType::Cpa
        };
        assert_eq!(got.payout_type, Some(want));
    }
    assert_eq!(got.currency.as_deref(), row["currency_id"].as_str());
    let include: Vec<String> = row["relationship"]["ruleset"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["targeting_type"] == "include")
        .map(|c| c["country_code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got.countries,
        sorted(include),
        "excluded countries are not countries"
    );
    assert_eq!(got.tracking_url.as_deref(), row["tracking_url"].as_str());
    assert_eq!(got.preview_url.as_deref(), row["preview_url"].as_str());
    assert_eq!(got.icon_url.as_deref(), row["thumbnail_url"].as_str());
}

const EVERFLOW: Platform = Platform {
    kind: "everflow",
    twin: |s| &s.everflow,
    keys: |s| {
        format!(
            "kind = \"everflow\"\nbase_url = {:?}\napi_key = {:?}",
            s.everflow_base_url(),
            sandbox::EVERFLOW_KEY
        )
    },
    id: |i| sandbox::everflow::offer_id(i).to_string(),
    amount_index: 2,
    check: everflow_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everflow_mirrors_every_offer() {
    mirrors_every_offer(&EVERFLOW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everflow_records_exactly_the_changes() {
    records_exactly_the_changes(&EVERFLOW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everflow_429_without_retry_after_and_its_ratelimit_headers_are_survived() {
    // 5 requests per 300 ms window, announced in X-RateLimit-Limit/Remaining (no Reset), and
    // HTTP 429 without Retry-After past it.
    let limit =
        Limit::window(5, Duration::from_millis(300), LimitAnswer::NoRetryAfter).without_reset();
    survives_its_rate_limit(&EVERFLOW, limit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everflow_all_offers_lists_offers_awaiting_approval_without_a_tracking_link() {
    let app = TestApp::new(1).await;
    let p = Platform {
        keys: |s| format!("{}\nlisting = \"all\"", (EVERFLOW.keys)(s)),
        ..EVERFLOW
    };
    config(&app, &p, "");
    assert_eq!(once(&app).await.4, "complete");
    let served = Sandbox::with(&app.sandbox.everflow, |t| t.catalog.live(|_| true));
    let stored = live(&app);
    let mut awaiting = 0;
    for o in &served {
        let row = sandbox::everflow::row(o, true);
        let s = stored
            .iter()
            .find(|s| s.offer.external_id == (EVERFLOW.id)(o.index))
            .unwrap();
        raw_is(s, &row);
        if row["relationship"]["offer_affiliate_status"] == "require_approval" {
            awaiting += 1;
            assert_eq!(s.offer.tracking_url, None);
        } else {
            assert_eq!(
                s.offer.tracking_url.as_deref(),
                row["tracking_url"].as_str()
            );
        }
    }
    assert!(
        awaiting > 10,
        "{awaiting} offers awaiting approval were served"
    );
}

// ---------------------------------------------------------------------------------------
// HasOffers / TUNE

const HASOFFERS_CONTAINS: [&str; 3] = ["Country", "OfferCategory", "TrackingLink"];

fn hasoffers_check(o: &SimOffer, s: &StoredOffer) {
    let row = sandbox::hasoffers::row(o, &HASOFFERS_CONTAINS, false);
    raw_is(s, &row);
    let (got, r) = (&s.offer, &row["Offer"]);
    assert_eq!(got.name, r["name"].as_str().unwrap());
    let status = match r["status"].as_str().unwrap() {
        "active" => OfferStatus::Active,
        "paused" => OfferStatus::Paused,
        "pending" => OfferStatus::Pending,
        other => panic!("{other}"),
    };
    assert_eq!(got.status, status);
    assert!(r["default_payout"].is_string(), "numbers are strings");
    match r["payout_type"].as_str().unwrap() {
        "cpa_percentage" => assert_eq!(
            (got.payout, got.payout_type),
            (None, Some(PayoutType::Cps)),
            "a percentage is not an amount"
        ),
        kind => {
            assert_eq!(got.payout, dec(&r["default_payout"]), "{}", got.external_id);
            let want = if kind == "cpc" {
                PayoutType::Cpc
            } else {
                PayoutType::Cpa
            };
            assert_eq!(got.payout_type, Some(want));
        }
    }
    // A null currency is the network's default (configured as GBP below).
    assert_eq!(
        got.currency.as_deref(),
        r["currency"].as_str().or(Some("GBP"))
    );
    let countries: Vec<String> = row["Country"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(got.countries, sorted(countries));
    assert_eq!(got.categories, [o.category]);
    let link =
        (r["require_approval"] == "0").then(|| row["TrackingLink"]["click_url"].as_str().unwrap());
    assert_eq!(
        got.tracking_url.as_deref(),
        link,
        "require_approval: no usable link"
    );
    assert_eq!(
        got.ends_at
            .map(|t| t.format("%Y-%m-%d").to_string())
            .as_deref(),
        r["expiration_date"].as_str()
    );
    assert_eq!(got.description.as_deref(), r["description"].as_str());
    assert_eq!(got.preview_url.as_deref(), r["preview_url"].as_str());
}

const HASOFFERS: Platform = Platform {
    kind: "hasoffers",
    twin: |s| &s.hasoffers,
    keys: |s| {
        format!(
            "kind = \"hasoffers\"\nbase_url = {:?}\napi_key = {:?}\ndefault_currency = \"GBP\"",
            s.hasoffers_base_url(false),
            sandbox::HASOFFERS_KEY
        )
    },
    id: sandbox::hasoffers::offer_id,
    amount_index: 2,
    check: hasoffers_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasoffers_mirrors_every_offer() {
    mirrors_every_offer(&HASOFFERS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasoffers_records_exactly_the_changes() {
    records_exactly_the_changes(&HASOFFERS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasoffers_in_body_rate_limit_is_survived() {
    // "API usage exceeded rate limit" in the body of an HTTP 200, past 3 requests at once.
    let limit = Limit::bucket(20.0, 3.0, LimitAnswer::InBody { status: 200 });
    survives_its_rate_limit(&HASOFFERS, limit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hasoffers_network_rejecting_a_contain_is_synced_without_it() {
    let app = TestApp::new(1).await;
    let p = Platform {
        keys: |s| {
            format!(
                "kind = \"hasoffers\"\nbase_url = {:?}\napi_key = {:?}",
                s.hasoffers_base_url(true),
                sandbox::HASOFFERS_KEY
            )
        },
        ..HASOFFERS
    };
    config(&app, &p, "");
    let (run, _, _, _, state) = once(&app).await;
    assert_eq!(state, "complete");
    let retries = sql_i64(
        &app,
        &format!("SELECT retries FROM sync_runs WHERE id = {run}"),
    );
    assert_eq!(retries, 1, "asked once more, without the rejected contain");
    let served = Sandbox::with(&app.sandbox.hasoffers, |t| t.catalog.live(|_| true));
    let stored = live(&app);
    assert_eq!(stored.len(), served.len());
    for o in &served {
        let s = stored
            .iter()
            .find(|s| s.offer.external_id == sandbox::hasoffers::offer_id(o.index))
            .unwrap();
        raw_is(
            s,
            &sandbox::hasoffers::row(o, &["Country", "OfferCategory"], false),
        );
        assert_eq!(s.offer.tracking_url, None, "no TrackingLink model: no link");
        assert_eq!(
            s.offer.countries,
            sorted(o.countries.iter().map(|c| c.to_string()).collect())
        );
    }
}

// ---------------------------------------------------------------------------------------
// Trackier

fn trackier_check(o: &SimOffer, s: &StoredOffer) {
    let row = sandbox::trackier::row(o);
    raw_is(s, &row);
    let got = &s.offer;
    assert_eq!(got.name, row["title"].as_str().unwrap());
    let status = if row["status"] == "paused" {
        OfferStatus::Paused
    } else {
        OfferStatus::Active
    };
    assert_eq!(got.status, status);
    let model = row["model"].as_str().unwrap();
    assert_eq!(got.payout_type, Some(PayoutType::from_platform(model)));
    let payouts = row["payouts"].as_array().unwrap();
    if model == "cps" {
        assert_eq!(got.payout, None, "cps: a percentage is not an amount");
    } else {
        assert_eq!(
            got.payout,
            dec(&payouts[0]["payout"]),
            "{}",
            got.external_id
        );
    }
    assert_eq!(
        got.currency.as_deref(),
        row["currency"].as_str().or(Some("USD")),
        "null is USD"
    );
    let mut countries: Vec<String> = payouts
        .iter()
        .flat_map(|p| p["geo"].as_array().unwrap().iter())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    countries.extend(o.countries.iter().map(|c| c.to_string()));
    assert_eq!(got.countries, sorted(countries));
    assert_eq!(
        got.payouts.len(),
        if payouts.len() > 1 { payouts.len() } else { 0 }
    );
    let served: BTreeSet<(Option<String>, Vec<String>)> = payouts
        .iter()
        .map(|p| {
            let geo = p["geo"].as_array().unwrap();
            let geo = geo.iter().map(|c| c.as_str().unwrap().to_string());
            (
                dec(&p["payout"]).map(|d| d.to_string()),
                sorted(geo.collect()),
            )
        })
        .collect();
    for t in &got.payouts {
        let tier = (t.payout.clone(), t.countries.clone());
        assert!(served.contains(&tier), "{t:?} is a served per-geo payout");
    }
    let link = row["tracking_link"].as_str().unwrap();
    assert_eq!(
        got.tracking_url.as_deref(),
        (!link.is_empty()).then_some(link),
        "empty tracking_link: not approved"
    );
    assert_eq!(got.platforms, [row["os"][0].as_str().unwrap()]);
    assert_eq!(got.preview_url.as_deref(), row["preview_url"].as_str());
}

const TRACKIER: Platform = Platform {
    kind: "trackier",
    twin: |s| &s.trackier,
    keys: |s| {
        format!(
            "kind = \"trackier\"\nbase_url = {:?}\napi_key = {:?}",
            s.trackier_base_url(),
            sandbox::TRACKIER_KEY
        )
    },
    id: |i| sandbox::trackier::campaign_id(i).to_string(),
    amount_index: 2,
    check: trackier_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackier_mirrors_every_offer() {
    mirrors_every_offer(&TRACKIER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackier_records_exactly_the_changes() {
    records_exactly_the_changes(&TRACKIER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackier_429_is_survived() {
    // HTTP 429 past 3 requests at once (its documented 5 per second, tightened).
    let limit = Limit::bucket(20.0, 3.0, LimitAnswer::NoRetryAfter);
    survives_its_rate_limit(&TRACKIER, limit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackier_takes_its_key_in_the_query_too() {
    let app = TestApp::new(1).await;
    let p = Platform {
        keys: |s| format!("{}\napi_key_in = \"query\"", (TRACKIER.keys)(s)),
        ..TRACKIER
    };
    config(&app, &p, "");
    assert_eq!(once(&app).await.4, "complete");
    assert_mirrors(&app, &p);
    let err = sql_i64(
        &app,
        "SELECT count(*) FROM sync_runs WHERE error IS NOT NULL",
    );
    assert_eq!(err, 0);
}

// ---------------------------------------------------------------------------------------
// Offer18

fn offer18_check(o: &SimOffer, s: &StoredOffer) {
    let row = sandbox::offer18::row(o, true);
    raw_is(s, &row);
    let got = &s.offer;
    assert_eq!(got.name, row["name"].as_str().unwrap());
    let status = if row["status"] == "paused" {
        OfferStatus::Paused
    } else {
        OfferStatus::Active
    };
    assert_eq!(got.status, status);
    assert!(row["price"].is_string(), "numbers are strings");
    assert_eq!(got.payout, dec(&row["price"]));
    assert_eq!(
        got.payout_type,
        Some(PayoutType::from_platform(row["model"].as_str().unwrap()))
    );
    assert_eq!(got.currency.as_deref(), row["currency"].as_str());
    let allow: Vec<String> = row["country_allow"]
        .as_str()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    assert_eq!(
        got.countries,
        sorted(allow),
        "country_block is not a country"
    );
    let payout = row["payout"].as_array().unwrap();
    if payout.len() > 1 {
        let tiers: Vec<(Option<String>, Option<String>)> = got
            .payouts
            .iter()
            .map(|t| (t.payout.clone(), t.title.clone()))
            .collect();
        let mut want: Vec<(Option<String>, Option<String>)> = payout
            .iter()
            .map(|p| {
                let price = dec(&p["price"]).map(|d| d.to_string());
                (price, p["condition"].as_str().map(String::from))
            })
            .collect();
        want.sort();
        let mut tiers = tiers;
        tiers.sort();
        assert_eq!(tiers, want);
    }
    assert_eq!(got.tracking_url.as_deref(), row["tracking_link"].as_str());
    assert_eq!(got.preview_url.as_deref(), row["preview_url"].as_str());
}

const OFFER18: Platform = Platform {
    kind: "offer18",
    twin: |s| &s.offer18,
    keys: |s| {
        format!(
            "kind = \"offer18\"\nbase_url = {:?}\napi_key = {:?}\naffiliate_id = \"12345\"\nnetwork_id = \"678\"",
            s.offer18_base_url(0),
            sandbox::OFFER18_KEY
        )
    },
    id: sandbox::offer18::offer_id,
    amount_index: 2,
    check: offer18_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer18_mirrors_every_offer() {
    mirrors_every_offer(&OFFER18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer18_records_exactly_the_changes() {
    records_exactly_the_changes(&OFFER18).await;
}

/// The docs' numbering (pages from 1) with `first_page = 1`; and the default (pages from 0)
/// against such a network: its first page comes twice, which stops the run as a loop, and
/// nothing is removed (a page skipped silently would be the other mismatch's cost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer18_page_numbering_is_configured_and_a_mismatch_removes_nothing() {
    let app = TestApp::new(1).await;
    let one = Platform {
        keys: |s| {
            format!(
                "kind = \"offer18\"\nbase_url = {:?}\napi_key = {:?}\naffiliate_id = \"1\"\nnetwork_id = \"2\"",
                s.offer18_base_url(1),
                sandbox::OFFER18_KEY
            )
        },
        ..OFFER18
    };
    config(&app, &one, "first_page = 1");
    assert_eq!(once(&app).await.4, "complete");
    assert_mirrors(&app, &one);
    config(&app, &one, "");
    let (code, (run, _, _, removed, state)) = once_exit(&app).await;
    assert_ne!(code, Some(0), "a partial run is a failed --once");
    assert_eq!((state.as_str(), removed), ("partial", 0));
    let reason: String = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row("SELECT reason FROM sync_runs WHERE id = ?1", [run], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(reason, "repeated_page");
    assert_mirrors(&app, &one);
}

#[test]
fn offer18_requires_its_ids_and_a_first_page_of_0_or_1() {
    let toml = "[database]\npath = \"x\"\n[[sources]]\nname = \"o\"\nkind = \"offer18\"\nbase_url = \"https://api.offer18.com\"\napi_key = \"k\"\nfirst_page = 2\n";
    let err = offersync::config::Config::from_toml_str(toml, std::path::Path::new("t"))
        .unwrap_err()
        .to_string();
    for want in [
        "sources[0].affiliate_id: required for kind \"offer18\"",
        "sources[0].network_id: required for kind \"offer18\"",
        "sources[0].first_page: 2 is not 0 or 1",
    ] {
        assert!(err.contains(want), "{want} in {err}");
    }
}

// ---------------------------------------------------------------------------------------
// CAKE (XML)

fn cake_check(o: &SimOffer, s: &StoredOffer) {
    use sandbox::cake;
    let got = &s.offer;
    let raw: Value = serde_json::from_str(&s.raw).unwrap();
    let (payout_text, currency) = cake::payout(o);
    assert_eq!(
        raw["payout"],
        payout_text.as_str(),
        "raw keeps the payout as sent"
    );
    assert_eq!(
        raw["campaign_id"].is_null(),
        cake::campaign_id(o).is_none(),
        "{raw}"
    );
    assert_eq!(got.name, cake::name(o), "entities decoded");
    let status = match cake::status_name(o) {
        "Inactive" => OfferStatus::Paused,
        "Apply To Run" => OfferStatus::Pending,
        _ => OfferStatus::Active,
    };
    assert_eq!(got.status, status);
    assert_eq!(
        (got.payout, got.currency.as_deref()),
        (
            Some(Decimal::new(o.payout_cents, 2).normalize()),
            Some(currency)
        ),
        "{payout_text}"
    );
    let kind = if o.payout_type == "cpc" {
        PayoutType::Cpc
    } else {
        PayoutType::Cpa
    };
    assert_eq!(got.payout_type, Some(kind));
    assert_eq!(
        got.countries,
        sorted(o.countries.iter().map(|c| c.to_string()).collect())
    );
    assert_eq!(got.categories, [o.category]);
    let link = match cake::campaign_id(o) {
        Some(c) if status != OfferStatus::Pending => Some(format!(
            "https://track.cake.demo/?a=42&c={c}&o={}",
            cake::offer_id(o.index)
        )),
        _ => None,
    };
    assert_eq!(
        got.tracking_url, link,
        "nil campaign or Apply To Run: no link"
    );
    assert_eq!(
        got.preview_url.as_deref(),
        Some(format!("https://adv.cake.demo/o{}?a=1&b=2", o.index).as_str())
    );
    assert_eq!(
        got.ends_at.map(|t| t.format("%Y-%m").to_string()),
        Some(format!("2027-0{}", 1 + o.index % 9))
    );
}

const CAKE: Platform = Platform {
    kind: "cake",
    twin: |s| &s.cake,
    keys: |s| {
        format!(
            "kind = \"cake\"\nbase_url = {:?}\napi_key = {:?}\naffiliate_id = \"42\"\ntracking_url_template = \"https://track.cake.demo/?a={{affiliate_id}}&c={{campaign_id}}&o={{offer_id}}\"",
            s.cake_base_url(),
            sandbox::CAKE_KEY
        )
    },
    id: sandbox::cake::offer_id,
    amount_index: 2,
    check: cake_check,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cake_mirrors_every_offer_from_xml() {
    mirrors_every_offer(&CAKE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cake_records_exactly_the_changes() {
    records_exactly_the_changes(&CAKE).await;
}

/// An unknown currency symbol on page 2: those offers are rejected, each named with its reason;
/// the run completes and every other offer is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cake_rejects_an_unknown_currency_symbol_naming_the_offer() {
    use offersync::sandbox::{Fault, FaultRule, Rewrite};
    let app = TestApp::new(1).await;
    config(&app, &CAKE, "");
    let page2: Vec<SimOffer> = Sandbox::with(&app.sandbox.cake, |t| {
        t.faults.push(FaultRule::on_page(
            2,
            Fault::Rewrite(Rewrite::new(|body| {
                *body = String::from_utf8_lossy(body).replace('£', "¤").into_bytes();
            })),
        ));
        t.catalog.page(2, 20, None).0
    });
    let bad: BTreeSet<String> = page2
        .iter()
        .filter(|o| sandbox::cake::payout(o).1 == "GBP")
        .map(|o| sandbox::cake::offer_id(o.index))
        .collect();
    assert!(!bad.is_empty());
    let (run, added, _, _, state) = once(&app).await;
    assert_eq!(state, "complete");
    let total = Sandbox::with(&app.sandbox.cake, |t| t.catalog.len());
    assert_eq!(added as usize, total - bad.len());
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut stmt = conn
        .prepare("SELECT external_id, reason FROM offer_rejections WHERE run_id = ?1")
        .unwrap();
    let rejected: Vec<(String, String)> = stmt
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rejected
            .iter()
            .map(|(i, _)| i.clone())
            .collect::<BTreeSet<_>>(),
        bad
    );
    for (id, reason) in &rejected {
        assert!(
            reason.starts_with(&format!("offer {id}: payout \"¤"))
                && reason.ends_with("currency symbol \"¤\" is not one offersync knows"),
            "{reason}"
        );
    }
}

/// Transport faults on page 2, once: retried into a complete run (the fault matrix's JSON
/// rewrites do not apply to XML, its transport faults do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cake_transport_faults_are_retried() {
    use offersync::sandbox::{Fault, FaultRule};
    for fault in [
        Fault::Delay(Duration::from_millis(1500)),
        Fault::ResetMidBody,
        Fault::Malformed,
        Fault::HtmlError,
        Fault::ServerError,
    ] {
        let app = TestApp::new(1).await;
        config(&app, &CAKE, "timeout_seconds = 1");
        Sandbox::with(&app.sandbox.cake, |t| {
            t.faults.push(FaultRule::once_on_page(2, fault.clone()))
        });
        let (run, _, _, _, state) = once(&app).await;
        assert_eq!(state, "complete", "{fault:?}");
        let retries = sql_i64(
            &app,
            &format!("SELECT retries FROM sync_runs WHERE id = {run}"),
        );
        assert!(retries >= 1, "{fault:?}");
        assert_mirrors(&app, &CAKE);
    }
}
