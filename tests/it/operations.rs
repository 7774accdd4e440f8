//! What an operations engineer meets in the first week (issue 19): honest health, numbers in
//! SQL, reads that never write, output that pipes and parses, config errors that name their
//! variable or suggest the key.

use crate::daemon::Daemon;
use crate::harness::{text, SourceOpts, TestApp, SOURCE};
use crate::push::configure;
use offersync::store::RunState;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_cannot_be_resolved_fails_check_config_only() {
    let app = TestApp::new(1).await;
    app.write_config(SourceOpts {
        page_size: 100,
        api_key_line: "api_key_env = \"OFFERSYNC_TEST_UNSET_KEY\"".into(),
        extra: String::new(),
    });
    let out = app.bin(&["check", "--config-only"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "sources[0].api_key_env: environment variable OFFERSYNC_TEST_UNSET_KEY is not set"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stdout).contains("ok"),
        "no \"ok\" before the error"
    );
    let out = app
        .bin(
            &["check", "--config-only"],
            &[("OFFERSYNC_TEST_UNSET_KEY", "k")],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_api_key_file_is_found_beside_the_config_not_in_the_current_directory() {
    let app = TestApp::new(5).await;
    std::fs::write(
        app.dir.path().join("trackly.key"),
        format!("{}\n", app.api_key),
    )
    .unwrap();
    app.write_config(SourceOpts {
        page_size: 100,
        api_key_line: "api_key_file = \"trackly.key\"".into(),
        extra: String::new(),
    });
    let elsewhere = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let (cfg, cwd) = (app.config_path.clone(), elsewhere.path().to_path_buf());
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_offersync"))
                .arg("--config")
                .arg(cfg)
                .args(["check", "--config-only"])
                .current_dir(cwd)
                .env_remove("CREDENTIALS_DIRECTORY")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // systemd's $CREDENTIALS_DIRECTORY comes first.
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("trackly.key"), "trk_from_systemd").unwrap();
    let out = app
        .bin(
            &["--once"],
            &[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())],
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "the systemd credential (a wrong key here) was used"
    );
    // The name a directory LoadCredential= gives (offersync_NAME), and credentials/NAME beside
    // the config (what `sudo offersync check` reads of /etc/offersync/credentials).
    std::fs::remove_file(creds.path().join("trackly.key")).unwrap();
    std::fs::write(creds.path().join("offersync_trackly.key"), &app.api_key).unwrap();
    let out = app
        .bin(
            &["--once"],
            &[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(app.dir.path().join("trackly.key")).unwrap();
    std::fs::create_dir(app.dir.path().join("credentials")).unwrap();
    std::fs::write(app.dir.path().join("credentials/trackly.key"), &app.api_key).unwrap();
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_records_a_source_that_cannot_run_and_healthz_says_why() {
    let app = TestApp::new(5).await;
    let tail = format!(
        "\n[[sources]]\nname = \"no-key\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key_env = \"OFFERSYNC_TEST_UNSET_KEY\"\nschedule = \"* * * * * *\"\n",
        app.sandbox.trackly_base_url()
    );
    let d = Daemon::start_with(&app, "stale_after_seconds = 600", "", &tail);
    let t0 = Instant::now();
    let failed = loop {
        let runs = if app.mirror_exists() {
            app.store().runs_of("no-key", 1).unwrap()
        } else {
            vec![]
        };
        if let Some(r) = runs.first() {
            break r.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (RunState::Failed, Some("credentials"))
    );
    assert!(failed
        .error
        .unwrap()
        .contains("OFFERSYNC_TEST_UNSET_KEY is not set"));
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/healthz", d.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["sources"]["no-key"]["fresh"], false);
    assert_eq!(body["sources"]["no-key"]["why"], "no complete run yet");
    assert_eq!(body["sources"]["no-key"]["last_reason"], "credentials");
    let metrics = client
        .get(format!("{}/metrics", d.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("offersync_runs_total{source=\"no-key\",state=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("offersync_build_info{version="),
        "{metrics}"
    );
    assert!(
        metrics.contains("offersync_run_duration_seconds_bucket"),
        "a histogram: {metrics}"
    );
    crate::harness::promtool_check(&metrics);
    let (code, _, _, _) = d.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    let _ = SOURCE;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_never_writes_and_refuses_what_is_not_a_mirror() {
    let app = TestApp::new(1).await;
    if let Some(db) = &app.pg {
        // PostgreSQL: a schema that holds someone else's table, not a mirror.
        crate::harness::sql_exec(
            &app,
            "CREATE TABLE notes (t text); INSERT INTO notes VALUES ('mine');",
        );
        let before = crate::harness::pg_schema_text(db);
        let out = app.bin(&["inspect", "offers"], &[]).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("has no offersync schema"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            crate::harness::pg_row_counts(db),
            [("notes".to_string(), 1)],
            "no table created"
        );
        assert_eq!(
            crate::harness::pg_schema_text(db),
            before,
            "nothing written"
        );
        return;
    }
    let other = app.dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    let out = app
        .bin(&["inspect", "--db", other.to_str().unwrap(), "offers"], &[])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not an offersync mirror"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "not one byte written"
    );
    let c = rusqlite::Connection::open(&other).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let tables: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((mode.as_str(), tables), ("delete", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_compares_and_sorts_as_numbers_in_sql() {
    let app = TestApp::new(300).await;
    app.sync().await;
    let count = |sql: &str| crate::harness::sql_i64(&app, sql);
    let by_value = count("SELECT count(*) FROM offers WHERE payout_value > 10");
    let total = count("SELECT count(*) FROM offers WHERE payout IS NOT NULL");
    assert!(0 < by_value && by_value < total, "{by_value} of {total}");
    let first = |sql: &str| crate::harness::sql_strings(&app, sql).remove(0).remove(0);
    if app.pg.is_none() {
        // SQLite keeps the exact decimal text: payout compares as text, payout_value as a number.
        let by_cast = count("SELECT count(*) FROM offers WHERE CAST(payout AS REAL) > 10");
        let by_text = count("SELECT count(*) FROM offers WHERE payout > 10");
        assert_eq!(by_value, by_cast);
        assert_ne!(
            by_text, by_value,
            "text comparison is why payout_value exists"
        );
        let top = first("SELECT payout FROM offers ORDER BY payout_value DESC LIMIT 1");
        let max = first("SELECT max(CAST(payout AS REAL)) FROM offers");
        assert_eq!(top.parse::<f64>().unwrap(), max.parse::<f64>().unwrap());
    } else {
        // PostgreSQL keeps it as numeric: payout itself compares and sorts as a number, and
        // payout_value agrees with it.
        let by_payout = count("SELECT count(*) FROM offers WHERE payout > 10");
        assert_eq!(by_payout, by_value);
        // (Aliased: ORDER BY payout would otherwise sort by the output column, the text.)
        let top = first("SELECT payout::text AS p FROM offers WHERE payout IS NOT NULL ORDER BY payout_value DESC LIMIT 1");
        let by_payout = first(
            "SELECT payout::text AS p FROM offers WHERE payout IS NOT NULL ORDER BY payout DESC LIMIT 1",
        );
        let max = first("SELECT max(payout)::text FROM offers");
        assert_eq!((&top, &by_payout), (&max, &max));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_pipes_and_parses() {
    let app = TestApp::new(40).await;
    configure(&app, "", "", "");
    // --once with targets off a terminal: one JSON document.
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["runs"][0]["state"], "complete");
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 2);
    // CSV is one table that a CSV reader takes whole.
    for args in [
        vec!["inspect", "stats", "--format", "csv"],
        vec![
            "inspect",
            "stats",
            "--format",
            "csv",
            "--section",
            "targets",
        ],
    ] {
        let out = app.bin(&args, &[]).await;
        assert!(out.status.success());
        let mut r = csv::Reader::from_reader(&out.stdout[..]);
        let header = r.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert!(
            !rows.is_empty() && rows.iter().all(|row| row.len() == header.len()),
            "{args:?}"
        );
    }
    // A closed pipe ends quietly.
    let cmd = format!(
        "{:?} --config {:?} inspect offers --format json --limit 1000 | head -c 10 >/dev/null",
        env!("CARGO_BIN_EXE_offersync"),
        app.config_path
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &cmd])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_name_sources_and_errors_name_the_variable() {
    let app = TestApp::new(30).await;
    app.write_config(SourceOpts {
        page_size: 100,
        api_key_line: format!("api_key = {:?}", app.api_key),
        extra: String::new(),
    });
    let out = app
        .bin(
            &["--once"],
            &[("OFFERSYNC__SOURCES__TRACKLY_TEST__PAGE_SIZE", "10")],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        app.store().runs_of(SOURCE, 1).unwrap()[0].pages,
        3,
        "pages of 10"
    );
    for (var, value, want) in [
        (
            "OFFERSYNC__FOO",
            "1",
            "environment variable OFFERSYNC__FOO is not",
        ),
        (
            "OFFERSYNC__SOURCES__NOPE__PAGE_SIZE",
            "1",
            "names source \"NOPE\"",
        ),
        (
            "OFFERSYNC__SOURCES__TRACKLY_TEST__PAG_SIZE",
            "1",
            "from environment variable OFFERSYNC__SOURCES__TRACKLY_TEST__PAG_SIZE",
        ),
    ] {
        let out = app.bin(&["check", "--config-only"], &[(var, value)]).await;
        assert_eq!(out.status.code(), Some(2), "{var}");
        assert!(
            text(&out.stderr).contains(want),
            "{var}: {}",
            text(&out.stderr)
        );
    }
    // A typo in the file gets a suggestion.
    let cfg = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace("page_size = 100", "pag_size = 100");
    std::fs::write(&app.config_path, cfg).unwrap();
    let out = app.bin(&["check", "--config-only"], &[]).await;
    assert!(
        text(&out.stderr).contains("did you mean `page_size`?"),
        "{}",
        text(&out.stderr)
    );
}
