//! Secrets: every source's and target's credential is a unique marker; the real binary runs
//! every command (sync with retries, rate limits, server errors and rejected credentials whose
//! answers echo the key, push, dry run, plan, check, every inspect view in both formats, and
//! the daemon with /metrics and /healthz) at `RUST_LOG=trace`, and no marker may appear in
//! any output, log line, error, database file or HTTP answer. Also: files are private, and a
//! config readable by others is warned about.

use crate::harness::{free_port, generic_trackly_example, text};
use offersync::sandbox::{self, Fault, FaultRule, Sandbox, SandboxConfig};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRACKLY: &str = "zq7TRACKLYsecretMARK01";
const OFFERSLOOK: &str = "zq7OFFERSLOOKsecretMARK02";
const S2S: &str = "zq7S2SsecretMARK03";
const AFFISE: &str = "zq7AFFISEsecretMARK04";
const OFFERIT: &str = "zq7OFFERITsecretMARK05";
const AFFISE_TARGET: &str = "zq7AFFISETARGETsecretMARK06";
/// Wrong keys: the platforms' "invalid key" answers echo them back.
const WRONG_S2S: &str = "zq7WRONGS2SsecretMARK07";
const WRONG_TRACKLY: &str = "zq7WRONGTRACKLYsecretMARK08";
const EVERFLOW: &str = "zq7EVERFLOWsecretMARK09";
const WRONG_EVERFLOW: &str = "zq7WRONGEVERFLOWsecretMARK10";
const HASOFFERS: &str = "zq7HASOFFERSsecretMARK11";
const WRONG_HASOFFERS: &str = "zq7WRONGHASOFFERSsecretMARK12";
const TRACKIER: &str = "zq7TRACKIERsecretMARK13";
const WRONG_TRACKIER: &str = "zq7WRONGTRACKIERsecretMARK14";
const OFFER18: &str = "zq7OFFER18secretMARK15";
const WRONG_OFFER18: &str = "zq7WRONGOFFER18secretMARK16";
const CAKE: &str = "zq7CAKEsecretMARK17";
const WRONG_CAKE: &str = "zq7WRONGCAKEsecretMARK18";

fn markers() -> Vec<String> {
    use base64::Engine;
    let plain = [
        TRACKLY,
        OFFERSLOOK,
        S2S,
        AFFISE,
        OFFERIT,
        AFFISE_TARGET,
        WRONG_S2S,
        WRONG_TRACKLY,
        EVERFLOW,
        WRONG_EVERFLOW,
        HASOFFERS,
        WRONG_HASOFFERS,
        TRACKIER,
        WRONG_TRACKIER,
        OFFER18,
        WRONG_OFFER18,
        CAKE,
        WRONG_CAKE,
    ];
    let mut all: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
    // Offerslook's Basic auth carries the key base64-encoded.
    all.push(
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{OFFERSLOOK}", sandbox::offerslook::USERNAME)),
    );
    all
}

fn config(sandbox: &Sandbox, database: &str, port: u16) -> String {
    let common = "page_size = 20\nrequests_per_second = 1000\nmax_attempts = 3\nretry_initial_interval_ms = 10\nretry_max_interval_seconds = 1\nschedule = \"* * * * * *\"\n";
    let generic = generic_trackly_example(
        &sandbox.trackly_base_url(),
        &format!("api_key = {TRACKLY:?}\nschedule = \"* * * * * *\""),
    );
    format!(
        r#"
{database}

[daemon]
metrics_listen = "127.0.0.1:{port}"
run_on_start = true
shutdown_timeout_seconds = 3

[[sources]]
name = "trk"
kind = "trackly"
base_url = {trackly:?}
api_key = {TRACKLY:?}
{common}
[[sources]]
name = "trk-bad"
kind = "trackly"
base_url = {trackly:?}
api_key = {WRONG_TRACKLY:?}
{common}
[[sources]]
name = "ol"
kind = "offerslook"
api = "network"
endpoint = "batches"
username = {ol_user:?}
base_url = {ol:?}
api_key = {OFFERSLOOK:?}
{common}
[[sources]]
name = "ym"
kind = "s2s"
base_url = {ym:?}
api_key = {S2S:?}
os = "android"
gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
andid = "9774d56d682e549c"
{common}
[[sources]]
name = "ym-bad"
kind = "s2s"
base_url = {ym:?}
api_key = {WRONG_S2S:?}
os = "ios"
{common}
[[sources]]
name = "af"
kind = "affise"
api = "admin"
base_url = {af:?}
api_key = {AFFISE:?}
{common}
[[sources]]
name = "ef"
kind = "everflow"
base_url = {ef:?}
api_key = {EVERFLOW:?}
{common}
[[sources]]
name = "ef-bad"
kind = "everflow"
base_url = {ef:?}
api_key = {WRONG_EVERFLOW:?}
{common}
[[sources]]
name = "ho"
kind = "hasoffers"
base_url = {ho:?}
api_key = {HASOFFERS:?}
{common}
[[sources]]
name = "ho-bad"
kind = "hasoffers"
base_url = {ho:?}
api_key = {WRONG_HASOFFERS:?}
{common}
[[sources]]
name = "tk"
kind = "trackier"
base_url = {tk:?}
api_key = {TRACKIER:?}
api_key_in = "query"
{common}
[[sources]]
name = "tk-bad"
kind = "trackier"
base_url = {tk:?}
api_key = {WRONG_TRACKIER:?}
{common}
[[sources]]
name = "o18"
kind = "offer18"
base_url = {o18:?}
api_key = {OFFER18:?}
affiliate_id = "12345"
network_id = "678"
{common}
[[sources]]
name = "o18-bad"
kind = "offer18"
base_url = {o18:?}
api_key = {WRONG_OFFER18:?}
affiliate_id = "12345"
network_id = "678"
{common}
[[sources]]
name = "ck"
kind = "cake"
base_url = {ck:?}
api_key = {CAKE:?}
affiliate_id = "42"
tracking_url_template = "https://track.cake.demo/?a={{affiliate_id}}&c={{campaign_id}}"
{common}
[[sources]]
name = "ck-bad"
kind = "cake"
base_url = {ck:?}
api_key = {WRONG_CAKE:?}
affiliate_id = "42"
{common}
{generic}

[[targets]]
name = "oi"
kind = "offerit"
base_url = {oi:?}
api_username = "ops"
api_key = {OFFERIT:?}
sources = ["trk", "ol", "ym", "af"]
requests_per_second = 1000
max_attempts = 2
retry_initial_interval_ms = 10

[[targets]]
name = "aft"
kind = "affise"
base_url = {aft:?}
api_key = {AFFISE_TARGET:?}
advertiser_id = "5bc9d7c16d73e41c008b4567"
sources = ["trk", "af"]
requests_per_second = 1000
max_attempts = 2
retry_initial_interval_ms = 10
"#,
        trackly = sandbox.trackly_base_url(),
        ol_user = sandbox::offerslook::USERNAME,
        ol = sandbox.offerslook_base_url(),
        ym = sandbox.s2s_base_url(false),
        af = sandbox.affise_base_url(),
        ef = sandbox.everflow_base_url(),
        ho = sandbox.hasoffers_base_url(false),
        tk = sandbox.trackier_base_url(),
        o18 = sandbox.offer18_base_url(0),
        ck = sandbox.cake_base_url(),
        oi = sandbox.offerit_target_url(),
        aft = sandbox.affise_target_url(),
    )
}

fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Run the binary (in a blocking task so the in-process sandbox keeps serving) at trace level.
async fn run(config: &std::path::Path, args: &[&str], format: &str) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "trace")
        .env("OFFERSYNC_LOG_FORMAT", format);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all
}

fn find(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_reaches_a_log_an_error_the_database_or_inspect() {
    let sandbox = Sandbox::start(SandboxConfig {
        seed: 11,
        trackly_offers: 60,
        trackly_api_key: TRACKLY.into(),
        offerslook_offers: 50,
        s2s_offers: 50,
        affise_offers: 50,
        offerslook_key: OFFERSLOOK.into(),
        s2s_app_id: S2S.into(),
        affise_key: AFFISE.into(),
        offerit_key: OFFERIT.into(),
        affise_target_key: AFFISE_TARGET.into(),
        everflow_offers: 50,
        everflow_key: EVERFLOW.into(),
        hasoffers_offers: 50,
        hasoffers_key: HASOFFERS.into(),
        trackier_offers: 50,
        trackier_key: TRACKIER.into(),
        offer18_offers: 50,
        offer18_key: OFFER18.into(),
        cake_offers: 50,
        cake_key: CAKE.into(),
    })
    .await
    .unwrap();
    // Retries, rate limits and server errors on the way, and a target that fails once.
    Sandbox::with(&sandbox.trackly, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::RateLimited {
                retry_after: Some("0".into()),
            },
        })
    });
    Sandbox::with(&sandbox.offerslook, |t| {
        t.faults.push(FaultRule {
            page: Some(1),
            remaining: Some(1),
            fault: Fault::InBodyRateLimited { status: 200 },
        })
    });
    Sandbox::with(&sandbox.affise, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(2),
            fault: Fault::ServerError,
        })
    });
    Sandbox::with(&sandbox.everflow, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::RateLimited { retry_after: None },
        })
    });
    Sandbox::with(&sandbox.hasoffers, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::InBodyRateLimited { status: 200 },
        })
    });
    Sandbox::with(&sandbox.trackier, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::RateLimited { retry_after: None },
        })
    });
    Sandbox::with(&sandbox.offer18, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::ServerError,
        })
    });
    Sandbox::with(&sandbox.cake, |t| {
        t.faults.push(FaultRule {
            page: Some(2),
            remaining: Some(1),
            fault: Fault::RateLimited {
                retry_after: Some("0".into()),
            },
        })
    });
    Sandbox::with_target(&sandbox.offerit_target, |t| {
        t.faults.push(FaultRule {
            page: None,
            remaining: Some(1),
            fault: Fault::ServerError,
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let (database, pg) = crate::harness::database_toml_in(dir.path(), "offersync.db");
    let config_path = dir.path().join("offersync.toml");
    let port = free_port();
    write_private(&config_path, &config(&sandbox, &database, port));

    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let steps: &[&[&str]] = &[
        &["check"],
        &["--once"],
        &["--once", "--dry-run"],
        &["push", "--plan"],
        &["push", "--retry-dead"],
        &["--once"],
    ];
    for (i, args) in steps.iter().enumerate() {
        let format = if i % 2 == 0 { "json" } else { "human" };
        outputs.push((args.join(" "), run(&config_path, args, format).await));
    }
    for view in ["offers", "changes", "runs", "pushes", "stats"] {
        for format in ["json", "table", "csv"] {
            let args = ["inspect", view, "--format", format];
            outputs.push((args.join(" "), run(&config_path, &args, "json").await));
        }
    }
    // The runs did happen (so the paths above were exercised), including the failing ones.
    let runs = String::from_utf8_lossy(&outputs[outputs.len() - 7].1).into_owned();
    for source in [
        "trk",
        "trk-bad",
        "ol",
        "ym",
        "ym-bad",
        "af",
        "trackly-generic",
        "ef",
        "ef-bad",
        "ho",
        "ho-bad",
        "tk",
        "tk-bad",
        "o18",
        "o18-bad",
        "ck",
        "ck-bad",
    ] {
        assert!(runs.contains(source), "no run of {source}: {runs}");
    }
    let logs = String::from_utf8_lossy(&outputs[1].1).into_owned();
    assert!(
        logs.contains("TRACE") || logs.contains("\"level\":\"TRACE\""),
        "trace logs are on"
    );
    assert!(logs.contains("retry"), "a retry was logged: {logs}");

    // The daemon, with its HTTP endpoints.
    let log_path = dir.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    let mut answers = Vec::new();
    while t0.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let m = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await;
        if let Ok(m) = m {
            answers.push(m.bytes().await.unwrap().to_vec());
            if let Ok(h) = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
            {
                answers.push(h.bytes().await.unwrap().to_vec());
            }
            if t0.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
    }
    assert!(!answers.is_empty(), "the daemon served /metrics");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    daemon.wait().unwrap();
    outputs.push(("daemon log".into(), std::fs::read(&log_path).unwrap()));
    for (i, a) in answers.into_iter().enumerate() {
        outputs.push((format!("daemon HTTP answer {i}"), a));
    }

    // Every file the runs left: the database and its WAL/SHM, and anything else.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path == config_path {
            continue;
        }
        outputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        if path.to_string_lossy().contains("offersync.db") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is private", path.display());
        }
    }
    // On PostgreSQL the database is no file here: every row of its schema.
    if let Some(db) = &pg {
        outputs.push((
            "the PostgreSQL schema".into(),
            crate::harness::pg_schema_text(db).into_bytes(),
        ));
    }
    let total: usize = outputs.iter().map(|(_, o)| o.len()).sum();
    assert!(
        total > 100_000,
        "a real amount of output was searched: {total} bytes"
    );
    for marker in markers() {
        for (what, out) in &outputs {
            assert!(
                !find(out, &marker),
                "{marker} leaked into {what}:\n{}",
                text(out)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_readable_by_others_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("offersync.toml");
    let text_of = |key_line: &str| {
        format!(
            "[database]\npath = {:?}\n[[sources]]\nname = \"s\"\nkind = \"trackly\"\nbase_url = \"http://127.0.0.1:9/api\"\n{key_line}\n",
            dir.path().join("x.db").to_string_lossy()
        )
    };
    let check = |path: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_offersync"))
            .arg("--config")
            .arg(path)
            .args(["check", "--config-only"])
            .env("SOME_KEY", "from-the-environment")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    std::fs::write(&config_path, text_of(&format!("api_key = {TRACKLY:?}"))).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warned = check(&config_path);
    assert!(warned.contains("readable by every user"), "{warned}");
    assert!(!warned.contains(TRACKLY), "{warned}");
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!check(&config_path).contains("readable by every user"));
    // A key from the environment is not in the file: nothing to warn about.
    std::fs::write(&config_path, text_of("api_key_env = \"SOME_KEY\"")).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!check(&config_path).contains("readable by every user"));
}

/// A PostgreSQL password, given in the URL, in a file or in the environment, never reaches the
/// output of any command, at `RUST_LOG=trace`, whether the server refuses it, cannot be reached
/// or accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_database_password_reaches_a_log_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = "pgpw-5c1f0e9a7d";
    let db =
        crate::harness::off_runtime(|| offersync::sandbox::postgres::TestServer::global().fresh());
    let refused_port = free_port();
    let cases = [
        // In the URL (warned about), the server unreachable.
        format!(
            "[database]\nurl = \"postgres://offersync:{marker}@127.0.0.1:{refused_port}/offersync\"\n"
        ),
        // In a file, the real server refusing it.
        format!(
            "[database]\nurl = {:?}\npassword_file = \"pw\"\n",
            db.url
        ),
        // From the environment, the real server refusing it.
        format!(
            "[database]\nurl = {:?}\npassword_env = \"OFFERSYNC_TEST_SECRET_PW\"\n",
            db.url
        ),
    ];
    std::fs::write(dir.path().join("pw"), marker).unwrap();
    let source = format!(
        "[[sources]]\nname = \"s\"\nkind = \"trackly\"\nbase_url = \"http://127.0.0.1:{}/api\"\napi_key = \"k\"\n",
        free_port()
    );
    for (i, case) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.toml"));
        write_private(&cfg, &format!("{case}\n{source}"));
        for args in [
            &["--once"][..],
            &["inspect", "stats"],
            &["check", "--config-only"],
        ] {
            let out = tokio::task::spawn_blocking({
                let cfg = cfg.clone();
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                move || {
                    Command::new(env!("CARGO_BIN_EXE_offersync"))
                        .arg("--config")
                        .arg(&cfg)
                        .args(&args)
                        .env("RUST_LOG", "trace")
                        .env("OFFERSYNC_TEST_SECRET_PW", marker)
                        .env_remove("OFFERSYNC_CONFIG")
                        .output()
                        .unwrap()
                }
            })
            .await
            .unwrap();
            let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
            assert!(
                !find(&all, marker),
                "case {i} {args:?}: the password is in the output: {}",
                text(&all)
            );
            if args[0] == "--once" {
                assert_eq!(out.status.code(), Some(2), "case {i}: {}", text(&all));
                assert!(
                    text(&all).contains("127.0.0.1"),
                    "case {i}: the error names the database: {}",
                    text(&all)
                );
            }
        }
    }
}
