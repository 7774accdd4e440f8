//! Environment overrides: `OFFERSYNC__<SECTION>__<KEY>=value`, with sources and targets named
//! (or numbered): `OFFERSYNC__SOURCES__TRACKLY_MAIN__PAGE_SIZE=50` sets `page_size` of the
//! source named `trackly-main` (the name upper-cased, every other character than a letter or a
//! digit written `_`; `OFFERSYNC__SOURCES__0__PAGE_SIZE` is the first source). Values are read
//! as a boolean, an integer or a number when they look like one, else as text. An override that
//! names no known section, source or target is an error that names the variable.

use config::builder::{BuilderState, ConfigBuilder};
use config::ValueKind;

/// One override, resolved to its config key path.
#[derive(Debug, Clone)]
pub struct Override {
    /// The environment variable, for error messages.
    pub variable: String,
    /// The key path the config crate understands (`sources[2].page_size`).
    pub key: String,
    pub value: String,
}

/// How a name is written in a variable: upper case, non-alphanumerics as `_`.
fn as_variable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The overrides in `vars` (every `OFFERSYNC__` variable), resolved against the names of the
/// file's sources and targets; every variable that resolves to nothing is an error.
pub fn overrides(
    vars: impl IntoIterator<Item = (String, String)>,
    sources: &[String],
    targets: &[String],
) -> Result<Vec<Override>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (variable, value) in vars {
        let Some(rest) = variable.strip_prefix("OFFERSYNC__") else {
            continue;
        };
        let parts: Vec<&str> = rest.split("__").collect();
        let key = |parts: &[&str]| parts.join(".").to_ascii_lowercase();
        let resolved = match parts.as_slice() {
            [section, keys @ ..] if !keys.is_empty() && ["DATABASE", "DAEMON", "CONSOLE"].contains(section) => {
                Ok(format!("{}.{}", section.to_ascii_lowercase(), key(keys)))
            }
            [section, who, keys @ ..] if !keys.is_empty() && ["SOURCES", "TARGETS"].contains(section) => {
                let (list, what) = if *section == "SOURCES" {
                    (sources, "source")
                } else {
                    (targets, "target")
                };
                let index = who.parse::<usize>().ok().filter(|i| *i < list.len()).or_else(|| {
                    list.iter().position(|n| as_variable(n) == *who)
                });
                match index {
                    Some(i) => Ok(format!("{}[{i}].{}", section.to_ascii_lowercase(), key(keys))),
                    None => Err(format!(
                        "names {what} {who:?}, which the config file does not have (configured: {})",
                        if list.is_empty() {
                            "none".to_string()
                        } else {
                            list.iter().map(|n| as_variable(n)).collect::<Vec<_>>().join(", ")
                        }
                    )),
                }
            }
            _ => Err(
                "is not OFFERSYNC__DATABASE__<KEY>, OFFERSYNC__DAEMON__<KEY>, OFFERSYNC__CONSOLE__<KEY>, OFFERSYNC__SOURCES__<NAME>__<KEY> or OFFERSYNC__TARGETS__<NAME>__<KEY>"
                    .to_string(),
            ),
        };
        match resolved {
            Ok(key) => out.push(Override {
                variable,
                key,
                value,
            }),
            Err(e) => errors.push(format!("environment variable {variable} {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A value as the most specific type it looks like.
fn typed(value: &str) -> ValueKind {
    let v = value.trim();
    if let Ok(b) = v.parse::<bool>() {
        ValueKind::Boolean(b)
    } else if let Ok(i) = v.parse::<i64>() {
        ValueKind::I64(i)
    } else if let Ok(f) = v.parse::<f64>().map_err(|_| ()).and_then(|f| {
        if f.is_finite() && v.contains('.') {
            Ok(f)
        } else {
            Err(())
        }
    }) {
        ValueKind::Float(f)
    } else {
        ValueKind::String(value.to_string())
    }
}

/// Apply the overrides to a config builder.
pub fn apply<S: BuilderState>(
    mut builder: ConfigBuilder<S>,
    overrides: &[Override],
) -> Result<ConfigBuilder<S>, String> {
    for o in overrides {
        builder = builder
            .set_override(o.key.as_str(), typed(&o.value))
            .map_err(|e| format!("environment variable {}: {e}", o.variable))?;
    }
    Ok(builder)
}

/// "did you mean": the known name closest to `unknown`, when one is close enough.
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// serde's "unknown field `x`, expected one of `a`, `b`, ..." with a suggestion instead of the
/// whole list when one name is close.
pub fn suggest(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((field, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    match closest(field, known.iter().copied()) {
        Some(k) => format!("unknown field `{field}`; did you mean `{k}`?"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_numbered_sources_resolve_and_strays_are_errors() {
        let sources = vec!["trackly-main".to_string(), "ym.eu".to_string()];
        let vars = vec![
            (
                "OFFERSYNC__SOURCES__TRACKLY_MAIN__PAGE_SIZE".to_string(),
                "50".to_string(),
            ),
            (
                "OFFERSYNC__SOURCES__1__ENABLED".to_string(),
                "false".to_string(),
            ),
            (
                "OFFERSYNC__SOURCES__YM_EU__GENERIC__RECORDS_PATH".to_string(),
                "a".to_string(),
            ),
            ("OFFERSYNC__DATABASE__PATH".to_string(), "/x.db".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let o = overrides(vars, &sources, &[]).unwrap();
        let keys: Vec<&str> = o.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "sources[0].page_size",
                "sources[1].enabled",
                "sources[1].generic.records_path",
                "database.path"
            ]
        );
        let e = overrides(
            vec![
                ("OFFERSYNC__FOO".to_string(), "1".to_string()),
                (
                    "OFFERSYNC__SOURCES__NOPE__PAGE_SIZE".to_string(),
                    "1".to_string(),
                ),
            ],
            &sources,
            &[],
        )
        .unwrap_err();
        assert!(
            e[0].starts_with("environment variable OFFERSYNC__FOO "),
            "{e:?}"
        );
        assert!(
            e[1].contains("\"NOPE\"") && e[1].contains("TRACKLY_MAIN"),
            "{e:?}"
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        let m =
            "unknown field `pag_size`, expected one of `name`, `kind`, `page_size`, `max_pages`";
        assert_eq!(
            suggest(m),
            "unknown field `pag_size`; did you mean `page_size`?"
        );
        let far = "unknown field `zzz`, expected one of `name`, `kind`";
        assert_eq!(suggest(far), far);
        assert!(matches!(typed("50"), ValueKind::I64(50)));
        assert!(matches!(typed("0.5"), ValueKind::Float(_)));
        assert!(matches!(typed("true"), ValueKind::Boolean(true)));
        assert!(matches!(typed("1e3x"), ValueKind::String(_)));
    }
}
