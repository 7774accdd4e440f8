//! Field normalizers shared by every platform: countries, currencies, platforms, categories,
//! decimals and timestamps. Each accepts the sloppy spellings platforms send and returns the
//! canonical form, or `None`/drops the item when nothing sensible can be made of it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// ISO 3166-1 alpha-2, officially assigned codes.
const ISO_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR \
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS \
IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO \
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT \
TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK";

/// Bit `i * 26 + j` set when the letters `i`, `j` form an assigned code: O(1) lookups.
fn iso_table() -> &'static [bool; 676] {
    static TABLE: std::sync::OnceLock<[bool; 676]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [false; 676];
        for c in ISO_COUNTRIES.split(' ') {
            let b = c.as_bytes();
            t[(b[0] - b'A') as usize * 26 + (b[1] - b'A') as usize] = true;
        }
        t
    })
}

/// Canonical country code for one platform spelling: upper-case ISO alpha-2 (`UK` becomes `GB`).
pub fn normalize_country(raw: &str) -> Option<String> {
    let b = raw.trim().as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let (x, y) = (b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase());
    let (x, y) = if (x, y) == (b'U', b'K') {
        (b'G', b'B')
    } else {
        (x, y)
    };
    iso_table()[(x - b'A') as usize * 26 + (y - b'A') as usize]
        .then(|| String::from_utf8_lossy(&[x, y]).into_owned())
}

/// Upper-case ISO alpha-2 codes, de-duplicated and sorted; values that are not ISO codes are dropped.
pub fn normalize_countries<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = items.into_iter().filter_map(normalize_country).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Lower-case platform names with the usual aliases folded (`iOS`, `iphone` → `ios`; `web`, `pc` → `desktop`).
pub fn normalize_platforms<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = items
        .into_iter()
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .map(|p| match p.as_str() {
            "iphone" | "ipad" | "ios" => "ios".to_string(),
            "web" | "pc" | "desktop" => "desktop".to_string(),
            _ => p,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Trimmed, non-empty, de-duplicated and sorted category names (case is kept).
pub fn normalize_categories<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = items
        .into_iter()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Upper-case ISO 4217-shaped code (three letters), or `None`.
pub fn normalize_currency(raw: &str) -> Option<String> {
    let c = raw.trim();
    (c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic())).then(|| c.to_ascii_uppercase())
}

/// A decimal from a platform's text (`"1.20"`, `"1e2"`, `" 3 "`), normalized (`1.2`). Never via f64.
pub fn parse_decimal(raw: &str) -> Option<Decimal> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
        .map(|d| d.normalize())
}

/// A UTC timestamp from any of the shapes platforms send: RFC 3339 (`Z` or offset), the same
/// without a zone (taken as UTC), `YYYY-MM-DD HH:MM:SS`, a bare date, or unix seconds/milliseconds.
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return unix_to_utc(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Unix seconds (or milliseconds, when the number is too large to be seconds) as UTC. 0 means "unset".
pub fn unix_to_utc(n: i64) -> Option<DateTime<Utc>> {
    match n {
        n if n <= 0 => None,
        n if n > 100_000_000_000 => Utc.timestamp_millis_opt(n).single(),
        n => Utc.timestamp_opt(n, 0).single(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_upper_case_iso_sorted_and_unique() {
        assert_eq!(
            normalize_countries(["us", " GB", "uk", "US", "USA", "xx", ""]),
            vec!["GB", "US"]
        );
    }

    #[test]
    fn decimals_never_go_through_floats() {
        assert_eq!(parse_decimal("1.20").unwrap().to_string(), "1.2");
        assert_eq!(parse_decimal("0.1").unwrap().to_string(), "0.1");
        assert_eq!(parse_decimal("1e2").unwrap().to_string(), "100");
        assert_eq!(parse_decimal("abc"), None);
    }

    #[test]
    fn timestamps_with_and_without_zone() {
        let z = parse_timestamp("2025-11-01T14:30:00Z").unwrap();
        assert_eq!(parse_timestamp("2025-11-01T14:30:00"), Some(z));
        assert_eq!(parse_timestamp("2025-11-01 14:30:00"), Some(z));
        assert_eq!(parse_timestamp("2025-11-01T16:30:00+02:00"), Some(z));
        assert_eq!(parse_timestamp(&z.timestamp().to_string()), Some(z));
        assert_eq!(parse_timestamp("0"), None);
        assert_eq!(parse_timestamp("soon"), None);
    }

    #[test]
    fn platforms_fold_aliases() {
        assert_eq!(
            normalize_platforms(["iOS", "Android", "iphone", "web"]),
            vec!["android", "desktop", "ios"]
        );
    }
}
