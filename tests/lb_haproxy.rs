//! A real HAProxy in front of glint on loopback: PROXY protocol v2 and `option forwardfor` give
//! the original client's IP (clients bind 127.0.0.x / ::1 before connecting), forged
//! X-Forwarded-For from untrusted peers is ignored, refused PROXY connections are counted,
//! HAProxy's health checks (PROXY v2 LOCAL) see /healthz go 503 while glint drains.
//!
//! Needs the Debian package `haproxy` (`.ci/run` installs it); the harness is in
//! `common/haproxy.rs`.

mod common;
use common::haproxy::Haproxy;
use common::*;
use serde_json::Value;
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP connection from `local` (any 127/8 address routes to lo on Linux) to `to`.
fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let local: IpAddr = local.parse().unwrap();
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(local, 0).into()).unwrap();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One GET of `/p.gif?e={tag}` from `local` to `to` with extra header lines; returns the status.
fn hit(local: &str, to: SocketAddr, tag: &str, extra: &str) -> u16 {
    let mut s = connect_from(local, to);
    let req = format!("GET /p.gif?e={tag} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    roundtrip(&mut s, req.as_bytes())
        .unwrap_or_else(|| panic!("no answer to {tag} via {to}"))
        .status
}

/// Stops glint and decodes its data dir with `glint decode --format jsonl`.
fn stop_and_decode(server: Server) -> Vec<Value> {
    let dir = server.data_dir.clone();
    let log = server.log_text();
    assert!(server.stop().success(), "glint serve failed:\n{log}");
    decode_jsonl(&dir, &[])
}

/// The one record whose query is `e={tag}`, as (ip, ip_source, peer).
fn client_of(records: &[Value], tag: &str) -> (String, String, String) {
    let want = format!("e={tag}");
    let found: Vec<&Value> = records.iter().filter(|r| r["query"] == want).collect();
    assert_eq!(found.len(), 1, "records for {tag}: {records:#?}");
    let field = |k: &str| found[0][k].as_str().unwrap_or_default().to_string();
    (field("ip"), field("ip_source"), field("peer"))
}

fn owned(ip: &str, source: &str, peer: &str) -> (String, String, String) {
    (ip.into(), source.into(), peer.into())
}

/// glint with `flags` on 127.0.0.1 behind HAProxy frontends on 127.0.0.1 and [::1]; the backend
/// has the `option` line (if any) and a server line ending with `server_opts`.
fn behind_haproxy(
    flags: &[&str],
    option: &str,
    server_opts: &str,
) -> (tempfile::TempDir, Server, Haproxy, SocketAddr, SocketAddr) {
    let tmp = tempdir("lb");
    let dir = tmp.path();
    let glint = Server::start(&dir.join("data"), flags);
    let proxy = Haproxy::start(&format!(
        "{option}\n  server glint {} {server_opts}",
        glint.addr
    ));
    let (v4, v6) = (proxy.v4, proxy.v6);
    (tmp, glint, proxy, v4, v6)
}

const PP_TRUST: [&str; 5] = [
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1/32",
    "--trusted-proxy",
    "::1/128",
];

#[test]
fn proxy_v2_and_v1_from_haproxy_give_the_ipv4_and_ipv6_client() {
    let (_tmp, glint, proxy, v4, v6) = behind_haproxy(&PP_TRUST, "", "send-proxy-v2");
    assert_eq!(hit("127.0.0.2", v4, "pp4", ""), 200);
    assert_eq!(hit("::1", v6, "pp6", ""), 200);
    // A second HAProxy speaking PROXY v1 (text) to the same glint.
    let v1 = Haproxy::start(&format!("server glint {} send-proxy", glint.addr));
    assert_eq!(hit("127.0.0.7", v1.v4, "v1-4", ""), 200);
    assert_eq!(hit("::1", v1.v6, "v1-6", ""), 200);
    drop((proxy, v1));
    let records = stop_and_decode(glint);
    assert_eq!(
        client_of(&records, "v1-4"),
        owned("127.0.0.7", "proxy-protocol", "127.0.0.1")
    );
    assert_eq!(
        client_of(&records, "v1-6"),
        owned("::1", "proxy-protocol", "127.0.0.1")
    );
    assert_eq!(
        client_of(&records, "pp4"),
        owned("127.0.0.2", "proxy-protocol", "127.0.0.1")
    );
    assert_eq!(
        client_of(&records, "pp6"),
        owned("::1", "proxy-protocol", "127.0.0.1")
    );
}

#[test]
fn forwardfor_from_haproxy_walks_right_to_left_past_forged_entries() {
    let flags = ["--trusted-proxy", "127.0.0.1/32"];
    let (_tmp, glint, proxy, v4, v6) = behind_haproxy(&flags, "option forwardfor", "");
    assert_eq!(hit("127.0.0.3", v4, "xff", ""), 200);
    assert_eq!(hit("::1", v6, "xff6", ""), 200);
    // HAProxy appends the real client after the forged entry; glint stops at the first
    // untrusted address from the right, so 6.6.6.6 is never reached.
    let forged = "X-Forwarded-For: 6.6.6.6\r\n";
    assert_eq!(hit("127.0.0.3", v4, "forged", forged), 200);
    // A second HAProxy keeps backend connections alive and shares them between clients:
    // the client IP is per request, never remembered per connection.
    let admin = glint.admin.expect("admin listener address in the log");
    let accepted = metric_sum(admin, "glint_connections_accepted_total", "");
    let pooled = Haproxy::start(&format!(
        "option forwardfor\n  http-reuse always\n  server glint {}",
        glint.addr
    ));
    let clients = ["127.0.0.8", "127.0.0.9", "::1", "127.0.0.8"];
    for (i, client) in clients.iter().enumerate() {
        let to = if client.contains(':') {
            pooled.v6
        } else {
            pooled.v4
        };
        assert_eq!(hit(client, to, &format!("pooled{i}"), ""), 200);
    }
    let pooled_conns = metric_sum(admin, "glint_connections_accepted_total", "") - accepted;
    assert!(
        pooled_conns < 4,
        "HAProxy did not share connections ({pooled_conns})"
    );
    drop((proxy, pooled));
    let records = stop_and_decode(glint);
    for (i, client) in clients.iter().enumerate() {
        let want = owned(client, "xff", "127.0.0.1");
        assert_eq!(client_of(&records, &format!("pooled{i}")), want);
    }
    assert_eq!(
        client_of(&records, "xff"),
        owned("127.0.0.3", "xff", "127.0.0.1")
    );
    assert_eq!(
        client_of(&records, "xff6"),
        owned("::1", "xff", "127.0.0.1")
    );
    assert_eq!(
        client_of(&records, "forged"),
        owned("127.0.0.3", "xff", "127.0.0.1")
    );
}

#[test]
fn forged_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let tmp = tempdir("lb-untrusted");
    let dir = tmp.path();
    // 10.0.0.0/8 matches no loopback peer: nothing this test sends comes from a trusted proxy.
    let glint = Server::start(&dir.join("data"), &["--trusted-proxy", "10.0.0.0/8"]);
    let forged = "X-Forwarded-For: 6.6.6.6, 10.1.2.3\r\n";
    assert_eq!(hit("127.0.0.4", glint.addr, "direct", forged), 200);
    let records = stop_and_decode(glint);
    assert_eq!(
        client_of(&records, "direct"),
        owned("127.0.0.4", "peer", "127.0.0.4")
    );
}

/// Sum over cores of the admin listener's `family` series whose labels end with `last_label`
/// (empty: all of them).
fn metric_sum(admin: SocketAddr, family: &str, last_label: &str) -> u64 {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let values: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(family)?.strip_prefix('{'))
        .filter_map(|l| l.split_once("} "))
        .filter(|(labels, _)| labels.ends_with(last_label))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert!(
        !values.is_empty(),
        "no {family} {last_label} series in\n{text}"
    );
    values.iter().sum()
}

fn proxy_errors(admin: SocketAddr, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    metric_sum(admin, "glint_proxy_protocol_errors_total", &label)
}

/// Reads until the server closes; returns what it sent.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("connection not closed by glint: {e}"),
    }
}

#[test]
fn proxy_protocol_refuses_untrusted_peers_and_malformed_headers() {
    let tmp = tempdir("lb-refuse");
    let dir = tmp.path();
    let flags = [
        "--proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1/32",
        "--head-timeout",
        "1s",
    ];
    let glint = Server::start(&dir.join("data"), &flags);
    let admin = glint.admin.expect("admin listener address in the log");
    assert_eq!(
        (
            proxy_errors(admin, "untrusted_peer"),
            proxy_errors(admin, "malformed")
        ),
        (0, 0)
    );
    // A well-formed PROXY header, but from a peer outside --trusted-proxy.
    let mut untrusted = connect_from("127.0.0.5", glint.addr);
    let _ = untrusted.write_all(
        b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\nGET /p.gif?e=untrusted HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(read_until_closed(&mut untrusted), b"");
    // A trusted peer whose header is not PROXY protocol (a plain request) or a broken one.
    for bad in [
        &b"GET /p.gif?e=plain HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"PROXY TCP4 300.0.0.1 127.0.0.1 4000 80\r\nGET /p.gif?e=bad HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let mut trusted = connect_from("127.0.0.1", glint.addr);
        trusted.write_all(bad).unwrap();
        assert_eq!(read_until_closed(&mut trusted), b"", "{bad:?}");
    }
    // The same trusted peer with a valid v1 header is served.
    let good = b"PROXY TCP4 203.0.113.9 127.0.0.1 4000 80\r\nGET /p.gif?e=good HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut trusted = connect_from("127.0.0.1", glint.addr);
    assert_eq!(roundtrip(&mut trusted, good).map(|r| r.status), Some(200));
    // A v2 header split over three writes (TCP_NODELAY, pauses between) is reassembled.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend([198, 51, 100, 4, 127, 0, 0, 1, 0x13, 0x88, 0, 80]);
    v2.extend_from_slice(b"GET /p.gif?e=split HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut split = connect_from("127.0.0.1", glint.addr);
    split.set_nodelay(true).unwrap();
    for part in [&v2[..5], &v2[5..20], &v2[20..]] {
        split.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let answer = read_response(&mut split, &mut Vec::new(), false);
    assert_eq!(answer.map(|r| r.status), Some(200));
    // Half a header, then silence: closed after --head-timeout, counted as incomplete.
    let mut stalled = connect_from("127.0.0.1", glint.addr);
    stalled.write_all(&v2[..9]).unwrap();
    let since = Instant::now();
    assert_eq!(read_until_closed(&mut stalled), b"");
    assert!(
        since.elapsed() < Duration::from_secs(5),
        "{:?}",
        since.elapsed()
    );
    assert_eq!(proxy_errors(admin, "untrusted_peer"), 1);
    assert_eq!(proxy_errors(admin, "malformed"), 2);
    assert_eq!(proxy_errors(admin, "incomplete"), 1);
    // Refused connections are not leaked in the open-connections gauge.
    drop((untrusted, trusted, split, stalled));
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric_sum(admin, "glint_connections_open", "") != 0 {
        assert!(Instant::now() < deadline, "connections still counted open");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric_sum(admin, "glint_connections_accepted_total", ""), 6);
    let records = stop_and_decode(glint);
    assert_eq!(
        client_of(&records, "split"),
        owned("198.51.100.4", "proxy-protocol", "127.0.0.1")
    );
    assert_eq!(
        records.len(),
        2,
        "only the good requests are recorded: {records:#?}"
    );
    assert_eq!(
        client_of(&records, "good"),
        owned("203.0.113.9", "proxy-protocol", "127.0.0.1")
    );
}

#[test]
fn ip_anonymize_truncates_the_client_and_keeps_the_trusted_proxy() {
    let mut flags = PP_TRUST.to_vec();
    flags.push("--ip-anonymize");
    // With TLVs this time: a CRC32C glint must verify, a unique id and an (empty) authority.
    let tlvs = "send-proxy-v2 proxy-v2-options crc32c,unique-id,authority";
    let (_tmp, glint, proxy, v4, v6) = behind_haproxy(&flags, "", tlvs);
    assert_eq!(hit("127.0.0.2", v4, "anon4", ""), 200);
    assert_eq!(hit("::1", v6, "anon6", ""), 200);
    drop(proxy);
    let records = stop_and_decode(glint);
    assert_eq!(
        client_of(&records, "anon4"),
        owned("127.0.0.0", "proxy-protocol", "127.0.0.1")
    );
    // ::1 keeps its first 48 bits, all zero.
    assert_eq!(
        client_of(&records, "anon6"),
        owned("::", "proxy-protocol", "127.0.0.1")
    );
}

#[test]
fn haproxy_health_checks_pass_with_proxy_v2_local_and_fail_while_draining() {
    let mut flags = PP_TRUST.to_vec();
    flags.extend(["--drain-delay", "4s"]);
    // HAProxy's checks carry a PROXY v2 LOCAL header (no address) before `GET /healthz`.
    let check = "option httpchk GET /healthz\n  http-check expect status 200";
    let opts = "send-proxy-v2 proxy-v2-options crc32c,unique-id check inter 100ms rise 1 fall 1";
    let (_tmp, glint, proxy, v4, _) = behind_haproxy(&flags, check, opts);
    proxy.wait_server_state("UP", "L7OK", Duration::from_secs(10));
    assert_eq!(hit("127.0.0.6", v4, "while-up", ""), 200);
    let admin = glint.admin.expect("admin listener address in the log");
    assert_eq!(proxy_errors(admin, "malformed"), 0);
    // SIGTERM: /healthz answers 503 during the drain delay, so HAProxy takes glint out first.
    signal(&glint.child, "-TERM");
    proxy.wait_server_state("DOWN", "L7STS", Duration::from_secs(3));
    drop(proxy);
    // A second SIGTERM cuts the drain short.
    let records = stop_and_decode(glint);
    // Dozens of health checks, none recorded: only the one beacon is on disk.
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        client_of(&records, "while-up"),
        owned("127.0.0.6", "proxy-protocol", "127.0.0.1")
    );
}

#[test]
fn chunked_sendbeacon_post_through_haproxy_is_stored_whole() {
    let flags = ["--trusted-proxy", "127.0.0.1/32"];
    let (_tmp, glint, proxy, v4, _) = behind_haproxy(&flags, "option forwardfor", "");
    let mut s = connect_from("127.0.0.10", v4);
    s.set_nodelay(true).unwrap();
    let head = "POST /collect?e=chunked HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    // Chunks in separate writes with pauses: HAProxy forwards them as they come.
    for chunk in ["5\r\nhello\r\n", "7\r\n, glint\r\n", "0\r\n\r\n"] {
        std::thread::sleep(Duration::from_millis(30));
        s.write_all(chunk.as_bytes()).unwrap();
    }
    let answer = read_response(&mut s, &mut Vec::new(), false);
    assert_eq!(answer.map(|r| r.status), Some(204));
    drop(proxy);
    let dir = glint.data_dir.clone();
    let records = stop_and_decode(glint);
    // HAProxy kept the chunked framing, so glint's chunked decoder did the reassembly.
    let chunked = decode_jsonl(&dir, &["--fields", "query,chunked"]);
    assert_eq!(chunked[0]["chunked"], true, "{chunked:?}");
    assert_eq!(
        client_of(&records, "chunked"),
        owned("127.0.0.10", "xff", "127.0.0.1")
    );
    let r = &records[0];
    assert_eq!(
        (r["body"].as_str(), r["method"].as_str()),
        (Some("hello, glint"), Some("POST")),
        "{r}"
    );
}
