//! CAKE's payout text: an amount with a currency symbol or code (`$2.50`, `€1,20`, `2.50 USD`),
//! or a percentage (`25%`, revenue-share offers). Symbols map to ISO 4217; one offersync does not
//! know, or one that names several currencies (`¥`), is an error, never a guess.

use rust_decimal::Decimal;

/// What a payout text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payout {
    /// No payout given.
    None,
    /// An amount, with the currency when the text names one.
    Amount {
        amount: Decimal,
        currency: Option<String>,
    },
    /// A share of the sale, in percent.
    Percentage(Decimal),
}

/// Currency symbols (and symbol-prefixed codes) with the one currency each means. `$` is
/// configurable (`dollar_currency`), so it is not here.
const SYMBOLS: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("₹", "INR"),
    ("R$", "BRL"),
    ("C$", "CAD"),
    ("CA$", "CAD"),
    ("A$", "AUD"),
    ("AU$", "AUD"),
    ("NZ$", "NZD"),
    ("₽", "RUB"),
    ("₩", "KRW"),
    ("₺", "TRY"),
    ("₱", "PHP"),
    ("₫", "VND"),
    ("₪", "ILS"),
    ("zł", "PLN"),
    ("kr", "SEK"),
];

/// The ISO code a currency marker means: an ISO 4217 code as such, a known symbol, or `$`.
fn currency_of(marker: &str, dollar: &str) -> Result<String, String> {
    if marker == "$" {
        return Ok(dollar.to_string());
    }
    if crate::model::is_iso_currency(marker) {
        return Ok(marker.to_ascii_uppercase());
    }
    if marker == "¥" || marker == "元" {
        return Err(format!(
            "currency symbol {marker:?} names more than one currency (JPY, CNY)"
        ));
    }
    SYMBOLS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(marker))
        .map(|(_, iso)| iso.to_string())
        .ok_or_else(|| format!("currency symbol {marker:?} is not one offersync knows"))
}

/// A decimal from digits with either `.` or `,` as the decimal separator: when both appear the
/// last one is; a lone `,` followed by exactly three digits groups thousands (`1,200`), any other
/// lone `,` is decimal (`1,20`); several of the same separator group thousands.
fn amount(number: &str) -> Option<Decimal> {
    let n: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\''))
        .collect();
    let (dots, commas) = (n.matches('.').count(), n.matches(',').count());
    let plain = match (dots, commas) {
        (_, 0) if dots > 1 => n.replace('.', ""),
        (_, 0) => n,
        (0, 1) => {
            let after = n.len() - n.find(',')? - 1;
            if after == 3 {
                n.replace(',', "")
            } else {
                n.replace(',', ".")
            }
        }
        (0, _) => n.replace(',', ""),
        _ => {
            let (last_dot, last_comma) = (n.rfind('.')?, n.rfind(',')?);
            if last_comma > last_dot {
                n.replace('.', "").replace(',', ".")
            } else {
                n.replace(',', "")
            }
        }
    };
    if !plain.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    crate::model::parse_decimal(&plain)
}

/// Read a payout text; `dollar` is the ISO code a bare `$` means.
pub fn parse(text: &str, dollar: &str) -> Result<Payout, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Payout::None);
    }
    if let Some(share) = t.strip_suffix('%') {
        return amount(share.trim())
            .map(Payout::Percentage)
            .ok_or_else(|| format!("payout {t:?} is not a percentage"));
    }
    let is_num = |c: char| c.is_ascii_digit() || matches!(c, '.' | ',');
    let (Some(first), Some(last)) = (t.find(|c: char| c.is_ascii_digit()), t.rfind(is_num)) else {
        return Err(format!("payout {t:?} has no amount"));
    };
    // The number may start with a separator (".50") or a sign before the marker ("-$1").
    let start = t[..first]
        .rfind(|c: char| !is_num(c))
        .map_or(0, |i| i + t[i..].chars().next().map_or(1, char::len_utf8));
    let (mut prefix, number, suffix) = (t[..start].trim(), &t[start..=last], t[last + 1..].trim());
    let negative = prefix.starts_with('-') || prefix.ends_with('-');
    prefix = prefix.trim_matches('-').trim();
    let value = amount(number).ok_or_else(|| format!("payout {t:?} is not an amount"))?;
    let value = if negative { -value } else { value };
    let currency = match (prefix, suffix) {
        ("", "") => None,
        (m, "") | ("", m) => {
            Some(currency_of(m, dollar).map_err(|e| format!("payout {t:?}: {e}"))?)
        }
        (a, b) => {
            let (a, b) = (currency_of(a, dollar), currency_of(b, dollar));
            match (a, b) {
                (Ok(a), Ok(b)) if a == b => Some(a),
                (Ok(a), Ok(b)) => {
                    return Err(format!("payout {t:?} names two currencies ({a} and {b})"))
                }
                (Err(e), _) | (_, Err(e)) => return Err(format!("payout {t:?}: {e}")),
            }
        }
    };
    Ok(Payout::Amount {
        amount: value,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Option<String>) {
        match parse(text, "USD").unwrap() {
            Payout::Amount { amount, currency } => (amount.to_string(), currency),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_documents_three_spellings() {
        assert_eq!(ok("$2.50"), ("2.5".into(), Some("USD".into())));
        assert_eq!(ok("€1,20"), ("1.2".into(), Some("EUR".into())));
        assert_eq!(ok("2.50 USD"), ("2.5".into(), Some("USD".into())));
    }

    #[test]
    fn other_spellings_and_separators() {
        for (text, amount, currency) in [
            ("£3", "3", Some("GBP")),
            ("US$ 0.75", "0.75", Some("USD")),
            ("R$12,00", "12", Some("BRL")),
            ("EUR 1.234,56", "1234.56", Some("EUR")),
            ("$1,200.50", "1200.5", Some("USD")),
            ("$1,200", "1200", Some("USD")),
            ("2.50USD", "2.5", Some("USD")),
            ("€ 0,05", "0.05", Some("EUR")),
            ("$.50", "0.5", Some("USD")),
            ("$2.50 USD", "2.5", Some("USD")),
            ("4.1", "4.1", None),
            ("-$1.00", "-1", Some("USD")),
        ] {
            assert_eq!(
                ok(text),
                (amount.to_string(), currency.map(String::from)),
                "{text}"
            );
        }
        assert_eq!(
            parse("$2", "CAD").unwrap(),
            Payout::Amount {
                amount: Decimal::from(2),
                currency: Some("CAD".into())
            },
            "the configured dollar"
        );
        assert_eq!(
            parse("25%", "USD").unwrap(),
            Payout::Percentage(Decimal::from(25))
        );
        assert_eq!(parse(" ", "USD").unwrap(), Payout::None);
    }

    #[test]
    fn unknown_or_ambiguous_symbols_are_errors_with_their_reason() {
        assert_eq!(
            parse("¤2.50", "USD").unwrap_err(),
            "payout \"¤2.50\": currency symbol \"¤\" is not one offersync knows"
        );
        assert!(parse("¥300", "USD")
            .unwrap_err()
            .contains("more than one currency"));
        assert!(parse("2.50 XYZ", "USD")
            .unwrap_err()
            .contains("\"XYZ\" is not one offersync knows"));
        assert!(parse("$2.50 EUR", "USD")
            .unwrap_err()
            .contains("two currencies"));
        assert!(parse("free", "USD").unwrap_err().contains("has no amount"));
    }
}
