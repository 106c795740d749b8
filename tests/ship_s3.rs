//! `glint ship --to s3://...` against a real S3-compatible server (SeaweedFS `weed mini` on
//! loopback), read back with pyarrow's S3 client and checked with pyarrow and DuckDB: the rows
//! are exactly the acknowledged requests, each once, every field equal to `glint decode`'s,
//! through SIGKILLs of the shipper in the middle of multipart uploads (seen in SeaweedFS's list
//! of unfinished uploads), an outage of the store (`GLINT_S3_OUTAGE_SECS`, 20 by default;
//! loadtest/s3-outage.sh runs it for minutes), and late records of a window already uploaded.
//!
//! Needs the venv `target/lake-tools` that `.ci/run` creates (see `common/lake.rs`).

mod common;

use common::lake::Tools;
use common::{compact_once, decode_jsonl, signal, tempdir, wait_bounded, Server, GLINT};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "glinttest";
const SECRET: &str = "glinttestsecret";
const BUCKET: &str = "lake";

/// `weed mini` on loopback ports from `base` (one block of ports per test of this process);
/// killed on drop.
struct Weed {
    child: Option<Child>,
    weed: PathBuf,
    dir: PathBuf,
    base: u16,
}

impl Weed {
    fn start(tools: &Tools, dir: &Path, slot: u16) -> Weed {
        let base = 20_000 + (std::process::id() % 450) as u16 * 20 + slot * 10;
        let mut w = Weed {
            child: None,
            weed: tools.weed.clone(),
            dir: dir.to_path_buf(),
            base,
        };
        w.up();
        w
    }

    fn s3_port(&self) -> u16 {
        self.base + 3
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port())
    }

    /// One HTTP/1.0 request to the filer: (status, body).
    fn filer(&self, method: &str, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.base + 2)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nAccept: application/json\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |b| b.1);
        (status, body.to_string())
    }

    /// Multipart uploads begun and neither completed nor aborted: SeaweedFS keeps each as a
    /// folder under the bucket's `.uploads/` until then.
    fn unfinished_uploads(&self) -> Vec<String> {
        let (status, body) = self.filer("GET", &format!("/buckets/{BUCKET}/.uploads/"));
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "filer listing: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["Entries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["FullPath"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when the object `key` (in the bucket) exists.
    fn has_object(&self, key: &str) -> bool {
        self.filer("HEAD", &format!("/buckets/{BUCKET}/{key}")).0 == 200
    }

    fn up(&mut self) {
        let b = self.base;
        let child = Command::new(&self.weed)
            .arg("mini")
            .arg(format!("-dir={}", self.dir.display()))
            .args(["-ip", "127.0.0.1", "-ip.bind", "127.0.0.1"])
            .arg(format!("-master.port={b}"))
            .arg(format!("-volume.port={}", b + 1))
            .arg(format!("-filer.port={}", b + 2))
            .arg(format!("-s3.port={}", b + 3))
            .arg(format!("-admin.port={}", b + 4))
            .arg("-webdav=false")
            // Fixed default ports (8181, 9101) would collide with a second instance.
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .arg(format!("-metricsPort={}", b + 6))
            .args(["-admin.ui=false", "-bucket", BUCKET])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.s3_port())).is_err() {
            assert!(Instant::now() < deadline, "weed mini did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The bucket is made once the filer is up.
        std::thread::sleep(Duration::from_secs(3));
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.down();
    }
}

fn s3_env(weed: &Weed) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), KEY.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
        ("AWS_ENDPOINT".into(), weed.endpoint()),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

fn ship(weed: &Weed, dir: &Path, window: &str, extra: &[&str]) -> Command {
    ship_to(weed, dir, "s3://lake/beacons", window, extra)
}

fn ship_to(weed: &Weed, dir: &Path, to: &str, window: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(GLINT);
    c.args(["ship", "--to", to])
        .args([
            "--window",
            window,
            "--window-grace",
            "0s",
            "--part-size",
            "5242880",
        ])
        .args(["--poll-interval", "100ms", "--data-dir"])
        .arg(dir)
        .args(if extra.contains(&"--admin-listen") {
            &[][..]
        } else {
            &["--admin-listen", "off"][..]
        })
        .args(extra)
        .envs(s3_env(weed))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

/// `count` POSTs, each with its own 40 KB body of random hex digits (the same body for all
/// would compress to nothing): objects large enough for multipart. Returns how many the
/// server acknowledged.
fn load(server: &Server, count: u32) -> usize {
    load_sized(server, count, 40_000)
}

fn load_sized(server: &Server, count: u32, size: usize) -> usize {
    static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x9E37_79B9);
    let mut x = SEED.fetch_add(0x1234_5678_9ABC, std::sync::atomic::Ordering::Relaxed) | 1;
    let mut conn = server.connect();
    let mut acked = 0;
    for _ in 0..count {
        let body: String = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b"0123456789abcdef"[(x % 16) as usize])
            })
            .collect();
        let head = format!(
            "POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let resp = common::roundtrip(&mut conn, format!("{head}{body}").as_bytes());
        if resp.is_some_and(|r| (200..300).contains(&r.status)) {
            acked += 1;
        }
    }
    acked
}

/// `glint ship --once` killed with SIGKILL right after its first multipart upload has begun
/// at the store (and before it completed): the key, and whether that was seen.
fn kill_mid_multipart(weed: &Weed, data: &Path) -> (String, bool) {
    let before = weed.unfinished_uploads();
    let mut child = ship(weed, data, "1h", &["--once"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let key = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("glint ship ended before a multipart upload: {seen:#?}");
        };
        seen.push(line.clone());
        if let Some(rest) = line.split("ship: ").nth(1) {
            if let Some((key, _)) = rest.split_once(": multipart upload of") {
                break key.to_string();
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut begun = false;
    while !begun && Instant::now() < deadline {
        begun = weed.unfinished_uploads().len() > before.len();
    }
    let _ = child.kill();
    let _ = child.wait();
    // Still unfinished after the kill, and no object under the key: killed mid-upload.
    let mid = begun && weed.unfinished_uploads().len() > before.len() && !weed.has_object(&key);
    (key, mid)
}

/// The admin address a shipper logged.
fn admin_of(log: &Mutex<Vec<String>>) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = log.lock().unwrap().iter().find_map(|l| {
            l.split("admin listening on ")
                .nth(1)
                .and_then(|r| r.split(' ').next()?.parse().ok())
        });
        if let Some(a) = found {
            return a;
        }
        assert!(Instant::now() < deadline, "no admin address logged");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics(admin: SocketAddr) -> BTreeMap<String, f64> {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    common::prometheus::check_exposition(text.split_once("\r\n\r\n").unwrap().1).unwrap()
}

fn sum(series: &BTreeMap<String, f64>, family: &str) -> f64 {
    series
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{family}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// Polls the metrics until `want` holds (at most `limit`).
fn wait_metrics(
    admin: SocketAddr,
    limit: Duration,
    want: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + limit;
    loop {
        let m = metrics(admin);
        if want(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "metrics never got there: {m:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every object is `beacons/dt=…/hour=…/NAME.parquet` and holds only rows of its hour; returns
/// the rows (sorted by core and seq) and the number of objects per partition.
fn read_back(
    tools: &Tools,
    weed: &Weed,
    root: &Path,
    reader: &str,
) -> (Vec<serde_json::Value>, BTreeMap<String, usize>) {
    let fetched = root.join(format!("fetched-{reader}"));
    let env: Vec<(String, String)> = s3_env(weed);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let keys = tools.fetch(&weed.endpoint(), BUCKET, "beacons", &fetched, &env);
    assert!(!keys.is_empty());
    let mut rows = Vec::new();
    let mut partitions = BTreeMap::new();
    for k in &keys {
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 4, "{k}");
        let (Some(day), Some(hour)) =
            (parts[1].strip_prefix("dt="), parts[2].strip_prefix("hour="))
        else {
            panic!("{k}: not dt=/hour=");
        };
        assert!(parts[3].ends_with(".parquet"), "{k}");
        *partitions
            .entry(format!("{}/{}", parts[1], parts[2]))
            .or_insert(0) += 1;
        let file = fetched.join(k);
        for row in tools.rows(reader, &[file.to_str().unwrap()], &[]) {
            let ts = row["ts"].as_str().unwrap_or_else(|| panic!("no ts: {row}"));
            assert_eq!(
                &ts[..13],
                format!("{day}T{hour}"),
                "{k}: a row of another hour"
            );
            rows.push(row);
        }
    }
    rows.sort_by_key(seq_of);
    (rows, partitions)
}

fn seq_of(o: &serde_json::Value) -> (Option<u64>, Option<u64>) {
    (o["core"].as_u64(), o["seq"].as_u64())
}

/// Every acknowledged request once, every field as `glint decode` prints it.
fn check_rows(
    rows: &[serde_json::Value],
    decoded: &[serde_json::Value],
    acked: usize,
    reader: &str,
) {
    let mut ids: Vec<_> = rows.iter().map(seq_of).collect();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "{reader}: no record twice");
    assert_eq!(rows.len(), acked, "{reader}: every acknowledged record");
    for (row, obj) in rows.iter().zip(decoded) {
        assert_eq!(row, obj, "{reader}");
    }
}

fn outage_secs() -> u64 {
    std::env::var("GLINT_S3_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn every_acknowledged_record_once_through_kills_and_an_outage() {
    let Some(tools) = Tools::find("ship_s3") else {
        return;
    };
    let root_tmp = tempdir("ship-s3");
    let root = root_tmp.path();
    let weed_dir = root.join("weed");
    std::fs::create_dir_all(&weed_dir).unwrap();
    let mut weed = Weed::start(&tools, &weed_dir, 0);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(&data, &["--threads", "1", "--ring-slots", "65536"]);
    let mut acked = load(&server, 300);
    compact_once(&data, &[]);

    // SIGKILLs in the middle of multipart uploads (a 7 MB object, 5 MiB parts)...
    let kills: Vec<(String, bool)> = (0..3).map(|_| kill_mid_multipart(&weed, &data)).collect();
    let proven = kills.iter().filter(|k| k.1).count();
    eprintln!("ship_s3: {proven} of 3 kills landed mid multipart upload: {kills:?}");
    assert!(proven >= 1, "no kill was seen mid-upload: {kills:?}");
    let abandoned = weed.unfinished_uploads().len();
    assert!(abandoned >= proven, "{abandoned} unfinished uploads");
    // ... and at random moments (walking, spooling, uploading).
    let mut rng: u64 = 12345;
    for _ in 0..3 {
        let mut child = ship(&weed, &data, "1m", &["--once"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(200 + (rng >> 33) % 600));
        let _ = child.kill();
        let _ = child.wait();
    }

    // The store goes away while more records come and the shipper runs; then comes back.
    weed.down();
    let went_down = Instant::now();
    acked += load(&server, 100);
    compact_once(&data, &[]);
    let mut child = ship(&weed, &data, "1s", &["--admin-listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log2.lock().unwrap().push(line);
        }
    });
    let admin = admin_of(&log);
    let outage = Duration::from_secs(outage_secs());
    let down = wait_metrics(admin, Duration::from_secs(60), |m| {
        sum(m, "glint_ship_upload_errors_total") >= 1.0
    });
    assert_eq!(sum(&down, "glint_ship_store_up"), 0.0);
    assert_eq!(sum(&down, "glint_ship_objects_total"), 0.0);
    assert!(sum(&down, "glint_ship_lag_records") >= 100.0, "{down:?}");
    while went_down.elapsed() < outage {
        std::thread::sleep(Duration::from_millis(500));
        assert!(child.try_wait().unwrap().is_none(), "the shipper stays up");
    }
    let down_for = went_down.elapsed();
    weed.up();
    let back = Instant::now();
    let up = wait_metrics(admin, Duration::from_secs(90), |m| {
        sum(m, "glint_ship_store_up") == 1.0 && sum(m, "glint_ship_lag_records") == 0.0
    });
    eprintln!(
        "ship_s3 outage: store down for about {:.0} s with the shipper running ({} failed uploads); caught up {:.1} s after it came back",
        down_for.as_secs_f64(),
        sum(&up, "glint_ship_upload_errors_total"),
        back.elapsed().as_secs_f64()
    );
    assert!(sum(&up, "glint_ship_objects_total") >= 1.0, "{up:?}");
    assert!(sum(&up, "glint_ship_records_total") >= 100.0, "{up:?}");
    assert!(sum(&up, "glint_ship_bytes_total") > 0.0, "{up:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        now - sum(&up, "glint_ship_last_upload_timestamp_seconds") < 60.0,
        "{up:?}"
    );
    signal(&child, "-TERM");
    assert!(wait_bounded(&mut child, Duration::from_secs(60)).success());
    reader.join().unwrap();
    let text = log.lock().unwrap().join("\n");
    assert!(text.contains("failed"), "the outage was seen: {text}");
    assert!(text.contains("takes uploads again"), "{text}");
    let out = ship(&weed, &data, "1m", &["--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    // Read back: every row once, as decode prints it; abandoned uploads left no object.
    let mut json = decode_jsonl(&data, &[]);
    assert_eq!(json.len(), acked, "decode holds every acknowledged request");
    json.sort_by_key(seq_of);
    for reader in ["pyarrow", "duckdb"] {
        let (rows, _) = read_back(&tools, &weed, root, reader);
        check_rows(&rows, &json, acked, reader);
    }
    eprintln!(
        "ship_s3: {acked} acknowledged requests, {acked} rows read back by pyarrow and by DuckDB: 0 lost, 0 duplicated, every field as glint decode prints it ({} abandoned multipart uploads left no object)",
        weed.unfinished_uploads().len()
    );
}

#[test]
fn late_records_of_an_uploaded_window_go_into_a_new_object_in_its_partition() {
    let Some(tools) = Tools::find("ship_s3") else {
        return;
    };
    let root_tmp = tempdir("ship-s3-late");
    let root = root_tmp.path();
    let weed_dir = root.join("weed");
    std::fs::create_dir_all(&weed_dir).unwrap();
    let weed = Weed::start(&tools, &weed_dir, 1);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(&data, &["--threads", "1"]);
    let ship_once = || {
        let out = ship(&weed, &data, "1h", &["--once"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // `--once` uploads the open hour: the records after it are late for that window.
    let mut acked = load_sized(&server, 20, 100);
    compact_once(&data, &[]);
    // The same records shipped from a copy of the data dir: the same name, the same bytes.
    let copy = root.join("copy");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    let out = ship_to(&weed, &copy, "s3://lake/again", "1h", &["--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ship_once();
    acked += load_sized(&server, 30, 200);
    compact_once(&data, &[]);
    ship_once();
    server.stop();
    let mut json = decode_jsonl(&data, &[]);
    assert_eq!(json.len(), acked);
    json.sort_by_key(seq_of);
    let (rows, partitions) = read_back(&tools, &weed, root, "pyarrow");
    let env: Vec<(String, String)> = s3_env(&weed);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let again = tools.fetch(&weed.endpoint(), BUCKET, "again", &root.join("again"), &env);
    assert_eq!(again.len(), 1, "{again:?}");
    let first = root
        .join("fetched-pyarrow")
        .join(again[0].replacen("again/", "beacons/", 1));
    assert_eq!(
        std::fs::read(root.join("again").join(&again[0])).unwrap(),
        std::fs::read(&first).unwrap(),
        "{}: the same records make the same object",
        again[0]
    );
    check_rows(&rows, &json, acked, "pyarrow");
    assert_eq!(
        partitions.values().sum::<usize>(),
        2,
        "two objects: {partitions:?}"
    );
    let hours: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| &r["ts"].as_str().unwrap()[..13])
        .collect();
    if hours.len() == 1 {
        assert_eq!(partitions.len(), 1, "both in the one hour's partition");
    }
}
