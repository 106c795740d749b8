//! `glint serve` under a fake systemd: NOTIFY_SOCKET points at a datagram socket the test binds;
//! the server must send READY=1 once it accepts requests, then STOPPING=1 on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_serve(notify_socket: &str, port: u16, data_dir: &std::path::Path) -> Child {
    Command::new(common::GLINT)
        .args([
            "serve",
            "--admin-listen",
            "off",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--threads",
            "1",
            "--ring-slots",
            "4096",
            "--io",
            "epoll",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("NOTIFY_SOCKET", notify_socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn glint serve")
}

/// The next datagram, within `limit`.
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Messages until one contains `want` (other assignments such as STATUS= may come between).
fn wait_for(socket: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match next_message(socket, left) {
            Some(msg) => {
                let hit = msg.lines().any(|l| l == want);
                seen.push(msg);
                if hit {
                    return true;
                }
            }
            None => return false,
        }
    }
    false
}

fn get_pixel(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect after READY=1");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /p.gif?e=ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn ready_then_stopping(socket: &UnixDatagram, notify_socket: &str, tag: &str) {
    let data_dir_tmp = common::tempdir(tag);
    let data_dir = data_dir_tmp.path();
    let port = free_port();
    let mut child = spawn_serve(notify_socket, port, data_dir);
    let mut seen = Vec::new();
    let ready = wait_for(socket, "READY=1", &mut seen);
    if !ready {
        let _ = child.kill();
        let mut log = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut log);
        panic!("no READY=1 within 20 s; got {seen:?}; server log:\n{log}");
    }
    // READY=1 promises bound listeners and recovered rings: a request must succeed at once.
    assert_eq!(get_pixel(port), "HTTP/1.1 200 OK");
    assert!(seen.iter().all(|m| !m.contains("STOPPING=1")), "{seen:?}");
    common::signal(&child, "-TERM");
    assert!(
        wait_for(socket, "STOPPING=1", &mut seen),
        "no STOPPING=1 after SIGTERM: {seen:?}"
    );
    let status = common::wait_bounded(&mut child, Duration::from_secs(20));
    assert!(status.success(), "glint serve exited with {status}");
    let _ = std::fs::remove_dir_all(data_dir);
}

#[test]
fn serve_notifies_ready_then_stopping_on_a_path_socket() {
    let tmp = common::tempdir("notify-path");
    let dir = tmp.path();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    ready_then_stopping(&socket, path.to_str().unwrap(), "notify-path-data");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_notifies_ready_then_stopping_on_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("glint-ops-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    ready_then_stopping(&socket, &format!("@{name}"), "notify-abstract-data");
}

#[test]
fn serve_runs_when_the_notify_socket_is_gone() {
    let data_dir_tmp = common::tempdir("notify-gone");
    let data_dir = data_dir_tmp.path();
    let port = free_port();
    let missing = data_dir.join("no-such.sock");
    let mut child = spawn_serve(missing.to_str().unwrap(), port, &data_dir.join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status_line = String::new();
    while Instant::now() < deadline {
        status_line = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => get_pixel(port),
            Err(_) => String::new(),
        };
        if !status_line.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    common::signal(&child, "-TERM");
    let status = common::wait_bounded(&mut child, Duration::from_secs(20));
    let mut log = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut log);
    assert!(status.success(), "exit {status}; log:\n{log}");
    let warnings = log.lines().filter(|l| l.contains("systemd notify")).count();
    assert_eq!(
        warnings, 1,
        "one warning for the failed notify, not one per message:\n{log}"
    );
    let _ = std::fs::remove_dir_all(data_dir);
}

#[test]

fn serve_feeds_the_watchdog_while_idle() {
    let tmp = common::tempdir("notify-watchdog");
    let dir = tmp.path();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let port = free_port();
    let mut child = Command::new(common::GLINT)
        .args([
            "serve",
            "--admin-listen",
            "off",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--threads", "2", "--ring-slots", "4096", "--data-dir"])
        .arg(dir.join("data"))
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(wait_for(&socket, "READY=1", &mut seen), "{seen:?}");
    // Idle workers must still prove they are alive: at least 3 pings in 2 s at a 400 ms period.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) {
        match next_message(&socket, Duration::from_millis(500)) {
            Some(msg) if msg.lines().any(|l| l == "WATCHDOG=1") => pings += 1,
            Some(_) => {}
            None => break,
        }
    }
    common::signal(&child, "-TERM");
    let status = common::wait_bounded(&mut child, Duration::from_secs(20));
    assert!(
        pings >= 3,
        "{pings} WATCHDOG=1 in 2 s with WATCHDOG_USEC=400000"
    );
    assert!(status.success());
    let _ = std::fs::remove_dir_all(dir);
}
