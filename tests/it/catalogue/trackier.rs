//! Trackier against its twin (APIS.md §8).

use super::*;

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
        assert_eq!(
            (got.payout, got.payout_unit),
            (
                dec(&payouts[0]["payout"]),
                offersync::model::PayoutUnit::Percent
            ),
            "cps: a percentage is not an amount"
        );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackier_survives_sigkill_at_random_points() {
    survives_sigkill(&TRACKIER, 0xc0fff1).await;
}
