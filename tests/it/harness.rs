//! Test harness: a temp directory with a database and a config file, the sandbox on a free
//! loopback port, and helpers to sync in-process or through the real binary.

use offersync::config::Config;
use offersync::sandbox::{Sandbox, SandboxConfig};
use offersync::store::{Location, RunTotals, Store, StoredOffer};
use offersync::sync::{self, RunReport, SyncContext};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

pub const SOURCE: &str = "trackly-test";

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub api_key: String,
    /// The SQLite file (on the SQLite backend; on PostgreSQL, a path nothing creates).
    pub db_path: PathBuf,
    /// The test's own PostgreSQL schema, when the suite runs on PostgreSQL.
    pub pg: Option<offersync::sandbox::postgres::TestDb>,
    pub config_path: PathBuf,
}

/// Which backend the suite runs on: `OFFERSYNC_TEST_BACKEND=postgres` points every test app at
/// a schema of its own on the test PostgreSQL server (`sandbox::postgres`); SQLite otherwise.
pub fn on_postgres() -> bool {
    match std::env::var("OFFERSYNC_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("OFFERSYNC_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
    }
}

/// For a test of SQLite itself (the file, its modes, `sqlite3`, its migrations): on the
/// PostgreSQL run it says so and returns `true`, and the test returns.
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        println!("SQLite-only ({what}): not run on the PostgreSQL backend");
        return true;
    }
    false
}

/// For a test with a temp dir of its own: the `[database]` table for the backend the suite runs
/// on (the SQLite file `dir/file`, or a fresh schema whose password file is in `dir`), and that
/// schema.
pub fn database_toml_in(
    dir: &std::path::Path,
    file: &str,
) -> (String, Option<offersync::sandbox::postgres::TestDb>) {
    if !on_postgres() {
        let path = dir.join(file);
        return (
            format!("[database]\npath = {:?}", path.to_string_lossy()),
            None,
        );
    }
    let db = off_runtime(|| offersync::sandbox::postgres::TestServer::global().fresh());
    let pgpass = dir.join("pgpass");
    std::fs::write(&pgpass, &db.password).unwrap();
    let toml = format!(
        "[database]\nurl = {:?}\npassword_file = {:?}",
        db.url,
        pgpass.to_string_lossy()
    );
    (toml, Some(db))
}

/// Options of the generated config's one Trackly source.
pub struct SourceOpts {
    pub page_size: u32,
    pub api_key_line: String,
    pub extra: String,
}

/// One integer from the test's database (a count, an id), on either backend.
pub fn sql_i64(app: &TestApp, sql: &str) -> i64 {
    match &app.pg {
        None => rusqlite::Connection::open(&app.db_path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
        Some(db) => off_runtime(|| {
            let row = pg_client(db).query_one(sql, &[]).unwrap();
            row.try_get::<_, i64>(0)
                .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                .or_else(|_| row.try_get::<_, bool>(0).map(i64::from))
                .unwrap_or_else(|e| panic!("{sql}: not an integer: {e}"))
        }),
    }
}

/// `s` as an SQL string literal (for `sql_i64`/`sql_strings`, on either backend).
pub fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Rows of text columns from the test's database, on either backend (NULL as "").
pub fn sql_strings(app: &TestApp, sql: &str) -> Vec<Vec<String>> {
    match &app.pg {
        None => {
            let conn = rusqlite::Connection::open(&app.db_path).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => String::new(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                            rusqlite::types::ValueRef::Real(v) => v.to_string(),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        }
        Some(db) => off_runtime(|| {
            pg_client(db)
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<_, Option<String>>(i)
                                .map(Option::unwrap_or_default)
                                .or_else(|_| {
                                    r.try_get::<_, Option<i64>>(i)
                                        .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                                })
                                .or_else(|_| {
                                    r.try_get::<_, Option<bool>>(i)
                                        .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                                })
                                .unwrap_or_else(|e| panic!("{sql}: column {i}: {e}"))
                        })
                        .collect()
                })
                .collect()
        }),
    }
}

/// Run statements (no parameters) on the test's database, on either backend.
pub fn sql_exec(app: &TestApp, sql: &str) {
    match &app.pg {
        None => rusqlite::Connection::open(&app.db_path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        Some(db) => off_runtime(|| pg_client(db).batch_execute(sql).unwrap()),
    }
}

/// Each table of the test's PostgreSQL schema with its row count.
pub fn pg_row_counts(db: &offersync::sandbox::postgres::TestDb) -> Vec<(String, i64)> {
    off_runtime(|| {
        let mut client = pg_client(db);
        let tables: Vec<String> = client
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 ORDER BY table_name",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        tables
            .into_iter()
            .map(|t| {
                let n: i64 = client
                    .query_one(&format!("SELECT count(*) FROM \"{t}\""), &[])
                    .unwrap()
                    .get(0);
                (t, n)
            })
            .collect()
    })
}

/// Every row of every table of the test's PostgreSQL schema, as text (one row a line): what
/// "the database's bytes" are on PostgreSQL, to search for what must never be stored.
pub fn pg_schema_text(db: &offersync::sandbox::postgres::TestDb) -> String {
    off_runtime(|| {
        let mut client = pg_client(db);
        let tables: Vec<String> = client
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!tables.is_empty(), "the schema has tables");
        let mut all = String::new();
        for t in tables {
            for row in client
                .query(&format!("SELECT t::text FROM \"{t}\" t"), &[])
                .unwrap()
            {
                all.push_str(&t);
                all.push_str(": ");
                all.push_str(row.get::<_, &str>(0));
                all.push('\n');
            }
        }
        all
    })
}

/// Run `f` on a thread of its own: the blocking PostgreSQL client cannot run on a thread that
/// drives async tasks (most tests run on a current-thread runtime).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// A plain client on a test app's PostgreSQL schema.
pub fn pg_client(db: &offersync::sandbox::postgres::TestDb) -> postgres::Client {
    offersync::sandbox::postgres::TestServer::global()
        .client(Some(&db.schema))
        .expect("connect to the test schema")
}

impl TestApp {
    /// A sandbox serving `offers` Trackly offers and a config pointing at it.
    pub async fn new(offers: usize) -> TestApp {
        Self::with_key(offers, "trk_testkey000000000000000000000000").await
    }

    pub async fn with_key(offers: usize, api_key: &str) -> TestApp {
        Self::with_backend(offers, api_key, on_postgres()).await
    }

    /// A test app on PostgreSQL whatever the suite runs on (for what only PostgreSQL does:
    /// several daemons on one database).
    pub async fn on_postgres(offers: usize) -> TestApp {
        Self::with_backend(offers, "trk_testkey000000000000000000000000", true).await
    }

    async fn with_backend(offers: usize, api_key: &str, postgres: bool) -> TestApp {
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
        let pg = postgres.then(|| {
            let db = off_runtime(|| offersync::sandbox::postgres::TestServer::global().fresh());
            std::fs::write(dir.path().join("pgpass"), &db.password).unwrap();
            db
        });
        let app = TestApp {
            dir,
            sandbox,
            api_key: api_key.to_string(),
            db_path,
            pg,
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
{database}

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
            database = self.database_toml(),
            url = self.sandbox.trackly_base_url(),
            key = o.api_key_line,
            page_size = o.page_size,
            extra = o.extra,
        );
        std::fs::write(&self.config_path, text).unwrap();
    }

    /// The `[database]` table of this app's config, for the backend the suite runs on.
    pub fn database_toml(&self) -> String {
        match &self.pg {
            None => format!("[database]\npath = {:?}", self.db_path.to_string_lossy()),
            Some(db) => format!(
                "[database]\nurl = {:?}\npassword_file = {:?}",
                db.url,
                self.dir.path().join("pgpass").to_string_lossy()
            ),
        }
    }

    /// Where this app's mirror is.
    pub fn location(&self) -> Location {
        match &self.pg {
            None => Location::Sqlite(self.db_path.clone()),
            Some(db) => Location::Postgres(offersync::store::PgLocation {
                url: db.url.clone(),
                password: Some(db.password.clone()),
            }),
        }
    }

    /// Whether the mirror exists yet (a file, or the schema's tables).
    pub fn mirror_exists(&self) -> bool {
        match &self.pg {
            None => self.db_path.exists(),
            Some(db) => off_runtime(|| {
                pg_client(db)
                    .query_one("SELECT to_regclass('offersync_schema') IS NOT NULL", &[])
                    .unwrap()
                    .get(0)
            }),
        }
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
        let ctx = SyncContext::for_database(&config.database)
            .with_targets(config.targets.clone())
            .with_notify(config.notify_rules());
        sync::run_all(&ctx, prepared, 4).await.remove(0)
    }

    pub fn store(&self) -> Store {
        Store::open_existing(self.location(), Duration::from_secs(5)).expect("database exists")
    }

    pub fn offers(&self) -> Vec<StoredOffer> {
        off_runtime(|| self.store().offers_of(SOURCE).unwrap())
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
        .env_remove("OFFERSYNC_CONFIG")
        .env_remove("JOURNAL_STREAM");
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

/// A TCP proxy on a fixed loopback port in front of `upstream`, that can be switched off (the
/// port is closed: connections are refused) and on again: a target outage, for real.
pub struct Proxy {
    pub port: u16,
    upstream: std::net::SocketAddr,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`), listening.
    pub async fn start(upstream: &str) -> Proxy {
        let p = Proxy {
            port: free_port(),
            upstream: upstream.parse().unwrap(),
            task: std::sync::Mutex::new(None),
        };
        p.up().await;
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Listen (again) on the port and forward every connection.
    pub async fn up(&self) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        sock.bind(([127, 0, 0, 1], self.port).into()).unwrap();
        let listener = sock.listen(64).unwrap();
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Close the port (and every connection through it).
    pub fn down(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// What a [`Recorder`] received: method, path with query, and headers.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// A loopback HTTP server that records every request and answers with `answer(path)`:
/// a status, headers and a body. For redirect tests.
pub struct Recorder {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
    _task: tokio::task::JoinHandle<()>,
}

pub type Answer = (u16, Vec<(String, String)>, String);

impl Recorder {
    pub async fn start(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Recorder {
        use axum::response::IntoResponse;
        let requests: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>> = Default::default();
        let answer = std::sync::Arc::new(answer);
        let (reqs, ans) = (requests.clone(), answer.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
                let (reqs, ans) = (reqs.clone(), ans.clone());
                async move {
                    let path = uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    reqs.lock().unwrap().push(Recorded {
                        path: path.clone(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.to_string(), v.to_str().unwrap_or_default().to_string())
                            })
                            .collect(),
                    });
                    let (status, hs, body) = ans(&path);
                    let mut r =
                        (axum::http::StatusCode::from_u16(status).unwrap(), body).into_response();
                    for (k, v) in hs {
                        r.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            axum::http::HeaderValue::from_str(&v).unwrap(),
                        );
                    }
                    r
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder {
            url,
            requests,
            _task: task,
        }
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// `promtool check metrics` on an exposition: it must be clean (HELP and TYPE for every family,
/// valid names and values). CI installs promtool (`.ci/run`); without it, outside CI, the check
/// is reported as not run.
pub fn promtool_check(exposition: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed but CI is set: {e}"
            );
            eprintln!("promtool not installed; `promtool check metrics` not run");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n{exposition}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
