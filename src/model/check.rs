//! Plausibility checks on an offer as a platform sent it, before normalization: an offer that
//! fails one is rejected (skipped, counted in `sync_runs.rejected`, its reason kept in
//! `offer_rejections`) instead of being stored with a silently dropped or absurd value.

use super::normalize::normalize_country;
use super::{parse_decimal, Offer};
use rust_decimal::Decimal;

/// The largest offer (its JSON as received) that is stored.
pub const MAX_OFFER_JSON_BYTES: usize = 1 << 20;
/// Payouts and revenues above this, in any currency, are taken for data errors.
pub const MAX_PAYOUT: i64 = 1_000_000;
const MAX_NAME_CHARS: usize = 1_000;
const MAX_URL_BYTES: usize = 8 << 10;
const MAX_DESCRIPTION_BYTES: usize = 64 << 10;

/// Country values meaning "no restriction" (ignored rather than rejected).
const WORLDWIDE: &[&str] = &["ALL", "WW", "GLOBAL", "WORLDWIDE", "INT", "*"];

/// ISO 4217 codes of current currencies (no funds or metals).
const ISO_CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN \
BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF \
GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL \
LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR \
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH \
UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL";

/// Whether `raw` (any case, surrounding space allowed) is a current ISO 4217 code.
pub fn is_iso_currency(raw: &str) -> bool {
    // On the per-offer path (once per payout entry, and Trackier sends one per geo): no
    // allocation, a binary search of the sorted table, which is one code per 4 bytes.
    let c = raw.trim().as_bytes();
    if c.len() != 3 {
        return false;
    }
    let key = [
        c[0].to_ascii_uppercase(),
        c[1].to_ascii_uppercase(),
        c[2].to_ascii_uppercase(),
    ];
    let table = ISO_CURRENCIES.as_bytes();
    let (mut lo, mut hi) = (0, table.len().div_ceil(4));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match table[mid * 4..mid * 4 + 3].cmp(&key[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

fn money(what: &str, d: Decimal) -> Result<(), String> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("{what} {d} is negative"));
    }
    if d > Decimal::from(MAX_PAYOUT) {
        return Err(format!(
            "{what} {d} is implausibly large (over {MAX_PAYOUT})"
        ));
    }
    Ok(())
}

fn currency(what: &str, c: Option<&str>) -> Result<(), String> {
    match c.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if !is_iso_currency(c) => {
            Err(format!("{what} {:?} is not an ISO 4217 code", clip(c)))
        }
        _ => Ok(()),
    }
}

fn countries<'a>(what: &str, items: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    for c in items {
        let t = c.trim();
        if t.is_empty() || WORLDWIDE.iter().any(|w| w.eq_ignore_ascii_case(t)) {
            continue;
        }
        if normalize_country(t).is_none() {
            return Err(format!(
                "{what} {:?} is not an ISO 3166-1 alpha-2 code",
                clip(t)
            ));
        }
    }
    Ok(())
}

fn length(what: &str, value: Option<&str>, limit: usize) -> Result<(), String> {
    match value {
        Some(v) if v.len() > limit => Err(format!("{what} is {} bytes (limit {limit})", v.len())),
        _ => Ok(()),
    }
}

/// A bounded excerpt of platform text for an error message.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Why `o` (as the platform sent it, before normalization) cannot be stored, if it cannot;
/// `raw_len` is the size of its JSON.
pub fn check(o: &Offer, raw_len: usize) -> Result<(), String> {
    if raw_len > MAX_OFFER_JSON_BYTES {
        return Err(format!(
            "the offer's JSON is {raw_len} bytes (limit {MAX_OFFER_JSON_BYTES})"
        ));
    }
    let name_chars = o.name.chars().count();
    if name_chars > MAX_NAME_CHARS {
        return Err(format!(
            "name is {name_chars} characters (limit {MAX_NAME_CHARS})"
        ));
    }
    length(
        "description",
        o.description.as_deref(),
        MAX_DESCRIPTION_BYTES,
    )?;
    length("tracking_url", o.tracking_url.as_deref(), MAX_URL_BYTES)?;
    length("preview_url", o.preview_url.as_deref(), MAX_URL_BYTES)?;
    length("icon_url", o.icon_url.as_deref(), MAX_URL_BYTES)?;
    length("advertiser", o.advertiser.as_deref(), MAX_NAME_CHARS)?;
    length("app_package", o.app_package.as_deref(), MAX_NAME_CHARS)?;
    if let Some(p) = o.payout {
        money("payout", p)?;
    }
    if let Some(r) = o.revenue {
        money("revenue", r)?;
    }
    currency("currency", o.currency.as_deref())?;
    countries("country", &o.countries)?;
    for (i, t) in o.payouts.iter().enumerate() {
        let n = i + 1;
        for (what, v) in [("payout", &t.payout), ("revenue", &t.revenue)] {
            if let Some(d) = v.as_deref().and_then(parse_decimal) {
                money(&format!("payout tier {n}: {what}"), d)?;
            }
        }
        currency(&format!("payout tier {n}: currency"), t.currency.as_deref())?;
        countries(&format!("payout tier {n}: country"), &t.countries)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        let mut o = Offer::new("1", "Game");
        o.payout = parse_decimal("1.5");
        o.currency = Some("usd".into());
        o.countries = vec!["us".into(), "UK".into(), " ".into(), "ALL".into()];
        o
    }

    /// The binary search needs the table sorted, one upper-case code per 4 bytes.
    #[test]
    fn currency_table_is_searchable_and_complete() {
        let codes: Vec<&str> = super::ISO_CURRENCIES.split(' ').collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "not sorted");
        assert!(codes
            .iter()
            .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
        assert_eq!(super::ISO_CURRENCIES.len(), codes.len() * 4 - 1);
        for c in &codes {
            assert!(super::is_iso_currency(c), "{c}");
            assert!(
                super::is_iso_currency(&format!(" {} ", c.to_lowercase())),
                "{c}"
            );
        }
        for bad in ["", "US", "USDT", "XYZ", "AAA", "ZZZ", "us d", "\u{e9}ur"] {
            assert!(!super::is_iso_currency(bad), "{bad}");
        }
    }

    #[test]
    fn plausible_offers_pass() {
        assert_eq!(check(&offer(), 100), Ok(()));
        let mut o = offer();
        o.payout = Some(Decimal::ZERO);
        o.currency = None;
        assert_eq!(check(&o, 100), Ok(()));
    }

    #[test]
    fn each_implausible_value_is_named() {
        type Change = Box<dyn Fn(&mut Offer)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|o| o.payout = parse_decimal("-5")),
                "payout -5 is negative",
            ),
            (
                Box::new(|o| o.revenue = parse_decimal("1e15")),
                "revenue 1000000000000000 is implausibly large (over 1000000)",
            ),
            (
                Box::new(|o| o.currency = Some("dollars".into())),
                "currency \"dollars\" is not an ISO 4217 code",
            ),
            (
                Box::new(|o| o.currency = Some("XYZ".into())),
                "currency \"XYZ\" is not an ISO 4217 code",
            ),
            (
                Box::new(|o| o.countries.push("Narnia".into())),
                "country \"Narnia\" is not an ISO 3166-1 alpha-2 code",
            ),
            (
                Box::new(|o| o.countries.push("ZZ".into())),
                "country \"ZZ\" is not an ISO 3166-1 alpha-2 code",
            ),
            (
                Box::new(|o| o.description = Some("x".repeat(10 << 20))),
                "description is 10485760 bytes (limit 65536)",
            ),
        ];
        for (change, want) in cases {
            let mut o = offer();
            change(&mut o);
            assert_eq!(check(&o, 100), Err(want.to_string()));
        }
        assert_eq!(
            check(&offer(), (10 << 20) + 1),
            Err("the offer's JSON is 10485761 bytes (limit 1048576)".into())
        );
    }
}
