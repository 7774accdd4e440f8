//! Content hash of a normalized offer: a stable 64-bit xxh3 over the canonical fields.
//!
//! The hash covers every canonical field except `external_id` (the key) and `raw` (transport
//! detail): two payloads that normalize to the same offer hash the same, whatever their JSON
//! spelling or list order. Changing this encoding changes every stored hash, so it is versioned
//! by the schema migrations, not edited in place.

use super::Offer;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

const FIELD: u8 = 0x1e;
const ITEM: u8 = 0x1f;

fn opt(h: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => h.push(0),
        Some(s) => {
            h.push(1);
            h.extend_from_slice(s);
        }
    }
    h.push(FIELD);
}

fn list(h: &mut Vec<u8>, items: &[String]) {
    h.extend_from_slice(&(items.len() as u32).to_le_bytes());
    // Lists are sorted by normalization; an un-normalized offer's list is sorted here so it
    // cannot produce an order-dependent hash.
    if items.is_sorted() {
        items.iter().for_each(|i| item(h, i));
    } else {
        let mut sorted: Vec<&str> = items.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.iter().for_each(|i| item(h, i));
    }
    h.push(FIELD);
}

fn item(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(s.as_bytes());
    h.push(ITEM);
}

thread_local! {
    /// The bytes being hashed, reused across offers: one xxh3 pass over one buffer instead of
    /// a streaming update per field and an allocation per offer.
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The offer's content hash as 16 lower-case hex digits.
pub fn content_hash(o: &Offer) -> String {
    BUF.with_borrow_mut(|h| {
        h.clear();
        encode(h, o);
        let digest = xxhash_rust::xxh3::xxh3_64(h);
        if h.capacity() > 1 << 20 {
            // An offer with megabytes of text: do not keep that buffer for the next ones.
            *h = Vec::new();
        }
        let mut out = String::with_capacity(16);
        let _ = write!(out, "{digest:016x}");
        out
    })
}

/// The hashed encoding (a stable format: changing it changes every stored hash).
fn encode(h: &mut Vec<u8>, o: &Offer) {
    h.extend_from_slice(o.name.as_bytes());
    h.push(FIELD);
    h.extend_from_slice(o.status.as_str().as_bytes());
    h.push(FIELD);
    for d in [&o.payout, &o.revenue] {
        match d {
            None => opt(h, None),
            Some(d) => {
                h.push(1);
                let _ = write!(h, "{}", d.normalize());
                h.push(FIELD);
            }
        }
    }
    opt(h, o.currency.as_deref().map(str::as_bytes));
    opt(h, o.payout_type.map(|p| p.as_str().as_bytes()));
    list(h, &o.countries);
    list(h, &o.platforms);
    list(h, &o.categories);
    for s in [
        &o.tracking_url,
        &o.preview_url,
        &o.advertiser,
        &o.description,
        &o.icon_url,
        &o.app_package,
    ] {
        opt(h, s.as_deref().map(str::as_bytes));
    }
    for t in [o.starts_at, o.ends_at] {
        opt(
            h,
            t.map(super::format_timestamp).as_deref().map(str::as_bytes),
        );
    }
    // Added with schema 2; an empty list adds nothing, so hashes of offers without payout
    // tiers are what schema 1 stored.
    if !o.payouts.is_empty() {
        let mut tiers = o.payouts.clone();
        tiers.sort();
        h.extend_from_slice(serde_json::to_string(&tiers).unwrap_or_default().as_bytes());
        h.push(FIELD);
    }
    // Added with schema 8, each only when it differs from its default: an offer without a
    // percentage payout, exclusions, an approval state or caps hashes as schema 7 stored it.
    if o.payout_unit != super::PayoutUnit::Amount {
        h.extend_from_slice(b"unit=");
        h.extend_from_slice(o.payout_unit.as_str().as_bytes());
        h.push(FIELD);
    }
    if !o.excluded_countries.is_empty() {
        h.extend_from_slice(b"excluded=");
        list(h, &o.excluded_countries);
    }
    if let Some(a) = o.approval {
        h.extend_from_slice(b"approval=");
        h.extend_from_slice(a.as_str().as_bytes());
        h.push(FIELD);
    }
    if !o.caps.is_empty() {
        let mut caps = o.caps.clone();
        caps.sort();
        h.extend_from_slice(b"caps=");
        h.extend_from_slice(serde_json::to_string(&caps).unwrap_or_default().as_bytes());
        h.push(FIELD);
    }
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

#[cfg(test)]
mod golden {
    use super::content_hash;
    use crate::model::{parse_decimal, Offer, OfferStatus, PayoutTier, PayoutType};
    use chrono::TimeZone;

    /// Hashes are stored: the encoding must never drift. These values were computed by the
    /// streaming implementation this one replaced.
    #[test]
    fn hashes_are_stable() {
        let mut o = Offer::new("1", "Game X");
        o.payout = parse_decimal("1.20");
        o.revenue = parse_decimal("3");
        o.currency = Some("USD".into());
        o.payout_type = Some(PayoutType::Cpi);
        o.countries = vec!["GB".into(), "US".into()];
        o.platforms = vec!["android".into()];
        o.categories = vec!["Games".into()];
        o.tracking_url = Some("https://t.example/c?o=1".into());
        o.description = Some("Install & open".into());
        o.starts_at = Some(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let bare = Offer::new("2", "Bare");
        let mut tiered = o.clone();
        tiered.status = OfferStatus::Paused;
        tiered.payouts = vec![PayoutTier {
            payout: Some("2.5".into()),
            revenue: None,
            currency: Some("EUR".into()),
            countries: vec!["DE".into()],
            kind: Some("fixed".into()),
            goal: None,
            title: Some("Install".into()),
        }];
        let got = [content_hash(&o), content_hash(&bare), content_hash(&tiered)];
        assert_eq!(
            got,
            ["7c8c1eb5da620669", "134d8e84d7c748fe", "c0d02ab587e92d32"]
        );
    }
}
