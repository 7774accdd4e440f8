//! CAKE affiliate API (`kind = "cake"`; each network runs its own host), see APIS.md §8.3.
//!
//! `GET {base_url}/affiliates/api/4/offers.asmx/OfferFeed?api_key=KEY&affiliate_id=ID&campaign_name=&media_type_category_id=0&vertical_category_id=0&vertical_id=0&offer_status_id=0&tag_id=0&start_at_row=R&row_limit=N`
//! with `start_at_row` **1-based** (page `p` starts at row `(p - 1) * N + 1`). **The key is a
//! query parameter** (redacted from every URL shown). The answer is **XML** (.asmx):
//! `<offer_feed_response><success>true</success><row_count>..</row_count><offers><offer>..`;
//! `row_count` is the total of rows, so the run ends on a short page or once the rows read reach
//! it. Each `<offer>` becomes the JSON row stored as `raw` (its elements as keys, texts as
//! strings, a nil `campaign_id` as null, `allowed_countries.country[]` as a list).
//!
//! `payout` carries a currency symbol (`$2.50`, `€1,20`, `2.50 USD`, see [`payout`]): the amount
//! and the ISO 4217 code are read from it, an unknown symbol rejects the offer with its reason,
//! a percentage (`25%`) is CPS with `payout_unit = percent`. A nil `campaign_id` (not running for this
//! affiliate) or a status of "Apply To Run" / "Pending" means no usable tracking link; otherwise
//! the link is `tracking_url_template` filled in (the feed has none, and one `GetCampaign` call
//! per offer is not made). Errors: `<success>false</success>` with `<message>`, or HTTP 401/403
//! (an admin key on the affiliate API).

pub mod payout;

use super::{Cursor, Rejected, RowsPage, Source};
use crate::config::{PlatformOptions, Secret, SourceConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{parse_timestamp, Offer, OfferStatus, PayoutType, PayoutUnit, SourceApproval};
use payout::Payout;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub struct Cake {
    url: Url,
    api_key: Secret,
    affiliate_id: String,
    row_limit: u32,
    template: Option<String>,
    dollar: String,
}

/// `<offer_feed_response>`.
#[derive(Deserialize)]
struct Feed {
    #[serde(default)]
    success: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    row_count: Option<String>,
    #[serde(default)]
    offers: Option<Offers>,
}

#[derive(Deserialize, Default)]
struct Offers {
    #[serde(default)]
    offer: Vec<CakeOffer>,
}

/// One `<offer>`: read from the XML, written as the JSON row, read back to normalize.
#[derive(Deserialize, Serialize)]
struct CakeOffer {
    #[serde(default)]
    offer_id: Option<String>,
    #[serde(default)]
    offer_contract_id: Option<String>,
    /// `None` when nil (`<campaign_id xsi:nil="true"/>`: quick-xml reads `xsi:nil` as none).
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    offer_name: Option<String>,
    #[serde(default)]
    vertical_name: Option<String>,
    #[serde(default)]
    offer_status: Option<Status>,
    #[serde(default)]
    payout: Option<String>,
    #[serde(default)]
    price_format: Option<String>,
    #[serde(default)]
    allowed_countries: Option<Countries>,
    #[serde(default)]
    expiration_date: Option<String>,
    #[serde(default)]
    hidden: Option<String>,
    #[serde(default)]
    preview_link: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct Status {
    #[serde(default)]
    status_id: Option<String>,
    #[serde(default)]
    status_name: Option<String>,
}

#[derive(Deserialize, Serialize, Default)]
struct Countries {
    #[serde(default)]
    country: Vec<Country>,
}

#[derive(Deserialize, Serialize)]
struct Country {
    #[serde(default)]
    country_code: Option<String>,
}

impl Cake {
    pub fn new(cfg: &SourceConfig, api_key: Secret) -> Result<Cake, String> {
        let PlatformOptions::Cake {
            affiliate_id,
            tracking_url_template,
            dollar_currency,
        } = &cfg.options
        else {
            return Err("not a CAKE source".into());
        };
        let path = "/affiliates/api/4/offers.asmx/OfferFeed";
        let base = cfg.base_url.trim_end_matches('/');
        let base = base.strip_suffix(path).unwrap_or(base);
        let url = Url::parse(&format!("{base}{path}"))
            .map_err(|e| format!("sources[{}].base_url: {e}", cfg.index))?;
        Ok(Cake {
            url,
            api_key,
            affiliate_id: affiliate_id.clone(),
            row_limit: cfg.page_size,
            template: tracking_url_template.clone(),
            dollar: dollar_currency.clone(),
        })
    }

    fn normalize(&self, raw: &RawValue) -> Result<Offer, Rejected> {
        let r: CakeOffer = serde_json::from_str(raw.get()).map_err(|e| Rejected {
            external_id: super::id_at(raw, "/offer_id"),
            reason: format!("offer does not match CAKE's offer shape: {e}"),
        })?;
        let id = super::require_id(r.offer_id.clone())?;
        let mut o = Offer::new(id.clone(), r.offer_name.unwrap_or_default());
        let status_name = r
            .offer_status
            .and_then(|s| s.status_name)
            .unwrap_or_default();
        let status = status_name.trim().to_ascii_lowercase();
        o.status = match status.as_str() {
            "public" | "active" | "" => OfferStatus::Active,
            "apply to run" | "pending" => OfferStatus::Pending,
            "inactive" | "paused" => OfferStatus::Paused,
            "expired" => OfferStatus::Expired,
            _ => OfferStatus::Other,
        };
        o.payout_type = r.price_format.as_deref().map(PayoutType::from_platform);
        match payout::parse(r.payout.as_deref().unwrap_or_default(), &self.dollar) {
            Ok(Payout::None) => {}
            Ok(Payout::Amount { amount, currency }) => {
                o.payout = Some(amount);
                o.currency = currency;
            }
            Ok(Payout::Percentage(p)) => {
                // A share of the sale, never an amount.
                o.payout_type = Some(PayoutType::Cps);
                o.payout = Some(p);
                o.payout_unit = PayoutUnit::Percent;
            }
            Err(e) => {
                return Err(Rejected {
                    external_id: Some(id.clone()),
                    reason: format!("offer {id}: {e}"),
                })
            }
        }
        o.countries = r
            .allowed_countries
            .unwrap_or_default()
            .country
            .into_iter()
            .filter_map(|c| c.country_code)
            .collect();
        o.categories = r.vertical_name.into_iter().collect();
        o.ends_at = r.expiration_date.as_deref().and_then(parse_timestamp);
        o.preview_url = r.preview_link;
        let campaign = r
            .campaign_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        // "Apply To Run": visible, apply first; "Pending": applied; a nil campaign: not running
        // for this affiliate (not approved).
        o.approval = Some(match (status.as_str(), campaign) {
            ("apply to run", _) => SourceApproval::RequiresApproval,
            ("pending", _) => SourceApproval::Pending,
            (_, None) => SourceApproval::RequiresApproval,
            (_, Some(_)) => SourceApproval::Approved,
        });
        let runnable = SourceApproval::runnable(o.approval);
        o.tracking_url = match (&self.template, campaign) {
            (Some(t), Some(campaign)) if runnable => Some(
                t.replace("{affiliate_id}", &self.affiliate_id)
                    .replace("{campaign_id}", campaign)
                    .replace("{offer_id}", &id),
            ),
            _ => None,
        };
        Ok(o)
    }

    fn failure(&self, resp: &HttpResponse, message: Option<&str>) -> Failure {
        let msg = format!(
            "CAKE answered HTTP {} with success false: {}",
            resp.status.as_u16(),
            message
                .filter(|m| !m.trim().is_empty())
                .unwrap_or("no message")
        );
        Failure::in_body(resp, None, FailureClass::Permanent, msg)
    }
}

impl Source for Cake {
    fn request(&self, cursor: &Cursor) -> HttpRequest {
        let mut url = self.url.clone();
        let start = cursor
            .page
            .saturating_sub(1)
            .saturating_mul(self.row_limit as u64)
            .saturating_add(1);
        url.query_pairs_mut()
            .append_pair("api_key", self.api_key.expose())
            .append_pair("affiliate_id", &self.affiliate_id)
            .append_pair("campaign_name", "")
            .append_pair("media_type_category_id", "0")
            .append_pair("vertical_category_id", "0")
            .append_pair("vertical_id", "0")
            .append_pair("offer_status_id", "0")
            .append_pair("tag_id", "0")
            .append_pair("start_at_row", &start.to_string())
            .append_pair("row_limit", &self.row_limit.to_string());
        HttpRequest::get(url)
    }

    fn normalize_row(&self, _: &Cursor, raw: &RawValue) -> Result<Offer, Rejected> {
        self.normalize(raw)
    }

    fn parse_rows(&self, cursor: &Cursor, resp: &HttpResponse) -> Result<RowsPage, Failure> {
        let text = String::from_utf8_lossy(&resp.body);
        let text = text.trim_start_matches('\u{feff}');
        let feed: Result<Feed, _> = quick_xml::de::from_str(text);
        let feed = match (feed, resp.status.is_success()) {
            (Ok(f), true) if f.success.is_some() => f,
            (Ok(f), false) if f.success.is_some() => {
                return Err(self.failure(resp, f.message.as_deref()))
            }
            (Ok(_), true) => {
                return Err(Failure::transient(format!(
                    "CAKE answered HTTP {} without <success> (not its OfferFeed answer): {}",
                    resp.status.as_u16(),
                    resp.body_excerpt()
                )))
            }
            (Err(e), true) => {
                return Err(Failure::transient(format!(
                    "CAKE answered HTTP {} with a body that is not its XML answer ({e}): {}",
                    resp.status.as_u16(),
                    resp.body_excerpt()
                )))
            }
            (_, false) => {
                return Err(Failure::from_response(
                    resp,
                    format!(
                        "CAKE answered HTTP {}: {}",
                        resp.status.as_u16(),
                        resp.body_excerpt()
                    ),
                ))
            }
        };
        if !feed
            .success
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"))
        {
            return Err(self.failure(resp, feed.message.as_deref()));
        }
        let offers = feed.offers.unwrap_or_default().offer;
        let rows = offers
            .iter()
            .map(|o| {
                serde_json::value::to_raw_value(o).map_err(|e| {
                    Failure::transient(format!("CAKE offer not representable as JSON: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = self.row_limit.max(1) as u64;
        let total: Option<u64> = feed
            .row_count
            .as_deref()
            .and_then(|c| c.trim().parse().ok());
        let read = cursor.page.saturating_mul(limit);
        let end = (rows.len() as u64) < limit || total.is_some_and(|t| read >= t);
        Ok(RowsPage {
            rows,
            next: (!end).then(|| cursor.next_page()),
            expected_pages: total.map(|t| t.div_ceil(limit)),
        })
    }
}

#[cfg(test)]
mod tests;
