//! CAKE (XML) against its twin (APIS.md §8).

use super::*;

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
    let rejected: Vec<(String, String)> = sql_strings(
        &app,
        &format!("SELECT external_id, reason FROM offer_rejections WHERE run_id = {run}"),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cake_survives_sigkill_at_random_points() {
    survives_sigkill(&CAKE, 0xc0fff3).await;
}
