//! Read-only queries behind `offersync inspect`. Each returns a [`Table`] (column names and JSON
//! cell values) that `cli::output` renders as a table, JSON or CSV. Secrets are never stored, so
//! nothing here needs redaction.

use super::{Result, Sqlite};
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::Value;

/// Columns holding JSON text, shown as JSON rather than as strings.
pub(crate) const JSON_COLUMNS: &[&str] =
    &["countries", "platforms", "categories", "diff", "payload"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The same table with only `columns` (in that order; unknown names are skipped).
    pub fn only(&self, columns: &[&str]) -> Table {
        let idx: Vec<usize> = columns
            .iter()
            .filter_map(|c| self.columns.iter().position(|x| x == c))
            .collect();
        Table {
            columns: idx.iter().map(|i| self.columns[*i].clone()).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                .collect(),
        }
    }

    /// Rows as JSON objects keyed by column name.
    pub fn to_objects(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.columns
                        .iter()
                        .cloned()
                        .zip(r.iter().cloned())
                        .collect(),
                )
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct OfferFilter {
    pub source: Option<String>,
    pub status: Option<String>,
    pub country: Option<String>,
    pub search: Option<String>,
    /// The source-side approval state (`approved`, `requires_approval`, `pending`, `rejected`).
    pub approval: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub since: Option<String>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub run_id: Option<i64>,
    pub limit: usize,
}

/// A WHERE clause under construction, with its bound values.
#[derive(Default)]
struct Where {
    conds: Vec<String>,
    args: Vec<SqlValue>,
}

impl Where {
    fn eq(&mut self, column: &str, v: Option<&String>) {
        if let Some(v) = v {
            self.args.push(SqlValue::Text(v.clone()));
            self.conds.push(format!("{column} = ?{}", self.args.len()));
        }
    }

    fn raw(&mut self, cond: &str, v: SqlValue) {
        self.args.push(v);
        self.conds
            .push(cond.replace("?N", &format!("?{}", self.args.len())));
    }

    fn sql(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }

    /// A `WHERE` clause that more conditions can follow with `AND`.
    fn sql_or_true(&self) -> String {
        if self.conds.is_empty() {
            "WHERE 1".into()
        } else {
            self.sql()
        }
    }
}

fn cell(v: ValueRef<'_>, json: bool) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let s = String::from_utf8_lossy(t);
            if json {
                serde_json::from_str(&s).unwrap_or_else(|_| Value::String(s.into_owned()))
            } else {
                Value::String(s.into_owned())
            }
        }
    }
}

impl Sqlite {
    pub(in crate::store) fn table(&self, sql: &str, args: Vec<SqlValue>) -> Result<Table> {
        let mut stmt = self.conn.prepare(sql)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let json: Vec<bool> = columns
            .iter()
            .map(|c| JSON_COLUMNS.contains(&c.as_str()))
            .collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                (0..json.len())
                    .map(|i| Ok(cell(r.get_ref(i)?, json[i])))
                    .collect::<rusqlite::Result<Vec<Value>>>()
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table { columns, rows })
    }

    pub fn query_offers(&self, f: &OfferFilter) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", f.source.as_ref());
        w.eq("status", f.status.as_ref());
        if let Some(c) = &f.country {
            w.raw(
                "EXISTS (SELECT 1 FROM json_each(countries) WHERE value = ?N)",
                SqlValue::Text(c.to_ascii_uppercase()),
            );
        }
        if let Some(s) = &f.search {
            w.raw(
                "(name LIKE ?N ESCAPE '\\' OR external_id LIKE ?N ESCAPE '\\')",
                SqlValue::Text(format!(
                    "%{}%",
                    s.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )),
            );
        }
        w.eq("approval", f.approval.as_ref());
        // Asked about approval: show it, with the unit and exclusions an operator applies for.
        let extra = if f.approval.is_some() {
            ", payout_unit, excluded_countries, approval"
        } else {
            ""
        };
        let sql = format!(
            "SELECT source, external_id, name, status, payout, currency, payout_type, countries, last_seen_at{extra}
             FROM offers {} ORDER BY source, external_id LIMIT {}",
            w.sql(),
            f.limit
        );
        self.table(&sql, w.args)
    }

    pub fn query_changes(&self, f: &ChangeFilter) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", f.source.as_ref());
        w.eq("kind", f.kind.as_ref());
        if let Some(since) = &f.since {
            w.raw("at >= ?N", SqlValue::Text(since.clone()));
        }
        if let Some(run) = f.run_id {
            w.raw("run_id = ?N", SqlValue::Integer(run));
        }
        let sql = format!(
            "SELECT id, at, run_id, source, external_id, kind, diff FROM offer_changes {}
             ORDER BY id DESC LIMIT {}",
            w.sql(),
            f.limit
        );
        self.table(&sql, w.args)
    }

    /// `inspect leases`: every lease held, sources first, then targets (`target:NAME`).
    pub fn query_leases(&self) -> Result<Table> {
        self.table(
            "SELECT source AS lease, host AS worker, pid, run_id, acquired_at, heartbeat_at, holder
             FROM source_leases ORDER BY source LIKE 'target:%', source",
            Vec::new(),
        )
    }

    pub fn query_history(&self, source: &str, external_id: &str) -> Result<Table> {
        self.table(
            "SELECT id, at, run_id, kind, diff FROM offer_changes
             WHERE offer_id = (SELECT id FROM offer_rows WHERE source = ?1 AND external_id = ?2)
             ORDER BY id",
            vec![
                SqlValue::Text(source.into()),
                SqlValue::Text(external_id.into()),
            ],
        )
    }

    pub fn query_runs(&self, source: Option<&String>, limit: usize) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", source);
        let sql = format!(
            "SELECT id, source, state, reason, started_at, finished_at, pages, offers_seen, added, changed,
                    removed, duplicates, rejected, held_removals, requests, retries, rate_limited, error,
                    (SELECT group_concat(coalesce(j.external_id, '(no id)') || ': ' || j.reason, '; ')
                     FROM (SELECT external_id, reason FROM offer_rejections
                           WHERE run_id = sync_runs.id ORDER BY id LIMIT 5) j) AS rejections
             FROM sync_runs {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, w.args)
    }

    pub fn query_pushes(
        &self,
        target: Option<&String>,
        state: Option<&String>,
        limit: usize,
    ) -> Result<Table> {
        let mut w = Where::default();
        w.eq("target", target);
        if state.is_some_and(|s| s == "detached") {
            // Not an outbox state: the target offers operators took over.
            let sql = format!(
                "SELECT target, source, external_id, target_offer_id, state, detached_at, detached_reason
                 FROM target_offers {} AND detached_at IS NOT NULL ORDER BY detached_at DESC LIMIT {limit}",
                w.sql_or_true()
            );
            return self.table(&sql, w.args);
        }
        w.eq("state", state);
        let sql = format!(
            "SELECT id, target, source, external_id, op, state, attempts, possible_duplicate, next_attempt_at,
                    last_error, created_at, done_at
             FROM push_outbox {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, w.args)
    }

    /// Notifications, newest first.
    pub fn query_notifications(
        &self,
        notifier: Option<&String>,
        state: Option<&String>,
        limit: usize,
    ) -> Result<Table> {
        let mut w = Where::default();
        w.eq("notifier", notifier);
        w.eq("state", state);
        let sql = format!(
            "SELECT id, notifier, event, source, target, state, attempts,
                    json_extract(payload, '$.count') AS count, created_at, sent_at, next_attempt_at,
                    last_error
             FROM notify_outbox {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, w.args)
    }

    /// Per source: offers by status and the last run. Per target: outbox rows by state.
    pub fn query_stats(&self) -> Result<(Table, Table)> {
        let sources = self.table(
            "WITH src AS (SELECT source FROM offer_rows UNION SELECT source FROM sync_runs),
                  last AS (SELECT source, max(id) AS id FROM sync_runs GROUP BY source)
             SELECT src.source,
                    (SELECT count(*) FROM offer_rows o WHERE o.source = src.source AND o.status = 'active') AS active,
                    (SELECT count(*) FROM offer_rows o WHERE o.source = src.source AND o.status NOT IN ('active', 'removed')) AS inactive,
                    (SELECT count(*) FROM offer_rows o WHERE o.source = src.source AND o.status = 'removed') AS removed,
                    r.id AS last_run, r.state AS last_state, r.finished_at AS last_finished_at,
                    (SELECT max(finished_at) FROM sync_runs c WHERE c.source = src.source AND c.state = 'complete') AS last_complete_at,
                    r.error AS last_error
             FROM src LEFT JOIN last ON last.source = src.source LEFT JOIN sync_runs r ON r.id = last.id
             ORDER BY src.source",
            vec![],
        )?;
        let targets = self.table(
            "SELECT target,
                    sum(state = 'pending') AS pending, sum(state = 'in_flight') AS in_flight,
                    sum(state = 'ambiguous') AS ambiguous, sum(state = 'failed') AS failed,
                    sum(state = 'dead') AS dead, sum(state = 'skipped') AS skipped,
                    sum(state = 'done') AS done,
                    sum(state = 'awaiting_approval') AS awaiting_approval,
                    sum(state = 'rejected') AS rejected,
                    (SELECT count(*) FROM target_offers t WHERE t.target = p.target) AS mapped,
                    (SELECT count(*) FROM target_offers t WHERE t.target = p.target
                       AND t.detached_at IS NOT NULL) AS detached,
                    (SELECT failures FROM target_state s WHERE s.target = p.target) AS failures_in_a_row,
                    (SELECT open_until FROM target_state s WHERE s.target = p.target) AS paused_until
             FROM push_outbox p GROUP BY target ORDER BY target",
            vec![],
        )?;
        Ok((sources, targets))
    }
}
