//! Field-level diff between two versions of an offer, as stored in `offer_changes.diff`.

use super::{format_timestamp, Offer};
use serde_json::{json, Map, Value};

/// One changed field with its old and new value (JSON, as shown in the database).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: Value,
    pub new: Value,
}

/// The changed fields between two versions, in canonical field order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff(pub Vec<FieldChange>);

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `{field: {"old": .., "new": ..}}`, the `offer_changes.diff` column.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for c in &self.0 {
            m.insert(c.field.to_string(), json!({"old": c.old, "new": c.new}));
        }
        Value::Object(m)
    }

    pub fn fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|c| c.field)
    }

    /// `offer` with this diff's new values applied (the inverse of [`diff`]): replays history
    /// from `offer_changes` rows. Fails on a value of the wrong shape.
    pub fn apply(&self, offer: &Offer) -> Result<Offer, String> {
        let mut o = offer.clone();
        for c in &self.0 {
            set_field(&mut o, c.field, &c.new).map_err(|e| format!("{}: {e}", c.field))?;
        }
        Ok(o)
    }
}

fn set_field(o: &mut Offer, field: &str, v: &Value) -> Result<(), String> {
    use std::str::FromStr;
    let text = |v: &Value| -> Result<Option<String>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(format!("expected text or null, got {other}")),
        }
    };
    let dec = |v: &Value| -> Result<Option<rust_decimal::Decimal>, String> {
        text(v)?
            .map(|s| super::parse_decimal(&s).ok_or(format!("not a decimal: {s}")))
            .transpose()
    };
    let list = |v: &Value| -> Result<Vec<String>, String> {
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())
    };
    let time = |v: &Value| -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        text(v)?
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| e.to_string())
            })
            .transpose()
    };
    match field {
        "name" => o.name = text(v)?.unwrap_or_default(),
        "status" => {
            let s = text(v)?.unwrap_or_default();
            o.status =
                super::OfferStatus::from_str(&s).map_err(|_| format!("unknown status {s}"))?;
        }
        "payout" => o.payout = dec(v)?,
        "currency" => o.currency = text(v)?,
        "payout_type" => {
            o.payout_type = text(v)?
                .map(|p| {
                    super::PayoutType::from_str(&p).map_err(|_| format!("unknown payout type {p}"))
                })
                .transpose()?
        }
        "revenue" => o.revenue = dec(v)?,
        "countries" => o.countries = list(v)?,
        "platforms" => o.platforms = list(v)?,
        "categories" => o.categories = list(v)?,
        "tracking_url" => o.tracking_url = text(v)?,
        "preview_url" => o.preview_url = text(v)?,
        "advertiser" => o.advertiser = text(v)?,
        "description" => o.description = text(v)?,
        "icon_url" => o.icon_url = text(v)?,
        "app_package" => o.app_package = text(v)?,
        "starts_at" => o.starts_at = time(v)?,
        "ends_at" => o.ends_at = time(v)?,
        "payouts" => o.payouts = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
        "payout_unit" => {
            o.payout_unit = match text(v)? {
                None => super::PayoutUnit::Amount,
                Some(u) => super::PayoutUnit::from_str(&u)?,
            }
        }
        "excluded_countries" => o.excluded_countries = list(v)?,
        "approval" => {
            o.approval = text(v)?
                .map(|a| super::SourceApproval::from_str(&a))
                .transpose()?
        }
        "caps" => o.caps = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?,
        other => return Err(format!("unknown field {other}")),
    }
    Ok(())
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

impl Offer {
    /// Every canonical field (without `external_id`) as `(name, JSON value)`, in column order.
    pub fn field_values(&self) -> [(&'static str, Value); 22] {
        let dec = |d: &Option<rust_decimal::Decimal>| {
            d.map_or(Value::Null, |d| Value::String(d.normalize().to_string()))
        };
        let list = |l: &Vec<String>| Value::Array(l.iter().cloned().map(Value::String).collect());
        let time = |t: &Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or(Value::Null, |t| Value::String(format_timestamp(t)))
        };
        [
            ("name", Value::String(self.name.clone())),
            ("status", Value::String(self.status.as_str().into())),
            ("payout", dec(&self.payout)),
            ("currency", opt_str(&self.currency)),
            (
                "payout_type",
                self.payout_type
                    .map_or(Value::Null, |p| Value::String(p.as_str().into())),
            ),
            ("revenue", dec(&self.revenue)),
            ("countries", list(&self.countries)),
            ("platforms", list(&self.platforms)),
            ("categories", list(&self.categories)),
            ("tracking_url", opt_str(&self.tracking_url)),
            ("preview_url", opt_str(&self.preview_url)),
            ("advertiser", opt_str(&self.advertiser)),
            ("description", opt_str(&self.description)),
            ("icon_url", opt_str(&self.icon_url)),
            ("app_package", opt_str(&self.app_package)),
            ("starts_at", time(&self.starts_at)),
            ("ends_at", time(&self.ends_at)),
            (
                "payouts",
                serde_json::to_value(&self.payouts).unwrap_or(Value::Null),
            ),
            (
                "payout_unit",
                Value::String(self.payout_unit.as_str().into()),
            ),
            ("excluded_countries", list(&self.excluded_countries)),
            (
                "approval",
                self.approval
                    .map_or(Value::Null, |a| Value::String(a.as_str().into())),
            ),
            (
                "caps",
                serde_json::to_value(&self.caps).unwrap_or(Value::Null),
            ),
        ]
    }
}

/// What changed from `old` to `new`. Pure; the external ids are assumed equal.
pub fn diff(old: &Offer, new: &Offer) -> Diff {
    Diff(
        old.field_values()
            .into_iter()
            .zip(new.field_values())
            .filter(|((_, a), (_, b))| a != b)
            .map(|((field, old), (_, new))| FieldChange { field, old, new })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_decimal, OfferStatus};

    #[test]
    fn diff_lists_only_changed_fields_with_old_and_new() {
        let mut a = Offer::new("7", "A");
        a.payout = parse_decimal("1.5");
        let mut b = a.clone();
        b.payout = parse_decimal("2");
        b.status = OfferStatus::Paused;
        let d = diff(&a, &b);
        assert_eq!(d.fields().collect::<Vec<_>>(), vec!["status", "payout"]);
        assert_eq!(
            d.to_json(),
            json!({"status": {"old": "active", "new": "paused"}, "payout": {"old": "1.5", "new": "2"}})
        );
        assert!(diff(&a, &a).is_empty());
    }
}
