//! `glint loadgen` end to end: the real binary against a test server that fails or stalls on
//! purpose, and against a `glint serve` child whose ring files are read afterwards.

mod common;

use common::loadgen::{Action, TestServer};
use common::{signal, tempdir, wait_bounded, Server, GLINT};
use serde_json::Value;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `glint loadgen ARGS --json` and returns the parsed summary.
fn loadgen_json(args: &[&str]) -> Value {
    let out = Command::new(GLINT)
        .arg("loadgen")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .expect("run glint loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn n(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// `sent = completed + request errors + in flight`, for any summary.
fn assert_counts_add_up(v: &Value) {
    let errors: f64 = ["read", "write", "timeout", "protocol"]
        .iter()
        .map(|k| n(v, &format!("errors.{k}")))
        .sum();
    assert_eq!(
        n(v, "requests.sent"),
        n(v, "requests.completed") + errors + n(v, "requests.in_flight_at_end"),
        "{v}"
    );
    let by_status: f64 = v["status"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_f64().unwrap())
        .sum();
    assert_eq!(by_status, n(v, "requests.completed"));
    assert_eq!(
        n(v, "requests.ok_2xx") + n(v, "requests.non_2xx"),
        n(v, "requests.completed")
    );
}

fn mixed_statuses(rid: Option<u64>, _: u64) -> Action {
    match rid.unwrap_or(0) % 10 {
        3 => Action::Answer(503),
        7 => Action::Answer(500),
        _ => Action::Answer(200),
    }
}

#[test]
fn counts_add_up_and_json_has_every_figure() {
    let server = TestServer::start(mixed_statuses);
    let v = loadgen_json(&[
        &server.url("/p.gif"),
        "-n",
        "600",
        "-c",
        "4",
        "-t",
        "2",
        "--pipeline",
        "3",
        "--id-param",
        "rid",
    ]);
    assert_counts_add_up(&v);
    assert_eq!(n(&v, "requests.sent"), 600.0);
    assert_eq!(n(&v, "requests.completed"), 600.0);
    assert_eq!(n(&v, "requests.ok_2xx"), 480.0);
    assert_eq!((n(&v, "status.503"), n(&v, "status.500")), (60.0, 60.0));
    let server_side = server.record.lock().unwrap().by_status.clone();
    assert_eq!(server_side.get(&200), Some(&480));
    for key in [
        "duration_s",
        "requests_per_sec",
        "bytes_read",
        "bytes_written",
        "read_bytes_per_sec",
        "errors.connect",
    ] {
        n(&v, key);
    }
    for hist in ["latency_us", "latency_uncorrected_us"] {
        for q in [
            "mean", "stdev", "p50", "p75", "p90", "p99", "p99_9", "p99_99", "max",
        ] {
            assert!(n(&v, &format!("{hist}.{q}")) >= 0.0);
        }
        assert!(n(&v, &format!("{hist}.max")) >= n(&v, &format!("{hist}.p50")));
    }
    assert_eq!(v["mode"], "closed");
    assert_eq!(v["interrupted"], false);
}

fn fail_some(rid: Option<u64>, _: u64) -> Action {
    let rid = rid.unwrap_or(0);
    if rid % 13 == 0 {
        Action::CloseMidResponse
    } else if rid % 5 == 0 {
        Action::Answer(503)
    } else {
        Action::Answer(204)
    }
}

#[test]
fn acked_ids_are_exactly_the_complete_2xx_answers() {
    let server = TestServer::start(fail_some);
    let tmp = tempdir("loadgen-acked");
    let dir = tmp.path();
    let acked = dir.join("acked.txt");
    let v = loadgen_json(&[
        &server.url("/b?x=1"),
        "-n",
        "500",
        "-c",
        "3",
        "-t",
        "2",
        "--pipeline",
        "2",
        "--id-param",
        "rid",
        "--acked-out",
        acked.to_str().unwrap(),
    ]);
    assert_counts_add_up(&v);
    let text = std::fs::read_to_string(&acked).unwrap();
    let ids: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an id was written twice");
    let server_ok: HashSet<u64> = server
        .record
        .lock()
        .unwrap()
        .ok_ids
        .iter()
        .copied()
        .collect();
    assert_eq!(
        unique, server_ok,
        "acked ids differ from the server's complete 2xx answers"
    );
    assert_eq!(ids.len() as f64, n(&v, "requests.ok_2xx"));
    assert!(
        n(&v, "errors.read") > 0.0,
        "close mid-response must be a read error"
    );
    assert!(unique.iter().all(|id| id % 13 != 0 && id % 5 != 0));
}

fn always_200(_: Option<u64>, _: u64) -> Action {
    Action::Answer(200)
}

#[test]
fn open_loop_holds_the_rate_within_5_percent() {
    let server = TestServer::start(always_200);
    let v = loadgen_json(&[
        &server.url("/"),
        "-R",
        "2000",
        "-d",
        "2s",
        "-c",
        "8",
        "-t",
        "2",
    ]);
    assert_counts_add_up(&v);
    let rate = n(&v, "requests.sent") / 2.0;
    assert!(
        (rate - 2000.0).abs() <= 100.0,
        "sent {rate}/s, want 2000 ± 5%"
    );
    let done = n(&v, "requests_per_sec");
    assert!(
        (done - 2000.0).abs() <= 100.0,
        "answered {done}/s, want 2000 ± 5%"
    );
    assert_eq!(v["mode"], "open");
}

fn stall_once(_: Option<u64>, nth: u64) -> Action {
    if nth == 200 {
        Action::Stall(Duration::from_millis(400))
    } else {
        Action::Answer(200)
    }
}

#[test]
fn corrected_latency_shows_a_stall_that_uncorrected_hides() {
    let server = TestServer::start(stall_once);
    let v = loadgen_json(&[
        &server.url("/"),
        "-R",
        "500",
        "-d",
        "2s",
        "-c",
        "1",
        "-t",
        "1",
    ]);
    assert_counts_add_up(&v);
    // During the 400 ms stall 200 requests fall due; their corrected latencies run up to 400 ms.
    let (c90, u90) = (n(&v, "latency_us.p90"), n(&v, "latency_uncorrected_us.p90"));
    assert!(
        c90 > 50_000.0,
        "corrected p90 {c90}us should show the stall"
    );
    assert!(u90 < 20_000.0, "uncorrected p90 {u90}us should not");
    assert!(n(&v, "latency_us.p99") > n(&v, "latency_uncorrected_us.p99"));
    assert!(n(&v, "latency_uncorrected_us.max") >= 390_000.0);
}

fn stall_first(_: Option<u64>, nth: u64) -> Action {
    if nth == 0 {
        Action::Stall(Duration::from_millis(1500))
    } else {
        Action::Answer(200)
    }
}

#[test]
fn unanswered_requests_time_out() {
    let server = TestServer::start(stall_first);
    let v = loadgen_json(&[
        &server.url("/"),
        "-n",
        "5",
        "-c",
        "1",
        "-t",
        "1",
        "--timeout",
        "300ms",
    ]);
    assert_counts_add_up(&v);
    assert_eq!(n(&v, "errors.timeout"), 1.0);
    assert_eq!(n(&v, "requests.completed"), 4.0);
}

fn chunked(_: Option<u64>, _: u64) -> Action {
    Action::Chunked
}

#[test]
fn chunked_answers_are_protocol_errors_not_hangs() {
    let server = TestServer::start(chunked);
    let v = loadgen_json(&[&server.url("/"), "-n", "3", "-c", "1", "--timeout", "5s"]);
    assert_counts_add_up(&v);
    assert_eq!(n(&v, "errors.protocol"), 3.0);
    assert!(n(&v, "duration_s") < 4.0, "must not wait for the timeout");
}

#[test]
fn refused_connections_are_connect_errors_and_the_run_ends() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = loadgen_json(&[&format!("http://127.0.0.1:{port}/"), "-n", "5", "-c", "2"]);
    assert_eq!(n(&v, "errors.connect"), 5.0);
    assert_eq!(n(&v, "requests.sent"), 0.0);
}

#[test]
fn sigint_ends_the_run_early_and_prints_the_summary() {
    let server = TestServer::start(always_200);
    let mut child = Command::new(GLINT)
        .args([
            "loadgen",
            &server.url("/"),
            "-d",
            "60s",
            "-c",
            "2",
            "-t",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, "-INT");
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status:?}: {out}");
    assert!(out.contains("(interrupted)"), "{out}");
    let rps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .expect("summary printed")
        .trim()
        .parse()
        .unwrap();
    assert!(rps > 0.0, "{out}");
}

#[test]
fn bad_flags_are_one_error_line_and_exit_1() {
    let out = Command::new(GLINT)
        .args(["loadgen", "http://127.0.0.1:1/", "-H", "NoColon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("glint loadgen") && err.contains("NoColon"),
        "{err}"
    );
}

#[test]
fn every_2xx_from_glint_serve_is_a_record_in_its_rings() {
    let tmp = tempdir("loadgen-serve");
    let dir = tmp.path();
    let server = Server::start(
        dir,
        &[
            "--ring-slots",
            "16384",
            "--threads",
            "2",
            "--admin-listen",
            "off",
        ],
    );
    let url = format!("http://{}/p.gif", server.addr);
    let v = loadgen_json(&[
        &url,
        "-n",
        "3000",
        "-c",
        "4",
        "-t",
        "2",
        "--pipeline",
        "4",
        "--vary",
        "--id-param",
        "rid",
    ]);
    assert_counts_add_up(&v);
    assert_eq!(n(&v, "requests.ok_2xx"), 3000.0, "{v}");
    assert!(server.stop().success());
    let (mut records, mut truncated, mut multi_slot) = (0u64, 0u64, 0u64);
    for core in 0..2 {
        let path = dir.join(glint::ring::ring_file_name(core));
        let mut ring = glint::ring::RingReader::open(&path).unwrap();
        let range = ring.valid_range();
        let mut seq = range.start;
        while seq < range.end {
            let rec = ring.read(seq).unwrap();
            seq = rec.seqs().end;
            records += 1;
            truncated += u64::from(rec.flags() & glint::record::flags::TRUNC_ANY != 0);
            multi_slot += u64::from(rec.span() > 1);
        }
    }
    assert_eq!(records, 3000, "records in the rings vs 2xx answers");
    assert_eq!(truncated, 0, "every acknowledged record is stored whole");
    assert!(
        multi_slot > 0,
        "--vary must produce some records that take more than one slot"
    );
}
