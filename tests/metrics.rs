//! The admin listener of a running `glint serve`, scraped over a real socket: the exposition
//! parses as Prometheus text 0.0.4, moves when requests arrive, never carries a path or an IP,
//! and is not reachable on the public port.

mod common;
use common::*;
use socket2::{Domain, Socket, Type};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::prometheus::check_exposition;

/// One GET on a fresh connection; returns (status, headers lowercased, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = roundtrip(&mut s, req.as_bytes()).unwrap_or_else(|| panic!("no answer to {path}"));
    let head = r
        .headers
        .iter()
        .map(|(k, v)| format!("{}: {v}\n", k.to_ascii_lowercase()))
        .collect();
    (r.status, head, r.body)
}

/// A scrape: the raw text and the parsed series.
fn scrape(admin: SocketAddr) -> (String, BTreeMap<String, f64>) {
    let (status, head, body) = get(admin, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    let series = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, series)
}

/// Sum over every series of `family` whose labels include all of `with`.
fn total(series: &BTreeMap<String, f64>, family: &str, with: &[&str]) -> f64 {
    let found: Vec<f64> = series
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{family}{{")))
        .filter(|(k, _)| with.iter().all(|l| k.contains(l)))
        .map(|(_, v)| *v)
        .collect();
    assert!(!found.is_empty(), "no {family} {with:?} series");
    found.iter().sum()
}

/// A beacon with a unique path and query from `local` (a 127/8 address).
fn beacon_from(local: &str, to: SocketAddr, path: &str) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = roundtrip(&mut s, req.as_bytes()).unwrap_or_else(|| panic!("no answer to {path}"));
    assert_eq!(r.status, 200, "{path}");
}

#[test]
fn metrics_parse_move_with_traffic_and_stay_bounded() {
    let tmp = tempdir("metrics");
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), &[]);
    let admin = server.admin.expect("admin listener address in the log");
    assert_ne!(admin.port(), server.addr.port(), "admin on the public port");
    let (_, before) = scrape(admin);
    let ok = r#"status="2xx""#;
    let sums = |s: &BTreeMap<String, f64>| {
        [
            total(s, "glint_requests_total", &[ok]),
            total(s, "glint_records_written_total", &[]),
            total(s, "glint_ring_slots_used", &[]),
        ]
    };
    assert_eq!(sums(&before), [0.0; 3], "{before:#?}");
    // Unique paths and queries from several client IPs: none may become a label.
    let clients = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"];
    let mut secrets = Vec::new();
    for (i, ip) in clients.iter().enumerate() {
        for j in 0..3 {
            let token = format!("zq{}x{i}y{j}", std::process::id());
            beacon_from(ip, server.addr, &format!("/u/{token}/p.gif?t={token}"));
            secrets.push(token);
        }
    }
    let sent = (clients.len() * 3) as f64;
    // Counters are bumped right after the answer is written: allow a moment, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (text, after) = loop {
        let (text, after) = scrape(admin);
        if sums(&after) == [sent; 3] || Instant::now() > deadline {
            break (text, after);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sums(&after), [sent; 3], "{text}");
    let slots = 512.0 * sent;
    assert_eq!(total(&after, "glint_record_bytes_total", &[]), slots);
    assert_eq!(total(&after, "glint_connections_accepted_total", &[]), sent);
    // Bounded labels: the same series before and after, and no path, query or IP anywhere.
    let keys = |s: &BTreeMap<String, f64>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&before), keys(&after));
    for needle in secrets
        .iter()
        .map(String::as_str)
        .chain(clients)
        .chain(["/u/", "127.0.0."])
    {
        assert!(
            !text.contains(needle),
            "{needle:?} in the exposition:\n{text}"
        );
    }
}

#[test]
fn public_port_serves_beacons_and_admin_serves_health() {
    let tmp = tempdir("metrics-ports");
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), &[]);
    let admin = server.admin.expect("admin listener address in the log");
    // On the public port /metrics is just another beacon: the GIF, and a record.
    let (status, head, body) = get(server.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: image/gif"), "{head}");
    assert!(body.starts_with(b"GIF89a") && body.len() == 43, "{body:?}");
    let (health, _, ok) = get(admin, "/healthz");
    assert_eq!((health, ok.as_slice()), (200, &b"ok\n"[..]));
    let (_, series) = scrape(admin);
    assert_eq!(total(&series, "glint_records_written_total", &[]), 1.0);
    // The health check on the admin port is not a beacon.
    let records = ring_records(&server.data_dir);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].target, b"/metrics");
}

/// Polls (bounded) until `family` summed over its `with` series equals `want`.
fn wait_total(admin: SocketAddr, family: &str, with: &[&str], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (text, series) = scrape(admin);
        let got = total(&series, family, with);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{family} {with:?} is {got}, not {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_count_open_connections_and_refused_requests() {
    let tmp = tempdir("metrics-conns");
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), &[]);
    let admin = server.admin.expect("admin listener address in the log");
    // The backend the log names (io_uring where the kernel allows it, else epoll).
    let log = server.log_text();
    let backend = log
        .split(", io ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no io backend in the log:\n{log}"));
    let (_, series) = scrape(admin);
    assert_eq!(
        series
            .keys()
            .filter(|k| k.starts_with("glint_io_backend{"))
            .collect::<Vec<_>>(),
        [&format!("glint_io_backend{{backend=\"{backend}\"}}")]
    );
    let idle: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();
    wait_total(admin, "glint_connections_open", &[], 3.0);
    let mut bad = server.connect();
    let r = roundtrip(
        &mut bad,
        b"GET /p.gif HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    let too_long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(9000));
    let r = roundtrip(&mut server.connect(), too_long.as_bytes()).unwrap();
    assert_eq!(r.status, 414);
    let reason = |r: &str| format!("reason=\"{r}\"");
    wait_total(
        admin,
        "glint_parse_errors_total",
        &[&reason("bad_request")],
        1.0,
    );
    wait_total(
        admin,
        "glint_parse_errors_total",
        &[&reason("uri_too_long")],
        1.0,
    );
    wait_total(admin, "glint_requests_total", &[r#"status="4xx""#], 2.0);
    wait_total(admin, "glint_records_written_total", &[], 0.0);
    drop(idle);
    drop(bad);
    wait_total(admin, "glint_connections_open", &[], 0.0);
}
