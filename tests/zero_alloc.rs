//! Proof that a kept-alive connection costs zero heap allocations per request in steady state:
//! parse, record append and response included. A counting global allocator counts only on the
//! worker thread; the client runs on another thread.
// Implementing `GlobalAlloc` is unsafe; the counting allocator only forwards to `System`.
#![allow(unsafe_code)]

mod common;

use common::tempdir;

use glint::http::context::Context;
use glint::http::policy::HttpPolicy;
use glint::ingest::{Durability, RingSink};
use glint::ring::{RingOptions, RingWriter};
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

fn worker(
    io: &str,
    dir: &std::path::Path,
) -> (
    Worker<Context<RingSink>>,
    std::net::SocketAddr,
    tokio::sync::watch::Sender<Phase>,
) {
    let listener =
        glint::server::listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 128).unwrap();
    let addr = listener.local_addr().unwrap();
    let (ring, _) = RingWriter::open(
        &dir.join("ring-000.glr"),
        RingOptions {
            slot_size: 512,
            capacity: 1 << 16,
            core: 0,
            identity: None,
        },
    )
    .unwrap();
    let policy = HttpPolicy {
        cors: glint::http::route::CorsOrigins::new(&["*".into()], 600),
        ..HttpPolicy::default()
    };
    let (handler, stats) =
        glint::server::core_on_ring(0, ring, Durability::Background, Arc::new(policy));
    let (tx, rx) = tokio::sync::watch::channel(Phase::Running);
    let _ = io;
    (
        Worker {
            id: 0,
            handler,
            stats,
            listeners: vec![listener],
            phase: rx,
            drain_timeout: Duration::from_secs(1),
            max_conns: 1024,
        },
        addr,
        tx,
    )
}

/// The allocation counter is process-wide: one backend's test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(io: &'static str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempdir(&format!("zero-alloc-{io}"));
    let dir = tmp.path();
    let (w, addr, phase) = worker(io, dir);
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
    assert_eq!(
        after - before,
        0,
        "{io}: {} heap allocations over 10,000 kept-alive requests",
        after - before
    );
    let mut reader = glint::ring::RingReader::open(&dir.join("ring-000.glr")).unwrap();
    assert_eq!(
        reader.valid_range(),
        0..11_000,
        "every request was recorded"
    );
}

#[test]
fn zero_allocations_per_request_epoll() {
    run("epoll");
}

#[test]
fn zero_allocations_per_request_uring() {
    run("uring");
}
