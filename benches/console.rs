//! The console's pages on a mirror of 1,000,000 offers (run with `cargo bench --bench console`;
//! prints figures). The mirror is written directly with SQL in bulk (a sync of a million offers
//! would take a quarter of an hour and measure the sync, not the console): four sources of
//! 250,000 offers (statuses, countries, payouts and one source's approval states spread
//! deterministically), one `offer_changes` row and one `offer_seen` row per offer; target
//! `oi` holds every offer (1,000,000 `target_offers` rows and `done` operations, 200 dead),
//! target `af` has 5,000 creates awaiting approval; the last run of one source is held.
//!
//! Then the console is served in-process and each page is fetched over HTTP (loopback),
//! 3 times to warm up and `OFFERSYNC_BENCH_SAMPLES` (default 30) times measured: p50 and max
//! in milliseconds. `OFFERSYNC_BENCH_DB=path` keeps (and reuses) the mirror.

use offersync::config::Config;
use rusqlite::params;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const OFFERS_PER_SOURCE: usize = 250_000;
const SOURCES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
const COUNTRIES: [&str; 12] = [
    "US", "GB", "DE", "FR", "ES", "IT", "BR", "IN", "JP", "AU", "CA", "MX",
];
const STATUSES: [&str; 10] = [
    "active", "active", "active", "active", "active", "active", "active", "paused", "expired",
    "removed",
];
const TOKEN: &str = "bench-console-token-0123456789";

fn build(path: &Path) {
    let t0 = Instant::now();
    drop(offersync::store::Store::open(path, std::time::Duration::from_secs(10)).unwrap());
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .unwrap();
    let now = "2026-12-01T00:00:00Z";
    let tx = conn.transaction().unwrap();
    {
        let mut run = tx
            .prepare(
                "INSERT INTO sync_runs (id, source, started_at, finished_at, state, reason, offers_seen,
                                        added, held_removals, error, requests)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?6, ?7, ?8, 2500)",
            )
            .unwrap();
        for (i, s) in SOURCES.iter().enumerate() {
            let held = i == 3;
            run.execute(params![
                i as i64 + 1,
                s,
                now,
                if held { "held" } else { "complete" },
                held.then_some("mass_removal_guard"),
                OFFERS_PER_SOURCE as i64,
                if held { 200_000 } else { 0 },
                held.then_some(
                    "would remove 200000 of 250000 live offers; offersync approve-removals delta"
                ),
            ])
            .unwrap();
        }
        let mut row = tx
            .prepare(
                "INSERT INTO offer_rows (id, source, external_id, name, status, payout, currency,
                     payout_type, countries, categories, tracking_url, advertiser, approval,
                     content_hash, first_seen_at, updated_at, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'USD', 'CPA', ?7, '[\"Games\"]', ?8, 'adv-1', ?9,
                         ?10, ?11, ?11, ?12)",
            )
            .unwrap();
        let mut seen = tx
            .prepare(
                "INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at, live_hash)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap();
        let mut change = tx
            .prepare(
                "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at, offer_id)
                 VALUES (?1, ?2, ?3, 'added', '{}', ?4, ?5)",
            )
            .unwrap();
        let mut id = 0i64;
        for (si, s) in SOURCES.iter().enumerate() {
            for n in 0..OFFERS_PER_SOURCE {
                id += 1;
                let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let ext = format!("{:012x}", h >> 16);
                let status = STATUSES[(h >> 8) as usize % STATUSES.len()];
                let c1 = COUNTRIES[(h >> 20) as usize % COUNTRIES.len()];
                let c2 = COUNTRIES[(h >> 28) as usize % COUNTRIES.len()];
                let countries = if c1 == c2 {
                    format!("[\"{c1}\"]")
                } else {
                    format!("[\"{}\",\"{}\"]", c1.min(c2), c1.max(c2))
                };
                let payout = format!("{}.{:02}", (h >> 36) % 40, (h >> 44) % 100);
                let approval = (si == 1).then_some(
                    ["approved", "requires_approval", "pending"][(h >> 50) as usize % 3],
                );
                let name = format!("Offer {n} of {s}");
                let url = format!("https://track.example/{ext}?click={{click_id}}");
                let raw = format!(
                    "{{\"id\":\"{ext}\",\"name\":\"{name}\",\"status\":\"{status}\",\"payout\":\"{payout}\",\"tracking_url\":\"{url}\",\"metadata\":{{\"geo\":{countries},\"vertical\":\"Games\"}}}}"
                );
                let hash = format!("{h:016x}");
                row.execute(params![
                    id, s, ext, name, status, payout, countries, url, approval, hash, now, raw
                ])
                .unwrap();
                seen.execute(params![
                    id,
                    si as i64 + 1,
                    now,
                    (status != "removed").then_some(&hash)
                ])
                .unwrap();
                change
                    .execute(params![si as i64 + 1, s, ext, now, id])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    println!("offers written in {:.1} s", t0.elapsed().as_secs_f64());
    let tx = conn.transaction().unwrap();
    tx.execute_batch(&format!(
        "INSERT INTO target_offers (target, source, external_id, target_offer_id, state, pushed_at)
           SELECT 'oi', source, external_id, 'oi-' || id, 'active', '{now}' FROM offer_rows;
         INSERT INTO push_outbox (target, source, external_id, op, payload, state, attempts, created_at, done_at)
           SELECT 'oi', source, external_id, 'create', '{{}}', 'done', 1, '{now}', '{now}' FROM offer_rows;
         UPDATE push_outbox SET state = 'dead', done_at = NULL, last_error = 'Offerit answered HTTP 400: bad field'
           WHERE id % 5000 = 0;
         INSERT INTO push_outbox (target, source, external_id, op, payload, state, created_at, last_error)
           SELECT 'af', source, external_id, 'create',
                  json_object('fields', json_object('payout', payout, 'currency', 'USD')),
                  'awaiting_approval', '{now}',
                  'new offer awaiting approval (target af has approval = \"manual\")'
           FROM offer_rows WHERE source = 'bravo' AND id % 50 = 0;"
    ))
    .unwrap();
    tx.commit().unwrap();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    println!("mirror built in {:.1} s", t0.elapsed().as_secs_f64());
}

fn config(db: &Path) -> Config {
    let mut text = format!("[database]\npath = {:?}\n", db.to_string_lossy());
    for s in SOURCES {
        text.push_str(&format!(
            "\n[[sources]]\nname = \"{s}\"\nkind = \"trackly\"\nbase_url = \"http://127.0.0.1:9/api\"\napi_key = \"trk_bench_{s}_000000000000\"\n"
        ));
    }
    for (t, approval) in [("oi", "auto"), ("af", "manual")] {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"{t}\"\nkind = \"offerit\"\nbase_url = \"http://127.0.0.1:9/\"\napi_username = \"ops\"\napi_key = \"oi_bench_key_0000000000\"\nsources = [\"alpha\", \"bravo\", \"charlie\", \"delta\"]\napproval = \"{approval}\"\n"
        ));
    }
    text.push_str("\n[console]\nenabled = true\nlisten = \"127.0.0.1:0\"\ntoken_env = \"OFFERSYNC_BENCH_CONSOLE_TOKEN\"\n");
    Config::from_toml_str(&text, Path::new("(bench)")).unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::env::var("OFFERSYNC_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("console-bench.db"));
    if !db.exists() {
        build(&db);
    }
    let samples: usize = std::env::var("OFFERSYNC_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // Set before the runtime, and so before any other thread, starts.
    std::env::set_var("OFFERSYNC_BENCH_CONSOLE_TOKEN", TOKEN);
    let config = Arc::new(config(&db));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c2 = config.clone();
        let host = offersync::console::Host {
            config: Arc::new(move || c2.clone()),
            deliver_soon: Arc::new(|| {}),
            started: chrono::Utc::now(),
        };
        let addr = offersync::console::serve(&config.console, host).await.unwrap();
        let base = format!("http://{addr}");
        let some_id = {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.query_row(
                "SELECT external_id FROM offer_rows WHERE source = 'charlie' AND id % 1000 = 7 LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
        };
        let pages = [
            ("overview", "/".to_string()),
            ("offers", "/offers".to_string()),
            ("offers, page 2000 (keyset)", "/offers?after_source=bravo&after_id=7fff00000000".to_string()),
            ("offers ?source", "/offers?source=charlie".to_string()),
            ("offers ?status=paused", "/offers?status=paused".to_string()),
            ("offers ?source&status&country&payout", "/offers?source=charlie&status=active&country=JP&min_payout=10&max_payout=20".to_string()),
            ("offers ?approval=pending", "/offers?source=bravo&approval=pending".to_string()),
            ("offers ?q (name contains)", "/offers?q=Offer+12345+of".to_string()),
            ("offers, no match (whole window)", "/offers?country=ZZ".to_string()),
            ("one offer", format!("/offer?source=charlie&id={some_id}")),
            ("approvals (5,000 queued)", "/approvals".to_string()),
            ("held removals", "/removals".to_string()),
            ("dead pushes (200)", "/dead".to_string()),
        ];
        let client = reqwest::Client::new();
        println!("\n{:<42} {:>9} {:>9} {:>9}", "page", "p50 ms", "max ms", "bytes");
        for (label, path) in pages {
            let url = format!("{base}{path}");
            let mut times = Vec::new();
            let mut bytes = 0;
            for i in 0..samples + 3 {
                let t = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert!(r.status().is_success(), "{label}: {}", r.status());
                bytes = r.bytes().await.unwrap().len();
                if i >= 3 {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{label:<42} {:>9.1} {:>9.1} {bytes:>9}",
                times[times.len() / 2],
                times[times.len() - 1]
            );
        }
    });
}
