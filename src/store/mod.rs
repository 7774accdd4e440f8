//! The mirror: the only module that contains SQL. [`Store`] is the one interface the rest of
//! offersync uses; behind it are two backends, each with its own SQL module:
//!
//! - [`sqlite`]: the embedded default, one file (`[database] path`);
//! - [`pg`]: PostgreSQL (`[database] url`), shared by several daemons on several hosts.
//!
//! Both keep the same tables, columns and meanings, the same schema version, and the same
//! invariants: a page, its changes, outbox rows and run counters in one transaction, with the
//! source's lease checked in it.

pub mod pg;
mod report;
pub mod sqlite;
mod verbs;

pub use crate::model::{Location, PgLocation};
pub use sqlite::console::{HeldRun, OfferLine, OfferPage, OfferQuery, QueuedOp, SCAN_WINDOW};
pub use sqlite::decisions::{Decided, Selection};
pub use sqlite::lease::{pid_alive, LeaseHolder, LeaseOutcome};
pub use sqlite::notify::Notification;
pub use sqlite::offers::{PageBatch, PageCounts, StoredOffer};
pub use sqlite::outbox::{OutboxOp, TargetHealth};
pub use sqlite::planning::Preview;
pub use sqlite::query;
pub use sqlite::removals::{ApproveOutcome, FinalizeOutcome};
pub use sqlite::runs::{RunState, RunTotals};
// The backend-neutral types above live beside the SQLite SQL that introduced them; the
// PostgreSQL module reaches them by these paths too.
#[allow(unused_imports)]
pub(crate) use sqlite::{
    console, decisions, lease, notify, offers, outbox, planning, removals, runs,
};

/// When a command is done and its stores are closed: stop the SQLite checkpointer threads
/// (at most 10 s each), so the last connection to close each file copies its WAL back whole
/// and the database file alone holds the mirror, as after any clean exit.
pub fn quiesce() {
    sqlite::gate::quiesce(std::time::Duration::from_secs(10));
}

use crate::model::NotifyRule;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {path} does not exist (run `offersync --once` or `offersync demo` first)")]
    Missing { path: PathBuf },
    #[error("database {path} has schema version {found}, newer than this offersync understands ({known}); upgrade offersync")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path} is not an offersync mirror (no offersync tables, or an unknown schema)")]
    NotAMirror { path: PathBuf },
    #[error("database {path} has schema version {found}, older than this offersync ({known}); it is migrated by the next write (`offersync --once`, or the daemon's next start)")]
    Outdated {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the lease on {source_name} was taken over by another process; this process stops working on it")]
    LeaseLost { source_name: String },
    #[error("the mirror is inconsistent: {0}; `sqlite3 FILE 'PRAGMA integrity_check'` says whether the file is damaged")]
    Inconsistent(String),
    #[error("database {at}: {}", pg::describe(source))]
    Pg {
        at: String,
        #[source]
        source: postgres::Error,
    },
    #[error("database.url {at}: {reason}")]
    PgUrl { at: String, reason: String },
    #[error("the connection to the database broke while rows were sent: {0}")]
    Stream(String),
    #[error("database {at} has no offersync schema (run `offersync --once` or the daemon first)")]
    NotAMirrorAt { at: String },
    #[error("database {at} has schema version {found}, newer than this offersync understands ({known}); upgrade offersync")]
    TooNewAt { at: String, found: i64, known: i64 },
    #[error("database {at} has schema version {found}, older than this offersync ({known}); it is migrated by the next write (`offersync --once`, or the daemon's next start)")]
    OutdatedAt { at: String, found: i64, known: i64 },
}

impl StoreError {
    /// What to do about this error, for the message an operator reads.
    pub fn hint(&self) -> Option<&'static str> {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Open { .. } => Some(
                "check that the directory exists and that the user offersync runs as may write there",
            ),
            StoreError::Pg { source, .. } => match source.code().map(|c| c.code()) {
                None if pg::describe(source).contains("TLS") => Some(
                    "offersync connects to PostgreSQL without TLS for now: drop sslmode=require from database.url and keep the database on a private network or a local socket (README, PostgreSQL)",
                ),
                None if source.as_db_error().is_none() => Some(
                    "check database.url (host and port) and that the PostgreSQL server runs and accepts connections from this host",
                ),
                Some(c) if c.starts_with("28") => Some(
                    "check the user in database.url and the password (database.password_env or password_file), and the server's pg_hba.conf",
                ),
                Some("3D000") => Some(
                    "the database in database.url does not exist: create it (`createdb --owner USER NAME`) or fix the URL",
                ),
                Some(c) if c.starts_with("53") => Some(
                    "the server is out of connections, memory or disk; see its log",
                ),
                Some("42501") => Some(
                    "the user in database.url may not create or change the mirror's tables: make it the owner of the database or schema",
                ),
                _ => None,
            },
            StoreError::NotAMirrorAt { .. } => Some(
                "point database.url at the mirror's database (and search_path at its schema), or run `offersync --once` to create one",
            ),
            StoreError::Sql(e) => match e.sqlite_error_code()? {
                C::ReadOnly | C::CannotOpen | C::PermissionDenied => Some(
                    "the database file, its -wal/-shm files or their directory are not writable by the user offersync runs as (check `ls -l` and database.path)",
                ),
                C::NotADatabase => Some(
                    "the file is not an SQLite database; check database.path (offersync never overwrites a file it does not recognise)",
                ),
                C::DiskFull => Some("the disk is full; free space, then run again (nothing was half-written)"),
                C::DatabaseCorrupt => Some(
                    "the file is damaged; `sqlite3 FILE 'PRAGMA integrity_check'` says where; restore a backup",
                ),
                C::DatabaseBusy | C::DatabaseLocked => Some(
                    "another process held the write lock longer than database.busy_timeout_seconds",
                ),
                _ => None,
            },
            _ => None,
        }
    }

    /// The error as an operator reads it: where the database is (when the message lacks it) and
    /// a hint.
    pub fn explain(&self, at: &Location) -> String {
        let text = self.to_string();
        let shown = at.to_string();
        let mut msg = if text.contains(&shown) {
            text
        } else {
            format!("database {shown}: {text}")
        };
        if let Some(h) = self.hint() {
            msg.push_str(&format!(" (hint: {h})"));
        }
        msg
    }

    /// Whether the database itself is unusable (cannot be opened, is not a mirror, has a newer
    /// schema), as opposed to one operation failing: commands exit 2 for these.
    pub fn is_unusable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Open { .. }
            | StoreError::Missing { .. }
            | StoreError::TooNew { .. }
            | StoreError::NotAMirror { .. }
            | StoreError::Outdated { .. } => true,
            StoreError::Sql(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    C::ReadOnly
                        | C::CannotOpen
                        | C::PermissionDenied
                        | C::NotADatabase
                        | C::DatabaseCorrupt
                        | C::DiskFull
                )
            ),
            StoreError::LeaseLost { .. } => false,
            StoreError::Inconsistent(_) => true,
            StoreError::PgUrl { .. }
            | StoreError::Stream(_)
            | StoreError::NotAMirrorAt { .. }
            | StoreError::TooNewAt { .. }
            | StoreError::OutdatedAt { .. } => true,
            // A server that cannot be reached or refuses us: the database is unusable for now.
            StoreError::Pg { source, .. } => {
                source.as_db_error().is_none()
                    || source.code().is_some_and(|c| {
                        c.code().starts_with("28")
                            || c.code().starts_with("3D")
                            || c.code().starts_with("53")
                    })
            }
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A PostgreSQL error from inside a verb; the store's caller names the database.
impl From<postgres::Error> for StoreError {
    fn from(source: postgres::Error) -> StoreError {
        StoreError::Pg {
            at: "(PostgreSQL)".into(),
            source,
        }
    }
}

/// Rebuild an offer from the canonical columns as both backends store them (the order of
/// `OFFER_COLUMNS`: name, status, payout, currency, payout_type, revenue, countries, platforms,
/// categories, tracking_url, preview_url, advertiser, description, icon_url, app_package,
/// starts_at, ends_at, payouts, payout_unit, excluded_countries, approval, caps), each read as
/// optional text by `col(i)`.
pub(crate) fn offer_from_columns<E>(
    external_id: String,
    mut col: impl FnMut(usize) -> std::result::Result<Option<String>, E>,
) -> std::result::Result<crate::model::Offer, E> {
    use crate::model::{OfferStatus, PayoutType, PayoutUnit, SourceApproval};
    use std::str::FromStr;
    let list = |s: Option<String>| -> Vec<String> {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    };
    let time = |s: Option<String>| {
        s.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let dec = |v: Option<String>| v.and_then(|s| crate::model::parse_decimal(&s));
    Ok(crate::model::Offer {
        external_id,
        name: col(0)?.unwrap_or_default(),
        status: col(1)?
            .and_then(|s| OfferStatus::from_str(&s).ok())
            .unwrap_or(OfferStatus::Other),
        payout: dec(col(2)?),
        currency: col(3)?,
        payout_type: col(4)?.map(|p| PayoutType::from_str(&p).unwrap_or(PayoutType::Other)),
        revenue: dec(col(5)?),
        countries: list(col(6)?),
        platforms: list(col(7)?),
        categories: list(col(8)?),
        tracking_url: col(9)?,
        preview_url: col(10)?,
        advertiser: col(11)?,
        description: col(12)?,
        icon_url: col(13)?,
        app_package: col(14)?,
        starts_at: time(col(15)?),
        ends_at: time(col(16)?),
        payouts: col(17)?
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        payout_unit: col(18)?
            .and_then(|u| PayoutUnit::from_str(&u).ok())
            .unwrap_or_default(),
        excluded_countries: list(col(19)?),
        approval: col(20)?.and_then(|a| SourceApproval::from_str(&a).ok()),
        caps: col(21)?
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
    })
}

/// What a target holds of an offer once `op` succeeded: the row `finish_op` writes to
/// `target_offers` on either backend.
pub(crate) struct Held {
    pub state: &'static str,
    pub target_offer_id: String,
    /// The fields pushed so far, as JSON text.
    pub payload: String,
    /// A fingerprint of `payload` (xxh3-64 in hex), so tools compare without parsing JSON.
    pub hash: String,
}

/// [`Held`] after `op`: `target_offer_id` is the new id after a create, `hidden` that the
/// create left the offer invisible to affiliates (Offerit's staged create).
pub(crate) fn held_after(op: &OutboxOp, target_offer_id: Option<&str>, hidden: bool) -> Held {
    use crate::model::{merged, OpKind};
    let pushed = op
        .mapping
        .as_ref()
        .map(|m| m.pushed.clone())
        .unwrap_or_default();
    let (state, payload) = match op.kind {
        OpKind::Pause => ("paused", pushed),
        OpKind::Create if hidden => ("hidden", merged(pushed, &op.fields)),
        OpKind::Create | OpKind::Update | OpKind::Activate => {
            ("active", merged(pushed, &op.fields))
        }
    };
    let target_offer_id = target_offer_id
        .map(String::from)
        .or_else(|| op.mapping.as_ref().map(|m| m.target_offer_id.clone()))
        .unwrap_or_default();
    let payload = serde_json::to_string(&payload).unwrap_or_default();
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(payload.as_bytes()));
    Held {
        state,
        target_offer_id,
        payload,
        hash,
    }
}

pub(crate) enum Db {
    Sqlite(sqlite::Sqlite),
    Pg(pg::Pg),
}

/// One connection to the mirror, whichever backend holds it.
pub struct Store {
    pub(crate) db: Db,
    location: Location,
}

impl Store {
    /// Open (creating it if needed: an SQLite file with mode 0600, or the schema in an empty
    /// PostgreSQL database) and migrate the mirror.
    pub fn open(at: impl Into<Location>, busy_timeout: Duration) -> Result<Store> {
        let location = at.into();
        let db = match &location {
            Location::Sqlite(p) => Db::Sqlite(sqlite::Sqlite::open(p, busy_timeout)?),
            Location::Postgres(l) => Db::Pg(pg::blocking(|| pg::Pg::open(l, busy_timeout))?),
        };
        Ok(Store { db, location })
    }

    /// Open an existing mirror (migrating it if it is older); never creates one (an SQLite file,
    /// or the schema in an empty PostgreSQL database).
    pub fn open_existing(at: impl Into<Location>, busy_timeout: Duration) -> Result<Store> {
        let location = at.into();
        let db = match &location {
            Location::Sqlite(p) => Db::Sqlite(sqlite::Sqlite::open_existing(p, busy_timeout)?),
            Location::Postgres(l) => Db::Pg(pg::blocking(|| pg::Pg::open_mirror(l, busy_timeout))?),
        };
        Ok(Store { db, location })
    }

    /// Open an existing mirror for reading only (`inspect`, `push --plan`, `/healthz`): never
    /// created or migrated. Refuses a database that is not an offersync mirror, or whose
    /// schema is not this binary's.
    pub fn open_read_only(at: impl Into<Location>, busy_timeout: Duration) -> Result<Store> {
        let location = at.into();
        let db = match &location {
            Location::Sqlite(p) => Db::Sqlite(sqlite::Sqlite::open_read_only(p, busy_timeout)?),
            Location::Postgres(l) => {
                Db::Pg(pg::blocking(|| pg::Pg::open_existing(l, busy_timeout))?)
            }
        };
        Ok(Store { db, location })
    }

    /// How many page transactions of one run the backend writes at a time: 2 on PostgreSQL
    /// (each connection is a server process of its own), 1 on SQLite (one writer per file).
    pub fn page_writers(&self) -> usize {
        match self.db {
            Db::Sqlite(_) => 1,
            Db::Pg(_) => 2,
        }
    }

    /// A second connection to this mirror for a second page writer of the same run, where the
    /// backend has one (`page_writers`); `None` on SQLite.
    pub fn second_writer(&self, connect_timeout: Duration) -> Option<Result<Store>> {
        match (&self.db, &self.location) {
            (Db::Pg(_), Location::Postgres(l)) => Some(
                pg::blocking(|| pg::Pg::open_existing(l, connect_timeout)).map(|p| Store {
                    db: Db::Pg(p),
                    location: self.location.clone(),
                }),
            ),
            _ => None,
        }
    }

    /// Where this mirror is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Which backend: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Pg(_) => "postgres",
        }
    }

    /// Run `f` on the outbox in one write transaction, committed when `f` succeeds.
    pub fn outbox_tx<T>(
        &mut self,
        f: impl FnOnce(&mut OutboxTx<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        match &mut self.db {
            Db::Sqlite(s) => s.outbox_tx(|tx| f(&mut OutboxTx::Sqlite(tx))),
            Db::Pg(p) => pg::blocking(|| p.outbox_tx(|tx| f(&mut OutboxTx::Pg(tx)))),
        }
    }

    /// Close a run and record its totals (see the backends' `finish_run`).
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &mut self,
        run_id: i64,
        state: RunState,
        reason: Option<&str>,
        error: Option<&str>,
        counters: (u64, u64, u64),
        rules: &[NotifyRule],
        now: &str,
    ) -> Result<()> {
        match &mut self.db {
            Db::Sqlite(s) => s.finish_run(run_id, state, reason, error, counters, rules, now),
            Db::Pg(p) => {
                pg::blocking(|| p.finish_run(run_id, state, reason, error, counters, rules, now))
            }
        }
    }
}

/// The outbox inside one transaction, for the push layer: read the offer and its mapping, plan
/// with them, write the result, all or nothing.
pub enum OutboxTx<'a, 'b> {
    Sqlite(&'a sqlite::outbox::SqliteOutboxTx<'b>),
    Pg(&'a mut pg::PgOutboxTx<'b>),
}

#[cfg(test)]
impl Store {
    /// The SQLite connection under a test's store (tests compare the two backends).
    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        match &self.db {
            Db::Sqlite(s) => &s.conn,
            Db::Pg(_) => panic!("not an SQLite store"),
        }
    }

    /// An SQL query on a test's SQLite store, as a table.
    pub(crate) fn table(
        &self,
        sql: &str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<query::Table> {
        match &self.db {
            Db::Sqlite(s) => s.table(sql, args),
            Db::Pg(_) => panic!("not an SQLite store"),
        }
    }

    pub(crate) fn conn_mut(&mut self) -> &mut rusqlite::Connection {
        match &mut self.db {
            Db::Sqlite(s) => &mut s.conn,
            Db::Pg(_) => panic!("not an SQLite store"),
        }
    }
}
