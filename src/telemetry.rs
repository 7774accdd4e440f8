//! Logging: `tracing` to stderr, human-readable on a terminal and JSON otherwise (pipes, files);
//! under systemd (`$JOURNAL_STREAM` set) straight to journald, so each line keeps its priority
//! (`journalctl -p warning`) and its fields (`journalctl SOURCE=trackly-main`).
//! `OFFERSYNC_LOG_FORMAT=human|json|journald` decides explicitly. Level via
//! `RUST_LOG` (default `info`, or what the caller asks for: the demo and `--once` on a terminal
//! use `warn` to keep their output readable).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    // Third-party crates speak at warn unless RUST_LOG says otherwise (the cron scheduler
    // logs every job it creates at info).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},tokio_cron_scheduler=warn,hyper=warn,reqwest=warn,axum=warn"
        ))
    });
    let terminal = std::io::stderr().is_terminal();
    let format = std::env::var("OFFERSYNC_LOG_FORMAT").ok();
    let journald = match format.as_deref() {
        Some("journald") => true,
        Some(_) => false,
        None => stderr_is_the_journal(),
    };
    if journald {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        match tracing_journald::layer() {
            Ok(layer) => {
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(layer.with_syslog_identifier("offersync".into()))
                    .try_init();
                return;
            }
            Err(e) => {
                eprintln!("offersync: journald is not reachable ({e}); logging JSON to stderr")
            }
        }
    }
    let json = match format.as_deref() {
        Some("json") => true,
        Some("human") => false,
        _ => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| BarsAware);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.with_ansi(terminal).with_target(false).try_init()
    };
}

/// Progress bars being drawn on stderr (`--once` on a terminal): log lines are printed above
/// them instead of through them.
static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();

/// Route log lines around `bars` from now on.
pub fn set_progress_bars(bars: indicatif::MultiProgress) {
    let _ = BARS.set(bars);
}

/// stderr, suspending the progress bars (if any) while a log line is written.
struct BarsAware;

impl std::io::Write for BarsAware {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf).map(|_| buf.len())),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Whether stderr is the journal stream systemd set up (`$JOURNAL_STREAM` is `device:inode` of
/// it; a child whose stderr was redirected inherits the variable but not the stream).
fn stderr_is_the_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat fills the zeroed struct for a valid descriptor and touches nothing else.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}
