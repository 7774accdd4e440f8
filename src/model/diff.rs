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
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

impl Offer {
    /// Every canonical field (without `external_id`) as `(name, JSON value)`, in column order.
    pub fn field_values(&self) -> [(&'static str, Value); 18] {
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
