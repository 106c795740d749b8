//! Per-path behaviour from a TOML config, click redirects, CORS and Sec-GPC policy, over real sockets.

mod common;
use common::*;

/// A server started from a config file in a temp dir (returned too: it holds the data dir).
fn config_server(extra_toml: &str, cli: &[&str]) -> (tempfile::TempDir, Server) {
    let tmp = tempdir("routes");
    let dir = tmp.path();
    let cfg = dir.join("glint.toml");
    std::fs::write(
        &cfg,
        format!(
            "threads = 4\ncors-origin = [\"https://shop.example\"]\nredirect-allow = [\"shop.example\"]\n[[route]]\npath = \"/quiet\"\nresponse = \"204\"\nrecord = false\n{extra_toml}"
        ),
    )
    .unwrap();
    let mut args = vec!["--config", cfg.to_str().unwrap(), "--io", "epoll"];
    args.extend_from_slice(cli);
    let server = Server::start(&dir.join("data"), &args);
    (tmp, server)
}

#[test]
fn config_file_routes_redirects_and_cors() {
    // The command line's --threads 2 (added by Server::start) overrides the file's 4.
    let (_tmp, server) = config_server("", &[]);
    assert!(
        server.log_text().contains("with 2 workers"),
        "{}",
        server.log_text()
    );
    let dir = server.data_dir.clone();
    let mut s = server.connect();
    let q = roundtrip(&mut s, b"GET /quiet HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(q.status, 204);
    let r = roundtrip(
        &mut s,
        b"GET /r?cid=9&u=https%3A%2F%2Fwww.shop.example%2Fsale HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (r.status, r.header("Location")),
        (302, Some("https://www.shop.example/sale"))
    );
    let evil = roundtrip(
        &mut s,
        b"GET /r?u=https%3A%2F%2Fevil.example%2F HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    assert_eq!((evil.status, evil.header("Location")), (400, None));
    let pre = roundtrip(&mut s, b"OPTIONS /collect HTTP/1.1\r\nHost: a\r\nOrigin: https://shop.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n").unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("Access-Control-Allow-Origin"),
        Some("https://shop.example")
    );
    assert_eq!(pre.header("Access-Control-Allow-Credentials"), Some("true"));
    assert_eq!(pre.header("Access-Control-Max-Age"), Some("86400"));
    assert!(pre
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("content-type"));
    let other = roundtrip(
        &mut s,
        b"OPTIONS /collect HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (other.status, other.header("Access-Control-Allow-Origin")),
        (204, None)
    );
    let body = br#"{"schema":"iglu:x","data":[]}"#;
    let post = format!("POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: a\r\nOrigin: https://shop.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    let p = roundtrip(&mut s, &[post.as_bytes(), body].concat()).unwrap();
    assert_eq!(
        (p.status, p.header("Access-Control-Allow-Origin")),
        (204, Some("https://shop.example"))
    );
    let m = roundtrip(
        &mut s,
        b"GET /matomo.php?idsite=1&rec=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (m.status, m.header("Content-Type")),
        (200, Some("image/gif"))
    );
    drop(s);
    assert!(server.stop().success());
    let recs = ring_records(&dir);
    let got: Vec<(u16, &[u8], &[u8])> = recs
        .iter()
        .map(|r| (r.status, &r.target[..], &r.body[..]))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                302,
                &b"/r?cid=9&u=https%3A%2F%2Fwww.shop.example%2Fsale"[..],
                &b""[..]
            ),
            (204, b"/com.snowplowanalytics.snowplow/tp2", body),
            (200, b"/matomo.php?idsite=1&rec=1", b""),
        ],
        "quiet route, refused redirect and preflights are not recorded"
    );
}

#[test]
fn gpc_drop_answers_but_stores_nothing_and_flag_mode_marks() {
    for (policy, stored) in [("drop", false), ("flag", true)] {
        let tmp = tempdir("gpc");
        let dir = tmp.path();
        let server = Server::start(dir, &["--io", "epoll", "--honor-gpc", policy]);
        let mut s = server.connect();
        assert_eq!(
            roundtrip(
                &mut s,
                b"GET /p?gpc HTTP/1.1\r\nHost: a\r\nSec-GPC: 1\r\nDNT: 1\r\n\r\n"
            )
            .unwrap()
            .status,
            200
        );
        assert_eq!(
            roundtrip(&mut s, b"GET /p?plain HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap()
                .status,
            200
        );
        drop(s);
        assert!(server.stop().success());
        let recs = ring_records(dir);
        let gpc: Vec<_> = recs.iter().filter(|r| r.target == b"/p?gpc").collect();
        assert_eq!(gpc.len(), usize::from(stored), "{policy}");
        if stored {
            use glint::record::flags;
            assert_eq!(
                gpc[0].flags & (flags::GPC | flags::DNT),
                flags::GPC | flags::DNT
            );
        }
        assert!(recs.iter().any(|r| r.target == b"/p?plain"));
    }
}

#[test]
fn bad_config_file_is_one_clear_line() {
    let tmp = tempdir("badcfg");
    let dir = tmp.path();
    let cfg = dir.join("glint.toml");
    for (text, needle) in [
        ("threads = [", "glint.toml"),
        ("no-such-flag = 1", "--no-such-flag"),
        (
            "[[route]]\npath = \"x\"\nresponse = \"gif\"",
            "must start with /",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new(GLINT)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                cfg.to_str().unwrap(),
                "--data-dir",
            ])
            .arg(dir.join("d"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
