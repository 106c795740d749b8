//! The whole connection state machine (`Conn`) on arbitrary bytes in arbitrary pieces.
//!
//! Byte 0 caps the read sizes, byte 1 seeds them, byte 2 picks one of three configs (limits,
//! routes, CORS, forwarded IPs, PROXY protocol), draining, and a timeout at the end; the rest is
//! what the client sends. The driver does what a backend does: read into `read_buf`, `filled`,
//! `process` until `Read`, write `out`, stop at `Close`. Invariants: never panics, never spins;
//! every byte written parses as a sequence of well-formed HTTP/1.1 responses; every 2xx beacon
//! answer has exactly one record behind it (in an in-memory sink shaped like a ring of 64 slots;
//! every stored record parses); nothing is answered after a `Connection: close` answer; after
//! `Next::Close` nothing more is processed.

use glint::http::conn::{Conn, Next};
use glint::http::context::Context;
use glint::http::parse::Limits;
use glint::http::policy::{HttpPolicy, ResponseKind};
use glint::http::realip::{ClientIpHeader, RealIpPolicy, TrustedProxies};
use glint::http::route::{CorsOrigins, Routes};
use glint::ingest::{MemorySink, Sink};
use glint::record::RecordView;
use std::cell::RefCell;
use std::sync::Arc;

struct Fixture {
    core: Context<MemorySink>,
    configs: [Arc<HttpPolicy>; 3],
}

thread_local! {
    static FIXTURE: RefCell<Fixture> = RefCell::new(fixture());
}

fn fixture() -> Fixture {
    let base = HttpPolicy {
        cors: CorsOrigins::new(&["*".into()], 600),
        redirect_allow: vec!["example.com".into()],
        ..HttpPolicy::default()
    };
    // Small limits, 204 answers, few requests per connection, forwarded client IPs.
    let small = HttpPolicy {
        limits: Limits {
            max_head: 512,
            max_headers: 8,
            max_target: 128,
            max_body: 300,
            named_ip_header: None,
        },
        routes: Routes::new(vec![], ResponseKind::NoContent).unwrap(),
        cors: CorsOrigins::new(&["https://shop.example".into()], 60),
        max_requests_per_conn: 5,
        real_ip: RealIpPolicy {
            trusted: TrustedProxies::parse(["127.0.0.0/8"]).unwrap(),
            header: Some(ClientIpHeader::XForwardedFor),
        },
        anonymize: Some((24, 48)),
        capture_cookie: Some(b"sid".to_vec()),
        ..base.clone()
    };
    // PROXY protocol from a trusted peer, then a named CDN header.
    let proxied = HttpPolicy {
        proxy_protocol: true,
        real_ip: RealIpPolicy {
            trusted: TrustedProxies::parse(["127.0.0.1"]).unwrap(),
            header: Some(ClientIpHeader::Named("cf-connecting-ip".into())),
        },
        limits: Limits {
            named_ip_header: Some(b"cf-connecting-ip"),
            ..Limits::default()
        },
        ..base.clone()
    };
    // A ring of 64 slots of 512 bytes, emptied between runs: a run may fill it (503s).
    let sink = MemorySink::new(0, 512, 64);
    let mut core = Context::new(Arc::new(base.clone()), Default::default(), sink);
    core.date.refresh(1_700_000_000);
    Fixture {
        core,
        configs: [Arc::new(base), Arc::new(small), Arc::new(proxied)],
    }
}

/// Read sizes from a tiny LCG: 1..=max, where max comes from the input.
struct Pieces {
    state: u32,
    max: usize,
}

impl Pieces {
    fn next(&mut self) -> usize {
        self.state = self
            .state
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        1 + (self.state >> 8) as usize % self.max
    }
}

/// Checks one input; panics on any violated invariant.
pub fn check(data: &[u8]) {
    let [a, b, c, input @ ..] = data else {
        return;
    };
    FIXTURE.with(|f| {
        let f = &mut *f.borrow_mut();
        f.core.policy = f.configs[usize::from(c & 3) % 3].clone();
        f.core.draining = c & 4 != 0;
        let time_out_at_end = c & 8 != 0;
        let max = if *a == 0 { 1 << 16 } else { usize::from(*a) };
        let mut pieces = Pieces {
            state: u32::from(*b),
            max,
        };
        run(&mut f.core, input, &mut pieces, time_out_at_end);
        for record in f.core.sink.records() {
            RecordView::parse(record).expect("every stored record is well formed");
        }
        f.core.sink.clear();
    });
}

fn run(
    core: &mut Context<MemorySink>,
    mut input: &[u8],
    pieces: &mut Pieces,
    time_out_at_end: bool,
) {
    let mut conn = Conn::new("127.0.0.1:40000".parse().unwrap(), core);
    // Records, not slots: a record may take several slots.
    let records = |core: &Context<MemorySink>| {
        core.sink
            .stats()
            .records
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let first = records(core);
    let mut wire = Vec::new();
    let mut closed = false;
    while !input.is_empty() && !closed {
        let buf = conn.io.read_buf();
        assert!(!buf.is_empty(), "read buffer full: the backend would stall");
        let n = pieces.next().min(buf.len()).min(input.len());
        buf[..n].copy_from_slice(&input[..n]);
        conn.io.filled(n);
        input = &input[n..];
        for round in 0.. {
            assert!(round < 10_000, "process spins without reading");
            let next = conn.process(core);
            wire.extend_from_slice(&conn.io.out);
            conn.io.out.clear();
            match next {
                Next::Read => break,
                Next::Write => continue,
                Next::Close => {
                    closed = true;
                    break;
                }
            }
        }
    }
    if !closed && time_out_at_end {
        // The backend's deadline passed: a partial request may get 408 (not while the PROXY
        // header is still awaited), an idle connection nothing; then the close.
        let mid_request = conn.mid_request();
        assert_eq!(conn.timed_out(core), Next::Close);
        let sent_408 = conn.io.out.starts_with(b"HTTP/1.1 408 ");
        assert!(
            conn.io.out.is_empty() || (sent_408 && mid_request),
            "bad timeout answer"
        );
        wire.extend_from_slice(&conn.io.out);
        conn.io.out.clear();
        closed = true;
    }
    let recorded = records(core) - first;
    if closed {
        // After Close: more bytes change nothing.
        let buf = conn.io.read_buf();
        let n = buf.len().min(input.len());
        buf[..n].copy_from_slice(&input[..n]);
        conn.io.filled(n);
        assert_eq!(conn.process(core), Next::Close);
        assert!(conn.io.out.is_empty(), "answered after Close");
        assert_eq!(records(core) - first, recorded, "recorded after Close");
    }
    let answers = check_responses(&wire);
    assert_eq!(
        answers.beacons, recorded,
        "2xx beacon answers vs ring records"
    );
    if answers.saw_close {
        assert!(
            closed,
            "Connection: close sent but the connection stayed open"
        );
    }
}

struct Answers {
    beacons: u64,
    saw_close: bool,
}

/// Parses `wire` as back-to-back responses; panics on anything malformed.
fn check_responses(mut wire: &[u8]) -> Answers {
    let mut answers = Answers {
        beacons: 0,
        saw_close: false,
    };
    while !wire.is_empty() {
        assert!(!answers.saw_close, "a response after Connection: close");
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(wire) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "malformed response {other:?}: {:?}",
                String::from_utf8_lossy(wire)
            ),
        };
        assert_eq!(resp.version, Some(1));
        let status = resp.code.unwrap();
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        // RFC 9110 6.6.1: every final answer carries Date (a 100 Continue need not).
        assert!(status == 100 || header("Date").is_some(), "no Date");
        answers.saw_close |= header("Connection") == Some(b"close".as_slice());
        let len: usize = match header("Content-Length") {
            Some(v) => std::str::from_utf8(v).unwrap().parse().unwrap(),
            None => {
                assert!(
                    matches!(status, 100 | 204),
                    "{status} without Content-Length"
                );
                0
            }
        };
        let gif = header("Content-Type") == Some(b"image/gif".as_slice());
        // Every route records: a pixel, a 204 that is not an OPTIONS answer, a redirect.
        if (status == 200 && gif) || (status == 204 && header("Allow").is_none()) || status == 302 {
            answers.beacons += 1;
        }
        // A HEAD answer carries Content-Length without the body: the next response tells.
        let rest = &wire[n..];
        let body =
            if rest.len() >= len && (rest.len() == len || rest[len..].starts_with(b"HTTP/1.1 ")) {
                len
            } else {
                assert!(
                    rest.is_empty() || rest.starts_with(b"HTTP/1.1 "),
                    "bad body length"
                );
                0
            };
        wire = &rest[body..];
    }
    answers
}
