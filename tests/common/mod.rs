//! The one home of the integration tests' shared helpers (`mod common;` in each test): here a
//! `glint serve` child on an ephemeral loopback port and a raw HTTP client over a real socket;
//! one submodule per area (headless Chromium over CDP, compactor, decoder, load generator, the
//! haproxy/Kafka/lake tools, the Prometheus checker). Data files (fixtures) live in
//! `tests/fixtures/`.
#![allow(dead_code)]

pub mod chromium;
pub mod compact;
pub mod decode;
pub mod haproxy;
pub mod kafka;
pub mod lake;
pub mod loadgen;
pub mod prometheus;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GLINT: &str = env!("CARGO_BIN_EXE_glint");

/// Instantiates each listed `fn name(io: &str)` as a test for every I/O backend:
/// `epoll::name` and `uring::name`. Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod epoll {
            $(#[test] fn $name() { super::$name("epoll") })*
        }
        mod uring {
            $(#[test] fn $name() { super::$name("uring") })*
        }
    };
}

/// Also runs the tests on the io_uring backend with one recv per request, the path of kernels
/// without multishot recv (Linux 5.19), forced by `GLINT_URING_SINGLE_RECV=1`
/// ([`Server::start`] turns `--io uring-single-recv` into that).
#[allow(unused_macros)]
macro_rules! and_single_recv {
    ($($name:ident),* $(,)?) => {
        mod uring_single_recv {
            $(#[test] fn $name() { super::$name(crate::common::URING_SINGLE_RECV) })*
        }
    };
}

/// [`for_each_backend`] and [`and_single_recv`] over the same tests.
#[allow(unused_macros)]
macro_rules! for_each_backend_and_single_recv {
    ($($name:ident),* $(,)?) => {
        for_each_backend!($($name),*);
        and_single_recv!($($name),*);
    };
}

/// The `--io` value [`Server::start`] runs as `--io uring` with `GLINT_URING_SINGLE_RECV=1`.
#[allow(dead_code)]
pub const URING_SINGLE_RECV: &str = "uring-single-recv";

/// The `n`-th client address the generated records come from: `::ffff:198.51.100.(n % 250)`
/// (TEST-NET-2, IPv4-mapped as records store it).
pub fn test_net_peer(n: u64) -> std::net::Ipv6Addr {
    std::net::Ipv4Addr::new(198, 51, 100, (n % 250) as u8).to_ipv6_mapped()
}

/// A fresh directory `glint-TAG-*` under the system temp dir, removed when dropped.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("glint-{tag}-"))
        .tempdir()
        .unwrap()
}

/// A running `glint serve` child; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The admin listener's address, when it is on.
    pub admin: Option<SocketAddr>,
}

impl Server {
    /// Starts `glint serve` on 127.0.0.1:0 with small rings, plus `extra` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(GLINT);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        // Port 0 for the admin listener too: tests run in parallel, and 9100 may be taken.
        let defaults = [
            ("--ring-slots", "4096"),
            ("--threads", "2"),
            ("--admin-listen", "127.0.0.1:0"),
        ];
        for (flag, default) in defaults {
            if !extra.contains(&flag) {
                cmd.args([flag, default]);
            }
        }
        let single_recv = extra.windows(2).any(|w| w == ["--io", URING_SINGLE_RECV]);
        if single_recv {
            cmd.env("GLINT_URING_SINGLE_RECV", "1");
        }
        let extra = extra
            .iter()
            .map(|a| if *a == URING_SINGLE_RECV { "uring" } else { a });
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn glint serve");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Log first: a test may read the log as soon as the address arrives.
                let addr = line
                    .strip_prefix("info: listening on ")
                    .map(|rest| rest.split([',', ' ']).next().unwrap().to_string());
                log2.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("glint serve did not start: {:?}", log.lock().unwrap());
            }
        };
        if single_recv {
            let give_up = std::time::Instant::now() + Duration::from_secs(5);
            let switched = || {
                let lines = log.lock().unwrap();
                lines.iter().any(|l| l.contains("one recv per request"))
            };
            while !switched() && std::time::Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(switched(), "GLINT_URING_SINGLE_RECV did not take");
        }
        let admin = log.lock().unwrap().iter().find_map(|l| {
            l.split("admin listening on ")
                .nth(1)
                .and_then(|r| r.split(' ').next()?.parse().ok())
        });
        Server {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
            admin,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, libc_sigterm());
        wait_bounded(&mut self.child, Duration::from_secs(20))
    }

    /// SIGKILL, then reaps.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libc_sigterm() -> &'static str {
    "-TERM"
}

pub fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status();
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `stream` (buffered bytes carried in `pending`). `head_only` for HEAD.
pub fn read_response(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    head_only: bool,
) -> Option<Response> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = resp.parse(pending) {
            let status = resp.code.unwrap();
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len = if head_only || status == 204 || status == 100 {
                0
            } else {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse::<usize>().unwrap())
            };
            while pending.len() < n + len {
                let mut buf = [0u8; 4096];
                let got = stream.read(&mut buf).ok()?;
                if got == 0 {
                    return None;
                }
                pending.extend_from_slice(&buf[..got]);
            }
            let body = pending[n..n + len].to_vec();
            pending.drain(..n + len);
            return Some(Response {
                status,
                headers,
                body,
            });
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(got) => pending.extend_from_slice(&buf[..got]),
        }
    }
}

/// Sends raw bytes and reads one response.
pub fn roundtrip(stream: &mut TcpStream, raw: &[u8]) -> Option<Response> {
    stream.write_all(raw).unwrap();
    read_response(stream, &mut Vec::new(), raw.starts_with(b"HEAD"))
}

/// Whether the server closed the connection (EOF within the read timeout).
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Every valid record in every ring of `data_dir`, as (core, seq, target, ua, referer, peer port).
pub fn ring_records(data_dir: &Path) -> Vec<RecordRow> {
    let mut out = Vec::new();
    let mut rings: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "glr"))
        .collect();
    rings.sort();
    for path in rings {
        let mut reader = glint::ring::RingReader::open(&path).unwrap();
        let range = reader.valid_range();
        let mut seq = range.start;
        while seq < range.end {
            let r = reader.read(seq).unwrap();
            seq = r.seqs().end;
            out.push(RecordRow {
                core: r.core(),
                seq: r.seq(),
                status: r.status(),
                method: r.method().as_str().to_string(),
                target: r.target().to_vec(),
                ua: r.user_agent().to_vec(),
                referer: r.referer().to_vec(),
                body: r.body().to_vec(),
                peer: glint::record::ip_from_v6(r.peer_ip()),
                peer_port: r.peer_port(),
                flags: r.flags(),
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub core: u16,
    pub seq: u64,
    pub status: u16,
    pub method: String,
    pub target: Vec<u8>,
    pub ua: Vec<u8>,
    pub referer: Vec<u8>,
    pub body: Vec<u8>,
    pub peer: std::net::IpAddr,
    pub peer_port: u16,
    pub flags: u32,
}

/// Runs `glint decode --format jsonl [extra] DIR` and parses every line.
pub fn decode_jsonl(dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(GLINT)
        .args(["decode", "--format", "jsonl"])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Runs `glint compact --once --data-dir DIR [extra]` and asserts that it succeeded.
pub fn compact_once(dir: &Path, extra: &[&str]) -> std::process::Output {
    let out = Command::new(GLINT)
        .args(["compact", "--once", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compact: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
