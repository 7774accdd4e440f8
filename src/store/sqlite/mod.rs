//! The SQLite backend: the embedded default. One [`Sqlite`] is one connection. Writers store each
//! page whole in one transaction (invariant 2); readers (`inspect`, `sqlite3`) work alongside
//! thanks to WAL. The file is created with mode 0600.

pub(crate) mod console;
pub(crate) mod decisions;
pub(crate) mod gate;
pub(crate) mod lease;
pub(crate) mod notify;
pub(crate) mod offers;
pub(crate) mod outbox;
pub(crate) mod planning;
pub mod query;
pub(crate) mod removals;
pub(crate) mod runs;
pub(crate) mod schema;

pub(crate) use super::{Result, StoreError};

use rusqlite::{Connection, OpenFlags};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub struct Sqlite {
    pub(in crate::store) conn: Connection,
    path: PathBuf,
    /// This process's queue for the file's write lock (see [`gate`]).
    gate: std::sync::Arc<gate::Gate>,
    /// How long a write waits for the lock: its turn at the gate, then SQLite's busy timeout.
    busy: Duration,
}

impl Sqlite {
    /// Open (creating it with mode 0600 if needed) and migrate the database.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Sqlite> {
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
    pub fn open_existing(path: &Path, busy_timeout: Duration) -> Result<Sqlite> {
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
    pub fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Sqlite> {
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
        Ok(Sqlite {
            conn,
            gate: gate::Gate::of(&path),
            path,
            busy: busy_timeout,
        })
    }

    fn try_open(path: &Path, busy_timeout: Duration) -> Result<Sqlite> {
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
        // 8 MiB of page cache: the index pages a page transaction walks stay in memory (the
        // (source, external_id) index of 100,000 offers is about 5 MB); bounded, so memory does
        // not grow with the catalogue. 16 MiB was 3 % faster on a first sync of 1,000,000
        // offers (where neither holds the index) for 9 MB more RSS.
        conn.pragma_update(None, "cache_size", -8192)?;
        // Checkpoints on the file's checkpointer thread, not in the committing writer (gate.rs).
        conn.wal_hook(Some(gate::wal_hook));
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Sqlite {
            conn,
            path: path.to_path_buf(),
            gate: gate::Gate::of(path),
            busy: busy_timeout,
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This process's turn to write, for a write outside a transaction (one statement); see
    /// [`gate`].
    pub(in crate::store) fn turn(&self) -> Option<gate::Turn> {
        self.gate.turn(self.busy)
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
            let tx = gate::WriteTx::begin(&mut self.conn, &self.gate, self.busy)?;
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
