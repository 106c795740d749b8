//! Slow, idle and greedy clients, connection caps, descriptor exhaustion and unusable disks.

#[macro_use]
mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

for_each_backend_and_single_recv!(
    trickled_head_gets_408_at_the_head_deadline_not_later,
    idle_keep_alive_connection_is_closed,
    slowloris_flood_does_not_starve_good_clients,
    connection_cap_closes_new_connections_and_keeps_old_ones,
    pipeliner_that_does_not_read_is_back_pressured_and_answered_in_order,
    descriptor_exhaustion_backs_off_instead_of_spinning_and_recovers,
);

fn start(data_dir: &Path, io: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--io", io];
    args.extend_from_slice(extra);
    Server::start(data_dir, &args)
}

fn trickled_head_gets_408_at_the_head_deadline_not_later(io: &str) {
    let tmp = tempdir("slowhead");
    let server = start(tmp.path(), io, &["--head-timeout", "1s"]);
    let mut s = server.connect();
    s.write_all(b"GET /p.gif HTTP/1.1\r\nHost: a\r\n").unwrap();
    let started = Instant::now();
    let mut pending = Vec::new();
    // Keep trickling header bytes: they must not extend the deadline.
    let mut answer = None;
    for i in 0..40 {
        if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(250)))
            .unwrap();
        if let Some(r) = read_response(&mut s, &mut pending, false) {
            answer = Some(r);
            break;
        }
    }
    let r = answer.expect("no 408 within 10 s");
    assert_eq!(r.status, 408);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "deadline extended by trickling: {:?}",
        started.elapsed()
    );
    assert!(closed_by_server(&mut s));
}

fn idle_keep_alive_connection_is_closed(io: &str) {
    let tmp = tempdir("idle");
    let server = start(tmp.path(), io, &["--idle-timeout", "1s"]);
    let mut s = server.connect();
    assert_eq!(
        roundtrip(&mut s, b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .status,
        200
    );
    let started = Instant::now();
    assert!(closed_by_server(&mut s));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

fn slowloris_flood_does_not_starve_good_clients(io: &str) {
    let tmp = tempdir("slowloris");
    let server = start(tmp.path(), io, &["--head-timeout", "3s", "--threads", "1"]);
    let mut slow: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n").unwrap();
            s
        })
        .collect();
    let mut good = server.connect();
    for i in 0..500 {
        let r = roundtrip(
            &mut good,
            format!("GET /good?i={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200);
    }
    // Every slow connection is answered 408 and closed once its deadline passes.
    for s in slow.iter_mut().step_by(50) {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let r = read_response(s, &mut Vec::new(), false).expect("slow connection never timed out");
        assert_eq!(r.status, 408);
    }
}

fn connection_cap_closes_new_connections_and_keeps_old_ones(io: &str) {
    let tmp = tempdir("cap");
    let server = start(tmp.path(), io, &["--max-conns", "8", "--threads", "1"]);
    let mut held: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
    for s in held.iter_mut() {
        assert_eq!(
            roundtrip(s, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .status,
            200
        );
    }
    let mut extra = server.connect();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        closed_by_server(&mut extra),
        "a connection beyond the cap was served"
    );
    assert_eq!(
        roundtrip(&mut held[0], b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .status,
        200
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let mut later = server.connect();
    assert_eq!(
        roundtrip(&mut later, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .status,
        200
    );
}

fn pipeliner_that_does_not_read_is_back_pressured_and_answered_in_order(io: &str) {
    let tmp = tempdir("greedy");
    let server = start(tmp.path(), io, &["--threads", "1"]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let n = 3000;
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for i in 0..n {
                w.write_all(format!("GET /g?i={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                    .unwrap();
            }
        })
    };
    // Read nothing for a while: the server must stop reading rather than buffer without bound.
    std::thread::sleep(Duration::from_millis(300));
    let mut pending = Vec::new();
    for _ in 0..n {
        assert_eq!(
            read_response(&mut s, &mut pending, false).unwrap().status,
            200
        );
    }
    writer.join().unwrap();
    drop(s);
    assert!(server.stop().success());
    let targets: Vec<Vec<u8>> = ring_records(&dir).into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        (0..n)
            .map(|i| format!("/g?i={i}").into_bytes())
            .collect::<Vec<_>>()
    );
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn descriptor_exhaustion_backs_off_instead_of_spinning_and_recovers(io: &str) {
    let tmp = tempdir("emfile");
    let dir = tmp.path();
    // bash sets the limit for the server alone: 40 descriptors leave room for ~25 connections.
    // Started through bash, so the single-recv io_uring path is set up here, not by Server.
    let single_recv = io == URING_SINGLE_RECV;
    let io = if single_recv { "uring" } else { io };
    let cmd = format!("ulimit -n 40 && exec {GLINT} serve --io {io} --threads 1 --admin-listen off --listen 127.0.0.1:0 --ring-slots 1024 --data-dir {}", dir.display());
    let mut child = KillOnDrop(
        std::process::Command::new("bash")
            .args(["-c", &cmd])
            .envs(single_recv.then_some(("GLINT_URING_SINGLE_RECV", "1")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix("info: listening on ") {
                let _ = tx.send(rest.split([',', ' ']).next().unwrap().to_string());
            }
            log2.lock().unwrap().push_str(&line);
        }
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap()
        .parse()
        .unwrap();
    let conns: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(child.0.id());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(child.0.id()) - before;
    // Clock ticks are 1/100 s: a spinning accept loop would burn ~100 in one second.
    assert!(
        spent < 30,
        "server burned {spent} ticks/s while out of descriptors"
    );
    assert!(
        log.lock().unwrap().contains("Too many open files"),
        "EMFILE never happened: {}",
        log.lock().unwrap()
    );
    drop(conns);
    let mut answered = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            if roundtrip(&mut s, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .is_some_and(|r| r.status == 200)
            {
                answered = true;
                break;
            }
        }
    }
    drop(child);
    assert!(
        answered,
        "server did not recover after descriptors came back"
    );
}

#[test]
fn ring_that_cannot_be_preallocated_is_a_clear_startup_error() {
    let tmp = tempdir("nospace");
    let dir = tmp.path();
    let out = std::process::Command::new(GLINT)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            // 2 TiB: a valid geometry (under the 4 TiB file bound) no test disk can hold.
            "--slot-size",
            "4096",
            "--ring-slots",
            &(1u64 << 29).to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot preallocate") && err.contains("ring-000.glr"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    assert!(
        std::fs::read_dir(dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "temp file left behind"
    );
}

#[test]
fn target_limit_that_cannot_fit_in_the_head_limit_is_a_clear_startup_error() {
    let tmp = tempdir("target-fit");
    let out = std::process::Command::new(GLINT)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        .args([
            "--max-target",
            "9000",
            "--max-head-size",
            "8192",
            "--data-dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("--max-target 9000 does not fit in --max-head-size 8192")
            && err.contains("at least 9064"),
        "{err}"
    );
}

/// Kills and reaps the child however the test ends, so no server outlives a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
