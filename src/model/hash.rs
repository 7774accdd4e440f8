//! Content hash of a normalized offer: a stable 64-bit xxh3 over the canonical fields.
//!
//! The hash covers every canonical field except `external_id` (the key) and `raw` (transport
//! detail): two payloads that normalize to the same offer hash the same, whatever their JSON
//! spelling or list order. Changing this encoding changes every stored hash, so it is versioned
//! by the schema migrations, not edited in place.

use super::Offer;
use xxhash_rust::xxh3::Xxh3;

const FIELD: u8 = 0x1e;
const ITEM: u8 = 0x1f;

fn opt(h: &mut Xxh3, v: Option<&str>) {
    match v {
        None => h.update(&[0]),
        Some(s) => {
            h.update(&[1]);
            h.update(s.as_bytes());
        }
    }
    h.update(&[FIELD]);
}

fn list(h: &mut Xxh3, items: &[String]) {
    // Lists are sorted by normalization; sort a copy anyway so an un-normalized offer cannot
    // produce an order-dependent hash.
    let mut sorted: Vec<&str> = items.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    h.update(&(sorted.len() as u32).to_le_bytes());
    for item in sorted {
        h.update(item.as_bytes());
        h.update(&[ITEM]);
    }
    h.update(&[FIELD]);
}

/// The offer's content hash as 16 lower-case hex digits.
pub fn content_hash(o: &Offer) -> String {
    let mut h = Xxh3::new();
    h.update(o.name.as_bytes());
    h.update(&[FIELD]);
    h.update(o.status.as_str().as_bytes());
    h.update(&[FIELD]);
    let mut buf = String::new();
    for d in [&o.payout, &o.revenue] {
        buf.clear();
        if let Some(d) = d {
            use std::fmt::Write;
            let _ = write!(buf, "{}", d.normalize());
        }
        opt(&mut h, d.as_ref().map(|_| buf.as_str()));
    }
    opt(&mut h, o.currency.as_deref());
    opt(&mut h, o.payout_type.map(|p| p.as_str()));
    list(&mut h, &o.countries);
    list(&mut h, &o.platforms);
    list(&mut h, &o.categories);
    for s in [
        &o.tracking_url,
        &o.preview_url,
        &o.advertiser,
        &o.description,
        &o.icon_url,
        &o.app_package,
    ] {
        opt(&mut h, s.as_deref());
    }
    for t in [o.starts_at, o.ends_at] {
        opt(&mut h, t.map(super::format_timestamp).as_deref());
    }
    // Added with schema 2; an empty list adds nothing, so hashes of offers without payout
    // tiers are what schema 1 stored.
    if !o.payouts.is_empty() {
        let mut tiers = o.payouts.clone();
        tiers.sort();
        h.update(serde_json::to_string(&tiers).unwrap_or_default().as_bytes());
        h.update(&[FIELD]);
    }
    format!("{:016x}", h.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_decimal, Offer};

    fn sample() -> Offer {
        let mut o = Offer::new("1", "Game X");
        o.payout = parse_decimal("1.20");
        o.countries = vec!["US".into(), "GB".into()];
        o.categories = vec!["Games".into(), "Android".into()];
        o
    }

    #[test]
    fn hash_ignores_list_order_and_decimal_spelling() {
        let a = sample();
        let mut b = sample();
        b.countries.reverse();
        b.categories.reverse();
        b.payout = parse_decimal("1.2000");
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a), content_hash(&a.clone().normalized()));
    }

    #[test]
    fn hash_sees_every_field() {
        let a = sample();
        let mut b = sample();
        b.payout = parse_decimal("1.21");
        assert_ne!(content_hash(&a), content_hash(&b));
        let mut c = sample();
        c.description = Some("".into());
        assert_ne!(
            content_hash(&a),
            content_hash(&c),
            "None and empty differ before normalization"
        );
        let mut d = sample();
        d.tracking_url = Some("x".into());
        let mut e = sample();
        e.preview_url = Some("x".into());
        assert_ne!(content_hash(&d), content_hash(&e), "field position matters");
    }
}
