//! The crash suite: the real binary (`--once`, and the daemon) is SIGKILLed at seeded random
//! points while it syncs and pushes, the sandbox changes between kills, and afterwards a clean
//! run must leave: the mirror equal to the sandbox's catalogue, every change recorded exactly
//! once, one offer per pushed offer on each target (Offerit duplicates only where flagged
//! `possible_duplicate`, none on Affise), no `in_flight` operations, and a sound database file.
//!
//! Besides the timed kills, some runs die at the failpoint right after a target answered a push
//! (before offersync recorded it), and the sandbox then removes that very offer: the next run
//! syncs the removal while the push's outcome is unknown, and nothing may be left live for it.
//!
//! `OFFERSYNC_CRASH_KILLS` (default 30) sets the number of kills, `OFFERSYNC_CRASH_SEED` the
//! seed (printed in hex, and taken in hex or decimal, so a failure can be replayed).

use crate::harness::{free_port, sql_i64, sql_strings, SourceOpts, TestApp, SOURCE};
use crate::trackly_sync::{assert_mirrors, served};
use offersync::sandbox::{self, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// splitmix64: a tiny seeded generator, so a failing seed replays exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A number from the environment, decimal or `0x` hex (the suites print their seeds in hex).
pub(crate) fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        }
        .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

/// The webhook receiver of a test app's config, when the test has one (keyed by config path:
/// tests run in parallel).
static HOOKS: std::sync::Mutex<BTreeMap<std::path::PathBuf, String>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The harness's Trackly source (paced so a run spans many pages), both targets, and the
/// notifier of the test's receiver if it has one.
pub(crate) fn configure(app: &TestApp, daemon: Option<u16>) {
    app.write_config(SourceOpts {
        page_size: 20,
        api_key_line: format!("api_key = {:?}", app.api_key),
        extra: "removal_grace_runs = 1\nmax_removal_fraction = 0.5\nschedule = \"* * * * * *\""
            .into(),
    });
    let mut text = std::fs::read_to_string(&app.config_path).unwrap();
    text = text.replace("requests_per_second = 1000", "requests_per_second = 150");
    if let Some(port) = daemon {
        text = text.replacen(
            "[[sources]]",
            &format!("[daemon]\nmetrics_listen = \"127.0.0.1:{port}\"\nrun_on_start = true\nshutdown_timeout_seconds = 2\n\n[[sources]]"),
            1,
        );
    }
    text.push_str(&format!(
        r#"
[[targets]]
name = "oi"
kind = "offerit"
base_url = {oi:?}
api_username = "ops"
api_key = {oi_key:?}
sources = ["{SOURCE}"]
requests_per_second = 600
max_attempts = 3
retry_initial_interval_ms = 10

[[targets]]
name = "af"
kind = "affise"
base_url = {af:?}
api_key = {af_key:?}
advertiser_id = "5bc9d7c16d73e41c008b4567"
sources = ["{SOURCE}"]
requests_per_second = 600
max_attempts = 3
retry_initial_interval_ms = 10
"#,
        oi = app.sandbox.offerit_target_url(),
        oi_key = sandbox::OFFERIT_KEY,
        af = app.sandbox.affise_target_url(),
        af_key = sandbox::AFFISE_TARGET_KEY,
    ));
    if let Some(url) = HOOKS.lock().unwrap().get(&app.config_path).cloned() {
        text.push_str(&format!(
            "\n[[notify]]\nname = \"ops\"\nurl = {url:?}\nformat = \"json\"\nevents = [\"offer_added\", \"offer_removed\"]\nbatch_seconds = 0\nretry_initial_interval_ms = 10\n"
        ));
    }
    std::fs::write(&app.config_path, text).unwrap();
}

fn spawn(app: &TestApp, args: &[&str]) -> Child {
    spawn_with(app, args, &[])
}

/// The binary on the test config; its stderr is shown with `OFFERSYNC_CRASH_STDERR=1`.
pub(crate) fn spawn_with(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.arg("--config")
        .arg(&app.config_path)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("OFFERSYNC_CRASH_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("offersync starts")
}

/// After a run died at the failpoint: the offer whose push was in flight, if any.
fn in_flight_offer(app: &TestApp) -> Option<String> {
    if !app.mirror_exists() {
        return None;
    }
    sql_strings(
        app,
        "SELECT external_id FROM push_outbox WHERE state = 'in_flight' LIMIT 1",
    )
    .pop()
    .map(|mut r| r.remove(0))
}

/// Remove offer `id` from the sandbox (if nobody changed it before), recording what the
/// history must then hold.
fn remove_offer(
    app: &TestApp,
    id: &str,
    touched: &mut BTreeSet<usize>,
    exp: &mut Expected,
) -> bool {
    let held = mirrored(app);
    app.sandbox.with_trackly(|t| {
        let Some(i) = t
            .catalog
            .live_indices()
            .into_iter()
            .find(|i| t.catalog.offer(*i).id == id)
        else {
            return false;
        };
        if !touched.insert(i) {
            return false;
        }
        t.catalog.remove(i);
        exp.added.remove(id);
        if held.contains(id) {
            exp.removed.insert(id.to_string());
            exp.added.insert(id.to_string());
        } else {
            exp.removed_unseen.insert(id.to_string());
        }
        true
    })
}

/// SIGKILL `child` after `after` unless it exited first (then `Err` with how long it ran).
pub(crate) async fn kill_after(mut child: Child, after: Duration) -> Result<(), Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < after {
        if let Some(status) = child.try_wait().unwrap() {
            assert_ne!(
                status.code(),
                Some(2),
                "offersync rejected the test's config"
            );
            return Err(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    Ok(())
}

/// A crash suite's start: the webhook receiver its config notifies, and what the history must
/// hold so far (one `added` per offer the catalogue serves).
pub(crate) async fn start_suite(app: &TestApp) -> (crate::notify::Receiver, Expected) {
    let (hook, hook_url) = crate::notify::Receiver::start(&[]).await;
    HOOKS
        .lock()
        .unwrap()
        .insert(app.config_path.clone(), hook_url);
    let exp = Expected {
        added: app
            .sandbox
            .with_trackly(|t| t.catalog.live(|_| true).into_iter().map(|o| o.id).collect()),
        ..Expected::default()
    };
    (hook, exp)
}

/// What the history must hold for each offer id, by change kind.
#[derive(Default)]
pub(crate) struct Expected {
    /// Offers that must have exactly one `added` row.
    pub(crate) added: BTreeSet<String>,
    /// Offers changed once in the sandbox while the mirror held them: exactly one `changed`.
    pub(crate) changed: BTreeSet<String>,
    /// Offers changed before the mirror ever held them: no `changed` row (their one `added`
    /// row carries the new content).
    pub(crate) changed_unseen: BTreeSet<String>,
    /// Offers removed while the mirror held them: exactly one `removed`.
    pub(crate) removed: BTreeSet<String>,
    /// Offers removed before the mirror ever held them: no row at all.
    pub(crate) removed_unseen: BTreeSet<String>,
}

/// Ids the mirror holds (live) now; the binary is not running.
fn mirrored(app: &TestApp) -> BTreeSet<String> {
    if !app.mirror_exists() {
        return BTreeSet::new();
    }
    sql_strings(
        app,
        "SELECT external_id FROM offers WHERE status <> 'removed'",
    )
    .into_iter()
    .map(|mut r| r.remove(0))
    .collect()
}

/// Change a few offers nobody changed before (each offer changes at most once, so "exactly
/// once" is well defined): a payout, a pause, a removal, and a new offer.
pub(crate) fn mutate(
    app: &TestApp,
    rng: &mut Rng,
    touched: &mut BTreeSet<usize>,
    exp: &mut Expected,
) {
    let held = mirrored(app);
    app.sandbox.with_trackly(|t| {
        let live = t.catalog.live_indices();
        let mut pick = |rng: &mut Rng| {
            for _ in 0..10_000 {
                let i = live[rng.below(live.len() as u64) as usize];
                if touched.insert(i) {
                    return i;
                }
            }
            panic!("the catalogue has no untouched offer left");
        };
        let i = pick(rng);
        t.catalog.update(i, |o| o.payout_cents += 100);
        let id = t.catalog.offer(i).id;
        if held.contains(&id) {
            exp.changed.insert(id);
        } else {
            exp.changed_unseen.insert(id);
        }
        let i = pick(rng);
        let was_active = t.catalog.offer(i).status == "active";
        t.catalog.update(i, |o| {
            o.status = if was_active { "paused" } else { "active" }
        });
        let id = t.catalog.offer(i).id;
        if held.contains(&id) {
            exp.changed.insert(id);
        } else {
            exp.changed_unseen.insert(id);
        }
        let i = pick(rng);
        t.catalog.remove(i);
        let id = t.catalog.offer(i).id;
        exp.added.remove(&id);
        if held.contains(&id) {
            exp.removed.insert(id.clone());
            exp.added.insert(id);
        } else {
            exp.removed_unseen.insert(id);
        }
        for i in t.catalog.add(1) {
            touched.insert(i);
            exp.added.insert(t.catalog.offer(i).id);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let seed = env_u64("OFFERSYNC_CRASH_SEED", 0x0ff3_25c5);
    let kills_wanted = env_u64("OFFERSYNC_CRASH_KILLS", 30);
    println!("crash suite: seed {seed:#x}, {kills_wanted} kills");
    let mut rng = Rng(seed);
    let app = TestApp::new(400).await;
    // Notifications ride along: kills anywhere must lose none.
    let (hook, mut exp) = start_suite(&app).await;
    let mut touched = BTreeSet::new();

    // How long the last uninterrupted --once run took: later runs have less to do.
    let mut once_ms = 800;
    let mut kills = 0;
    let mut daemon_kills = 0;
    let mut failpoint_kills = 0;
    let mut attempts = 0;
    while kills < kills_wanted {
        attempts += 1;
        assert!(
            attempts < kills_wanted * 10,
            "seed {seed:#x}: runs keep finishing before their kill point"
        );
        if rng.below(2) == 0 {
            mutate(&app, &mut rng, &mut touched, &mut exp);
        }
        if rng.below(6) == 0 {
            // Die right after a target answered a push, then drop that offer at the source.
            configure(&app, None);
            let child = spawn_with(
                &app,
                &["--once"],
                &[("OFFERSYNC_FAILPOINT", "after_push_call")],
            );
            if kill_after(child, Duration::from_secs(30)).await.is_err() {
                if let Some(id) = in_flight_offer(&app) {
                    remove_offer(&app, &id, &mut touched, &mut exp);
                    failpoint_kills += 1;
                    kills += 1;
                }
            }
            continue;
        }
        // One run in three is the daemon (which also pushes from its delivery workers).
        let daemon = rng.below(3) == 0;
        configure(&app, daemon.then(free_port));
        let child = if daemon {
            spawn(&app, &[])
        } else {
            spawn(&app, &["--once"])
        };
        // Kill anywhere in a --once run (the first ones push every offer, later ones little),
        // or in the daemon's first second and a half (it starts a run every second).
        let at = Duration::from_millis(2 + rng.below(if daemon { 1500 } else { once_ms }));
        match kill_after(child, at).await {
            Ok(()) => {
                kills += 1;
                daemon_kills += u64::from(daemon);
            }
            Err(ran) if !daemon => once_ms = (ran.as_millis() as u64 * 5 / 4).max(20),
            Err(_) => {}
        }
    }
    println!("{kills} kills ({daemon_kills} of the daemon, {failpoint_kills} at the failpoint before a removal) in {attempts} runs");

    // Recovery: --once until a run completes and every push is delivered.
    configure(&app, None);
    let mut clean = false;
    for _ in 0..8 {
        let out = app.bin(&["--once"], &[("RUST_LOG", "warn")]).await;
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
}

/// After the kills and a clean run: the database sound, nothing in flight, every notification
/// delivered, the mirror equal to the catalogue, every change recorded exactly once, and each
/// target holding each pushed offer once (Offerit duplicates only where flagged). On either
/// backend.
pub(crate) fn assert_end_state(
    app: &TestApp,
    seed: u64,
    exp: &Expected,
    hook: &crate::notify::Receiver,
) {
    assert_eq!(app.store().integrity_check().unwrap(), "ok");
    assert_eq!(
        sql_i64(
            app,
            "SELECT count(*) FROM push_outbox WHERE state = 'in_flight'"
        ),
        0,
        "no operation left in flight"
    );

    // 0. No notification lost: every one recorded is done, they count every added and removed
    // offer, and the receiver got each (at least once: a kill after a 2xx resends).
    assert_eq!(
        sql_i64(
            app,
            "SELECT count(*) FROM notify_outbox WHERE state <> 'done'"
        ),
        0,
        "seed {seed:#x}: every notification delivered"
    );
    for (event, kind) in [("offer_added", "added"), ("offer_removed", "removed")] {
        let sum = if on_pg(app) {
            "COALESCE(sum((payload ->> 'count')::bigint), 0)::bigint"
        } else {
            "COALESCE(sum(json_extract(payload, '$.count')), 0)"
        };
        let notified = sql_i64(
            app,
            &format!("SELECT {sum} FROM notify_outbox WHERE event = '{event}'"),
        );
        let changes = sql_i64(
            app,
            &format!("SELECT count(*) FROM offer_changes WHERE kind = '{kind}'"),
        );
        assert_eq!(
            notified, changes,
            "seed {seed:#x}: {event} counts every {kind} offer"
        );
    }
    let received: BTreeSet<i64> = hook
        .bodies()
        .iter()
        .flat_map(|b| b["run_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_i64())
        .collect();
    let recorded: BTreeSet<i64> = sql_strings(
        app,
        if on_pg(app) {
            "SELECT DISTINCT value FROM notify_outbox, jsonb_array_elements_text(payload -> 'run_ids') AS value"
        } else {
            "SELECT DISTINCT value FROM notify_outbox, json_each(json_extract(payload, '$.run_ids'))"
        },
    )
    .into_iter()
    .map(|r| r[0].parse().unwrap())
    .collect();
    assert!(
        recorded.is_subset(&received),
        "seed {seed:#x}: runs reported but never received: {:?}",
        recorded.difference(&received).collect::<Vec<_>>()
    );

    // 1. The mirror equals the sandbox's catalogue, field by field.
    let wire = served(app);
    let stored = app.offers();
    let live: BTreeMap<&str, _> = stored
        .iter()
        .filter(|o| o.removed_at.is_none())
        .map(|o| (o.offer.external_id.as_str(), o))
        .collect();
    assert_eq!(
        live.keys().copied().collect::<Vec<_>>(),
        wire.keys().map(String::as_str).collect::<Vec<_>>(),
        "seed {seed:#x}: live mirror ids == sandbox ids"
    );
    for (id, w) in &wire {
        assert_mirrors(live[id.as_str()], w);
    }

    // 2. Every change the sandbox made is in offer_changes exactly once.
    let mut rows: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in sql_strings(
        app,
        "SELECT external_id, kind, count(*) FROM offer_changes GROUP BY external_id, kind",
    ) {
        rows.insert((r[0].clone(), r[1].clone()), r[2].parse().unwrap());
    }
    let count = |id: &str, kind: &str| {
        rows.get(&(id.to_string(), kind.to_string()))
            .copied()
            .unwrap_or(0)
    };
    for id in &exp.added {
        assert_eq!(
            count(id, "added"),
            1,
            "seed {seed:#x}: one 'added' for {id}"
        );
    }
    for id in &exp.changed {
        assert_eq!(
            count(id, "changed"),
            1,
            "seed {seed:#x}: one 'changed' for {id}"
        );
    }
    for id in &exp.changed_unseen {
        assert_eq!(
            count(id, "changed"),
            0,
            "seed {seed:#x}: no 'changed' for {id}"
        );
    }
    for id in &exp.removed {
        assert_eq!(
            count(id, "removed"),
            1,
            "seed {seed:#x}: one 'removed' for {id}"
        );
    }
    for id in &exp.removed_unseen {
        let any: i64 = ["added", "changed", "removed"]
            .iter()
            .map(|k| count(id, k))
            .sum();
        assert_eq!(
            any, 0,
            "seed {seed:#x}: {id} was removed before it was ever seen"
        );
    }
    let untouched_changes: i64 = rows
        .iter()
        .filter(|((id, kind), _)| {
            kind == "changed" && !exp.changed.contains(id) && !exp.changed_unseen.contains(id)
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        untouched_changes, 0,
        "seed {seed:#x}: no change recorded for offers the sandbox did not change"
    );
    assert_eq!(
        count_kind(&rows, "reappeared"),
        0,
        "seed {seed:#x}: nothing removed came back"
    );

    // 3. Each target holds exactly one offer per pushed source offer.
    let mapped = |target: &str| -> BTreeMap<String, String> {
        sql_strings(
            app,
            &format!(
                "SELECT external_id, target_offer_id FROM target_offers WHERE target = '{target}'"
            ),
        )
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
    };
    let flagged: BTreeSet<String> = sql_strings(
        app,
        "SELECT DISTINCT external_id FROM push_outbox WHERE target = 'oi' AND possible_duplicate = true",
    )
    .into_iter()
    .map(|mut r| r.remove(0))
    .collect();
    let af_map = mapped("af");
    let oi_map = mapped("oi");
    let active: Vec<_> = live
        .values()
        .filter(|o| o.offer.status == offersync::model::OfferStatus::Active)
        .collect();
    assert!(!active.is_empty());
    let (af_held, oi_held) = (
        Sandbox::with_target(&app.sandbox.affise_target, |t| t.offers.clone()),
        Sandbox::with_target(&app.sandbox.offerit_target, |t| t.offers.clone()),
    );
    let mut af_by_ext: BTreeMap<&str, usize> = BTreeMap::new();
    for h in af_held.values() {
        *af_by_ext
            .entry(h.fields["external_offer_id"].as_str())
            .or_default() += 1;
    }
    assert!(
        af_by_ext.values().all(|n| *n == 1),
        "seed {seed:#x}: Affise holds no duplicates: {:?}",
        af_by_ext
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        af_held.len(),
        af_map.len(),
        "seed {seed:#x}: every Affise offer is mapped"
    );
    let mut oi_by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut oi_live_by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for h in oi_held.values() {
        *oi_by_name.entry(h.fields["name"].as_str()).or_default() += 1;
        if h.is_live() {
            *oi_live_by_name
                .entry(h.fields["name"].as_str())
                .or_default() += 1;
        }
    }
    // Offers gone from the source are live on no target (whatever was in flight when the
    // process died).
    for o in stored.iter().filter(|o| o.removed_at.is_some()) {
        let ext = format!("{SOURCE}:{}", o.offer.external_id);
        assert!(
            af_held
                .values()
                .all(|h| !(h.is_live() && h.fields["external_offer_id"] == ext)),
            "seed {seed:#x}: removed offer {} is live on Affise",
            o.offer.external_id
        );
        assert_eq!(
            oi_live_by_name
                .get(o.offer.name.as_str())
                .copied()
                .unwrap_or(0),
            0,
            "seed {seed:#x}: removed offer {} is live on Offerit",
            o.offer.external_id
        );
    }
    let mut duplicates = 0;
    for o in &active {
        let id = o.offer.external_id.as_str();
        assert!(
            af_map.contains_key(id),
            "seed {seed:#x}: {id} pushed to Affise"
        );
        assert!(
            oi_map.contains_key(id),
            "seed {seed:#x}: {id} pushed to Offerit"
        );
        let ext = format!("{SOURCE}:{id}");
        assert_eq!(
            af_by_ext.get(ext.as_str()).copied().unwrap_or_default(),
            1,
            "seed {seed:#x}: Affise holds {id} once"
        );
        let n = oi_by_name.get(o.offer.name.as_str()).copied().unwrap_or(0);
        assert!(n >= 1, "seed {seed:#x}: Offerit holds {id}");
        assert_eq!(
            oi_live_by_name.get(o.offer.name.as_str()).copied(),
            Some(1),
            "seed {seed:#x}: {id} is live exactly once on Offerit (other copies are hidden orphans)"
        );
        if n > 1 {
            duplicates += 1;
            assert!(
                flagged.contains(id),
                "seed {seed:#x}: Offerit holds {id} {n} times but no operation was flagged possible_duplicate"
            );
        }
    }
    println!(
        "mirror {} live offers; changes ok; Offerit duplicates {duplicates} (flagged {}); Affise duplicates 0",
        live.len(),
        flagged.len()
    );
}

fn count_kind(rows: &BTreeMap<(String, String), i64>, kind: &str) -> i64 {
    rows.iter()
        .filter(|((_, k), _)| k == kind)
        .map(|(_, n)| n)
        .sum()
}

/// Approvals under SIGKILL: `approve --all --deliver` killed at random points (and at the
/// failpoint right after Affise answered a create) neither loses an approved create nor
/// sends one twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_approve_and_delivery_loses_and_duplicates_nothing() {
    let seed = env_u64("OFFERSYNC_CRASH_SEED", 0x0a99_0e5e);
    let kills_wanted = env_u64("OFFERSYNC_CRASH_KILLS", 30).div_ceil(3);
    let mut rng = Rng(seed);
    let app = TestApp::new(150).await;
    configure(&app, None);
    let manual = std::fs::read_to_string(&app.config_path).unwrap().replace(
        "advertiser_id = \"5bc9d7c16d73e41c008b4567\"",
        "advertiser_id = \"5bc9d7c16d73e41c008b4567\"\napproval = \"manual\"",
    );
    std::fs::write(&app.config_path, manual).unwrap();
    let out = app.bin(&["--once"], &[("RUST_LOG", "warn")]).await;
    assert!(
        out.status.success(),
        "{}",
        crate::harness::text(&out.stderr)
    );
    let waiting = sql_i64(
        &app,
        "SELECT count(*) FROM push_outbox WHERE target = 'af' AND state = 'awaiting_approval'",
    );
    assert!(waiting > 50, "creates wait for approval: {waiting}");
    let mut kills = 0;
    let mut attempts = 0;
    let mut run_ms = 400;
    while kills < kills_wanted {
        attempts += 1;
        assert!(
            attempts < kills_wanted * 10,
            "seed {seed:#x}: runs keep finishing"
        );
        let failpoint = rng.below(4) == 0;
        let env: &[(&str, &str)] = if failpoint {
            &[("OFFERSYNC_FAILPOINT", "after_push_call")]
        } else {
            &[]
        };
        let child = spawn_with(&app, &["approve", "af", "--all", "--deliver"], env);
        let at = if failpoint {
            Duration::from_secs(30)
        } else {
            Duration::from_millis(2 + rng.below(run_ms))
        };
        match kill_after(child, at).await {
            Ok(()) => kills += 1,
            Err(_) if failpoint => kills += 1,
            Err(ran) => run_ms = (ran.as_millis() as u64 * 5 / 4).max(20),
        }
    }
    // Recovery: approve and push until nothing waits.
    let mut clean = false;
    for _ in 0..6 {
        let a = app
            .bin(
                &["approve", "af", "--all", "--deliver"],
                &[("RUST_LOG", "warn")],
            )
            .await;
        let waiting = sql_i64(
            &app,
            "SELECT count(*) FROM push_outbox WHERE target = 'af' AND state NOT IN ('done')",
        );
        if a.status.code() == Some(0) && waiting == 0 {
            clean = true;
            break;
        }
    }
    assert!(
        clean,
        "seed {seed:#x}: no clean delivery after {kills} kills"
    );
    let active = app
        .sandbox
        .with_trackly(|t| t.catalog.live(|s| s == "active"));
    for o in &active {
        let ext = format!("{SOURCE}:{}", o.id);
        let copies = Sandbox::with_target(&app.sandbox.affise_target, |t| {
            t.find("external_offer_id", &ext).len()
        });
        assert_eq!(copies, 1, "seed {seed:#x}: {ext} on Affise exactly once");
    }
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM target_offers WHERE target = 'af'"
        ),
        active.len() as i64
    );
    println!(
        "approval crash suite: {kills} kills in {attempts} runs, {} creates approved once each",
        active.len()
    );
}

fn on_pg(app: &TestApp) -> bool {
    app.pg.is_some()
}
