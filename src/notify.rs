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
//! `NOTIFY_SOCKET` is a filesystem path (`/run/systemd/notify`) or, with a leading `@`, a
//! Linux abstract socket name. Every call is a no-op when the variable is unset (not under
//! systemd), never panics, and logs a failed send once instead of on every watchdog tick.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
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

    fn temp_socket_path(tag: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("glint-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
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
        let path = temp_socket_path("path");
        let listener = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        send_to(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(recv(&listener), "READY=1");
        assert_eq!(recv(&listener), "STOPPING=1");
        let _ = std::fs::remove_file(&path);
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
        let path = temp_socket_path("absent");
        assert!(send_to(path.as_os_str(), "READY=1").is_err());
        assert!(send_to(OsStr::new("relative/notify"), "READY=1").is_err());
        assert!(send_to(OsStr::new(""), "READY=1").is_err());
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
