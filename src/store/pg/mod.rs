//! The PostgreSQL backend: the same verbs as the SQLite one (`super::*`), with its SQL here.
//!
//! One [`Pg`] is one connection (the blocking `postgres` client: the store's callers already run
//! on blocking threads, a page's transaction is one thread's unit of work, and the client keeps
//! the writer design of the SQLite backend). Several daemons on several hosts may share one
//! database: what one worker does to a source or a target is serialized by the lease rows in
//! `source_leases`, locked with `SELECT ... FOR UPDATE` where they are taken over.

mod console;
mod decisions;
mod lease;
mod notify;
mod offers;
mod outbox;
mod planning;
mod query;
mod removals;
mod runs;
mod schema;

pub use outbox::PgOutboxTx;

pub use schema::PG_MIGRATIONS;

pub use crate::model::{redact_url, PgLocation};

use super::{Result, StoreError};
use crate::model::Offer;

/// Run a blocking PostgreSQL call. The `postgres` client drives a runtime of its own, which
/// cannot be entered on a thread that drives async tasks: on a worker of a multi-thread runtime
/// (the CLI's and the daemon's) this steps out of it first (`block_in_place`); on a blocking
/// thread (`spawn_blocking`, the writer) it just runs. A current-thread runtime cannot step out:
/// call the store from `spawn_blocking` there.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub struct Pg {
    /// Behind a `RefCell` so that reads take `&self`, as on the SQLite backend (the blocking
    /// client needs `&mut` for every statement). Use `client.get_mut()` in `&mut self` verbs.
    /// `ManuallyDrop` so that closing the connection can step out of an async context too
    /// (see `Drop`).
    pub(crate) client: std::mem::ManuallyDrop<std::cell::RefCell<postgres::Client>>,
    /// The redacted URL, for messages.
    pub(crate) shown: String,
    /// Whether the page writer expects mostly unchanged offers in its next call (as the last
    /// one had), and so settles them in one statement before it looks anything up.
    pub(crate) expect_unchanged: bool,
}

impl Drop for Pg {
    fn drop(&mut self) {
        // SAFETY: `client` is taken exactly once, here, and never used after.
        let client = unsafe { std::mem::ManuallyDrop::take(&mut self.client) };
        // Closing sends a Terminate message through the client's runtime.
        blocking(move || drop(client));
    }
}

/// The key of the advisory lock migrations are taken under ("offersyn" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f66_6665_7273_796e;

impl Pg {
    /// Connect and migrate (creating the schema in an empty database).
    pub fn open(at: &PgLocation, connect_timeout: std::time::Duration) -> Result<Pg> {
        let mut pg = Self::connect(at, connect_timeout)?;
        pg.migrate()?;
        Ok(pg)
    }

    /// Connect to a mirror that must already exist (like an SQLite file that must), migrating
    /// it if it is older: for the commands that act on a mirror a sync made.
    pub fn open_mirror(at: &PgLocation, connect_timeout: std::time::Duration) -> Result<Pg> {
        let mut pg = Self::connect(at, connect_timeout)?;
        if pg.version()?.is_none() {
            return Err(StoreError::NotAMirrorAt {
                at: pg.shown.clone(),
            });
        }
        pg.migrate()?;
        Ok(pg)
    }

    /// Connect to a mirror that must already exist at this binary's schema version (reads).
    pub fn open_existing(at: &PgLocation, connect_timeout: std::time::Duration) -> Result<Pg> {
        let pg = Self::connect(at, connect_timeout)?;
        let known = PG_MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        match pg.version()? {
            None => Err(StoreError::NotAMirrorAt {
                at: pg.shown.clone(),
            }),
            Some(v) if v > known => Err(StoreError::TooNewAt {
                at: pg.shown.clone(),
                found: v,
                known,
            }),
            Some(v) if v < known => Err(StoreError::OutdatedAt {
                at: pg.shown.clone(),
                found: v,
                known,
            }),
            Some(_) => Ok(pg),
        }
    }

    fn connect(at: &PgLocation, connect_timeout: std::time::Duration) -> Result<Pg> {
        let shown = redact_url(&at.url);
        let mut cfg: postgres::Config = at.url.parse().map_err(|e| StoreError::PgUrl {
            at: shown.clone(),
            reason: format!("{e}"),
        })?;
        if let Some(p) = &at.password {
            cfg.password(p);
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(connect_timeout);
        }
        cfg.application_name("offersync");
        let client = cfg
            .connect(postgres::NoTls)
            .map_err(|source| StoreError::Pg {
                at: shown.clone(),
                source,
            })?;
        Ok(Pg {
            client: std::mem::ManuallyDrop::new(std::cell::RefCell::new(client)),
            shown,
            expect_unchanged: true,
        })
    }

    /// The schema version, `None` when the database has no offersync schema.
    fn version(&self) -> Result<Option<i64>> {
        let err = self.err();
        let mut client = self.client.borrow_mut();
        let exists: bool = client
            .query_one("SELECT to_regclass('offersync_schema') IS NOT NULL", &[])
            .map_err(&err)?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let v: Option<i64> = client
            .query_opt("SELECT version FROM offersync_schema", &[])
            .map_err(&err)?
            .map(|r| r.get(0));
        Ok(v)
    }

    fn migrate(&mut self) -> Result<()> {
        let known = PG_MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        // Every open comes here (each run, delivery and notification batch): a mirror already
        // at this version is one read, without the lock that serializes the workers' opens.
        if self.version()? == Some(known) {
            return Ok(());
        }
        let shown = self.shown.clone();
        let err = |source| StoreError::Pg {
            at: shown.clone(),
            source,
        };
        let mut tx = self.client.get_mut().transaction().map_err(err)?;
        // One migrating process at a time, across hosts; the others wait, then see it done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS offersync_schema (
                 one     boolean PRIMARY KEY DEFAULT true CHECK (one),
                 version bigint NOT NULL
             )",
        )
        .map_err(err)?;
        let found: i64 = tx
            .query_opt("SELECT version FROM offersync_schema", &[])
            .map_err(err)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        if found > known {
            return Err(StoreError::TooNewAt {
                at: shown.clone(),
                found,
                known,
            });
        }
        for (version, sql) in PG_MIGRATIONS.iter().filter(|m| m.0 > found) {
            tx.batch_execute(sql).map_err(err)?;
            tx.execute(
                "INSERT INTO offersync_schema (one, version) VALUES (true, $1)
                 ON CONFLICT (one) DO UPDATE SET version = excluded.version",
                &[version],
            )
            .map_err(err)?;
            tracing::info!(db = %shown, version, "database migrated");
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.version()?.unwrap_or(0))
    }

    /// The mirror's own invariants (the server guards its pages itself): every offer has its
    /// `offer_seen` row and the other way round, every change and rejection belongs to a known
    /// run (the foreign keys SQLite checks on every write, see `schema.rs`). `ok` when they
    /// hold, else what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let row = self.client.borrow_mut().query_one(
            "SELECT (SELECT count(*) FROM offer_rows o
                     WHERE NOT EXISTS (SELECT 1 FROM offer_seen s WHERE s.offer_id = o.id)),
                    (SELECT count(*) FROM offer_seen s
                     WHERE NOT EXISTS (SELECT 1 FROM offer_rows o WHERE o.id = s.offer_id)),
                    (SELECT count(*) FROM offer_changes c
                     WHERE (c.offer_id IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM offer_rows o WHERE o.id = c.offer_id))
                        OR NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.id = c.run_id)),
                    (SELECT count(*) FROM offer_rejections j
                     WHERE NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.id = j.run_id))",
            &[],
        )?;
        let found: [(i64, &str); 4] = [
            (
                row.get(0),
                "offer(s) in offer_rows without an offer_seen row",
            ),
            (row.get(1), "offer_seen row(s) of offers not in offer_rows"),
            (row.get(2), "change(s) of an unknown offer or run"),
            (row.get(3), "rejection(s) of an unknown run"),
        ];
        let problems: Vec<String> = found
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        Ok(if problems.is_empty() {
            "ok".into()
        } else {
            problems.join("; ")
        })
    }

    /// A mapper from `postgres::Error` to this store's error (the redacted URL in it).
    pub(crate) fn err(&self) -> impl Fn(postgres::Error) -> StoreError + use<> {
        let at = self.shown.clone();
        move |source| StoreError::Pg {
            at: at.clone(),
            source,
        }
    }
}

/// The canonical columns of `offer_rows`, as text where the SQLite backend has text
/// (`numeric` and `jsonb` are cast back), in [`offer_from_row`]'s order.
pub(crate) const OFFER_COLUMNS: &str = "name, status, payout::text, currency, payout_type, revenue::text, \
    countries::text, platforms::text, categories::text, tracking_url, preview_url, advertiser, description, \
    icon_url, app_package, starts_at, ends_at, payouts::text, payout_unit, excluded_countries::text, approval, \
    caps::text";

/// The same columns prefixed with a table alias (`o.`), for joins.
pub(crate) fn offer_columns_of(alias: &str) -> String {
    OFFER_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rebuild an offer from [`OFFER_COLUMNS`] starting at column `at` of `r`.
pub(crate) fn offer_from_row(
    external_id: String,
    r: &postgres::Row,
    at: usize,
) -> std::result::Result<Offer, postgres::Error> {
    super::offer_from_columns(external_id, |i| r.try_get::<_, Option<String>>(at + i))
}

/// A PostgreSQL error as an operator reads it. The client's own `Display` says only "db error"
/// or "error connecting to server": this adds the server's message (with its detail, hint and
/// SQLSTATE), or the cause of a failed connection.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{} (SQLSTATE {})",
            db.to_string().replace('\n', "; "),
            db.code().code()
        );
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::sandbox::postgres::TestServer;

    pub(crate) use super::offers::twin::{offer, page, HOLDER};

    /// A migrated mirror in a schema of its own on the test server.
    pub fn fresh() -> Pg {
        let db = TestServer::global().fresh();
        Pg::open(
            &PgLocation {
                url: db.url,
                password: Some(db.password),
            },
            std::time::Duration::from_secs(10),
        )
        .expect("open a fresh PostgreSQL mirror")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_is_migrated_to_the_sqlite_version() {
        let mut pg = testing::fresh();
        assert_eq!(pg.integrity_check().unwrap(), "ok");
        // What the foreign keys SQLite has would refuse is found.
        pg.client
            .get_mut()
            .batch_execute(
                "INSERT INTO offer_seen (offer_id, last_run_id, last_seen_at) VALUES (999, 1, 'x');
                 INSERT INTO offer_rejections (run_id, source, reason, at) VALUES (42, 's', 'r', 'x');",
            )
            .unwrap();
        assert_eq!(
            pg.integrity_check().unwrap(),
            "1 offer_seen row(s) of offers not in offer_rows; 1 rejection(s) of an unknown run"
        );
        pg.client
            .get_mut()
            .batch_execute("DELETE FROM offer_seen; DELETE FROM offer_rejections;")
            .unwrap();
        assert_eq!(
            pg.schema_version().unwrap(),
            crate::store::sqlite::schema::MIGRATIONS.len() as i64
        );
        // Opening again migrates nothing and keeps the version.
        let n: i64 = pg
            .client
            .get_mut()
            .query_one("SELECT count(*) FROM offersync_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    }

    #[test]
    fn errors_say_what_the_server_said() {
        let db = crate::sandbox::postgres::TestServer::global().fresh();
        let at = |password: &str, url: &str| PgLocation {
            url: url.into(),
            password: Some(password.into()),
        };
        let timeout = std::time::Duration::from_secs(10);
        // A refused password: the server's words and its SQLSTATE, never the password.
        let msg = Pg::open(&at("not-the-password", &db.url), timeout)
            .err()
            .expect("a wrong password is refused")
            .to_string();
        assert!(
            msg.contains("password authentication failed") && msg.contains("28P01"),
            "{msg}"
        );
        assert!(!msg.contains("not-the-password"), "{msg}");
        // A statement the server rejects.
        let pg = Pg::open(&at(&db.password, &db.url), timeout).unwrap();
        let e = pg
            .client
            .borrow_mut()
            .query_one("SELECT * FROM no_such_table", &[])
            .unwrap_err();
        let msg = StoreError::from(e).to_string();
        assert!(
            msg.contains("relation \"no_such_table\" does not exist") && msg.contains("42P01"),
            "{msg}"
        );
        // No server: the cause of the failed connection.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let msg = Pg::open(
            &at(
                &db.password,
                &format!("postgres://offersync@127.0.0.1:{port}/postgres"),
            ),
            timeout,
        )
        .err()
        .expect("nothing listens there")
        .to_string();
        assert!(msg.contains("refused"), "{msg}");
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db.example:5432/offersync?sslmode=disable"),
            "postgres://bob:***@db.example:5432/offersync?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://bob@db.example/offersync"),
            "postgres://bob@db.example/offersync"
        );
        let shown = format!(
            "{:?}",
            PgLocation {
                url: "postgres://u:pw1@h/d".into(),
                password: Some("pw2".into())
            }
        );
        assert!(!shown.contains("pw1") && !shown.contains("pw2"), "{shown}");
    }
}
