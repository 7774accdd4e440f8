//! The config contract: the shipped example parses, validation names keys, env overrides apply.

use crate::harness::{text, TestApp};
use offersync::config::{Config, ConfigError, CredentialSpec, SourceKind};
use std::path::Path;

#[test]
fn the_shipped_example_config_parses_with_its_documented_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/offersync.toml");
    let c = Config::load(&path).expect("config/offersync.toml is valid");
    assert_eq!(
        c.database.location.sqlite_path().unwrap(),
        Path::new("/var/lib/offersync/offersync.db")
    );
    let s = &c.sources[0];
    assert_eq!(
        (s.name.as_str(), s.kind, s.page_size),
        ("trackly-main", SourceKind::Trackly, 100)
    );
    assert!(matches!(&s.credential, CredentialSpec::Env(v) if v == "TRACKLY_API_KEY"));
    assert_eq!((s.removal_grace_runs, s.max_removal_fraction), (1, 0.5));
    assert_eq!(s.schedule, "0 */15 * * * *");
    assert!(c.targets.is_empty());
}

#[test]
fn the_demo_config_parses() {
    // Fill every `key = {placeholder}` value: URLs where the key is one, "x" elsewhere.
    let text: String = include_str!("../../config/demo.toml")
        .lines()
        .map(|line| match line.split_once(" = {") {
            Some((key, rest)) if rest.ends_with('}') => {
                let value = if key.ends_with("url") {
                    "http://127.0.0.1:1/x"
                } else {
                    "x"
                };
                format!("{key} = {value:?}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let c = Config::from_toml_str(&text, Path::new("demo")).unwrap();
    assert_eq!((c.sources.len(), c.targets.len()), (10, 2));
    assert_eq!(
        c.targets[0].tracking_url_template.as_deref(),
        Some("{tracking_url}&sub={source}")
    );
}

fn errors(toml: &str) -> Vec<String> {
    match Config::from_toml_str(toml, Path::new("test.toml")) {
        Err(ConfigError::Invalid { errors, .. }) => errors,
        Err(other) => vec![other.to_string()],
        Ok(_) => vec![],
    }
}

const SOURCE: &str = r#"
[database]
path = "x.db"
[[sources]]
name = "a"
kind = "trackly"
base_url = "https://app.tracklysms.com/api"
api_key = "k"
"#;

#[test]
fn validation_reports_every_error_with_its_key_path() {
    assert!(errors(SOURCE).is_empty());
    let dup = format!(
        "{SOURCE}\n[[sources]]\nname = \"a\"\nkind = \"trackly\"\nbase_url = \"ftp://x\"\n"
    );
    let e = errors(&dup);
    assert!(
        e.iter()
            .any(|m| m.starts_with("sources[1].name: duplicate source name \"a\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("sources[1].base_url: scheme \"ftp\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("sources[1].api_key_env: missing credential")),
        "{e:?}"
    );

    let target = format!(
        "{SOURCE}\n[[targets]]\nname = \"t\"\nkind = \"offerit\"\nbase_url = \"https://n.example/api\"\napi_key = \"x\"\nsources = [\"a\", \"ghost\"]\npayout_ratio = \"-1\"\n[targets.fields]\ndescription = \"sometimes\"\n[targets.filters]\ncountries = [\"USA\"]\n"
    );
    let e = errors(&target);
    for key in [
        "targets[0].sources[1]: names source \"ghost\"",
        "targets[0].api_username: required",
        "targets[0].payout_ratio",
        "targets[0].fields.description",
        "targets[0].filters.countries[0]",
    ] {
        assert!(e.iter().any(|m| m.starts_with(key)), "{key} not in {e:?}");
    }
    let two_keys = SOURCE.replace("api_key = \"k\"", "api_key = \"k\"\napi_key_env = \"K\"");
    assert!(errors(&two_keys)[0].contains("exactly one"));
    let bad_name = SOURCE.replace("name = \"a\"", "name = \"a b\"");
    assert!(errors(&bad_name)[0].starts_with("sources[0].name"));
}

#[test]
fn console_errors_name_their_keys_and_the_console_is_off_by_default() {
    let c = Config::from_toml_str(SOURCE, Path::new("test.toml")).unwrap();
    assert!(!c.console.enabled && c.console.token.is_none());
    assert_eq!(c.console.listen.to_string(), "127.0.0.1:9187");
    assert!(c.console.open_reads());
    let e = errors(&format!(
        "{SOURCE}\n[console]\nenabled = true\nlisten = \"anywhere\"\nsession_minutes = 0\n"
    ));
    assert!(
        e.iter()
            .any(|e| e.starts_with("console.listen: \"anywhere\" is not an address")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("console.token_env: the console needs a login token")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.starts_with("console.session_minutes: must be at least 1")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{SOURCE}\n[console]\ntoken_env = \"A\"\ntoken_file = \"b\"\n"
    ));
    assert!(
        e.iter()
            .any(|e| e.starts_with("console.token_env: set exactly one")),
        "{e:?}"
    );
    let e = errors(&format!("{SOURCE}\n[console]\nenable = true\n"));
    assert!(
        e.iter().any(|e| e.contains("did you mean `enabled`")),
        "{e:?}"
    );
    // Elsewhere than loopback, reads need a login; an unreadable token fails `check --config-only`.
    let c = Config::from_toml_str(
        &format!("{SOURCE}\n[console]\nenabled = true\nlisten = \"0.0.0.0:9187\"\ntoken_env = \"OFFERSYNC_TEST_NO_SUCH_TOKEN\"\n"),
        Path::new("test.toml"),
    )
    .unwrap();
    assert!(!c.console.open_reads());
    assert!(c.credential_errors().iter().any(|e| e.starts_with(
        "console.token_env: environment variable OFFERSYNC_TEST_NO_SUCH_TOKEN is not set"
    )));
}

#[test]
fn parse_errors_name_the_key_path() {
    let e = errors(&SOURCE.replace(
        "api_key = \"k\"",
        "api_key = \"k\"\nrequests_per_second = \"fast\"",
    ));
    assert!(e[0].contains("sources[0].requests_per_second"), "{e:?}");
    let e = errors("[database]\npath = \"x\"\n[daemon]\nmax_concurrent = 3\n");
    assert!(
        e[0].contains("daemon") && e[0].contains("unknown field `max_concurrent`"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_apply() {
    if crate::harness::sqlite_only("overrides database.path") {
        return;
    }
    let app = TestApp::new(10).await;
    let elsewhere = app.dir.path().join("elsewhere.db");
    let out = app
        .bin(
            &["--once"],
            &[("OFFERSYNC__DATABASE__PATH", elsewhere.to_str().unwrap())],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(elsewhere.exists() && !app.db_path.exists());
}

fn source_errors(kind_and_keys: &str) -> Vec<String> {
    errors(&format!(
        "[database]\npath = \"x.db\"\n[[sources]]\nname = \"s\"\nbase_url = \"https://x.example/api\"\napi_key = \"k\"\n{kind_and_keys}\n"
    ))
}

#[test]
fn platform_keys_are_validated_per_kind() {
    let cases: &[(&str, &str)] = &[
        ("kind = \"s2s\"\nos = \"android\"", "sources[0].gaid: required when os = \"android\""),
        ("kind = \"s2s\"\nos = \"android\"\ngaid = \"g\"", "sources[0].andid: required when os = \"android\""),
        ("kind = \"s2s\"\nos = \"windows\"", "sources[0].os: required for kind \"s2s\""),
        ("kind = \"offerslook\"", "sources[0].username: required for kind \"offerslook\""),
        ("kind = \"offerslook\"\nusername = \"n\"\napi = \"admin\"", "sources[0].api: \"admin\" is not one of network, affiliate"),
        ("kind = \"offerslook\"\nusername = \"n\"\nendpoint = \"batches\"\npage_size = 500", "sources[0].page_size: 500 is out of range"),
        ("kind = \"offerslook\"\nusername = \"n\"\ninclude_archived = true", "sources[0].include_archived: only applies to kind \"trackly\""),
        ("kind = \"trackly\"\nos = \"ios\"", "sources[0].os: only applies to kind \"s2s\""),
        ("kind = \"affise\"\nstatuses = [\"paused\"]", "sources[0].statuses[0]: \"paused\" is not one of active, stopped, suspended"),
        ("kind = \"generic\"", "sources[0].generic: kind \"generic\" needs a [sources.generic] table"),
        (
            "kind = \"generic\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"title|shout\"",
            "sources[0].generic.fields.name: unknown transform \"shout\"",
        ),
        (
            "kind = \"generic\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"n\"\nprice = \"p\"",
            "sources[0].generic.fields.price: not a canonical field",
        ),
        (
            "kind = \"generic\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.fields]\nname = \"n\"",
            "sources[0].generic.fields.external_id: required",
        ),
        (
            "kind = \"generic\"\n[sources.generic]\nrecords_path = \"data[x]\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"n\"",
            "sources[0].generic.records_path",
        ),
        (
            "kind = \"generic\"\n[sources.generic]\nrecords_path = \"data\"\n[sources.generic.pagination]\ntype = \"cursor\"\n[sources.generic.fields]\nexternal_id = \"id\"\nname = \"n\"",
            "sources[0].generic.pagination.cursor_path: required",
        ),
    ];
    for (keys, expected) in cases {
        let e = source_errors(keys);
        assert!(
            e.iter().any(|m| m.contains(expected)),
            "{keys:?}: expected {expected:?} in {e:?}"
        );
    }
    // The defaults per kind: Youmi's budget of 50 requests per 10 minutes.
    let c = Config::from_toml_str(
        "[database]\npath = \"x\"\n[[sources]]\nname = \"y\"\nkind = \"s2s\"\nbase_url = \"http://a.example/v2/offline\"\napi_key = \"k\"\nos = \"ios\"\n",
        Path::new("t"),
    )
    .unwrap();
    assert!((c.sources[0].http.requests_per_second - 50.0 / 600.0).abs() < 1e-9);
    assert_eq!(c.sources[0].page_size, 500);
}

#[test]
fn the_commented_examples_of_every_kind_in_the_reference_config_are_valid() {
    let text = include_str!("../../config/offersync.toml");
    // Uncomment each "# [[sources]]" block (up to the next blank line).
    let mut out = String::new();
    let mut in_example = false;
    for line in text.lines() {
        if line.starts_with("# [[sources]]")
            || line.starts_with("# [[targets]]")
            || line.starts_with("# [targets.")
            || line.starts_with("# [[notify]]")
            || line.starts_with("# [console]")
        {
            in_example = true;
        }
        if line.trim().is_empty() {
            in_example = false;
        }
        out.push_str(if in_example {
            line.trim_start_matches("# ")
        } else {
            line
        });
        out.push('\n');
    }
    let c = Config::from_toml_str(&out, Path::new("config/offersync.toml")).unwrap();
    let kinds: Vec<&str> = c.sources.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, vec!["trackly", "offerslook", "s2s", "affise"]);
    assert_eq!(c.targets.len(), 1);
    assert_eq!(
        c.targets[0].filters.countries,
        Some(vec!["US".to_string(), "GB".into()])
    );
    assert_eq!(c.notify.len(), 1);
    assert_eq!(c.notify[0].rule.events.len(), 8);
    assert!(c.console.enabled && c.console.token.is_some());
    assert_eq!(c.console.listen.to_string(), "127.0.0.1:9187");
    let controls = &c.targets[0].controls;
    assert_eq!(controls.approval, offersync::config::Approval::Manual);
    assert!(controls.auto_approve.is_some() && controls.max_payout_increase.is_some());
    assert_eq!(controls.defaults.hidden, Some(true));
    assert_eq!(
        c.targets[0].filters.exclude_countries,
        Some(vec!["CN".to_string()])
    );
}

#[test]
fn the_readme_lists_every_platform_with_the_keys_its_declaration_takes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let sections = readme
        .lines()
        .filter(|l| l.starts_with("### ") && l.contains("(`kind = \""))
        .count();
    assert_eq!(
        sections,
        SourceKind::ALL.len(),
        "one README section per kind"
    );
    for kind in SourceKind::ALL {
        let heading = format!("(`kind = \"{}\"`)\n", kind.as_str());
        let start = readme
            .find(&heading)
            .unwrap_or_else(|| panic!("no README section {heading}"));
        let section = &readme[start..];
        let section = &section[..section[1..].find("\n### ").map_or(section.len(), |i| i + 1)];
        let keys: Vec<String> = kind.keys().iter().map(|k| format!("`{k}`")).collect();
        let line = format!(
            "Platform keys (only this kind takes them): {}.",
            keys.join(", ")
        );
        assert!(
            section.contains(&line),
            "README section {heading} should say:\n{line}"
        );
    }
}

/// `[database]`: exactly one of path and url; a PostgreSQL password from password_env or
/// password_file, each problem naming its key, and a password left in the URL never shown.
#[test]
fn the_database_table_takes_a_path_or_a_url_and_names_what_is_wrong() {
    let db = |lines: &str| errors(&format!("[database]\n{lines}\n"));
    let first = |lines: &str| db(lines).first().cloned().unwrap_or_default();
    assert!(
        first("").starts_with("database.path: missing"),
        "{:?}",
        db("")
    );
    assert!(first("path = \"x.db\"\nurl = \"postgres://u@h/d\"")
        .starts_with("database.url: set either database.path"),);
    assert!(first("url = \"mysql://u@h/d\"")
        .starts_with("database.url: \"mysql://u@h/d\" is not a postgres:// URL"));
    assert!(first("path = \"x.db\"\npassword_env = \"P\"")
        .starts_with("database.password_env: a password is for database.url"));
    assert!(
        first("url = \"postgres://u@h/d\"\npassword_env = \"OFFERSYNC_TEST_UNSET_PW\"")
            .starts_with(
                "database.password_env: environment variable OFFERSYNC_TEST_UNSET_PW is not set"
            )
    );
    assert!(
        first("url = \"postgres://u@h/d\"\npassword_file = \"/nonexistent/pw\"")
            .starts_with("database.password_file: cannot read /nonexistent/pw")
    );
    assert!(
        first("url = \"postgres://u@h/d\"\npassword_env = \"A\"\npassword_file = \"B\"")
            .starts_with("database.password_env: set at most one")
    );
    assert!(first("url = \"postgres://u@h/d\"\nlease_ttl_seconds = 1")
        .starts_with("database.lease_ttl_seconds: must be at least 2"));
    assert!(
        first("url = \"postgres://u@h/d\"\nworker_id = \"a b\"").starts_with("database.worker_id:")
    );
    // Valid, with a password in the URL: a warning, and the password in no message.
    let c = Config::from_toml_str(
        "[database]\nurl = \"postgres://u:s3cr3t-pw@h:5432/d\"\nworker_id = \"sync-a\"\nlease_ttl_seconds = 30\n",
        Path::new("test.toml"),
    )
    .unwrap();
    assert_eq!(c.database.worker, "sync-a");
    assert_eq!(c.database.lease_ttl, std::time::Duration::from_secs(30));
    assert!(c
        .warnings
        .iter()
        .any(|w| w.starts_with("database.url: contains a password")));
    assert!(!format!("{:?} {:?}", c.database, c.warnings).contains("s3cr3t-pw"));
    assert_eq!(c.database.location.to_string(), "postgres://u:***@h:5432/d");
}
