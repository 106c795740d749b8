//! A real headless Chromium loads a page from one loopback origin that sends beacons to glint on
//! another: an `<img>` pixel, `navigator.sendBeacon` with a JSON text body, and a keepalive
//! credentialed `fetch` with `Content-Type: application/json`, which needs a CORS preflight.
//!
//! Needs the Debian package `chromium` (`.ci/run` installs it).

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const BEACON_BODY: &str = r#"{"e":"beacon","items":[1,2]}"#;
const FETCH_BODY: &str = r#"{"e":"fetch","ok":true}"#;
const COOKIES: &str = "Set-Cookie: vid=v-4711; Path=/\r\nSet-Cookie: session=s3cr3t-77; Path=/\r\n";

/// The test page: four hits on glint (the pixel, two beacons, the fetch), then a `#done` marker with what each call returned.
/// The referrer policy makes Chromium send the full page URL cross-origin (its default,
/// strict-origin-when-cross-origin, would send only the origin).
fn page(glint: SocketAddr) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer-when-downgrade">
<title>glint browser test</title>
</head><body>
<img id="pixel" src="http://{glint}/p.gif?e=img">
<script>
const glint = "http://{glint}";
const pixel = new Promise((done) => {{
  const img = document.getElementById("pixel");
  if (img.complete) {{ done(img.naturalWidth > 0 ? "load" : "error"); return; }}
  img.onload = () => done("load");
  img.onerror = () => done("error");
}});
const queued = navigator.sendBeacon(glint + "/collect?e=beacon", {beacon:?})
  && navigator.sendBeacon(glint + "/collect?e=form", new URLSearchParams({{a: "1", b: "x y"}}));
const fetched = fetch(glint + "/collect?e=fetch", {{
  method: "POST", keepalive: true, mode: "cors", credentials: "include",
  headers: {{"Content-Type": "application/json"}}, body: {fetch:?},
}}).then((r) => "status " + r.status, (e) => "failed " + e);
Promise.all([pixel, fetched]).then(([img, fetch]) => {{
  const done = document.createElement("pre");
  done.id = "done";
  done.textContent = JSON.stringify({{img, beacon: queued, fetch, ua: navigator.userAgent}});
  document.body.appendChild(done);
}});
</script></body></html>"#,
        beacon = BEACON_BODY,
        fetch = FETCH_BODY,
    )
}

/// A tiny HTTP server for the page on its own origin; stops on drop.
struct PageServer {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl PageServer {
    fn start(listener: TcpListener, html: String) -> PageServer {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let (stop2, served2) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the test stops it, and it gives up on its own after a minute.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(line) = serve_page(stream, &html) {
                            served2.lock().unwrap().push(line);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        PageServer {
            stop,
            served,
            thread: Some(thread),
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request: the page for `/page.html...`, 404 for anything else (the favicon).
/// The page sets two cookies as a site would; cookies ignore ports, so the browser sends them
/// to glint too: `vid` is the visitor id glint captures, `session` must never be stored.
/// Returns the request line.
fn serve_page(mut stream: TcpStream, html: &str) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or("").to_string();
    let (status, cookies, body) = match line.split(' ').nth(1) {
        Some(t) if t.starts_with("/page.html") => ("200 OK", COOKIES, html),
        _ => ("404 Not Found", "", "not found\n"),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\n{cookies}Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).ok()?;
    Some(line)
}

/// Headless Chromium printing the DOM of `url` once the page is idle; killed on drop.
struct Chromium {
    child: Child,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs Chromium on `url` (at most 25 s) and returns the dumped DOM and its stderr.
fn dump_dom(url: &str, dir: &Path) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is not installed: run .ci/run (it installs the Debian package chromium)"
    );
    let (out, err) = (dir.join("dom.html"), dir.join("chromium.log"));
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn chromium");
    let mut chromium = Chromium { child };
    let status = wait_bounded(&mut chromium.child, Duration::from_secs(25));
    let dom = std::fs::read_to_string(&out).unwrap_or_default();
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "chromium exited with {status}:\n{log}");
    (dom, log)
}

/// The JSON in the page's `<pre id="done">` marker.
fn marker(dom: &str, log: &str) -> Value {
    let text = dom
        .split_once("<pre id=\"done\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| json.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("the page did not finish; DOM:\n{dom}\nchromium:\n{log}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Sum over cores of `glint_records_written_total` on the admin listener.
fn records_written(admin: SocketAddr) -> u64 {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with("glint_records_written_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn chromium_pixel_send_beacon_and_preflighted_fetch_reach_glint() {
    let started = Instant::now();
    let dir = tempdir("browser");
    // The page's origin must be known before glint starts (--cors-origin names it).
    let page_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", page_listener.local_addr().unwrap());
    let glint = Server::start(
        &dir.join("data"),
        &["--cors-origin", &origin, "--capture-cookie", "vid"],
    );
    let admin = glint.admin.expect("admin listener address in the log");
    let pages = PageServer::start(page_listener, page(glint.addr));
    let url = format!("{origin}/page.html?campaign=spring");
    let (dom, log) = dump_dom(&url, &dir);
    let done = marker(&dom, &log);
    assert_eq!(done["img"], "load", "{done}");
    assert_eq!(done["beacon"], true, "sendBeacon refused to queue: {done}");
    // The preflight succeeded, or the fetch would have failed with a TypeError.
    assert_eq!(done["fetch"], "status 204", "{done}");
    let ua = done["ua"].as_str().unwrap().to_string();
    assert!(ua.contains("Chrome/"), "{ua}");
    assert!(
        pages.served.lock().unwrap()[0].starts_with("GET /page.html"),
        "{:?}",
        pages.served.lock().unwrap()
    );
    // sendBeacon is not awaited by the page: wait (bounded) until all four are in the ring.
    let deadline = Instant::now() + Duration::from_secs(5);
    while records_written(admin) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let data = glint.data_dir.clone();
    assert!(glint.stop().success());
    let records = decode_jsonl(&data, &[]);
    let hit = |tag: &str| -> &Value {
        let found: Vec<&Value> = records
            .iter()
            .filter(|r| r["query"] == format!("e={tag}"))
            .collect();
        assert_eq!(found.len(), 1, "{tag} in {records:#?}");
        found[0]
    };
    for (tag, method, path, body) in [
        ("img", "GET", "/p.gif", None),
        ("beacon", "POST", "/collect", Some(BEACON_BODY)),
        ("form", "POST", "/collect", Some("a=1&b=x+y")),
        ("fetch", "POST", "/collect", Some(FETCH_BODY)),
    ] {
        let r = hit(tag);
        assert_eq!(
            (r["method"].as_str(), r["path"].as_str()),
            (Some(method), Some(path)),
            "{r}"
        );
        assert_eq!(r["ua"], ua.as_str(), "{r}");
        assert_eq!(r["referer"], url.as_str(), "{r}");
        assert_eq!(r["body"].as_str(), body, "{r}");
        assert_eq!(r["cookie"], "v-4711", "{r}");
        assert!(
            !r.to_string().contains("s3cr3t"),
            "other cookie stored: {r}"
        );
    }
    assert_eq!(hit("beacon")["body_kind"], "text/plain");
    assert_eq!(
        hit("form")["body_kind"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(hit("fetch")["body_kind"], "application/json");
    // Only the four hits: the preflight (OPTIONS) is answered but never recorded.
    assert_eq!(records.len(), 4, "{records:#?}");
    // Chromium's profile is megabytes; the rest of the temp dir is kept for inspection.
    let _ = std::fs::remove_dir_all(dir.join("profile"));
    eprintln!("browser test took {:?}, {ua}", started.elapsed());
}
