//! A private PostgreSQL server for the tests and benchmarks: test equipment, like the twins.
//!
//! [`TestServer::global`] starts one server per test process from the distribution's binaries
//! (`initdb` and `postgres` under `/usr/lib/postgresql/*/bin`, or on `PATH`), in a temporary
//! directory, listening on 127.0.0.1 only, with password (SCRAM) authentication. It stops when
//! the process that started it exits, however it exits: the server runs under a shell that
//! waits on a pipe from this process and stops the server when the pipe closes. As root (CI),
//! the server runs as the `postgres` user, since PostgreSQL refuses to run as root.
//!
//! `OFFERSYNC_TEST_PG_URL` (with `OFFERSYNC_TEST_PG_PASSWORD`) points the tests at an existing
//! server instead. Each test asks for [`TestServer::fresh`]: its own schema, named in the URL's
//! `search_path`, so tests never see each other's rows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The role the private server is created with.
pub const TEST_USER: &str = "offersync";
/// Its password (the tests pass it through `password_env`, as a deployment would).
pub const TEST_PASSWORD: &str = "offersync-test-password";

pub struct TestServer {
    /// `postgres://user@127.0.0.1:port/db` (no password, no search_path).
    base_url: String,
    password: String,
    /// The pipe whose closing stops a private server; `None` for an external one.
    _keepalive: Mutex<Option<(Child, ChildStdin)>>,
    _dir: Option<PathBuf>,
}

/// One test's database: a URL (whose `search_path` is a schema of its own) and the password.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub url: String,
    pub password: String,
    pub schema: String,
}

static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();

/// How the private server keeps its data: the tests' (no fsync: nothing there must survive a
/// power cut) or a production server's (the benchmark's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Tests,
    Durable,
}
static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestServer {
    /// The process's server, started on first use. Panics with what is missing when no server
    /// can be had (the message says how to install one).
    pub fn global() -> &'static TestServer {
        match SERVER.get_or_init(|| match std::env::var("OFFERSYNC_TEST_PG_URL") {
            Ok(url) => Ok(TestServer {
                base_url: url,
                password: std::env::var("OFFERSYNC_TEST_PG_PASSWORD").unwrap_or_default(),
                _keepalive: Mutex::new(None),
                _dir: None,
            }),
            Err(_) => start_private(Durability::Tests),
        }) {
            Ok(s) => s,
            Err(e) => panic!("no PostgreSQL server for the tests: {e}"),
        }
    }

    /// A private server of its own with a production server's durability (fsync on), for the
    /// benchmark; stopped when dropped.
    pub fn start_durable() -> Result<TestServer, String> {
        start_private(Durability::Durable)
    }

    /// A new, empty schema for one test (or one benchmark run).
    pub fn fresh(&self) -> TestDb {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{}", std::process::id(), n);
        let mut client = self.client(None).expect("connect to the test server");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create a test schema");
        TestDb {
            url: with_search_path(&self.base_url, &schema),
            password: self.password.clone(),
            schema,
        }
    }

    /// A plain client on the server, optionally inside `schema`.
    pub fn client(&self, schema: Option<&str>) -> Result<postgres::Client, postgres::Error> {
        let url = match schema {
            Some(s) => with_search_path(&self.base_url, s),
            None => self.base_url.clone(),
        };
        let mut cfg: postgres::Config = url.parse()?;
        if !self.password.is_empty() {
            cfg.password(&self.password);
        }
        cfg.connect(postgres::NoTls)
    }
}

fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args...`, as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start_private(durability: Durability) -> Result<TestServer, String> {
    let hint =
        "install the distribution's PostgreSQL server (Debian: `apt-get install postgresql`), \
                or set OFFERSYNC_TEST_PG_URL (and OFFERSYNC_TEST_PG_PASSWORD) to an existing one";
    let initdb = find_bin("initdb").ok_or_else(|| format!("initdb not found; {hint}"))?;
    let postgres = find_bin("postgres").ok_or_else(|| format!("postgres not found; {hint}"))?;
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "offersync-pg-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sock")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, TEST_PASSWORD).map_err(|e| e.to_string())?;
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!(
                "cannot hand {} to the postgres user; {hint}",
                dir.display()
            ));
        }
    }
    let out = command(&initdb)
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-U",
            TEST_USER,
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(|e| format!("{}: {e}", initdb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The shell starts the server, then waits for its standard input to close (this process
    // exiting, whatever the way) and stops it with a fast shutdown.
    // The benchmark's server is set up as a production server would be on this machine: fsync
    // on, and shared buffers that hold the working set (a quarter of RAM is the usual advice;
    // 1 GB here), instead of the 128 MB a test needs.
    let settings = match durability {
        Durability::Tests => "-c fsync=off -c full_page_writes=off -c shared_buffers=128MB",
        Durability::Durable => "-c shared_buffers=1GB",
    };
    let script = format!(
        "'{}' -D '{}' -k '{}' -h 127.0.0.1 -p {port} {settings} \
         -c max_connections=200 >'{}' 2>&1 & p=$!; read _; kill -INT $p; wait $p; rm -rf '{}'",
        postgres.display(),
        dir.join("data").display(),
        dir.join("sock").display(),
        dir.join("server.log").display(),
        dir.display(),
    );
    let sh = Path::new("/bin/sh");
    let mut child = command(sh)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let server = TestServer {
        base_url: format!("postgres://{TEST_USER}@127.0.0.1:{port}/postgres"),
        password: TEST_PASSWORD.to_string(),
        _keepalive: Mutex::new(Some((child, stdin))),
        _dir: Some(dir.clone()),
    };
    let started = Instant::now();
    loop {
        match server.client(None) {
            Ok(_) => return Ok(server),
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!("the server did not come up in 30 s ({e}): {log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self._keepalive.lock().unwrap().take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}
