//! `glint ship` against a real Kafka-protocol broker (Tansu on loopback, S3 storage in moto so
//! it survives restarts), checked with an independent client (kafka-python): every acknowledged
//! request on the topic once by key with `glint decode`'s content; a 30 s broker outage; 20
//! SIGKILLs of the shipper; retention never deleting unshipped segments; bad settings as one
//! line; oversized records dead-lettered and counted; `--value-format record` values.
//!
//! Needs the venv `target/ship-tools` that `.ci/run` creates (see `common/kafka.rs`).

mod common;

use common::kafka::{cursor_total, wait_for_cursor, Broker, Ship, Tools};
use common::{compact_once, signal, tempdir, wait_bounded, Server, GLINT};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `glint compact` looping every 100 ms on a data dir.
fn start_compactor(dir: &Path) -> Child {
    Command::new(GLINT)
        .args(["compact", "--interval", "100ms", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    signal(&child, "-TERM");
    assert!(wait_bounded(&mut child, Duration::from_secs(30)).success());
}

/// `glint loadgen` with `--id-param rid --acked-out`; returns the acknowledged ids and the
/// JSON summary.
fn load(server: &Server, acked: &Path, args: &[&str]) -> (Vec<u64>, serde_json::Value) {
    let out = Command::new(GLINT)
        .arg("loadgen")
        .arg(format!("http://{}/p.gif?src=ship", server.addr))
        .args(["--id-param", "rid", "--acked-out"])
        .arg(acked)
        .args(["--json", "-t", "1"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = std::fs::read_to_string(acked)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    (ids, summary)
}

/// `glint decode` lines of a data dir, keyed by the message key they must travel under.
fn decoded_by_key(dir: &Path) -> HashMap<String, String> {
    let out = Command::new(GLINT).arg("decode").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (message_key(&v), l.to_string())
        })
        .collect()
}

/// `INSTANCE_ID:CORE:SEQ` for a decoded record.
fn message_key(v: &serde_json::Value) -> String {
    let instance = v["instance_id"].as_str().unwrap();
    assert_eq!(instance.len(), 32, "{v}");
    format!("{instance}:{}:{}", v["core"], v["seq"])
}

fn rid_of(value: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(value).unwrap();
    let q = v["query"].as_str().unwrap();
    q.split('&')
        .find_map(|kv| kv.strip_prefix("rid="))
        .unwrap()
        .parse()
        .unwrap()
}

/// Every decoded record is on the topic with the same content; every acknowledged request is
/// there. Returns (messages, distinct keys).
fn check_topic(
    messages: &[(String, String)],
    decoded: &HashMap<String, String>,
    acked: &[u64],
) -> (usize, usize) {
    let mut by_key: HashMap<&str, &str> = HashMap::new();
    for (k, v) in messages {
        if let Some(first) = by_key.insert(k, v) {
            assert_eq!(first, v, "a duplicate of {k} differs from its first copy");
        }
    }
    let mut missing: Vec<&str> = decoded
        .keys()
        .filter(|k| !by_key.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{} of {} records are not on the topic ({} messages read), e.g. {:?}",
        missing.len(),
        decoded.len(),
        messages.len(),
        &missing[..missing.len().min(10)]
    );
    for (key, line) in decoded {
        assert_eq!(
            by_key[key.as_str()],
            line,
            "message {key} differs from glint decode"
        );
    }
    assert_eq!(
        by_key.len(),
        decoded.len(),
        "keys on the topic that decode does not know"
    );
    let rids: HashSet<u64> = by_key.values().map(|v| rid_of(v)).collect();
    for id in acked {
        assert!(
            rids.contains(id),
            "acknowledged request rid={id} is not on the topic"
        );
    }
    (messages.len(), by_key.len())
}

fn get_metrics(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn every_acknowledged_request_is_on_the_topic_once_as_decode_prints_it() {
    let Some(tools) = Tools::find("ship delivery") else {
        return;
    };
    let broker = Broker::start(&tools);
    broker.create_topic("beacons", 3);
    let tmp = tempdir("ship-once");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "65536"]);
    let compactor = start_compactor(dir);
    let ship = Ship::start(
        dir,
        &broker.addr(),
        "beacons",
        &["--admin-listen", "127.0.0.1:0"],
    );
    let admin = ship.admin();
    let (acked, summary) = load(&server, &dir.join("acked.txt"), &["-n", "30000", "-c", "8"]);
    assert_eq!(acked.len(), 30000, "{summary}");
    server.stop();
    stop(compactor);
    let decoded = decoded_by_key(dir);
    assert_eq!(decoded.len(), 30000);
    wait_for_cursor(dir, decoded.keys(), Duration::from_secs(60), &ship);
    let text = get_metrics(admin);
    let series =
        common::prometheus::check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(series["glint_ship_records_total{}"], 30000.0, "{text}");
    assert_eq!(series["glint_ship_broker_up{}"], 1.0);
    assert_eq!(series["glint_ship_in_flight{}"], 0.0);
    assert_eq!(series["glint_ship_lag_records{core=\"0\"}"], 0.0, "{text}");
    assert!(series["glint_ship_bytes_total{}"] > 30000.0 * 200.0);
    let mut ship = ship;
    signal(&ship.child, "-TERM");
    assert!(wait_bounded(&mut ship.child, Duration::from_secs(30)).success());
    let messages = broker.consume("beacons", decoded.len());
    let (total, distinct) = check_topic(&messages, &decoded, &acked);
    assert_eq!(
        (total, distinct),
        (30000, 30000),
        "exactly once without kills"
    );
    check_stream_order(&broker.consume_as("beacons", decoded.len(), "placed"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Each (instance, core) stream is on one partition, in seq order by offset; `placed` is
/// (key, "PARTITION:OFFSET") from `consume_as(.., "placed")`.
fn check_stream_order(placed: &[(String, String)]) {
    let mut streams: HashMap<&str, Vec<(u32, u64, u64)>> = HashMap::new();
    for (key, at) in placed {
        let (stream, seq) = key.rsplit_once(':').expect("INSTANCE:CORE:SEQ");
        let (partition, offset) = at.split_once(':').expect("PARTITION:OFFSET");
        streams.entry(stream).or_default().push((
            partition.parse().unwrap(),
            offset.parse().unwrap(),
            seq.parse().unwrap(),
        ));
    }
    assert!(!streams.is_empty());
    for (stream, mut messages) in streams {
        let partition = messages[0].0;
        assert!(
            messages.iter().all(|m| m.0 == partition),
            "{stream}: on more than one partition"
        );
        messages.sort_by_key(|m| m.1);
        assert!(
            messages.windows(2).all(|w| w[0].2 < w[1].2),
            "{stream}: seqs out of order on partition {partition}"
        );
    }
}

/// Tansu is stopped while batches are in flight; after its restart librdkafka sends them again
/// and Tansu sometimes answers "duplicate sequence number" for a batch it never stored, which
/// librdkafka reports as delivered with no offset. The shipper produces such records again
/// (`kind="unconfirmed"`), so none is lost; the count is printed.
#[test]
fn a_broker_outage_of_30_s_loses_nothing_and_the_server_answers_throughout() {
    let Some(tools) = Tools::find("ship outage") else {
        return;
    };
    let mut broker = Broker::start(&tools);
    broker.create_topic("outage", 2);
    let tmp = tempdir("ship-outage");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "65536"]);
    let compactor = start_compactor(dir);
    let ship = Ship::start(
        dir,
        &broker.addr(),
        "outage",
        &["--admin-listen", "127.0.0.1:0"],
    );
    let admin = ship.admin();
    // 40 s of load at 2,000 requests/s; the broker is away from second 5 to second 35.
    let acked_path = dir.join("acked.txt");
    let loader = std::thread::scope(|s| {
        let l = s.spawn(|| {
            load(
                &server,
                &acked_path,
                &["-R", "2000", "-d", "40s", "-c", "4"],
            )
        });
        std::thread::sleep(Duration::from_secs(5));
        broker.pause();
        let away = Instant::now();
        // While the broker is away the shipper says so, once, and the metric shows it.
        let deadline = Instant::now() + Duration::from_secs(25);
        while !ship.log_text().contains("lost the brokers") {
            assert!(
                Instant::now() < deadline,
                "no loss logged: {}",
                ship.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = get_metrics(admin);
        let series = common::prometheus::check_exposition(&text).unwrap();
        assert_eq!(series["glint_ship_broker_up{}"], 0.0, "{text}");
        std::thread::sleep(Duration::from_secs(30).saturating_sub(away.elapsed()));
        broker.resume();
        l.join().unwrap()
    });
    let (acked, summary) = loader;
    assert_eq!(summary["requests"]["non_2xx"], 0, "{summary}");
    assert_eq!(
        summary["requests"]["ok_2xx"].as_u64().unwrap(),
        acked.len() as u64
    );
    assert!(acked.len() > 60_000, "{summary}");
    server.stop();
    stop(compactor);
    let decoded = decoded_by_key(dir);
    wait_for_cursor(dir, decoded.keys(), Duration::from_secs(60), &ship);
    let series = common::prometheus::check_exposition(&get_metrics(admin)).unwrap();
    eprintln!(
        "ship outage: {} records delivered without an offset were produced again",
        series["glint_ship_delivery_errors_total{kind=\"unconfirmed\"}"]
    );
    let log = ship.log_text();
    assert_eq!(log.matches("lost the brokers").count(), 1, "{log}");
    assert_eq!(log.matches("brokers back after").count(), 1, "{log}");
    let messages = broker.consume("outage", decoded.len());
    let (_, distinct) = check_topic(&messages, &decoded, &acked);
    assert_eq!(distinct, decoded.len());
    let _ = std::fs::remove_dir_all(dir);
}

/// Kills the shipper this many times; `GLINT_SHIP_KILLS` asks for more
/// (`loadtest/ship_kills.sh` runs 50).
fn kills_wanted() -> u32 {
    std::env::var("GLINT_SHIP_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}
/// `--max-in-flight` for the kill test: the duplicate bound per kill.
const WINDOW: u64 = 2000;

#[test]
fn repeated_sigkills_lose_nothing_and_duplicate_at_most_the_in_flight_bound() {
    let Some(tools) = Tools::find("ship kills") else {
        return;
    };
    let broker = Broker::start(&tools);
    broker.create_topic("kills", 3);
    let tmp = tempdir("ship-kills");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "65536"]);
    let compactor = start_compactor(dir);
    let window = WINDOW.to_string();
    let extra = ["--admin-listen", "off", "--max-in-flight", &window];
    let acked_path = dir.join("acked.txt");
    let (acked, kills) = std::thread::scope(|s| {
        let l = s.spawn(|| {
            load(
                &server,
                &acked_path,
                &["-R", "5000", "-d", "20s", "-c", "4"],
            )
        });
        let mut kills = 0;
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        while kills < kills_wanted() {
            let mut ship = Ship::start(dir, &broker.addr(), "kills", &extra);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_millis(100 + rng % 300));
            ship.child.kill().unwrap();
            ship.child.wait().unwrap();
            kills += 1;
        }
        (l.join().unwrap().0, kills)
    });
    server.stop();
    stop(compactor);
    let decoded = decoded_by_key(dir);
    let before = cursor_total(dir);
    let ship = Ship::start(dir, &broker.addr(), "kills", &extra);
    wait_for_cursor(dir, decoded.keys(), Duration::from_secs(60), &ship);
    drop(ship);
    let messages = broker.consume("kills", decoded.len());
    let (total, distinct) = check_topic(&messages, &decoded, &acked);
    let duplicates = (total - distinct) as u64;
    eprintln!(
        "ship kills: {kills} SIGKILLs, {} records, {duplicates} duplicates (bound {} = kills x {WINDOW}), cursor at {before} before the last start",
        decoded.len(),
        u64::from(kills) * WINDOW
    );
    assert!(duplicates <= u64::from(kills) * WINDOW);
    let _ = std::fs::remove_dir_all(dir);
}

fn ship_once(dir: &Path, broker: &Broker, topic: &str, extra: &[&str]) -> Output {
    Command::new(GLINT)
        .arg("ship")
        .arg("--data-dir")
        .arg(dir)
        .args(["--brokers", &broker.addr(), "--topic", topic, "--once"])
        .args(["--admin-listen", "off"])
        .args(extra)
        .output()
        .unwrap()
}

fn sealed_segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gls"))
        .collect();
    names.sort();
    names
}

#[test]
fn retention_never_deletes_a_segment_the_shipper_has_not_passed() {
    let Some(tools) = Tools::find("ship retention") else {
        return;
    };
    let broker = Broker::start(&tools);
    broker.create_topic("keep", 1);
    let tmp = tempdir("ship-retention");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "65536"]);
    let batch = |n: u32| {
        let path = dir.join(format!("acked-{n}.txt"));
        load(&server, &path, &["-n", "2000", "-c", "2"]);
        compact_once(dir, &[]);
    };
    batch(1);
    let out = ship_once(dir, &broker, "keep", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    batch(2);
    batch(3);
    let three = sealed_segments(dir);
    assert_eq!(three.len(), 3, "{three:?}");
    // Size retention would delete all but the newest sealed segment; the cursor has passed
    // only the first.
    let out = compact_once(dir, &["--retain-bytes", "1", "--retain", "1ms"]);
    assert_eq!(sealed_segments(dir), three[1..].to_vec(), "{out:?}");
    let out = ship_once(dir, &broker, "keep", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    compact_once(dir, &["--retain-bytes", "1"]);
    assert_eq!(sealed_segments(dir), three[2..].to_vec());
    server.stop();
    let messages = broker.consume("keep", 6000);
    assert_eq!(messages.len(), 6000);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `glint ship` expecting exit 1 with exactly one line on stderr containing `want`.
fn one_line_error(args: &[&str], want: &str) {
    let start = Instant::now();
    let out = Command::new(GLINT).arg("ship").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
    assert!(lines[0].contains(want), "{args:?}: {err}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{args:?} took {:?}",
        start.elapsed()
    );
}

#[test]
fn bad_settings_are_one_clear_line() {
    let tmp = tempdir("ship-bad");
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let base = [
        "--data-dir",
        d,
        "--admin-listen",
        "off",
        "--connect-timeout",
        "2s",
    ];
    let nobody = format!("127.0.0.1:{}", common::kafka::free_port());
    let with =
        |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    let run = |more: &[&str], want: &str| {
        let args = with(more);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        one_line_error(&refs, want);
    };
    run(
        &["--brokers", &nobody, "--topic", "t"],
        "cannot reach the brokers",
    );
    run(
        &[
            "--brokers",
            &nobody,
            "--topic",
            "t",
            "--kafka-opt",
            "acks=1",
        ],
        "glint ship fixes acks=all",
    );
    run(
        &[
            "--brokers",
            &nobody,
            "--topic",
            "t",
            "--kafka-opt",
            "security.protocol=ssl",
            "--kafka-opt",
            "ssl.ca.location=/nonexistent/ca.pem",
        ],
        "ssl.ca.location",
    );
    run(&["--brokers", &nobody], "--topic are required");
    if let Some(tools) = Tools::find("ship bad topic") {
        let broker = Broker::start(&tools);
        run(
            &["--brokers", &broker.addr(), "--topic", "no-such-topic"],
            "no-such-topic",
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_record_over_the_message_limit_is_dead_lettered_counted_and_passed() {
    let Some(tools) = Tools::find("ship dead letter") else {
        return;
    };
    let broker = Broker::start(&tools);
    broker.create_topic("small", 1);
    let tmp = tempdir("ship-dead");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "4096", "--slot-size", "4096"]);
    let long = "x".repeat(3000);
    for path in [
        "/a.gif?n=1".to_string(),
        format!("/b.gif?big={long}"),
        "/c.gif?n=3".into(),
    ] {
        let mut s = server.connect();
        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = common::roundtrip(&mut s, req.as_bytes()).unwrap();
        assert!(r.status < 300);
    }
    compact_once(dir, &[]);
    let out = ship_once(
        dir,
        &broker,
        "small",
        &["--kafka-opt", "message.max.bytes=2000"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("larger than the brokers accept"), "{err}");
    let dead = std::fs::read_to_string(dir.join("ship-dead-letter.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{dead}");
    assert!(lines[0]["value"]["query"].as_str().unwrap().contains(&long));
    let messages = broker.consume("small", 2);
    let paths: Vec<String> = messages
        .iter()
        .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).unwrap()["path"].to_string())
        .collect();
    assert_eq!(paths, ["\"/a.gif\"", "\"/c.gif\""]);
    assert_eq!(cursor_total(dir), 3, "the cursor passed the dead letter");
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn record_values_are_the_stored_record_bytes() {
    let Some(tools) = Tools::find("ship record values") else {
        return;
    };
    let broker = Broker::start(&tools);
    broker.create_topic("raw", 2);
    let tmp = tempdir("ship-raw");
    let dir = tmp.path();
    let server = Server::start(dir, &["--ring-slots", "4096"]);
    load(&server, &dir.join("acked.txt"), &["-n", "500", "-c", "2"]);
    server.stop();
    compact_once(dir, &[]);
    let decoded = decoded_by_key(dir);
    let out = ship_once(dir, &broker, "raw", &["--value-format", "record"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = broker.consume_as("raw", 500, "hex");
    assert_eq!(messages.len(), 500);
    for (key, hex) in &messages {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let rec = glint::record::RecordView::parse(&bytes).unwrap();
        assert_eq!(rec.len(), bytes.len());
        let (_, core_seq) = key.split_once(':').unwrap();
        assert_eq!(core_seq, format!("{}:{}", rec.core(), rec.seq()));
        let line: serde_json::Value = serde_json::from_str(&decoded[key]).unwrap();
        assert_eq!(line["ts_ns"].as_u64(), Some(rec.ts_ns()), "{key}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
