//! Trackier publisher API v2 (`kind = "trackier"`; white-label hosts too), see APIS.md §8.4.
//!
//! `GET {base_url}/v2/publisher/campaigns?page=N&limit=M` with the `X-Api-Key` header (or the
//! `apiKey` query parameter, `api_key_in = "query"`, redacted from every URL shown). Envelope
//! `{success: true, data: {campaigns: [..], page, count}}` where `count` is the total; the run
//! ends when `page * limit >= count` or `campaigns` is empty. Campaigns: `id`, `title`, `status`,
//! `currency` (null means USD), `model` (`cpa|cpi|cpc|cpm|cps`), per-geo `payouts[]` =
//! `{payout, geo: [..]}` (the first is the offer's payout, all of them are `payouts`),
//! `countries[]`, `os[]`, `tracking_link`, `preview_url`. **`cps` means the payout is a
//! percentage**: CPS, `payout_unit = percent`. An empty `tracking_link`
//! means the publisher is not approved: no tracking URL. Errors: HTTP 400
//! `{success: false, error: {code, message}}` (or `{code, codeMsg, message}`), 401/403/404
//! permanent, 500 transient; over 5 requests per second HTTP 429.

use super::lenient::{opt_decimal, opt_string, opt_u64, string_list};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{PlatformOptions, Secret, SourceConfig, TrackierKeyIn};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{Cap, Offer, OfferStatus, PayoutTier, PayoutType, PayoutUnit, SourceApproval};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Trackier {
    url: Url,
    api_key: Secret,
    limit: u32,
    key_in: TrackierKeyIn,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    success: Option<Value>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, deserialize_with = "opt_string")]
    code: Option<String>,
    #[serde(default, rename = "codeMsg")]
    code_msg: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    campaigns: Option<Vec<&'a RawValue>>,
    #[serde(default, deserialize_with = "opt_u64")]
    count: Option<u64>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    title: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    payouts: Vec<GeoPayout>,
    #[serde(default)]
    countries: Option<Value>,
    #[serde(default)]
    os: Option<Value>,
    #[serde(default)]
    tracking_link: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default)]
    cap: Option<TrackierCap>,
}

/// `cap{type, daily, monthly, lifetime}`; 0 means none.
#[derive(Deserialize)]
struct TrackierCap {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    daily: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    monthly: Option<Decimal>,
    #[serde(default, deserialize_with = "opt_decimal")]
    lifetime: Option<Decimal>,
}

#[derive(Deserialize)]
struct GeoPayout {
    #[serde(default, deserialize_with = "opt_decimal")]
    payout: Option<Decimal>,
    #[serde(default)]
    geo: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// `(code, message)` of an error answer in either documented shape.
fn error_of(env: &Envelope<'_>) -> (Option<String>, String) {
    if let Some(Value::Object(e)) = &env.error {
        let code = e.get("code").map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let message = text(&e.get("message").cloned()).unwrap_or_else(|| "no message".into());
        return (code, message);
    }
    let message = text(&env.message)
        .or_else(|| text(&env.code_msg))
        .or_else(|| text(&env.error))
        .unwrap_or_else(|| "no message".into());
    (env.code.clone(), message)
}

/// The codes vNative's (Trackier's predecessor's) API used for key, parameter and IP errors.
const PERMANENT_CODES: &[&str] = &["12", "13", "20", "30", "41", "42"];

impl Trackier {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Trackier, String> {
        let PlatformOptions::Trackier { api_key_in } = &cfg.options else {
            return Err("not a Trackier source".into());
        };
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v2/publisher/campaigns").unwrap_or(base);
        let url = Url::parse(&format!("{base}/v2/publisher/campaigns"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Trackier {
            url,
            api_key,
            limit: cfg.page_size,
            key_in: *api_key_in,
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/id"),
            reason: format!("campaign does not match Trackier's campaign shape: {e}"),
        })?;
        let id = super::require_id(r.id)?;
        let mut o = Offer::new(id, r.title.unwrap_or_default());
        o.status = match r.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("active") | None => OfferStatus::Active,
            Some("paused") => OfferStatus::Paused,
            Some("pending") => OfferStatus::Pending,
            Some("expired") | Some("deleted") => OfferStatus::Expired,
            Some(_) => OfferStatus::Other,
        };
        let percentage = r
            .model
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("cps"));
        o.payout_type = r.model.as_deref().map(PayoutType::from_platform);
        // A null currency is USD.
        let currency = r.currency.unwrap_or_else(|| "USD".into());
        // `cps`: the payout is a share of the sale, never an amount.
        o.payout = r.payouts.first().and_then(|p| p.payout);
        if percentage {
            o.payout_unit = PayoutUnit::Percent;
        }
        let geos: Vec<Vec<String>> = r
            .payouts
            .iter()
            .map(|p| p.geo.as_ref().map(string_list).unwrap_or_default())
            .collect();
        if r.payouts.len() > 1 {
            o.payouts = r
                .payouts
                .iter()
                .zip(&geos)
                .map(|(p, geo)| PayoutTier {
                    payout: p.payout.map(|d| d.to_string()),
                    revenue: None,
                    currency: Some(currency.clone()),
                    countries: geo.clone(),
                    kind: r.model.clone(),
                    goal: None,
                    title: None,
                })
                .collect();
        }
        o.currency = Some(currency);
        let mut countries = r.countries.as_ref().map(string_list).unwrap_or_default();
        countries.extend(geos.into_iter().flatten());
        o.countries = countries;
        o.platforms = r.os.as_ref().map(string_list).unwrap_or_default();
        // Empty: the publisher is not approved for it (normalization makes "" no URL).
        let approved = r
            .tracking_link
            .as_deref()
            .is_some_and(|l| !l.trim().is_empty());
        o.approval = Some(if approved {
            SourceApproval::Approved
        } else {
            SourceApproval::RequiresApproval
        });
        o.tracking_url = r.tracking_link;
        o.caps = r.cap.map(caps).unwrap_or_default();
        o.preview_url = r.preview_url;
        Ok(o)
    }

    fn error(&self, resp: &HttpResponse, env: &Envelope<'_>) -> Failure {
        let (code, message) = error_of(env);
        let msg = format!(
            "Trackier answered HTTP {} with code {}: {message}",
            resp.status.as_u16(),
            code.as_deref().unwrap_or("(none)")
        );
        let class = code
            .as_deref()
            .filter(|c| PERMANENT_CODES.contains(c))
            .map(|_| FailureClass::Permanent);
        Failure::in_body(resp, class, FailureClass::Permanent, msg)
    }
}

impl Source for Trackier {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("page", &cursor.page.to_string())
            .append_pair("limit", &self.limit.to_string());
        match self.key_in {
            TrackierKeyIn::Header => {
                HttpRequest::get(url).secret_header("x-api-key", &self.api_key)
            }
            TrackierKeyIn::Query => {
                url.query_pairs_mut()
                    .append_pair("apiKey", self.api_key.expose());
                HttpRequest::get(url)
            }
        }
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("Trackier")?;
        let ok = matches!(env.success, Some(Value::Bool(true)) | None) && env.error.is_none();
        if !resp.status.is_success() || !ok {
            return Err(self.error(resp, &env));
        }
        let Some(rows) = env.data.as_ref().and_then(|d| d.campaigns.as_ref()) else {
            return Err(Failure::transient(format!(
                "Trackier answered HTTP {} without data.campaigns: {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            )));
        };
        let count = env.data.as_ref().and_then(|d| d.count);
        let limit = self.limit.max(1) as u64;
        Ok(super::counted_page(
            super::own_rows(rows),
            cursor,
            limit,
            count,
        ))
    }
}

/// `cap{type, daily, monthly, lifetime}` as caps (0 means none).
fn caps(c: TrackierCap) -> Vec<Cap> {
    let mut out = Vec::new();
    let kind = match c.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("budget") | Some("payout") | Some("revenue") => "budget",
        _ => "conversions",
    };
    for (period, v) in [
        ("daily", c.daily),
        ("monthly", c.monthly),
        ("lifetime", c.lifetime),
    ] {
        if let Some(v) = v.filter(|v| *v > Decimal::ZERO) {
            out.push(Cap::new(period, kind, v.normalize()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{page, query, resp, source, KEY};
    use crate::http::FailureClass;
    use crate::model::{OfferStatus, PayoutType};

    fn trackier(extra: &str) -> Box<dyn super::Source> {
        source(&format!(
            "kind = \"trackier\"\nbase_url = \"https://api.trackier.com\"\npage_size = 100\n{extra}"
        ))
    }

    /// APIS.md §8.4's envelope, `…` filled with one campaign of the documented fields.
    const ENVELOPE: &str = r#"{"success":true,"data":{"campaigns":[{"id":812,"title":"Summer Promo","status":"active",
        "currency":null,"model":"cpa","payouts":[{"payout":2.5,"geo":["US"],"variable":false,"allowedValues":[]},
        {"payout":"1.20","geo":["GB","DE"],"variable":false,"allowedValues":[]}],"countries":["US","GB","DE"],
        "device":["mobile"],"os":["android"],"tracking_link":"https://trk.example/click?campaign_id=812&pub_id=9",
        "preview_url":"https://adv.example","impressionUrl":"","cap":{"type":"conversions","daily":100,"monthly":0,"lifetime":0},
        "goals":[],"creatives":[],"subIdsBlock":[],"subIdsAllow":[]}],"page":1,"count":1234}}"#;

    #[test]
    fn requests_carry_page_and_limit_and_the_key_in_a_header_or_the_query() {
        let req = trackier("").request(&page(4));
        assert_eq!(req.url.path(), "/v2/publisher/campaigns");
        assert_eq!(
            query(&req),
            [("page".into(), "4".into()), ("limit".into(), "100".into())]
        );
        let h = req.headers.get("x-api-key").unwrap();
        assert!(h.is_sensitive() && h.to_str().unwrap() == KEY);
        let req = trackier("api_key_in = \"query\"").request(&page(1));
        assert!(query(&req).contains(&("apiKey".into(), KEY.into())) && req.headers.is_empty());
        assert!(!crate::http::redact_url(&req.url).contains(KEY));
    }

    #[test]
    fn the_documented_envelope_parses() {
        let p = trackier("").parse(&page(1), &resp(200, ENVELOPE)).unwrap();
        assert_eq!(p.rejected, vec![]);
        assert_eq!(
            (p.expected_pages, p.next),
            (Some(13), Some(page(2))),
            "count is the total"
        );
        let o = &p.offers[0].offer;
        assert_eq!(
            (o.external_id.as_str(), o.name.as_str(), o.status),
            ("812", "Summer Promo", OfferStatus::Active)
        );
        assert_eq!(o.payout.map(|d| d.to_string()).as_deref(), Some("2.5"));
        assert_eq!(
            (o.payout_type, o.currency.as_deref()),
            (Some(PayoutType::Cpa), Some("USD")),
            "null currency: USD"
        );
        assert_eq!(o.countries, ["DE", "GB", "US"]);
        assert_eq!(o.platforms, ["android"]);
        let tiers: Vec<_> = o
            .payouts
            .iter()
            .map(|t| (t.payout.as_deref(), t.countries.clone()))
            .collect();
        assert_eq!(
            tiers,
            [
                (Some("1.2"), vec!["DE".to_string(), "GB".into()]),
                (Some("2.5"), vec!["US".into()])
            ]
        );
        assert_eq!(
            o.tracking_url.as_deref(),
            Some("https://trk.example/click?campaign_id=812&pub_id=9")
        );
        assert!(p.offers[0]
            .raw
            .contains("\"cap\":{\"type\":\"conversions\""));
        let last = trackier("").parse(&page(13), &resp(200, ENVELOPE)).unwrap();
        assert_eq!(last.next, None, "page * limit >= count");
    }

    #[test]
    fn cps_is_a_percentage_and_an_empty_tracking_link_is_no_approval() {
        let body = r#"{"success":true,"data":{"campaigns":[{"id":"9","title":"Share","status":"paused","currency":"EUR",
            "model":"cps","payouts":[{"payout":30,"geo":["FR"]}],"countries":[],"tracking_link":""}],"page":1,"count":1}}"#;
        let p = trackier("").parse(&page(1), &resp(200, body)).unwrap();
        let o = &p.offers[0].offer;
        assert_eq!(
            (o.payout, o.payout_type, o.payout_unit),
            (
                Some(rust_decimal::Decimal::from(30)),
                Some(PayoutType::Cps),
                crate::model::PayoutUnit::Percent
            ),
            "30 % is not 30 EUR"
        );
        assert_eq!(
            o.approval,
            Some(crate::model::SourceApproval::RequiresApproval)
        );
        assert_eq!(
            (o.tracking_url.as_deref(), o.status),
            (None, OfferStatus::Paused)
        );
        assert_eq!(
            (o.countries.clone(), o.currency.as_deref()),
            (vec!["FR".to_string()], Some("EUR"))
        );
        assert!(p.offers[0].raw.contains("\"payout\":30"));
        assert_eq!(p.next, None);
        let empty = r#"{"success":true,"data":{"campaigns":[],"page":2,"count":0}}"#;
        let p = trackier("").parse(&page(2), &resp(200, empty)).unwrap();
        assert!(p.offers.is_empty() && p.next.is_none());
    }

    #[test]
    fn both_error_shapes_keep_their_code_and_words() {
        let s = trackier("");
        let e = s
            .parse(
                &page(1),
                &resp(
                    400,
                    r#"{"success":false,"error":{"code":13,"message":"Invalid API Key"}}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(
            e.message,
            "Trackier answered HTTP 400 with code 13: Invalid API Key"
        );
        let e = s
            .parse(
                &page(1),
                &resp(
                    400,
                    r#"{"code":102,"codeMsg":"INVALID_PARAM","message":"limit is invalid"}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(
            (e.class, e.message.as_str()),
            (
                FailureClass::Permanent,
                "Trackier answered HTTP 400 with code 102: limit is invalid"
            )
        );
        let e = s
            .parse(
                &page(1),
                &resp(
                    200,
                    r#"{"success":false,"error":{"code":12,"message":"IP not allowed"}}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent, "in the body at HTTP 200");
        let e = s
            .parse(
                &page(1),
                &resp(
                    429,
                    r#"{"success":false,"error":{"code":429,"message":"Too many requests"}}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::RateLimited);
        let e = s
            .parse(
                &page(1),
                &resp(
                    500,
                    r#"{"success":false,"error":{"code":500,"message":"Server error"}}"#,
                ),
            )
            .unwrap_err();
        assert_eq!(e.class, FailureClass::Transient);
        for status in [401, 403, 404] {
            let e = s.parse(&page(1), &resp(status, "{}")).unwrap_err();
            assert_eq!(e.class, FailureClass::Permanent, "{status}");
        }
    }
}
