//! The CAKE adapter on the document's own answer (APIS.md §8.3) and its XML quirks.

use super::super::testing::{page, query, resp, source, KEY};
use crate::http::FailureClass;
use crate::model::{OfferStatus, PayoutType};

fn cake(extra: &str) -> Box<dyn super::Source> {
    source(&format!(
        "kind = \"cake\"\nbase_url = \"https://demo.cakemarketing.com\"\naffiliate_id = \"42\"\npage_size = 10\n{extra}"
    ))
}

const TEMPLATE: &str =
    "tracking_url_template = \"https://demo.cakemarketing.com/?a={affiliate_id}&c={campaign_id}&o={offer_id}\"";

/// APIS.md §8.3's answer, `…` filled minimally.
const FEED: &str = "<offer_feed_response><success>true</success><row_count>24</row_count><offers><offer>
  <offer_id>123</offer_id><offer_contract_id>456</offer_contract_id><campaign_id>789</campaign_id>
  <offer_name>Loans US</offer_name><vertical_name>Finance</vertical_name>
  <offer_status><status_id>1</status_id><status_name>Active</status_name></offer_status>
  <payout>$2.50</payout><price_format>CPA</price_format>
  <allowed_countries><country><country_code>US</country_code></country></allowed_countries>
  <expiration_date>2027-01-01T00:00:00</expiration_date><hidden>false</hidden><preview_link>https://adv.example/loans</preview_link>
  </offer></offers></offer_feed_response>";

fn offer(status: &str, campaign: &str, payout: &str) -> String {
    format!(
        "<offer><offer_id>7</offer_id><offer_contract_id>8</offer_contract_id>{campaign}<offer_name>X &amp; Y</offer_name>\
         <offer_status><status_id>2</status_id><status_name>{status}</status_name></offer_status>\
         <payout>{payout}</payout><price_format>CPA</price_format><allowed_countries/></offer>"
    )
}

fn feed(offers: &str, rows: u32) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<offer_feed_response xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns=\"http://cakemarketing.com/affiliates/api/4/\">\
         <success>true</success><row_count>{rows}</row_count><offers>{offers}</offers></offer_feed_response>"
    )
}

#[test]
fn requests_ask_for_rows_from_1_with_the_key_in_the_query() {
    let req = cake("").request(&page(3));
    assert_eq!(req.url.path(), "/affiliates/api/4/offers.asmx/OfferFeed");
    let q = query(&req);
    for pair in [
        ("api_key", KEY),
        ("affiliate_id", "42"),
        ("campaign_name", ""),
        ("offer_status_id", "0"),
        ("start_at_row", "21"),
        ("row_limit", "10"),
    ] {
        assert!(
            q.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {q:?}"
        );
    }
    assert!(
        query(&cake("").request(&page(1))).contains(&("start_at_row".into(), "1".into())),
        "1-based"
    );
    let shown = crate::http::redact_url(&req.url);
    assert!(
        !shown.contains(KEY) && shown.contains("api_key=***"),
        "{shown}"
    );
}

#[test]
fn the_documented_answer_parses() {
    let p = cake(TEMPLATE).parse(&page(1), &resp(200, FEED)).unwrap();
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.expected_pages, Some(3), "row_count 24 in pages of 10");
    assert_eq!(p.next, None, "1 row where 10 were asked for: a short page");
    let o = &p.offers[0].offer;
    assert_eq!(
        (o.external_id.as_str(), o.name.as_str(), o.status),
        ("123", "Loans US", OfferStatus::Active)
    );
    assert_eq!(o.payout.map(|d| d.to_string()).as_deref(), Some("2.5"));
    assert_eq!(
        (o.currency.as_deref(), o.payout_type),
        (Some("USD"), Some(PayoutType::Cpa))
    );
    assert_eq!(
        (o.countries.clone(), o.categories.clone()),
        (vec!["US".to_string()], vec!["Finance".to_string()])
    );
    assert_eq!(
        o.tracking_url.as_deref(),
        Some("https://demo.cakemarketing.com/?a=42&c=789&o=123")
    );
    assert_eq!(
        o.ends_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2027-01-01T00:00:00+00:00")
    );
    assert_eq!(o.preview_url.as_deref(), Some("https://adv.example/loans"));
    let raw: serde_json::Value = serde_json::from_str(&p.offers[0].raw).unwrap();
    assert_eq!(raw["payout"], "$2.50", "raw keeps the payout as sent");
    assert_eq!(raw["offer_contract_id"], "456");
    assert_eq!(raw["allowed_countries"]["country"][0]["country_code"], "US");
    let p = cake("").parse(&page(1), &resp(200, FEED)).unwrap();
    assert_eq!(p.offers[0].offer.tracking_url, None, "no template: no link");
}

#[test]
fn currency_symbols_nil_campaigns_and_apply_to_run() {
    let offers = [
        offer("Public", "<campaign_id>1</campaign_id>", "€1,20"),
        offer("Active", "<campaign_id xsi:nil=\"true\"/>", "2.50 USD"),
        offer("Active", "<campaign_id></campaign_id>", "£3"),
        offer("Apply To Run", "<campaign_id>3</campaign_id>", "$0.75"),
        offer("Inactive", "<campaign_id>4</campaign_id>", "25%"),
    ]
    .join("");
    let p = cake(TEMPLATE)
        .parse(&page(1), &resp(200, &feed(&offers, 4)))
        .unwrap();
    let got: Vec<_> = p
        .offers
        .iter()
        .map(|s| {
            let o = &s.offer;
            (
                o.status,
                o.payout.map(|d| d.to_string()),
                o.currency.clone(),
                o.tracking_url.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                OfferStatus::Active,
                Some("1.2".into()),
                Some("EUR".into()),
                true
            ),
            (
                OfferStatus::Active,
                Some("2.5".into()),
                Some("USD".into()),
                false
            ),
            (
                OfferStatus::Active,
                Some("3".into()),
                Some("GBP".into()),
                false
            ),
            (
                OfferStatus::Pending,
                Some("0.75".into()),
                Some("USD".into()),
                false
            ),
            (OfferStatus::Paused, Some("25".into()), None, true),
        ]
    );
    assert_eq!(p.offers[0].offer.name, "X & Y", "entities decoded");
    assert_eq!(
        (p.offers[4].offer.payout_type, p.offers[4].offer.payout_unit),
        (Some(PayoutType::Cps), crate::model::PayoutUnit::Percent),
        "25 % is no amount"
    );
    let raw: serde_json::Value = serde_json::from_str(&p.offers[1].raw).unwrap();
    assert!(raw["campaign_id"].is_null(), "nil campaign: {raw}");
    let dollars = cake("dollar_currency = \"CAD\"")
        .parse(&page(1), &resp(200, &feed(&offer("Active", "", "$3"), 1)))
        .unwrap();
    assert_eq!(dollars.offers[0].offer.currency.as_deref(), Some("CAD"));
}

#[test]
fn an_unknown_currency_symbol_rejects_the_offer_naming_it() {
    let p = cake("")
        .parse(
            &page(1),
            &resp(200, &feed(&offer("Active", "", "¤2.50"), 1)),
        )
        .unwrap();
    assert!(p.offers.is_empty());
    assert_eq!(p.rejected[0].external_id.as_deref(), Some("7"));
    assert_eq!(
        p.rejected[0].reason,
        "offer 7: payout \"¤2.50\": currency symbol \"¤\" is not one offersync knows"
    );
}

#[test]
fn paging_ends_on_a_short_page_or_at_row_count() {
    let ten: String = (0..10)
        .map(|i| offer("Active", "", &format!("${i}")))
        .collect();
    let p = cake("")
        .parse(&page(1), &resp(200, &feed(&ten, 24)))
        .unwrap();
    assert_eq!(p.next, Some(page(2)));
    let p = cake("")
        .parse(&page(2), &resp(200, &feed(&ten, 20)))
        .unwrap();
    assert_eq!(p.next, None, "20 rows read of 20");
    let p = cake("").parse(&page(3), &resp(200, &feed("", 20))).unwrap();
    assert!(p.offers.is_empty() && p.next.is_none());
    let empty = "<offer_feed_response><success>true</success><row_count>0</row_count><offers /></offer_feed_response>";
    assert!(cake("")
        .parse(&page(1), &resp(200, empty))
        .unwrap()
        .next
        .is_none());
}

#[test]
fn errors_and_bodies_that_are_not_the_feed() {
    let s = cake("");
    let e = s
        .parse(&page(1), &resp(200, "<offer_feed_response><success>false</success><message>Invalid API Key</message></offer_feed_response>"))
        .unwrap_err();
    assert_eq!(
        (e.class, e.message.as_str()),
        (
            FailureClass::Permanent,
            "CAKE answered HTTP 200 with success false: Invalid API Key"
        )
    );
    let e = s.parse(&page(1), &resp(401, "Unauthorized")).unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    let e = s
        .parse(&page(1), &resp(403, "<html>admin key</html>"))
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    for body in [
        "<html><body>Bad gateway</body></html>",
        "{\"offers\": [",
        "<offer_feed_response><success>true</succ",
    ] {
        let e = s.parse(&page(1), &resp(200, body)).unwrap_err();
        assert_eq!(e.class, FailureClass::Transient, "{body}");
    }
    let e = s.parse(&page(1), &resp(500, "<offer_feed_response><success>false</success><message>Object reference not set</message></offer_feed_response>")).unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Transient,
        "a 5xx with the feed's error"
    );
}
