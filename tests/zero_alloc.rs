//! Proof that a kept-alive connection costs zero heap allocations per request in steady state:
//! parse, record append and response included. A counting global allocator counts only on the
//! worker thread; the client runs on another thread. Each backend is run twice: over a real
//! ring file (the whole write path) and over the in-memory sink (the HTTP layer and the
//! backend alone, so an allocation cannot hide behind the ring's).
// Implementing `GlobalAlloc` is unsafe; the counting allocator only forwards to `System`.
#![allow(unsafe_code)]

mod common;

use common::tempdir;
use glint::http::context::Context;
use glint::http::policy::HttpPolicy;
use glint::ingest::{Durability, MemorySink};
use glint::ring::{RingOptions, RingWriter};
use glint::server::handler::Handler;
use glint::server::stats::CoreStats;
use glint::server::{Phase, Worker};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local!(static TRACKED: Cell<bool> = const { Cell::new(false) });

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACKED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The policy every variant serves with: CORS on, so the answers carry their longest headers.
fn policy() -> Arc<HttpPolicy> {
    Arc::new(HttpPolicy {
        cors: glint::http::route::CorsOrigins::new(&["*".into()], 600),
        ..HttpPolicy::default()
    })
}

/// The allocation counter is process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Serves `handler` on backend `io` and sends 1,000 warm-up then 10,000 measured kept-alive
/// requests; returns the heap allocations the worker thread made during the measured ones.
fn allocations_per_10k<H: Handler + Send>(
    io: &'static str,
    handler: H,
    stats: Arc<CoreStats>,
) -> u64 {
    let listener =
        glint::server::listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 128).unwrap();
    let addr = listener.local_addr().unwrap();
    let (phase, rx) = tokio::sync::watch::channel(Phase::Running);
    let w = Worker {
        id: 0,
        handler,
        stats,
        listeners: vec![listener],
        phase: rx,
        drain_timeout: Duration::from_secs(1),
        max_conns: 1024,
    };
    let server = std::thread::spawn(move || {
        TRACKED.with(|t| t.set(true));
        let result = match io {
            "uring" => glint::server::uring::run(w),
            _ => glint::server::epoll::run(w),
        };
        result.map_err(|e| e.to_string())
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = b"GET /p.gif?e=open&cid=42&uid=9f8e7d HTTP/1.1\r\nHost: t.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nReferer: https://shop.example/cart\r\nDNT: 1\r\n\r\n";
    let mut buf = vec![0u8; 4096];
    let mut exchange = |n: usize| {
        for _ in 0..n {
            s.write_all(req).unwrap();
            let mut got = 0;
            // The pixel response ends with the GIF trailer byte 0x3b after the 43-byte body.
            while got == 0 || buf[got - 1] != 0x3b {
                got += s.read(&mut buf[got..]).unwrap();
            }
        }
    };
    exchange(1000);
    let before = ALLOCS.load(Ordering::SeqCst);
    exchange(10_000);
    let after = ALLOCS.load(Ordering::SeqCst);
    drop(s);
    phase.send(Phase::Closing).unwrap();
    server.join().unwrap().unwrap();
    after - before
}

/// Over a real ring file: parse, append (the ring's write path) and answer.
fn over_a_ring(io: &'static str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempdir(&format!("zero-alloc-{io}"));
    let path = tmp.path().join("ring-000.glr");
    let (ring, _) = RingWriter::open(
        &path,
        RingOptions {
            slot_size: 512,
            capacity: 1 << 16,
            core: 0,
            identity: None,
        },
    )
    .unwrap();
    let (handler, stats) = glint::server::core_on_ring(0, ring, Durability::Background, policy());
    let allocs = allocations_per_10k(io, handler, stats);
    assert_eq!(
        allocs, 0,
        "{io}: {allocs} heap allocations over 10,000 kept-alive requests"
    );
    let mut reader = glint::ring::RingReader::open(&path).unwrap();
    assert_eq!(
        reader.valid_range(),
        0..11_000,
        "every request was recorded"
    );
}

/// Over the in-memory sink (room reserved up front): what the HTTP layer and the backend cost
/// by themselves.
fn over_memory(io: &'static str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stats = Arc::new(CoreStats::default());
    let sink = MemorySink::new(0, 512, 1 << 14).with_stats(stats.sink.clone());
    let handler = Context::new(policy(), stats.http.clone(), sink);
    let allocs = allocations_per_10k(io, handler, stats.clone());
    assert_eq!(
        allocs, 0,
        "{io}, in-memory sink: {allocs} heap allocations over 10,000 kept-alive requests"
    );
    assert_eq!(
        stats.sink.records.load(Ordering::Relaxed),
        11_000,
        "every request was recorded"
    );
}

#[test]
fn zero_allocations_per_request_epoll() {
    over_a_ring("epoll");
}

#[test]
fn zero_allocations_per_request_uring() {
    over_a_ring("uring");
}

#[test]
fn zero_allocations_per_request_in_http_alone_epoll() {
    over_memory("epoll");
}

#[test]
fn zero_allocations_per_request_in_http_alone_uring() {
    over_memory("uring");
}
