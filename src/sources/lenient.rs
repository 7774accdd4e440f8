//! Serde helpers for the type sloppiness of platform JSON: ids and amounts that arrive as strings
//! or numbers, lists that arrive as arrays or comma-separated strings.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string, or a number/bool rendered as one. `null` is `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string or number, found {}",
                kind(&other)
            )))
        }
    })
}

/// A decimal from a JSON number or string, never through f64 arithmetic (numbers are read from
/// their shortest textual form). `null` and `""` are `None`.
pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let text = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a decimal, found {}",
                kind(&other)
            )))
        }
    };
    crate::model::parse_decimal(&text)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a decimal")))
}

/// A list of strings from an array (of strings or numbers) or a comma-separated string.
pub fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A non-negative integer from a number or a numeric string.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rows an envelope gives as an object keyed by offer id (HasOffers `data.data`, Offer18
/// `data`), each value a row, in the order sent. An empty result may come as `[]`, `false`,
/// `null` or `""`: no rows. An array is read as the rows themselves.
#[derive(Default)]
pub struct KeyedRows<'a>(pub Vec<&'a serde_json::value::RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for KeyedRows<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use serde_json::value::RawValue;
        struct Rows<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Rows<'a> {
            type Value = KeyedRows<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of rows keyed by id, an array of rows, [] or false")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut rows = Vec::new();
                while let Some((_, row)) = m.next_entry::<IgnoredAny, &'de RawValue>()? {
                    rows.push(row);
                }
                Ok(KeyedRows(rows))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                let mut rows = Vec::new();
                while let Some(row) = s.next_element::<&'de RawValue>()? {
                    rows.push(row);
                }
                Ok(KeyedRows(rows))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                match b {
                    false => Ok(KeyedRows(Vec::new())),
                    true => Err(E::custom("expected rows, found true")),
                }
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(KeyedRows(Vec::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(KeyedRows(Vec::new()))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                match s.trim() {
                    "" => Ok(KeyedRows(Vec::new())),
                    _ => Err(E::custom(format!("expected rows, found the text {s:?}"))),
                }
            }
        }
        d.deserialize_any(Rows(std::marker::PhantomData))
    }
}

/// Names from a platform's "model keyed by id" object (`{"US": {"code": "US", ..}}`), taking
/// `field` of each value (its key when absent); an array of strings or of such objects is read
/// alike, and `[]`/`false`/`null` are none.
pub fn keyed_names(v: &Value, field: &str) -> Vec<String> {
    let name = |key: Option<&str>, item: &Value| match item {
        Value::Object(o) => match o.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => key.map(String::from),
        },
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    match v {
        Value::Object(m) => m.iter().filter_map(|(k, i)| name(Some(k), i)).collect(),
        Value::Array(a) => a.iter().filter_map(|i| name(None, i)).collect(),
        _ => Vec::new(),
    }
}
