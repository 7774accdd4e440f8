//! End-to-end sync benchmark (run with `cargo bench`; prints figures, asserts nothing).
//!
//! Starts the simulated Trackly in this process, then runs the real release binary
//! (`offersync --once`) against it as a child process, twice: a first sync into an empty
//! database and an unchanged re-sync. Reports wall time, offers per second and the child's peak
//! RSS (from `wait4`), so the sandbox's own memory is not counted.
//!
//! Cases: `OFFERSYNC_BENCH_CASES`, comma-separated `kind:offers` (default: every source kind at
//! 100,000 offers, then Trackly at 1,000,000, then `trackly+notify`: Trackly with a notifier on
//! every event, to a webhook receiver in-process, then `fleet:400000` and `limit:100000`).
//! - `fleet:N`: 200 Trackly sources of N/200 offers each in one `--once` (the default
//!   `max_concurrent_sources`) against one source of N offers, alternating, 3 rounds; prints
//!   the median ratio (fleet offers/s over one source's) and the peak RSS.
//! - `postgres:N`: Trackly, N offers, into SQLite and into PostgreSQL (a private server started
//!   here from the distribution's binaries, fsync on), alternating, 3 rounds; prints the
//!   medians and PostgreSQL's share of SQLite's speed, first and unchanged.
//! - `limit:N`: `../shared/bench/compare.py` when it is there (the bare-Rust loop and offersync
//!   against one mock, alternating, 3 rounds: the ratio to the physical limit).
//!
//! Profiling: `OFFERSYNC_BENCH_WRAP` prefixes the child's command line (see `run_child`).

use offersync::sandbox::{Sandbox, SandboxConfig};
use std::time::{Duration, Instant};

const KEY: &str = "trk_bench000000000000000000000000000";

struct Measured {
    wall: Duration,
    /// The child's user + system CPU time (less sensitive than wall time to other load).
    cpu: Duration,
    /// This process's CPU time meanwhile: the sandbox serving the pages.
    sandbox_cpu: Duration,
    peak_rss_kib: i64,
    ok: bool,
}

/// User + system CPU time of this process (the in-process sandbox).
fn self_cpu() -> Duration {
    // SAFETY: plain FFI call filling a zeroed struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    Duration::from_micros(
        (usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64) * 1_000_000
            + usage.ru_utime.tv_usec as u64
            + usage.ru_stime.tv_usec as u64,
    )
}

/// CPU time (user + system, own and reaped children's) of every process named `postgres` on
/// the machine: the private server's postmaster, its backends and helpers. The bench's
/// server is the only one running, so the difference over a run is what the server spent.
fn postgres_cpu() -> Duration {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17)
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f[11..15]
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
    }
    Duration::from_millis(ticks * 1000 / tick)
}

// The child is reaped by `wait4` (which also gives its peak RSS), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_child(config: &std::path::Path, label: &str) -> Measured {
    let started = Instant::now();
    let sandbox_cpu0 = self_cpu();
    // OFFERSYNC_BENCH_WRAP runs the child under a profiler, e.g.
    // "perf record -e cpu-clock -g -o /tmp/{run}.data --", where {run} is "first" or
    // "unchanged" (in the fleet case "one-first", "fleet-first", "one-unchanged" and
    // "fleet-unchanged"; the RSS is then the profiler's).
    let wrap = std::env::var("OFFERSYNC_BENCH_WRAP")
        .unwrap_or_default()
        .replace("{run}", label);
    let mut words = wrap.split_whitespace();
    let mut cmd = match words.next() {
        Some(program) => {
            let mut c = std::process::Command::new(program);
            c.args(words).arg(env!("CARGO_BIN_EXE_offersync"));
            c
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_offersync")),
    };
    let child = cmd
        .arg("--config")
        .arg(config)
        .arg("--once")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("offersync binary starts");
    let mut status = 0;
    // SAFETY: plain FFI call with valid pointers; reaps the child we just spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, child.id() as libc::pid_t, "wait4 failed");
    Measured {
        wall: started.elapsed(),
        sandbox_cpu: self_cpu() - sandbox_cpu0,
        cpu: Duration::from_micros(
            (usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64) * 1_000_000
                + usage.ru_utime.tv_usec as u64
                + usage.ru_stime.tv_usec as u64,
        ),
        peak_rss_kib: usage.ru_maxrss,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

/// Write a config holding a literal key with mode 0600 (offersync warns about readable ones).
fn write_private(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn report(kind: &str, label: &str, n: usize, m: &Measured) {
    let secs = m.wall.as_secs_f64();
    println!(
        "{kind:<10} {n:>9} offers  {label:<10} {:>7.2} s  {:>8.0} offers/s  CPU {:>5.2} s (sandbox {:>5.2} s)  peak RSS {:>5.1} MB{}",
        secs,
        n as f64 / secs,
        m.cpu.as_secs_f64(),
        m.sandbox_cpu.as_secs_f64(),
        m.peak_rss_kib as f64 / 1024.0,
        if m.ok { "" } else { "  (run FAILED)" }
    );
}

/// The `[[sources]]` block syncing `kind` from `sandbox` in pages of 100, unpaced.
fn source_toml(kind: &str, sandbox: &Sandbox) -> String {
    use offersync::sandbox as sb;
    let common =
        "page_size = 100\nrequests_per_second = 1000000\nburst = 1000\nmax_pages = 1000000\n";
    let q = |s: &str| format!("{s:?}");
    match kind {
        "trackly" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"trackly\"\nbase_url = {}\napi_key = {}\n{common}",
            q(&sandbox.trackly_base_url()),
            q(KEY)
        ),
        "offerslook" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"offerslook\"\napi = \"network\"\nendpoint = \"batches\"\nusername = {}\nbase_url = {}\napi_key = {}\n{common}",
            q(sb::offerslook::USERNAME),
            q(&sandbox.offerslook_base_url()),
            q(sb::OFFERSLOOK_KEY)
        ),
        "s2s" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"s2s\"\nbase_url = {}\napi_key = {}\nos = \"android\"\ngaid = \"38400000-8cf0-11bd-b23e-10b96e40000d\"\nandid = \"9774d56d682e549c\"\n{common}",
            q(&sandbox.s2s_base_url(false)),
            q(sb::S2S_APP_ID)
        ),
        "affise" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"affise\"\napi = \"admin\"\nbase_url = {}\napi_key = {}\n{common}",
            q(&sandbox.affise_base_url()),
            q(sb::AFFISE_KEY)
        ),
        "generic" => {
            // The shipped example that describes Trackly, pointed at the sandbox.
            let example = include_str!("../config/examples/generic-trackly.toml");
            example[example.find("[[sources]]").expect("a [[sources]] table")..]
                .replace("name = \"trackly-generic\"", "name = \"bench\"")
                .replace(
                    "https://app.tracklysms.com/api/v2/offers",
                    &format!("{}/v2/offers", sandbox.trackly_base_url()),
                )
                .replace("page_size = 100\n", "")
                .replace(
                    "api_key_env = \"TRACKLY_API_KEY\"",
                    &format!("api_key = {}\n{common}", q(KEY)),
                )
        }
        "everflow" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"everflow\"\nbase_url = {}\napi_key = {}\n{common}",
            q(&sandbox.everflow_base_url()),
            q(sb::EVERFLOW_KEY)
        ),
        "hasoffers" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"hasoffers\"\nbase_url = {}\napi_key = {}\ndefault_currency = \"USD\"\n{common}",
            q(&sandbox.hasoffers_base_url(false)),
            q(sb::HASOFFERS_KEY)
        ),
        "trackier" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"trackier\"\nbase_url = {}\napi_key = {}\n{common}",
            q(&sandbox.trackier_base_url()),
            q(sb::TRACKIER_KEY)
        ),
        "offer18" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"offer18\"\nbase_url = {}\napi_key = {}\naffiliate_id = \"12345\"\nnetwork_id = \"678\"\n{common}",
            q(&sandbox.offer18_base_url(0)),
            q(sb::OFFER18_KEY)
        ),
        "cake" => format!(
            "[[sources]]\nname = \"bench\"\nkind = \"cake\"\nbase_url = {}\napi_key = {}\naffiliate_id = \"42\"\ntracking_url_template = \"https://t.example/?a={{affiliate_id}}&c={{campaign_id}}\"\n{common}",
            q(&sandbox.cake_base_url()),
            q(sb::CAKE_KEY)
        ),
        other => panic!("unknown source kind {other:?} in OFFERSYNC_BENCH_CASES"),
    }
}

/// Messages the bench's webhook receiver got.
static MESSAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A `[[notify]]` table for every event, to a webhook receiver (answering 200, counting the
/// messages) started on `rt`.
fn notify_toml(rt: &tokio::runtime::Runtime) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/hook/bench-token", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook/bench-token",
        axum::routing::post(|| async {
            MESSAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            "ok"
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("\n[[notify]]\nname = \"bench\"\nurl = {url:?}\nformat = \"json\"\n")
}

fn main() {
    // kind:offers pairs; the default covers every source kind at 100k and Trackly at 1M.
    let cases: Vec<(String, usize)> = std::env::var("OFFERSYNC_BENCH_CASES")
        .unwrap_or_else(|_| {
            "trackly:100000,offerslook:100000,s2s:100000,affise:100000,generic:100000,\
             everflow:100000,hasoffers:100000,trackier:100000,offer18:100000,cake:100000,\
             trackly:1000000,trackly+notify:100000,postgres:100000,fleet:400000,limit:100000"
                .into()
        })
        .split(',')
        .filter_map(|c| {
            let (kind, n) = c.trim().split_once(':')?;
            Some((kind.to_string(), n.parse().ok()?))
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("end-to-end sync, pages of 100, sandbox in-process, offersync as a child process");
    for (kind, n) in cases {
        match kind.as_str() {
            "fleet" => {
                fleet(&rt, n);
                continue;
            }
            "limit" => {
                limit(n);
                continue;
            }
            "postgres" => {
                postgres(&rt, n);
                continue;
            }
            _ => {}
        }
        let sandbox = rt
            .block_on(Sandbox::start(SandboxConfig {
                seed: 1,
                trackly_offers: n,
                trackly_api_key: KEY.into(),
                offerslook_offers: n,
                s2s_offers: n,
                affise_offers: n,
                everflow_offers: n,
                hasoffers_offers: n,
                trackier_offers: n,
                offer18_offers: n,
                cake_offers: n,
                ..SandboxConfig::default()
            }))
            .expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bench.toml");
        // `trackly+notify`: Trackly with a notifier on every event, to a receiver in-process.
        let (source_kind, notify) = match kind.strip_suffix("+notify") {
            Some(k) => (k.to_string(), notify_toml(&rt)),
            None => (kind.clone(), String::new()),
        };
        write_private(
            &config,
            &format!(
                "[database]\npath = {:?}\n{}{notify}",
                dir.path().join("bench.db").to_string_lossy(),
                source_toml(&source_kind, &sandbox)
            ),
        );
        MESSAGES.store(0, std::sync::atomic::Ordering::Relaxed);
        report(&kind, "first", n, &run_child(&config, "first"));
        report(&kind, "unchanged", n, &run_child(&config, "unchanged"));
        if !notify.is_empty() {
            println!(
                "{:>28}  webhook messages over both runs: {}",
                "",
                MESSAGES.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        let db_size = std::fs::metadata(dir.path().join("bench.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{:>28}  database {:.1} MB ({} bytes/offer)",
            "",
            db_size as f64 / 1e6,
            db_size / n.max(1) as u64
        );
        drop(sandbox);
    }
}

/// `postgres:N`: the same Trackly sync into SQLite and into PostgreSQL, alternating.
fn postgres(rt: &tokio::runtime::Runtime, n: usize) {
    use offersync::sandbox::postgres::TestServer;
    let server = match TestServer::start_durable() {
        Ok(s) => s,
        Err(e) => {
            println!("postgres: no server ({e}); no PostgreSQL row");
            return;
        }
    };
    let sandbox = rt
        .block_on(Sandbox::start(SandboxConfig {
            seed: 1,
            trackly_offers: n,
            trackly_api_key: KEY.into(),
            ..SandboxConfig::default()
        }))
        .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let source = source_toml("trackly", &sandbox);
    let (mut lite, mut pg): (Vec<[f64; 2]>, Vec<[f64; 2]>) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let sqlite_cfg = dir.path().join(format!("sqlite-{round}.toml"));
        write_private(
            &sqlite_cfg,
            &format!(
                "[database]\npath = {:?}\n{source}",
                dir.path()
                    .join(format!("bench-{round}.db"))
                    .to_string_lossy()
            ),
        );
        let db = server.fresh();
        let pass = dir.path().join("pgpass");
        write_private(&pass, &db.password);
        let pg_cfg = dir.path().join(format!("pg-{round}.toml"));
        write_private(
            &pg_cfg,
            &format!(
                "[database]\nurl = {:?}\npassword_file = {:?}\n{source}",
                db.url,
                pass.to_string_lossy()
            ),
        );
        for (label, cfg, out) in [
            ("sqlite", &sqlite_cfg, &mut lite),
            ("postgres", &pg_cfg, &mut pg),
        ] {
            let server0 = postgres_cpu();
            let first = run_child(cfg, "first");
            report(label, "first", n, &first);
            let server1 = postgres_cpu();
            let again = run_child(cfg, "unchanged");
            report(label, "unchanged", n, &again);
            if label == "postgres" {
                println!(
                    "{:>28}  server CPU: first {:.2} s, unchanged {:.2} s",
                    "",
                    (server1 - server0).as_secs_f64(),
                    (postgres_cpu() - server1).as_secs_f64()
                );
            }
            out.push([first.wall.as_secs_f64(), again.wall.as_secs_f64()]);
        }
        let size: i64 = server
            .client(Some(&db.schema))
            .and_then(|mut c| {
                c.query_one(
                    "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                    &[],
                )
            })
            .map(|r| r.get::<_, Option<i64>>(0).unwrap_or(0))
            .unwrap_or(0);
        println!(
            "{:>28}  PostgreSQL tables and indexes {:.1} MB ({} bytes/offer)",
            "",
            size as f64 / 1e6,
            size / n.max(1) as i64
        );
    }
    let median = |v: &[[f64; 2]], i: usize| {
        let mut x: Vec<f64> = v.iter().map(|r| r[i]).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (lf, lu, pf, pu) = (
        median(&lite, 0),
        median(&lite, 1),
        median(&pg, 0),
        median(&pg, 1),
    );
    println!(
        "postgres over sqlite, {n} Trackly offers, medians of 3: first {:.0} vs {:.0} offers/s ({:.2}), unchanged {:.0} vs {:.0} offers/s ({:.2})",
        n as f64 / pf,
        n as f64 / lf,
        lf / pf,
        n as f64 / pu,
        n as f64 / lu,
        lu / pu
    );
}

/// Sources in the fleet case.
const FLEET_SOURCES: usize = 200;

/// `n` offers as 200 Trackly sources in one `--once`, against one source of `n` offers:
/// alternating, 3 rounds, medians.
fn fleet(rt: &tokio::runtime::Runtime, n: usize) {
    let per = n / FLEET_SOURCES;
    let start = |offers| {
        rt.block_on(Sandbox::start(SandboxConfig {
            seed: 1,
            trackly_offers: offers,
            trackly_api_key: KEY.into(),
            ..SandboxConfig::default()
        }))
        .expect("sandbox starts")
    };
    let (one, many) = (start(n), start(per));
    let dir = tempfile::tempdir().unwrap();
    let one_cfg = dir.path().join("one.toml");
    let many_cfg = dir.path().join("fleet.toml");
    let db = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    write_private(
        &one_cfg,
        &format!(
            "[database]\npath = {:?}\n{}",
            db("one.db"),
            source_toml("trackly", &one)
        ),
    );
    let mut fleet = format!("[database]\npath = {:?}\n", db("fleet.db"));
    for i in 0..FLEET_SOURCES {
        fleet.push_str(
            &source_toml("trackly", &many)
                .replace("name = \"bench\"", &format!("name = \"s{i:03}\"")),
        );
    }
    write_private(&many_cfg, &fleet);
    let (mut first, mut again, mut rss) = (Vec::new(), Vec::new(), 0i64);
    for round in 1..=3 {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().contains(".db") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let o1 = run_child(&one_cfg, "one-first");
        let f1 = run_child(&many_cfg, "fleet-first");
        let o2 = run_child(&one_cfg, "one-unchanged");
        let f2 = run_child(&many_cfg, "fleet-unchanged");
        for (label, m) in [("1 source", &o1), ("fleet", &f1)] {
            report(label, &format!("first/{round}"), n, m);
        }
        for (label, m) in [("1 source", &o2), ("fleet", &f2)] {
            report(label, &format!("again/{round}"), n, m);
        }
        first.push(o1.wall.as_secs_f64() / f1.wall.as_secs_f64());
        again.push(o2.wall.as_secs_f64() / f2.wall.as_secs_f64());
        rss = rss.max(f1.peak_rss_kib).max(f2.peak_rss_kib);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "fleet ({FLEET_SOURCES} sources x {per} offers) over one source of {n}: median first {:.2}, unchanged {:.2}; fleet peak RSS {:.1} MB",
        median(&mut first),
        median(&mut again),
        rss as f64 / 1024.0
    );
}

/// The ratio to the bare-Rust loop, from `../shared/bench/compare.py` when it is there.
fn limit(n: usize) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/compare.py");
    if !script.exists() {
        println!(
            "limit: {} is not here; no ratio to the bare loop",
            script.display()
        );
        return;
    }
    let status = std::process::Command::new("python3")
        .arg(&script)
        .args(["--offersync", env!("CARGO_BIN_EXE_offersync")])
        .args(["--offers", &n.to_string(), "--rounds", "3"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!("limit: compare.py did not finish ({other:?}; it needs python3 with aiohttp)")
        }
    }
}
