//! Read-only queries behind `offersync inspect` on PostgreSQL: the same [`Table`]s (columns,
//! order and cell values) as the SQLite backend's (`../query.rs`), so `inspect --format json`
//! prints the same thing on both.
//!
//! Cells are decoded by the column's PostgreSQL type ([`Cell`]): integers and floats are
//! numbers, booleans `true`/`false`, text and `numeric` strings (`numeric` keeps its scale, as
//! SQLite's decimal text does). `jsonb` is shown as SQLite shows the JSON text it stores: parsed
//! for the columns in [`JSON_COLUMNS`], and for the others (`raw`, `payouts`, `caps`, ...) as
//! text, compact, with the keys in `serde_json`'s order (jsonb does not keep the original
//! bytes). A JSON scalar picked out of a document (`payload -> 'count'`) is what SQLite's
//! `json_extract` gives: a number, a string, or 1/0 for a boolean. Where SQLite returns a flag
//! as 0/1, the query casts the boolean to an integer.

use super::Pg;
use crate::store::query::{ChangeFilter, OfferFilter, Table, JSON_COLUMNS};
use crate::store::Result;
use postgres::types::{FromSql, ToSql, Type};
use serde_json::Value;

type Arg = Box<dyn ToSql + Sync>;

/// A WHERE clause under construction, with its bound values (`$N` in a condition is its own).
#[derive(Default)]
struct Where {
    conds: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    fn eq(&mut self, column: &str, v: Option<&String>) {
        if let Some(v) = v {
            self.args.push(Box::new(v.clone()));
            self.conds.push(format!("{column} = ${}", self.args.len()));
        }
    }

    fn raw(&mut self, cond: &str, v: Arg) {
        self.args.push(v);
        self.conds
            .push(cond.replace("$N", &format!("${}", self.args.len())));
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
            "WHERE true".into()
        } else {
            self.sql()
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args.iter().map(|a| a.as_ref()).collect()
    }
}

/// `column LIKE pattern`, case-insensitive for ASCII only, as SQLite's `LIKE` is (PostgreSQL's
/// `ILIKE` would also fold non-ASCII letters). The pattern must be lower-cased ASCII-wise.
pub(super) fn ascii_like(column: &str, param: &str) -> String {
    format!(
        "translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
         LIKE {param} ESCAPE '\\'"
    )
}

/// The `LIKE` pattern for "contains `s`", escaped, lower-cased for [`ascii_like`].
pub(super) fn contains_pattern(s: &str) -> String {
    format!(
        "%{}%",
        s.to_ascii_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// JSON text as the SQLite backend stores it: compact (`["US","GB"]`, not jsonb's
/// `["US", "GB"]`). Only whitespace outside strings is dropped, so numbers keep their digits
/// (`1.50`); an object's keys stay in jsonb's order.
pub(super) fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for ch in text.chars() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
        } else if ch == '"' {
            in_string = true;
            out.push(ch);
        } else if !ch.is_whitespace() {
            out.push(ch);
        }
    }
    out
}

/// One cell, decoded by its column's type.
enum Cell {
    Plain(Value),
    Text(String),
    /// A JSON document's text.
    Json(String),
}

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match *ty {
            Type::BOOL => Cell::Plain(Value::Bool(bool::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Plain(Value::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Cell::Plain(Value::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Cell::Plain(Value::from(i64::from_sql(ty, raw)?)),
            Type::OID => Cell::Plain(Value::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Cell::Plain(Value::from(f32::from_sql(ty, raw)? as f64)),
            Type::FLOAT8 => Cell::Plain(Value::from(f64::from_sql(ty, raw)?)),
            Type::NUMERIC => Cell::Text(numeric_text(raw)?),
            Type::JSONB => {
                let (version, text) = raw.split_first().ok_or("empty jsonb value")?;
                if *version != 1 {
                    return Err(format!("jsonb format version {version}").into());
                }
                Cell::Json(std::str::from_utf8(text)?.to_string())
            }
            Type::JSON => Cell::Json(std::str::from_utf8(raw)?.to_string()),
            _ if <String as FromSql>::accepts(ty) => Cell::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("column type {ty} is not shown by inspect").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, DecodeError> {
        Ok(Cell::Plain(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl Cell {
    /// The value SQLite's table would hold for this cell of a column named `json` or not.
    fn value(self, json: bool) -> Value {
        match self {
            Cell::Plain(v) => v,
            Cell::Text(s) if json => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            Cell::Text(s) => Value::String(s),
            Cell::Json(t) if json => serde_json::from_str(&t).unwrap_or(Value::String(t)),
            // Not a JSON column: as SQLite holds it, JSON text, or what json_extract returns.
            Cell::Json(t) => match serde_json::from_str(&t) {
                Ok(Value::Array(_) | Value::Object(_)) | Err(_) => Value::String(compact_json(&t)),
                Ok(Value::Bool(b)) => Value::from(b as i64),
                Ok(scalar) => scalar,
            },
        }
    }
}

/// A `numeric` in PostgreSQL's binary format, as its text form (`numeric::text`: the scale
/// kept, `1.50` stays `1.50`).
fn numeric_text(raw: &[u8]) -> Result<String, DecodeError> {
    let word = |i: usize| -> Result<u16, DecodeError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "short numeric value".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()?;
    let digit = |pos: i64| -> u16 {
        // `pos` counts base-10000 digits from the most significant (weight) one.
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for d in 0..=weight {
            if d == 0 {
                out.push_str(&digit(d).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(d)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut pos = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(pos)));
            pos += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

impl Pg {
    /// Run `sql` and return its rows as a [`Table`] (see the module's doc for the cells).
    pub(crate) fn table(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Table> {
        let mut c = self.client.borrow_mut();
        let stmt = c.prepare(sql)?;
        let columns: Vec<String> = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let json: Vec<bool> = columns
            .iter()
            .map(|c| JSON_COLUMNS.contains(&c.as_str()))
            .collect();
        let rows = c
            .query(&stmt, args)?
            .iter()
            .map(|r| {
                (0..json.len())
                    .map(|i| Ok(r.try_get::<_, Cell>(i)?.value(json[i])))
                    .collect::<Result<Vec<Value>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Table { columns, rows })
    }

    pub fn query_offers(&self, f: &OfferFilter) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", f.source.as_ref());
        w.eq("status", f.status.as_ref());
        if let Some(c) = &f.country {
            // `?`: the array has this string as an element (json_each ... value = c).
            w.raw("countries ? $N", Box::new(c.to_ascii_uppercase()));
        }
        if let Some(s) = &f.search {
            w.raw(
                &format!(
                    "({} OR {})",
                    ascii_like("name", "$N"),
                    ascii_like("external_id", "$N")
                ),
                Box::new(contains_pattern(s)),
            );
        }
        w.eq("approval", f.approval.as_ref());
        let extra = if f.approval.is_some() {
            ", payout_unit, excluded_countries, approval"
        } else {
            ""
        };
        let sql = format!(
            "SELECT source, external_id, name, status, payout::text AS payout, currency, payout_type,
                    countries, last_seen_at{extra}
             FROM offers {} ORDER BY source, external_id LIMIT {}",
            w.sql(),
            f.limit
        );
        self.table(&sql, &w.params())
    }

    pub fn query_changes(&self, f: &ChangeFilter) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", f.source.as_ref());
        w.eq("kind", f.kind.as_ref());
        if let Some(since) = &f.since {
            w.raw("at >= $N", Box::new(since.clone()));
        }
        if let Some(run) = f.run_id {
            w.raw("run_id = $N", Box::new(run));
        }
        let sql = format!(
            "SELECT id, at, run_id, source, external_id, kind, diff FROM offer_changes {}
             ORDER BY id DESC LIMIT {}",
            w.sql(),
            f.limit
        );
        self.table(&sql, &w.params())
    }

    /// `inspect leases`: every lease held, sources first, then targets (`target:NAME`).
    pub fn query_leases(&self) -> Result<Table> {
        self.table(
            "SELECT source AS lease, host AS worker, pid, run_id, acquired_at, heartbeat_at, holder
             FROM source_leases ORDER BY source LIKE 'target:%', source COLLATE \"C\"",
            &[],
        )
    }

    pub fn query_history(&self, source: &str, external_id: &str) -> Result<Table> {
        self.table(
            "SELECT id, at, run_id, kind, diff FROM offer_changes
             WHERE offer_id = (SELECT id FROM offer_rows WHERE source = $1 AND external_id = $2)
             ORDER BY id",
            &[&source, &external_id],
        )
    }

    pub fn query_runs(&self, source: Option<&String>, limit: usize) -> Result<Table> {
        let mut w = Where::default();
        w.eq("source", source);
        let sql = format!(
            "SELECT id, source, state, reason, started_at, finished_at, pages, offers_seen, added, changed,
                    removed, duplicates, rejected, held_removals, requests, retries, rate_limited, error,
                    (SELECT string_agg(coalesce(j.external_id, '(no id)') || ': ' || j.reason, '; ' ORDER BY j.id)
                     FROM (SELECT id, external_id, reason FROM offer_rejections
                           WHERE run_id = sync_runs.id ORDER BY id LIMIT 5) j) AS rejections
             FROM sync_runs {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, &w.params())
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
            return self.table(&sql, &w.params());
        }
        w.eq("state", state);
        let sql = format!(
            "SELECT id, target, source, external_id, op, state, attempts,
                    possible_duplicate::int AS possible_duplicate, next_attempt_at,
                    last_error, created_at, done_at
             FROM push_outbox {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, &w.params())
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
        // `payload -> 'count'` is decoded as json_extract's result (a number).
        let sql = format!(
            "SELECT id, notifier, event, source, target, state, attempts,
                    payload -> 'count' AS count, created_at, sent_at, next_attempt_at,
                    last_error
             FROM notify_outbox {} ORDER BY id DESC LIMIT {limit}",
            w.sql()
        );
        self.table(&sql, &w.params())
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
            &[],
        )?;
        let targets = self.table(
            "SELECT target,
                    count(*) FILTER (WHERE state = 'pending') AS pending,
                    count(*) FILTER (WHERE state = 'in_flight') AS in_flight,
                    count(*) FILTER (WHERE state = 'ambiguous') AS ambiguous,
                    count(*) FILTER (WHERE state = 'failed') AS failed,
                    count(*) FILTER (WHERE state = 'dead') AS dead,
                    count(*) FILTER (WHERE state = 'skipped') AS skipped,
                    count(*) FILTER (WHERE state = 'done') AS done,
                    count(*) FILTER (WHERE state = 'awaiting_approval') AS awaiting_approval,
                    count(*) FILTER (WHERE state = 'rejected') AS rejected,
                    (SELECT count(*) FROM target_offers t WHERE t.target = p.target) AS mapped,
                    (SELECT count(*) FROM target_offers t WHERE t.target = p.target
                       AND t.detached_at IS NOT NULL) AS detached,
                    (SELECT failures FROM target_state s WHERE s.target = p.target) AS failures_in_a_row,
                    (SELECT open_until FROM target_state s WHERE s.target = p.target) AS paused_until
             FROM push_outbox p GROUP BY target ORDER BY target",
            &[],
        )?;
        Ok((sources, targets))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::testing::fresh;
    use super::*;
    use crate::store::Store;

    /// An SQLite mirror in a temporary directory.
    pub(in crate::store::pg) fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path().join("m.db"), std::time::Duration::from_secs(5)).unwrap();
        (dir, store)
    }

    /// Run the same SQL (written to be valid on both) on both backends.
    pub(in crate::store::pg) fn seed_both(pg: &Pg, store: &Store, sql: &str) {
        pg.client.borrow_mut().batch_execute(sql).unwrap();
        store.conn().execute_batch(sql).unwrap();
    }

    /// Rows of every table the inspect queries read, written so that the same statements are
    /// valid SQL on both backends (explicit ids, `true`/`false`, JSON as text literals).
    pub(in crate::store::pg) const SEED: &str = r#"
INSERT INTO sync_runs (id, source, started_at, finished_at, state, reason, pages, offers_seen, added,
                       changed, removed, unchanged, duplicates, rejected, held_removals, requests,
                       retries, rate_limited, error)
VALUES (1, 'alpha', '2024-05-01T10:00:00Z', '2024-05-01T10:01:00Z', 'complete', 'scheduled', 3, 5, 5, 0, 0, 0, 1, 6, 0, 4, 1, 2, NULL),
       (2, 'beta',  '2024-05-01T11:00:00Z', '2024-05-01T11:00:30Z', 'failed', 'manual', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 'HTTP 500'),
       (3, 'alpha', '2024-05-02T10:00:00Z', '2024-05-02T10:02:00Z', 'held', 'scheduled', 2, 3, 0, 1, 0, 2, 0, 0, 2, 2, 0, 0, 'would remove 40%'),
       (4, 'gamma', '2024-05-02T12:00:00Z', NULL, 'running', NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL);

INSERT INTO offer_rows (id, source, external_id, name, status, payout, currency, payout_type, revenue,
                        countries, platforms, categories, tracking_url, content_hash, first_seen_at,
                        updated_at, removed_at, raw, payouts, payout_unit, excluded_countries, approval, caps)
VALUES (1, 'alpha', 'A-1', 'Summer Sale', 'active', '1.50', 'USD', 'cpa', '2.00', '["US","GB"]', '["ios"]', '["shop"]',
        'https://t.example/1', 'h1', '2024-05-01T10:00:00Z', '2024-05-01T10:00:00Z', NULL,
        '{"id":"A-1","name":"Summer Sale","payout":1.50}', '[{"amount":"1.50","country":"US"}]', 'amount', '["CA"]', 'approved', '[]'),
       (2, 'alpha', 'a-2', 'summer_deal 100%', 'paused', '10', 'EUR', 'cpi', NULL, '["DE"]', '[]', '[]',
        NULL, 'h2', '2024-05-01T10:00:00Z', '2024-05-02T10:00:00Z', NULL, '{"id":"a-2"}', '[]', 'percent', '[]', 'requires_approval', '[{"period":"day","value":100}]'),
       (3, 'alpha', 'A-3', 'Winter', 'removed', '0.0001', 'USD', 'cpa', NULL, '[]', '[]', '[]',
        NULL, 'h3', '2024-05-01T10:00:00Z', '2024-05-02T10:00:00Z', '2024-05-02T10:02:00Z', '{}', '[]', 'amount', '[]', NULL, '[]'),
       (4, 'beta', 'B-1', 'Ünïcode SUMMER', 'pending', '-2.5', NULL, NULL, '12345678901234.5678', '["us","US"]', '[]', '[]',
        NULL, 'h4', '2024-05-01T11:00:00Z', '2024-05-01T11:00:00Z', NULL, '{"nested":{"a":[1,2,{"b":null}]},"s":"x y"}', '[]', 'amount', '[]', 'pending', '[]'),
       (5, 'beta', 'B-2', 'No payout', 'expired', NULL, NULL, NULL, NULL, '["FR"]', '[]', '[]',
        NULL, 'h5', '2024-05-01T11:00:00Z', '2024-05-01T11:00:00Z', NULL, '{"k":"v"}', '[]', 'amount', '[]', 'rejected', '[]');

INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at, missed_runs, live_hash)
VALUES (1, 3, '2024-05-02T10:00:00Z', 0, 'h1'), (2, 3, '2024-05-02T10:00:00Z', 0, 'h2'),
       (3, 1, '2024-05-01T10:00:00Z', 1, NULL), (4, 2, '2024-05-01T11:00:00Z', 0, 'h4'),
       (5, 2, '2024-05-01T11:00:00Z', 0, 'h5');

INSERT INTO offer_changes (id, run_id, source, external_id, kind, diff, at, offer_id)
VALUES (1, 1, 'alpha', 'A-1', 'added', '{}', '2024-05-01T10:00:10Z', 1),
       (2, 1, 'alpha', 'a-2', 'added', '{}', '2024-05-01T10:00:10Z', 2),
       (3, 3, 'alpha', 'A-1', 'changed', '{"payout":{"old":"1.00","new":"1.50"},"ratio":1.5,"big":12345678901}', '2024-05-02T10:00:10Z', 1),
       (4, 3, 'alpha', 'A-3', 'removed', '{"status":{"old":"active","new":"removed"}}', '2024-05-02T10:01:00Z', 3),
       (5, 3, 'alpha', 'a-2', 'changed', '{"name":{"old":"a","new":"summer_deal 100%"}}', '2024-05-02T10:01:30Z', 2);

INSERT INTO offer_rejections (id, run_id, source, external_id, reason, at)
VALUES (1, 1, 'alpha', 'X-1', 'no name', '2024-05-01T10:00:05Z'),
       (2, 1, 'alpha', NULL, 'no id', '2024-05-01T10:00:05Z'),
       (3, 1, 'alpha', 'X-3', 'bad payout', '2024-05-01T10:00:05Z'),
       (4, 1, 'alpha', 'X-4', 'bad url', '2024-05-01T10:00:05Z'),
       (5, 1, 'alpha', 'X-5', 'no name', '2024-05-01T10:00:05Z'),
       (6, 1, 'alpha', 'X-6', 'sixth, not shown', '2024-05-01T10:00:05Z');

INSERT INTO push_outbox (id, target, source, external_id, op, payload, state, attempts, next_attempt_at,
                         last_error, created_at, done_at, possible_duplicate, first_failed_at)
VALUES (1, 'aff', 'alpha', 'A-1', 'create', '{"name":"Summer Sale","payout":"1.50"}', 'done', 1, NULL, NULL, '2024-05-01T10:01:00Z', '2024-05-01T10:02:00Z', false, NULL),
       (2, 'aff', 'alpha', 'a-2', 'create', '{"name":"summer_deal 100%","payout":"10"}', 'awaiting_approval', 0, NULL, NULL, '2024-05-01T10:01:00Z', NULL, false, NULL),
       (3, 'aff', 'alpha', 'A-1', 'update', '{"payout":"1.50"}', 'failed', 2, '2024-05-02T10:05:00Z', 'HTTP 502', '2024-05-02T10:02:00Z', NULL, true, '2024-05-02T10:03:00Z'),
       (4, 'aff', 'beta', 'B-1', 'create', '{"name":"x"}', 'dead', 5, NULL, 'HTTP 400: bad', '2024-05-01T11:01:00Z', NULL, false, '2024-05-01T11:02:00Z'),
       (5, 'other', 'beta', 'B-2', 'create', '{"name":"No payout"}', 'pending', 0, NULL, NULL, '2024-05-01T11:01:00Z', NULL, false, NULL),
       (6, 'other', 'alpha', 'A-1', 'pause', '{}', 'ambiguous', 1, NULL, 'timeout', '2024-05-02T10:02:00Z', NULL, true, NULL),
       (7, 'aff', 'alpha', 'A-3', 'pause', '{}', 'rejected', 0, NULL, 'rejected by an operator', '2024-05-02T10:02:00Z', NULL, false, NULL);

INSERT INTO target_offers (target, source, external_id, target_offer_id, pushed_hash, pushed_at, state,
                           pushed_payload, detached_at, detached_reason)
VALUES ('aff', 'alpha', 'A-1', '901', 'ph1', '2024-05-01T10:02:00Z', 'active', '{"name":"Summer Sale","payout":"1.50"}', NULL, NULL),
       ('aff', 'beta', 'B-1', '902', 'ph2', '2024-05-01T11:02:00Z', 'paused', '{"payout":3}', '2024-05-03T09:00:00Z', 'run by hand'),
       ('other', 'alpha', 'A-1', '77', 'ph3', '2024-05-01T10:02:00Z', 'active', '{}', '2024-05-03T08:00:00Z', 'contract');

INSERT INTO target_state (target, failures, open_until, last_error, updated_at)
VALUES ('aff', 3, '2024-05-02T11:00:00Z', 'HTTP 502', '2024-05-02T10:03:00Z');

INSERT INTO notify_outbox (id, notifier, event, source, target, payload, state, attempts, next_attempt_at,
                           last_error, created_at, sent_at)
VALUES (1, 'slack', 'offers_added', 'alpha', NULL, '{"count":5,"event":"offers_added","offers":[]}', 'done', 1, NULL, NULL, '2024-05-01T10:01:00Z', '2024-05-01T10:01:05Z'),
       (2, 'slack', 'push_dead', NULL, 'aff', '{"count":1,"event":"push_dead"}', 'pending', 2, '2024-05-01T12:00:00Z', 'HTTP 503', '2024-05-01T11:03:00Z', NULL),
       (3, 'mail', 'run_failed', 'beta', NULL, '{"event":"run_failed"}', 'dead', 8, NULL, 'refused', '2024-05-01T11:01:00Z', NULL);
"#;

    /// A PostgreSQL and an SQLite mirror holding the same rows.
    pub(in crate::store::pg) fn both() -> (Pg, tempfile::TempDir, Store) {
        let pg = fresh();
        let (dir, store) = sqlite();
        seed_both(&pg, &store, SEED);
        (pg, dir, store)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn inspect_offers_is_the_same_table_on_both_backends() {
        let (pg, _dir, store) = both();
        let filters = [
            OfferFilter {
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                limit: 2,
                ..OfferFilter::default()
            },
            OfferFilter {
                source: s("alpha"),
                status: s("active"),
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                country: s("us"),
                limit: 100,
                ..OfferFilter::default()
            },
            // ASCII case-insensitive, `%` and `_` literal, non-ASCII letters compared exactly.
            OfferFilter {
                search: s("SUMMER"),
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                search: s("_deal 100%"),
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                search: s("üNÏ"),
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                search: s("a-"),
                limit: 100,
                ..OfferFilter::default()
            },
            OfferFilter {
                approval: s("requires_approval"),
                limit: 100,
                ..OfferFilter::default()
            },
        ];
        for f in &filters {
            let (p, q) = (pg.query_offers(f).unwrap(), store.query_offers(f).unwrap());
            assert_eq!(p, q, "{f:?}");
        }
        // The filters really select (a comparison of two empty tables proves little).
        let all = pg.query_offers(&filters[0]).unwrap();
        assert_eq!(all.rows.len(), 5);
        assert_eq!(all.columns[4], "payout");
        assert_eq!(all.rows[0][4], Value::from("1.50"));
        assert_eq!(all.rows[0][7], serde_json::json!(["US", "GB"]));
        assert_eq!(pg.query_offers(&filters[3]).unwrap().rows.len(), 2);
        let summer = pg.query_offers(&filters[4]).unwrap();
        assert_eq!(summer.rows.len(), 3, "{summer:?}");
        assert_eq!(pg.query_offers(&filters[5]).unwrap().rows.len(), 1);
        assert_eq!(pg.query_offers(&filters[6]).unwrap().rows.len(), 0);
        let approval = pg.query_offers(&filters[8]).unwrap();
        assert_eq!(approval.rows.len(), 1);
        assert_eq!(
            approval.columns.last().map(String::as_str),
            Some("approval")
        );
        // Not a JSON column on SQLite: shown as its text there, and here.
        let excluded = approval.columns.len() - 2;
        assert_eq!(approval.rows[0][excluded], Value::from("[]"));
    }

    #[test]
    fn changes_history_runs_pushes_notifications_are_the_same_tables() {
        let (pg, _dir, store) = both();
        let changes = [
            ChangeFilter {
                limit: 100,
                ..ChangeFilter::default()
            },
            ChangeFilter {
                since: s("2024-05-02T10:01:00Z"),
                limit: 100,
                ..ChangeFilter::default()
            },
            ChangeFilter {
                source: s("alpha"),
                kind: s("changed"),
                run_id: Some(3),
                limit: 1,
                ..ChangeFilter::default()
            },
        ];
        for f in &changes {
            assert_eq!(
                pg.query_changes(f).unwrap(),
                store.query_changes(f).unwrap(),
                "{f:?}"
            );
        }
        let t = pg.query_changes(&changes[2]).unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0][0], Value::from(5));
        let since = pg.query_changes(&changes[1]).unwrap();
        assert_eq!(since.rows.len(), 2);

        for (src, id) in [("alpha", "A-1"), ("alpha", "a-2"), ("beta", "none")] {
            assert_eq!(
                pg.query_history(src, id).unwrap(),
                store.query_history(src, id).unwrap()
            );
        }
        let h = pg.query_history("alpha", "A-1").unwrap();
        assert_eq!(h.rows.len(), 2);
        assert_eq!(h.rows[1][4]["ratio"], Value::from(1.5));
        assert_eq!(h.rows[1][4]["big"], Value::from(12_345_678_901_i64));

        for (src, limit) in [
            (None, 100),
            (s("alpha"), 100),
            (s("alpha"), 1),
            (s("zeta"), 5),
        ] {
            assert_eq!(
                pg.query_runs(src.as_ref(), limit).unwrap(),
                store.query_runs(src.as_ref(), limit).unwrap(),
                "{src:?}"
            );
        }
        let runs = pg.query_runs(None, 100).unwrap();
        let rej = runs.columns.iter().position(|c| c == "rejections").unwrap();
        assert_eq!(
            runs.rows[3][rej],
            Value::from(
                "X-1: no name; (no id): no id; X-3: bad payout; X-4: bad url; X-5: no name"
            )
        );
        assert_eq!(runs.rows[0][rej], Value::Null);

        for (target, state) in [
            (None, None),
            (s("aff"), None),
            (s("aff"), s("failed")),
            (None, s("detached")),
            (s("aff"), s("detached")),
            (s("nobody"), s("detached")),
        ] {
            assert_eq!(
                pg.query_pushes(target.as_ref(), state.as_ref(), 100)
                    .unwrap(),
                store
                    .query_pushes(target.as_ref(), state.as_ref(), 100)
                    .unwrap(),
                "{target:?} {state:?}"
            );
        }
        let pushes = pg.query_pushes(None, None, 100).unwrap();
        let dup = pushes
            .columns
            .iter()
            .position(|c| c == "possible_duplicate")
            .unwrap();
        // 0/1, as SQLite shows it.
        assert_eq!(pushes.rows[1][dup], Value::from(1));
        assert_eq!(pushes.rows[0][dup], Value::from(0));
        assert_eq!(
            pg.query_pushes(None, s("detached").as_ref(), 100)
                .unwrap()
                .rows
                .len(),
            2
        );

        for (notifier, state) in [(None, None), (s("slack"), None), (s("slack"), s("pending"))] {
            assert_eq!(
                pg.query_notifications(notifier.as_ref(), state.as_ref(), 100)
                    .unwrap(),
                store
                    .query_notifications(notifier.as_ref(), state.as_ref(), 100)
                    .unwrap()
            );
        }
        let n = pg.query_notifications(None, None, 100).unwrap();
        let count = n.columns.iter().position(|c| c == "count").unwrap();
        assert_eq!(
            n.rows.iter().map(|r| r[count].clone()).collect::<Vec<_>>(),
            vec![Value::Null, Value::from(1), Value::from(5)]
        );
    }

    #[test]
    fn stats_are_the_same_tables() {
        let (pg, _dir, store) = both();
        let (ps, pt) = pg.query_stats().unwrap();
        let (ss, st) = store.query_stats().unwrap();
        assert_eq!(ps, ss);
        assert_eq!(pt, st);
        assert_eq!(ps.rows.len(), 3, "alpha, beta and gamma (runs only)");
        assert_eq!(
            ps.rows[0][..4],
            [
                Value::from("alpha"),
                Value::from(1),
                Value::from(1),
                Value::from(1)
            ]
        );
        let aff = pt.to_objects().into_iter().next().unwrap();
        assert_eq!(aff["target"], "aff");
        assert_eq!(aff["done"], 1);
        assert_eq!(aff["awaiting_approval"], 1);
        assert_eq!(aff["mapped"], 2);
        assert_eq!(aff["detached"], 1);
        assert_eq!(aff["failures_in_a_row"], 3);
        // An empty mirror: the same empty tables, columns included.
        let empty = fresh();
        let (_d, blank) = sqlite();
        let (a, b) = (empty.query_stats().unwrap(), blank.query_stats().unwrap());
        assert_eq!(a, b);
        assert!(a.0.rows.is_empty() && !a.0.columns.is_empty());
    }

    /// `numeric` decoded from the binary format gives exactly `numeric::text`.
    #[test]
    fn numeric_cells_are_their_text() {
        let pg = fresh();
        let values = [
            "0",
            "1.50",
            "10",
            "-2.5",
            "0.0001",
            "0.000",
            "100000000",
            "12345678901234.5678",
            "-0.00012",
            "9999.9999",
            "10000",
            "1e-20",
            "123456789012345678901234567890.1",
            "NaN",
            "Infinity",
            "-Infinity",
        ];
        for v in values {
            let t = pg
                .table(
                    "SELECT $1::text::numeric AS n, $1::text::numeric::text AS t",
                    &[&v],
                )
                .unwrap();
            assert_eq!(t.rows[0][0], t.rows[0][1], "{v}");
        }
        let t = pg
            .table(
                "SELECT true AS b, 2::int2 AS s, 3::int4 AS i, 4::int8 AS l, 1.25::float8 AS f,
                        NULL::text AS n, '[1, 2]'::jsonb AS caps, '{\"a\": [1.50, true]}'::jsonb AS payload,
                        '\"x\"'::jsonb AS word, '{\"c\": true}'::jsonb -> 'c' AS flag",
                &[],
            )
            .unwrap();
        assert_eq!(
            t.rows[0],
            vec![
                Value::Bool(true),
                Value::from(2),
                Value::from(3),
                Value::from(4),
                Value::from(1.25),
                Value::Null,
                Value::from("[1,2]"),
                serde_json::json!({"a": [1.5, true]}),
                Value::from("x"),
                Value::from(1),
            ]
        );
        assert_eq!(
            compact_json(r#"{"a b": "c, d", "e": [1, "\" x"]}"#),
            r#"{"a b":"c, d","e":[1,"\" x"]}"#
        );
    }
}
