//! Everflow against its twin (APIS.md §8).

use super::*;

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
            (got.payout, got.payout_type, got.payout_unit),
            (
                dec(&first["payout_percentage"]),
                Some(PayoutType::Cps),
                offersync::model::PayoutUnit::Percent
            ),
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
    let exclude: Vec<String> = row["relationship"]["ruleset"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["targeting_type"] == "exclude")
        .map(|c| c["country_code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.excluded_countries, sorted(exclude));
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
    // 5 requests per 1 s window (long enough that a writer as slow as PostgreSQL's still runs
    // into it), announced in X-RateLimit-Limit/Remaining (no Reset), and
    // HTTP 429 without Retry-After past it.
    let limit =
        Limit::window(5, Duration::from_millis(1000), LimitAnswer::NoRetryAfter).without_reset();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everflow_survives_sigkill_at_random_points() {
    survives_sigkill(&EVERFLOW, 0xc0ffef).await;
}
