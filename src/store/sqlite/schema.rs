//! Schema migrations, keyed on `PRAGMA user_version`: migration `i` takes the database from
//! version `i` to `i + 1`. Never edit a released migration; append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the mirror, its history, runs, the push outbox and mapping, and source leases.
    r#"
CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    state         TEXT NOT NULL CHECK (state IN ('running', 'complete', 'partial', 'failed', 'held')),
    reason        TEXT,
    pages         INTEGER NOT NULL DEFAULT 0,
    offers_seen   INTEGER NOT NULL DEFAULT 0,
    added         INTEGER NOT NULL DEFAULT 0,
    changed       INTEGER NOT NULL DEFAULT 0,
    removed       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    held_removals INTEGER NOT NULL DEFAULT 0,
    requests      INTEGER NOT NULL DEFAULT 0,
    retries       INTEGER NOT NULL DEFAULT 0,
    rate_limited  INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    pid           INTEGER,
    host          TEXT
);
CREATE INDEX sync_runs_by_source ON sync_runs (source, id);

CREATE TABLE offer_rows (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'paused', 'pending', 'expired', 'removed', 'other')),
    payout        TEXT,
    currency      TEXT,
    payout_type   TEXT,
    revenue       TEXT,
    countries     TEXT NOT NULL DEFAULT '[]',
    platforms     TEXT NOT NULL DEFAULT '[]',
    categories    TEXT NOT NULL DEFAULT '[]',
    tracking_url  TEXT,
    preview_url   TEXT,
    advertiser    TEXT,
    description   TEXT,
    icon_url      TEXT,
    app_package   TEXT,
    starts_at     TEXT,
    ends_at       TEXT,
    content_hash  TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    removed_at    TEXT,
    raw           TEXT NOT NULL,
    UNIQUE (source, external_id)
);

-- Narrow "seen" bookkeeping, rewritten on every run for every offer, so that an unchanged offer
-- never rewrites its wide row.
CREATE TABLE offer_seen (
    offer_id     INTEGER PRIMARY KEY REFERENCES offer_rows (id) ON DELETE CASCADE,
    last_run_id  INTEGER NOT NULL,
    last_seen_at TEXT NOT NULL,
    missed_runs  INTEGER NOT NULL DEFAULT 0
);

CREATE VIEW offers AS
SELECT o.source, o.external_id, o.name, o.status, o.payout, o.currency, o.payout_type, o.revenue,
       o.countries, o.platforms, o.categories, o.tracking_url, o.preview_url, o.advertiser,
       o.description, o.icon_url, o.app_package, o.starts_at, o.ends_at, o.content_hash,
       o.first_seen_at, s.last_seen_at, o.updated_at, o.removed_at, o.raw
FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id;

CREATE TABLE offer_changes (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES sync_runs (id),
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('added', 'changed', 'removed', 'reappeared')),
    diff        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX offer_changes_by_offer ON offer_changes (source, external_id, id);
CREATE INDEX offer_changes_by_time ON offer_changes (at);

CREATE TABLE push_outbox (
    id              INTEGER PRIMARY KEY,
    target          TEXT NOT NULL,
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    op              TEXT NOT NULL CHECK (op IN ('create', 'update', 'pause', 'activate')),
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'in_flight', 'done', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT
);
CREATE INDEX push_outbox_queue ON push_outbox (target, state, id);

CREATE TABLE target_offers (
    target          TEXT NOT NULL,
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    target_offer_id TEXT NOT NULL,
    pushed_hash     TEXT,
    pushed_at       TEXT,
    PRIMARY KEY (target, source, external_id)
);

-- One row per source being synced: the cross-process lease (invariant 8).
CREATE TABLE source_leases (
    source       TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    run_id       INTEGER,
    acquired_at  TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
"#,
    // 2: every payout of multi-payout offers (Affise payments[]), as a JSON array.
    r#"
ALTER TABLE offer_rows ADD COLUMN payouts TEXT NOT NULL DEFAULT '[]';
DROP VIEW offers;
CREATE VIEW offers AS
SELECT o.source, o.external_id, o.name, o.status, o.payout, o.currency, o.payout_type, o.revenue,
       o.countries, o.platforms, o.categories, o.tracking_url, o.preview_url, o.advertiser,
       o.description, o.icon_url, o.app_package, o.starts_at, o.ends_at, o.payouts, o.content_hash,
       o.first_seen_at, s.last_seen_at, o.updated_at, o.removed_at, o.raw
FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id;
"#,
    // 3: what each target holds of each offer (state and the fields last pushed), duplicates
    // flagged on push operations, and the config each target was last planned with.
    r#"
ALTER TABLE target_offers ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE target_offers ADD COLUMN pushed_payload TEXT NOT NULL DEFAULT '{}';
ALTER TABLE push_outbox ADD COLUMN possible_duplicate INTEGER NOT NULL DEFAULT 0;
CREATE INDEX push_outbox_by_offer ON push_outbox (target, source, external_id, state);
CREATE TABLE target_plans (
    target      TEXT PRIMARY KEY,
    config_hash TEXT NOT NULL,
    planned_at  TEXT NOT NULL
);
"#,
    // 4: the content hash of a live offer (NULL once removed) beside its "seen" bookkeeping, so
    // that deciding "unchanged" reads only the (source, external_id) index and the narrow
    // offer_seen row, never the wide offer row.
    r#"
ALTER TABLE offer_seen ADD COLUMN live_hash TEXT;
UPDATE offer_seen SET live_hash = (
    SELECT o.content_hash FROM offer_rows o WHERE o.id = offer_seen.offer_id AND o.status <> 'removed'
);
"#,
    // 5: why offers were rejected (the first 1000 of each run; sync_runs.rejected counts all).
    r#"
CREATE TABLE offer_rejections (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES sync_runs (id),
    source      TEXT NOT NULL,
    external_id TEXT,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX offer_rejections_by_run ON offer_rejections (run_id, id);
"#,
    // 6: a create whose outcome is unknown is `ambiguous` (looked up or re-planned, never resent
    // blindly); a create the target's contract rules out is `skipped` (with its reason); `first_failed_at` (an operation is dead only after its attempts and a minimum
    // age); `target_state`, the delivery breaker of each target. SQLite cannot alter a CHECK
    // constraint, so push_outbox is rebuilt with its rows and ids.
    r#"
CREATE TABLE push_outbox_v6 (
    id                 INTEGER PRIMARY KEY,
    target             TEXT NOT NULL,
    source             TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    op                 TEXT NOT NULL CHECK (op IN ('create', 'update', 'pause', 'activate')),
    payload            TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'in_flight', 'ambiguous', 'done', 'failed', 'dead', 'skipped')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TEXT,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    done_at            TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    first_failed_at    TEXT
);
INSERT INTO push_outbox_v6 (id, target, source, external_id, op, payload, state, attempts,
                            next_attempt_at, last_error, created_at, done_at, possible_duplicate)
SELECT id, target, source, external_id, op, payload, state, attempts, next_attempt_at, last_error,
       created_at, done_at, possible_duplicate
FROM push_outbox;
DROP TABLE push_outbox;
ALTER TABLE push_outbox_v6 RENAME TO push_outbox;
CREATE INDEX push_outbox_queue ON push_outbox (target, state, id);
CREATE INDEX push_outbox_by_offer ON push_outbox (target, source, external_id, state);

CREATE TABLE target_state (
    target       TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    open_until   TEXT,
    last_error   TEXT,
    updated_at   TEXT NOT NULL
);

-- Money stays exact decimal text; its numeric companions make `payout > 10` and `ORDER BY`
-- mean what they say in SQL (sqlite3, Datasette, BI tools). REAL is for comparing and sorting,
-- not for accounting: the text columns are the truth.
DROP VIEW offers;
CREATE VIEW offers AS
SELECT o.source, o.external_id, o.name, o.status, o.payout,
       CAST(o.payout AS REAL) AS payout_value, o.currency, o.payout_type, o.revenue,
       CAST(o.revenue AS REAL) AS revenue_value,
       o.countries, o.platforms, o.categories, o.tracking_url, o.preview_url, o.advertiser,
       o.description, o.icon_url, o.app_package, o.starts_at, o.ends_at, o.payouts, o.content_hash,
       o.first_seen_at, s.last_seen_at, o.updated_at, o.removed_at, o.raw
FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id;
ALTER TABLE target_offers ADD COLUMN payout_value REAL
    GENERATED ALWAYS AS (CAST(json_extract(pushed_payload, '$.payout') AS REAL)) VIRTUAL;
"#,
    // 7: operators in control. Creates wait for approval (`awaiting_approval`) or were
    // `rejected`; `push_decisions` remembers each decision so later plans honour it; a detached
    // target offer is never touched until attached. push_outbox is rebuilt for its CHECK.
    r#"
CREATE TABLE push_outbox_v7 (
    id                 INTEGER PRIMARY KEY,
    target             TEXT NOT NULL,
    source             TEXT NOT NULL,
    external_id        TEXT NOT NULL,
    op                 TEXT NOT NULL CHECK (op IN ('create', 'update', 'pause', 'activate')),
    payload            TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'in_flight', 'ambiguous', 'done', 'failed', 'dead',
                                        'skipped', 'awaiting_approval', 'rejected')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TEXT,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    done_at            TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    first_failed_at    TEXT
);
INSERT INTO push_outbox_v7 SELECT id, target, source, external_id, op, payload, state, attempts,
       next_attempt_at, last_error, created_at, done_at, possible_duplicate, first_failed_at
FROM push_outbox;
DROP TABLE push_outbox;
ALTER TABLE push_outbox_v7 RENAME TO push_outbox;
CREATE INDEX push_outbox_queue ON push_outbox (target, state, id);
CREATE INDEX push_outbox_by_offer ON push_outbox (target, source, external_id, state);

CREATE TABLE push_decisions (
    target      TEXT NOT NULL,
    source      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    -- For an approved payout jump: the payout approved (decimal text).
    payout      TEXT,
    decided_at  TEXT NOT NULL,
    PRIMARY KEY (target, source, external_id)
);

ALTER TABLE target_offers ADD COLUMN detached_at TEXT;
ALTER TABLE target_offers ADD COLUMN detached_reason TEXT;
"#,
    // 8: what the connector catalogue adds to an offer: a payout's unit (an amount, or a
    // percentage of the sale), excluded countries beside the allowed ones, the source-side
    // approval state (NULL: the source does not say), and caps. Existing rows keep the defaults.
    r#"
ALTER TABLE offer_rows ADD COLUMN payout_unit TEXT NOT NULL DEFAULT 'amount'
    CHECK (payout_unit IN ('amount', 'percent'));
ALTER TABLE offer_rows ADD COLUMN excluded_countries TEXT NOT NULL DEFAULT '[]';
ALTER TABLE offer_rows ADD COLUMN approval TEXT
    CHECK (approval IN ('approved', 'requires_approval', 'pending', 'rejected'));
ALTER TABLE offer_rows ADD COLUMN caps TEXT NOT NULL DEFAULT '[]';
DROP VIEW offers;
CREATE VIEW offers AS
SELECT o.source, o.external_id, o.name, o.status, o.payout,
       CAST(o.payout AS REAL) AS payout_value, o.payout_unit, o.currency, o.payout_type, o.revenue,
       CAST(o.revenue AS REAL) AS revenue_value,
       o.countries, o.excluded_countries, o.platforms, o.categories, o.tracking_url, o.preview_url,
       o.advertiser, o.description, o.icon_url, o.app_package, o.starts_at, o.ends_at, o.payouts,
       o.approval, o.caps, o.content_hash,
       o.first_seen_at, s.last_seen_at, o.updated_at, o.removed_at, o.raw
FROM offer_rows o JOIN offer_seen s ON s.offer_id = o.id;
"#,
    // 9: durable notifications. Rows are written in the transaction that records a run's end
    // (its changes, failed or held state, creates awaiting approval) or a delivery's dead
    // operations; `sync_runs.notified_at` and `push_outbox.notified` say what was reported, so
    // a crash in between only delays a report.
    r#"
CREATE TABLE notify_outbox (
    id              INTEGER PRIMARY KEY,
    notifier        TEXT NOT NULL,
    event           TEXT NOT NULL,
    source          TEXT,
    target          TEXT,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX notify_outbox_queue ON notify_outbox (notifier, state, id);
ALTER TABLE sync_runs ADD COLUMN notified_at TEXT;
ALTER TABLE push_outbox ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
-- Runs and dead operations from before notifications existed are not reported.
UPDATE sync_runs SET notified_at = COALESCE(finished_at, started_at);
UPDATE push_outbox SET notified = 1 WHERE state = 'dead';
"#,
    // 10: the same CHECK constraints, written as `col = 'a' OR col = 'b' ...` instead of
    // `col IN ('a', 'b', ...)`. SQLite evaluates a constant IN list of more than two values
    // through an ephemeral b-tree built on every row written: three per new offer, a third of
    // a first sync's instructions. The meaning is the same (NULL still passes), so no row is
    // rewritten: `or_chain_checks` edits each table's declaration in `sqlite_schema`, the
    // documented procedure for changes that do not touch the stored content.
    "-- CHECK (col IN (...)) rewritten as OR chains by schema::or_chain_checks",
    // 11: an offer's history found by the offer's row id instead of by (source, external_id).
    // The old index took its entries in the random order of the platforms' ids, so every page
    // transaction of a first sync rewrote leaf pages all over it; offer ids grow as offers
    // arrive, so the new one is appended to. The source and external_id columns stay (they
    // are what people query); existing rows get their offer's id.
    r#"
ALTER TABLE offer_changes ADD COLUMN offer_id INTEGER;
UPDATE offer_changes SET offer_id = (
    SELECT o.id FROM offer_rows o
    WHERE o.source = offer_changes.source AND o.external_id = offer_changes.external_id);
DROP INDEX offer_changes_by_offer;
CREATE INDEX offer_changes_by_offer ON offer_changes (offer_id, id);
"#,
];

/// Steps in Rust that run after migration `i`'s SQL, inside its transaction.
pub(in crate::store) fn after(i: usize, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    if i == 9 {
        or_chain_checks(tx)?;
    }
    Ok(())
}

/// Rewrite every table's `CHECK (col IN ('a', ...))` as `CHECK (col = 'a' OR ...)`, by
/// SQLite's procedure for schema changes that leave the stored content as it is
/// (<https://sqlite.org/lang_altertable.html#otheralter>): writable_schema, the new text, a
/// bumped schema_version. The tables are parsed again before the transaction commits, so a
/// text SQLite cannot read rolls the migration back instead of damaging the file.
fn or_chain_checks(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let tables: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%CHECK (%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "writable_schema", "ON")?;
    let edited = (|| {
        for (name, sql) in &tables {
            let new = or_chain(sql);
            if &new != sql {
                tx.execute(
                    "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
                    [&new, name],
                )?;
            }
        }
        tx.pragma_update(None, "schema_version", version + 1)
    })();
    tx.pragma_update(None, "writable_schema", "OFF")?;
    edited?;
    for (name, _) in &tables {
        tx.prepare(&format!("SELECT * FROM \"{name}\" LIMIT 0"))?;
    }
    Ok(())
}

/// `CHECK (col IN ('a', 'b'))` → `CHECK (col = 'a' OR col = 'b')` in a table's declaration;
/// anything else is left as it is.
pub(in crate::store) fn or_chain(sql: &str) -> String {
    const CHECK: &str = "CHECK (";
    let mut out = String::with_capacity(sql.len() + 256);
    let mut rest = sql;
    while let Some(at) = rest.find(CHECK) {
        let (head, tail) = rest.split_at(at + CHECK.len());
        out.push_str(head);
        rest = tail;
        let Some((col, after)) = tail.split_once(" IN (") else {
            continue;
        };
        let Some((list, after_list)) = after.split_once(')') else {
            continue;
        };
        let values: Vec<&str> = list.split(',').map(str::trim).collect();
        let quoted = |v: &&str| v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'');
        if !col.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || !values.iter().all(quoted)
        {
            continue;
        }
        let chain: Vec<String> = values.iter().map(|v| format!("{col} = {v}")).collect();
        out.push_str(&chain.join(" OR "));
        rest = after_list;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;
    use crate::store::sqlite::Sqlite as Store;
    use std::time::Duration;

    /// A mirror at schema `version`, built by the same steps as `Store::migrate` (SQL and Rust
    /// steps), with `rows` inserted.
    fn mirror_at(version: usize, rows: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("v{version}.db"));
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            super::after(i, &tx).unwrap();
            tx.commit().unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn.execute_batch(rows).unwrap();
        (dir, path)
    }

    /// A version-3 mirror with one live and one removed offer gains `live_hash` for the live one
    /// only, so the first run after the upgrade neither re-adds nor re-removes anything.
    #[test]
    fn migration_4_fills_live_hash_from_status() {
        let (_dir, path) = mirror_at(
            3,
            "INSERT INTO offer_rows (id, source, external_id, name, status, content_hash, first_seen_at, updated_at, raw)
             VALUES (1, 's', 'live', 'A', 'active', 'h1', 't', 't', '{}'),
                    (2, 's', 'gone', 'B', 'removed', 'h2', 't', 't', '{}');
             INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at) VALUES (1, 1, 't'), (2, 1, 't');",
        );
        let store = Store::open(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let hashes: Vec<(i64, Option<String>)> = store
            .conn
            .prepare("SELECT offer_id, live_hash FROM offer_seen ORDER BY offer_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hashes, vec![(1, Some("h1".into())), (2, None)]);
    }

    #[test]
    fn or_chain_rewrites_in_lists_only() {
        assert_eq!(
            super::or_chain("a TEXT CHECK (kind IN ('x', 'y',\n  'z')), b INT CHECK (b > 0)"),
            "a TEXT CHECK (kind = 'x' OR kind = 'y' OR kind = 'z'), b INT CHECK (b > 0)"
        );
        let odd = "CHECK (f(x) IN ('a')) CHECK (y IN (1, 2))";
        assert_eq!(super::or_chain(odd), odd);
    }

    /// Migration 10 leaves no CHECK that SQLite evaluates through an ephemeral table, keeps
    /// every row of a version-9 mirror, and the constraints still hold (NULL approval allowed).
    #[test]
    fn migration_10_keeps_rows_and_constraints_without_ephemeral_tables() {
        let (_dir, path) = mirror_at(
            9,
            "INSERT INTO offer_rows (id, source, external_id, name, status, content_hash, first_seen_at, updated_at, raw)
             VALUES (1, 's', 'live', 'A', 'active', 'h1', 't', 't', '{}');
             INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at) VALUES (1, 1, 't');",
        );
        let store = Store::open(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let c = &store.conn;
        let in_checks: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%CHECK (% IN (%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(in_checks, 0);
        let n: i64 = c
            .query_row("SELECT count(*) FROM offers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        for insert in [
            "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at) VALUES (1, 's', 'live', 'added', '{}', 't')",
            "UPDATE offer_rows SET status = 'paused', approval = 'pending' WHERE id = 1",
        ] {
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN {insert}"))
                .unwrap()
                .query_map([], |r| r.get(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!plan.iter().any(|op| op == "OpenEphemeral"), "{insert}: {plan:?}");
        }
        c.execute("UPDATE offer_rows SET approval = NULL WHERE id = 1", [])
            .unwrap();
        for bad in [
            "UPDATE offer_rows SET status = 'gone' WHERE id = 1",
            "UPDATE offer_rows SET approval = 'maybe' WHERE id = 1",
            "INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at) VALUES (1, 's', 'x', 'moved', '{}', 't')",
        ] {
            let e = c.execute(bad, []).unwrap_err().to_string();
            assert!(e.contains("CHECK constraint failed"), "{bad}: {e}");
        }
    }

    /// Migration 11 gives existing history rows their offer's id, and an offer's history is
    /// then read through the new index, not by scanning the table.
    #[test]
    fn migration_11_keys_history_by_offer_id() {
        let (_dir, path) = mirror_at(
            10,
            "INSERT INTO sync_runs (id, source, started_at, state) VALUES (1, 's', 't', 'complete');
             INSERT INTO offer_rows (id, source, external_id, name, status, content_hash, first_seen_at, updated_at, raw)
             VALUES (7, 's', 'a', 'A', 'active', 'h', 't', 't', '{}'), (8, 's', 'b', 'B', 'active', 'h', 't', 't', '{}');
             INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at) VALUES (7, 1, 't'), (8, 1, 't');
             INSERT INTO offer_changes (run_id, source, external_id, kind, diff, at)
             VALUES (1, 's', 'a', 'added', '{}', 't'), (1, 's', 'b', 'added', '{}', 't'),
                    (1, 's', 'a', 'changed', '{}', 't');",
        );
        let store = Store::open(&path, Duration::from_secs(1)).unwrap();
        let ids: Vec<(String, i64)> = store
            .conn
            .prepare("SELECT external_id, offer_id FROM offer_changes ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, [("a".into(), 7), ("b".into(), 8), ("a".into(), 7)]);
        let history = store.query_history("s", "a").unwrap();
        assert_eq!(history.rows.len(), 2);
        let plan: Vec<String> = store
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM offer_changes
                 WHERE offer_id = (SELECT id FROM offer_rows WHERE source = 's' AND external_id = 'a')
                 ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("offer_changes USING") && p.contains("offer_changes_by_offer")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.starts_with("SCAN")), "{plan:?}");
    }
}
