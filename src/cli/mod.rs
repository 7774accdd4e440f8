//! The command line (clap): parses arguments, loads the config, dispatches to one file per
//! subcommand and maps outcomes to the exit-code contract: 0 all ok, 1 some source failed (the
//! others still ran), 2 usage or config error.

mod approve;
mod check;
mod decide;
mod demo;
mod inspect;
mod notify;
mod once;
mod output;
mod progress;
mod push;

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

pub use output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "offersync",
    version,
    about = "Mirror affiliate offers from paginated platform APIs into SQLite",
    long_about = "Mirror affiliate offers from paginated platform APIs into a local SQLite database, with a change history, and push the differences to target networks.\n\nWithout a subcommand or --once, `offersync` runs the daemon: scheduled syncs, deliveries, /metrics and /healthz (systemd/offersync.service). `offersync --once` syncs every enabled source now, delivers and exits; `offersync demo` runs the whole pipeline against built-in simulated platforms.",
    after_help = "Exit codes: 0 all ok; 1 some source or push failed, dead operations wait in the outbox, or a target's delivery is paused (the rest still ran); 2 usage or config error, or a database that cannot be used."
)]
pub struct Cli {
    /// Config file [default: $OFFERSYNC_CONFIG, else /etc/offersync/offersync.toml]
    #[arg(long, global = true, env = "OFFERSYNC_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Sync now (all enabled sources, or those named with --source) and exit
    #[arg(long)]
    once: bool,

    /// With --once: sync only this source (repeatable)
    #[arg(long = "source", value_name = "NAME", requires = "once")]
    sources: Vec<String>,

    /// With --once: sync, but do not deliver to the targets (the outbox keeps the operations)
    #[arg(long, requires = "once")]
    no_push: bool,

    /// With --once: record notifications, but do not send them (the daemon or a later run does)
    #[arg(long, requires = "once")]
    no_notify: bool,

    /// With --once: print what the targets would be sent, from the mirror as it is; fetches
    /// nothing, sends nothing, writes nothing
    #[arg(long, requires = "once")]
    dry_run: bool,

    /// With --once: the summary's format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum, requires = "once")]
    format: Option<Format>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the config and probe each source's credentials with one request
    Check {
        /// Only validate the config file (no network); used by the systemd unit
        #[arg(long)]
        config_only: bool,
    },
    /// Read the local mirror (offers, changes, runs, pushes, stats); never writes it
    Inspect(inspect::InspectArgs),
    /// Apply the removals held by the mass-removal guard for SOURCE
    ApproveRemovals {
        /// The source whose held removals to apply
        source: String,
    },
    /// Release what waits in TARGET's approval queue (new offers, held payout jumps)
    Approve {
        /// The target
        target: String,
        /// The source of the offers named
        #[arg(required_unless_present = "all")]
        source: Option<String>,
        /// The offers' ids at the source
        external_ids: Vec<String>,
        /// Everything waiting for TARGET
        #[arg(long, conflicts_with = "source")]
        all: bool,
        /// Deliver TARGET's outbox now instead of with the next delivery
        #[arg(long)]
        deliver: bool,
    },
    /// Reject offers waiting in TARGET's queue: never created until approved
    Reject {
        target: String,
        source: String,
        #[arg(required = true)]
        external_ids: Vec<String>,
    },
    /// Stop offersync from updating, pausing or activating one offer on TARGET
    Detach {
        target: String,
        source: String,
        external_id: String,
    },
    /// Resume a detached offer on TARGET with a fresh plan
    Attach {
        target: String,
        source: String,
        external_id: String,
    },
    /// Send one test message through the notifier NAME now
    Notify {
        /// The notifier (`[[notify]] name`)
        #[arg(long = "test", value_name = "NAME")]
        test: String,
    },
    /// Run the whole pipeline against the built-in simulated platforms
    Demo(demo::DemoArgs),
    /// Inspect and steer delivery to the targets
    Push(push::PushArgs),
}

impl From<crate::daemon::DaemonError> for UsageError {
    fn from(e: crate::daemon::DaemonError) -> UsageError {
        match e {
            crate::daemon::DaemonError::Config(c) => UsageError::Config(c),
            crate::daemon::DaemonError::Database(m) => UsageError::Database(m),
            crate::daemon::DaemonError::Start(m) => UsageError::Other(m),
        }
    }
}

/// An error that ends the command with exit code 2 (usage, config, or a database that cannot
/// be used).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Other(String),
    #[error("{0}")]
    Database(String),
}

/// The error for a database at `at` that cannot be used, with what to do about it.
pub(crate) fn db_error(
    at: &crate::store::Location,
) -> impl Fn(crate::store::StoreError) -> UsageError + '_ {
    move |e| UsageError::Database(e.explain(at))
}

/// Open (creating and migrating) the database the config names, or fail with exit 2.
pub(crate) fn open_db(config: &Config) -> Result<crate::store::Store, UsageError> {
    crate::store::Store::open(&config.database.location, config.database.busy_timeout)
        .map_err(db_error(&config.database.location))
}

/// Open an existing database for reading only (never created, migrated or written), or fail
/// with exit 2.
pub(crate) fn open_read_only_db(
    path: &crate::store::Location,
    busy: std::time::Duration,
) -> Result<crate::store::Store, UsageError> {
    crate::store::Store::open_read_only(path, busy).map_err(db_error(path))
}

fn config_path(cli_path: &Option<PathBuf>) -> PathBuf {
    cli_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

pub(crate) fn load_config(cli_path: &Option<PathBuf>) -> Result<Config, UsageError> {
    Ok(Config::load(&config_path(cli_path))?)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() || cli.once {
        // A command whose output is piped into `head` or `less` ends quietly when the reader
        // goes away, like any Unix tool, instead of panicking on EPIPE. (The daemon keeps Rust's
        // default: it never writes to a pipe it depends on.)
        // SAFETY: restoring the default disposition of a signal before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // The demo and --once on a terminal (with its progress bars) keep their output readable.
    let default_level = match cli.command {
        Some(Command::Demo(_)) => "warn",
        None if cli.once && std::io::stderr().is_terminal() => "warn",
        _ => "info",
    };
    crate::telemetry::init(default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("offersync: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Every task and blocking thread is done (and its stores closed) once the runtime is gone.
    drop(runtime);
    crate::store::quiesce();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("offersync: {e}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, UsageError> {
    match cli.command {
        Some(Command::Demo(args)) => demo::run(args).await,
        Some(Command::Inspect(args)) => inspect::run(&cli.config, args),
        Some(Command::Check { config_only }) => {
            check::check(&load_config(&cli.config)?, config_only).await
        }
        Some(Command::ApproveRemovals { source }) => {
            approve::approve(&load_config(&cli.config)?, &source)
        }
        Some(Command::Push(args)) => push::push(&load_config(&cli.config)?, args).await,
        Some(Command::Notify { test }) => notify::test(&load_config(&cli.config)?, &test).await,
        Some(Command::Approve {
            target,
            source,
            external_ids,
            all,
            deliver,
        }) => {
            let config = load_config(&cli.config)?;
            decide::approve(
                &config,
                &target,
                all,
                source.as_deref(),
                &external_ids,
                deliver,
            )
            .await
        }
        Some(Command::Reject {
            target,
            source,
            external_ids,
        }) => decide::reject(&load_config(&cli.config)?, &target, &source, &external_ids),
        Some(Command::Detach {
            target,
            source,
            external_id,
        }) => decide::detach_or_attach(
            &load_config(&cli.config)?,
            &target,
            &source,
            &external_id,
            true,
        ),
        Some(Command::Attach {
            target,
            source,
            external_id,
        }) => decide::detach_or_attach(
            &load_config(&cli.config)?,
            &target,
            &source,
            &external_id,
            false,
        ),
        None if cli.once && cli.dry_run => {
            push::dry_run(&load_config(&cli.config)?, None, 1000, cli.format)
        }
        None if cli.once => {
            let config = load_config(&cli.config)?;
            once::run(
                &config,
                &cli.sources,
                (!cli.no_push, !cli.no_notify),
                cli.format,
            )
            .await
        }
        None => Ok(crate::daemon::run(config_path(&cli.config)).await?),
    }
}
