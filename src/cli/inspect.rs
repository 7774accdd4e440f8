//! `offersync inspect ...`: read-only views of the mirror.

use super::output::{self, Format};
use super::UsageError;
use crate::store::query::{ChangeFilter, OfferFilter, Table};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Read this SQLite file instead of the config's database (path or url)
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, global = true, value_enum)]
    format: Option<Format>,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Offers in the mirror
    Offers {
        /// Only this source's offers
        #[arg(long)]
        source: Option<String>,
        /// active, paused, pending, expired, removed or other
        #[arg(long)]
        status: Option<String>,
        /// ISO 3166-1 alpha-2 code the offer targets
        #[arg(long)]
        country: Option<String>,
        /// Text in the name or external id
        #[arg(long)]
        search: Option<String>,
        /// The source's approval state: approved, requires_approval, pending or rejected
        /// (offers you must apply for at the source are not pushed)
        #[arg(long)]
        approval: Option<String>,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One offer: every field, its raw payload and its history
    Offer {
        /// The source's name
        source: String,
        /// The offer's id at the source
        external_id: String,
    },
    /// The change history, newest first
    Changes {
        /// A duration back from now (30m, 1h, 2d, 1w) or a time (2026-01-01T00:00:00Z, 2026-01-01)
        #[arg(long)]
        since: Option<String>,
        /// Only this source's changes
        #[arg(long)]
        source: Option<String>,
        /// added, changed, removed or reappeared
        #[arg(long)]
        kind: Option<String>,
        /// Only the changes of this run
        #[arg(long)]
        run: Option<i64>,
        /// At most this many rows
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Sync runs, newest first
    Runs {
        /// Only this source's runs
        #[arg(long)]
        source: Option<String>,
        /// At most this many rows
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Every column (default: the ones that fit a terminal; JSON and CSV always have all)
        #[arg(long)]
        wide: bool,
    },
    /// The push outbox, newest first
    Pushes {
        /// Only this target's operations
        #[arg(long)]
        target: Option<String>,
        /// pending, in_flight, ambiguous, done, failed, dead, skipped, awaiting_approval,
        /// rejected, or detached (the target offers operators took over)
        #[arg(long)]
        state: Option<String>,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Notifications recorded for the webhooks, newest first
    Notifications {
        /// Only this notifier's
        #[arg(long)]
        notifier: Option<String>,
        /// pending, done or dead
        #[arg(long)]
        state: Option<String>,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Who holds which lease: the worker (host or worker_id) and process syncing each source
    /// or delivering to each target (`target:NAME`), since when, last heartbeat
    Leases,
    /// Counts per source and target, last runs
    Stats {
        /// Only this part (CSV always prints one part: sources by default)
        #[arg(long, value_enum)]
        section: Option<Section>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Sources,
    Targets,
}

/// `--since` as an RFC 3339 lower bound.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<String, String> {
    let s = s.trim();
    if let Some(t) = crate::model::parse_timestamp(s).filter(|_| s.contains('-')) {
        return Ok(crate::model::format_timestamp(t));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(format!("{d}T00:00:00Z"));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("--since {s:?}: expected 30m, 1h, 2d, 1w or a time like 2026-01-01T00:00:00Z")
    })?;
    let d = match unit {
        "s" => ChronoDuration::seconds(n),
        "m" => ChronoDuration::minutes(n),
        "h" | "" => ChronoDuration::hours(n),
        "d" => ChronoDuration::days(n),
        "w" => ChronoDuration::weeks(n),
        _ => {
            return Err(format!(
                "--since {s:?}: unknown unit {unit:?} (use s, m, h, d or w)"
            ))
        }
    };
    Ok(crate::model::format_timestamp(now - d))
}

/// `value` must parse as `T` (one of the text enums of `model`); the error names the flag.
fn check_value<T: std::str::FromStr>(flag: &str, value: &Option<String>) -> Result<(), UsageError>
where
    T::Err: std::fmt::Display,
{
    match value.as_deref().map(str::parse::<T>) {
        Some(Err(e)) => Err(UsageError::Other(format!("{flag}: {e}"))),
        _ => Ok(()),
    }
}

pub(crate) fn run(
    config_path: &Option<PathBuf>,
    args: InspectArgs,
) -> Result<ExitCode, UsageError> {
    let (path, busy) = match &args.db {
        Some(p) => (
            crate::store::Location::from(p),
            std::time::Duration::from_secs(10),
        ),
        None => {
            let c = super::load_config(config_path)?;
            (c.database.location, c.database.busy_timeout)
        }
    };
    let store = super::open_read_only_db(&path, busy)?;
    let format = Format::resolve(args.format);
    let db_err = super::db_error(&path);
    match args.what {
        What::Offers {
            source,
            status,
            country,
            search,
            approval,
            limit,
        } => {
            check_value::<crate::model::OfferStatus>("--status", &status)?;
            check_value::<crate::model::SourceApproval>("--approval", &approval)?;
            let t = store
                .query_offers(&OfferFilter {
                    source,
                    status,
                    country,
                    search,
                    approval,
                    limit,
                })
                .map_err(&db_err)?;
            output::print(&t, format);
        }
        What::Offer {
            source,
            external_id,
        } => return show_offer(&store, &path, &source, &external_id, format),
        What::Changes {
            since,
            source,
            kind,
            run,
            limit,
        } => {
            let filter = changes_filter(since, source, kind, run, limit)?;
            let t = store.query_changes(&filter).map_err(&db_err)?;
            output::print(&t, format);
        }
        What::Runs {
            source,
            limit,
            wide,
        } => {
            let t = store.query_runs(source.as_ref(), limit).map_err(&db_err)?;
            output::print(&runs_view(t, wide || format != Format::Table), format)
        }
        What::Pushes {
            target,
            state,
            limit,
        } => {
            if state.as_deref() != Some("detached") {
                check_value::<crate::model::OutboxState>("--state", &state)?;
            }
            output::print(
                &store
                    .query_pushes(target.as_ref(), state.as_ref(), limit)
                    .map_err(&db_err)?,
                format,
            );
        }
        What::Notifications {
            notifier,
            state,
            limit,
        } => show_notifications(&store, &path, (notifier, state), limit, format)?,
        What::Leases => output::print(&store.query_leases().map_err(&db_err)?, format),
        What::Stats { section } => {
            let (sources, targets) = store.query_stats().map_err(&db_err)?;
            print_stats(&sources, &targets, section, format);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `inspect runs` in a table: the columns that fit, unless `wide` (or not a table).
fn runs_view(t: Table, wide: bool) -> Table {
    if wide {
        return t;
    }
    let mut t = t.only(&[
        "id",
        "source",
        "state",
        "reason",
        "offers_seen",
        "added",
        "changed",
        "removed",
        "error",
    ]);
    t.columns[4] = "offers".into();
    t
}

/// `inspect stats`: per source and per target, or one section.
fn print_stats(sources: &Table, targets: &Table, section: Option<Section>, format: Format) {
    match (format, section) {
        (_, Some(Section::Sources)) => output::print(sources, format),
        (_, Some(Section::Targets)) => output::print(targets, format),
        (Format::Json, None) => println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"sources": sources.to_objects(), "targets": targets.to_objects()})
            )
            .unwrap_or_default()
        ),
        // One CSV document: one table.
        (Format::Csv, None) => output::print(sources, format),
        (Format::Table, None) => {
            println!("sources:");
            output::print(sources, format);
            println!("targets:");
            output::print(targets, format);
        }
    }
}

/// `inspect notifications [--notifier N] [--state S]`.
fn show_notifications(
    store: &crate::store::Store,
    path: &crate::store::Location,
    (notifier, state): (Option<String>, Option<String>),
    limit: usize,
    format: Format,
) -> Result<(), UsageError> {
    if let Some(s) = state
        .as_deref()
        .filter(|s| !["pending", "done", "dead"].contains(s))
    {
        return Err(UsageError::Other(format!(
            "--state: {s:?} is not one of pending, done, dead"
        )));
    }
    let t = store
        .query_notifications(notifier.as_ref(), state.as_ref(), limit)
        .map_err(super::db_error(path))?;
    output::print(&t, format);
    Ok(())
}

/// `inspect changes` options checked.
fn changes_filter(
    since: Option<String>,
    source: Option<String>,
    kind: Option<String>,
    run_id: Option<i64>,
    limit: usize,
) -> Result<ChangeFilter, UsageError> {
    check_value::<crate::model::ChangeKind>("--kind", &kind)?;
    let since = since
        .map(|s| parse_since(&s, Utc::now()))
        .transpose()
        .map_err(UsageError::Other)?;
    Ok(ChangeFilter {
        since,
        source,
        kind,
        run_id,
        limit,
    })
}

/// `inspect offer SOURCE ID`: every field, the raw payload and the history; exit 1 if unknown.
fn show_offer(
    store: &crate::store::Store,
    path: &crate::store::Location,
    source: &str,
    external_id: &str,
    format: Format,
) -> Result<ExitCode, UsageError> {
    let db_err = super::db_error(path);
    let Some(o) = store.offer(source, external_id).map_err(&db_err)? else {
        eprintln!(
            "offersync: no offer {external_id:?} from source {source:?} in {}",
            path
        );
        return Ok(ExitCode::from(1));
    };
    let history = store.query_history(source, external_id).map_err(&db_err)?;
    print_offer(&o, &history, format);
    Ok(ExitCode::SUCCESS)
}

fn print_offer(o: &crate::store::StoredOffer, history: &Table, format: Format) {
    let mut columns = vec!["source".to_string(), "external_id".to_string()];
    let mut values = vec![
        Value::String(o.source.clone()),
        Value::String(o.offer.external_id.clone()),
    ];
    for (k, v) in o.offer.field_values() {
        columns.push(k.into());
        values.push(v);
    }
    for (k, v) in [
        ("content_hash", Some(&o.content_hash)),
        ("first_seen_at", Some(&o.first_seen_at)),
        ("last_seen_at", Some(&o.last_seen_at)),
        ("updated_at", Some(&o.updated_at)),
        ("removed_at", o.removed_at.as_ref()),
    ] {
        columns.push(k.into());
        values.push(v.map_or(Value::Null, |s| Value::String(s.clone())));
    }
    let raw: Value = serde_json::from_str(&o.raw).unwrap_or_else(|_| Value::String(o.raw.clone()));
    match format {
        Format::Json => {
            let mut obj: serde_json::Map<String, Value> = columns.into_iter().zip(values).collect();
            obj.insert("raw".into(), raw);
            obj.insert("history".into(), Value::Array(history.to_objects()));
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(obj)).unwrap_or_default()
            );
        }
        Format::Csv => {
            let t = Table {
                columns,
                rows: vec![values],
            };
            output::print(&t, Format::Csv);
        }
        Format::Table => {
            print!("{}", output::render_record(&columns, &values));
            println!(
                "\nraw:\n{}",
                serde_json::to_string_pretty(&raw).unwrap_or_default()
            );
            println!("\nhistory:");
            output::print(history, Format::Table);
        }
    }
}
