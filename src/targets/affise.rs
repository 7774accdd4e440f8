//! Affise as a target (`kind = "affise"`), see APIS.md §2.5–2.8.
//!
//! `API-Key` header; form-encoded bodies with PHP-style bracket arrays. Create:
//! `POST {base_url}/3.0/admin/offer` with `title`, `advertiser` (the configured
//! `advertiser_id`), `url`, `url_preview`, `status` (`create_status`, default `active`; Affise's
//! own default would be `stopped`), `external_offer_id` = `source:external_id`, `categories[]`,
//! `description_lang[en]` and one payment: `payments[0][countries][]`, `[revenue]` (the
//! affiliate payout after `payout_ratio`), `[total]` (the source payout), `[currency]`,
//! `[type]=fixed`. The answer is `{status: 1, offer: {..}, id: N}`. Update:
//! `POST /3.0/admin/offer/{id}` with the changed fields (payments are sent whole: Affise replaces
//! the list); pause: `status=stopped`; re-activate: `status=active`. Errors: HTTP >= 400 or
//! `status != 1`, text in `error` or `message`. An interrupted create is found again with
//! `GET /3.0/offers?q=source:external_id`, matching `external_offer_id` exactly.

use super::{date_part, form_text, Target, TargetOp};
use crate::config::{Secret, TargetConfig};
use crate::http::{Failure, FailureClass, HttpRequest, HttpResponse};
use crate::model::{OpKind, PushFields};
use reqwest::{Method, Url};
use serde_json::Value;

pub struct Affise {
    base: String,
    api_key: Secret,
    advertiser_id: String,
    create_status: String,
    /// `[targets.defaults] privacy` of created offers.
    privacy: Option<String>,
}

const PAYMENT_FIELDS: &[&str] = &[
    "payout",
    "cost",
    "currency",
    "countries",
    "payout_unit",
    "excluded_countries",
];

fn list(form: &mut Vec<(String, String)>, name: &str, v: &Value) {
    for item in v.as_array().into_iter().flatten() {
        form.push((format!("{name}[]"), form_text(item)));
    }
}

impl Affise {
    pub fn new(cfg: &TargetConfig, api_key: Secret) -> Result<Affise, String> {
        Url::parse(&cfg.base_url).map_err(|e| format!("targets {}: base_url: {e}", cfg.name))?;
        Ok(Affise {
            base: cfg.base_url.trim_end_matches('/').to_string(),
            api_key,
            advertiser_id: cfg.advertiser_id.clone().unwrap_or_default(),
            create_status: cfg.create_status.clone().unwrap_or_else(|| "active".into()),
            privacy: cfg.controls.defaults.privacy.clone(),
        })
    }

    fn post(&self, path: &str, form: Vec<(String, String)>) -> HttpRequest {
        let url = Url::parse(&format!("{}/{path}", self.base)).expect("base_url was validated");
        let mut req = HttpRequest::get(url).secret_header("api-key", &self.api_key);
        req.method = Method::POST;
        req.form = Some(form);
        req
    }

    /// The form for `fields`; `all` completes the payment when any payment field changed.
    fn form(&self, fields: &PushFields, all: &PushFields) -> Vec<(String, String)> {
        let mut form = Vec::new();
        for (k, v) in fields {
            match k.as_str() {
                "name" => form.push(("title".into(), form_text(v))),
                "url" => form.push(("url".into(), form_text(v))),
                "preview_url" => form.push(("url_preview".into(), form_text(v))),
                "description" => form.push(("description_lang[en]".into(), form_text(v))),
                "categories" => list(&mut form, "categories", v),
                "app_package" => form.push(("bundle_id".into(), form_text(v))),
                "starts_at" => {
                    form.push(("start_at".into(), date_part(v, true).unwrap_or_default()))
                }
                "ends_at" => {
                    form.push(("stopDate".into(), date_part(v, false).unwrap_or_default()))
                }
                _ => {}
            }
        }
        if PAYMENT_FIELDS.iter().any(|f| fields.contains_key(*f)) {
            let get = |f: &str| all.get(f).map(form_text).unwrap_or_default();
            let nonempty = |k: &str| {
                all.get(k)
                    .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
            };
            match (nonempty("countries"), nonempty("excluded_countries")) {
                (Some(c), _) => list(&mut form, "payments[0][countries]", c),
                // Worldwide but these: the payment's countries, excluded.
                (None, Some(x)) => {
                    list(&mut form, "payments[0][countries]", x);
                    form.push(("payments[0][country_exclude]".into(), "1".into()));
                }
                (None, None) => {}
            }
            form.push(("payments[0][revenue]".into(), get("payout")));
            form.push(("payments[0][total]".into(), get("cost")));
            form.push(("payments[0][currency]".into(), get("currency")));
            // A percentage payout is a percent payment (APIS.md 2.5: fixed|percent|mixed).
            let kind = match all.get("payout_unit").and_then(Value::as_str) {
                Some("percent") => "percent",
                _ => "fixed",
            };
            form.push(("payments[0][type]".into(), kind.into()));
        }
        if let Some(caps) = fields.get("caps").and_then(Value::as_array) {
            // `caps[i][period|type|value]` (APIS.md 2.5); the list replaces the offer's caps.
            for (i, c) in caps.iter().enumerate() {
                let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
                let period = match text("period") {
                    "daily" => "day",
                    "monthly" => "month",
                    _ => "all",
                };
                form.push((format!("caps[{i}][period]"), period.into()));
                form.push((format!("caps[{i}][type]"), text("kind").into()));
                form.push((format!("caps[{i}][value]"), text("value").into()));
                // Seed 001's example: every goal, every affiliate.
                form.push((format!("caps[{i}][goal_type]"), "all".into()));
                form.push((format!("caps[{i}][affiliate_type]"), "all".into()));
            }
        }
        form
    }
}

fn error_text(body: &Option<Value>) -> String {
    let pick = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get(k))
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    };
    pick("error")
        .or_else(|| pick("message"))
        .unwrap_or_else(|| "no message".into())
}

/// The body of a successful answer, or what the failure means. `creates`: the request was a
/// create, so a success that is not Affise's JSON leaves its outcome unknown.
fn ok(resp: &HttpResponse, what: &str, creates: bool) -> Result<Option<Value>, Failure> {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let status_one = body
        .as_ref()
        .and_then(|b| b.get("status"))
        .is_some_and(|s| s == 1 || s == "1");
    if resp.status.is_success() && status_one {
        return Ok(body);
    }
    let msg = format!(
        "Affise answered HTTP {} to {what}: {}",
        resp.status.as_u16(),
        error_text(&body)
    );
    if body.is_none() && resp.status.is_success() {
        let msg = format!("{msg} (not JSON: {})", resp.body_excerpt());
        return Err(if creates {
            Failure::ambiguous(msg)
        } else {
            Failure::transient(msg)
        });
    }
    Err(Failure::in_body(resp, None, FailureClass::Permanent, msg))
}

impl Target for Affise {
    fn requests(&self, op: &TargetOp<'_>) -> Vec<HttpRequest> {
        let id = op.target_offer_id.unwrap_or_default();
        match op.kind {
            OpKind::Create => {
                let mut form = vec![
                    ("advertiser".to_string(), self.advertiser_id.clone()),
                    ("status".to_string(), self.create_status.clone()),
                    ("external_offer_id".to_string(), op.external_ref.to_string()),
                ];
                if let Some(p) = &self.privacy {
                    form.push(("privacy".to_string(), p.clone()));
                }
                form.extend(self.form(op.fields, op.all));
                vec![self.post("3.0/admin/offer", form).not_idempotent()]
            }
            OpKind::Update => vec![self.post(
                &format!("3.0/admin/offer/{id}"),
                self.form(op.fields, op.all),
            )],
            OpKind::Pause => vec![self.post(
                &format!("3.0/admin/offer/{id}"),
                vec![("status".into(), "stopped".into())],
            )],
            OpKind::Activate => {
                let mut form = vec![("status".to_string(), "active".to_string())];
                form.extend(self.form(op.fields, op.all));
                vec![self.post(&format!("3.0/admin/offer/{id}"), form)]
            }
        }
    }

    fn interpret(
        &self,
        op: &TargetOp<'_>,
        _index: usize,
        resp: &HttpResponse,
    ) -> Result<Option<String>, Failure> {
        let body = ok(resp, op.kind.as_str(), op.kind == OpKind::Create)?;
        if op.kind != OpKind::Create {
            return Ok(None);
        }
        let id = body
            .as_ref()
            .and_then(|b| {
                b.get("id")
                    .or_else(|| b.get("offer").and_then(|o| o.get("id")))
            })
            .and_then(|v| match v {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                Failure::ambiguous(format!(
                    "Affise answered the create with success but no offer id: {}",
                    resp.body_excerpt()
                ))
            })?;
        Ok(Some(id))
    }

    fn lookup(&self, external_ref: &str) -> Option<HttpRequest> {
        let mut url = Url::parse(&format!("{}/3.0/offers", self.base)).ok()?;
        url.query_pairs_mut()
            .append_pair("q", external_ref)
            .append_pair("status[]", "active")
            .append_pair("status[]", "stopped")
            .append_pair("status[]", "suspended");
        Some(HttpRequest::get(url).secret_header("api-key", &self.api_key))
    }

    /// `GET /3.0/offer/{id}` → `{"status": 1, "offer": {..., "status": "active"}}` (APIS.md 2.4).
    fn read(&self, target_offer_id: &str) -> Option<HttpRequest> {
        let url = Url::parse(&format!("{}/3.0/offer/{target_offer_id}", self.base)).ok()?;
        Some(HttpRequest::get(url).secret_header("api-key", &self.api_key))
    }

    fn interpret_read(&self, resp: &HttpResponse) -> Result<bool, Failure> {
        let body = ok(resp, "reading the offer", false)?;
        let status = body
            .as_ref()
            .and_then(|b| b.pointer("/offer/status"))
            .and_then(Value::as_str);
        match status {
            Some(s) => Ok(s == "active"),
            None => Err(Failure::transient(
                "Affise answered the offer read without offer.status",
            )),
        }
    }

    fn interpret_lookup(
        &self,
        external_ref: &str,
        resp: &HttpResponse,
    ) -> Result<Vec<String>, Failure> {
        let body = ok(resp, "the lookup", false)?;
        let mut found: Vec<(u64, String)> = body
            .as_ref()
            .and_then(|b| b.get("offers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|o| o.get("external_offer_id").and_then(Value::as_str) == Some(external_ref))
            .filter_map(|o| o.get("id"))
            .map(|v| {
                let id = v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string());
                (id.parse().unwrap_or(u64::MAX), id)
            })
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }
}
