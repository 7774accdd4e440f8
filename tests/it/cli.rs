//! CLI contracts, exercised through the real binary: exit codes, secrets, leases, inspect, demo.

use crate::harness::{
    pg_schema_text, run_bin, sql_exec, sql_i64, sql_quote, text, SourceOpts, TestApp, SOURCE,
};
use offersync::store::RunState;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_appears_in_logs_database_or_inspect_output() {
    const KEY: &str = "trk_SECRETMARKER7f3a9c2e1b4d6a8f0c";
    const WRONG: &str = "trk_WRONGMARKER0d1e2f3a4b5c6d7e8f9";
    let app = TestApp::with_key(250, KEY).await;
    let env_config = |var: &str| SourceOpts {
        page_size: 100,
        api_key_line: format!("api_key_env = {var:?}"),
        extra: String::new(),
    };
    app.write_config(env_config("OFFERSYNC_TEST_KEY"));
    app.sandbox.with_trackly(|t| {
        t.faults.push(offersync::sandbox::FaultRule::once_on_page(
            2,
            offersync::sandbox::Fault::ServerError,
        ));
    });
    let trace = [("RUST_LOG", "trace"), ("OFFERSYNC_TEST_KEY", KEY)];
    let mut outputs = Vec::new();
    let ok = app.bin(&["--once"], &trace).await;
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    outputs.push(ok);
    // A refused key: the sandbox echoes it in its error message, as some platforms do.
    let wrong = app
        .bin(
            &["--once"],
            &[("RUST_LOG", "trace"), ("OFFERSYNC_TEST_KEY", WRONG)],
        )
        .await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stdout).contains("The API key *** is invalid"),
        "{}",
        text(&wrong.stdout)
    );
    outputs.push(wrong);
    outputs.push(app.bin(&["check"], &trace).await);
    for what in ["offers", "changes", "runs", "stats", "pushes"] {
        for format in ["table", "json", "csv"] {
            let out = app
                .bin(&["inspect", what, "--format", format], &trace)
                .await;
            assert!(
                out.status.success(),
                "inspect {what}: {}",
                text(&out.stderr)
            );
            outputs.push(out);
        }
    }
    let first_id = app.offers()[0].offer.external_id.clone();
    outputs.push(
        app.bin(
            &["inspect", "offer", SOURCE, &first_id, "--format", "json"],
            &trace,
        )
        .await,
    );

    let trace_lines: usize = outputs
        .iter()
        .map(|o| {
            text(&o.stderr)
                .lines()
                .filter(|l| l.contains("TRACE"))
                .count()
        })
        .sum();
    assert!(
        trace_lines > 10,
        "trace logging was on ({trace_lines} TRACE lines)"
    );
    for (i, o) in outputs.iter().enumerate() {
        for marker in [KEY, WRONG] {
            assert!(
                !text(&o.stdout).contains(marker),
                "output {i} stdout leaks the key"
            );
            assert!(
                !text(&o.stderr).contains(marker),
                "output {i} stderr leaks the key:\n{}",
                text(&o.stderr)
            );
        }
    }
    if let Some(db) = &app.pg {
        let all = pg_schema_text(db);
        for marker in [KEY, WRONG] {
            assert!(!all.contains(marker), "the database holds the key");
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path.display());
        if let Ok(bytes) = std::fs::read(&path) {
            for marker in [KEY, WRONG] {
                let found = bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
                assert!(!found, "{path} contains the key");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_once_processes_never_sync_the_same_source_at_once() {
    let app = TestApp::new(600).await;
    app.sandbox
        .with_trackly(|t| t.delay = Duration::from_millis(150));
    let (a, b) = tokio::join!(app.bin(&["--once"], &[]), app.bin(&["--once"], &[]));
    for o in [&a, &b] {
        assert!(
            o.status.success(),
            "{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
    let states: Vec<String> = [&a, &b]
        .iter()
        .map(|o| {
            let v: Value = serde_json::from_slice(&o.stdout).expect("JSON summary off a terminal");
            v["runs"][0]["state"].as_str().unwrap().to_string()
        })
        .collect();
    let mut sorted = states.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["complete", "skipped"], "{states:?}");
    let skipped = if states[0] == "skipped" { &a } else { &b };
    assert!(
        text(&skipped.stdout).contains("being synced by pid"),
        "{}",
        text(&skipped.stdout)
    );
    let runs = app.store().runs_of(SOURCE, 10).unwrap();
    assert_eq!(runs.len(), 1, "exactly one run happened");
    assert_eq!(runs[0].state, RunState::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_dead_process_is_taken_over() {
    let app = TestApp::new(100).await;
    assert_eq!(app.sync().await.state, RunState::Complete);
    // A process that has exited: its pid is dead.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    sql_exec(
        &app,
        &format!(
            "INSERT INTO sync_runs (source, started_at, state, pages) VALUES ({}, '2026-01-01T00:00:00Z', 'running', 3)",
            sql_quote(SOURCE)
        ),
    );
    let run = sql_i64(&app, "SELECT max(id) FROM sync_runs");
    sql_exec(
        &app,
        &format!(
            "INSERT INTO source_leases (source, holder, pid, host, run_id, acquired_at, heartbeat_at)
             VALUES ({}, 'ghost', {dead_pid}, {}, {run}, '2026-01-01T00:00:00Z', '2099-01-01T00:00:00Z')",
            sql_quote(SOURCE),
            sql_quote(&offersync::sync::hostname())
        ),
    );
    let run = app.sync().await;
    assert_eq!(run.state, RunState::Complete);
    let runs = app.store().runs_of(SOURCE, 10).unwrap();
    let ghost = runs.iter().find(|r| r.id == run.id - 1).unwrap();
    assert_eq!(
        (ghost.state, ghost.reason.as_deref()),
        (RunState::Partial, Some("interrupted"))
    );
    assert!(ghost
        .error
        .as_deref()
        .unwrap()
        .contains(&format!("process {dead_pid}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_exit_2_naming_the_key() {
    let app = TestApp::new(10).await;
    let cases: &[(&str, &str)] = &[
        (
            "kind = \"trakly\"",
            "sources[0].kind: unknown kind \"trakly\"",
        ),
        ("schedule = \"every minute\"", "sources[0].schedule"),
        (
            "page_size = 500",
            "sources[0].page_size: 500 is out of range",
        ),
        (
            "max_removal_fraction = 2.0",
            "sources[0].max_removal_fraction",
        ),
        ("pagesize = 5", "unknown field `pagesize`"),
        ("page_size = \"many\"", "sources[0].page_size"),
    ];
    for (line, expected) in cases {
        let text_cfg = std::fs::read_to_string(&app.config_path).unwrap();
        let broken = if line.starts_with("kind") {
            text_cfg.replace("kind = \"trackly\"", line)
        } else if line.starts_with("page_size") {
            text_cfg.replace("page_size = 100", line)
        } else {
            format!("{text_cfg}\n{line}\n")
        };
        let path = app.dir.path().join("broken.toml");
        std::fs::write(&path, broken).unwrap();
        let out = run_bin(&["--config", path.to_str().unwrap(), "--once"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{line}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(expected),
            "{line}: expected {expected:?} in:\n{}",
            text(&out.stderr)
        );
    }
    // A missing credential is reported before anything runs.
    app.write_config(SourceOpts {
        page_size: 100,
        api_key_line: "api_key_env = \"OFFERSYNC_TEST_UNSET_VAR\"".into(),
        extra: String::new(),
    });
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "sources[0].api_key_env: environment variable OFFERSYNC_TEST_UNSET_VAR is not set"
    ));
    assert!(!app.mirror_exists(), "nothing ran");
    // A config file that does not exist.
    let out = run_bin(&["--config", "/nonexistent/offersync.toml", "--once"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/offersync.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_with_an_explanation() {
    let app = TestApp::new(10).await;
    let unknown = app.bin(&["--once", "--source", "nope"], &[]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("--source nope: no such source"));
    let flag = app.bin(&["--bogus"], &[]).await;
    assert_eq!(flag.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_offers_changes_and_runs_in_every_format() {
    let app = TestApp::new(120).await;
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(
        &app.bin(
            &["inspect", "offers", "--format", "csv", "--limit", "500"],
            &[],
        )
        .await
        .stdout,
    );
    assert!(csv.starts_with(
        "source,external_id,name,status,payout,currency,payout_type,countries,last_seen_at\n"
    ));
    assert_eq!(csv.lines().count(), 121);
    let json: Value = serde_json::from_slice(
        &app.bin(
            &[
                "inspect", "offers", "--status", "paused", "--format", "json",
            ],
            &[],
        )
        .await
        .stdout,
    )
    .unwrap();
    assert!(!json.as_array().unwrap().is_empty());
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["status"] == "paused" && o["countries"].is_array()));
    let us: Value = serde_json::from_slice(
        &app.bin(
            &[
                "inspect",
                "offers",
                "--country",
                "us",
                "--format",
                "json",
                "--limit",
                "500",
            ],
            &[],
        )
        .await
        .stdout,
    )
    .unwrap();
    assert!(us.as_array().unwrap().iter().all(|o| o["countries"]
        .as_array()
        .unwrap()
        .contains(&Value::from("US"))));
    let id = app.offers()[3].offer.external_id.clone();
    let one: Value = serde_json::from_slice(
        &app.bin(&["inspect", "offer", SOURCE, &id, "--format", "json"], &[])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(one["external_id"], id.as_str());
    assert_eq!(one["raw"]["id"], id.as_str());
    assert_eq!(one["history"][0]["kind"], "added");
    let table = text(
        &app.bin(&["inspect", "offer", SOURCE, &id, "--format", "table"], &[])
            .await
            .stdout,
    );
    assert!(table.contains("history:") && table.contains("raw:"));
    let changes: Value = serde_json::from_slice(
        &app.bin(
            &[
                "inspect", "changes", "--since", "1h", "--kind", "added", "--format", "json",
                "--limit", "1000",
            ],
            &[],
        )
        .await
        .stdout,
    )
    .unwrap();
    assert_eq!(changes.as_array().unwrap().len(), 120);
    let future: Value = serde_json::from_slice(
        &app.bin(
            &[
                "inspect",
                "changes",
                "--since",
                "2099-01-01",
                "--format",
                "json",
            ],
            &[],
        )
        .await
        .stdout,
    )
    .unwrap();
    assert!(future.as_array().unwrap().is_empty());
    let runs: Value = serde_json::from_slice(
        &app.bin(&["inspect", "runs", "--format", "json"], &[])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(runs[0]["state"], "complete");
    let stats: Value = serde_json::from_slice(
        &app.bin(&["inspect", "stats", "--format", "json"], &[])
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(stats["sources"][0]["source"], SOURCE);
    assert_eq!(
        stats["sources"][0]["active"].as_i64().unwrap()
            + stats["sources"][0]["inactive"].as_i64().unwrap(),
        120
    );
    let missing = app
        .bin(&["inspect", "offer", SOURCE, "no-such-id"], &[])
        .await;
    assert_eq!(missing.status.code(), Some(1));
    let bad = app
        .bin(&["inspect", "changes", "--since", "yesterday-ish"], &[])
        .await;
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    if crate::harness::sqlite_only("the SQLite file's mode 0600") {
        return;
    }
    let app = TestApp::new(10).await;
    app.sync().await;
    let mode = std::fs::metadata(&app.db_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let store = app.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.schema_version().unwrap(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_to_completion() {
    if crate::harness::sqlite_only("demo, which always writes a SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let out = run_bin(&["demo", "--db", db.to_str().unwrap()], &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("5 offers added, 7 payouts raised, 3 offers removed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("changes recorded by run") && stdout.contains("offersync inspect --db")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "demo file {} is private", path.display());
        }
    }
    let store =
        offersync::store::Store::open_existing(dir.path().join("demo.db"), Duration::from_secs(5))
            .unwrap();
    for source in ["trackly-demo", "generic-demo"] {
        let runs = store.runs_of(source, 5).unwrap();
        assert_eq!(runs.len(), 2);
        let r = &runs[0];
        assert_eq!(
            (r.state, r.added, r.changed, r.removed),
            (RunState::Complete, 5, 7, 3),
            "{source}"
        );
    }
    for source in ["offerslook-demo", "youmi-demo", "affise-demo"] {
        let runs = store.runs_of(source, 5).unwrap();
        assert!(
            runs.iter()
                .all(|r| r.state == RunState::Complete && r.offers_seen > 0),
            "{source}: {runs:?}"
        );
    }
    assert!(
        stdout.contains("pushed to the simulated target networks"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the simulated Offerit now holds"),
        "{stdout}"
    );
    drop(store);

    // Running it again replaces the previous demo database...
    let db_again = dir.path().join("demo.db").to_string_lossy().into_owned();
    let again = run_bin(&["demo", "--db", &db_again], &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    // ...but never a database, or any file, that is not a demo's.
    let app = TestApp::new(10).await;
    app.sync().await;
    let real = run_bin(&["demo", "--db", app.db_path.to_str().unwrap()], &[]).await;
    assert_eq!(real.status.code(), Some(2));
    assert!(
        text(&real.stderr).contains("refusing to replace"),
        "{}",
        text(&real.stderr)
    );
    assert_eq!(app.offers().len(), 10, "the real mirror is intact");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "precious").unwrap();
    let other = run_bin(&["demo", "--db", notes.to_str().unwrap()], &[]).await;
    assert_eq!(other.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_source_does_not_stop_another_and_exits_1() {
    let app = TestApp::new(150).await;
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let second = format!(
        "{config}\n[[sources]]\nname = \"broken\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key = \"trk_not_the_key\"\n",
        app.sandbox.trackly_base_url()
    );
    std::fs::write(&app.config_path, second).unwrap();
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary = &summary["runs"];
    assert_eq!(summary[0]["source"], SOURCE);
    assert_eq!(summary[0]["state"], "complete", "{summary:#}");
    assert_eq!(summary[0]["added"], 150);
    assert_eq!(summary[1]["source"], "broken");
    assert_eq!(summary[1]["state"], "failed");
    assert!(summary[1]["error"].as_str().unwrap().contains("HTTP 401"));
    // --source runs only the named one.
    let only = app.bin(&["--once", "--source", SOURCE], &[]).await;
    assert!(only.status.success());
    let summary: Value = serde_json::from_slice(&only.stdout).unwrap();
    assert_eq!(summary["runs"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_shows_progress_bars_on_a_terminal_and_plain_output_otherwise() {
    let app = TestApp::new(1000).await;
    app.sandbox
        .with_trackly(|t| t.delay = Duration::from_millis(10));
    // `script` gives the child a terminal.
    let cmd = format!(
        "{} --config {} --once",
        env!("CARGO_BIN_EXE_offersync"),
        app.config_path.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qc", &cmd, "/dev/null"])
            .env_remove("RUST_LOG")
            // Wide enough for the summary's columns side by side (narrower: records).
            .env("COLUMNS", "160")
            .output()
            .expect("script (util-linux) runs")
    })
    .await
    .unwrap();
    let screen = text(&out.stdout);
    assert!(
        screen.contains(&format!("{SOURCE} [")),
        "a bar per source:\n{screen}"
    );
    assert!(
        screen.contains("/10 pages")
            && screen.contains("1000 offers, 0 retries, 0 rate-limit waits"),
        "{screen}"
    );
    assert!(screen.contains("[complete]"), "{screen}");
    assert!(
        screen.contains(" source ") && screen.contains("═══"),
        "and the summary table:\n{screen}"
    );
    // Off a terminal: no bars, a JSON summary on stdout and log lines on stderr.
    let plain = app.bin(&["--once"], &[]).await;
    assert!(!text(&plain.stderr).contains(" pages  "));
    assert!(text(&plain.stderr).contains("sync finished"));
    let summary: Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(summary["runs"][0]["state"], "complete");
}
