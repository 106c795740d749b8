//! Graceful shutdown: health checks turn 503 during the drain delay, requests already read are
//! answered, rings are synced, exit 0 within a bounded time; `--sync always` still answers.

#[macro_use]
mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

for_each_backend!(
    sigterm_drains_health_then_closes_and_exits_zero,
    request_in_flight_at_shutdown_is_answered,
    sync_always_answers_after_msync_and_records_everything,
);

fn sigterm_drains_health_then_closes_and_exits_zero(io: &str) {
    let tmp = tempdir("drain");
    let dir = tmp.path();
    let server = Server::start(dir, &["--io", io, "--drain-delay", "1500ms"]);
    let mut kept = server.connect();
    assert_eq!(
        roundtrip(&mut kept, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .status,
        200
    );
    signal(&server.child, "-TERM");
    std::thread::sleep(Duration::from_millis(300));
    // During the drain delay the listener is still open and says 503 to the balancer...
    let mut probe = server.connect();
    let r = roundtrip(&mut probe, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!((r.status, r.header("Connection")), (503, Some("close")));
    // ...while beacons are still answered and recorded, each with Connection: close.
    let b = roundtrip(
        &mut kept,
        b"GET /p?during-drain HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    assert_eq!((b.status, b.header("Connection")), (200, Some("close")));
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(ring_records(dir)
        .iter()
        .any(|r| r.target == b"/p?during-drain"));
    assert!(std::net::TcpStream::connect_timeout(
        &"127.0.0.1:1".parse().unwrap(),
        Duration::from_millis(10)
    )
    .is_err());
}

fn request_in_flight_at_shutdown_is_answered(io: &str) {
    let tmp = tempdir("inflight");
    let dir = tmp.path();
    let server = Server::start(dir, &["--io", io]);
    let mut s = server.connect();
    s.write_all(b"GET /p?late HTTP/1.1\r\nHost: a\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal(&server.child, "-TERM");
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"User-Agent: late\r\n\r\n").unwrap();
    let r = read_response(&mut s, &mut Vec::new(), false).expect("request in flight was dropped");
    assert_eq!(r.status, 200);
    assert!(server.stop().success());
    assert_eq!(ring_records(dir).len(), 1);
}

fn sync_always_answers_after_msync_and_records_everything(io: &str) {
    let tmp = tempdir("syncalways");
    let dir = tmp.path();
    let server = Server::start(dir, &["--io", io, "--sync", "always"]);
    let mut s = server.connect();
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("GET /p?i={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    let mut pending = Vec::new();
    for _ in 0..20 {
        assert_eq!(
            read_response(&mut s, &mut pending, false).unwrap().status,
            200
        );
    }
    drop(s);
    assert!(server.stop().success());
    assert_eq!(ring_records(dir).len(), 20);
}
