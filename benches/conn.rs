//! The whole request path without a socket: `Conn::process` on a buffer of browser beacons
//! (parse, route, record into a real ring file, canned answer), alone and pipelined 16 deep.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glint::http::conn::{Conn, Next};
use glint::http::policy::HttpPolicy;
use glint::ingest::Durability;
use glint::ring::{RingOptions, RingReader, RingWriter};
use std::sync::Arc;

const BEACON: &[u8] = b"GET /p.gif?e=pageview&cid=summer-sale-2026&uid=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44&url=https%3A%2F%2Fshop.example.com%2Fcart&res=1920x1080 HTTP/1.1\r\nHost: t.example.com\r\nConnection: keep-alive\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: image\r\nReferer: https://shop.example.com/cart?step=2\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9,de;q=0.8\r\nCookie: _ga=GA1.1.123456789.1700000000; session=abcdef\r\nDNT: 1\r\n\r\n";

const CAPACITY: u64 = 1 << 16;

fn conn_process(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("glint-bench-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring-000.glr");
    let _ = std::fs::remove_file(&path);
    let opts = RingOptions {
        slot_size: 512,
        capacity: CAPACITY,
        core: 0,
        identity: None,
    };
    let (ring, _) = RingWriter::open(&path, opts).unwrap();
    let consumer = RingReader::open_consumer(&path).unwrap();
    let (mut core, _stats) = glint::server::core_on_ring(
        0,
        ring,
        Durability::Background,
        Arc::new(HttpPolicy::default()),
    );
    let mut conn = Conn::new("127.0.0.1:40000".parse().unwrap(), &core);
    let mut g = c.benchmark_group("conn");
    for depth in [1usize, 16] {
        let batch = BEACON.repeat(depth);
        g.throughput(Throughput::Elements(depth as u64));
        g.bench_function(format!("process, pipeline {depth}"), |b| {
            b.iter(|| {
                // Play the compactor now and then, so the ring never fills.
                if core.sink.ring().occupancy() > CAPACITY / 2 {
                    consumer
                        .advance_cursor(core.sink.ring().next_seq())
                        .unwrap();
                }
                conn.io.read_buf()[..batch.len()].copy_from_slice(&batch);
                conn.io.filled(batch.len());
                let next = conn.process(&mut core);
                assert_eq!(next, Next::Read);
                let answered = conn.io.out.len();
                conn.io.out.clear();
                answered
            })
        });
    }
    g.finish();
    drop(core);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, conn_process);
criterion_main!(benches);
