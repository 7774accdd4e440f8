//! Rate-limit convergence benchmark (run with `cargo bench --bench ratelimit`; prints figures).
//!
//! The simulated Trackly admits R = 50 requests/s (a token bucket holding one second) and
//! answers the rest with 429. offersync syncs 1,000 pages (one offer each) and we report the
//! total time divided by the theoretical minimum (pages / R), the fraction of requests the
//! platform rejected, and the limiter's pace at the end (it keeps probing upward slowly):
//! 1. 429 + `Retry-After: 1`, source configured at 4× the limit (200/s);
//! 2. the same, configured right (50/s);
//! 3. 429 without any hint, configured at 200/s;
//! 4. a limit that only shows in the body: the Offerslook twin answering HTTP 200 with
//!    `{"code": .., "message": "Too Many Request"}`, configured at 200/s.

use offersync::config::Config;
use offersync::http::Limiters;
use offersync::sandbox::limits::{Limit, LimitAnswer};
use offersync::sandbox::{Sandbox, SandboxConfig};
use offersync::store::RunState;
use offersync::sync::{self, RunReport, SyncContext};
use std::time::Instant;

const KEY: &str = "trk_ratelimitbench00000000000000000";
const PAGES: usize = 1000;
const R: f64 = 50.0;

async fn scenario(label: &str, configured_rps: u32, answer: LimitAnswer, offerslook: bool) {
    let sandbox = Sandbox::start(SandboxConfig {
        seed: 3,
        trackly_offers: PAGES,
        trackly_api_key: KEY.into(),
        offerslook_offers: PAGES,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let (twin, key) = if offerslook {
        (&sandbox.offerslook, offersync::sandbox::OFFERSLOOK_KEY)
    } else {
        (&sandbox.trackly, KEY)
    };
    Sandbox::with(twin, |t| {
        t.limits.insert(key.into(), Limit::bucket(R, R, answer));
    });
    let dir = tempfile::tempdir().unwrap();
    let platform = if offerslook {
        format!(
            "kind = \"offerslook\"\napi = \"network\"\nendpoint = \"batches\"\nusername = {:?}\nbase_url = {:?}\n",
            offersync::sandbox::offerslook::USERNAME,
            sandbox.offerslook_base_url()
        )
    } else {
        format!(
            "kind = \"trackly\"\nbase_url = {:?}\n",
            sandbox.trackly_base_url()
        )
    };
    let text = format!(
        "[database]\npath = {:?}\n[[sources]]\nname = \"bench\"\n{platform}api_key = {key:?}\n\
         page_size = 1\nmax_pages = 100000\nrequests_per_second = {configured_rps}\nburst = 1\nmax_attempts = 20\n\
         retry_initial_interval_ms = 250\nretry_max_interval_seconds = 5\n",
        dir.path().join("bench.db").to_string_lossy(),
    );
    let config = Config::from_toml_str(&text, std::path::Path::new("bench")).unwrap();
    let sources: Vec<_> = config.sources.iter().collect();
    let p = sync::prepare(&sources, &Limiters::new()).unwrap().remove(0);
    let ctx = SyncContext::for_database(&config.database);
    let endpoint = p.endpoint.clone();
    let t0 = Instant::now();
    let report = sync::run_source(&ctx, &p.cfg, p.source, p.endpoint).await;
    let secs = t0.elapsed().as_secs_f64();
    let (state, pages) = match &report {
        RunReport::Finished(t) => (t.state, t.pages),
        other => panic!("{other:?}"),
    };
    let (admitted, rejected) = Sandbox::with(twin, |t| {
        let l = &t.limits[key];
        (l.admitted, l.rejected)
    });
    let minimum = PAGES as f64 / R;
    println!(
        "{label:<44} {:>6.2} s  ratio {:>5.3}  rejected {:>5.2}% ({rejected}/{})  final pace {:>6.1}/s  {}{}",
        secs,
        secs / minimum,
        rejected as f64 * 100.0 / (admitted + rejected) as f64,
        admitted + rejected,
        endpoint.pace().rate,
        if state == RunState::Complete { "complete" } else { "NOT complete" },
        if pages as usize == PAGES { String::new() } else { format!(" ({pages} pages)") },
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "rate-limit convergence: {PAGES} pages, platform limit R = {R}/s, minimum {:.0} s",
        PAGES as f64 / R
    );
    rt.block_on(async {
        use LimitAnswer::*;
        let trackly = false;
        scenario(
            "429 + Retry-After: 1, configured 200/s",
            200,
            RetryAfterSeconds(1),
            trackly,
        )
        .await;
        scenario(
            "429 + Retry-After: 1, configured 50/s",
            50,
            RetryAfterSeconds(1),
            trackly,
        )
        .await;
        scenario(
            "429 without hint, configured 200/s",
            200,
            NoRetryAfter,
            trackly,
        )
        .await;
        let offerslook = true;
        scenario(
            "in-body Too Many Request (HTTP 200), 200/s",
            200,
            InBody { status: 200 },
            offerslook,
        )
        .await;
    });
}
