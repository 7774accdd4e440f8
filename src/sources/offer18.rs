//! Offer18 affiliate offers API (`kind = "offer18"`), see APIS.md §8.5 and §6.
//!
//! `GET {base_url}/api/af/offers?key=KEY&aid=..&mid=..&page=P&limit=M&offer_status=1&authorized=1`
//! (`authorized=1`: approved offers only; `authorized_only = false` drops it). **The key is a
//! query parameter** (redacted from every URL shown). Pages are numbered from 0 by production
//! clients and from 1 in the docs' example ([CONFLICT]): `first_page` says which (default 0, so
//! that a mismatch shows as a repeated or empty first page instead of a page silently skipped);
//! the cursor stays 1-based. The envelope is `{response: "200", data: {"<offerid>": {..}}}`:
//! **`data` is an object keyed by offer id** and `response` a string; numbers are strings. The
//! run ends on a page with fewer offers than `limit`, or an empty `data`. Errors are
//! `{response: "400", error: ".."}` at HTTP 200 or a 4xx: the `response` code classifies them
//! like an HTTP status. Offers: `offerid`, `name`, `status`, `currency`, `price`, `model`,
//! `preview_url`, `tracking_link`, `country_allow` ("IN,US": the countries), `country_block`
//! (excluded countries, **not** countries: `excluded_countries`), `capping[]` (caps), `payout[]`.

use super::lenient::{opt_decimal, opt_string, string_list, KeyedRows};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{cap_period, Cap, Offer, OfferStatus, PayoutTier, PayoutType};
use reqwest::{StatusCode, Url};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Offer18 {
    url: Url,
    api_key: Secret,
    limit: u32,
    params: Vec<(&'static str, String)>,
    first_page: u64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, deserialize_with = "opt_string")]
    response: Option<String>,
    #[serde(borrow, default)]
    data: Option<KeyedRows<'a>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    offerid: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    price: Option<Decimal>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default)]
    tracking_link: Option<String>,
    #[serde(default)]
    country_allow: Option<Value>,
    #[serde(default)]
    country_block: Option<Value>,
    #[serde(default)]
    capping: Option<Value>,
    #[serde(default)]
    payout: Option<Value>,
}

/// One `capping[]` entry; its shape is undocumented beyond the list (APIS.md §8.5), read as
/// `{type: daily|monthly|lifetime, value}` and skipped when it is not that.
#[derive(Deserialize)]
struct Capping {
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    period: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    value: Option<Decimal>,
}

#[derive(Deserialize)]
struct Payout {
    #[serde(default, deserialize_with = "opt_decimal")]
    price: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_string")]
    condition: Option<String>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

impl Offer18 {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Offer18, String> {
        let PlatformOptions::Offer18 {
            affiliate_id,
            network_id,
            first_page,
            authorized_only,
        } = &cfg.options
        else {
            return Err("not an Offer18 source".into());
        };
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/api/af/offers").unwrap_or(base);
        let url = Url::parse(&format!("{base}/api/af/offers"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        let mut params = vec![
            ("aid", affiliate_id.clone()),
            ("mid", network_id.clone()),
            ("offer_status", "1".to_string()),
        ];
        if *authorized_only {
            params.push(("authorized", "1".into()));
        }
        Ok(Offer18 {
            url,
            api_key,
            limit: cfg.page_size,
            params,
            first_page: *first_page,
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/offerid"),
            reason: format!("offer does not match Offer18's offer shape: {e}"),
        })?;
        let id = super::require_id(r.offerid)?;
        let mut o = Offer::new(id, r.name.unwrap_or_default());
        o.status = match r.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("active") | Some("1") | None => OfferStatus::Active,
            Some("paused") | Some("inactive") | Some("0") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("expired") | Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        o.payout = r.price;
        o.payout_type = r.model.as_deref().map(PayoutType::from_platform);
        o.currency = r.currency.clone();
        let payouts: Vec<Payout> = match &r.payout {
            Some(v @ Value::Array(_)) => {
                serde_json::from_value(v.clone()).map_err(|e| Rejected {
                    external_id: Some(o.external_id.clone()),
                    reason: format!("payout[] does not match Offer18's payout shape: {e}"),
                })?
            }
            _ => Vec::new(),
        };
        if payouts.len() > 1 {
            o.payouts = payouts
                .into_iter()
                .map(|p| PayoutTier {
                    payout: p.price.map(|d| d.to_string()),
                    revenue: None,
                    currency: r.currency.clone(),
                    countries: Vec::new(),
                    kind: r.model.clone(),
                    goal: None,
                    title: p.condition,
                })
                .collect();
        }
        o.countries = r
            .country_allow
            .as_ref()
            .map(string_list)
            .unwrap_or_default();
        o.excluded_countries = r
            .country_block
            .as_ref()
            .map(string_list)
            .unwrap_or_default();
        if let Some(Value::Array(caps)) = &r.capping {
            for c in caps {
                let Ok(c) = serde_json::from_value::<Capping>(c.clone()) else {
                    continue;
                };
                if let (Some(period), Some(v)) = (c.period.as_deref().and_then(cap_period), c.value)
                {
                    if v > Decimal::ZERO {
                        o.caps.push(Cap::new(period, "conversions", v.normalize()));
                    }
                }
            }
        }
        o.tracking_url = r.tracking_link;
        o.preview_url = r.preview_url;
        Ok(o)
    }

    fn error(&self, resp: &HttpResponse, env: &Envelope<'_>) -> Failure {
        let code = env.response.as_deref().unwrap_or("(none)");
        let detail = text(&env.error)
            .or_else(|| text(&env.message))
            .unwrap_or_else(|| "no message".into());
        let msg = format!(
            "Offer18 answered HTTP {} with response {code}: {detail}",
            resp.status.as_u16()
        );
        // The `response` code reads like an HTTP status.
        let class = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .filter(|c| !c.is_success())
            .map(|c| FailureClass::of_status(c, None));
        let words = FailureClass::of_message(&detail);
        Failure::in_body(resp, words.or(class), FailureClass::Permanent, msg)
    }
}

impl Source for Offer18 {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("key", self.api_key.expose());
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
            let page = cursor
                .page
                .saturating_sub(1)
                .saturating_add(self.first_page);
            q.append_pair("page", &page.to_string());
            q.append_pair("limit", &self.limit.to_string());
        }
        HttpRequest::get(url)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("Offer18")?;
        let ok = matches!(env.response.as_deref(), Some("200") | None) && env.error.is_none();
        if !resp.status.is_success() || !ok {
            return Err(self.error(resp, &env));
        }
        let rows = env.data.unwrap_or_default().0;
        let end = (rows.len() as u64) < self.limit as u64;
        Ok(RowsPage {
            rows: super::own_rows(&rows),
            next: (!end).then(|| cursor.next_page()),
            expected_pages: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{page, query, resp, source, KEY};
    use crate::http::FailureClass;
    use crate::model::{OfferStatus, PayoutType};

    fn offer18(extra: &str) -> Box<dyn super::Source> {
        source(&format!(
            "kind = \"offer18\"\nbase_url = \"https://api.offer18.com\"\naffiliate_id = \"12345\"\nnetwork_id = \"678\"\npage_size = 2\n{extra}"
        ))
    }

    /// APIS.md §8.5's envelope, `…` filled minimally.
    const ENVELOPE: &str = r#"{"response":"200","data":{"123":{"offerid":"123","name":"Shop IN","status":"active",
  "currency":"USD","price":"2.50","model":"CPA","preview_url":"https://shop.example","tracking_link":"https://trk.offer18.example/c?o=123",
  "country_allow":"IN,US","country_block":"CN","capping":[{"type":"daily","value":"100"}],"payout":[{"price":"2.50","condition":"Sale"}]}}}"#;

    #[test]
    fn requests_carry_the_key_the_ids_and_the_page_numbered_as_configured() {
        let req = offer18("").request(&page(1));
        assert_eq!(req.url.path(), "/api/af/offers");
        let q = query(&req);
        for pair in [
            ("key", KEY),
            ("aid", "12345"),
            ("mid", "678"),
            ("offer_status", "1"),
            ("authorized", "1"),
            ("page", "0"),
            ("limit", "2"),
        ] {
            assert!(
                q.contains(&(pair.0.into(), pair.1.into())),
                "{pair:?} in {q:?}"
            );
        }
        let shown = crate::http::redact_url(&req.url);
        assert!(!shown.contains(KEY) && shown.contains("key=***"), "{shown}");
        // The docs' numbering: the cursor's first page is page=1 on the wire.
        let q = query(&offer18("first_page = 1\nauthorized_only = false").request(&page(3)));
        assert!(q.contains(&("page".into(), "3".into())), "{q:?}");
        assert!(!q.iter().any(|(k, _)| k == "authorized"));
    }

    #[test]
    fn the_documented_envelope_parses() {
        let p = offer18("").parse(&page(1), &resp(200, ENVELOPE)).unwrap();
        assert_eq!(p.rejected, vec![]);
        assert_eq!(p.next, None, "one offer where limit is 2: the last page");
        let o = &p.offers[0].offer;
        assert_eq!(
            (o.external_id.as_str(), o.name.as_str(), o.status),
            ("123", "Shop IN", OfferStatus::Active)
        );
        assert_eq!(
            o.payout.map(|d| d.to_string()).as_deref(),
            Some("2.5"),
            "a string number"
        );
        assert_eq!(
            (o.payout_type, o.currency.as_deref()),
            (Some(PayoutType::Cpa), Some("USD"))
        );
        assert_eq!(o.countries, ["IN", "US"], "country_block is not a country");
        assert_eq!(o.excluded_countries, ["CN"]);
        assert_eq!(
            o.caps,
            [crate::model::Cap::new("daily", "conversions", 100)]
        );
        assert_eq!(
            o.tracking_url.as_deref(),
            Some("https://trk.offer18.example/c?o=123")
        );
        assert_eq!(o.preview_url.as_deref(), Some("https://shop.example"));
        assert!(
            p.offers[0].raw.contains("\"country_block\":\"CN\""),
            "raw is the row under its id"
        );
    }

    #[test]
    fn a_full_page_asks_for_the_next_and_an_empty_data_ends() {
        let body = r#"{"response":"200","data":{"1":{"offerid":"1","name":"a","status":"1","price":"1","payout":[
            {"price":"1.00","condition":"Install"},{"price":"3.00","condition":"Purchase"}]},
            "2":{"offerid":2,"name":"b","status":"0","price":0.5,"model":"cpi","currency":"inr","tracking_link":""}}}"#;
        let p = offer18("").parse(&page(1), &resp(200, body)).unwrap();
        assert_eq!(
            p.next,
            Some(page(2)),
            "2 offers where limit is 2: maybe more"
        );
        let (a, b) = (&p.offers[0].offer, &p.offers[1].offer);
        let tiers: Vec<_> = a
            .payouts
            .iter()
            .map(|t| (t.payout.as_deref(), t.title.as_deref()))
            .collect();
        assert_eq!(
            tiers,
            [(Some("1"), Some("Install")), (Some("3"), Some("Purchase"))]
        );
        assert_eq!(
            (b.status, b.payout_type, b.currency.as_deref()),
            (OfferStatus::Paused, Some(PayoutType::Cpi), Some("INR"))
        );
        assert_eq!(b.tracking_url, None, "an empty tracking link: not approved");
        for empty in [
            r#"{"response":"200","data":[]}"#,
            r#"{"response":"200","data":{}}"#,
            r#"{"response":200,"data":false}"#,
        ] {
            let p = offer18("").parse(&page(2), &resp(200, empty)).unwrap();
            assert!(p.offers.is_empty() && p.next.is_none(), "{empty}");
        }
    }

    #[test]
    fn errors_are_classified_by_their_response_code() {
        let s = offer18("");
        let e = s
            .parse(
                &page(1),
                &resp(200, r#"{"response":"400","error":"aid is required"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(
            e.message,
            "Offer18 answered HTTP 200 with response 400: aid is required"
        );
        let e = s
            .parse(
                &page(1),
                &resp(200, r#"{"response":"500","error":"database busy"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Transient);
        let e = s
            .parse(
                &page(1),
                &resp(403, r#"{"response":"403","error":"forbidden"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        let e = s
            .parse(
                &page(1),
                &resp(200, r#"{"response":"429","error":"slow down"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::RateLimited);
        let e = s
            .parse(
                &page(1),
                &resp(200, r#"{"response":"401","error":"Invalid key"}"#),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
    }
}
