//! `glint serve` over real loopback sockets, for every I/O backend: answers, framing,
//! keep-alive, pipelining, and every acknowledged request in the ring with the exact bytes sent.

#[macro_use]
mod common;
use common::*;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

for_each_backend_and_single_recv!(
    get_head_options_and_disallowed_methods,
    pipelined_batch_answered_in_order_and_recorded,
    byte_at_a_time_request,
    requests_sent_before_a_half_close_are_all_answered,
    keep_alive_and_close_rules,
    acknowledged_requests_are_in_the_ring_with_exact_bytes,
    post_bodies_content_length_chunked_and_expect_continue,
    a_lone_chunked_post_is_not_pipelined,
    bad_requests_get_status_and_close,
    health_check_is_not_recorded,
    full_ring_answers_503_and_never_overwrites,
    response_204_mode,
    large_beacons_are_stored_whole_in_the_ring_and_in_segments,
);

fn start(data_dir: &Path, io: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--io", io];
    args.extend_from_slice(extra);
    Server::start(data_dir, &args)
}

fn get_head_options_and_disallowed_methods(io: &str) {
    let tmp = tempdir("methods");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let r = roundtrip(
        &mut s,
        b"GET /p.gif?e=open&cid=42 HTTP/1.1\r\nHost: t.example\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("image/gif"));
    assert_eq!(r.body, glint::http::response::GIF.to_vec());
    assert!(r.header("Cache-Control").unwrap().contains("no-store"));
    assert_eq!(r.header("Date").unwrap().len(), 29);
    let h = roundtrip(&mut s, b"HEAD /p.gif HTTP/1.1\r\nHost: t.example\r\n\r\n").unwrap();
    assert_eq!((h.status, h.header("Content-Length")), (200, Some("43")));
    assert!(h.body.is_empty());
    let d = roundtrip(&mut s, b"DELETE /p.gif HTTP/1.1\r\nHost: t.example\r\n\r\n").unwrap();
    assert_eq!(d.status, 405);
    assert_eq!(d.header("Allow"), Some("GET, HEAD, POST, OPTIONS"));
    let u = roundtrip(&mut s, b"BREW /pot HTTP/1.1\r\nHost: t.example\r\n\r\n").unwrap();
    assert_eq!(u.status, 501);
    let o = roundtrip(
        &mut s,
        b"OPTIONS /p.gif HTTP/1.1\r\nHost: t.example\r\n\r\n",
    )
    .unwrap();
    assert_eq!(o.status, 204);
    // Still the same connection: 405 and 501 keep it open.
    let again = roundtrip(
        &mut s,
        b"GET http://t.example/abs?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n",
    )
    .unwrap();
    assert_eq!(again.status, 200);
    drop(s);
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    let got: Vec<(&str, &[u8])> = recs
        .iter()
        .map(|r| (r.method.as_str(), &r.target[..]))
        .collect();
    // Beacons are recorded; 405, 501 and OPTIONS answers are counted, not logged.
    assert_eq!(
        got,
        vec![
            ("GET", &b"/p.gif?e=open&cid=42"[..]),
            ("HEAD", b"/p.gif"),
            ("GET", b"http://t.example/abs?x=1")
        ]
    );
    assert_ne!(recs[2].flags & glint::record::flags::ABSOLUTE_FORM, 0);
}

fn pipelined_batch_answered_in_order_and_recorded(io: &str) {
    let tmp = tempdir("pipeline");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend_from_slice(
            format!("GET /p.gif?i={i} HTTP/1.1\r\nHost: a\r\nUser-Agent: pipe\r\n\r\n").as_bytes(),
        );
    }
    s.write_all(&batch).unwrap();
    let mut pending = Vec::new();
    for _ in 0..50 {
        assert_eq!(
            read_response(&mut s, &mut pending, false).unwrap().status,
            200
        );
    }
    drop(s);
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    assert_eq!(recs.len(), 50);
    let targets: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.target.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("/p.gif?i={i}")).collect();
    assert_eq!(
        targets, expected,
        "one connection, one core, answered and recorded in order"
    );
    assert!(recs[1..]
        .iter()
        .any(|r| r.flags & glint::record::flags::PIPELINED != 0));
    assert_eq!(recs[0].flags & glint::record::flags::PIPELINED, 0);
}

fn byte_at_a_time_request(io: &str) {
    let tmp = tempdir("bytewise");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let raw = b"GET /p.gif?slow=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: drip\r\nReferer: https://r.example/\r\n\r\n";
    for b in raw.iter() {
        s.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = read_response(&mut s, &mut Vec::new(), false).unwrap();
    assert_eq!(r.status, 200);
    drop(s);
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (&recs[0].target[..], &recs[0].ua[..], &recs[0].referer[..]),
        (
            &b"/p.gif?slow=1"[..],
            &b"drip"[..],
            &b"https://r.example/"[..]
        )
    );
}

/// A client that sends its requests in bursts, some while answers are being written, then
/// half-closes: every request before the end is answered and recorded, then the server closes.
fn requests_sent_before_a_half_close_are_all_answered(io: &str) {
    let tmp = tempdir("halfclose");
    let server = start(tmp.path(), io, &["--threads", "1"]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    s.set_nodelay(true).unwrap();
    let n = 200;
    for burst in 0..10 {
        let mut bytes = Vec::new();
        for i in burst * 20..(burst + 1) * 20 {
            bytes.extend_from_slice(format!("GET /h?i={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        }
        s.write_all(&bytes).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let r = read_response(&mut s, &mut pending, false)
            .unwrap_or_else(|| panic!("response {i} of {n} missing"));
        assert_eq!(r.status, 200);
    }
    assert!(
        read_response(&mut s, &mut pending, false).is_none() && pending.is_empty(),
        "the server closes after the last answer"
    );
    drop(s);
    assert!(server.stop().success());
    let targets: Vec<Vec<u8>> = ring_records(&dir).into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        (0..n)
            .map(|i| format!("/h?i={i}").into_bytes())
            .collect::<Vec<_>>()
    );
}

fn keep_alive_and_close_rules(io: &str) {
    let tmp = tempdir("keepalive");
    let server = start(tmp.path(), io, &[]);
    let mut s = server.connect();
    let r = roundtrip(
        &mut s,
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(closed_by_server(&mut s));
    let mut s = server.connect();
    let r = roundtrip(&mut s, b"GET /a HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    assert!(closed_by_server(&mut s));
    let mut s = server.connect();
    for _ in 0..3 {
        let r = roundtrip(&mut s, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }
    let r = roundtrip(&mut s, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!((r.status, r.header("Connection")), (200, None));
}

fn acknowledged_requests_are_in_the_ring_with_exact_bytes(io: &str) {
    let tmp = tempdir("exact");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut sent = HashSet::new();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let port = s.local_addr().unwrap().port();
                let mut acked = Vec::new();
                for i in 0..200 {
                    let target = format!("/p.gif?t={t}&i={i}&u=%E2%9C%93&x={}", "z".repeat(i % 40));
                    let ua = format!("Mozilla/5.0 (test {t}) \"quoted\" {i}");
                    let referer = format!("https://shop.example/{t}/{i}?q=a,b");
                    let raw = format!("GET {target} HTTP/1.1\r\nHost: t.example\r\nUser-Agent: {ua}\r\nReferer: {referer}\r\nCookie: secret=1\r\n\r\n");
                    let r = roundtrip(&mut s, raw.as_bytes()).unwrap();
                    assert_eq!(r.status, 200);
                    acked.push((target.into_bytes(), ua.into_bytes(), referer.into_bytes(), port));
                }
                acked
            })
        })
        .collect();
    for t in threads {
        sent.extend(t.join().unwrap());
    }
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    let logged: HashSet<_> = recs
        .iter()
        .map(|r| {
            (
                r.target.clone(),
                r.ua.clone(),
                r.referer.clone(),
                r.peer_port,
            )
        })
        .collect();
    assert_eq!(recs.len(), 800);
    assert_eq!(logged, sent);
    assert!(recs
        .iter()
        .all(|r| r.peer == std::net::IpAddr::from([127, 0, 0, 1])
            && r.status == 200
            && r.method == "GET"));
    let ids: HashSet<_> = recs.iter().map(|r| (r.core, r.seq)).collect();
    assert_eq!(ids.len(), recs.len(), "(core, seq) unique");
}

/// A chunked POST arriving whole in one read is answered after its body is decoded; it is
/// not behind another request, so it is not flagged `pipelined`. A GET sent with it is.
fn a_lone_chunked_post_is_not_pipelined(io: &str) {
    use glint::record::flags::PIPELINED;
    let tmp = tempdir("chunked-alone");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let chunked =
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let mut s = server.connect();
    assert_eq!(roundtrip(&mut s, chunked.as_bytes()).unwrap().status, 204);
    let mut s = server.connect();
    let both = format!("{chunked}GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    s.write_all(both.as_bytes()).unwrap();
    let mut pending = Vec::new();
    for status in [204, 200] {
        assert_eq!(
            read_response(&mut s, &mut pending, false).unwrap().status,
            status
        );
    }
    drop(s);
    assert!(server.stop().success());
    let mut recs: Vec<(Vec<u8>, bool)> = ring_records(&dir)
        .into_iter()
        .map(|r| (r.target, r.flags & PIPELINED != 0))
        .collect();
    recs.sort();
    assert_eq!(
        recs,
        [
            (b"/after".to_vec(), true),
            (b"/c".to_vec(), false),
            (b"/c".to_vec(), false)
        ]
    );
}

fn post_bodies_content_length_chunked_and_expect_continue(io: &str) {
    let tmp = tempdir("post");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let body = br#"{"e":"click","id":7}"#;
    let raw = format!("POST /collect HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write_all(raw.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    s.write_all(body).unwrap();
    assert_eq!(
        read_response(&mut s, &mut Vec::new(), false)
            .unwrap()
            .status,
        204
    );
    let chunked = b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
    assert_eq!(roundtrip(&mut s, chunked).unwrap().status, 204);
    s.write_all(
        b"POST /expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let mut pending = Vec::new();
    assert_eq!(
        read_response(&mut s, &mut pending, false).unwrap().status,
        100
    );
    s.write_all(b"ping").unwrap();
    assert_eq!(
        read_response(&mut s, &mut pending, false).unwrap().status,
        204
    );
    drop(s);
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    let bodies: Vec<(&[u8], &[u8])> = recs.iter().map(|r| (&r.target[..], &r.body[..])).collect();
    assert_eq!(
        bodies,
        vec![
            (&b"/collect"[..], &body[..]),
            (b"/chunked", b"hello world"),
            (b"/expect", b"ping")
        ]
    );
}

fn bad_requests_get_status_and_close(io: &str) {
    let tmp = tempdir("bad");
    let server = start(tmp.path(), io, &[]);
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n",
            413,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    ];
    for (raw, status) in cases {
        let mut s = server.connect();
        let r = roundtrip(&mut s, raw)
            .unwrap_or_else(|| panic!("no answer to {:?}", String::from_utf8_lossy(raw)));
        assert_eq!(r.status, *status, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(
            closed_by_server(&mut s),
            "{:?} left open",
            String::from_utf8_lossy(raw)
        );
    }
    let mut s = server.connect();
    let huge = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(10_000));
    assert_eq!(roundtrip(&mut s, huge.as_bytes()).unwrap().status, 414);
    let mut s = server.connect();
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17_000)
    );
    assert_eq!(
        roundtrip(&mut s, big_header.as_bytes()).unwrap().status,
        431
    );
}

fn health_check_is_not_recorded(io: &str) {
    let tmp = tempdir("health");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let r = roundtrip(&mut s, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"ok\n"[..]));
    drop(s);
    assert!(server.stop().success());
    assert!(ring_records(&dir).is_empty());
}

fn full_ring_answers_503_and_never_overwrites(io: &str) {
    let tmp = tempdir("full");
    let dir = tmp.path();
    // 8 slots of 512 bytes; the largest request (112 + 256 + 600 bytes) takes 2 slots.
    let server = Server::start(
        dir,
        &[
            "--io",
            io,
            "--threads",
            "1",
            "--ring-slots",
            "8",
            "--max-target",
            "128",
            "--max-head-size",
            "256",
            "--max-body",
            "600",
        ],
    );
    let mut s = server.connect();
    let get = |s: &mut std::net::TcpStream, i: u32| {
        roundtrip(
            s,
            format!("GET /p?n={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        )
        .unwrap()
    };
    for i in 0..7 {
        assert_eq!(get(&mut s, i).status, 200, "request {i}");
    }
    // One slot left: a two-slot record does not fit, and is neither cut nor acknowledged.
    let body = "b".repeat(500);
    let post = format!(
        "POST /p HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = roundtrip(&mut s, post.as_bytes()).unwrap();
    assert_eq!(
        r.status, 503,
        "the 503 counts the room the whole record needs"
    );
    assert_eq!(r.header("Retry-After"), Some("1"));
    // A one-slot record still fits, then nothing does.
    assert_eq!(get(&mut s, 7).status, 200);
    let r = get(&mut s, 8);
    assert_eq!((r.status, r.header("Retry-After")), (503, Some("1")));
    drop(s);
    assert!(server.stop().success());
    let records = ring_records(dir);
    let targets: Vec<Vec<u8>> = records.iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        (0..8)
            .map(|i| format!("/p?n={i}").into_bytes())
            .collect::<Vec<_>>()
    );
}

fn response_204_mode(io: &str) {
    let tmp = tempdir("204");
    let server = start(tmp.path(), io, &["--response", "204"]);
    let mut s = server.connect();
    let r = roundtrip(&mut s, b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!((r.status, r.header("Content-Length")), (204, None));
}

#[test]
fn startup_errors_are_one_clear_line() {
    let tmp = tempdir("notadir");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--slot-size".into(), "300".into()],
            "slot size 300 must be a power of two",
        ),
        (
            vec!["--ring-slots".into(), "1000".into()],
            "ring slots 1000 must be a power of two",
        ),
        (
            // 4096 x 2^52 wraps a u64 to 0: refused before any file is made.
            vec![
                "--slot-size".into(),
                "4096".into(),
                "--ring-slots".into(),
                "4503599627370496".into(),
            ],
            "ring slots 4503599627370496 must be a power of two from 2 to 4294967296",
        ),
        (
            vec![
                "--slot-size".into(),
                "4096".into(),
                "--ring-slots".into(),
                "4294967296".into(),
            ],
            "exceed the largest ring file, 4096 GiB",
        ),
        (
            // Every field is stored whole: the largest request must fit one record...
            vec!["--max-body".into(), "3000000".into()],
            "a record is at most 2097152 bytes: lower --max-body",
        ),
        (
            // ...and at most half the ring.
            vec!["--ring-slots".into(), "64".into()],
            "needs 161 slots of 512 bytes, but one record may take at most 32 (half of --ring-slots 64)",
        ),
        (
            vec!["--data-dir".into(), file.join("sub").display().to_string()],
            "cannot create",
        ),
        (
            vec!["--sync-interval".into(), "soon".into()],
            "invalid duration",
        ),
        (
            vec!["--listen".into(), "nonsense".into()],
            "invalid socket address",
        ),
    ];
    for (args, needle) in cases {
        let out = std::process::Command::new(GLINT)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn second_server_on_same_data_dir_is_refused() {
    let tmp = tempdir("lock");
    let dir = tmp.path();
    let _first = Server::start(dir, &["--io", "epoll"]);
    let out = std::process::Command::new(GLINT)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ring-slots",
            "4096",
            "--threads",
            "2",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another glint serve"));
}

/// Tracker-sized requests (a Snowplow GET `/i` of ~1 KB, batched tp2 POSTs up to ~60 KB): every
/// 2xx is stored whole, byte for byte, in records of many slots, in the ring and after
/// compaction; nothing is marked truncated.
fn large_beacons_are_stored_whole_in_the_ring_and_in_segments(io: &str) {
    let tmp = tempdir("large");
    let server = start(tmp.path(), io, &[]);
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let ua = format!("Mozilla/5.0 (X11; Linux x86_64) {}", "A".repeat(100));
    let mut sent: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for i in 0..24usize {
        let (raw, target, body) = if i % 3 == 0 {
            let target = format!("/i?e=pv&n={i}&cx={}", "eyJzY2hlbWEiOiJpZ2x1".repeat(45));
            let raw = format!(
                "GET {target} HTTP/1.1\r\nHost: t\r\nUser-Agent: {ua}\r\nReferer: https://shop.example/p?{i}\r\n\r\n"
            );
            (raw.into_bytes(), target.into_bytes(), Vec::new())
        } else {
            // A batch of `events` Snowplow-like events: 2.4 KB each, up to 60 KB.
            let events = [1, 12, 24][i % 3];
            let event = format!("{{\"e\":\"pv\",\"n\":{i},\"cx\":\"{}\"}}", "x".repeat(2400));
            let body = format!(
                "{{\"schema\":\"payload_data\",\"data\":[{}]}}",
                vec![event; events].join(",")
            );
            let target = "/com.snowplowanalytics.snowplow/tp2".to_string();
            let mut raw = format!(
                "POST {target} HTTP/1.1\r\nHost: t\r\nUser-Agent: {ua}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            raw.extend_from_slice(body.as_bytes());
            (raw, target.into_bytes(), body.into_bytes())
        };
        let r = roundtrip(&mut s, &raw).unwrap();
        assert!((200..300).contains(&r.status), "request {i}: {}", r.status);
        sent.push((target, body));
    }
    drop(s);
    assert!(server.stop().success());
    let records = ring_records(&dir);
    let got: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|r| (r.target.clone(), r.body.clone()))
        .collect();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "every record byte-equal to what was sent");
    assert!(records
        .iter()
        .all(|r| r.flags & glint::record::flags::TRUNC_ANY == 0));
    compact_once(&dir, &[]);
    let rows = decode_jsonl(
        &dir.join("segments"),
        &["--fields", "target_b64,body_b64,ua,truncated"],
    );
    assert_eq!(rows.len(), sent.len());
    for (row, (target, body)) in rows.iter().zip(&sent) {
        assert_eq!(&b64(row["target_b64"].as_str().unwrap()), target);
        assert_eq!(&b64(row["body_b64"].as_str().unwrap()), body);
        assert_eq!(row["ua"].as_str().unwrap(), ua);
        assert_eq!(row["truncated"], serde_json::json!([]));
    }
}

/// Standard base64 (RFC 4648) decoding of what decode prints.
fn b64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | u32::from(val(c)) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
