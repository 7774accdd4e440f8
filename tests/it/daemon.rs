//! Daemon mode through the real binary: scheduled runs, no overlap, /metrics and /healthz,
//! sd_notify messages, SIGTERM during a run, SIGHUP with a broken config.

use crate::harness::{free_port, TestApp, SOURCE};
use offersync::sandbox::{Fault, FaultRule};
use offersync::store::RunState;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Daemon {
    child: Child,
    stderr_path: std::path::PathBuf,
    notify: UnixDatagram,
    pub(crate) metrics: String,
}

impl Daemon {
    fn start(app: &TestApp, daemon_toml: &str, source_extra: &str) -> Daemon {
        Self::start_with(app, daemon_toml, source_extra, "")
    }

    /// As `start`, with `tail` (more tables, such as `[[targets]]`) appended to the config.
    pub(crate) fn start_with(
        app: &TestApp,
        daemon_toml: &str,
        source_extra: &str,
        tail: &str,
    ) -> Daemon {
        let port = free_port();
        app.configure(&format!("schedule = \"* * * * * *\"\n{source_extra}"));
        let config = std::fs::read_to_string(&app.config_path).unwrap() + tail;
        let config = config.replacen(
            "[[sources]]",
            &format!("[daemon]\nmetrics_listen = \"127.0.0.1:{port}\"\nrun_on_start = true\n{daemon_toml}\n\n[[sources]]"),
            1,
        );
        std::fs::write(&app.config_path, config).unwrap();
        let socket_path = app.dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        notify.set_nonblocking(true).unwrap();
        let stderr_path = app.dir.path().join("daemon.log");
        let child = Command::new(env!("CARGO_BIN_EXE_offersync"))
            .arg("--config")
            .arg(&app.config_path)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            stderr_path,
            notify,
            metrics: format!("http://127.0.0.1:{port}"),
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub(crate) fn log(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.stderr_path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn notifications(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.notify.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    /// SIGTERM, then the exit code (within `limit`).
    pub(crate) async fn stop(
        mut self,
        limit: Duration,
    ) -> (Option<i32>, Duration, Vec<String>, String) {
        let t0 = Instant::now();
        self.signal(libc::SIGTERM);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let notes = self.notifications();
        (code, t0.elapsed(), notes, self.log())
    }
}

/// A test that fails before `stop` leaves no daemon behind.
impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Wait until `cond` holds (polling), or panic after `limit`.
pub(crate) async fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn complete_runs(app: &TestApp) -> usize {
    if !app.mirror_exists() {
        return 0;
    }
    app.store()
        .runs_of(SOURCE, 100)
        .unwrap()
        .iter()
        .filter(|r| r.state == RunState::Complete)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_syncs_on_schedule_reports_health_and_stops_cleanly() {
    let app = TestApp::new(200).await;
    let d = Daemon::start(
        &app,
        "stale_after_seconds = 2\nshutdown_timeout_seconds = 5",
        "",
    );
    until(Duration::from_secs(20), "two complete runs", || {
        complete_runs(&app) >= 2
    })
    .await;

    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("{}/metrics", d.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("offersync_requests_total{{source=\"{SOURCE}\"}}")),
        "{metrics}"
    );
    crate::harness::promtool_check(&metrics);
    assert!(
        metrics.contains("offersync_runs_total") && metrics.contains("offersync_offers_seen_total"),
        "{metrics}"
    );
    let health = client
        .get(format!("{}/healthz", d.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The source starts failing: once its last complete run is older than 2 s, /healthz says so.
    app.sandbox
        .with_trackly(|t| t.faults.push(FaultRule::always(Fault::Unauthorized)));
    let url = format!("{}/healthz", d.metrics);
    // Stale can be seen while the failing run is still running (a loaded machine): wait
    // until the run has failed too.
    let mut body = serde_json::Value::Null;
    let t0 = Instant::now();
    loop {
        let r = client.get(&url).send().await.unwrap();
        if r.status() == 503 {
            body = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            if body["sources"][SOURCE]["last_state"] == "failed" {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "healthz never turned 503 with a failed last run: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(body["status"], "stale");
    assert_eq!(body["sources"][SOURCE]["fresh"], false);
    assert_eq!(body["sources"][SOURCE]["last_state"], "failed");

    let (code, took, notes, log) = d.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took < Duration::from_secs(6),
        "stopped within the shutdown timeout: {took:?}"
    );
    let ready = notes
        .iter()
        .position(|n| n.contains("READY=1"))
        .expect("READY=1 sent");
    let status = notes
        .iter()
        .position(|n| n.contains("STATUS=") && n.contains(SOURCE));
    let stopping = notes
        .iter()
        .position(|n| n.contains("STOPPING=1"))
        .expect("STOPPING=1 sent");
    assert!(ready < stopping, "{notes:?}");
    assert!(
        status.is_some_and(|s| s > ready && s < stopping),
        "a STATUS line with the last run: {notes:?}"
    );
    assert_eq!(app.store().integrity_check().unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_never_overlap_and_sigterm_mid_run_leaves_a_partial_run() {
    let app = TestApp::new(600).await;
    // Six pages at 250 ms each: a run takes ~1.5 s against a one-second schedule.
    app.sandbox
        .with_trackly(|t| t.delay = Duration::from_millis(250));
    let d = Daemon::start(&app, "shutdown_timeout_seconds = 5", "");
    until(Duration::from_secs(20), "a complete run", || {
        complete_runs(&app) >= 1
    })
    .await;
    // Stop in the middle of the next run.
    until(Duration::from_secs(10), "a run in progress", || {
        app.store()
            .runs_of(SOURCE, 1)
            .unwrap()
            .first()
            .is_some_and(|r| r.state == RunState::Running && r.pages >= 1)
    })
    .await;
    let (code, took, _, log) = d.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        log.contains("previous run still going; this tick is skipped"),
        "ticks during a run are skipped:\n{log}"
    );
    let runs = app.store().runs_of(SOURCE, 100).unwrap();
    let last = &runs[0];
    assert_eq!(
        (last.state, last.reason.as_deref()),
        (RunState::Partial, Some("shutdown")),
        "{last:?}"
    );
    assert!(
        runs.iter().all(|r| r.state != RunState::Running),
        "no run left running"
    );
    assert_eq!(last.removed, 0);
    // Runs follow each other: one starts after the previous one finished.
    let overlaps = crate::harness::sql_i64(
        &app,
        "SELECT count(*) FROM sync_runs a JOIN sync_runs b ON b.id > a.id AND b.source = a.source
         WHERE b.started_at < a.finished_at",
    );
    assert_eq!(overlaps, 0);
    assert_eq!(app.store().integrity_check().unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_daemon_on_the_old_one() {
    let app = TestApp::new(100).await;
    let d = Daemon::start(&app, "", "");
    until(Duration::from_secs(20), "a complete run", || {
        complete_runs(&app) >= 1
    })
    .await;
    let good = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        good.replace("kind = \"trackly\"", "kind = \"trakly\""),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    until(Duration::from_secs(5), "the reload attempt", || {
        d.log().contains("kept the previous config")
    })
    .await;
    let before = complete_runs(&app);
    until(
        Duration::from_secs(10),
        "more runs on the old config",
        || complete_runs(&app) > before,
    )
    .await;
    // A good config is taken.
    std::fs::write(&app.config_path, &good).unwrap();
    d.signal(libc::SIGHUP);
    until(Duration::from_secs(5), "the reload", || {
        d.log().contains("config reloaded")
    })
    .await;
    let (code, _, notes, log) = d.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("unknown kind \\\"trakly\\\"") || log.contains("unknown kind"),
        "the error names the key:\n{log}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("RELOADING=1") && n.contains("MONOTONIC_USEC=")),
        "{notes:?}"
    );
}
