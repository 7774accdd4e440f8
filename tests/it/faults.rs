//! The fault matrix: for every source kind, each way a platform can misbehave, with the run
//! state it must end in, the offer skipped, counted and named (`sync_runs.rejected`,
//! `offer_rejections`, `inspect runs`), no panic, and nothing else lost.
//!
//! Transport faults (timeouts, resets mid-body, truncated JSON, HTML at HTTP 200) hit page 2
//! once and must be retried into a complete run; a page that stays broken ends the run
//! `partial` without removing anything. Data faults corrupt the first row of page 2 as the
//! platform's wire shape has it. Loops and a 90% shrink run after a clean first sync.

use crate::harness::{generic_trackly_example, off_runtime, sql_strings, text, TestApp};
use offersync::config::Config;
use offersync::http::Limiters;
use offersync::sandbox::twin::Shared;
use offersync::sandbox::{Fault, FaultRule, Rewrite, Sandbox};
use offersync::store::{RunState, RunTotals};
use offersync::sync::{self, RunReport, SyncContext};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const OFFERS: usize = 60;
const PAGE: usize = 20;

/// A source kind and where its wire rows keep the fields the faults corrupt (JSON pointers;
/// `None` where the platform has no such field).
struct Kind {
    kind: &'static str,
    rows: &'static str,
    id: &'static str,
    payout: &'static str,
    currency: Option<&'static str>,
    /// Countries as a list, or (Trackly's metadata) as one comma-separated string.
    countries: &'static str,
    countries_csv: bool,
    text: &'static str,
}

const KINDS: [Kind; 9] = [
    Kind {
        kind: "trackly",
        rows: "/offers",
        id: "/id",
        payout: "/payout",
        currency: None,
        countries: "/metadata/geo",
        countries_csv: true,
        text: "/name",
    },
    Kind {
        kind: "generic",
        rows: "/offers",
        id: "/id",
        payout: "/payout",
        currency: None,
        countries: "/metadata/geo",
        countries_csv: true,
        text: "/name",
    },
    Kind {
        kind: "offerslook",
        rows: "/data/rowset",
        id: "/offer/id",
        payout: "/offer/payout",
        currency: Some("/offer/currency"),
        countries: "/offer_geo/target/0/country_code",
        countries_csv: true,
        text: "/offer/description",
    },
    Kind {
        kind: "s2s",
        rows: "/offers",
        id: "/id",
        payout: "/payout",
        currency: None,
        countries: "/country",
        countries_csv: false,
        text: "/adtxt",
    },
    Kind {
        kind: "affise",
        rows: "/offers",
        id: "/id",
        payout: "/payments/0/revenue",
        currency: Some("/payments/0/currency"),
        countries: "/payments/0/countries",
        countries_csv: false,
        text: "/description",
    },
    Kind {
        kind: "everflow",
        rows: "/offers",
        id: "/network_offer_id",
        payout: "/relationship/payouts/entries/0/payout_amount",
        currency: Some("/currency_id"),
        countries: "/relationship/ruleset/countries/0/country_code",
        countries_csv: true,
        text: "/preview_url",
    },
    Kind {
        kind: "hasoffers",
        // An object keyed by offer id: its values are the rows.
        rows: "/response/data/data",
        id: "/Offer/id",
        payout: "/Offer/default_payout",
        currency: Some("/Offer/currency"),
        countries: "/Country",
        countries_csv: false,
        text: "/Offer/description",
    },
    Kind {
        kind: "trackier",
        rows: "/data/campaigns",
        id: "/id",
        payout: "/payouts/0/payout",
        currency: Some("/currency"),
        countries: "/countries",
        countries_csv: false,
        text: "/preview_url",
    },
    Kind {
        kind: "offer18",
        // An object keyed by offer id: its values are the rows.
        rows: "/data",
        id: "/offerid",
        payout: "/price",
        currency: Some("/currency"),
        countries: "/country_allow",
        countries_csv: true,
        text: "/preview_url",
    },
];

fn source_toml(app: &TestApp, kind: &str) -> String {
    let common = format!(
        "page_size = {PAGE}\nrequests_per_second = 1000\nmax_attempts = 3\nretry_initial_interval_ms = 10\nretry_max_interval_seconds = 1\ntimeout_seconds = 1\nremoval_grace_runs = 1\n"
    );
    match kind {
        "trackly" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key = {:?}\n{common}",
            app.sandbox.trackly_base_url(),
            app.api_key
        ),
        "generic" => generic_trackly_example(
            &app.sandbox.trackly_base_url(),
            &format!("api_key = {:?}\n{common}", app.api_key),
        )
        .replace("name = \"trackly-generic\"", "name = \"src\"")
        .replace("page_size = 100\n", ""),
        "offerslook" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"offerslook\"\napi = \"network\"\nendpoint = \"batches\"\nusername = {:?}\nbase_url = {:?}\napi_key = {:?}\n{common}",
            offersync::sandbox::offerslook::USERNAME,
            app.sandbox.offerslook_base_url(),
            offersync::sandbox::OFFERSLOOK_KEY
        ),
        "s2s" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"s2s\"\nbase_url = {:?}\napi_key = {:?}\nos = \"android\"\ngaid = \"38400000-8cf0-11bd-b23e-10b96e40000d\"\nandid = \"9774d56d682e549c\"\n{common}",
            app.sandbox.s2s_base_url(false),
            offersync::sandbox::S2S_APP_ID
        ),
        "affise" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"affise\"\napi = \"admin\"\nbase_url = {:?}\napi_key = {:?}\n{common}",
            app.sandbox.affise_base_url(),
            offersync::sandbox::AFFISE_KEY
        ),
        "everflow" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"everflow\"\nbase_url = {:?}\napi_key = {:?}\n{common}",
            app.sandbox.everflow_base_url(),
            offersync::sandbox::EVERFLOW_KEY
        ),
        "hasoffers" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"hasoffers\"\nbase_url = {:?}\napi_key = {:?}\n{common}",
            app.sandbox.hasoffers_base_url(false),
            offersync::sandbox::HASOFFERS_KEY
        ),
        "trackier" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"trackier\"\nbase_url = {:?}\napi_key = {:?}\n{common}",
            app.sandbox.trackier_base_url(),
            offersync::sandbox::TRACKIER_KEY
        ),
        "offer18" => format!(
            "[[sources]]\nname = \"src\"\nkind = \"offer18\"\nbase_url = {:?}\napi_key = {:?}\naffiliate_id = \"1\"\nnetwork_id = \"2\"\n{common}",
            app.sandbox.offer18_base_url(0),
            offersync::sandbox::OFFER18_KEY
        ),
        other => panic!("unknown kind {other}"),
    }
}

fn twin<'a>(sandbox: &'a Sandbox, kind: &str) -> &'a Shared {
    match kind {
        "trackly" | "generic" => &sandbox.trackly,
        "offerslook" => &sandbox.offerslook,
        "s2s" => &sandbox.s2s,
        "affise" => &sandbox.affise,
        "everflow" => &sandbox.everflow,
        "hasoffers" => &sandbox.hasoffers,
        "trackier" => &sandbox.trackier,
        "offer18" => &sandbox.offer18,
        other => panic!("unknown kind {other}"),
    }
}

/// A fresh sandbox (every twin serving `OFFERS` offers) and a config with one source of `kind`.
async fn app(kind: &str) -> TestApp {
    let app = TestApp::new(OFFERS).await;
    for k in [
        "offerslook",
        "s2s",
        "affise",
        "everflow",
        "hasoffers",
        "trackier",
        "offer18",
    ] {
        Sandbox::with(twin(&app.sandbox, k), |t| {
            let n = t.catalog.len();
            if n > OFFERS {
                // The twins start with demo-sized catalogues: keep OFFERS live offers.
                for i in OFFERS..n {
                    t.catalog.remove(i);
                }
            }
        });
    }
    let text = format!("{}\n{}", app.database_toml(), source_toml(&app, kind));
    std::fs::write(&app.config_path, text).unwrap();
    app
}

/// Ids of the live offers in the mirror, with their content hashes.
fn mirror(app: &TestApp) -> BTreeSet<(String, String)> {
    off_runtime(|| app.store().offers_of("src").unwrap())
        .into_iter()
        .filter(|o| o.removed_at.is_none())
        .map(|o| (o.offer.external_id, o.content_hash))
        .collect()
}

async fn sync(app: &TestApp) -> RunTotals {
    let config = Config::load(&app.config_path).expect("config loads");
    let all: Vec<_> = config.sources.iter().collect();
    let prepared = sync::prepare(&all, &Limiters::new()).expect("sources prepare");
    let ctx = SyncContext::for_database(&config.database);
    match sync::run_all(&ctx, prepared, 1).await.remove(0) {
        RunReport::Finished(t) => t,
        other => panic!("{other:?}"),
    }
}

fn set_fault(app: &TestApp, kind: &str, rule: FaultRule) {
    Sandbox::with(twin(&app.sandbox, kind), |t| t.faults.push(rule));
}

fn once_on_page_2(fault: Fault) -> FaultRule {
    FaultRule {
        page: Some(2),
        remaining: Some(1),
        fault,
    }
}

/// Apply `f` to the first row of every page-2 answer (a platform that keeps sending it).
fn corrupt_row(k: &Kind, f: impl Fn(&mut Value) + Send + Sync + 'static) -> FaultRule {
    corrupt_rows(k, move |rows| f(&mut rows[0]))
}

/// Apply `f` to the rows at `pointer` in `v`: an array, or an object keyed by id (HasOffers,
/// Offer18) whose values are the rows, in the order sent.
fn with_rows(v: &mut Value, pointer: &str, f: impl FnOnce(&mut Vec<Value>)) {
    match v.pointer_mut(pointer).unwrap() {
        Value::Array(rows) => f(rows),
        Value::Object(m) => {
            let mut rows: Vec<Value> = m.values().cloned().collect();
            f(&mut rows);
            for (slot, row) in m.values_mut().zip(rows) {
                *slot = row;
            }
        }
        other => panic!("no rows at {pointer}: {other}"),
    }
}

/// The first row at `pointer` (an array's or an id-keyed object's).
fn first_row<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    match v.pointer(pointer).unwrap() {
        Value::Object(m) => m.values().next().unwrap(),
        rows => &rows[0],
    }
}

/// Apply `f` to the rows of every page-2 answer.
fn corrupt_rows(k: &Kind, f: impl Fn(&mut Vec<Value>) + Send + Sync + 'static) -> FaultRule {
    let rows = k.rows;
    FaultRule::on_page(
        2,
        Fault::Rewrite(Rewrite::new(move |body| {
            let mut v: Value = serde_json::from_slice(body).unwrap();
            with_rows(&mut v, rows, &f);
            *body = serde_json::to_vec(&v).unwrap();
        })),
    )
}

/// Page 2's first row with a byte that is not UTF-8 in its text field.
fn invalid_utf8(k: &Kind) -> FaultRule {
    let (rows, text) = (k.rows, k.text);
    FaultRule::on_page(
        2,
        Fault::Rewrite(Rewrite::new(move |body| {
            let mut v: Value = serde_json::from_slice(body).unwrap();
            with_rows(&mut v, rows, |r| {
                set(&mut r[0], text, json!("MARK-BAD-BYTE"))
            });
            let s = serde_json::to_vec(&v).unwrap();
            let at = s.windows(13).position(|w| w == b"MARK-BAD-BYTE").unwrap();
            let mut out = s[..at].to_vec();
            out.extend_from_slice(b"caf\xff");
            out.extend_from_slice(&s[at + 13..]);
            *body = out;
        })),
    )
}

/// Set the value at `pointer` (its parent must exist).
fn set(row: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let p = if parent.is_empty() {
        row
    } else {
        row.pointer_mut(parent).unwrap()
    };
    match p {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
        other => panic!("cannot set {pointer} in {other}"),
    }
}

/// The id of the first row on page 2 (what the data faults corrupt).
async fn first_id_on_page_2(app: &TestApp, k: &Kind) -> String {
    let probe = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = probe.clone();
    let (rows, id) = (k.rows, k.id);
    set_fault(
        app,
        k.kind,
        FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::Rewrite(Rewrite::new(move |body| {
                let v: Value = serde_json::from_slice(body).unwrap();
                let row = first_row(&v, rows);
                *seen.lock().unwrap() = match row.pointer(id).unwrap() {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
            })),
        },
    );
    let first = sync(app).await;
    assert_eq!(first.state, RunState::Complete, "{first:?}");
    let id = probe.lock().unwrap().clone();
    assert!(!id.is_empty());
    id
}

fn rejections(app: &TestApp, run: i64) -> Vec<(Option<String>, String)> {
    sql_strings(
        app,
        &format!(
            "SELECT CASE WHEN external_id IS NULL THEN 'null' ELSE 'id' END, external_id, reason
             FROM offer_rejections WHERE run_id = {run} ORDER BY id"
        ),
    )
    .into_iter()
    .map(|r| ((r[0] == "id").then(|| r[1].clone()), r[2].clone()))
    .collect()
}

/// A data fault: after a clean first sync, page 2's first row is corrupted by `f`; the run
/// completes, that offer is rejected with a reason containing `want` (and keeps its last good
/// version in the mirror, since it was not removed), and every other offer is unaffected.
async fn rejected_row(k: &Kind, what: &str, want: &str, rule: FaultRule) {
    let app = app(k.kind).await;
    let id = first_id_on_page_2(&app, k).await;
    let before = mirror(&app);
    set_fault(&app, k.kind, rule);
    let run = sync(&app).await;
    let ctx = format!("{} / {what}: {run:?}", k.kind);
    assert_eq!(run.state, RunState::Complete, "{ctx}");
    if what == "missing id" {
        // It could be any offer: nothing is removed on the strength of this run.
        assert_eq!(run.reason.as_deref(), Some("removals_skipped"), "{ctx}");
    }
    assert_eq!(run.rejected, 1, "{ctx}");
    assert_eq!(run.offers_seen as usize + 1, before.len(), "{ctx}");
    assert_eq!(run.removed, 0, "{ctx}");
    let got = rejections(&app, run.id);
    assert_eq!(got.len(), 1, "{ctx}");
    let (rid, reason) = &got[0];
    assert!(
        reason.contains(want),
        "{ctx}: reason {reason:?} lacks {want:?}"
    );
    if what != "missing id" {
        assert_eq!(
            rid.as_deref(),
            Some(id.as_str()),
            "{ctx}: the rejection names the offer"
        );
    }
    assert_eq!(mirror(&app), before, "{ctx}: nothing else changed");
    if k.kind == "trackly" {
        // The reasons are in `inspect runs` too.
        let out = app.bin(&["inspect", "runs", "--format", "json"], &[]).await;
        let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
        let shown = runs[0]["rejections"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let named = what == "missing id" || shown.contains(&id);
        assert!(
            shown.contains(want) && named,
            "{ctx}: inspect runs shows {shown:?}"
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
}

/// A transport fault on page 2, once: retried into a complete run with every offer.
async fn retried(k: &Kind, what: &str, fault: Fault) {
    let app = app(k.kind).await;
    set_fault(&app, k.kind, once_on_page_2(fault));
    let run = sync(&app).await;
    let ctx = format!("{} / {what}: {run:?}", k.kind);
    assert_eq!(run.state, RunState::Complete, "{ctx}");
    assert!(run.retries >= 1, "{ctx}");
    assert_eq!(run.rejected, 0, "{ctx}");
    let n = mirror(&app).len();
    assert_eq!(run.offers_seen as usize, n, "{ctx}");
    assert!(n >= PAGE * 2, "{ctx}: {n} offers stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_faults_are_retried_into_complete_runs() {
    for k in &KINDS {
        retried(k, "timeout", Fault::Delay(Duration::from_millis(1500))).await;
        retried(k, "connection reset mid-body", Fault::ResetMidBody).await;
        retried(k, "truncated JSON", Fault::Malformed).await;
        retried(k, "HTML error page at HTTP 200", Fault::HtmlError).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_stays_broken_ends_the_run_partial_and_removes_nothing() {
    for k in &KINDS {
        let app = app(k.kind).await;
        assert_eq!(sync(&app).await.state, RunState::Complete);
        let before = mirror(&app);
        set_fault(&app, k.kind, FaultRule::on_page(2, Fault::Malformed));
        let run = sync(&app).await;
        let ctx = format!("{}: {run:?}", k.kind);
        assert_eq!(run.state, RunState::Partial, "{ctx}");
        assert_eq!(run.reason.as_deref(), Some("transient"), "{ctx}");
        let error = run.error.clone().unwrap_or_default();
        assert!(error.starts_with("page 2:"), "{ctx}");
        assert_eq!((run.pages, run.removed), (1, 0), "{ctx}");
        assert_eq!(mirror(&app), before, "{ctx}: nothing removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_are_rejected_named_and_counted() {
    for k in &KINDS {
        let id = k.id;
        let drop_id = corrupt_row(k, move |row| {
            let (parent, key) = id.rsplit_once('/').unwrap();
            let p = if parent.is_empty() {
                &mut *row
            } else {
                row.pointer_mut(parent).unwrap()
            };
            p.as_object_mut().unwrap().remove(key);
        });
        rejected_row(k, "missing id", "no ", drop_id).await;
        let payout = k.payout;
        let negative = corrupt_row(k, move |row| set(row, payout, json!(-5)));
        rejected_row(k, "negative payout", "is negative", negative).await;
        let absurd = corrupt_row(k, move |row| set(row, payout, json!(1e15)));
        rejected_row(k, "absurd payout", "implausibly large", absurd).await;
        if let Some(currency) = k.currency {
            let unknown = corrupt_row(k, move |row| set(row, currency, json!("XYZ")));
            rejected_row(k, "unknown currency", "is not an ISO 4217 code", unknown).await;
        }
        let (countries, csv) = (k.countries, k.countries_csv);
        let narnia = corrupt_row(k, move |row| {
            let v = if csv {
                json!("US,Narnia")
            } else {
                json!(["US", "Narnia"])
            };
            set(row, countries, v)
        });
        rejected_row(
            k,
            "non-ISO country",
            "is not an ISO 3166-1 alpha-2 code",
            narnia,
        )
        .await;
        let text = k.text;
        let huge = corrupt_row(k, move |row| set(row, text, json!("x".repeat(10 << 20))));
        rejected_row(k, "10 MB string", "bytes (limit", huge).await;
        // Bytes that are not UTF-8 inside one offer's text: only that offer is lost, not the page.
        rejected_row(k, "invalid UTF-8", "not valid UTF-8", invalid_utf8(k)).await;
    }
}

/// Wrong JSON types where the platform documents others: the adapters read numbers as text and
/// text as numbers where that is unambiguous; anything else rejects that one offer, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_never_cost_more_than_the_offer() {
    for k in &KINDS {
        type Swap = Box<dyn Fn(&Value) -> Value + Send + Sync>;
        let swaps: [(&str, Swap); 5] = [
            // The same id as the other scalar type (a hex id cannot be a number: kept).
            (
                "id as the other scalar type",
                Box::new(|v: &Value| match v {
                    Value::String(s) => s.parse::<u64>().map(Value::from).unwrap_or(v.clone()),
                    other => Value::String(other.to_string()),
                }),
            ),
            (
                "payout as text",
                Box::new(|v: &Value| Value::String(v.to_string())),
            ),
            ("payout as an array", Box::new(|v: &Value| json!([v]))),
            ("payout as null", Box::new(|_: &Value| Value::Null)),
            ("text as a number", Box::new(|_: &Value| json!(42))),
        ];
        for (what, swap) in swaps {
            let app = app(k.kind).await;
            let id = first_id_on_page_2(&app, k).await;
            let before = mirror(&app);
            let pointer = if what.starts_with("id") {
                k.id
            } else if what.starts_with("payout") {
                k.payout
            } else {
                k.text
            };
            let swap = std::sync::Arc::new(swap);
            set_fault(
                &app,
                k.kind,
                corrupt_row(k, move |row| {
                    let new = swap(row.pointer(pointer).unwrap());
                    set(row, pointer, new);
                }),
            );
            let run = sync(&app).await;
            let ctx = format!("{} / {what}: {run:?}", k.kind);
            assert_eq!(run.state, RunState::Complete, "{ctx}");
            assert_eq!(run.removed, 0, "{ctx}");
            assert_eq!(
                run.offers_seen as usize + run.rejected as usize,
                before.len(),
                "{ctx}: every offer stored or rejected"
            );
            let after = mirror(&app);
            let others_same = before
                .iter()
                .filter(|(i, _)| *i != id)
                .all(|e| after.contains(e));
            assert!(others_same, "{ctx}: the other offers are untouched");
            for (rid, reason) in rejections(&app, run.id) {
                assert!(!reason.is_empty(), "{ctx}");
                if !what.starts_with("id") {
                    assert_eq!(rid.as_deref(), Some(id.as_str()), "{ctx}: {reason}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_ids_are_counted_once_and_the_run_completes() {
    for k in &KINDS {
        let app = app(k.kind).await;
        let id = k.id;
        set_fault(
            &app,
            k.kind,
            corrupt_rows(k, move |rows| {
                let first = rows[0].pointer(id).unwrap().clone();
                set(&mut rows[1], id, first);
            }),
        );
        let run = sync(&app).await;
        let ctx = format!("{}: {run:?}", k.kind);
        assert_eq!(run.state, RunState::Complete, "{ctx}");
        assert_eq!(run.duplicates, 1, "{ctx}");
        assert_eq!(run.rejected, 0, "{ctx}");
        assert_eq!(mirror(&app).len(), run.offers_seen as usize, "{ctx}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_feed_and_a_90_percent_shrink_remove_nothing() {
    for k in &KINDS {
        let app = app(k.kind).await;
        assert_eq!(sync(&app).await.state, RunState::Complete);
        let before = mirror(&app);

        set_fault(&app, k.kind, FaultRule::on_page(3, Fault::RepeatPrevious));
        let run = sync(&app).await;
        let ctx = format!("{} / loop: {run:?}", k.kind);
        assert_eq!(run.state, RunState::Partial, "{ctx}");
        assert_eq!(run.reason.as_deref(), Some("repeated_page"), "{ctx}");
        assert!(
            run.error.as_deref().unwrap_or_default().contains("looping"),
            "{ctx}"
        );
        assert_eq!(mirror(&app), before, "{ctx}");
        Sandbox::with(twin(&app.sandbox, k.kind), |t| t.faults.clear());

        Sandbox::with(twin(&app.sandbox, k.kind), |t| {
            let live = t.catalog.live_indices();
            let keep = live.len() / 10;
            for i in &live[keep..] {
                t.catalog.remove(*i);
            }
        });
        let run = sync(&app).await;
        let ctx = format!("{} / shrink: {run:?}", k.kind);
        assert_eq!(run.state, RunState::Held, "{ctx}");
        assert_eq!(run.reason.as_deref(), Some("mass_removal_guard"), "{ctx}");
        assert!(run.held_removals > 0 && run.removed == 0, "{ctx}");
        let still: BTreeSet<String> = mirror(&app).into_iter().map(|(i, _)| i).collect();
        assert_eq!(still.len(), before.len(), "{ctx}: nothing removed");
    }
}
