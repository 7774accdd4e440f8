//! systemd notifications (`Type=notify`): READY when schedules are up, STATUS with the last run
//! of each source, WATCHDOG pings at half of `WATCHDOG_USEC`, RELOADING around a config reload
//! and STOPPING on shutdown. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
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
    send(&[NotifyState::Reloading, NotifyState::MonotonicUsec(usec)]);
}

/// Ping the watchdog at half the interval systemd asked for, if it asked.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        loop {
            send(&[NotifyState::Watchdog]);
            tokio::time::sleep(interval).await;
        }
    }))
}
