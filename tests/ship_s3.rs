//! `glint ship --to s3://...` against a real S3-compatible server (SeaweedFS `weed mini` on
//! loopback), read back with pyarrow's S3 client and checked with pyarrow and DuckDB: the rows
//! are exactly the acknowledged requests, each once, every field equal to `glint decode`'s,
//! through SIGKILLs of the shipper during multipart uploads and an outage of the store.
//!
//! Needs the venv `target/lake-tools` that `.ci/run` creates (see `common/lake.rs`).

mod common;

use common::lake::Tools;
use common::{compact_once, decode_jsonl, signal, tempdir, wait_bounded, Server, GLINT};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "glinttest";
const SECRET: &str = "glinttestsecret";
const BUCKET: &str = "lake";

/// `weed mini` on loopback ports from `base`; killed on drop.
struct Weed {
    child: Option<Child>,
    weed: PathBuf,
    dir: PathBuf,
    base: u16,
}

impl Weed {
    fn start(tools: &Tools, dir: &Path) -> Weed {
        let base = 20_000 + (std::process::id() % 900) as u16 * 10;
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
    let mut c = Command::new(GLINT);
    c.args(["ship", "--to", "s3://lake/beacons", "--admin-listen", "off"])
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
        .args(extra)
        .envs(s3_env(weed))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

/// `count` POSTs of a 40 KB incompressible body: objects large enough for multipart.
fn load(server: &Server, dir: &Path, count: u32) -> usize {
    let body = dir.join("body.txt");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let text: String = (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdef"[(x % 16) as usize])
        })
        .collect();
    std::fs::write(&body, text).unwrap();
    let acked = dir.join(format!("acked-{count}.txt"));
    let out = Command::new(GLINT)
        .arg("loadgen")
        .arg(format!(
            "http://{}/com.snowplowanalytics.snowplow/tp2",
            server.addr
        ))
        .args(["--id-param", "rid", "--acked-out"])
        .arg(&acked)
        .args(["-t", "1", "-c", "4", "-n", &count.to_string()])
        .arg("--body")
        .arg(format!("@{}", body.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&acked).unwrap().lines().count()
}

#[test]
fn every_acknowledged_record_once_through_kills_and_an_outage() {
    let Some(tools) = Tools::find("ship_s3") else {
        return;
    };
    let root = tempdir("ship-s3");
    let weed_dir = root.join("weed");
    std::fs::create_dir_all(&weed_dir).unwrap();
    let mut weed = Weed::start(&tools, &weed_dir);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start(&data, &["--threads", "1", "--ring-slots", "65536"]);
    let mut acked = load(&server, &root, 300);
    compact_once(&data, &[]);

    // SIGKILLs while objects (12 MB, 5 MiB parts) go up.
    let mut rng: u64 = 12345;
    for _ in 0..5 {
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
    acked += load(&server, &root, 100);
    compact_once(&data, &[]);
    let log = root.join("ship.log");
    let mut child = ship(&weed, &data, "1s", &[])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    weed.up();
    std::thread::sleep(Duration::from_secs(6));
    signal(&child, "-TERM");
    assert!(wait_bounded(&mut child, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("failed"), "the outage was seen: {text}");
    let out = ship(&weed, &data, "1m", &["--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    // Read back: every row once, as decode prints it.
    let fetched = root.join("fetched");
    let env: Vec<(String, String)> = s3_env(&weed);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let keys = tools.fetch(&weed.endpoint(), BUCKET, "beacons", &fetched, &env);
    assert!(!keys.is_empty());
    for k in &keys {
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 4, "{k}");
        assert!(
            parts[1].starts_with("dt=2") && parts[2].starts_with("hour="),
            "{k}"
        );
        assert!(parts[3].ends_with(".parquet"), "{k}");
    }
    let mut json = decode_jsonl(&data, &[]);
    assert_eq!(json.len(), acked, "decode holds every acknowledged request");
    let seq = |o: &serde_json::Value| (o["core"].as_u64(), o["seq"].as_u64());
    json.sort_by_key(seq);
    let files: Vec<String> = keys
        .iter()
        .map(|k| fetched.join(k).to_str().unwrap().to_string())
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    for reader in ["pyarrow", "duckdb"] {
        let mut rows = tools.rows(reader, &files, &[]);
        rows.sort_by_key(seq);
        let mut ids: Vec<_> = rows.iter().map(seq).collect();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "{reader}: no record twice");
        assert_eq!(rows.len(), acked, "{reader}: every acknowledged record");
        for (row, obj) in rows.iter().zip(&json) {
            assert_eq!(row, obj, "{reader}");
        }
    }
}
