//! systemd's notify protocol (`sd_notify(3)`), spoken directly over the `NOTIFY_SOCKET` datagram
//! socket: one datagram of newline-separated `KEY=VALUE` assignments per call.
//!
//! | call | datagram | when |
//! |---|---|---|
//! | [`ready`] | `READY=1` | every core's listeners are bound and its ring recovered |
//! | [`stopping`] | `STOPPING=1` | draining starts |
//! | [`watchdog`] | `WATCHDOG=1` | every [`watchdog_interval`] / 2, only while every core makes progress |
//! | [`status`] | `STATUS=...` | free text shown by `systemctl status` |
//!
//! For `WatchdogSec=`, each worker bumps a progress counter from its loop (at least once a
//! second, e.g. on its Date tick), [`Heartbeats`] reads those counters, and [`spawn_watchdog`]
//! sends `WATCHDOG=1` only while every core's counter moves: a stuck core stops the pings and
//! systemd restarts the service.
//!
//! `NOTIFY_SOCKET` is a filesystem path (`/run/systemd/notify`) or, with a leading `@`, a
//! Linux abstract socket name. Every call is a no-op when the variable is unset (not under
//! systemd), never panics, and logs a failed send once instead of on every watchdog tick.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Tells systemd the service is ready (`Type=notify` start-up completes).
pub fn ready() {
    notify("READY=1");
}

/// Tells systemd the service is stopping (shown as "deactivating" while glint drains).
pub fn stopping() {
    notify("STOPPING=1");
}

/// Feeds systemd's watchdog; without it for `WatchdogSec=`, systemd restarts the service.
pub fn watchdog() {
    notify("WATCHDOG=1");
}

/// Sets the one-line status `systemctl status` shows; newlines become spaces.
pub fn status(text: &str) {
    let line: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    notify(&format!("STATUS={line}"));
}

/// The watchdog period systemd expects (`WatchdogSec=`), or `None` when there is none or it
/// is meant for another process (`WATCHDOG_PID`). Send [`watchdog`] at half this period.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?;
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(&usec, pid.as_deref(), std::process::id())
}

/// Parses `WATCHDOG_USEC` and `WATCHDOG_PID` as `sd_watchdog_enabled(3)` does.
pub fn parse_watchdog(usec: &str, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != my_pid {
            return None;
        }
    }
    match usec.trim().parse::<u64>().ok()? {
        0 => None,
        us => Some(Duration::from_micros(us)),
    }
}

/// How the watchdog reads the workers' progress counters (bumped by each core's once-a-second
/// timer); only the watchdog thread reads them.
pub struct Heartbeats {
    cores: usize,
    read: Box<dyn Fn(usize) -> u64 + Send + Sync>,
    /// Counters of its own ([`Heartbeats::new`]), moved by [`Heartbeats::beat`].
    own: Arc<[AtomicU64]>,
}

impl Heartbeats {
    /// Watches `cores` counters; `read(core)` is core's current count.
    pub fn of(
        cores: usize,
        read: impl Fn(usize) -> u64 + Send + Sync + 'static,
    ) -> Arc<Heartbeats> {
        Arc::new(Heartbeats {
            cores,
            read: Box::new(read),
            own: Arc::new([]),
        })
    }

    /// Counters of its own for `cores` cores, moved by [`Heartbeats::beat`] (tests).
    pub fn new(cores: usize) -> Arc<Heartbeats> {
        let own: Arc<[AtomicU64]> = (0..cores).map(|_| AtomicU64::new(0)).collect();
        let counters = own.clone();
        Arc::new(Heartbeats {
            cores,
            read: Box::new(move |core| counters[core].load(Ordering::Relaxed)),
            own,
        })
    }

    /// Records progress of worker `core` on the counters of [`Heartbeats::new`].
    pub fn beat(&self, core: usize) {
        if let Some(counter) = self.own.get(core) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The cores whose counter has not moved since the previous call; `seen` keeps the counts.
    pub fn stalled(&self, seen: &mut Vec<u64>) -> Vec<usize> {
        seen.resize(self.cores, u64::MAX);
        let mut stalled = Vec::new();
        for (core, last) in seen.iter_mut().enumerate() {
            let now = (self.read)(core);
            if now == *last {
                stalled.push(core);
            }
            *last = now;
        }
        stalled
    }
}

/// Stops the watchdog thread when dropped.
pub struct WatchdogHandle {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WatchdogHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// When systemd asked for a watchdog ([`watchdog_interval`]) and `NOTIFY_SOCKET` is set, starts
/// a thread that every half interval sends `WATCHDOG=1` if every core beat since the last check,
/// and logs the stalled cores otherwise. `None` when there is no watchdog to feed.
pub fn spawn_watchdog(heartbeats: Arc<Heartbeats>) -> Option<WatchdogHandle> {
    let period = watchdog_interval()? / 2;
    let socket = std::env::var_os("NOTIFY_SOCKET")?;
    // Cores beat once a second: judge them over a window that always holds a beat.
    spawn_watchdog_to(socket, period, period.max(HEARTBEAT_WINDOW), heartbeats)
}

/// How long a core may go without a heartbeat before it counts as stuck (it beats every second).
pub const HEARTBEAT_WINDOW: Duration = Duration::from_millis(2500);

/// [`spawn_watchdog`] with an explicit socket, ping period and stall window: pings go out every
/// `period` as long as every core beat within the last completed `window`.
pub fn spawn_watchdog_to(
    socket: std::ffi::OsString,
    period: Duration,
    window: Duration,
    heartbeats: Arc<Heartbeats>,
) -> Option<WatchdogHandle> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("glint-watchdog".into())
        .spawn(move || {
            let mut seen = Vec::new();
            heartbeats.stalled(&mut seen);
            let mut warned = false;
            let mut checked = std::time::Instant::now();
            let mut stalled = Vec::new();
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                if checked.elapsed() >= window {
                    stalled = heartbeats.stalled(&mut seen);
                    checked = std::time::Instant::now();
                }
                if stalled.is_empty() {
                    if let Err(e) = send_to(&socket, "WATCHDOG=1") {
                        if !std::mem::replace(&mut warned, true) {
                            crate::warn!("systemd watchdog: {e}");
                        }
                    }
                } else {
                    crate::error!("watchdog: cores {stalled:?} made no progress in {window:?}; not telling systemd we are alive");
                }
            }
        })
        .ok()?;
    Some(WatchdogHandle {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Sends `message` to `$NOTIFY_SOCKET` if it is set; logs the first failure only.
fn notify(message: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&socket, message) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            crate::warn!(
                "systemd notify to {}: {e} (further failures are not logged)",
                socket.to_string_lossy()
            );
        }
    }
}

/// Sends one notify datagram to `socket`: a path, or `@name` for an abstract socket.
pub fn send_to(socket: &OsStr, message: &str) -> io::Result<()> {
    let name = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    let sent = match name.first() {
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name[1..])?;
            sock.send_to_addr(message.as_bytes(), &addr)?
        }
        Some(b'/') => sock.send_to(message.as_bytes(), socket)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an @abstract name",
            ))
        }
    };
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", message.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::SocketAddr;
    use std::path::PathBuf;

    /// A socket path `notify` in a fresh directory, removed when the returned guard drops.
    fn temp_socket_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        (dir, path)
    }

    fn recv(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).expect("datagram within 5 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let (_dir, path) = temp_socket_path();
        let listener = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        send_to(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(recv(&listener), "READY=1");
        assert_eq!(recv(&listener), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("glint-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(OsStr::new(&format!("@{name}")), "WATCHDOG=1").unwrap();
        assert_eq!(recv(&listener), "WATCHDOG=1");
    }

    #[test]
    fn missing_listener_and_bad_names_are_errors_not_panics() {
        let (_dir, path) = temp_socket_path();
        assert!(send_to(path.as_os_str(), "READY=1").is_err());
        assert!(send_to(OsStr::new("relative/notify"), "READY=1").is_err());
        assert!(send_to(OsStr::new(""), "READY=1").is_err());
    }

    #[test]
    fn heartbeats_report_cores_that_did_not_move() {
        let hb = Heartbeats::new(3);
        let mut seen = Vec::new();
        assert_eq!(
            hb.stalled(&mut seen),
            Vec::<usize>::new(),
            "first look sets the baseline"
        );
        hb.beat(0);
        hb.beat(2);
        hb.beat(7);
        assert_eq!(hb.stalled(&mut seen), vec![1]);
        assert_eq!(hb.stalled(&mut seen), vec![0, 1, 2]);
    }

    #[test]
    fn watchdog_pings_only_while_every_core_beats() {
        let (_dir, path) = temp_socket_path();
        let listener = UnixDatagram::bind(&path).unwrap();
        let hb = Heartbeats::new(2);
        let period = Duration::from_millis(50);
        let handle =
            spawn_watchdog_to(path.clone().into_os_string(), period, period, hb.clone()).unwrap();
        let beat_for = |cores: &[usize], time: Duration| {
            let start = std::time::Instant::now();
            while start.elapsed() < time {
                cores.iter().for_each(|&c| hb.beat(c));
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        beat_for(&[0, 1], period * 8);
        let pings = drain(&listener);
        assert!(
            pings >= 2,
            "{pings} pings in 8 periods while both cores beat"
        );
        // Core 1 gets stuck: one check may still see its last beat, none after that.
        beat_for(&[0], period * 10);
        drain(&listener);
        beat_for(&[0], period * 6);
        assert_eq!(drain(&listener), 0, "pinged although core 1 is stuck");
        drop(handle);
    }

    /// Counts the datagrams waiting, checking each is a watchdog ping.
    fn drain(listener: &UnixDatagram) -> usize {
        listener.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(len) = listener.recv(&mut buf) {
            assert_eq!(&buf[..len], b"WATCHDOG=1");
            n += 1;
        }
        listener.set_nonblocking(false).unwrap();
        n
    }

    #[test]
    fn watchdog_interval_follows_sd_watchdog_enabled() {
        assert_eq!(
            parse_watchdog("30000000", None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog("500000", Some("7"), 7),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_watchdog("500000", Some("8"), 7), None);
        assert_eq!(parse_watchdog("0", None, 7), None);
        assert_eq!(parse_watchdog("soon", None, 7), None);
        assert_eq!(parse_watchdog("500000", Some("x"), 7), None);
    }
}
