//! A tiny HTTP/1.1 test server for the loadgen tests: answers each request with a status
//! chosen from its `rid` query parameter, and can stall, close mid-response or answer chunked.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Answer(u16),
    /// Sleep, then answer 200.
    Stall(Duration),
    /// Send half a 200 answer, then close the connection.
    CloseMidResponse,
    /// A chunked 200 answer (the load generator does not support chunked answers).
    Chunked,
}

/// Decides the action from the request's `rid` (if any) and its arrival number (from 0).
pub type Policy = fn(rid: Option<u64>, nth: u64) -> Action;

#[derive(Default)]
pub struct Record {
    /// `rid`s of requests whose 2xx answer was written completely.
    pub ok_ids: Vec<u64>,
    /// Complete answers written, by status.
    pub by_status: HashMap<u16, u64>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    pub fn start(policy: Policy) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(AtomicU64::new(0));
        let (rec, st) = (record.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: the test process ends long before this, and `stop` ends it earlier.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !st.load(SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (rec, st, arr) = (rec.clone(), st.clone(), arrivals.clone());
                        std::thread::spawn(move || serve_conn(conn, policy, &rec, &st, &arr));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => break,
                }
            }
        });
        TestServer { addr, record, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}

fn serve_conn(
    mut conn: TcpStream,
    policy: Policy,
    record: &Mutex<Record>,
    stop: &AtomicBool,
    arrivals: &AtomicU64,
) {
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    while !stop.load(SeqCst) {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let mut out = Vec::new();
        let mut done = Vec::new();
        while let Some((len, rid)) = next_request(&buf) {
            buf.drain(..len);
            let action = policy(rid, arrivals.fetch_add(1, SeqCst));
            let status = match action {
                Action::Answer(s) => s,
                Action::Stall(d) => {
                    std::thread::sleep(d);
                    200
                }
                Action::CloseMidResponse => {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
                    let _ = conn.write_all(&out);
                    finish(record, &done);
                    return;
                }
                Action::Chunked => {
                    out.extend_from_slice(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                    );
                    continue;
                }
            };
            if status == 204 {
                out.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
            } else {
                out.extend_from_slice(
                    format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok").as_bytes(),
                );
            }
            done.push((status, rid));
        }
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            finish(record, &done);
        }
    }
}

fn finish(record: &Mutex<Record>, done: &[(u16, Option<u64>)]) {
    let mut r = record.lock().unwrap();
    for &(status, rid) in done {
        *r.by_status.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            if let Some(id) = rid {
                r.ok_ids.push(id);
            }
        }
    }
}

/// One complete request at the start of `buf`: its length and its `rid` parameter.
fn next_request(buf: &[u8]) -> Option<(usize, Option<u64>)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let body: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if buf.len() < head_end + body {
        return None;
    }
    let target = head.split(' ').nth(1).unwrap_or("");
    let rid = target
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("rid="))
        .and_then(|v| v.parse().ok());
    Some((head_end + body, rid))
}
