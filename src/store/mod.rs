//! The SQLite mirror: the only module that contains SQL.
//!
//! One [`Store`] is one connection. Writers store each page whole in one transaction (invariant 2); readers
//! (`inspect`, `sqlite3`) work alongside thanks to WAL. The file is created with mode 0600.

mod console;
mod decisions;
mod lease;
mod notify;
mod offers;
mod outbox;
pub mod pg;
mod planning;
pub mod query;
mod removals;
mod runs;
mod schema;

pub use console::{HeldRun, OfferLine, OfferPage, OfferQuery, QueuedOp, SCAN_WINDOW};
pub use decisions::{Decided, Selection};
pub use lease::{LeaseHolder, LeaseOutcome};
pub use notify::Notification;
pub use offers::{PageBatch, PageCounts, StoredOffer};
pub use outbox::{OutboxOp, OutboxTx, TargetHealth};
pub use planning::Preview;
pub use removals::{ApproveOutcome, FinalizeOutcome};
pub use runs::{RunState, RunTotals};

use rusqlite::{Connection, OpenFlags};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
    #[error("database {at}: {source}")]
    Pg {
        at: String,
        #[source]
        source: postgres::Error,
    },
    #[error("database.url {at}: {reason}")]
    PgUrl { at: String, reason: String },
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

    /// The error as an operator reads it: the path (when the message lacks it) and a hint.
    pub fn explain(&self, path: &Path) -> String {
        let text = self.to_string();
        let shown = path.display().to_string();
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

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating it with mode 0600 if needed) and migrate the database.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        Self::open_existing(path, busy_timeout)
    }

    /// Open an existing database (for `inspect` and `approve-removals`); never creates one.
    pub fn open_existing(path: &Path, busy_timeout: Duration) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        // Switching a new file to WAL and migrating it need exclusive access, and SQLite may
        // answer BUSY there without consulting the busy handler: retry the whole sequence
        // within the busy timeout (several processes or runs may open a new file at once).
        let started = std::time::Instant::now();
        loop {
            match Self::try_open(path, busy_timeout) {
                Err(StoreError::Sql(e)) if is_busy(&e) && started.elapsed() < busy_timeout => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Open an existing mirror for reading only (`inspect`, `push --plan`, `/healthz`): never
    /// created, migrated or switched to WAL, so a read never writes. Refuses a file that is not
    /// an offersync mirror, or whose schema is not this binary's.
    pub fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = schema::MIGRATIONS.len() as i64;
        let has_tables: bool = conn.query_row(
            "SELECT count(*) = 2 FROM sqlite_master WHERE type = 'table' AND name IN ('offer_rows', 'sync_runs')",
            [],
            |r| r.get(0),
        )?;
        let path = path.to_path_buf();
        if version == 0 || !has_tables {
            return Err(StoreError::NotAMirror { path });
        }
        if version > known {
            return Err(StoreError::TooNew {
                path,
                found: version,
                known,
            });
        }
        if version < known {
            return Err(StoreError::Outdated {
                path,
                found: version,
                known,
            });
        }
        Ok(Store { conn, path })
    }

    fn try_open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 16 MiB of page cache: a page transaction's index lookups stay in memory instead of
        // re-reading pages from the OS cache; bounded, so memory does not grow with the catalogue.
        conn.pragma_update(None, "cache_size", -16384)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let known = schema::MIGRATIONS.len() as i64;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Another process may have migrated while we waited for the write lock.
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now > i as i64 {
                continue;
            }
            tx.execute_batch(sql)?;
            schema::after(i, &tx)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
            tracing::info!(db = %self.path.display(), version = i + 1, "database migrated");
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// `PRAGMA integrity_check`: `ok` for a healthy file.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}
