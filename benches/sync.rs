//! End-to-end sync benchmark (run with `cargo bench`; prints figures, asserts nothing).
//!
//! Starts the simulated Trackly in this process, then runs the real release binary
//! (`offersync --once`) against it as a child process, twice: a first sync into an empty
//! database and an unchanged re-sync. Reports wall time, offers per second and the child's peak
//! RSS (from `wait4`), so the sandbox's own memory is not counted.
//!
//! Sizes: `OFFERSYNC_BENCH_SIZES` (comma-separated offer counts, default `100000,1000000`).
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

// The child is reaped by `wait4` (which also gives its peak RSS), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_child(config: &std::path::Path, label: &str) -> Measured {
    let started = Instant::now();
    let sandbox_cpu0 = self_cpu();
    // OFFERSYNC_BENCH_WRAP runs the child under a profiler, e.g.
    // "perf record -e cpu-clock -g -o /tmp/{run}.data --", where {run} is "first" or
    // "unchanged" (the RSS is then the profiler's).
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

fn report(label: &str, n: usize, m: &Measured) {
    let secs = m.wall.as_secs_f64();
    println!(
        "trackly {n:>9} offers  {label:<10} {:>8.2} s  {:>9.0} offers/s  CPU {:>5.2} s (sandbox {:>5.2} s)  peak RSS {:>6.1} MB{}",
        secs,
        n as f64 / secs,
        m.cpu.as_secs_f64(),
        m.sandbox_cpu.as_secs_f64(),
        m.peak_rss_kib as f64 / 1024.0,
        if m.ok { "" } else { "  (run FAILED)" }
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("OFFERSYNC_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "end-to-end sync, Trackly pages of 100, sandbox in-process, offersync as a child process"
    );
    for n in sizes {
        let sandbox = rt
            .block_on(Sandbox::start(SandboxConfig {
                seed: 1,
                trackly_offers: n,
                trackly_api_key: KEY.into(),
                ..SandboxConfig::default()
            }))
            .expect("sandbox starts");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bench.toml");
        write_private(
            &config,
            &format!(
                "[database]\npath = {:?}\n[[sources]]\nname = \"bench\"\nkind = \"trackly\"\nbase_url = {:?}\napi_key = {:?}\npage_size = 100\nrequests_per_second = 1000000\nburst = 1000\nmax_pages = 1000000\n",
                dir.path().join("bench.db").to_string_lossy(),
                sandbox.trackly_base_url(),
                KEY
            ),
        );
        report("first", n, &run_child(&config, "first"));
        report("unchanged", n, &run_child(&config, "unchanged"));
        let db_size = std::fs::metadata(dir.path().join("bench.db"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{:>17}  database {:.1} MB ({} bytes/offer)",
            "",
            db_size as f64 / 1e6,
            db_size / n.max(1) as u64
        );
        drop(sandbox);
    }
}
