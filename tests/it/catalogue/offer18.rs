//! Offer18 against its twin (APIS.md §8).

use super::*;

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
    let reason = sql_strings(
        &app,
        &format!("SELECT reason FROM sync_runs WHERE id = {run}"),
    );
    assert_eq!(reason, [["repeated_page"]]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer18_survives_sigkill_at_random_points() {
    survives_sigkill(&OFFER18, 0xc0fff2).await;
}
