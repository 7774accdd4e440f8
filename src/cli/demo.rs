//! `offersync demo`: start the simulated platforms in-process, sync them into a fresh demo
//! database, change the simulated catalogue, sync again, and show what changed.

use super::output::{self, Format};
use super::UsageError;
use crate::config::Config;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::query::ChangeFilter;
use crate::store::Store;
use crate::sync::{self, RunReport};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo mirror (recreated on every demo run)
    #[arg(long, default_value = "offersync-demo.db", value_name = "PATH")]
    db: PathBuf,
    /// How many offers the simulated Trackly serves
    #[arg(long, default_value_t = 250)]
    offers: usize,
    /// Then keep the simulated platforms running and start the daemon with the console (the
    /// simulated Affise target in approval mode); stop with Ctrl-C
    #[arg(long)]
    serve: bool,
    /// With --serve: where the console listens
    #[arg(long, default_value = crate::config::DEFAULT_CONSOLE_LISTEN, value_name = "ADDR", requires = "serve")]
    console_listen: String,
}

const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// How to run this binary again as typed in the current directory: `offersync` when that is
/// what `$PATH` finds, else its path (`target/release/offersync` after `cargo run --release`).
fn invocation() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "offersync".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            d.join("offersync")
                .canonicalize()
                .is_ok_and(|found| Some(found) == exe.canonicalize().ok())
        })
    });
    if on_path {
        return "offersync".into();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    exe.strip_prefix(&cwd)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| exe.display().to_string())
}

/// Delete a previous demo database. Refuses anything that is not one: a file that is not an
/// offersync database, or one holding sources other than the demo's, is never touched.
fn remove_db(path: &Path, demo_sources: &[&str]) -> Result<(), String> {
    if path.exists() {
        // Read only: a file that is not a demo mirror is never touched, not even migrated.
        let foreign = Store::open_read_only(path, std::time::Duration::from_secs(5))
            .or_else(|e| match e {
                // An older offersync's demo: its sources can still be read.
                crate::store::StoreError::Outdated { .. } => {
                    Store::open_existing(path, std::time::Duration::from_secs(5))
                }
                other => Err(other),
            })
            .and_then(|s| s.source_names())
            .map(|names| {
                names
                    .into_iter()
                    .filter(|n| !demo_sources.contains(&n.as_str()))
                    .collect::<Vec<_>>()
            });
        match foreign {
            Ok(f) if f.is_empty() => {}
            Ok(f) => {
                return Err(format!(
                    "refusing to replace {}: it holds sources that are not the demo's ({}); pass another --db",
                    path.display(),
                    f.join(", ")
                ))
            }
            Err(e) => {
                return Err(format!(
                    "refusing to replace {}: it is not an offersync demo database ({e}); pass another --db",
                    path.display()
                ))
            }
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot replace {}: {e}", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

async fn sync_round(config: &Config, title: &str) -> Result<Vec<RunReport>, UsageError> {
    println!("\n== {title}");
    let sources: Vec<_> = config.sources.iter().collect();
    let prepared = super::once::prepare(&sources, config)?;
    let mut ctx = super::once::context(config);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // A demo with --offers 100000 takes a while: show each source's pages as they go.
        ctx = ctx.with_progress(std::sync::Arc::new(super::progress::Bars::new()));
    }
    let reports = sync::run_all(&ctx, prepared, config.daemon.max_concurrent_sources).await;
    output::print_run_summary(&reports, Some(Format::Table));
    let targets: Vec<_> = config.targets.iter().collect();
    let prepared = super::push::prepare_targets(&targets, config)?;
    println!("pushed to the simulated target networks:");
    let pushed_ok = super::push::deliver_all(config, prepared, Some(Format::Table)).await;
    if !pushed_ok {
        return Err(UsageError::Other(
            "the demo's push failed; see the table above".into(),
        ));
    }
    Ok(reports)
}

/// The embedded demo config, pointed at `sandbox`.
fn demo_config(sandbox: &Sandbox, cfg: &SandboxConfig, db: &Path) -> String {
    use crate::sandbox as sb;
    let values: [(&str, String); 26] = [
        ("database_path", db.to_string_lossy().into_owned()),
        ("trackly_base_url", sandbox.trackly_base_url()),
        ("trackly_api_key", cfg.trackly_api_key.clone()),
        (
            "trackly_generic_url",
            format!("{}/v2/offers", sandbox.trackly_base_url()),
        ),
        ("offerslook_base_url", sandbox.offerslook_base_url()),
        ("offerslook_username", sb::offerslook::USERNAME.into()),
        ("offerslook_api_key", sb::OFFERSLOOK_KEY.into()),
        ("s2s_base_url", sandbox.s2s_base_url(false)),
        ("s2s_app_id", sb::S2S_APP_ID.into()),
        ("affise_base_url", sandbox.affise_base_url()),
        ("affise_api_key", sb::AFFISE_KEY.into()),
        ("everflow_base_url", sandbox.everflow_base_url()),
        ("everflow_api_key", sb::EVERFLOW_KEY.into()),
        ("hasoffers_base_url", sandbox.hasoffers_base_url(false)),
        ("hasoffers_api_key", sb::HASOFFERS_KEY.into()),
        ("trackier_base_url", sandbox.trackier_base_url()),
        ("trackier_api_key", sb::TRACKIER_KEY.into()),
        ("offer18_base_url", sandbox.offer18_base_url(0)),
        ("offer18_api_key", sb::OFFER18_KEY.into()),
        ("cake_base_url", sandbox.cake_base_url()),
        ("cake_api_key", sb::CAKE_KEY.into()),
        ("offerit_url", sandbox.offerit_target_url()),
        ("offerit_username", sb::OFFERIT_USERNAME.into()),
        ("offerit_key", sb::OFFERIT_KEY.into()),
        ("affise_target_url", sandbox.affise_target_url()),
        ("affise_target_key", sb::AFFISE_TARGET_KEY.into()),
    ];
    values
        .iter()
        .fold(DEMO_CONFIG.to_string(), |t, (name, value)| {
            t.replace(&format!("{{{name}}}"), &toml_string(value))
        })
}

pub(crate) async fn run(args: DemoArgs) -> Result<ExitCode, UsageError> {
    let sandbox_cfg = SandboxConfig {
        trackly_offers: args.offers,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(sandbox_cfg.clone())
        .await
        .map_err(|e| UsageError::Other(format!("cannot start the sandbox on 127.0.0.1: {e}")))?;
    let mut text = demo_config(&sandbox, &sandbox_cfg, &args.db);
    if args.serve {
        // The operator's view: new offers for the simulated Affise wait for approval.
        text = text.replace(
            "advertiser_id = \"5bc9d7c16d73e41c008b4567\"\n",
            "advertiser_id = \"5bc9d7c16d73e41c008b4567\"\napproval = \"manual\"\n",
        );
    }
    let config = Config::from_toml_str(&text, Path::new("(embedded demo config)"))?;
    let demo_sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    remove_db(&args.db, &demo_sources).map_err(UsageError::Other)?;
    println!(
        "offersync demo: simulated Trackly ({} offers), Offerslook, Youmi/Adxmi, Affise,\n\
         Everflow, HasOffers, Trackier, Offer18, CAKE and a generic source\n\
         describing Trackly, all on {};\n\
         mirror: {}",
        args.offers,
        sandbox.url(),
        args.db.display()
    );

    let first = sync_round(&config, "first sync: everything is new").await?;

    let (added, changed, removed) = sandbox.with_trackly(|t| {
        let live = t.catalog.live_indices();
        let added = t.catalog.add(5).len();
        let mut changed = 0;
        for &i in live.iter().skip(10).step_by(9).take(7) {
            t.catalog.update(i, |o| o.payout_cents += 25);
            changed += 1;
        }
        let mut removed = 0;
        for &i in live.iter().skip(3).step_by(31).take(3) {
            t.catalog.remove(i);
            removed += 1;
        }
        (added, changed, removed)
    });
    println!("\n== simulated Trackly changes: {added} offers added, {changed} payouts raised, {removed} offers removed");

    let second = sync_round(&config, "second sync: only the differences are recorded").await?;
    // The changes the native Trackly source recorded (the generic one records the same).
    if let Some(RunReport::Finished(t)) = second.first() {
        let store = Store::open_existing(&args.db, config.database.busy_timeout)
            .map_err(|e| UsageError::Other(e.to_string()))?;
        let changes = store
            .query_changes(&ChangeFilter {
                run_id: Some(t.id),
                limit: 50,
                ..ChangeFilter::default()
            })
            .map_err(|e| UsageError::Other(e.to_string()))?;
        println!("\nchanges recorded by run {}:", t.id);
        output::print(&changes, Format::Table);
    }

    let db = args.db.display();
    let me = invocation();
    let (oi, af) = (
        Sandbox::with_target(&sandbox.offerit_target, |t| t.offers.len()),
        Sandbox::with_target(&sandbox.affise_target, |t| t.offers.len()),
    );
    println!("\nthe simulated Offerit now holds {oi} offers, the simulated Affise {af}");
    println!(
        "\nTry:\n  {me} inspect --db {db} offers --limit 10\n  {me} inspect --db {db} changes --since 1h\n  \
         {me} inspect --db {db} runs\n  {me} inspect --db {db} pushes --limit 10\n  {me} inspect --db {db} stats\n  \
         sqlite3 {db} \"select kind, count(*) from offer_changes group by kind\""
    );
    if args.serve {
        return serve(&text, &args, &config).await;
    }
    drop(sandbox);
    let all: Vec<RunReport> = first.into_iter().chain(second).collect();
    Ok(super::once::exit_code(&all))
}

/// `demo --serve`: write the demo config with a `[console]` beside the database, a fresh token
/// in a file (mode 0600) beside it, print both, and run the daemon on it (the sandbox stays up,
/// in this process) until SIGINT or SIGTERM.
async fn serve(text: &str, args: &DemoArgs, config: &Config) -> Result<ExitCode, UsageError> {
    let dir = args
        .db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let token_path = dir.join("offersync-demo-console-token");
    let config_path = dir.join("offersync-demo.toml");
    let token = crate::console::new_token();
    write_private(&token_path, &format!("{token}\n"))?;
    let token_file = std::fs::canonicalize(&token_path).unwrap_or(token_path.clone());
    let full = format!(
        "{text}\n[daemon]\ndelivery_interval_seconds = 5\n\n[console]\nenabled = true\nlisten = {}\ntoken_file = {}\n",
        toml_string(&args.console_listen),
        toml_string(&token_file.to_string_lossy())
    );
    write_private(&config_path, &full)?;
    let waiting = Store::open_read_only(&args.db, config.database.busy_timeout)
        .and_then(|s| s.console_queue("affise-demo-target", "awaiting_approval", 0, 0))
        .map_or(0, |(n, _)| n);
    println!(
        "\n== the console\n{waiting} new offer(s) wait for approval on affise-demo-target.\n\
         open   http://{}/\n\
         token  {token}\n\
         (also in {}; the config is {})\n\
         Log in with the token, open Approvals, tick offers and approve them: the daemon\n\
         delivers them to the simulated Affise within seconds. Ctrl-C stops everything.",
        args.console_listen,
        token_path.display(),
        config_path.display()
    );
    Ok(crate::daemon::run(config_path).await?)
}

/// Write `text` to `path`, readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), UsageError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| UsageError::Other(format!("cannot write {}: {e}", path.display())))
}
