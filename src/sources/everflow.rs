//! Everflow affiliate API (`kind = "everflow"`), see APIS.md §8.2 and §6.
//!
//! `GET {base_url}/v1/affiliates/offersrunnable` (approved and public offers) or
//! `/v1/affiliates/alloffers` (`listing = "all"`) with `page` (1-based) and `page_size`, and the
//! `X-Eflow-API-Key` header. Envelope `{offers: [..], paging: {page, page_size, total_count}}`;
//! the run ends when `page * page_size >= total_count` or `offers` is empty (**an empty page is
//! a valid answer**, not a failure). Rows: `network_offer_id`, `name`, `offer_status`,
//! `currency_id`, `tracking_url`, `preview_url`, `thumbnail_url`; payouts come from
//! `relationship.payouts.entries[]` (`payout_type` `cpa|cpc|cpm|cps|cpa_cps`, `payout_amount`,
//! `payout_percentage`): the first entry is the offer's payout. A `cps` entry is a percentage
//! of the sale, never an amount: it sets `payout_type` CPS and leaves `payout` empty (the
//! percentage stays in `raw`); `cpa_cps` is a CPA amount with a share on top. Countries are the
//! `relationship.ruleset.countries[]` whose `targeting_type` is `include`; excluded ones are not
//! countries (they stay in `raw`). An offer whose `relationship.offer_affiliate_status` is not
//! `public`/`approved` has no usable tracking link: it is kept without one. Errors are
//! `{"error": ".."}` with 400/401/403/404/429/500; 429 comes without `Retry-After` (the window
//! is 30 s and every answer carries `X-RateLimit-Limit/Remaining`, read by the HTTP layer).

use super::lenient::{opt_decimal, opt_string, opt_u64};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{EverflowListing, PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{Cap, Offer, OfferStatus, PayoutTier, PayoutType, PayoutUnit, SourceApproval};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Everflow {
    url: Url,
    api_key: Secret,
    page_size: u32,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    offers: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    paging: Option<Paging>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Paging {
    #[serde(default, deserialize_with = "opt_u64")]
    page_size: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    network_offer_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default)]
    offer_status: Option<String>,
    #[serde(default)]
    currency_id: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default)]
    thumbnail_url: Option<String>,
    #[serde(default)]
    relationship: Option<Relationship>,
    /// Caps "as ints" (APIS.md §8.2; Everflow's names), 0 meaning none.
    #[serde(default, deserialize_with = "opt_decimal")]
    daily_conversion_cap: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    monthly_conversion_cap: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    global_conversion_cap: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    daily_payout_cap: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    monthly_payout_cap: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    global_payout_cap: Option<Decimal>,
}

#[derive(Deserialize, Default)]
struct Relationship {
    #[serde(default)]
    offer_affiliate_status: Option<String>,
    #[serde(default)]
    payouts: Option<Payouts>,
    #[serde(default)]
    ruleset: Option<Ruleset>,
}

#[derive(Deserialize, Default)]
struct Payouts {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    payout_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    payout_percentage: Option<Decimal>,
}

#[derive(Deserialize, Default)]
struct Ruleset {
    #[serde(default)]
    countries: Vec<Targeting>,
}

#[derive(Deserialize)]
struct Targeting {
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    targeting_type: Option<String>,
}

/// An error's text: a string, or anything else as JSON.
fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// The canonical type of an Everflow payout type, and whether its amount is one (a `cps`
/// payout is a percentage of the sale).
fn payout_kind(t: Option<&str>) -> (Option<PayoutType>, bool) {
    match t.map(str::to_ascii_lowercase).as_deref() {
        None => (None, true),
        Some("cps") => (Some(PayoutType::Cps), false),
        // A CPA amount with a revenue share on top: the amount is the payout.
        Some("cpa_cps") => (Some(PayoutType::Cpa), true),
        Some(t) => (Some(PayoutType::from_platform(t)), true),
    }
}

impl Everflow {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Everflow, String> {
        let PlatformOptions::Everflow { listing } = &cfg.options else {
            return Err("not an Everflow source".into());
        };
        let path = match listing {
            EverflowListing::Runnable => "v1/affiliates/offersrunnable",
            EverflowListing::All => "v1/affiliates/alloffers",
        };
        let url = Url::parse(&format!("{}/{path}", cfg.base_url.trim_end_matches('/')))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Everflow {
            url,
            api_key,
            page_size: cfg.page_size,
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/network_offer_id"),
            reason: format!("offer does not match Everflow's offer shape: {e}"),
        })?;
        let id = super::require_id(r.network_offer_id)?;
        let mut o = Offer::new(id, r.name.unwrap_or_default());
        o.status = match r.offer_status.as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        let rel = r.relationship.unwrap_or_default();
        let entries = rel.payouts.map(|p| p.entries).unwrap_or_default();
        if let Some(first) = entries.first() {
            let (kind, is_amount) = payout_kind(first.payout_type.as_deref());
            o.payout_type = kind;
            if is_amount {
                o.payout = first.payout_amount;
            } else {
                // `cps`: a share of the sale, never an amount.
                o.payout = first.payout_percentage;
                o.payout_unit = PayoutUnit::Percent;
            }
        }
        o.currency = r.currency_id.clone();
        if entries.len() > 1 {
            o.payouts = entries
                .iter()
                .map(|e| PayoutTier {
                    payout: e
                        .payout_amount
                        .filter(|_| payout_kind(e.payout_type.as_deref()).1)
                        .map(|d| d.to_string()),
                    revenue: None,
                    currency: r.currency_id.clone(),
                    countries: Vec::new(),
                    kind: e.payout_type.clone(),
                    goal: None,
                    title: None,
                })
                .collect();
        }
        let ruleset = rel.ruleset.unwrap_or_default();
        let (excluded, allowed): (Vec<_>, Vec<_>) = ruleset.countries.into_iter().partition(
            |c| matches!(c.targeting_type.as_deref(), Some(t) if t.eq_ignore_ascii_case("exclude")),
        );
        o.countries = allowed.into_iter().filter_map(|c| c.country_code).collect();
        o.excluded_countries = excluded
            .into_iter()
            .filter_map(|c| c.country_code)
            .collect();
        o.approval = match rel.offer_affiliate_status.as_deref() {
            None => None,
            Some("public") | Some("approved") => Some(SourceApproval::Approved),
            Some("require_approval") => Some(SourceApproval::RequiresApproval),
            Some("pending") => Some(SourceApproval::Pending),
            Some("rejected") => Some(SourceApproval::Rejected),
            Some(_) => Some(SourceApproval::RequiresApproval),
        };
        let runnable = SourceApproval::runnable(o.approval);
        o.tracking_url = r.tracking_url.filter(|_| runnable);
        for (period, kind, v) in [
            ("daily", "conversions", r.daily_conversion_cap),
            ("monthly", "conversions", r.monthly_conversion_cap),
            ("lifetime", "conversions", r.global_conversion_cap),
            ("daily", "budget", r.daily_payout_cap),
            ("monthly", "budget", r.monthly_payout_cap),
            ("lifetime", "budget", r.global_payout_cap),
        ] {
            if let Some(v) = v.filter(|v| *v > Decimal::ZERO) {
                o.caps.push(Cap::new(period, kind, v.normalize()));
            }
        }
        o.preview_url = r.preview_url;
        o.icon_url = r.thumbnail_url;
        Ok(o)
    }

    fn error(&self, resp: &HttpResponse, env: &Envelope<'_>) -> Failure {
        let detail = text(&env.error)
            .or_else(|| text(&env.message))
            .unwrap_or_else(|| "no message".into());
        let msg = format!("Everflow answered HTTP {}: {detail}", resp.status.as_u16());
        Failure::in_body(resp, None, FailureClass::Permanent, msg)
    }
}

impl Source for Everflow {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("page", &cursor.page.to_string())
            .append_pair("page_size", &self.page_size.to_string());
        HttpRequest::get(url).secret_header("x-eflow-api-key", &self.api_key)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("Everflow")?;
        if !resp.status.is_success() || (env.offers.is_none() && env.error.is_some()) {
            return Err(self.error(resp, &env));
        }
        let Some(rows) = &env.offers else {
            return Err(Failure::transient(format!(
                "Everflow answered HTTP {} without an offers array: {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            )));
        };
        let paging = env.paging.unwrap_or_default();
        let page_size = paging
            .page_size
            .filter(|n| *n > 0)
            .unwrap_or(self.page_size as u64);
        // An empty page is a valid end (an importer that fails on it misses whole catalogues).
        Ok(super::counted_page(
            super::own_rows(rows),
            cursor,
            page_size,
            paging.total_count,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{page, query, resp, resp_with, source, KEY};
    use crate::http::FailureClass;
    use crate::model::{OfferStatus, PayoutType};

    fn everflow(extra: &str) -> Box<dyn super::Source> {
        source(&format!(
            "kind = \"everflow\"\nbase_url = \"https://api.eflow.team\"\npage_size = 50\n{extra}"
        ))
    }

    /// APIS.md §8.2's envelope, with one row of the documented offer fields.
    const ENVELOPE: &str = r#"{"offers":[{"network_offer_id":4521,"name":"Summer Promo",
        "offer_status":"active","currency_id":"USD","tracking_url":"https://trk.example/c?o=4521",
        "preview_url":"https://adv.example","thumbnail_url":"https://cdn.example/4521.png",
        "time_saved":1735689600,
        "relationship":{"offer_affiliate_status":"approved",
          "payouts":{"entries":[{"payout_type":"cpa","payout_amount":2.5,"payout_percentage":0}]},
          "ruleset":{"countries":[{"country_code":"US","targeting_type":"include"},
                                  {"country_code":"CN","targeting_type":"exclude"}]}}}],
        "paging":{"page":1,"page_size":50,"total_count":1234}}"#;

    #[test]
    fn requests_ask_for_the_page_with_the_key_in_its_header() {
        let req = everflow("").request(&page(3));
        assert_eq!(req.url.path(), "/v1/affiliates/offersrunnable");
        assert_eq!(
            query(&req),
            [
                ("page".into(), "3".into()),
                ("page_size".into(), "50".into())
            ]
        );
        let h = req.headers.get("x-eflow-api-key").unwrap();
        assert!(h.is_sensitive() && h.to_str().unwrap() == KEY);
        let all = everflow("listing = \"all\"").request(&page(1));
        assert_eq!(all.url.path(), "/v1/affiliates/alloffers");
    }

    #[test]
    fn the_documented_envelope_parses() {
        let p = everflow("").parse(&page(1), &resp(200, ENVELOPE)).unwrap();
        assert_eq!(p.rejected, vec![]);
        assert_eq!(p.expected_pages, Some(25), "1234 offers in pages of 50");
        assert_eq!(p.next, Some(page(2)));
        let o = &p.offers[0].offer;
        assert_eq!(
            (o.external_id.as_str(), o.name.as_str()),
            ("4521", "Summer Promo")
        );
        assert_eq!(o.status, OfferStatus::Active);
        assert_eq!(o.payout.map(|d| d.to_string()).as_deref(), Some("2.5"));
        assert_eq!(
            (o.payout_type, o.currency.as_deref()),
            (Some(PayoutType::Cpa), Some("USD"))
        );
        assert_eq!(o.countries, ["US"], "an excluded country is not a country");
        assert_eq!(
            o.tracking_url.as_deref(),
            Some("https://trk.example/c?o=4521")
        );
        assert_eq!(o.icon_url.as_deref(), Some("https://cdn.example/4521.png"));
        assert!(p.offers[0].raw.contains("\"targeting_type\":\"exclude\""));
        // The last page: page * page_size >= total_count.
        let last = everflow("").parse(&page(25), &resp(200, ENVELOPE)).unwrap();
        assert_eq!(last.next, None);
    }

    #[test]
    fn an_empty_offers_array_is_a_valid_end() {
        let body = r#"{"offers":[],"paging":{"page":3,"page_size":50,"total_count":0}}"#;
        let p = everflow("").parse(&page(3), &resp(200, body)).unwrap();
        assert!(p.offers.is_empty() && p.rejected.is_empty() && p.next.is_none());
        let p = everflow("")
            .parse(&page(1), &resp(200, r#"{"offers":[]}"#))
            .unwrap();
        assert!(p.next.is_none());
    }

    #[test]
    fn percentage_payouts_are_never_amounts_and_unapproved_offers_have_no_link() {
        let body = r#"{"offers":[
          {"network_offer_id":1,"name":"Share","offer_status":"paused","currency_id":"EUR",
           "tracking_url":"","relationship":{"offer_affiliate_status":"require_approval",
           "payouts":{"entries":[{"payout_type":"cps","payout_amount":0,"payout_percentage":30}]}}},
          {"network_offer_id":"2","name":"Both","offer_status":"deleted","currency_id":"USD",
           "tracking_url":"https://t/2","relationship":{"offer_affiliate_status":"pending",
           "payouts":{"entries":[{"payout_type":"cpa_cps","payout_amount":"1.20","payout_percentage":5},
                                 {"payout_type":"cps","payout_amount":0,"payout_percentage":10}]}}}],
          "paging":{"page":1,"page_size":50,"total_count":2}}"#;
        let p = everflow("").parse(&page(1), &resp(200, body)).unwrap();
        let (a, b) = (&p.offers[0].offer, &p.offers[1].offer);
        assert_eq!(
            (a.payout, a.payout_type, a.payout_unit),
            (
                Some(rust_decimal::Decimal::from(30)),
                Some(PayoutType::Cps),
                crate::model::PayoutUnit::Percent
            ),
            "30 % is not 30 EUR"
        );
        assert_eq!(
            (a.status, a.tracking_url.as_deref()),
            (OfferStatus::Paused, None)
        );
        assert!(p.offers[0].raw.contains("\"payout_percentage\":30"));
        assert_eq!(b.payout.map(|d| d.to_string()).as_deref(), Some("1.2"));
        assert_eq!(
            (b.payout_type, b.status),
            (Some(PayoutType::Cpa), OfferStatus::Expired)
        );
        assert_eq!(b.tracking_url, None, "pending approval: no usable link");
        let tiers: Vec<_> = b
            .payouts
            .iter()
            .map(|t| (t.kind.as_deref(), t.payout.as_deref()))
            .collect();
        assert_eq!(
            tiers,
            [(Some("cps"), None), (Some("cpa_cps"), Some("1.2"))],
            "sorted"
        );
        assert_eq!(p.next, None);
    }

    #[test]
    fn errors_keep_the_platforms_words_and_429_is_a_rate_limit() {
        let e = everflow("")
            .parse(
                &page(1),
                &resp(401, r#"{"error":"No Authentication Method Found"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(
            e.message,
            "Everflow answered HTTP 401: No Authentication Method Found"
        );
        let limited = resp_with(
            429,
            &[("x-ratelimit-limit", "150"), ("x-ratelimit-remaining", "0")],
            r#"{"error":"Too many requests"}"#,
        );
        let e = everflow("").parse(&page(2), &limited).unwrap_err();
        assert_eq!((e.class, e.retry_after), (FailureClass::RateLimited, None));
        for status in [400, 403, 404] {
            let e = everflow("")
                .parse(&page(1), &resp(status, r#"{"error":"x"}"#))
                .unwrap_err();
            assert_eq!(e.class, FailureClass::Permanent, "{status}");
        }
        let e = everflow("")
            .parse(&page(1), &resp(500, r#"{"error":"boom"}"#))
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Transient);
    }

    #[test]
    fn a_row_without_an_id_or_of_the_wrong_shape_is_rejected_alone() {
        let body = r#"{"offers":[{"name":"no id"},{"network_offer_id":7,"relationship":"none"},
            {"network_offer_id":8,"name":"ok"}],"paging":{"page":1,"page_size":50,"total_count":3}}"#;
        let p = everflow("").parse(&page(1), &resp(200, body)).unwrap();
        assert_eq!(p.offers.len(), 1);
        assert_eq!(p.rejected[0].reason, "offer has no id");
        assert_eq!(p.rejected[1].external_id.as_deref(), Some("7"));
    }
}
