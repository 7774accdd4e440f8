//! systemd notifications (`Type=notify`): READY when schedules are up, STATUS with the last run
//! of each source, WATCHDOG pings at half of `WATCHDOG_USEC`, RELOADING around a config reload
//! and STOPPING on shutdown. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent.
//!
//! `sd_notify` writes to a datagram socket and blocks when the receiver's queue is full, so the
//! messages go through a bounded queue to one thread of their own: a slow or stuck receiver
//! never stalls the runtime (a STATUS line that does not fit is dropped; the next one says the
//! same, newer).

use sd_notify::NotifyState;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

enum Message {
    Ready(String),
    Status(String),
    Stopping,
    Reloading(i128),
    Watchdog,
    /// Answered once everything queued before it was written.
    Flush(std::sync::mpsc::Sender<()>),
}

fn deliver(m: &Message) {
    let states: Vec<NotifyState<'_>> = match m {
        Message::Ready(s) => vec![NotifyState::Ready, NotifyState::Status(s)],
        Message::Status(s) => vec![NotifyState::Status(s)],
        Message::Stopping => vec![NotifyState::Stopping, NotifyState::Status("stopping")],
        Message::Reloading(usec) => {
            vec![NotifyState::Reloading, NotifyState::MonotonicUsec(*usec)]
        }
        Message::Watchdog => vec![NotifyState::Watchdog],
        Message::Flush(done) => {
            let _ = done.send(());
            return;
        }
    };
    if let Err(e) = sd_notify::notify(&states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn queue() -> Option<&'static SyncSender<Message>> {
    static QUEUE: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            std::env::var_os("NOTIFY_SOCKET")?;
            let (tx, rx) = sync_channel::<Message>(64);
            std::thread::Builder::new()
                .name("sd-notify".into())
                .spawn(move || {
                    for m in rx {
                        deliver(&m);
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

fn send(m: Message) {
    let Some(q) = queue() else {
        return;
    };
    match q.try_send(m) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::debug!("the systemd notification queue is full (the receiver is not reading); message dropped")
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

pub fn ready(status: &str) {
    send(Message::Ready(status.to_string()));
}

pub fn status(status: &str) {
    send(Message::Status(status.to_string()));
}

pub fn stopping() {
    send(Message::Stopping);
}

/// RELOADING with the monotonic time systemd asks for (`Type=notify-reload` requires it).
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as i128 * 1_000_000 + ts.tv_nsec as i128 / 1_000;
    send(Message::Reloading(usec));
}

/// Ping the watchdog at half the interval systemd asked for, if it asked.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        loop {
            send(Message::Watchdog);
            tokio::time::sleep(interval).await;
        }
    }))
}

/// Wait (at most `limit`) until the queued messages are written: the last STOPPING before the
/// process exits.
pub fn flush(limit: std::time::Duration) {
    let (done, written) = std::sync::mpsc::channel();
    send(Message::Flush(done));
    let _ = written.recv_timeout(limit);
}
