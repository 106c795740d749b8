//! The admin listener: its Prometheus exposition is valid and complete, its counters move, it
//! keeps connections alive, answers HEAD and closes idle connections.

mod common;

use common::prometheus::check_exposition;
use glint::http::parse::Reject;
use glint::http::proxy::ProxyError;
use glint::server::admin::{render, spawn_admin, AdminInfo, AdminState, RingOccupancy, PER_CORE};
use glint::server::stats::CoreStats;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[test]
fn checker_refuses_broken_expositions() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} 1\n";
    assert!(check_exposition(ok).is_ok());
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} 1\na_total{core=\"0\"} 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\",core=\"1\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{core=\"0\"} x\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n",
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# HELP a A.\n# TYPE a gauge\n1a 1\n",
    ] {
        assert!(check_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

fn cores(n: usize) -> Vec<Arc<CoreStats>> {
    (0..n).map(|_| Arc::new(CoreStats::default())).collect()
}

#[test]
fn render_is_valid_and_complete() {
    let stats = cores(2);
    stats[1].http.answered(204);
    stats[1].http.answered(302);
    stats[0].sink.recorded(3, 3, 512);
    stats[1]
        .http
        .rejected(glint::http::parse::Reject::UriTooLong);
    stats[0].conns.opened();
    stats[0].http.timed_out(true);
    let info = AdminInfo {
        rings: vec![
            RingOccupancy {
                used: 7,
                capacity: 1024,
            },
            RingOccupancy {
                used: 0,
                capacity: 1024,
            },
        ],
    };
    let mut text = String::new();
    render(&mut text, &stats, "uring", &info);
    let series = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let get = |k: &str| *series.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"2xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"3xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"1\",status=\"4xx\"}"), 1.0);
    assert_eq!(get("glint_requests_total{core=\"0\",status=\"5xx\"}"), 0.0);
    assert_eq!(get("glint_requests_total{core=\"0\",status=\"4xx\"}"), 1.0);
    assert_eq!(get("glint_request_timeouts_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_records_written_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_record_bytes_total{core=\"0\"}"), 1536.0);
    assert_eq!(get("glint_records_multi_slot_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_records_multi_slot_total{core=\"1\"}"), 0.0);
    assert_eq!(
        get("glint_parse_errors_total{core=\"1\",reason=\"uri_too_long\"}"),
        1.0
    );
    assert_eq!(get("glint_connections_open{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_connections_accepted_total{core=\"0\"}"), 1.0);
    assert_eq!(get("glint_ring_slots_used{core=\"0\"}"), 7.0);
    assert_eq!(get("glint_ring_slots{core=\"1\"}"), 1024.0);
    assert_eq!(get("glint_io_backend{backend=\"uring\"}"), 1.0);
    let build = format!(
        "glint_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(get(&build), 1.0);
    for family in [
        "glint_ring_full_rejections_total",
        "glint_connections_refused_total",
        "glint_accept_errors_total",
        "glint_msync_errors_total",
        "glint_idle_timeouts_total",
        "glint_redirects_refused_total",
        "glint_gpc_dropped_total",
    ] {
        assert_eq!(get(&format!("{family}{{core=\"1\"}}")), 0.0);
    }
    // Bounded labels: 2 cores give a fixed number of series, whatever the traffic was.
    assert_eq!(
        get("glint_proxy_protocol_errors_total{core=\"0\",reason=\"malformed\"}"),
        0.0
    );
    let per_core = 4 + PER_CORE.len() + Reject::COUNT + ProxyError::COUNT + 2;
    assert_eq!(series.len(), 2 * per_core + 2);
}

fn state(stats: Vec<Arc<CoreStats>>) -> Arc<AdminState> {
    Arc::new(AdminState::new(
        stats,
        "epoll",
        Box::new(|core| RingOccupancy {
            used: core as u64,
            capacity: 64,
        }),
    ))
}

/// Sends `request` on a fresh connection and reads until the server closes it.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let reply = exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    );
    let (head, body) = reply.split_once("\r\n\r\n").expect("a complete answer");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{head}");
    (head.to_string(), body.to_string())
}

fn stop(state: &AdminState, handle: JoinHandle<()>) {
    state.stop.store(true, Relaxed);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "admin thread did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.join().unwrap();
}

#[test]
fn admin_listener_serves_metrics_that_move() {
    let stats = cores(2);
    let st = state(stats.clone());
    let (addr, handle) = spawn_admin("127.0.0.1:0".parse().unwrap(), st.clone()).unwrap();
    let key = "glint_requests_total{core=\"1\",status=\"2xx\"}";
    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let before = check_exposition(&body).unwrap();
    assert_eq!(before[key], 0.0);
    assert_eq!(before["glint_ring_slots_used{core=\"1\"}"], 1.0);
    stats[1].http.answered(200);
    stats[1].http.answered(204);
    let after = check_exposition(&get(addr, "/metrics?x=1").1).unwrap();
    assert_eq!(after[key], 2.0);
    let (health_head, health_body) = get(addr, "/healthz");
    assert!(
        health_head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{health_head}"
    );
    assert_eq!(health_body, "ok\n");
    st.draining.store(true, Relaxed);
    assert!(get(addr, "/healthz").0.starts_with("HTTP/1.1 503 "));
    assert!(get(addr, "/nope").0.starts_with("HTTP/1.1 404 "));
    let post = exchange(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
        "{post}"
    );
    let bad = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    assert!(exchange(addr, "\x16\x03\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
    stop(&st, handle);
    assert!(
        TcpStream::connect(addr).is_err(),
        "listener still open after stop"
    );
}

#[test]
fn admin_keeps_alive_answers_head_and_closes_idle_connections() {
    let mut st = AdminState::new(cores(1), "uring", Box::new(|_| RingOccupancy::default()));
    st.idle_timeout = Duration::from_millis(300);
    let st = Arc::new(st);
    let (addr, handle) = spawn_admin("127.0.0.1:0".parse().unwrap(), st.clone()).unwrap();
    let two = exchange(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (first, second) = two.split_once("ok\n").expect("first answer");
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{two}");
    assert!(
        second.starts_with("HTTP/1.1 200 OK\r\n") && second.ends_with("\r\n\r\n"),
        "{second}"
    );
    assert!(
        !second.contains("Content-Length: 0\r\n"),
        "HEAD keeps the GET length: {second}"
    );
    // An idle connection is closed by the server after idle_timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    stop(&st, handle);
}
