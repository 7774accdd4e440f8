//! Youmi / Adxmi publisher server-to-server offer feed (`kind = "s2s"`), see APIS.md §4.
//!
//! `GET {base_url}?app_id=..&os=..&page=N&page_size=M` (+ `gaid`, `andid` for Android, optional
//! `country`, `thirdparty_id`). The app_id is the credential (configure it like an API key).
//! Both envelopes are read: the seed's `{c, d: {p, n, tot, data}}` and the v2 offline
//! `{c, total, page, page_size, n, offers}` (and v1's `{offers, total, page, page_size}`). Ids
//! arrive as numbers or strings, the tracking link as `tracking_link` or `trackinglink`, payouts
//! (USD) as strings or numbers. The number of pages comes from the platform (`d.n`, the page
//! size it used, and `d.tot`; v2's `page_size` and `total`), never from the configured size.
//! Errors come with HTTP 200 and a negative `c`; `-3302` (over the budget of 50 requests per 10
//! minutes) is a rate limit, and so is HTTP 429 (newer docs). See docs/platforms/youmi.md.

use super::lenient::{opt_decimal, opt_string, opt_u64, string_list};
use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{Offer, PayoutType};
use reqwest::Url;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub struct Youmi {
    url: Url,
    app_id: Secret,
    page_size: u32,
    params: Vec<(&'static str, String)>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    c: Option<i64>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(borrow, default)]
    d: Option<Seed<'a>>,
    #[serde(borrow, default)]
    offers: Option<Vec<&'a RawValue>>,
    #[serde(default, deserialize_with = "opt_u64")]
    total: Option<u64>,
    /// v1/v2 offline: the page size the platform used.
    #[serde(default, deserialize_with = "opt_u64")]
    page_size: Option<u64>,
}

/// The seed's `d`: `p` page, `n` page size, `tot` total number (the seed's "Other Response
/// Parameter" table).
#[derive(Deserialize)]
struct Seed<'a> {
    #[serde(default, deserialize_with = "opt_u64")]
    tot: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    n: Option<u64>,
    #[serde(borrow, default)]
    data: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tracking_link: Option<String>,
    #[serde(default)]
    trackinglink: Option<String>,
    #[serde(default, deserialize_with = "opt_decimal")]
    payout: Option<rust_decimal::Decimal>,
    #[serde(default)]
    payout_type: Option<String>,
    #[serde(default)]
    offer_type: Option<String>,
    #[serde(default)]
    preview_url: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    icon: Option<String>,
    #[serde(default)]
    icon_url: Option<String>,
    #[serde(default)]
    adtxt: Option<String>,
    #[serde(default)]
    conversion_flow: Option<String>,
    #[serde(default)]
    os: Option<Value>,
    #[serde(default)]
    countries: Option<Value>,
    #[serde(default)]
    country: Option<Value>,
    #[serde(default)]
    category: Option<Value>,
}

/// What each documented negative `c` means.
fn code_meaning(c: i64) -> (FailureClass, &'static str) {
    match c {
        -1002 => (FailureClass::Permanent, "app_id does not exist"),
        -1202 => (FailureClass::Permanent, "application not approved"),
        -1403 => (
            FailureClass::Permanent,
            "application not verified / not live",
        ),
        -2103 => (FailureClass::Permanent, "wrong offer id"),
        -2221 => (FailureClass::Permanent, "offer inactive"),
        -3006 => (
            FailureClass::Permanent,
            "mandatory device parameters missing (gaid, andid for Android)",
        ),
        -3212 => (FailureClass::Permanent, "country mismatch"),
        -3302 => (
            FailureClass::RateLimited,
            "over the QPS limit (50 requests per 10 minutes)",
        ),
        _ => (FailureClass::Transient, "unknown error code"),
    }
}

impl Youmi {
    pub fn new(cfg: &SourceConfig, app_id: Secret) -> Result<Youmi, String> {
        let PlatformOptions::S2s {
            os,
            gaid,
            andid,
            country,
            thirdparty_id,
        } = &cfg.options
        else {
            return Err("not an s2s source".into());
        };
        let url = Url::parse(&cfg.base_url)
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        let mut params = vec![("os", os.clone())];
        for (name, v) in [
            ("gaid", gaid),
            ("andid", andid),
            ("country", country),
            ("thirdparty_id", thirdparty_id),
        ] {
            if let Some(v) = v {
                params.push((name, v.clone()));
            }
        }
        Ok(Youmi {
            url,
            app_id,
            page_size: cfg.page_size,
            params,
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: Row = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/id"),
            reason: format!("offer does not match the feed's offer shape: {e}"),
        })?;
        let id = super::require_id(r.id)?;
        let mut o = Offer::new(id, r.name.unwrap_or_default());
        o.tracking_url = r.tracking_link.or(r.trackinglink);
        o.payout = r.payout;
        // The docs give payouts in USD (the seed is silent on the currency).
        o.currency = Some("USD".into());
        o.payout_type = payout_type(r.payout_type.as_deref(), r.offer_type.as_deref());
        o.preview_url = r.preview_url;
        o.app_package = r.package;
        o.icon_url = r.icon.filter(|s| !s.is_empty()).or(r.icon_url);
        o.description = r.adtxt.or(r.conversion_flow);
        o.platforms = r.os.as_ref().map(string_list).unwrap_or_default();
        o.countries = r
            .countries
            .or(r.country)
            .as_ref()
            .map(string_list)
            .unwrap_or_default();
        o.categories = r.category.as_ref().map(string_list).unwrap_or_default();
        Ok(o)
    }
}

/// The seed's table gives both `payout_type` and `offer_type` as CPI/CPA/CPL; its own example
/// sends `"app"` and `"fixed"`. The first that is one of the three wins; any other value is
/// `other` (it stays in `raw`), never dropped.
fn payout_type(payout_type: Option<&str>, offer_type: Option<&str>) -> Option<PayoutType> {
    let model = |t: &str| {
        let p = PayoutType::from_platform(t);
        matches!(p, PayoutType::Cpi | PayoutType::Cpa | PayoutType::Cpl).then_some(p)
    };
    match (payout_type, offer_type) {
        (None, None) => None,
        (p, o) => p
            .and_then(model)
            .or_else(|| o.and_then(model))
            .or(Some(PayoutType::Other)),
    }
}

impl Source for Youmi {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("app_id", self.app_id.expose());
            q.append_pair("page", &cursor.page.to_string());
            q.append_pair("page_size", &self.page_size.to_string());
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        HttpRequest::get(url)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let env: Envelope<'_> = resp.envelope("the S2S feed")?;
        let c = env.c.unwrap_or(0);
        if c != 0 || !resp.status.is_success() {
            let (class, meaning) = code_meaning(c);
            let msg = format!(
                "the S2S feed answered HTTP {} with c = {c} ({meaning}): {}",
                resp.status.as_u16(),
                env.msg.unwrap_or_default()
            );
            let class = if resp.status.is_success() {
                Some(class)
            } else {
                None
            };
            return Err(Failure::in_body(resp, class, FailureClass::Transient, msg));
        }
        // How many pages there are comes from the platform: its total and the page size it
        // used (the seed's `n`, v2's `page_size`), never the configured page_size, which the
        // platform may cap (the English docs say 500, the seed 10000).
        let (rows, total, used_size) = match env.d {
            Some(d) => (d.data, d.tot, d.n),
            None => (env.offers.unwrap_or_default(), env.total, env.page_size),
        };
        let rows = super::own_rows(&rows);
        let used_size = used_size.filter(|n| *n > 0);
        let expected_pages = match (total, used_size) {
            (Some(t), Some(n)) => Some(t.div_ceil(n)),
            _ => None,
        };
        let end = rows.is_empty()
            || match (expected_pages, used_size) {
                (Some(p), _) => cursor.page >= p,
                // A page shorter than the size the platform says it used is its last.
                (None, Some(n)) => (rows.len() as u64) < n,
                // Nothing said: only an empty page ends the feed (one request more, never
                // an early end).
                (None, None) => false,
            };
        Ok(RowsPage {
            rows,
            next: (!end).then(|| cursor.next_page()),
            expected_pages,
        })
    }
}
