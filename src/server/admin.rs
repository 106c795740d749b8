//! The admin listener: Prometheus metrics and a health check, on their own address (default
//! 127.0.0.1:9100), never on the public port.
//!
//! [`render`] writes the text exposition format 0.0.4 from every core's [`CoreStats`]. Label
//! values come from fixed sets only (core index, status class, reject reason, field name, io
//! backend, version), so a scrape's size is bounded whatever the traffic. [`spawn_admin`] runs
//! a small blocking HTTP/1.1 server on std threads, off the workers' cores' hot path.

use super::stats::CoreStats;
use crate::exposition::{family, label_value};
use crate::http::parse::Reject;
use crate::http::proxy::ProxyError;
use std::fmt::Write as _;
use std::io::{self, Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How full one core's ring is, in slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingOccupancy {
    /// Records written but not yet compacted.
    pub used: u64,
    pub capacity: u64,
}

/// What [`render`] needs besides the counters, gathered at scrape time.
#[derive(Debug, Clone, Default)]
pub struct AdminInfo {
    /// One entry per core, in core order.
    pub rings: Vec<RingOccupancy>,
}

/// Everything the admin thread reads. Shared with the main thread, which sets the flags.
pub struct AdminState {
    pub cores: Vec<Arc<CoreStats>>,
    /// `"uring"` or `"epoll"`.
    pub backend: &'static str,
    /// Ring occupancy of core `i`, read at each scrape.
    pub rings: Box<dyn Fn(usize) -> RingOccupancy + Send + Sync>,
    /// Shutdown has begun: `/healthz` answers 503.
    pub draining: AtomicBool,
    /// Set to stop the admin thread; it returns within about `POLL` plus one answer.
    pub stop: AtomicBool,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
}

impl AdminState {
    pub fn new(
        cores: Vec<Arc<CoreStats>>,
        backend: &'static str,
        rings: Box<dyn Fn(usize) -> RingOccupancy + Send + Sync>,
    ) -> AdminState {
        AdminState {
            cores,
            backend,
            rings,
            draining: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            idle_timeout: Duration::from_secs(5),
        }
    }

    fn info(&self) -> AdminInfo {
        AdminInfo {
            rings: (0..self.cores.len()).map(|i| (self.rings)(i)).collect(),
        }
    }
}

/// What an admin listener serves: the server's counters ([`AdminState`]) or another
/// process's (the shipper's).
pub trait AdminPage: Send + Sync + 'static {
    /// Appends the whole `/metrics` exposition (format 0.0.4).
    fn render_metrics(&self, out: &mut String);
    /// `/healthz` answers 503 while this is true.
    fn draining(&self) -> bool;
    /// The listener returns once this is true.
    fn stopped(&self) -> bool;
    /// A connection with no complete request for this long is closed.
    fn idle_timeout(&self) -> Duration;
}

impl AdminPage for AdminState {
    fn render_metrics(&self, out: &mut String) {
        render(out, &self.cores, self.backend, &self.info());
    }
    fn draining(&self) -> bool {
        self.draining.load(Relaxed)
    }
    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }
    fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

/// Reads one counter of a core.
pub type Read64 = fn(&CoreStats) -> u64;
type ReadRing = fn(&RingOccupancy) -> u64;

/// Per-core series with only a `core` label: (name, type, help, reader).
#[rustfmt::skip]
pub const PER_CORE: &[(&str, &str, &str, Read64)] = &[
    ("glint_records_written_total", "counter", "Records appended to the core's ring.", |s| s.sink.records.load(Relaxed)),
    ("glint_record_bytes_total", "counter", "Ring bytes taken by records (the slots each record took).", |s| s.sink.record_bytes.load(Relaxed)),
    ("glint_records_multi_slot_total", "counter", "Records that took more than one ring slot (see --slot-size).", |s| s.sink.multi_slot.load(Relaxed)),
    ("glint_ring_full_rejections_total", "counter", "Beacons refused with 503 because the ring was full.", |s| s.sink.ring_full.load(Relaxed)),
    ("glint_connections_open", "gauge", "Connections open now.", |s| s.conns.open.load(Relaxed)),
    ("glint_connections_accepted_total", "counter", "Connections accepted.", |s| s.conns.accepted.load(Relaxed)),
    ("glint_connections_refused_total", "counter", "Connections closed at once because the core was at --max-conns.", |s| s.conns.refused.load(Relaxed)),
    ("glint_accept_errors_total", "counter", "accept() failures.", |s| s.conns.accept_errors.load(Relaxed)),
    ("glint_msync_errors_total", "counter", "Failed msync of ring records; their answers were withheld.", |s| s.sink.msync_errors.load(Relaxed)),
    ("glint_request_timeouts_total", "counter", "Connections closed with 408 because a request took too long to arrive.", |s| s.http.request_timeouts.load(Relaxed)),
    ("glint_idle_timeouts_total", "counter", "Kept-alive connections closed after the idle timeout.", |s| s.http.idle_timeouts.load(Relaxed)),
    ("glint_redirects_refused_total", "counter", "Click redirects refused: target host not in --redirect-allow.", |s| s.http.redirects_refused.load(Relaxed)),
    ("glint_gpc_dropped_total", "counter", "Hits with Sec-GPC: 1 answered but not stored (--honor-gpc drop).", |s| s.http.gpc_dropped.load(Relaxed)),
];

const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// A counter family with a `core` label and one more label taking each of `values`;
/// `read(stats, i)` is the count for `values[i]`.
fn labelled_counter(
    out: &mut String,
    cores: &[Arc<CoreStats>],
    (name, help): (&str, &str),
    key: &str,
    values: &[&str],
    read: impl Fn(&CoreStats, usize) -> u64,
) {
    family(out, name, "counter", help);
    for (core, s) in cores.iter().enumerate() {
        for (i, value) in values.iter().enumerate() {
            let n = read(s, i);
            let _ = writeln!(out, "{name}{{core=\"{core}\",{key}=\"{value}\"}} {n}");
        }
    }
}

/// Appends the whole exposition (format 0.0.4) to `out`.
pub fn render(out: &mut String, cores: &[Arc<CoreStats>], backend: &str, extra: &AdminInfo) {
    let requests = ("glint_requests_total", "Answers sent, by status class.");
    labelled_counter(out, cores, requests, "status", &STATUS_CLASSES, |s, i| {
        let h = &s.http;
        [&h.status_2xx, &h.status_3xx, &h.status_4xx, &h.status_5xx][i].load(Relaxed)
    });
    for (name, kind, help, read) in PER_CORE {
        per_core(out, (name, kind, help), cores.iter().map(|s| read(s)));
    }
    let reasons = Reject::ALL.map(Reject::reason);
    let parse_errors = (
        "glint_parse_errors_total",
        "Requests refused before routing, by reason.",
    );
    labelled_counter(out, cores, parse_errors, "reason", &reasons, |s, i| {
        s.http.rejects[i].load(Relaxed)
    });
    let proxy = (
        "glint_proxy_protocol_errors_total",
        "PROXY-protocol connections closed, by reason.",
    );
    labelled_counter(
        out,
        cores,
        proxy,
        "reason",
        &ProxyError::ALL.map(ProxyError::reason),
        |s, i| s.http.proxy_errors[i].load(Relaxed),
    );
    #[rustfmt::skip]
    let rings: [(&str, &str, ReadRing); 2] = [
        ("glint_ring_slots_used", "Ring slots holding records not yet compacted.", |r| r.used),
        ("glint_ring_slots", "Ring capacity in slots.", |r| r.capacity),
    ];
    for (name, help, read) in rings {
        per_core(out, (name, "gauge", help), extra.rings.iter().map(read));
    }
    let version = env!("CARGO_PKG_VERSION");
    #[rustfmt::skip]
    let infos = [
        ("glint_io_backend", "The I/O backend running (always 1).", "backend", backend),
        ("glint_build_info", "glint's version (always 1).", "version", version),
    ];
    for (name, help, key, value) in infos {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name}{{{key}=\"{}\"}} 1", label_value(value));
    }
}

/// A family with one series per core, `core="i"` for the i-th value.
fn per_core(
    out: &mut String,
    (name, kind, help): (&str, &str, &str),
    values: impl Iterator<Item = u64>,
) {
    family(out, name, kind, help);
    for (core, v) in values.enumerate() {
        let _ = writeln!(out, "{name}{{core=\"{core}\"}} {v}");
    }
}

/// How often blocked calls wake up to check the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Concurrent admin connections; more are closed at once (scrapers need one or two).
const MAX_CONNS: usize = 8;
/// Largest request head; bigger gets 431.
const REQUEST_MAX: usize = 8192;

/// Binds `addr` and serves `/metrics` and `/healthz` on a thread until `state.stop` is set.
/// Returns the bound address (useful with port 0) and the thread to join.
pub fn spawn_admin<P: AdminPage>(
    addr: SocketAddr,
    state: Arc<P>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("admin listener {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("glint-admin".into())
        .spawn(move || accept_loop(&listener, &*state))?;
    Ok((local, handle))
}

fn accept_loop<P: AdminPage>(listener: &TcpListener, state: &P) {
    let active = AtomicUsize::new(0);
    let mut last_warning: Option<Instant> = None;
    // Scoped: joining the admin thread also waits for its connections.
    std::thread::scope(|scope| {
        while !state.stopped() {
            match listener.accept() {
                Ok((stream, _)) if active.load(Relaxed) < MAX_CONNS => {
                    active.fetch_add(1, Relaxed);
                    let active = &active;
                    let spawned = std::thread::Builder::new()
                        .name("glint-admin-conn".into())
                        .spawn_scoped(scope, move || {
                            serve_conn(stream, state);
                            active.fetch_sub(1, Relaxed);
                        });
                    if spawned.is_err() {
                        active.fetch_sub(1, Relaxed);
                    }
                }
                Ok(_) => {} // Over MAX_CONNS: dropping the stream closes it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                Err(e) => {
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        crate::warn!("admin listener: accept failed: {e}");
                        last_warning = Some(Instant::now());
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    });
}

fn serve_conn<P: AdminPage>(mut stream: TcpStream, state: &P) {
    let ok = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(POLL)).is_ok()
        && stream.set_write_timeout(Some(state.idle_timeout())).is_ok();
    if !ok {
        return;
    }
    let mut buf = vec![0u8; REQUEST_MAX];
    let (mut filled, mut out) = (0usize, Vec::new());
    let mut last_request = Instant::now();
    loop {
        while let Some((used, close)) = answer(&buf[..filled], state, &mut out) {
            if stream.write_all(&out).is_err() || close {
                return;
            }
            out.clear();
            buf.copy_within(used..filled, 0);
            filled -= used;
            last_request = Instant::now();
        }
        if state.stopped() || last_request.elapsed() > state.idle_timeout() {
            return;
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Answers the request at the start of `buf` into `out`: `Some((bytes used, close after))`, or
/// `None` if it is still incomplete.
fn answer<P: AdminPage>(buf: &[u8], state: &P, out: &mut Vec<u8>) -> Option<(usize, bool)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < REQUEST_MAX => return None,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            respond(out, "431 Request Header Fields Too Large", "", b"", true);
            return Some((buf.len(), true));
        }
        Err(_) => {
            respond(out, "400 Bad Request", "", b"", true);
            return Some((buf.len(), true));
        }
    };
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        let value = h.value.trim_ascii();
        if h.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case(b"close")
                || (close && !value.eq_ignore_ascii_case(b"keep-alive"));
        }
        // No admin request has a body; refusing one keeps the framing trivially right.
        let body = (h.name.eq_ignore_ascii_case("content-length") && value != b"0")
            || h.name.eq_ignore_ascii_case("transfer-encoding");
        if body {
            respond(out, "400 Bad Request", "", b"", true);
            return Some((buf.len(), true));
        }
    }
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    let (status, content_type, body) = match (path, method) {
        ("/metrics", "GET" | "HEAD") => {
            let mut text = String::with_capacity(16 * 1024);
            state.render_metrics(&mut text);
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                text.into_bytes(),
            )
        }
        ("/healthz", "GET" | "HEAD") if state.draining() => (
            "503 Service Unavailable",
            "text/plain",
            b"draining\n".to_vec(),
        ),
        ("/healthz", "GET" | "HEAD") => ("200 OK", "text/plain", b"ok\n".to_vec()),
        ("/metrics" | "/healthz", _) => ("405 Method Not Allowed", "", Vec::new()),
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    respond(out, status, content_type, &body, close);
    if head_only {
        out.truncate(out.len() - body.len());
    }
    Some((used, close))
}

fn respond(out: &mut Vec<u8>, status: &str, content_type: &str, body: &[u8], close: bool) {
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        let _ = write!(out, "Content-Type: {content_type}\r\n");
    }
    if status.starts_with("405") {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}
