//! The writes of this process to one SQLite file: its writers take turns, and a thread of the
//! file's own copies the WAL back into the database (checkpoints, below) while they go on.
//!
//! SQLite admits one write transaction at a time. A connection that finds the write lock taken
//! sleeps in its busy handler (1, 2, 5, 10, ... 100 ms) and tries again; it is not woken when
//! the lock is released. With several runs writing at once (`max_concurrent_sources`), their
//! writers spent much of their time asleep while the lock was free: in the bench's fleet case
//! (200 sources, 4 at a time) the four writers slept 14 s in their busy handlers during a
//! first sync of 6 s. So every write of this process first takes its turn at the file's
//! [`Gate`], a queue in memory whose holder hands the turn on the moment its transaction ends;
//! the busy handler is left with what it is for: other processes (a `--once` beside the
//! daemon, `sqlite3`).
//!
//! The gate only orders this process's writers; SQLite's lock still decides. A writer that has
//! waited `busy_timeout` for its turn goes on without one (SQLite's own wait, and its `busy`
//! error, then decide), so a writer that never gives its turn back (a nested write on a second
//! connection in one thread) costs a delay, never a hang.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

pub(crate) struct Gate {
    taken: Mutex<bool>,
    freed: Condvar,
    /// The file, for the checkpointer's connection.
    path: PathBuf,
    /// The checkpointer's state: whether it runs, and whether a checkpoint is wanted.
    checkpoints: Mutex<Checkpoints>,
    wanted: Condvar,
}

#[derive(Default)]
struct Checkpoints {
    running: bool,
    wanted: bool,
    /// Asked to close its connection and end (see [`quiesce`]).
    stop: bool,
}

/// The gates of the files this process has open, by canonical path (a gate lives as long as a
/// connection or the checkpointer holds it).
static GATES: LazyLock<Mutex<HashMap<PathBuf, Weak<Gate>>>> = LazyLock::new(Default::default);

impl Gate {
    /// The gate of the file at `path` (the same for every connection of this process to it).
    pub(crate) fn of(path: &Path) -> Arc<Gate> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gate) = gates.get(&key).and_then(Weak::upgrade) {
            return gate;
        }
        gates.retain(|_, g| g.strong_count() > 0);
        let gate = Arc::new(Gate {
            taken: Mutex::new(false),
            freed: Condvar::new(),
            path: key.clone(),
            checkpoints: Mutex::default(),
            wanted: Condvar::new(),
        });
        gates.insert(key, Arc::downgrade(&gate));
        gate
    }

    /// Wait for this process's turn to write, at most `timeout`; `None` when the wait timed out
    /// (go on without a turn: SQLite's busy timeout decides).
    pub(crate) fn turn(self: &Arc<Gate>, timeout: Duration) -> Option<Turn> {
        let deadline = Instant::now() + timeout;
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        while *taken {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            taken = self
                .freed
                .wait_timeout(taken, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *taken = true;
        Some(Turn(self.clone()))
    }
}

/// A turn to write; the next writer's when dropped.
pub(crate) struct Turn(Arc<Gate>);

impl Drop for Turn {
    fn drop(&mut self) {
        *self.0.taken.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.0.freed.notify_one();
        if CHECKPOINT_WANTED.with(|w| w.replace(false)) {
            self.0.want_checkpoint();
        }
    }
}

// Checkpoints: copying the WAL's pages back into the database file.
//
// SQLite's default is that the connection whose commit takes the WAL past 1,000 pages copies
// them back itself, fsyncs and all, before its commit returns: on a first sync that was a
// tenth of the writer thread's time (perf), on the one thread of a run that cannot be
// parallel, and an fsync stall there stalls the sync. Instead, a writer's commit past
// `SOFT_FRAMES` asks the file's checkpointer thread (its own connection, started on demand,
// gone when idle or stopped by `quiesce`) for a PASSIVE checkpoint, which copies what it can
// while the writer goes on. Only a commit past `HARD_FRAMES` (the checkpointer did not keep
// up) checkpoints in the writer as before, which also lets the next transaction start the WAL
// from its beginning: the WAL stays bounded. A first sync of 100,000 offers took 1.32-1.77 s
// the old way and 1.15-1.23 s this way (10 runs each, alternating).

/// WAL pages after which a commit asks the checkpointer (SQLite's own default threshold).
const SOFT_FRAMES: i32 = 1000;
/// WAL pages after which the committing writer checkpoints itself (32 MiB of 4 KiB pages).
const HARD_FRAMES: i32 = 8000;
/// How long an idle checkpointer keeps its connection.
const CHECKPOINTER_IDLE: Duration = Duration::from_secs(5);

thread_local! {
    /// Set by [`wal_hook`] during a commit on this thread; taken when its turn is handed on.
    static CHECKPOINT_WANTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The WAL hook of a writer connection (replaces SQLite's automatic checkpoint); see above.
/// Never fails: the commit has happened whatever a checkpoint says.
pub(crate) fn wal_hook(
    wal: &rusqlite::hooks::Wal,
    frames: std::os::raw::c_int,
) -> rusqlite::Result<()> {
    if frames >= HARD_FRAMES {
        let _ = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE);
    } else if frames >= SOFT_FRAMES {
        CHECKPOINT_WANTED.with(|w| w.set(true));
    }
    Ok(())
}

impl Gate {
    fn want_checkpoint(self: &Arc<Gate>) {
        let mut c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        c.wanted = true;
        if c.running {
            self.wanted.notify_all();
            return;
        }
        c.running = true;
        let gate = self.clone();
        let started = std::thread::Builder::new()
            .name("offersync-checkpoint".into())
            .spawn(move || gate.checkpointer());
        if started.is_err() {
            // No thread: the writers' hard limit still checkpoints.
            c.running = false;
        }
    }

    /// The checkpointer: a PASSIVE checkpoint each time one is wanted, until idle or stopped.
    fn checkpointer(self: Arc<Gate>) {
        loop {
            self.checkpoint_until_idle();
            let mut c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
            if c.wanted && !c.stop {
                // Asked again while it closed its connection.
                continue;
            }
            c.running = false;
            c.stop = false;
            self.wanted.notify_all();
            return;
        }
    }

    /// One connection's worth of checkpoints; closes the connection before it returns (the
    /// file's last connection to close copies the whole WAL back and removes it).
    fn checkpoint_until_idle(&self) {
        let Ok(conn) = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) else {
            return;
        };
        let mut c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if c.stop {
                break;
            }
            if c.wanted {
                c.wanted = false;
                drop(c);
                // PASSIVE: never waits for readers or writers; what it cannot copy now, the
                // next one will. Errors (busy: another checkpoint) are the next one's business.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, db = %self.path.display(), "checkpoint");
                }
                c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let (next, timeout) = self
                .wanted
                .wait_timeout(c, CHECKPOINTER_IDLE)
                .unwrap_or_else(|e| e.into_inner());
            c = next;
            if timeout.timed_out() && !c.wanted {
                break;
            }
        }
        drop(c);
        drop(conn);
    }

    /// Stop this file's checkpointer and wait (at most `wait`) until its connection is closed.
    fn quiesce(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        if !c.running {
            return;
        }
        c.stop = true;
        self.wanted.notify_all();
        while c.running {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            c = self
                .wanted
                .wait_timeout(c, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Stop every checkpointer of this process, waiting at most `wait` for each: called when a
/// command is done, after its stores are closed, so that the last connection to close a file
/// copies its WAL back whole and removes it, and the database file alone is the mirror again.
pub(crate) fn quiesce(wait: Duration) {
    let gates: Vec<Arc<Gate>> = GATES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    for gate in gates {
        gate.quiesce(wait);
    }
}

/// A write transaction (`BEGIN IMMEDIATE`) with this process's turn at the file's gate: the
/// turn is handed on when the transaction ends (commit, or rollback when dropped).
pub(crate) struct WriteTx<'c> {
    // Declared first: dropped (rolled back) before the turn is handed on.
    tx: rusqlite::Transaction<'c>,
    _turn: Option<Turn>,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn begin(
        conn: &'c mut rusqlite::Connection,
        gate: &Arc<Gate>,
        timeout: Duration,
    ) -> rusqlite::Result<WriteTx<'c>> {
        let turn = gate.turn(timeout);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(WriteTx { tx, _turn: turn })
    }

    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        self.tx.commit()
    }
}

impl<'c> std::ops::Deref for WriteTx<'c> {
    type Target = rusqlite::Transaction<'c>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_of_one_file_take_turns_and_a_turn_is_handed_on_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.db"), b"").unwrap();
        let a = Gate::of(&dir.path().join("m.db"));
        let b = Gate::of(&dir.path().join(".").join("m.db"));
        assert!(Arc::ptr_eq(&a, &b), "one gate per file");
        let first = a.turn(Duration::from_secs(5)).expect("a free gate");
        // Taken: a second writer waits, here until it gives up.
        let started = Instant::now();
        assert!(b.turn(Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Handed on at once when the holder is done.
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            let turn = b.turn(Duration::from_secs(5));
            (turn.is_some(), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        let (got, waited) = waiter.join().unwrap();
        assert!(got);
        assert!(
            waited < Duration::from_secs(2),
            "woken, not timed out: {waited:?}"
        );
        // Another file has a gate of its own.
        let other = Gate::of(&dir.path().join("other.db"));
        assert!(other.turn(Duration::ZERO).is_some());
    }

    /// One transaction of about 1,500 WAL pages (6,000 rows in `filler`): past the soft limit,
    /// short of the hard one.
    fn fill(store: &mut super::super::Sqlite) {
        let tx = WriteTx::begin(&mut store.conn, &store.gate, store.busy).unwrap();
        tx.execute_batch(
            "CREATE TABLE filler (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
             INSERT INTO filler SELECT randomblob(900) FROM n;",
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn a_commit_past_the_soft_limit_is_checkpointed_by_the_files_own_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut store = super::super::Sqlite::open(&path, Duration::from_secs(5)).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        fill(&mut store);
        // The commit returned with the pages in the WAL; the file's checkpointer copies them.
        let checkpointer = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .any(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "offersync-check")
                })
        };
        let (mut started, deadline) = (false, Instant::now() + Duration::from_secs(10));
        while !(started && size() >= before + 5_000_000) && Instant::now() < deadline {
            started |= checkpointer();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(started, "the checkpointer thread was started");
        assert!(
            size() >= before + 5_000_000,
            "checkpointed into the file: {} bytes",
            size()
        );
        let n: i64 = store
            .conn
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6000);
    }

    #[test]
    fn a_stopped_checkpointer_closes_last_and_leaves_the_database_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut store = super::super::Sqlite::open(&path, Duration::from_secs(5)).unwrap();
        fill(&mut store);
        let gate = store.gate.clone();
        let running = || gate.checkpoints.lock().unwrap().running;
        // Wait until the checkpointer has copied the pages (its connection is open by then).
        let size = || std::fs::metadata(&path).unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while size() < 5_000_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(running(), "a checkpointer runs");
        // The command's store closes first: not the file's last connection, so the WAL stays.
        let wal = dir.path().join("m.db-wal");
        let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        drop(store);
        assert!(wal_len() > 0, "the checkpointer's connection keeps the WAL");
        // Stopped, the checkpointer closes last: the WAL is copied back and removed.
        gate.quiesce(Duration::from_secs(10));
        assert!(!running());
        assert_eq!(wal_len(), 0, "the WAL was copied back and removed");
        // The database file alone holds everything.
        let only = dir.path().join("copy.db");
        std::fs::copy(&path, &only).unwrap();
        let conn = rusqlite::Connection::open(&only).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6000);
    }
}
