//! HasOffers / TUNE affiliate API (`kind = "hasoffers"`), see APIS.md §8.1 and §6.
//!
//! `GET {base_url}/Apiv3/json?api_key=KEY&Target=Affiliate_Offer&Method=findAll` (or
//! `findMyApprovedOffers`) with `sort[id]=asc`, `limit`, `page` (1-based) and `contain[]=Country`,
//! `OfferCategory`, `TrackingLink`. **The key is a query parameter** (redacted from every URL
//! shown). Envelope `{response: {status, httpStatus, data: {page, current, count, pageCount,
//! data: {"<id>": {Offer, Country, OfferCategory, TrackingLink}}}, errors, errorMessage}}`:
//! `data.data` is an object keyed by offer id, `[]` or `false` when empty, and numbers are
//! strings. The run ends when `page >= pageCount` or a page has no rows. Errors come with HTTP
//! 200 and `response.status != 1`, the text in `errorMessage` / `errors[].publicMessage` /
//! `err_msg`: "API usage exceeded rate limit" is the rate limit (never an HTTP 429), "Invalid
//! API key" / "Authentication failed" are permanent. A network that rejects one of the
//! `contain[]` models answers with an in-body error naming it: the adapter drops that model
//! and the retry asks again without it, rather than failing the run.
//!
//! `payout_type` `cpa_flat`, `cpc`, `cpm` are amounts (`default_payout`); `cpa_percentage` is a
//! share of the sale (`percent_payout`): CPS and no `payout`; `cpa_both` is the CPA amount (the
//! percentage stays in `raw`). A null `currency` is the network's default (`default_currency`).
//! With `findAll`, an offer with `require_approval = "1"` is kept without a tracking link.

use super::lenient::{keyed_names, opt_decimal, opt_string, opt_u64, KeyedRows};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{HasOffersMethod, PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{parse_timestamp, Offer, OfferStatus, PayoutType};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Mutex;

pub struct HasOffers {
    url: Url,
    api_key: Secret,
    limit: u32,
    method: HasOffersMethod,
    /// The `contain[]` models still asked for (a rejected one is dropped).
    contain: Mutex<Vec<String>>,
    default_currency: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    errors: Option<Value>,
    #[serde(default, rename = "errorMessage")]
    error_message: Option<Value>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(default, deserialize_with = "opt_u64", rename = "pageCount")]
    page_count: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    count: Option<u64>,
    #[serde(borrow, default)]
    data: Option<KeyedRows<'a>>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, rename = "Offer")]
    offer: Option<OfferFields>,
    #[serde(default, rename = "Country")]
    country: Option<Value>,
    #[serde(default, rename = "OfferCategory")]
    category: Option<Value>,
    #[serde(default, rename = "TrackingLink")]
    tracking: Option<Value>,
}

#[derive(Deserialize)]
struct OfferFields {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    default_payout: Option<Decimal>,
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    expiration_date: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    require_approval: Option<String>,
}

/// The in-body errors whose meaning is known (matched case-insensitively, anywhere in the text).
pub const APPLICATION_ERRORS: &[(&str, FailureClass)] = &[
    ("exceeded rate limit", FailureClass::RateLimited),
    ("invalid api key", FailureClass::Permanent),
    ("authentication failed", FailureClass::Permanent),
];

fn application_error(text: &str) -> Option<FailureClass> {
    let t = text.to_ascii_lowercase();
    APPLICATION_ERRORS
        .iter()
        .find(|(p, _)| t.contains(p))
        .map(|(_, c)| *c)
}

/// The error text of a failed response: `errorMessage`, else every `errors[]` message.
fn error_text(r: &Response<'_>) -> String {
    if let Some(Value::String(s)) = &r.error_message {
        if !s.is_empty() {
            return s.clone();
        }
    }
    let items = match &r.errors {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let texts: Vec<String> = items
        .iter()
        .filter_map(|e| match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("publicMessage")
                .or_else(|| o.get("err_msg"))
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        "no message".into()
    } else {
        texts.join("; ")
    }
}

/// `(payout_type, whether default_payout is the payout)` of a HasOffers payout type.
fn payout_kind(t: Option<&str>) -> (Option<PayoutType>, bool) {
    match t {
        None => (None, true),
        Some("cpa_flat") | Some("cpa_both") => (Some(PayoutType::Cpa), true),
        Some("cpa_percentage") => (Some(PayoutType::Cps), false),
        Some(other) => (Some(PayoutType::from_platform(other)), true),
    }
}

impl HasOffers {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<HasOffers, String> {
        let PlatformOptions::HasOffers {
            method,
            contain,
            default_currency,
        } = &cfg.options
        else {
            return Err("not a HasOffers source".into());
        };
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/Apiv3/json").unwrap_or(base);
        let url = Url::parse(&format!("{base}/Apiv3/json"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(HasOffers {
            url,
            api_key,
            limit: cfg.page_size,
            method: *method,
            contain: Mutex::new(contain.clone()),
            default_currency: default_currency.clone(),
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let row: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/Offer/id"),
            reason: format!("offer does not match HasOffers' offer shape: {e}"),
        })?;
        let Some(r) = row.offer else {
            return Err(Rejected {
                external_id: None,
                reason: "row has no \"Offer\" object, so no id".into(),
            });
        };
        let id = super::require_id(r.id)?;
        let mut o = Offer::new(id, r.name.unwrap_or_default());
        o.status = match r.status.as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("expired") | Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        let (kind, is_amount) = payout_kind(r.payout_type.as_deref());
        o.payout_type = kind;
        o.payout = r.default_payout.filter(|_| is_amount);
        o.currency = r.currency.or_else(|| self.default_currency.clone());
        o.description = r.description;
        o.preview_url = r.preview_url;
        o.ends_at = r.expiration_date.as_deref().and_then(parse_timestamp);
        o.countries = row
            .country
            .as_ref()
            .map(|c| keyed_names(c, "code"))
            .unwrap_or_default();
        o.categories = row
            .category
            .as_ref()
            .map(|c| keyed_names(c, "name"))
            .unwrap_or_default();
        let approved = self.method == HasOffersMethod::FindMyApprovedOffers
            || r.require_approval.as_deref() != Some("1");
        o.tracking_url = row
            .tracking
            .as_ref()
            .and_then(|t| t.get("click_url")?.as_str().map(String::from))
            .filter(|_| approved);
        Ok(o)
    }

    /// A failed response: a rejected `contain[]` model is dropped (and the retry asks without
    /// it); anything else is classified by its words.
    fn error(&self, resp: &HttpResponse, r: &Response<'_>) -> Failure {
        let detail = error_text(r);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("contain") {
            let mut contain = self.contain.lock().unwrap();
            let named = contain
                .iter()
                .position(|c| lower.contains(&c.to_ascii_lowercase()));
            if let Some(i) = named {
                let model = contain.remove(i);
                tracing::warn!(model = %model, "HasOffers rejected a contain[] model; asking again without it");
                return Failure::transient(format!(
                    "HasOffers rejected contain[]={model} ({detail}); asking again without it"
                ));
            }
        }
        let msg = format!(
            "HasOffers answered HTTP {} with status {}: {detail}",
            resp.status.as_u16(),
            r.status.as_deref().unwrap_or("(none)")
        );
        Failure::in_body(
            resp,
            application_error(&detail),
            FailureClass::Permanent,
            msg,
        )
    }
}

impl Source for HasOffers {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api_key", self.api_key.expose());
            q.append_pair("Target", "Affiliate_Offer");
            q.append_pair(
                "Method",
                match self.method {
                    HasOffersMethod::FindAll => "findAll",
                    HasOffersMethod::FindMyApprovedOffers => "findMyApprovedOffers",
                },
            );
            q.append_pair("sort[id]", "asc");
            q.append_pair("limit", &self.limit.to_string());
            q.append_pair("page", &cursor.page.to_string());
            for c in self.contain.lock().unwrap().iter() {
                q.append_pair("contain[]", c);
            }
        }
        HttpRequest::get(url)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("HasOffers")?;
        let Some(r) = env.response else {
            return Err(Failure::transient(format!(
                "HasOffers answered HTTP {} without a response object: {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            )));
        };
        if !resp.status.is_success() || r.status.as_deref() != Some("1") {
            return Err(self.error(resp, &r));
        }
        let data = match r.data.map(|d| d.get().trim_start()) {
            Some(d) if d.starts_with('{') => serde_json::from_str::<Data<'_>>(d).map_err(|e| {
                Failure::transient(format!(
                    "HasOffers answered a data object that is not its paging shape ({e}): {}",
                    resp.body_excerpt()
                ))
            })?,
            // `[]`, `false`, null: nothing.
            _ => Data::default(),
        };
        let rows = data.data.unwrap_or_default().0;
        let expected_pages = data
            .page_count
            .or_else(|| data.count.map(|c| c.div_ceil(self.limit.max(1) as u64)));
        let end = rows.is_empty()
            || match expected_pages {
                Some(pages) => cursor.page >= pages,
                None => (rows.len() as u64) < self.limit as u64,
            };
        Ok(RowsPage {
            rows: super::own_rows(&rows),
            next: (!end).then(|| cursor.next_page()),
            expected_pages,
        })
    }
}

#[cfg(test)]
mod tests {
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
        let approved = hasoffers("method = \"findMyApprovedOffers\"\ncontain = [\"Country\"]")
            .request(&page(1));
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
            (a.offer.payout, a.offer.payout_type),
            (None, Some(PayoutType::Cps)),
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
        let p = s.parse(&page(1), &resp(200, &ENVELOPE.replace(r#","TrackingLink":{"click_url":"https://trk.example/aff_c?offer_id=4521"}"#, ""))).unwrap();
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
}
