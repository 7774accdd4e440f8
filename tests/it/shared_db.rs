//! Several daemons on one PostgreSQL database, as on several hosts: each has its own
//! `worker_id` (so a dead one is only known by its missing heartbeat, as across hosts), the
//! lease TTL is short, and the daemons are SIGKILLed at random while they sync and push.
//! Afterwards the end state is the crash suite's: mirror equal to the catalogue, every change
//! exactly once, no duplicate Affise create, nothing in flight, and no lease left behind.

use crate::crash::{assert_end_state, configure, env_u64, mutate, spawn_with, start_suite, Rng};
use crate::harness::{free_port, sql_i64, sql_strings, TestApp};
use std::collections::BTreeSet;
use std::process::Child;
use std::time::Duration;

/// Seconds without a heartbeat after which another worker takes a lease over.
const TTL: u64 = 2;

/// The crash suite's config, daemon flavour, with a short lease TTL.
fn configure_shared(app: &TestApp) {
    configure(app, Some(free_port()));
    let text = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replacen(
            "[database]\n",
            &format!("[database]\nlease_ttl_seconds = {TTL}\n"),
            1,
        )
        // Slower pages than the crash suite's: a run spans about half a second, so most kills
        // land in one.
        .replace("requests_per_second = 150", "requests_per_second = 40");
    std::fs::write(&app.config_path, text).unwrap();
}

/// Daemon `worker` ("host-a", ...) on its own metrics port.
fn daemon(app: &TestApp, worker: &str) -> Child {
    let listen = format!("127.0.0.1:{}", free_port());
    spawn_with(
        app,
        &[],
        &[
            ("OFFERSYNC__DATABASE__WORKER_ID", worker),
            ("OFFERSYNC__DAEMON__METRICS_LISTEN", &listen),
        ],
    )
}

/// Whether a run was closed by a takeover after its worker's heartbeat was TTL old.
fn took_over_by_ttl(app: &TestApp) -> bool {
    sql_i64(app, BY_HEARTBEAT) > 0
}

const BY_HEARTBEAT: &str =
    "SELECT count(*) FROM sync_runs WHERE reason = 'interrupted' AND error LIKE '%no heartbeat%'";

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_postgres_survive_sigkills_of_either() {
    let seed = env_u64("OFFERSYNC_CRASH_SEED", 0x2dae_3005);
    let kills_wanted = env_u64("OFFERSYNC_CRASH_KILLS", 30);
    println!("shared-database crash suite: seed {seed:#x}, {kills_wanted} kills");
    let mut rng = Rng(seed);
    let app = TestApp::on_postgres(400).await;
    let (hook, mut exp) = start_suite(&app).await;
    let mut touched = BTreeSet::new();
    configure_shared(&app);

    let workers = ["host-a", "host-b"];
    let mut running: Vec<Option<Child>> = vec![None, None];
    let mut kills = 0;
    while kills < kills_wanted {
        if rng.below(3) == 0 {
            // The catalogue changes while no daemon runs (what the mirror held before a change
            // decides what the history must say): both die where they are, then change it.
            for slot in running.iter_mut() {
                if let Some(mut c) = slot.take() {
                    kill(&mut c);
                    kills += 1;
                }
            }
            mutate(&app, &mut rng, &mut touched, &mut exp);
        }
        for (i, slot) in running.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(daemon(&app, workers[i]));
            }
        }
        // Both run for a while (a run every second each, deliveries after each), then one
        // dies wherever it is: mid-page, mid-push, holding leases the other must take over.
        tokio::time::sleep(Duration::from_millis(50 + rng.below(1500))).await;
        let victim = rng.below(2) as usize;
        let mut child = running[victim].take().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "seed {seed:#x}: daemon {} exited by itself: {status}",
                workers[victim]
            );
        }
        // Whether it holds a source's lease (a run in progress) as it dies, as far as can be
        // seen a moment before: a takeover by missing heartbeat needs one.
        let mid_run = sql_i64(
            &app,
            &format!(
                "SELECT count(*) FROM source_leases WHERE host = '{}' AND source NOT LIKE '%:%'",
                workers[victim]
            ),
        ) > 0;
        kill(&mut child);
        kills += 1;
        if rng.below(3) == 0 || (mid_run && !took_over_by_ttl(&app)) {
            // The victim stays dead past the TTL: the survivor, another worker, must take its
            // leases over by their missing heartbeat (what happens when a host dies).
            tokio::time::sleep(Duration::from_secs(TTL + 1)).await;
        }
    }
    for slot in running.iter_mut() {
        if let Some(mut c) = slot.take() {
            kill(&mut c);
        }
    }
    println!("{kills} kills of two daemons");

    // Recovery: a third worker's --once, until a run completes and every push is delivered.
    // The dead daemons' leases are another worker's: taken over once their heartbeat is TTL old.
    let mut clean = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(TTL + 1)).await;
        let out = app
            .bin(
                &["--once"],
                &[
                    ("RUST_LOG", "warn"),
                    ("OFFERSYNC__DATABASE__WORKER_ID", "host-c"),
                ],
            )
            .await;
        let waiting = sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE state NOT IN ('done')",
        );
        if out.status.code() == Some(0) && waiting == 0 {
            clean = true;
            break;
        }
    }
    assert!(clean, "seed {seed:#x}: no clean run after the kills");
    assert_end_state(&app, seed, &exp, &hook);

    // No lease left behind, and both workers did runs; some of them were taken over.
    assert_eq!(
        sql_strings(&app, "SELECT source, host FROM source_leases"),
        Vec::<Vec<String>>::new(),
        "seed {seed:#x}: no lease left behind"
    );
    let hosts: BTreeSet<String> = sql_strings(&app, "SELECT DISTINCT host FROM sync_runs")
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    for w in workers {
        assert!(
            hosts.contains(w),
            "seed {seed:#x}: {w} ran syncs: {hosts:?}"
        );
    }
    let interrupted = sql_i64(
        &app,
        "SELECT count(*) FROM sync_runs WHERE reason = 'interrupted'",
    );
    let by_heartbeat = sql_i64(&app, BY_HEARTBEAT);
    println!(
        "runs by {hosts:?}; {interrupted} interrupted runs closed by a takeover, {by_heartbeat} of them after the TTL (another worker's lease)"
    );
    assert!(
        by_heartbeat > 0,
        "seed {seed:#x}: no lease was taken over from a dead worker by its missing heartbeat"
    );
}

/// Two daemons on one database spread the sources first come, first served: each scheduled run
/// goes to whichever daemon takes the source's lease, the other skips it, and no source is ever
/// synced by both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_the_sources_and_never_sync_one_twice_at_once() {
    let app = TestApp::on_postgres(60).await;
    configure_shared(&app);
    // Six sources on the simulated Trackly (the catalogue mirrored under six names).
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    let start = text.find("[[sources]]").unwrap();
    let end = text.find("[[targets]]").unwrap();
    let source = &text[start..end];
    let mut more = String::new();
    for i in 1..6 {
        more.push_str(&source.replacen(
            &format!("name = \"{}\"", crate::harness::SOURCE),
            &format!("name = \"{}-{i}\"", crate::harness::SOURCE),
            1,
        ));
    }
    let text = format!("{}{more}{}", &text[..end], &text[end..]);
    std::fs::write(&app.config_path, text).unwrap();

    let mut a = daemon(&app, "host-a");
    let mut b = daemon(&app, "host-b");
    tokio::time::sleep(Duration::from_secs(8)).await;
    kill_after_term(&mut a).await;
    kill_after_term(&mut b).await;

    let runs = sql_strings(
        &app,
        "SELECT source, host, started_at, coalesce(finished_at, ''), state FROM sync_runs ORDER BY source, id",
    );
    let sources: BTreeSet<&str> = runs.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(sources.len(), 6, "every source was synced: {runs:?}");
    let hosts: BTreeSet<&str> = runs.iter().map(|r| r[1].as_str()).collect();
    assert!(
        hosts.contains("host-a") && hosts.contains("host-b"),
        "both daemons took sources: {hosts:?}"
    );
    // Runs of one source never overlap: each starts after the one before it finished.
    for w in runs.windows(2).filter(|w| w[0][0] == w[1][0]) {
        assert!(
            !w[0][3].is_empty() && w[1][2] >= w[0][3],
            "runs of {} overlap: {:?} then {:?}",
            w[0][0],
            w[0],
            w[1]
        );
    }
    assert_eq!(
        sql_i64(&app, "SELECT count(*) FROM source_leases"),
        0,
        "stopped daemons leave no lease"
    );
}

/// SIGTERM, then wait for the daemon's graceful stop (it releases its leases).
async fn kill_after_term(child: &mut Child) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let mut waited = 0;
    while child.try_wait().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 50;
        assert!(waited < 20_000, "the daemon did not stop on SIGTERM");
    }
}
