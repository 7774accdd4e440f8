//! HasOffers / TUNE against its twin (APIS.md §8).

use super::*;

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
            (got.payout, got.payout_type, got.payout_unit),
            (
                dec(&r["percent_payout"]),
                Some(PayoutType::Cps),
                offersync::model::PayoutUnit::Percent
            ),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasoffers_survives_sigkill_at_random_points() {
    survives_sigkill(&HASOFFERS, 0xc0fff0).await;
}
