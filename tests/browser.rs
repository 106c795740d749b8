//! A real headless Chromium loads a page from one loopback origin that sends beacons to glint on
//! another: an `<img>` pixel, `navigator.sendBeacon` with a JSON text body, and a keepalive
//! credentialed `fetch` with `Content-Type: application/json`, which needs a CORS preflight.
//!
//! The real Snowplow browser tracker (npm `@snowplow/browser-tracker` v4, its UMD build in a
//! `<script>` tag) sends a page view to `/i` and a batch of events to tp2: each is stored whole.
//!
//! Needs the Debian package `chromium` and npm (`.ci/run` installs them and the tracker).

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
    /// Serves `files`: (path prefix, content type, body); the first one is the page, and only
    /// the page sets cookies.
    fn start(
        listener: TcpListener,
        files: Vec<(&'static str, &'static str, String)>,
    ) -> PageServer {
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
                        if let Some(line) = serve_page(stream, &files) {
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

/// Answers one request: the first of `files` whose path prefix the target starts with, 404 for
/// anything else (the favicon). The page (the first file) sets two cookies as a site would;
/// cookies ignore ports, so the browser sends them to glint too: `vid` is the visitor id glint
/// captures, `session` must never be stored. Returns the request line.
fn serve_page(
    mut stream: TcpStream,
    files: &[(&'static str, &'static str, String)],
) -> Option<String> {
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
    let target = line.split(' ').nth(1).unwrap_or("");
    let (status, cookies, kind, body) =
        match files.iter().position(|(p, _, _)| target.starts_with(p)) {
            Some(i) => {
                let (_, kind, body) = &files[i];
                (
                    "200 OK",
                    if i == 0 { COOKIES } else { "" },
                    *kind,
                    body.as_str(),
                )
            }
            None => ("404 Not Found", "", "text/plain", "not found\n"),
        };
    let answer = format!(
        "HTTP/1.1 {status}\r\n{cookies}Content-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
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
        .map(|(json, _)| {
            json.replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
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
    let tmp = tempdir("browser");
    let dir = tmp.path();
    // The page's origin must be known before glint starts (--cors-origin names it).
    let page_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", page_listener.local_addr().unwrap());
    let glint = Server::start(
        &dir.join("data"),
        &["--cors-origin", &origin, "--capture-cookie", "vid"],
    );
    let admin = glint.admin.expect("admin listener address in the log");
    let pages = PageServer::start(
        page_listener,
        vec![("/page.html", "text/html", page(glint.addr))],
    );
    let url = format!("{origin}/page.html?campaign=spring");
    let (dom, log) = dump_dom(&url, dir);
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

/// The npm package of the real Snowplow browser tracker; `.ci/run` installs the same one into
/// [`SNOWPLOW_DIR`] under `target/`.
const SNOWPLOW_PACKAGE: &str = "@snowplow/browser-tracker@4";
const SNOWPLOW_DIR: &str = "target/npm-snowplow";
/// The package's self-contained UMD build: loaded with a `<script>` tag, it defines
/// `window.snowplowBrowserTracking`.
const SNOWPLOW_UMD: &str = "node_modules/@snowplow/browser-tracker/dist/index.umd.min.js";
/// Events the POST tracker batches into one request (its `bufferSize`).
const SNOWPLOW_BATCH: usize = 12;
/// The first release cut a record to what fit one slot: the tracker's `/i` target came out as 265
/// bytes and a tp2 body as 233 bytes (issue 11).
const FIRST_RELEASE_TARGET: usize = 265;
const FIRST_RELEASE_BODY: usize = 233;

/// The tracker's UMD build, installed with npm into `target/` when missing; `None` (the test is
/// skipped, loudly) only when npm is not installed.
fn snowplow_tracker() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(SNOWPLOW_DIR);
    let file = root.join(SNOWPLOW_UMD);
    if !file.is_file() {
        let npm = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&root)
            .arg(SNOWPLOW_PACKAGE)
            .stdin(Stdio::null())
            .status();
        match npm {
            Err(e) => {
                eprintln!(
                    "SKIPPED: the Snowplow tracker test needs npm to install {SNOWPLOW_PACKAGE} ({e}); .ci/run installs it"
                );
                return None;
            }
            Ok(status) => assert!(status.success(), "npm install {SNOWPLOW_PACKAGE}: {status}"),
        }
    }
    Some(std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
}

/// A page with two trackers on glint: `get` sends a page view with two custom contexts to `/i`,
/// `post` batches [`SNOWPLOW_BATCH`] self-describing events (each with the same two contexts)
/// into one POST to tp2, with every other setting at the tracker's default. The tracker's own
/// `customFetch` hook records the exact URL and body of every request it sends, then the page
/// writes them into the `#done` marker.
fn snowplow_page(glint: SocketAddr) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer-when-downgrade">
<title>glint snowplow test</title>
<script src="/sp.js"></script>
</head><body>
<script>
const sp = window.snowplowBrowserTracking;
const sent = [], failed = [];
const recorder = async (request) => {{
  const body = request.method === "POST" ? await request.clone().text() : null;
  const response = await fetch(request);
  sent.push({{method: request.method, url: request.url, body, status: response.status}});
  return response;
}};
const common = {{appId: "glint-test", customFetch: recorder,
  onRequestFailure: (f) => failed.push(JSON.stringify(f))}};
sp.newTracker("get", "http://{glint}", {{...common, eventMethod: "get"}});
sp.newTracker("post", "http://{glint}", {{...common, eventMethod: "post", bufferSize: {batch}}});
const context = (i) => [
  {{schema: "iglu:com.example/product/jsonschema/1-0-0",
    data: {{sku: "sku-" + i, name: "Wool socks, size " + i, price: 12.5 + i, tags: ["winter", "gift"]}}}},
  {{schema: "iglu:com.example/experiment/jsonschema/1-0-0", data: {{id: "exp-" + i, variant: i % 2 ? "b" : "a"}}}},
];
sp.trackPageView({{title: "glint snowplow test", context: context(0)}}, ["get"]);
for (let i = 1; i <= {batch}; i++) {{
  sp.trackSelfDescribingEvent({{
    event: {{schema: "iglu:com.example/add_to_cart/jsonschema/1-0-0", data: {{sku: "sku-" + i, quantity: i}}}},
    context: context(i),
  }}, ["post"]);
}}
const started = Date.now();
const posted = () => sent.filter((s) => s.body).reduce((n, s) => n + JSON.parse(s.body).data.length, 0);
const poll = () => {{
  const gets = sent.filter((s) => !s.body).length;
  if ((gets >= 1 && posted() >= {batch}) || Date.now() - started > 4000) {{
    const done = document.createElement("pre");
    done.id = "done";
    done.textContent = JSON.stringify({{sent, failed, ua: navigator.userAgent}});
    document.body.appendChild(done);
  }} else {{
    setTimeout(poll, 50);
  }}
}};
poll();
</script></body></html>"#,
        batch = SNOWPLOW_BATCH,
    )
}

/// The `key=value` pairs of a query string, in order, as sent (not percent-decoded).
fn query_pairs(query: &str) -> Vec<&str> {
    query.split('&').filter(|p| !p.is_empty()).collect()
}

#[test]
fn snowplow_browser_tracker_get_and_batched_post_are_stored_whole() {
    let started = Instant::now();
    let Some(tracker) = snowplow_tracker() else {
        return;
    };
    if !Path::new(CHROMIUM).is_file() {
        eprintln!(
            "SKIPPED: {CHROMIUM} is not installed (.ci/run installs the Debian package chromium)"
        );
        return;
    }
    let tmp = tempdir("snowplow");
    let dir = tmp.path();
    let page_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", page_listener.local_addr().unwrap());
    // Default slot size and limits: what a new user runs.
    let glint = Server::start(&dir.join("data"), &["--cors-origin", &origin]);
    let _pages = PageServer::start(
        page_listener,
        vec![
            ("/page.html", "text/html", snowplow_page(glint.addr)),
            ("/sp.js", "text/javascript", tracker),
        ],
    );
    let url = format!("{origin}/page.html?utm_source=test");
    let (dom, log) = dump_dom(&url, dir);
    let done = marker(&dom, &log);
    assert_eq!(done["failed"], serde_json::json!([]), "{done}");
    let ua = done["ua"].as_str().unwrap().to_string();
    let sent = done["sent"].as_array().unwrap().clone();
    for s in &sent {
        let status = s["status"].as_u64().unwrap();
        assert!((200..300).contains(&status), "not acknowledged: {s}");
    }
    let (gets, posts): (Vec<&Value>, Vec<&Value>) = sent.iter().partition(|s| s["method"] == "GET");
    assert_eq!(gets.len(), 1, "one page view, one GET: {done}");
    assert_eq!(
        posts.len(),
        1,
        "one batch of {SNOWPLOW_BATCH} events, one POST: {done}"
    );
    let (data, glint_origin) = (glint.data_dir.clone(), format!("http://{}", glint.addr));
    assert!(glint.stop().success());
    let fields = "method,path,target,query,ua,referer,body,body_kind,truncated,orig_len";
    let records = decode_jsonl(&data, &["--fields", fields]);
    assert_eq!(records.len(), sent.len(), "{records:#?}");
    for r in &records {
        assert_eq!(
            r["truncated"],
            serde_json::json!([]),
            "a 2xx record was cut: {r}"
        );
        assert_eq!(r["orig_len"], serde_json::json!({}), "{r}");
        assert_eq!(r["ua"], ua.as_str(), "{r}");
        assert_eq!(r["referer"], url.as_str(), "{r}");
    }
    let find = |path: &str| -> &Value {
        let found: Vec<&Value> = records.iter().filter(|r| r["path"] == path).collect();
        assert_eq!(found.len(), 1, "{path} in {records:#?}");
        found[0]
    };

    // GET /i: the stored target is the one the tracker sent, every parameter in place.
    let sent_url = gets[0]["url"].as_str().unwrap();
    let sent_target = sent_url.strip_prefix(&glint_origin).unwrap();
    let get = find("/i");
    assert_eq!(get["method"], "GET");
    let sent_query = sent_target.split_once('?').unwrap().1;
    let stored_query = get["query"].as_str().unwrap();
    let stored_pairs = query_pairs(stored_query);
    for pair in query_pairs(sent_query) {
        assert!(
            stored_pairs.contains(&pair),
            "{pair} sent, not stored: {get}"
        );
    }
    for key in ["e=pv", "aid=glint-test", "cx=", "stm=", "eid=", "url="] {
        assert!(
            stored_pairs.iter().any(|p| p.starts_with(key)),
            "{key} missing: {stored_query}"
        );
    }
    assert_eq!(get["target"], sent_target, "GET target not stored whole");
    assert!(sent_target.len() > FIRST_RELEASE_TARGET, "{sent_target}");

    // POST tp2: the stored body is the one the tracker sent, valid JSON with every event.
    let sent_body = posts[0]["body"].as_str().unwrap();
    let post = find("/com.snowplowanalytics.snowplow/tp2");
    assert_eq!(post["method"], "POST");
    assert_eq!(post["body_kind"], "application/json", "{post}");
    let stored_body = post["body"].as_str().unwrap();
    assert_eq!(stored_body, sent_body, "tp2 body not stored whole");
    assert!(sent_body.len() > FIRST_RELEASE_BODY);
    let envelope: Value = serde_json::from_str(stored_body).expect("stored tp2 body is valid JSON");
    assert_eq!(
        envelope["schema"],
        "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
    );
    let events = envelope["data"].as_array().unwrap();
    assert_eq!(events.len(), SNOWPLOW_BATCH, "{stored_body}");
    let sent_events: Value = serde_json::from_str(sent_body).unwrap();
    for (i, (stored, sent)) in events
        .iter()
        .zip(sent_events["data"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(stored, sent, "event {i}");
        assert_eq!(stored["e"], "ue", "{stored}");
        // POST sends the event and its contexts as JSON text (ue_pr, co), GET as base64 (cx).
        for key in ["ue_pr", "co", "eid", "stm", "aid"] {
            assert!(
                stored.get(key).is_some(),
                "event {i} has no {key}: {stored}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("profile"));
    eprintln!(
        "snowplow test took {:?}: GET /i target sent {} bytes, stored {}; tp2 body of {} events sent {} bytes, stored {}",
        started.elapsed(),
        sent_target.len(),
        get["target"].as_str().unwrap().len(),
        events.len(),
        sent_body.len(),
        stored_body.len(),
    );
}
