//! The only place that prints data to stdout: tables, JSON and CSV for `inspect`, and the
//! per-source summary of a sync. Logs go to stderr through `tracing`.

use crate::store::query::Table;
use crate::sync::RunReport;
use serde_json::Value;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl Format {
    /// `--format` if given; else a table on a terminal and JSON otherwise.
    pub fn resolve(flag: Option<Format>) -> Format {
        flag.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Json
            }
        })
    }
}

/// A cell as text: strings bare, null empty, everything else as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

pub fn render(table: &Table, format: Format) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(&table.to_objects()).unwrap_or_default() + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(&table.columns);
            for row in &table.rows {
                let _ = w.write_record(row.iter().map(text));
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Table => {
            if table.rows.is_empty() {
                return "(no rows)\n".into();
            }
            render_table(table, terminal_width())
        }
    }
}

/// Cells up to this many characters are never split when a table is fitted to the width.
const UNSPLIT: usize = 24;

/// A table fitted to `width`: long cells wrap. When even the short cells and the headers
/// cannot fit side by side (many columns on an 80-column terminal), each row is printed as a
/// record instead (`column  value` lines, one block per row), as `psql`'s expanded mode does:
/// a name split over three lines helps nobody.
fn render_table(table: &Table, width: u16) -> String {
    let cells: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| row.iter().map(|v| truncate(text(v), 60)).collect())
        .collect();
    let needed: usize = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = cells
                .iter()
                .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0);
            widest.min(UNSPLIT) + 2
        })
        .sum();
    if needed > usize::from(width) {
        let rule = "─".repeat(usize::from(width).min(40));
        let name_width = table.columns.iter().map(|c| c.chars().count()).max();
        let room = usize::from(width).saturating_sub(name_width.unwrap_or(0) + 2);
        let values: Vec<Vec<Value>> = cells
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| Value::String(truncate(v, room.max(20))))
                    .collect()
            })
            .collect();
        return values
            .iter()
            .map(|r| render_record(&table.columns, r))
            .collect::<Vec<_>>()
            .join(&format!("{rule}\n"));
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_HORIZONTAL_ONLY);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_width(width);
    t.set_header(&table.columns);
    for row in cells {
        t.add_row(row);
    }
    format!("{t}\n")
}

/// The width tables are laid out for: `$COLUMNS`, else stdout's terminal, else 100.
pub fn terminal_width() -> u16 {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
    {
        return w.max(20);
    }
    // SAFETY: TIOCGWINSZ fills a winsize for a terminal descriptor and fails otherwise.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        return ws.ws_col.max(20);
    }
    100
}

pub fn print(table: &Table, format: Format) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(table, format).as_bytes());
}

/// Key/value view of one record (a table with one row), for `inspect offer`.
pub fn render_record(columns: &[String], values: &[Value]) -> String {
    let width = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    columns
        .iter()
        .zip(values)
        .map(|(c, v)| format!("{c:>width$}  {}\n", text(v)))
        .collect()
}

/// The end-of-sync summary: one row per source.
pub fn run_summary(reports: &[RunReport]) -> Table {
    let columns = [
        "source", "run", "state", "pages", "offers", "added", "changed", "removed", "rejected",
        "requests", "retries", "error",
    ]
    .map(String::from)
    .to_vec();
    let rows = reports
        .iter()
        .map(|r| match r {
            RunReport::Finished(t) => vec![
                t.source.clone().into(),
                t.id.into(),
                t.state.as_str().into(),
                t.pages.into(),
                t.offers_seen.into(),
                t.added.into(),
                t.changed.into(),
                t.removed.into(),
                t.rejected.into(),
                t.requests.into(),
                t.retries.into(),
                t.error.clone().map_or(Value::Null, Value::String),
            ],
            RunReport::Skipped { source, holder } => {
                let mut row = vec![source.clone().into(), Value::Null, "skipped".into()];
                row.extend((0..8).map(|_| Value::Null));
                row.push(format!("being synced by {holder}").into());
                row
            }
            RunReport::Error { source, error } => {
                let mut row = vec![source.clone().into(), Value::Null, "error".into()];
                row.extend((0..8).map(|_| Value::Null));
                row.push(error.clone().into());
                row
            }
        })
        .collect();
    Table { columns, rows }
}

/// Print the summary (`format`: `None` for a table on a terminal and JSON otherwise).
pub fn print_run_summary(reports: &[RunReport], format: Option<Format>) {
    for r in reports {
        if let RunReport::Error { source, error } = r {
            eprintln!(
                "offersync: source {source}: the run could not start or record its end: {error}"
            );
        }
    }
    let table = run_summary(reports);
    let format = Format::resolve(format);
    print(&table, format);
    if format == Format::Table {
        // Table cells are cut short; give each error in full.
        for row in &table.rows {
            if let (Some(source), Some(Value::String(err))) = (row.first(), row.last()) {
                println!("{}: {err}", text(source));
            }
        }
    }
}

/// `--once`'s summary: the runs, then the deliveries, as one document (a JSON object
/// `{"runs": [...], "deliveries": [...]}`; two tables on a terminal; CSV: the runs).
pub fn print_once_summary(
    runs: &[RunReport],
    deliveries: &[crate::push::deliver::DeliveryReport],
    format: Option<Format>,
) {
    let format = Format::resolve(format);
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "runs": run_summary(runs).to_objects(),
                "deliveries": delivery_summary(deliveries).to_objects(),
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
            for r in runs {
                if let RunReport::Error { source, error } = r {
                    eprintln!("offersync: source {source}: the run could not start or record its end: {error}");
                }
            }
        }
        Format::Csv => print_run_summary(runs, Some(Format::Csv)),
        Format::Table => {
            print_run_summary(runs, Some(Format::Table));
            print_delivery_summary(deliveries, Some(Format::Table));
        }
    }
}

fn delivery_summary(reports: &[crate::push::deliver::DeliveryReport]) -> Table {
    let columns = [
        "target",
        "done",
        "failed",
        "dead",
        "ambiguous",
        "reconciled",
        "possible_duplicates",
        "paused_until",
        "error",
        "skipped",
    ]
    .map(String::from)
    .to_vec();
    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let rows = reports
        .iter()
        .map(|r| {
            vec![
                r.target.clone().into(),
                r.done.into(),
                r.failed.into(),
                r.dead.into(),
                r.ambiguous.into(),
                r.reconciled.into(),
                r.possible_duplicates.into(),
                opt(&r.paused_until),
                opt(&r.error),
                opt(&r.skipped),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// The end-of-delivery summary: one row per target.
pub fn print_delivery_summary(
    reports: &[crate::push::deliver::DeliveryReport],
    format: Option<Format>,
) {
    if reports.is_empty() {
        return;
    }
    print(&delivery_summary(reports), Format::resolve(format));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: [
                "source", "run", "state", "offers", "added", "changed", "removed",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![
                ["trackly-demo", "4", "complete", "250", "250", "0", "0"]
                    .map(|v| Value::String(v.into()))
                    .to_vec(),
                ["offerslook-demo", "5", "partial", "120", "120", "0", "0"]
                    .map(|v| Value::String(v.into()))
                    .to_vec(),
            ],
        }
    }

    fn widest(s: &str) -> usize {
        s.lines()
            .map(|l| l.trim_end().chars().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_table_that_fits_stays_a_table_within_the_width() {
        let out = render_table(&table(), 80);
        assert!(widest(&out) <= 80, "{out}");
        let header = out.lines().find(|l| l.contains("source")).unwrap();
        assert!(
            header.contains("changed") && header.contains("removed"),
            "{out}"
        );
        assert!(out.lines().any(|l| l.contains("offerslook-demo")), "{out}");
    }

    #[test]
    fn a_table_too_wide_for_the_terminal_becomes_records_with_whole_values() {
        let out = render_table(&table(), 40);
        assert!(widest(&out) <= 40, "{out}");
        assert!(
            out.lines().any(|l| l.trim() == "source  offerslook-demo"),
            "{out}"
        );
        assert!(out.lines().any(|l| l.trim() == "state  partial"), "{out}");
        assert_eq!(out.matches("changed  0").count(), 2, "{out}");
    }
}
