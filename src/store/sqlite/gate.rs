//! One writer at a time per database file within this process, in turn, instead of SQLite's
//! busy handler.
//!
//! SQLite admits one write transaction at a time. A connection that finds the write lock taken
//! sleeps in its busy handler (1, 2, 5, 10, ... 100 ms) and tries again; it is not woken when
//! the lock is released. With several runs writing at once (`max_concurrent_sources`), their
//! writers spent much of their time asleep while the lock was free: in the bench's fleet case
//! (200 sources, 4 at a time) the four writers slept 14 s in their busy handlers during a
//! first sync of 6 s. So every write of this
//! process first takes its turn at the file's [`Gate`], a queue in memory whose holder hands
//! the turn on the moment its transaction ends; the busy handler is left with what it is for,
//! other processes (a `--once` beside the daemon, `sqlite3`, another host's share of nothing).
//!
//! The gate only orders this process's writers; SQLite's lock still decides. A writer that has
//! waited `busy_timeout` for its turn goes on without one (SQLite's own wait, and its `busy`
//! error, then decide), so a writer that never gives its turn back (a nested write on a second
//! connection in one thread) costs a delay, never a hang.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Gate {
    taken: Mutex<bool>,
    freed: Condvar,
}

/// The gates of the files this process has opened, by canonical path.
static GATES: LazyLock<Mutex<HashMap<PathBuf, Arc<Gate>>>> = LazyLock::new(Default::default);

impl Gate {
    /// The gate of the file at `path` (the same for every connection of this process to it).
    pub(crate) fn of(path: &Path) -> Arc<Gate> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(key).or_default().clone()
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
}
