//! The config loader: arbitrary bytes (lossily decoded as UTF-8) through
//! `Config::from_toml_str`, which runs the TOML parser, the `config` crate, serde with
//! `deny_unknown_fields`, and every validation (names, URLs, cron schedules, page sizes,
//! credentials, generic specs, targets).
//!
//! When a config is accepted, the harness also checks that what validation promised holds:
//! every source has a valid name, a page size in range and builds (`sources::build`) into a
//! source whose requests for the first, a later and a token cursor do not panic and are http(s);
//! the built source parses a realistic page of its kind without panicking and under the same
//! invariants as the parse targets; every target's fingerprint and HTTP policy can be computed.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use offersync::config::{Config, Secret, SourceKind};
use offersync::sources::{build, Cursor};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::path::Path;

/// One realistic page per kind, parsed by every accepted source of that kind.
fn sample_body(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Trackly => {
            r#"{"offers":[{"id":"65a1b2c3d4e5f6a7b8c9d0e1","name":"Offer 1","tracking_url":"https://track.example/click?o=1","advertiser_id":"adv-7","payout":1.25,"payout_type":"cpa","status":"active","metadata":{"geo":"US,GB","vertical":"Games"}}],"pagination":{"page":1,"per_page":1,"total":3,"total_pages":3}}"#
        }
        SourceKind::Offerslook => {
            r#"{"code":0,"message":"Success","data":{"rowset":[{"id":10001,"name":"Game X","status":"active","payout":"0.96","currency":"USD","tracking_link":null,"category":"Games,Mobile","start_date":1735689600},{"offer":{"id":10002,"name":"Game Y","payout":1.2},"offer_geo":{"type":"include","target":[{"country_code":"US"},{"country_code":["CA"]}]},"offer_platform":{"target":[{"system":"Android"}]}}],"totalPages":3,"totalRows":5,"offset":1,"limit":2}}"#
        }
        SourceKind::S2s => {
            r#"{"c":0,"d":{"p":1,"n":1,"tot":28,"data":[{"id":2957231058,"icon":"","name":"Plus500","tracking_link":"","payout":"3.60","package":"com.Plus500","payout_type":"fixed","os":"android","countries":["US"]}]},"offers":[{"id":"7","trackinglink":"http://t"}],"total":3}"#
        }
        SourceKind::Affise => {
            r#"{"status":1,"offers":[{"id":331,"title":"Offer title","url":"https://adv.example/click","link":"http://affise.tds/click?pid=610","status":"active","payments":[{"countries":["kz"],"revenue":500,"total":1000,"currency":"usd","type":"fixed","goal":"1"}],"targeting":[{"country":{"allow":["us"],"deny":[]}}],"categories":["Gaming"],"is_cpi":false,"start_at":"2018-11-06 12:35:00","stop_at":""}],"pagination":{"per_page":1,"total_count":176,"page":1,"next_page":2}}"#
        }
        SourceKind::Everflow => {
            r#"{"offers":[{"network_offer_id":4521,"name":"Summer","offer_status":"active","currency_id":"USD","tracking_url":"https://t/1","relationship":{"offer_affiliate_status":"approved","payouts":{"entries":[{"payout_type":"cpa","payout_amount":2.5,"payout_percentage":0}]},"ruleset":{"countries":[{"country_code":"US","targeting_type":"include"}]}}}],"paging":{"page":1,"page_size":1,"total_count":3}}"#
        }
        SourceKind::HasOffers => {
            r#"{"response":{"status":1,"httpStatus":200,"data":{"page":1,"current":1,"count":3,"pageCount":3,"data":{"4521":{"Offer":{"id":"4521","name":"Summer","default_payout":"2.50","payout_type":"cpa_flat","currency":null,"status":"active","require_approval":"0"},"Country":{"US":{"id":"840","code":"US","name":"United States"}},"TrackingLink":{"click_url":"https://t/1"}}}},"errors":[],"errorMessage":null}}"#
        }
        SourceKind::Trackier => {
            r#"{"success":true,"data":{"campaigns":[{"id":812,"title":"Summer","status":"active","currency":null,"model":"cps","payouts":[{"payout":30,"geo":["US"]}],"countries":["US"],"tracking_link":""}],"page":1,"count":3}}"#
        }
        SourceKind::Offer18 => {
            r#"{"response":"200","data":{"123":{"offerid":"123","name":"Shop","status":"active","currency":"USD","price":"2.50","model":"CPA","country_allow":"IN,US","country_block":"CN","payout":[{"price":"2.50","condition":"Sale"}]}}}"#
        }
        SourceKind::Cake => {
            r#"<offer_feed_response><success>true</success><row_count>3</row_count><offers><offer><offer_id>123</offer_id><campaign_id>789</campaign_id><offer_name>Loans</offer_name><offer_status><status_name>Active</status_name></offer_status><payout>€1,20</payout><price_format>CPA</price_format></offer></offers></offer_feed_response>"#
        }
        SourceKind::Generic => {
            r#"{"offers":[{"id":"a1","name":"A","status":"active","payout":"1.5","metadata":{"countries":"US,de"}}],"data":{"9001":{"offerid":"9001","name":"Shop","status":"1","price":"45.5","country_allow":"IN,US"},"items":[{"id":3,"title":"T"}]},"results":[{"id":"r1","name":"R"}],"pagination":{"total_pages":4,"total":7},"meta":{"next_cursor":"abc","pages":3},"links":{"next":"/v3/offers/?page=2"},"count":9}"#
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = Config::from_toml_str(&text, Path::new("fuzz.toml")) else {
        return;
    };
    for s in &cfg.sources {
        assert!(
            !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "accepted source name {:?}",
            s.name
        );
        let (max, _) = s.options.page_limits();
        assert!(
            s.page_size >= 1 && s.page_size <= max,
            "accepted page_size {} (max {max})",
            s.page_size
        );
        assert!(offersync::config::validate_cron(&s.schedule).is_ok());
        let src = match build(s, Secret::new(common::SECRET)) {
            Ok(src) => src,
            Err(e) => {
                if common::ignored("build-after-validate") {
                    continue;
                }
                panic!("a validated source does not build: {e}");
            }
        };
        let first = src.first_cursor();
        for cursor in [
            first.clone(),
            Cursor {
                pass: 1,
                page: 7,
                token: None,
            },
            Cursor {
                pass: 0,
                page: 2,
                token: Some("https://other.example/next?page=2".into()),
            },
            Cursor {
                pass: 0,
                page: 3,
                token: Some("../page/3?x=1".into()),
            },
        ] {
            common::check_request(&src.request(&cursor));
        }
        let resp = offersync::http::HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: bytes::Bytes::from_static(sample_body(s.kind).as_bytes()),
        };
        common::exercise(src.as_ref(), &first, &[resp.clone(), resp], &|_| {});
    }
    for t in &cfg.targets {
        let _ = t.plan_fingerprint();
        let _ = &t.http;
    }
});
