//! Offerit / Trackfinity (`kind = "offerit"`), see APIS.md §3.
//!
//! Headers `api-key` and `api-username` (the caller's IP must be allow-listed on the install).
//! Create: `POST {base_url}/offer/add_offer` with a form body; the answer is
//! `{"result": "Success", "message": {"offerid": "..", "landing_pageid": ".."}}` (ids as
//! strings, `result` compared case-insensitively). Update: `PATCH /offer/edit_offer`, plus
//! `PATCH /offer/set_offer_countries` when the countries changed; pause: `PATCH
//! /offer/pause_offer` (pausing expires the offer); re-activate: `PATCH /offer/activate_offer`.
//! PATCH parameters go in the query string, as the vendor samples send them. 400/404/405 and
//! any non-success body are errors. There is no list or search endpoint, so a create whose
//! answer is lost cannot be looked up: creates are staged instead. `add_offer` carries
//! `hidden=1` (the offer does not show in the affiliates' offer list), and once offersync has
//! recorded the new `offerid` it reveals the offer with `edit_offer ... hidden=0`. A lost
//! answer therefore leaves at most a hidden orphan, never a live duplicate.

use super::{date_part, form_text, Target, TargetOp};
use crate::config::{Secret, TargetConfig};
use crate::http::{Failure, HttpRequest, HttpResponse};
use crate::model::{OpKind, PushFields};
use reqwest::{Method, Url};
use serde_json::Value;

pub struct Offerit {
    base: String,
    username: String,
    api_key: Secret,
    advertiser_id: Option<String>,
}

/// How Offerit pays affiliates for an offer, from its payout type (the seed's commission
/// parameters): per click for CPC, per conversion for everything else that is an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commission {
    /// `commission_type=click`, `flat_amount_per_click`; advertiser cost per click.
    Click,
    /// `commission_type=cpa`, `flat_amount_per_conversion`; advertiser cost per conversion.
    Cpa,
    /// `commission_type=cps`, `percentage_of_customer_conversion`: a percentage payout (a share
    /// of the sale), never sent as an amount; advertiser cost per sale.
    Cps,
}

impl Commission {
    fn of(all: &PushFields) -> Commission {
        if all.get("payout_unit").and_then(Value::as_str) == Some("percent") {
            return Commission::Cps;
        }
        match all.get("payout_type").and_then(Value::as_str) {
            Some("CPC") => Commission::Click,
            _ => Commission::Cpa,
        }
    }

    fn commission_type(self) -> &'static str {
        match self {
            Commission::Click => "click",
            Commission::Cpa => "cpa",
            Commission::Cps => "cps",
        }
    }

    fn payout_param(self) -> &'static str {
        match self {
            Commission::Click => "flat_amount_per_click",
            Commission::Cpa => "flat_amount_per_conversion",
            Commission::Cps => "percentage_of_customer_conversion",
        }
    }

    fn advertiser_cost_type(self) -> &'static str {
        match self {
            Commission::Click => "click",
            Commission::Cpa => "conversion",
            Commission::Cps => "sale",
        }
    }
}

/// Our field → Offerit's parameter.
fn param(field: &str, commission: Commission) -> Option<&'static str> {
    Some(match field {
        "name" => "name",
        "url" => "url",
        "preview_url" => "preview_url",
        "description" => "offer_description",
        "categories" => "categories",
        "payout" => commission.payout_param(),
        // Seed 003: `advertiser_cost_flat` is the flat cost with 'conversion' / 'click', and
        // the "Percentage cost to advertiser used with 'sale'" (the same name, listed twice).
        "cost" => "advertiser_cost_flat",
        "icon_url" => "thumb_url",
        "starts_at" => "date_live",
        "ends_at" => "date_expire",
        _ => return None,
    })
}

/// The parameters for `fields`; `all` (every field the offer will hold) decides the commission.
/// A changed payout type switches the commission parameters too.
fn params(fields: &PushFields, all: &PushFields) -> Vec<(String, String)> {
    let commission = Commission::of(all);
    let mut out: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            let p = param(k, commission)?;
            let text = match k.as_str() {
                // "String to time on the string provided": keep the time of day (UTC).
                "starts_at" | "ends_at" => date_part(v, true).unwrap_or_default(),
                _ => form_text(v),
            };
            Some((p.to_string(), text))
        })
        .collect();
    if fields.contains_key("payout_type") || fields.contains_key("payout_unit") {
        out.push((
            "commission_type".into(),
            commission.commission_type().into(),
        ));
        out.push((
            "advertiser_cost_type".into(),
            commission.advertiser_cost_type().into(),
        ));
        if !fields.contains_key("payout") {
            if let Some(p) = all.get("payout") {
                out.push((commission.payout_param().into(), form_text(p)));
            }
        }
    }
    out
}

/// `authorized` (the allowed countries) and, when the offer excludes some, `unauthorized`.
fn countries(all: &PushFields) -> Vec<(String, String)> {
    let mut out = vec![(
        "authorized".to_string(),
        all.get("countries").map(form_text).unwrap_or_default(),
    )];
    if let Some(x) = all
        .get("excluded_countries")
        .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
    {
        out.push(("unauthorized".into(), form_text(x)));
    }
    out
}

impl Offerit {
    pub fn new(cfg: &TargetConfig, api_key: Secret) -> Result<Offerit, String> {
        Url::parse(&cfg.base_url).map_err(|e| format!("targets {}: base_url: {e}", cfg.name))?;
        Ok(Offerit {
            base: cfg.base_url.trim_end_matches('/').to_string(),
            username: cfg.api_username.clone().unwrap_or_default(),
            api_key,
            advertiser_id: cfg.advertiser_id.clone(),
        })
    }

    fn request(
        &self,
        method: Method,
        action: &str,
        query: &[(String, String)],
        form: Option<Vec<(String, String)>>,
    ) -> HttpRequest {
        let mut url =
            Url::parse(&format!("{}/offer/{action}", self.base)).expect("base_url was validated");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = HttpRequest::get(url).secret_header("api-key", &self.api_key);
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&self.username) {
            req.headers.insert("api-username", v);
        }
        req.method = method;
        req.form = form;
        req
    }
}

impl Target for Offerit {
    fn requests(&self, op: &TargetOp<'_>) -> Vec<HttpRequest> {
        let id = op.target_offer_id.unwrap_or_default().to_string();
        let with_id = |mut q: Vec<(String, String)>| {
            q.insert(0, ("offerid".to_string(), id.clone()));
            q
        };
        let mut edits = Vec::new();
        let edit_params = params(op.fields, op.all);
        if !edit_params.is_empty() {
            edits.push(self.request(
                Method::PATCH,
                "edit_offer",
                &with_id(edit_params.clone()),
                None,
            ));
        }
        if op.fields.contains_key("countries") || op.fields.contains_key("excluded_countries") {
            edits.push(self.request(
                Method::PATCH,
                "set_offer_countries",
                &with_id(countries(op.all)),
                None,
            ));
        }
        match op.kind {
            OpKind::Create => {
                let mut form = params(op.fields, op.all);
                form.extend(countries(op.all).into_iter().filter(|(_, v)| !v.is_empty()));
                if !op.fields.contains_key("payout_type") {
                    let c = Commission::of(op.all);
                    form.push(("commission_type".into(), c.commission_type().into()));
                    form.push((
                        "advertiser_cost_type".into(),
                        c.advertiser_cost_type().into(),
                    ));
                }
                if let Some(a) = &self.advertiser_id {
                    form.push(("advertiserid".into(), a.clone()));
                }
                // Staged: created hidden from affiliates, revealed once the offerid is recorded.
                form.push(("hidden".into(), "1".into()));
                vec![self
                    .request(Method::POST, "add_offer", &[], Some(form))
                    .not_idempotent()]
            }
            OpKind::Update => edits,
            OpKind::Pause => {
                vec![self.request(Method::PATCH, "pause_offer", &with_id(vec![]), None)]
            }
            OpKind::Activate if op.hidden => {
                // The reveal of a staged create: it was never paused, only hidden. The changed
                // fields go with it; the countries call, if any, follows.
                let mut reveal = with_id(edit_params.clone());
                reveal.push(("hidden".into(), "0".into()));
                let mut reqs = vec![self.request(Method::PATCH, "edit_offer", &reveal, None)];
                reqs.extend(edits.into_iter().skip(usize::from(!edit_params.is_empty())));
                reqs
            }
            OpKind::Activate => {
                let mut reqs =
                    vec![self.request(Method::PATCH, "activate_offer", &with_id(vec![]), None)];
                reqs.extend(edits);
                reqs
            }
        }
    }

    fn interpret(
        &self,
        op: &TargetOp<'_>,
        _index: usize,
        resp: &HttpResponse,
    ) -> Result<Option<String>, Failure> {
        let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
        if op.kind == OpKind::Create && body.is_none() && resp.status.is_success() {
            return Err(Failure::ambiguous(format!(
                "Offerit answered the create with HTTP {} and a body that is not its JSON: {}",
                resp.status.as_u16(),
                resp.body_excerpt()
            )));
        }
        let result = body
            .as_ref()
            .and_then(|b| b.get("result"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = body
            .as_ref()
            .and_then(|b| b.get("message"))
            .cloned()
            .unwrap_or(Value::Null);
        if !resp.status.is_success() || !result.eq_ignore_ascii_case("success") {
            let text = match &message {
                Value::String(s) => s.clone(),
                Value::Null => resp.body_excerpt(),
                other => other.to_string(),
            };
            // A 200 whose result is not "success" classifies as permanent, like a 400.
            return Err(Failure::from_response(
                resp,
                format!(
                    "Offerit answered HTTP {} to {}: {text}",
                    resp.status.as_u16(),
                    op.kind.as_str()
                ),
            ));
        }
        if op.kind == OpKind::Create {
            let id = match message.get("offerid") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(Failure::ambiguous(format!(
                        "Offerit answered the create with success but no offerid: {}",
                        resp.body_excerpt()
                    )))
                }
            };
            return Ok(Some(id));
        }
        Ok(None)
    }

    fn lookup(&self, _external_ref: &str) -> Option<HttpRequest> {
        None
    }

    fn interpret_lookup(&self, _: &str, _: &HttpResponse) -> Result<Vec<String>, Failure> {
        Ok(Vec::new())
    }

    fn creates_hidden(&self) -> bool {
        true
    }
}
