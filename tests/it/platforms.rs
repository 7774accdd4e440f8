//! Every source platform against its sandbox twin: full multi-page syncs compared field by field
//! with what the twin served, every envelope and type variant, errors mapped to the right class
//! and message, the generic source matching the native Trackly adapter, and `offersync check`.

use crate::harness::{off_runtime, sql_quote, sql_strings, text, TestApp};
use offersync::config::Config;
use offersync::http::Limiters;
use offersync::model::{OfferStatus, PayoutType};
use offersync::sandbox::twin::Shared;
use offersync::sandbox::{self, Fault, FaultRule, Sandbox};
use offersync::store::{RunState, RunTotals, StoredOffer};
use offersync::sync::{self, RunReport, SyncContext};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// Write a config with `sources` (TOML `[[sources]]` tables) and sync them all once.
async fn sync_sources(app: &TestApp, sources: &str) -> Vec<RunTotals> {
    let text = format!("{}\n{sources}", app.database_toml());
    std::fs::write(&app.config_path, text).unwrap();
    let config = Config::load(&app.config_path).expect("config loads");
    let all: Vec<_> = config.sources.iter().collect();
    let prepared = sync::prepare(&all, &Limiters::new()).expect("sources prepare");
    let ctx = SyncContext::for_database(&config.database);
    sync::run_all(&ctx, prepared, 4)
        .await
        .into_iter()
        .map(|r| match r {
            RunReport::Finished(t) => t,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn offers(app: &TestApp, source: &str) -> Vec<StoredOffer> {
    off_runtime(|| app.store().offers_of(source).unwrap())
}

/// The live offers of a twin, rendered by `render`, keyed by the id field `id` of the JSON.
fn served(
    twin: &Shared,
    render: impl Fn(&offersync::sandbox::catalog::SimOffer) -> Value,
) -> Vec<Value> {
    Sandbox::with(twin, |t| {
        t.catalog.live(|_| true).iter().map(&render).collect()
    })
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .ok()
            .map(|d| d.normalize()),
        Value::String(s) => Decimal::from_str(s).ok().map(|d| d.normalize()),
        _ => None,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

const OFFERSLOOK: &str = r#"
[[sources]]
name = "ol"
kind = "offerslook"
api = "network"
endpoint = "ENDPOINT"
username = "USERNAME"
base_url = "URL"
api_key = "KEY"
page_size = 50
requests_per_second = 1000
max_attempts = 3
retry_initial_interval_ms = 10
"#;

fn offerslook_config(app: &TestApp, endpoint: &str, key: &str) -> String {
    OFFERSLOOK
        .replace("ENDPOINT", endpoint)
        .replace("USERNAME", sandbox::offerslook::USERNAME)
        .replace("URL", &app.sandbox.offerslook_base_url())
        .replace("KEY", key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offerslook_batches_mirror_the_nested_rows_field_by_field() {
    let app = TestApp::new(10).await;
    let run = &sync_sources(
        &app,
        &offerslook_config(&app, "batches", sandbox::OFFERSLOOK_KEY),
    )
    .await[0];
    assert_eq!(
        (run.state, run.pages, run.offers_seen),
        (RunState::Complete, 3, 120),
        "{run:?}"
    );
    let rows = served(&app.sandbox.offerslook, sandbox::offerslook::batch_row);
    let stored = offers(&app, "ol");
    assert_eq!(stored.len(), 120);
    let mut saw = (false, false, false);
    for row in &rows {
        let r = &row["offer"];
        let id = r["id"].to_string();
        let s = stored
            .iter()
            .find(|s| s.offer.external_id == id)
            .expect("every served offer is stored");
        let o = &s.offer;
        assert_eq!(o.name, r["name"].as_str().unwrap());
        let status = match r["status"].as_str().unwrap() {
            "active" => OfferStatus::Active,
            "paused" => OfferStatus::Paused,
            "pending" => OfferStatus::Pending,
            "deleted" => OfferStatus::Expired,
            other => panic!("{other}"),
        };
        assert_eq!(o.status, status, "{id}");
        saw.0 |= status == OfferStatus::Pending;
        assert_eq!(o.payout, dec(&r["payout"]), "{id}");
        assert_eq!(o.currency.as_deref(), Some("USD"));
        assert_eq!(
            o.tracking_url.as_deref(),
            r["tracking_link"].as_str(),
            "{id}"
        );
        saw.1 |= r["tracking_link"].is_null();
        assert_eq!(o.app_package.as_deref(), r["app_id"].as_str());
        assert_eq!(o.icon_url.as_deref(), r["thumbnail"].as_str());
        assert_eq!(o.categories, sorted(strs(&r["category"])));
        let countries: Vec<String> = row["offer_geo"]["target"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| strs(&t["country_code"]))
            .collect();
        saw.2 |= row["offer_geo"]["target"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["country_code"].is_array());
        assert_eq!(o.countries, sorted(countries), "{id}");
        let platform = row["offer_platform"]["target"][0]["system"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(o.platforms, vec![platform]);
        assert_eq!(o.ends_at.map(|t| t.timestamp()), r["end_date"].as_i64());
        assert_eq!(
            serde_json::from_str::<Value>(&s.raw).unwrap(),
            *row,
            "raw is the row as served"
        );
    }
    assert_eq!(
        saw,
        (true, true, true),
        "pending offers, null tracking links and array country codes were all served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offerslook_flat_rows_with_string_payouts_and_dates() {
    let app = TestApp::new(10).await;
    let run = &sync_sources(
        &app,
        &offerslook_config(&app, "offers", sandbox::OFFERSLOOK_KEY),
    )
    .await[0];
    assert_eq!(
        (run.state, run.pages, run.offers_seen),
        (RunState::Complete, 3, 120),
        "{run:?}"
    );
    let rows = served(&app.sandbox.offerslook, sandbox::offerslook::flat_row);
    let stored = offers(&app, "ol");
    for r in &rows {
        let id = r["id"].to_string();
        let o = &stored
            .iter()
            .find(|s| s.offer.external_id == id)
            .unwrap()
            .offer;
        assert!(r["payout"].is_string());
        assert_eq!(
            (o.payout, o.revenue),
            (dec(&r["payout"]), dec(&r["revenue"])),
            "{id}"
        );
        assert_eq!(o.payout_type.map(|p| p.as_str()), r["payout_type"].as_str());
        assert_eq!(
            o.advertiser.as_deref(),
            Some(r["advertiser_id"].to_string().as_str()).filter(|a| *a != "0")
        );
        assert_eq!(o.starts_at.map(|t| t.timestamp()), r["start_date"].as_i64());
        assert_eq!(o.description.as_deref(), r["description"].as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offerslook_errors_are_classified() {
    let app = TestApp::new(10).await;
    // "Too Many Request" in the body, at HTTP 200 and at HTTP 429: rate limited, retried.
    Sandbox::with(&app.sandbox.offerslook, |t| {
        t.faults.push(FaultRule::once_on_page(
            2,
            Fault::InBodyRateLimited { status: 200 },
        ));
        t.faults.push(FaultRule::once_on_page(
            3,
            Fault::InBodyRateLimited { status: 429 },
        ));
    });
    let run = &sync_sources(
        &app,
        &offerslook_config(&app, "batches", sandbox::OFFERSLOOK_KEY),
    )
    .await[0];
    assert_eq!(
        (run.state, run.rate_limited, run.retries),
        (RunState::Complete, 2, 2),
        "{run:?}"
    );
    // A wrong key: HTTP 401 {code, message}, permanent, the platform's words, the key scrubbed.
    let run = &sync_sources(
        &app,
        &offerslook_config(&app, "batches", "ol_wrong_key_123"),
    )
    .await[0];
    assert_eq!(
        (run.state, run.reason.as_deref(), run.requests),
        (RunState::Failed, Some("permanent"), 1)
    );
    let err = run.error.as_deref().unwrap();
    assert!(
        err.contains("Offerslook answered HTTP 401 with code 13: Invalid API Key"),
        "{err}"
    );
    assert!(!err.contains("ol_wrong_key_123"), "{err}");
}

fn s2s_config(app: &TestApp, seed_envelope: bool, app_id: &str) -> String {
    format!(
        r#"
[[sources]]
name = "ym"
kind = "s2s"
base_url = {:?}
api_key = {app_id:?}
os = "android"
gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
andid = "9774d56d682e549c"
page_size = 40
requests_per_second = 1000
max_attempts = 3
retry_initial_interval_ms = 10
"#,
        app.sandbox.s2s_base_url(seed_envelope)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2s_feed_reads_both_envelopes_to_the_same_offers() {
    let app = TestApp::new(10).await;
    let active = Sandbox::with(&app.sandbox.s2s, |t| t.catalog.live(|s| s == "active"));
    let run = &sync_sources(&app, &s2s_config(&app, true, sandbox::S2S_APP_ID)).await[0];
    assert_eq!(
        (run.state, run.offers_seen),
        (RunState::Complete, active.len() as i64),
        "{run:?}"
    );
    let seed = offers(&app, "ym");
    for (s, o) in seed.iter().zip({
        let mut a = active.clone();
        a.sort_by_key(|o| (2_957_000_000u64 + o.index as u64).to_string());
        a
    }) {
        let row = sandbox::youmi::seed_row(&o);
        assert!(row["id"].is_number() && row["payout"].is_string());
        assert_eq!(s.offer.external_id, row["id"].to_string());
        assert_eq!(
            s.offer.tracking_url.as_deref(),
            row["tracking_link"].as_str()
        );
        assert_eq!(s.offer.payout, dec(&row["payout"]));
        assert_eq!(s.offer.currency.as_deref(), Some("USD"));
        assert_eq!(
            s.offer.payout_type,
            Some(offersync::model::PayoutType::Other),
            "\"fixed\" / \"app\" are not the seed table's CPI/CPA/CPL: other (kept in raw)"
        );
        assert_eq!(s.offer.countries, sorted(strs(&row["countries"])));
        assert_eq!(s.offer.app_package.as_deref(), row["package"].as_str());
        assert_eq!(s.offer.platforms, vec!["android"]);
    }
    // The flat v2 envelope (string ids, `trackinglink`, numeric payouts) yields the same offers.
    let run = &sync_sources(&app, &s2s_config(&app, false, sandbox::S2S_APP_ID)).await[0];
    assert_eq!(
        (run.state, run.added),
        (RunState::Complete, 0),
        "same ids: {run:?}"
    );
    let v2 = offers(&app, "ym");
    assert_eq!(v2.len(), seed.len());
    for s in &v2 {
        assert!(s
            .offer
            .tracking_url
            .as_deref()
            .unwrap()
            .contains("/v2/tracking"));
        assert!(matches!(
            s.offer.payout_type,
            Some(PayoutType::Cpi) | Some(PayoutType::Cpa)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2s_negative_codes_are_mapped() {
    let app = TestApp::new(10).await;
    Sandbox::with(&app.sandbox.s2s, |t| {
        t.faults.push(FaultRule::once_on_page(
            2,
            Fault::InBodyRateLimited { status: 200 },
        ));
    });
    let run = &sync_sources(&app, &s2s_config(&app, true, sandbox::S2S_APP_ID)).await[0];
    assert_eq!(
        (run.state, run.rate_limited),
        (RunState::Complete, 1),
        "c = -3302 is a rate limit: {run:?}"
    );
    let run = &sync_sources(&app, &s2s_config(&app, true, "ym_not_my_app")).await[0];
    assert_eq!(
        (run.state, run.reason.as_deref(), run.requests),
        (RunState::Failed, Some("permanent"), 1)
    );
    let err = run.error.as_deref().unwrap();
    assert!(err.contains("c = -1002 (app_id does not exist)"), "{err}");
    assert!(
        !err.contains("ym_not_my_app"),
        "the app_id is a credential: {err}"
    );
}

fn affise_config(app: &TestApp, api: &str, key: &str) -> String {
    format!(
        r#"
[[sources]]
name = "af"
kind = "affise"
api = "{api}"
base_url = {:?}
api_key = {key:?}
page_size = 40
requests_per_second = 1000
max_attempts = 3
retry_initial_interval_ms = 10
"#,
        app.sandbox.affise_base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affise_admin_keeps_every_payment_and_sees_stopped_offers() {
    let app = TestApp::new(10).await;
    let run = &sync_sources(&app, &affise_config(&app, "admin", sandbox::AFFISE_KEY)).await[0];
    assert_eq!(
        (run.state, run.pages, run.offers_seen),
        (RunState::Complete, 4, 150),
        "{run:?}"
    );
    let rows = served(&app.sandbox.affise, |o| sandbox::affise::row(o, false));
    let stored = offers(&app, "af");
    let mut multi = 0;
    for r in &rows {
        let id = r["id"].to_string();
        let o = &stored
            .iter()
            .find(|s| s.offer.external_id == id)
            .unwrap()
            .offer;
        let status = if r["status"] == "stopped" {
            OfferStatus::Paused
        } else {
            OfferStatus::Active
        };
        assert_eq!(o.status, status);
        let first = &r["payments"][0];
        assert_eq!(
            o.payout,
            dec(&first["revenue"]),
            "payments[].revenue is the affiliate payout"
        );
        assert_eq!(
            o.revenue,
            dec(&first["total"]),
            "payments[].total is the advertiser price"
        );
        assert_eq!(o.currency.as_deref(), Some("USD"), "upper-cased");
        let payments = r["payments"].as_array().unwrap();
        assert_eq!(o.payouts.len(), payments.len());
        multi += usize::from(payments.len() > 1);
        let countries: Vec<String> = payments
            .iter()
            .flat_map(|p| strs(&p["countries"]))
            .map(|c| c.to_uppercase())
            .collect();
        assert_eq!(o.countries, sorted(countries), "{id}");
        assert_eq!(o.tracking_url.as_deref(), r["url"].as_str());
        assert_eq!(o.app_package.as_deref(), r["bundle_id"].as_str());
        assert_eq!(
            o.starts_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .as_deref(),
            r["start_at"].as_str()
        );
        let stop = r["stop_at"].as_str().unwrap();
        assert_eq!(
            o.ends_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            (!stop.is_empty()).then(|| stop.to_string())
        );
    }
    assert!(
        multi > 10,
        "offers with several payouts were served ({multi})"
    );
    assert!(
        stored.iter().any(|s| s.offer.status == OfferStatus::Paused),
        "stopped offers are listed, as paused"
    );
    // Every payment is in the offers view's payouts column, as JSON that the database's own
    // JSON functions can read (json_each on SQLite, jsonb_array_elements on PostgreSQL).
    let two = stored.iter().find(|s| s.offer.payouts.len() == 2).unwrap();
    let from = if app.pg.is_some() {
        "SELECT value ->> 'goal' FROM offers, jsonb_array_elements(offers.payouts) AS value"
    } else {
        "SELECT json_extract(value, '$.goal') FROM offers, json_each(offers.payouts)"
    };
    let mut goals: Vec<String> = sql_strings(
        &app,
        &format!(
            "{from} WHERE source = 'af' AND external_id = {}",
            sql_quote(&two.offer.external_id)
        ),
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    goals.sort();
    assert_eq!(goals, ["1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affise_partner_reads_links_and_errors_keep_the_platforms_words() {
    let app = TestApp::new(10).await;
    let run = &sync_sources(&app, &affise_config(&app, "partner", sandbox::AFFISE_KEY)).await[0];
    assert_eq!(run.state, RunState::Complete, "{run:?}");
    for s in offers(&app, "af") {
        let url = s.offer.tracking_url.as_deref().unwrap();
        assert!(
            url.starts_with("https://track.affise.demo/click?offer_id="),
            "link is the partner's tracking URL"
        );
    }
    let run = &sync_sources(&app, &affise_config(&app, "admin", "af_revoked_key_9")).await[0];
    assert_eq!(
        (run.state, run.reason.as_deref()),
        (RunState::Failed, Some("permanent"))
    );
    let err = run.error.as_deref().unwrap();
    assert!(
        err.contains("Affise answered HTTP 403 with status 2: Access denied for key ***"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_trackly_example_yields_the_same_mirror_as_the_native_adapter() {
    let app = TestApp::new(230).await;
    let generic = crate::harness::generic_trackly_example(
        &app.sandbox.trackly_base_url(),
        &format!("api_key = {:?}\nrequests_per_second = 1000", app.api_key),
    );
    let native = format!(
        "[[sources]]\nname = \"trackly-native\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key = {:?}\nrequests_per_second = 1000\n",
        app.sandbox.trackly_base_url(),
        app.api_key
    );
    app.sandbox
        .with_trackly(|t| t.catalog.update(3, |o| o.status = "paused"));
    let runs = sync_sources(&app, &format!("{native}\n{generic}")).await;
    assert!(
        runs.iter()
            .all(|r| r.state == RunState::Complete && r.offers_seen == 230),
        "{runs:?}"
    );
    let (a, b) = (
        offers(&app, "trackly-native"),
        offers(&app, "trackly-generic"),
    );
    assert_eq!(a.len(), 230);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.offer, y.offer);
        assert_eq!((&x.content_hash, &x.raw), (&y.content_hash, &y.raw));
    }
}

#[test]
fn the_generic_offer18_example_reads_an_id_keyed_data_object() {
    use offersync::http::HttpResponse;
    use offersync::sources::{build, Cursor};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/examples/generic-offer18.toml"
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("api_key_env = \"OFFER18_API_KEY\"", "api_key = \"k\"");
    let config = Config::from_toml_str(&text, std::path::Path::new(path)).unwrap();
    let source = build(
        &config.sources[0],
        offersync::config::Secret::new("o18_secret_key"),
    )
    .unwrap();
    let req = source.request(&Cursor::default());
    let q: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    assert!(
        q.contains(&("key".into(), "o18_secret_key".into()))
            && q.contains(&("aid".into(), "12345".into()))
    );
    assert!(!offersync::http::redact_url(&req.url).contains("o18_secret_key"));
    let body = r#"{"response":"200","data":{
        "9001":{"offerid":"9001","name":"Shop IN","status":"1","currency":"inr","price":"45.5","model":"cpa","preview_url":"https://shop.example","country_allow":"IN,US","country_block":"","capping":[],"payout":[]},
        "9002":{"offerid":9002,"name":"Game","status":"0","currency":"USD","price":1.25,"model":"cpi","preview_url":"","country_allow":"","country_block":"CN"}}}"#;
    let resp = HttpResponse {
        status: reqwest::StatusCode::OK,
        headers: Default::default(),
        body: body.as_bytes().to_vec().into(),
    };
    let page = source.parse(&Cursor::default(), &resp).unwrap();
    assert_eq!(page.offers.len(), 2);
    let a = &page.offers[0].offer;
    assert_eq!(
        (a.external_id.as_str(), a.name.as_str(), a.status),
        ("9001", "Shop IN", OfferStatus::Active)
    );
    assert_eq!(
        (a.payout.map(|d| d.to_string()), a.currency.as_deref()),
        (Some("45.5".into()), Some("INR"))
    );
    assert_eq!(
        (a.payout_type, a.countries.clone()),
        (Some(PayoutType::Cpa), vec!["IN".to_string(), "US".into()])
    );
    let b = &page.offers[1].offer;
    assert_eq!(
        (b.external_id.as_str(), b.status, b.payout_type),
        ("9002", OfferStatus::Paused, Some(PayoutType::Cpi))
    );
    assert!(b.countries.is_empty() && b.preview_url.is_none());
    assert!(
        page.offers[1].raw.contains("\"country_block\":\"CN\""),
        "raw is the record as received"
    );
    assert!(page.next.is_none(), "a short page (2 of 100) ends the feed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_every_source_with_good_and_bad_keys() {
    let app = TestApp::new(30).await;
    let sources = |good: bool| {
        let k = |key: &str| {
            if good {
                key.to_string()
            } else {
                format!("{key}_bad")
            }
        };
        format!(
            "{}\n{}\n{}\n{}\n[[sources]]\nname = \"tr\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key = {:?}\nmax_attempts = 1\n",
            offerslook_config(&app, "batches", &k(sandbox::OFFERSLOOK_KEY)),
            s2s_config(&app, false, &k(sandbox::S2S_APP_ID)),
            affise_config(&app, "admin", &k(sandbox::AFFISE_KEY)),
            "",
            app.sandbox.trackly_base_url(),
            k(&app.api_key),
        )
    };
    let write = |good: bool| {
        std::fs::write(
            &app.config_path,
            format!("{}\n{}", app.database_toml(), sources(good)),
        )
        .unwrap();
    };
    write(true);
    let ok = app.bin(&["check"], &[]).await;
    let out = text(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", text(&ok.stderr));
    for name in ["ol", "ym", "af", "tr"] {
        assert!(out.contains(&format!("source {name}: ok")), "{name}: {out}");
    }
    write(false);
    let bad = app.bin(&["check"], &[]).await;
    let out = text(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(
        out.contains("source ol: FAILED: Offerslook answered HTTP 401"),
        "{out}"
    );
    assert!(
        out.contains("source ym: FAILED: the S2S feed answered HTTP 200 with c = -1002"),
        "{out}"
    );
    assert!(
        out.contains("source af: FAILED: Affise answered HTTP 403"),
        "{out}"
    );
    assert!(
        out.contains("source tr: FAILED: Trackly answered HTTP 401"),
        "{out}"
    );
    assert!(!out.contains("_bad"), "keys never printed: {out}");
    let config_only = app.bin(&["check", "--config-only"], &[]).await;
    assert!(
        config_only.status.success(),
        "--config-only does not touch the network"
    );
}
