//! The HasOffers adapter on the document's own envelope (APIS.md §8.1) and its quirks.

use super::super::testing::{page, query, resp, source, KEY};
use crate::http::FailureClass;
use crate::model::{OfferStatus, PayoutType};

fn hasoffers(extra: &str) -> Box<dyn super::Source> {
    source(&format!(
        "kind = \"hasoffers\"\nbase_url = \"https://demo.api.hasoffers.com\"\npage_size = 50\n{extra}"
    ))
}

/// APIS.md §8.1's envelope, `…` filled with the documented offer fields.
const ENVELOPE: &str = r#"{"response":{"status":1,"httpStatus":200,"data":{"page":1,"current":50,"count":1234,"pageCount":25,
  "data":{"4521":{"Offer":{"id":"4521","name":"Summer Promo","description":"Sign up","preview_url":"https://adv.example",
  "default_payout":"2.50","percent_payout":"0.00","payout_type":"cpa_flat","currency":null,"status":"active",
  "expiration_date":"2027-01-01","require_approval":"0"},"Country":{"US":{"id":"840","code":"US","name":"United States"}},
  "OfferCategory":{"12":{"id":"12","name":"Finance"}},"TrackingLink":{"click_url":"https://trk.example/aff_c?offer_id=4521"}}}},"errors":[],"errorMessage":null}}"#;

#[test]
fn requests_carry_the_key_the_method_the_page_and_the_contains() {
    let req = hasoffers("").request(&page(2));
    assert_eq!(req.url.path(), "/Apiv3/json");
    let q = query(&req);
    for pair in [
        ("api_key", KEY),
        ("Target", "Affiliate_Offer"),
        ("Method", "findAll"),
        ("sort[id]", "asc"),
        ("limit", "50"),
        ("page", "2"),
        ("contain[]", "Country"),
        ("contain[]", "OfferCategory"),
        ("contain[]", "TrackingLink"),
    ] {
        assert!(
            q.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {q:?}"
        );
    }
    let shown = crate::http::redact_url(&req.url);
    assert!(
        !shown.contains(KEY) && shown.contains("api_key=***"),
        "{shown}"
    );
    let approved =
        hasoffers("method = \"findMyApprovedOffers\"\ncontain = [\"Country\"]").request(&page(1));
    let q = query(&approved);
    assert!(q.contains(&("Method".into(), "findMyApprovedOffers".into())));
    assert_eq!(q.iter().filter(|(k, _)| k == "contain[]").count(), 1);
    let full =
        source("kind = \"hasoffers\"\nbase_url = \"https://x.api.hasoffers.com/Apiv3/json/\"");
    assert_eq!(full.request(&page(1)).url.path(), "/Apiv3/json");
}

#[test]
fn the_documented_envelope_parses() {
    let s = hasoffers("default_currency = \"eur\"");
    let p = s.parse(&page(1), &resp(200, ENVELOPE)).unwrap();
    assert_eq!(p.rejected, vec![]);
    assert_eq!((p.expected_pages, p.next), (Some(25), Some(page(2))));
    let o = &p.offers[0].offer;
    assert_eq!(
        (o.external_id.as_str(), o.name.as_str()),
        ("4521", "Summer Promo")
    );
    assert_eq!(
        o.payout.map(|d| d.to_string()).as_deref(),
        Some("2.5"),
        "a string number"
    );
    assert_eq!(o.payout_type, Some(PayoutType::Cpa));
    assert_eq!(
        o.currency.as_deref(),
        Some("EUR"),
        "null: the network's default currency"
    );
    assert_eq!(
        (o.countries.clone(), o.categories.clone()),
        (vec!["US".to_string()], vec!["Finance".to_string()])
    );
    assert_eq!(
        o.tracking_url.as_deref(),
        Some("https://trk.example/aff_c?offer_id=4521")
    );
    assert_eq!(
        o.ends_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2027-01-01T00:00:00+00:00")
    );
    assert_eq!(
        (o.description.as_deref(), o.status),
        (Some("Sign up"), OfferStatus::Active)
    );
    assert!(
        p.offers[0].raw.starts_with("{\"Offer\":"),
        "raw is the row under its id"
    );
    let last = s.parse(&page(25), &resp(200, ENVELOPE)).unwrap();
    assert_eq!(last.next, None, "page >= pageCount");
    let p = hasoffers("").parse(&page(1), &resp(200, ENVELOPE)).unwrap();
    assert_eq!(
        p.offers[0].offer.currency, None,
        "no default currency configured"
    );
}

#[test]
fn empty_data_comes_as_an_empty_array_or_false() {
    for empty in ["[]", "false", "{}"] {
        let body = format!(
            r#"{{"response":{{"status":1,"httpStatus":200,"data":{{"page":3,"current":0,"count":100,"pageCount":2,"data":{empty}}},"errors":[],"errorMessage":null}}}}"#
        );
        let p = hasoffers("").parse(&page(3), &resp(200, &body)).unwrap();
        assert!(
            p.offers.is_empty() && p.rejected.is_empty() && p.next.is_none(),
            "{empty}"
        );
    }
    for data in ["[]", "false"] {
        let body = format!(
            r#"{{"response":{{"status":"1","httpStatus":200,"data":{data},"errors":[],"errorMessage":null}}}}"#
        );
        let p = hasoffers("").parse(&page(1), &resp(200, &body)).unwrap();
        assert!(p.offers.is_empty() && p.next.is_none(), "{data}");
    }
}

#[test]
fn percentages_are_never_amounts_and_offers_awaiting_approval_have_no_link() {
    let body = r#"{"response":{"status":1,"httpStatus":200,"data":{"page":"1","current":"3","count":"3","pageCount":"1","data":{
      "7":{"Offer":{"id":"7","name":"Share","default_payout":"0.00","percent_payout":"30.00","payout_type":"cpa_percentage",
           "currency":"USD","status":"paused","require_approval":"1"},"Country":[],"OfferCategory":[],
           "TrackingLink":{"click_url":"https://trk.example/7"}},
      "8":{"Offer":{"id":"8","name":"Both","default_payout":"1.20","percent_payout":"5.00","payout_type":"cpa_both",
           "currency":"USD","status":"expired","require_approval":"0"},"Country":{"GB":{"id":"826","code":"GB","name":"United Kingdom"}}},
      "9":{"Offer":{"id":"9","name":"Click","default_payout":"0.05","payout_type":"cpc","status":"deleted"}}}},
      "errors":[],"errorMessage":null}}"#;
    let p = hasoffers("").parse(&page(1), &resp(200, body)).unwrap();
    let [a, b, c] = &p.offers[..] else {
        panic!("{p:?}")
    };
    assert_eq!(
        (a.offer.payout, a.offer.payout_type, a.offer.payout_unit),
        (
            Some(rust_decimal::Decimal::from(30)),
            Some(PayoutType::Cps),
            crate::model::PayoutUnit::Percent
        ),
        "30 % is no amount"
    );
    assert_eq!(
        (a.offer.status, a.offer.tracking_url.as_deref()),
        (OfferStatus::Paused, None),
        "require_approval"
    );
    assert!(a.raw.contains("\"percent_payout\":\"30.00\""));
    assert_eq!(
        b.offer.payout.map(|d| d.to_string()).as_deref(),
        Some("1.2")
    );
    assert_eq!(
        (b.offer.payout_type, b.offer.status),
        (Some(PayoutType::Cpa), OfferStatus::Expired)
    );
    assert_eq!(b.offer.countries, ["GB"]);
    assert_eq!(
        (c.offer.payout_type, c.offer.status),
        (Some(PayoutType::Cpc), OfferStatus::Expired)
    );
    assert_eq!(p.next, None);
    // findMyApprovedOffers lists only approved offers: their links are usable.
    let s = hasoffers("method = \"findMyApprovedOffers\"");
    let p = s.parse(&page(1), &resp(200, body)).unwrap();
    assert_eq!(
        p.offers[0].offer.tracking_url.as_deref(),
        Some("https://trk.example/7")
    );
}

fn failure(errors: &str, message: &str) -> String {
    format!(
        r#"{{"response":{{"status":-1,"httpStatus":200,"data":"","errors":{errors},"errorMessage":{message}}}}}"#
    )
}

#[test]
fn in_body_errors_rate_limits_and_auth_failures() {
    let s = hasoffers("");
    let limited = failure(
        r#"[{"err_msg":"API usage exceeded rate limit","publicMessage":"API usage exceeded rate limit"}]"#,
        "null",
    );
    let e = s.parse(&page(2), &resp(200, &limited)).unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::RateLimited,
        "in the body, at HTTP 200"
    );
    assert_eq!(
        e.message,
        "HasOffers answered HTTP 200 with status -1: API usage exceeded rate limit"
    );
    for text in ["Invalid API key", "Authentication failed"] {
        let body = failure(
            &format!(r#"[{{"err_msg":"{text}","publicMessage":"{text}"}}]"#),
            &format!("\"{text}\""),
        );
        let e = s.parse(&page(1), &resp(200, &body)).unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent, "{text}");
    }
    let e = s
        .parse(&page(1), &resp(200, &failure("[]", "\"Invalid filter\"")))
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    let e = s
        .parse(&page(1), &resp(502, "<html>bad gateway</html>"))
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient);
}

#[test]
fn a_rejected_contain_is_dropped_and_asked_again_without() {
    let s = hasoffers("");
    let body = failure(
        r#"[{"err_msg":"Contain TrackingLink is not allowed","publicMessage":"Contain TrackingLink is not allowed"}]"#,
        "null",
    );
    let e = s.parse(&page(1), &resp(200, &body)).unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "retried");
    assert!(
        e.message.contains("contain[]=TrackingLink"),
        "{}",
        e.message
    );
    let q = query(&s.request(&page(1)));
    let contains: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "contain[]")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(contains, ["Country", "OfferCategory"]);
    // Once dropped, the same answer is an ordinary error.
    let e = s.parse(&page(1), &resp(200, &body)).unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    // Without the TrackingLink contain, offers have no tracking URL.
    let p = s
        .parse(
            &page(1),
            &resp(
                200,
                &ENVELOPE.replace(
                    r#","TrackingLink":{"click_url":"https://trk.example/aff_c?offer_id=4521"}"#,
                    "",
                ),
            ),
        )
        .unwrap();
    assert_eq!(p.offers[0].offer.tracking_url, None);
}

#[test]
fn rows_without_an_offer_or_an_id_are_rejected_alone() {
    let body = r#"{"response":{"status":1,"data":{"page":1,"pageCount":1,"data":{
        "1":{"Country":[]},"2":{"Offer":{"name":"x"}},"3":{"Offer":{"id":3,"name":"ok","default_payout":2}}}}}}"#;
    let p = hasoffers("").parse(&page(1), &resp(200, body)).unwrap();
    assert_eq!(p.offers.len(), 1);
    assert_eq!(
        p.offers[0].offer.payout.map(|d| d.to_string()).as_deref(),
        Some("2")
    );
    assert_eq!(p.rejected.len(), 2);
}
