//! Hot-path benchmarks: parse + record encode of a realistic browser beacon, and ring append.
//!
//! The parse group runs twice: `ingest/*` in wall-clock time and `ingest_cpu/*` in the bench
//! thread's CPU time (the figure to quote on a shared machine). `httparse` is httparse alone
//! on the same head, as glint calls it: the floor for `parse`.

mod cpu_time;

use cpu_time::ThreadCpuTime;
use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use glint::http::parse::HEADERS_CAP;
use glint::http::parse::{parse_request_head, Limits, Parsed};
use glint::record::{self, BodyKind, IpSource, Method, RecordFields};
use glint::ring::{RingOptions, RingWriter};
use std::net::Ipv6Addr;

const BEACON: &[u8] = b"GET /p.gif?e=pageview&cid=summer-sale-2026&uid=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44&url=https%3A%2F%2Fshop.example.com%2Fcart&res=1920x1080 HTTP/1.1\r\nHost: t.example.com\r\nConnection: keep-alive\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: image\r\nReferer: https://shop.example.com/cart?step=2\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9,de;q=0.8\r\nCookie: _ga=GA1.1.123456789.1700000000; session=abcdef\r\nDNT: 1\r\n\r\n";

/// A beacon whose request line is 8,000 octets, the length RFC 9112 3 asks servers to accept.
fn long_request_line() -> Vec<u8> {
    let prefix = b"GET /p.gif?e=pageview&q=";
    let suffix = b" HTTP/1.1\r\n";
    let mut raw = prefix.to_vec();
    raw.resize(8000 - suffix.len(), b'x');
    raw.extend_from_slice(suffix);
    raw.extend_from_slice(b"Host: t.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n");
    raw
}

fn fields<'a>(head: &glint::http::parse::RequestHead<'a>) -> RecordFields<'a> {
    RecordFields {
        ts_ns: 1_764_400_000_000_000_000,
        core: 0,
        status: 200,
        method: head.method,
        http_minor: head.http_minor,
        flags: 0,
        peer_ip: Ipv6Addr::LOCALHOST,
        peer_port: 40_000,
        client_ip: Ipv6Addr::LOCALHOST,
        ip_source: IpSource::Peer,
        body_kind: BodyKind::None,
        target: head.target,
        user_agent: head.user_agent,
        referer: head.referer,
        cookie: b"",
        body: b"",
    }
}

/// httparse alone, called as `parse_request_head` calls it: the head length.
fn httparse_only(buf: &[u8], max_headers: usize) -> usize {
    let mut storage =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_CAP];
    let headers = &mut storage[..max_headers.min(HEADERS_CAP)];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => unreachable!(),
    }
}

fn parse_and_encode_wall(c: &mut Criterion) {
    parse_and_encode(c, "ingest");
}

fn parse_and_encode_cpu(c: &mut Criterion<ThreadCpuTime>) {
    parse_and_encode(c, "ingest_cpu");
}

fn parse_and_encode<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let limits = Limits::default();
    let crc_init = record::crc_init(0x5eed);
    let mut slot = vec![0u8; 512];
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.bench_function("httparse", |b| {
        b.iter(|| httparse_only(black_box(BEACON), limits.max_headers))
    });
    g.bench_function("parse", |b| {
        b.iter(|| match parse_request_head(black_box(BEACON), &limits) {
            Parsed::Complete(h) => h.head_len,
            _ => unreachable!(),
        })
    });
    g.bench_function("parse+encode", |b| {
        b.iter(|| {
            let Parsed::Complete(head) = parse_request_head(black_box(BEACON), &limits) else {
                unreachable!()
            };
            record::encode(
                &mut slot,
                7,
                crc_init,
                &fields(&head),
                record::Placement::ONE,
            )
        })
    });
    let long = long_request_line();
    // Stored whole: the record takes 17 slots of 512 bytes.
    let mut slots = vec![0u8; 17 * 512];
    g.bench_function("parse+encode, 8000-octet request line", |b| {
        b.iter(|| {
            let Parsed::Complete(head) = parse_request_head(black_box(&long), &limits) else {
                unreachable!("an 8,000-octet request line is accepted by default")
            };
            let place = record::Placement {
                span: 17,
                pad_before: 0,
            };
            record::encode(&mut slots, 7, crc_init, &fields(&head), place)
        })
    });
    g.finish();
    assert_eq!(
        Method::Get,
        match parse_request_head(BEACON, &limits) {
            Parsed::Complete(h) => h.method,
            _ => Method::Other,
        }
    );
}

fn ring_append(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("glint-bench-ring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring-000.glr");
    let _ = std::fs::remove_file(&path);
    let (mut ring, _) = RingWriter::open(
        &path,
        RingOptions {
            slot_size: 512,
            capacity: 1 << 16,
            core: 0,
            identity: None,
        },
    )
    .unwrap();
    let consumer = glint::ring::RingReader::open_consumer(&path).unwrap();
    let Parsed::Complete(head) = parse_request_head(BEACON, &Limits::default()) else {
        unreachable!()
    };
    let rec = fields(&head);
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append", |b| {
        b.iter(|| match ring.append(black_box(&rec)) {
            Ok(a) => a.seq,
            Err(_) => {
                // Play the compactor: free the ring (not on the measured fast path often: 1 in 65536).
                consumer.advance_cursor(ring.next_seq()).unwrap();
                ring.append(&rec).unwrap().seq
            }
        })
    });
    g.finish();
    drop(ring);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, parse_and_encode_wall, ring_append);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime::default());
    targets = parse_and_encode_cpu
}
criterion_main!(benches, cpu);
