//! The connector catalogue of APIS.md §8 (Everflow, HasOffers, Trackier, Offer18, CAKE), each
//! against its twin through the real binary's `--once`: every offer stored with exact decimal
//! payouts, ISO currencies and countries as the twin served them; a second run after catalogue
//! changes records exactly those changes; the platform's own rate-limit style is survived with
//! every offer.

pub(super) use crate::harness::{off_runtime, sql_i64, sql_quote, sql_strings, text, TestApp};
pub(super) use offersync::model::{OfferStatus, PayoutType};
pub(super) use offersync::sandbox::catalog::SimOffer;
pub(super) use offersync::sandbox::limits::{Limit, LimitAnswer};
pub(super) use offersync::sandbox::twin::Shared;
pub(super) use offersync::sandbox::{self, Sandbox};
pub(super) use offersync::store::StoredOffer;
pub(super) use rust_decimal::Decimal;
pub(super) use serde_json::Value;
pub(super) use std::collections::BTreeSet;
pub(super) use std::str::FromStr;
pub(super) use std::time::Duration;

mod cake;
mod everflow;
mod hasoffers;
mod offer18;
mod trackier;

/// The name of the one source of every config written here.
pub(super) const SOURCE: &str = "src";

/// One platform of the catalogue: how to configure it against its twin, and how to read what
/// its twin served.
pub(super) struct Platform {
    pub(super) kind: &'static str,
    pub(super) twin: fn(&Sandbox) -> &Shared,
    /// The `[[sources]]` table's platform lines (kind, base_url, key, platform keys).
    pub(super) keys: fn(&Sandbox) -> String,
    /// The external id of catalogue offer `index`.
    pub(super) id: fn(usize) -> String,
    /// A catalogue index whose payout is an amount (its change must show).
    pub(super) amount_index: usize,
    /// Check one stored offer against the twin's offer.
    pub(super) check: fn(&SimOffer, &StoredOffer),
}

pub(super) fn config(app: &TestApp, p: &Platform, extra: &str) {
    let text = format!(
        "{}\n[[sources]]\nname = \"{SOURCE}\"\n{}\npage_size = 20\nrequests_per_second = 1000\nmax_attempts = 10\nretry_initial_interval_ms = 10\nretry_max_interval_seconds = 1\nremoval_grace_runs = 1\n{extra}\n",
        app.database_toml(),
        (p.keys)(&app.sandbox)
    );
    std::fs::write(&app.config_path, text).unwrap();
}

/// `--once` through the real binary, which must succeed; the run's row.
pub(super) async fn once(app: &TestApp) -> (i64, i64, i64, i64, String) {
    let (code, row) = once_exit(app).await;
    assert_eq!(code, Some(0), "{row:?}");
    row
}

/// `--once` through the real binary: its exit code, and the run's row.
pub(super) async fn once_exit(app: &TestApp) -> (Option<i32>, (i64, i64, i64, i64, String)) {
    let out = app.bin(&["--once"], &[]).await;
    let code = out.status.code();
    if code != Some(0) {
        eprintln!("{}{}", text(&out.stdout), text(&out.stderr));
    }
    (code, last_run(app))
}

pub(super) fn last_run(app: &TestApp) -> (i64, i64, i64, i64, String) {
    let rows = sql_strings(
        app,
        &format!(
            "SELECT id, added, changed, removed, state FROM sync_runs WHERE source = {} ORDER BY id DESC LIMIT 1",
            sql_quote(SOURCE)
        ),
    );
    let r = rows.first().expect("a run of the source");
    let n = |i: usize| r[i].parse::<i64>().unwrap();
    (n(0), n(1), n(2), n(3), r[4].clone())
}

pub(super) fn live(app: &TestApp) -> Vec<StoredOffer> {
    off_runtime(|| app.store().offers_of(SOURCE).unwrap())
        .into_iter()
        .filter(|o| o.offer.status != OfferStatus::Removed)
        .collect()
}

/// Every live catalogue offer is stored and matches what the twin served.
pub(super) fn assert_mirrors(app: &TestApp, p: &Platform) {
    let served = Sandbox::with((p.twin)(&app.sandbox), |t| t.catalog.live(|_| true));
    let stored = live(app);
    assert_eq!(stored.len(), served.len(), "{}: every offer stored", p.kind);
    for o in &served {
        let id = (p.id)(o.index);
        let s = stored
            .iter()
            .find(|s| s.offer.external_id == id)
            .unwrap_or_else(|| panic!("{}: offer {id} is stored", p.kind));
        (p.check)(o, s);
    }
}

/// A decimal from a JSON number or string, exactly as written.
pub(super) fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
    .map(|d| d.normalize())
}

pub(super) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The raw payload is the row exactly as the twin served it.
pub(super) fn raw_is(s: &StoredOffer, row: &Value) {
    assert_eq!(
        &serde_json::from_str::<Value>(&s.raw).unwrap(),
        row,
        "raw of {}",
        s.offer.external_id
    );
}

pub(super) async fn mirrors_every_offer(p: &Platform) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    let (_, added, _, _, state) = once(&app).await;
    assert_eq!(state, "complete", "{}", p.kind);
    assert!(added > 100, "{}: {added} offers added", p.kind);
    assert_mirrors(&app, p);
}

/// After a clean run: one payout changed, one offer paused, one removed, two added. The next
/// run records exactly those five changes.
pub(super) async fn records_exactly_the_changes(p: &Platform) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    assert_eq!(once(&app).await.4, "complete", "{}", p.kind);
    let a = p.amount_index;
    let added = Sandbox::with((p.twin)(&app.sandbox), |t| {
        // An active offer to pause, and another to remove.
        let b = (a + 1..)
            .find(|i| t.catalog.offer(*i).status == "active")
            .unwrap();
        let c = b + 1;
        t.catalog.update(a, |o| o.payout_cents += 111);
        t.catalog.update(b, |o| o.status = "paused");
        t.catalog.remove(c);
        (b, c, t.catalog.add(2))
    });
    let (b, c, added) = added;
    let (run, added_n, changed, removed, state) = once(&app).await;
    assert_eq!(
        (state.as_str(), added_n, changed, removed),
        ("complete", 2, 2, 1),
        "{}",
        p.kind
    );
    let got: BTreeSet<(String, String)> = sql_strings(
        &app,
        &format!("SELECT external_id, kind FROM offer_changes WHERE run_id = {run}"),
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let mut want: BTreeSet<(String, String)> = [
        ((p.id)(a), "changed"),
        ((p.id)(b), "changed"),
        ((p.id)(c), "removed"),
    ]
    .into_iter()
    .map(|(i, k)| (i, k.to_string()))
    .collect();
    want.extend(added.iter().map(|i| ((p.id)(*i), "added".to_string())));
    assert_eq!(got, want, "{}", p.kind);
    let paused = live(&app)
        .into_iter()
        .find(|s| s.offer.external_id == (p.id)(b))
        .unwrap();
    assert_eq!(paused.offer.status, OfferStatus::Paused, "{}", p.kind);
    assert_mirrors(&app, p);
}

/// The platform's own rate-limit answer on every request over `limit`: the run completes with
/// every offer, and the twin refused some requests.
pub(super) async fn survives_its_rate_limit(p: &Platform, limit: Limit) {
    let app = TestApp::new(1).await;
    config(&app, p, "");
    let key = Sandbox::with((p.twin)(&app.sandbox), |t| {
        let key = t.api_key.clone();
        t.limits.insert(key.clone(), limit);
        key
    });
    let (run, _, _, _, state) = once(&app).await;
    assert_eq!(state, "complete", "{}", p.kind);
    let refused = Sandbox::with((p.twin)(&app.sandbox), |t| t.limits[&key].rejected);
    assert!(refused > 0, "{}: the limit was hit", p.kind);
    let counted = sql_i64(
        &app,
        &format!("SELECT rate_limited FROM sync_runs WHERE id = {run}"),
    );
    assert_eq!(counted, refused as i64, "{}: every refusal counted", p.kind);
    assert_mirrors(&app, p);
}

/// The crash suite's source side for a catalogue platform: `--once` SIGKILLed at seeded random
/// points while the twin's catalogue changes (payouts, removals, additions, each offer touched
/// at most once); after a clean run the mirror equals the twin and every change is recorded
/// exactly once: one `added` per offer, one `changed` per changed offer, one `removed` per
/// removed one.
pub(super) async fn survives_sigkill(p: &Platform, seed: u64) {
    use crate::crash::{env_u64, kill_after, spawn_with, Rng};
    let kills_wanted = env_u64("OFFERSYNC_CRASH_KILLS", 30).div_ceil(5).max(3);
    let mut rng = Rng(env_u64("OFFERSYNC_CRASH_SEED", seed));
    let app = TestApp::new(1).await;
    config(&app, p, "max_removal_fraction = 1.0");
    // Paced, so that a run spans a while and the kills land inside it.
    let paced = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace("requests_per_second = 1000", "requests_per_second = 150");
    std::fs::write(&app.config_path, paced).unwrap();
    let twin = (p.twin)(&app.sandbox);
    let mut added: BTreeSet<String> = Sandbox::with(twin, |t| {
        t.catalog
            .live(|_| true)
            .iter()
            .map(|o| (p.id)(o.index))
            .collect()
    });
    let (mut changed, mut removed, mut touched) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut kills, mut attempts, mut run_ms) = (0, 0, 300u64);
    while kills < kills_wanted {
        attempts += 1;
        assert!(
            attempts < kills_wanted * 10,
            "{}: runs keep finishing",
            p.kind
        );
        if rng.below(2) == 0 {
            Sandbox::with(twin, |t| {
                let live: Vec<usize> = t.catalog.live(|_| true).iter().map(|o| o.index).collect();
                let pick = live[rng.below(live.len() as u64) as usize];
                if touched.insert(pick) {
                    if rng.below(3) == 0 {
                        t.catalog.remove(pick);
                        removed.insert((p.id)(pick));
                    } else {
                        t.catalog.update(pick, |o| o.payout_cents += 7);
                        changed.insert((p.id)(pick));
                    }
                }
                for i in t.catalog.add(1) {
                    touched.insert(i);
                    added.insert((p.id)(i));
                }
            });
        }
        let child = spawn_with(&app, &["--once"], &[]);
        match kill_after(child, Duration::from_millis(2 + rng.below(run_ms))).await {
            Ok(()) => kills += 1,
            Err(ran) => run_ms = (ran.as_millis() as u64 * 5 / 4).max(20),
        }
    }
    let mut complete = false;
    for _ in 0..4 {
        if once_exit(&app).await.1 .4 == "complete" {
            complete = true;
            break;
        }
    }
    assert!(complete, "{}: no complete run after {kills} kills", p.kind);
    assert_mirrors(&app, p);
    let count = |id: &str, kind: &str| -> i64 {
        sql_i64(
            &app,
            &format!(
                "SELECT count(*) FROM offer_changes WHERE external_id = {} AND kind = {}",
                sql_quote(id),
                sql_quote(kind)
            ),
        )
    };
    // An offer added and removed again between two runs may never have been seen: it then
    // has neither an `added` nor a `removed` record.
    for id in &added {
        let want = if removed.contains(id) { 0..=1 } else { 1..=1 };
        assert!(
            want.contains(&count(id, "added")),
            "{}: one 'added' for {id}",
            p.kind
        );
    }
    // A change between two kills may fall in a run that died before storing it: it is then
    // recorded by a later run, once.
    for id in changed.iter().filter(|id| !removed.contains(*id)) {
        assert!(
            count(id, "changed") <= 1,
            "{}: at most one 'changed' for {id}",
            p.kind
        );
    }
    for id in &removed {
        assert_eq!(
            count(id, "removed"),
            count(id, "added"),
            "{}: one 'removed' for {id}, if it was ever seen",
            p.kind
        );
    }
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM offer_changes WHERE kind = 'reappeared'"
        ),
        0,
        "{}: nothing removed by mistake",
        p.kind
    );
    println!("{}: {kills} kills in {attempts} runs", p.kind);
}
