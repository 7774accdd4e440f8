//! Test harness: a temp directory with a database and a config file, the sandbox on a free
//! loopback port, and helpers to sync in-process or through the real binary.

use offersync::config::Config;
use offersync::sandbox::{Sandbox, SandboxConfig};
use offersync::store::{RunTotals, Store, StoredOffer};
use offersync::sync::{self, RunReport, SyncContext};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

pub const SOURCE: &str = "trackly-test";

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub api_key: String,
    pub db_path: PathBuf,
    pub config_path: PathBuf,
}

/// Options of the generated config's one Trackly source.
pub struct SourceOpts {
    pub page_size: u32,
    pub api_key_line: String,
    pub extra: String,
}

impl TestApp {
    /// A sandbox serving `offers` Trackly offers and a config pointing at it.
    pub async fn new(offers: usize) -> TestApp {
        Self::with_key(offers, "trk_testkey000000000000000000000000").await
    }

    pub async fn with_key(offers: usize, api_key: &str) -> TestApp {
        let sandbox = Sandbox::start(SandboxConfig {
            seed: 7,
            trackly_offers: offers,
            trackly_api_key: api_key.to_string(),
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("offersync.db");
        let config_path = dir.path().join("offersync.toml");
        let app = TestApp {
            dir,
            sandbox,
            api_key: api_key.to_string(),
            db_path,
            config_path,
        };
        app.write_config(SourceOpts {
            page_size: 100,
            api_key_line: format!("api_key = {:?}", api_key),
            extra: String::new(),
        });
        app
    }

    /// (Re)write the config file with one Trackly source.
    pub fn write_config(&self, o: SourceOpts) {
        let text = format!(
            r#"
[database]
path = {db:?}

[[sources]]
name = "{SOURCE}"
kind = "trackly"
base_url = {url:?}
{key}
page_size = {page_size}
requests_per_second = 1000
burst = 10
max_attempts = 3
retry_initial_interval_ms = 10
retry_max_interval_seconds = 1
{extra}
"#,
            db = self.db_path.to_string_lossy(),
            url = self.sandbox.trackly_base_url(),
            key = o.api_key_line,
            page_size = o.page_size,
            extra = o.extra,
        );
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// Add raw TOML lines to the source table (keeps the literal key).
    pub fn configure(&self, extra: &str) {
        self.write_config(SourceOpts {
            page_size: 100,
            api_key_line: format!("api_key = {:?}", self.api_key),
            extra: extra.to_string(),
        });
    }

    /// One `--once` run of every source, in-process; returns the run's row.
    pub async fn sync(&self) -> RunTotals {
        match self.sync_report().await {
            RunReport::Finished(t) => t,
            other => panic!("expected a finished run, got {other:?}"),
        }
    }

    pub async fn sync_report(&self) -> RunReport {
        let config = Config::load(&self.config_path).expect("config loads");
        let sources: Vec<_> = config.sources.iter().collect();
        let prepared =
            sync::prepare(&sources, &offersync::http::Limiters::new()).expect("sources prepare");
        let ctx = SyncContext::new(config.database.path.clone(), config.database.busy_timeout)
            .with_targets(config.targets.clone());
        sync::run_all(&ctx, prepared, 4).await.remove(0)
    }

    pub fn store(&self) -> Store {
        Store::open_existing(&self.db_path, Duration::from_secs(5)).expect("database exists")
    }

    pub fn offers(&self) -> Vec<StoredOffer> {
        self.store().offers_of(SOURCE).unwrap()
    }

    /// Run the real binary with `args` (plus `--config`), in a blocking task so the in-process
    /// sandbox keeps serving.
    pub async fn bin(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut full = vec!["--config", self.config_path.to_str().unwrap()];
        full.extend_from_slice(args);
        run_bin(&full, env).await
    }
}

/// Run the real binary with exactly `args`, with `RUST_LOG`/`OFFERSYNC_CONFIG` cleared unless
/// given in `env`.
pub async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("OFFERSYNC_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
        .await
        .unwrap()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `[[sources]]` table of `config/examples/generic-trackly.toml`, pointed at the simulated
/// Trackly at `trackly_base_url`, with `key_lines` (the credential and any other keys) in place
/// of its `api_key_env` line.
pub fn generic_trackly_example(trackly_base_url: &str, key_lines: &str) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/examples/generic-trackly.toml"
    ))
    .unwrap();
    example[example.find("[[sources]]").unwrap()..]
        .replace(
            "https://app.tracklysms.com/api/v2/offers",
            &format!("{trackly_base_url}/v2/offers"),
        )
        .replace("api_key_env = \"TRACKLY_API_KEY\"", key_lines)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
