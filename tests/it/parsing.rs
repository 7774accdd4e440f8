//! Envelope and type variants the twins do not serve, checked on fixture responses through each
//! platform's own request builder and parser (no network).

use offersync::config::{Config, Secret};
use offersync::http::{FailureClass, HttpResponse};
use offersync::model::OfferStatus;
use offersync::sources::{build, Cursor, Source};
use reqwest::StatusCode;
use std::path::Path;

pub(crate) fn source(keys: &str) -> Box<dyn Source> {
    let text = format!(
        "[database]\npath = \"x\"\n[[sources]]\nname = \"s\"\napi_key = \"secret_key_1\"\n{keys}\n"
    );
    let c = Config::from_toml_str(&text, Path::new("fixture")).unwrap();
    build(&c.sources[0], Secret::new("secret_key_1")).unwrap()
}

pub(crate) fn resp(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers: Default::default(),
        body: body.as_bytes().to_vec().into(),
    }
}

pub(crate) fn page_at(n: u64) -> Cursor {
    Cursor {
        pass: 0,
        page: n,
        token: None,
    }
}

#[test]
fn offerslook_requests_carry_the_page_the_clamped_limit_the_sort_and_the_filters() {
    let s = source(
        "kind = \"offerslook\"\nbase_url = \"https://net.api.offerslook.com/\"\napi = \"affiliate\"\nendpoint = \"offers\"\nusername = \"me@example.com\"\npage_size = 200\nfilters = { status = \"active\", \"geo_country[EQUAL_TO]\" = \"US\" }",
    );
    let req = s.request(&page_at(3));
    assert_eq!(req.url.path(), "/aff/v1/offers");
    let q: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    for pair in [
        ("offset", "3"),
        ("limit", "200"),
        ("sort", "+id"),
        ("filters[status]", "active"),
        ("filters[geo_country][EQUAL_TO]", "US"),
    ] {
        assert!(
            q.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {q:?}"
        );
    }
    assert!(
        req.url.as_str().contains("sort=%2Bid"),
        "+ is encoded: {}",
        req.url
    );
    let (user, _) = req.basic_auth.unwrap();
    assert_eq!(user, "me@example.com");
    // An error envelope with HTTP 200: classified by its words.
    let e = s
        .parse(
            &page_at(1),
            &resp(
                200,
                r#"{"code": 41, "message": "Request IP Not Whitelisted"}"#,
            ),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(
        e.message.contains("code 41: Request IP Not Whitelisted"),
        "{}",
        e.message
    );
    let e = s
        .parse(
            &page_at(1),
            &resp(500, r#"{"code": 50, "message": "System upgrade"}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient);
    let e = s
        .parse(&page_at(1), &resp(200, "<html>oops</html>"))
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient, "not JSON: retry");
}

#[test]
fn offerslook_configured_rate_limit_codes_count_as_rate_limits() {
    let s = source("kind = \"offerslook\"\nbase_url = \"https://n.example\"\nusername = \"n\"\nrate_limit_codes = [9]");
    let e = s
        .parse(
            &page_at(1),
            &resp(200, r#"{"code": 9, "message": "slow down please"}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::RateLimited);
}

#[test]
fn affise_alternative_pagination_and_error_shapes() {
    let s = source("kind = \"affise\"\nbase_url = \"https://api-x.affise.com\"\npage_size = 2");
    let req = s.request(&page_at(1));
    assert_eq!(
        req.headers.get("api-key").unwrap().to_str().unwrap(),
        "secret_key_1"
    );
    let statuses: Vec<String> = req
        .url
        .query_pairs()
        .filter(|(k, _)| k == "status[]")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(statuses, vec!["active", "stopped", "suspended"]);
    // {page, limit, total}: 5 offers in pages of 2 → 3 pages.
    let body = r#"{"status": 1, "offers": [
        {"id": 1, "title": "A", "status": "suspended", "payments": [{"revenue": "1.5", "total": "2", "currency": "eur", "countries": ["de"], "country_exclude": true}], "targeting": [{"country": {"allow": ["fr"], "deny": []}}], "countries": ["AT"]},
        {"id": "2", "title": "B", "payments": []}],
        "pagination": {"page": 1, "limit": 2, "total": 5}}"#;
    let p = s.parse(&page_at(1), &resp(200, body)).unwrap();
    assert_eq!(
        (p.expected_pages, p.next.as_ref().map(|c| c.page)),
        (Some(3), Some(2))
    );
    let a = &p.offers[0].offer;
    assert_eq!(
        (a.status, a.currency.as_deref()),
        (OfferStatus::Paused, Some("EUR"))
    );
    assert_eq!(
        a.countries,
        vec!["AT", "FR"],
        "excluded payment countries are not targets"
    );
    assert_eq!(p.offers[1].offer.external_id, "2");
    let last = s.parse(&page_at(3), &resp(200, r#"{"status": 1, "offers": [{"id": 5, "title": "E"}], "pagination": {"page": 3, "limit": 2, "total": 5}}"#)).unwrap();
    assert!(last.next.is_none());
    let next_false = s.parse(&page_at(1), &resp(200, r#"{"status": 1, "offers": [{"id": 5, "title": "E"}, {"id": 6, "title": "F"}], "pagination": {"page": 1, "per_page": 2, "total_count": 9, "next_page": false}}"#)).unwrap();
    assert!(next_false.next.is_none(), "next_page false ends the run");
    // status 2 with HTTP 200 and an object message; status 2 with 409 and an error string.
    let e = s
        .parse(
            &page_at(1),
            &resp(200, r#"{"status": 2, "message": {"offer": ["not found"]}}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(
        e.message.contains(r#"{"offer":["not found"]}"#),
        "{}",
        e.message
    );
    let e = s
        .parse(
            &page_at(1),
            &resp(409, r#"{"status": 2, "error": "Duplicate entity"}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    let e = s
        .parse(
            &page_at(1),
            &resp(429, r#"{"status": 2, "error": "Rate limit exceeded"}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::RateLimited);
}

#[test]
fn youmi_v1_offline_envelope_without_c_and_unknown_codes() {
    let s = source("kind = \"s2s\"\nbase_url = \"http://ad.api.yyapi.net/v1/offline\"\nos = \"ios\"\npage_size = 2");
    let req = s.request(&page_at(1));
    assert!(req
        .url
        .query_pairs()
        .any(|(k, v)| k == "app_id" && v == "secret_key_1"));
    assert!(
        !offersync::http::redact_url(&req.url).contains("secret_key_1"),
        "the app_id is redacted"
    );
    let p = s.parse(&page_at(1), &resp(200, r#"{"offers": [{"id": "77", "name": "X", "trackinglink": "http://t", "payout": 0.5, "country": "US,CA", "os": ["ios"]}], "total": 1, "page": 1, "page_size": 2, "adn": 1}"#)).unwrap();
    let o = &p.offers[0].offer;
    assert_eq!(
        (o.external_id.as_str(), o.tracking_url.as_deref()),
        ("77", Some("http://t"))
    );
    assert_eq!(o.countries, vec!["CA", "US"]);
    assert!(p.next.is_none());
    let e = s
        .parse(&page_at(1), &resp(200, r#"{"c": -9999, "msg": "???"}"#))
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Transient);
    let e = s
        .parse(
            &page_at(1),
            &resp(200, r#"{"c": -1202, "msg": "application unapproved"}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(e.message.contains("application not approved"));
}

#[test]
fn trackly_without_pagination_ends_on_a_short_page_and_rejects_bad_offers() {
    let s = source(
        "kind = \"trackly\"\nbase_url = \"https://app.tracklysms.com/api/v2\"\npage_size = 3",
    );
    assert_eq!(
        s.request(&page_at(1)).url.path(),
        "/api/v2/offers",
        "a trailing /v2 is not doubled"
    );
    let p = s
        .parse(
            &page_at(1),
            &resp(
                200,
                r#"{"offers": [
        {"id": "a", "name": "A", "payout": "2.50", "created_at": "2025-11-01T14:30:00"},
        {"name": "no id"},
        {"id": "c", "name": "C", "payout": {"amount": 1}}]}"#,
            ),
        )
        .unwrap();
    assert_eq!(p.offers.len(), 1);
    assert_eq!(
        p.offers[0].offer.payout.map(|d| d.to_string()),
        Some("2.5".into())
    );
    assert_eq!(p.rejected.len(), 2);
    assert_eq!(p.rejected[0].reason, "offer has no id");
    assert_eq!(p.rejected[1].external_id.as_deref(), Some("c"));
    assert_eq!(
        p.next.map(|c| c.page),
        Some(2),
        "a full page (3 of 3) without pagination: ask for more"
    );
    let short = s
        .parse(
            &page_at(2),
            &resp(200, r#"{"offers": [{"id": "d", "name": "D"}]}"#),
        )
        .unwrap();
    assert!(short.next.is_none(), "a short page ends the feed");
}

#[test]
fn generic_cursor_next_url_offset_basic_and_error_path() {
    let fields = "[sources.generic.fields]\nexternal_id = \"id\"\nname = \"n\"\npayout = \"p.0|decimal\"\nstarts_at = \"t|unix\"\ncountries = \"geo|upper|split\"";
    let cursor = source(&format!(
        "kind = \"generic\"\nbase_url = \"https://api.example/offers\"\npage_size = 2\n[sources.generic]\nrecords_path = \"items\"\nerror_path = \"err\"\n[sources.generic.auth]\ntype = \"basic\"\nusername = \"u\"\n[sources.generic.pagination]\ntype = \"cursor\"\ncursor_param = \"after\"\ncursor_path = \"meta.next\"\nsize_param = \"count\"\n{fields}"
    ));
    let first = cursor.request(&page_at(1));
    assert!(first.basic_auth.is_some() && !first.url.as_str().contains("after="));
    let p = cursor.parse(&page_at(1), &resp(200, r#"{"items": [{"id": 1, "n": "A", "p": ["1.10"], "t": 1735689600, "geo": "us,gb"}], "meta": {"next": "xyz"}}"#)).unwrap();
    let o = &p.offers[0].offer;
    assert_eq!(
        (o.payout.map(|d| d.to_string()), o.countries.clone()),
        (Some("1.1".into()), vec!["GB".to_string(), "US".into()])
    );
    assert_eq!(o.starts_at.map(|t| t.timestamp()), Some(1_735_689_600));
    let next = p.next.unwrap();
    assert_eq!(next.token.as_deref(), Some("xyz"));
    assert!(cursor
        .request(&next)
        .url
        .query_pairs()
        .any(|(k, v)| k == "after" && v == "xyz"));
    let end = cursor
        .parse(
            &page_at(2),
            &resp(
                200,
                r#"{"items": [{"id": 2, "n": "B"}], "meta": {"next": null}}"#,
            ),
        )
        .unwrap();
    assert!(end.next.is_none(), "no cursor: the end");
    let e = cursor
        .parse(
            &page_at(1),
            &resp(200, r#"{"err": "quota exceeded: rate limit", "items": []}"#),
        )
        .unwrap_err();
    assert_eq!(e.class, FailureClass::RateLimited);

    let next_url = source(&format!(
        "kind = \"generic\"\nbase_url = \"https://api.example/v1/offers\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.auth]\ntype = \"query\"\nname = \"token\"\n[sources.generic.pagination]\ntype = \"next_url\"\nnext_url_path = \"links.next\"\nhas_more_path = \"more\"\n{fields}"
    ));
    let p = next_url.parse(&page_at(1), &resp(200, r#"{"data": [{"id": "1", "n": "A"}], "links": {"next": "/v1/offers?page=2"}, "more": true}"#)).unwrap();
    let req = next_url.request(p.next.as_ref().unwrap());
    assert_eq!(req.url.path(), "/v1/offers");
    assert!(req.url.query_pairs().any(|(k, v)| k == "page" && v == "2"));
    assert!(
        req.url.query_pairs().any(|(k, _)| k == "token"),
        "auth still added"
    );
    let p = next_url.parse(&page_at(2), &resp(200, r#"{"data": [{"id": "2", "n": "B"}], "links": {"next": "/v1/offers?page=3"}, "more": false}"#)).unwrap();
    assert!(p.next.is_none(), "has_more false wins");

    let offset = source(&format!(
        "kind = \"generic\"\nbase_url = \"https://api.example/offers\"\npage_size = 50\n[sources.generic]\nrecords_path = \"rows\"\n[sources.generic.pagination]\ntype = \"offset\"\nsize_param = \"limit\"\ntotal_path = \"total\"\n{fields}"
    ));
    let q: Vec<(String, String)> = offset
        .request(&page_at(3))
        .url
        .query_pairs()
        .into_owned()
        .collect();
    assert!(
        q.contains(&("offset".into(), "100".into())) && q.contains(&("limit".into(), "50".into()))
    );
    let p = offset
        .parse(
            &page_at(3),
            &resp(200, r#"{"rows": [{"id": 1, "n": "A"}], "total": 101}"#),
        )
        .unwrap();
    assert_eq!((p.expected_pages, p.next.is_none()), (Some(3), true));
}

/// Found by the `parse_generic` fuzz target: a blank id became an offer with an empty
/// external_id. Every platform now rejects a blank id the same way.
#[test]
fn a_blank_id_is_rejected_by_every_platform() {
    let generic = source("kind = \"generic\"\nbase_url = \"https://api.example/offers\"\n[sources.generic]\nrecords_path = \"results\"\n[sources.generic.pagination]\ntype = \"page\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"name\"");
    let p = generic
        .parse(
            &page_at(1),
            &resp(
                200,
                r#"{"results": [{"id": " "}, {"id": "7", "name": "ok"}]}"#,
            ),
        )
        .unwrap();
    assert_eq!(p.offers.len(), 1);
    assert_eq!(p.offers[0].offer.external_id, "7");
    assert_eq!(p.rejected.len(), 1);
    assert!(!p.rejected[0].reason.is_empty());
    let trackly = source("kind = \"trackly\"\nbase_url = \"https://t.example/api\"");
    let p = trackly
        .parse(
            &page_at(1),
            &resp(
                200,
                r#"{"offers": [{"id": "  ", "name": "x"}], "pagination": {"total_pages": 1}}"#,
            ),
        )
        .unwrap();
    assert_eq!((p.offers.len(), p.rejected.len()), (0, 1));
    // Found by hand beside the fuzzer (fuzz/regressions/parse_offerslook/blank-id.json).
    let offerslook = source("kind = \"offerslook\"\napi = \"network\"\nendpoint = \"offers\"\nusername = \"u\"\nbase_url = \"https://n.example\"");
    let p = offerslook
        .parse(
            &page_at(1),
            &resp(
                200,
                r#"{"code": 0, "data": {"rowset": [{"id": " "}, {"id": 5, "name": "ok"}]}}"#,
            ),
        )
        .unwrap();
    assert_eq!(
        (p.offers.len(), p.rejected.len()),
        (1, 1),
        "{:?}",
        p.rejected
    );
}

/// fuzz/regressions/parse_affise/next-page-u64-max-overflow.bin: a platform naming the largest
/// page number overflowed `page + 1` (a panic with overflow checks, page 0 without).
#[test]
fn a_page_number_at_the_top_of_u64_does_not_overflow() {
    let s = source("kind = \"affise\"\nbase_url = \"https://api-x.affise.com\"\npage_size = 1");
    let p = s
        .parse(
            &page_at(1),
            &resp(200, r#"{"status": 1, "offers": [{"id": 1, "title": "A"}], "pagination": {"per_page": 1, "next_page": 18446744073709551615}}"#),
        )
        .unwrap();
    let next = p.next.unwrap();
    assert_eq!(next.page, u64::MAX);
    let past = s
        .parse(
            &next,
            &resp(200, r#"{"status": 1, "offers": [{"id": 2, "title": "B"}], "pagination": {"per_page": 1}}"#),
        )
        .unwrap_err();
    assert_eq!(past.class, FailureClass::Permanent, "{}", past.message);
}

/// fuzz/regressions/parse_generic/next-url-foreign-*.json: the credential goes with every
/// request, so a next URL on another scheme or host ends the run instead of being followed.
#[test]
fn a_next_url_to_another_origin_is_refused() {
    let s = source("kind = \"generic\"\nbase_url = \"https://api.example/v1/offers\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.auth]\ntype = \"query\"\nname = \"api_key\"\n[sources.generic.pagination]\ntype = \"next_url\"\nnext_url_path = \"next\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"n\"");
    let body = |next: &str| format!(r#"{{"data": [{{"id": "1", "n": "A"}}], "next": "{next}"}}"#);
    for foreign in [
        "https://collector.attacker.example/v1/offers?page=2",
        "http://api.example/v1/offers?page=2",
        "http3://api.example/v1/offers?page=2",
        "//evil.example/x",
    ] {
        let e = s
            .parse(&page_at(1), &resp(200, &body(foreign)))
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent, "{foreign}");
        assert!(
            e.message.contains("origin") && !e.message.contains("secret_key_1"),
            "{}",
            e.message
        );
    }
    for same in [
        "/v1/offers?page=2",
        "https://api.example/v2/offers?cursor=x",
    ] {
        let p = s.parse(&page_at(1), &resp(200, &body(same))).unwrap();
        assert!(p.next.is_some(), "{same}");
    }
}
