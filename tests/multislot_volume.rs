//! Multi-slot records at (small) volume, the suite's cut of `loadtest/multislot-volume.sh`:
//! one-slot pixels, ~1 KB `GET /i` queries and 2 KB and 30 KB POST bodies, from four real
//! `glint loadgen` runs at once, through a real `glint serve` with a 2 MiB ring (it wraps many
//! times) and `glint compact` beside it. Every acknowledged request (loadgen `--acked-out`) must
//! be in the segments exactly once with its target, User-Agent, Referer and body byte for byte as
//! sent, and `decode --verify` must be clean. Both I/O backends.

mod common;

use common::{signal, tempdir, wait_bounded, Server, GLINT};
use glint::compact::segment::{list_segments, SegmentReader};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

const RING_SLOTS: u64 = 4096;
const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const REFERER: &str = "https://shop.example.com/cart?step=2&utm_source=newsletter";

/// Deterministic incompressible-looking text of `len` bytes (hex of an xorshift stream).
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{x:016x}").as_bytes());
    }
    out.truncate(len);
    out
}

struct Stream {
    name: &'static str,
    path: String,
    body: Vec<u8>,
    flags: Vec<String>,
}

fn streams() -> Vec<Stream> {
    let query = format!(
        "e=pv&url=https%3A%2F%2Fshop.example.com%2Fproducts%2F{}&cx={}",
        "x".repeat(200),
        String::from_utf8(body(700, 7)).unwrap()
    );
    let flags = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    vec![
        Stream {
            name: "pixel",
            path: "/p.gif?e=pageview&cid=summer-sale-2026".into(),
            body: Vec::new(),
            flags: flags("-c 4 --pipeline 8"),
        },
        Stream {
            name: "getq",
            path: format!("/i?{query}"),
            body: Vec::new(),
            flags: flags("-c 2 --pipeline 4"),
        },
        Stream {
            name: "post2",
            path: "/com.snowplowanalytics.snowplow/tp2?n=2".into(),
            body: body(2048, 2),
            flags: flags("-c 2 --pipeline 2 -R 1000"),
        },
        Stream {
            name: "post30",
            path: "/com.snowplowanalytics.snowplow/tp2?n=30".into(),
            body: body(30 * 1024, 30),
            flags: flags("-c 2 --pipeline 2 -R 300"),
        },
    ]
}

fn run(io: &str) {
    let tmp = tempdir(&format!("multislot-volume-{io}"));
    let dir = tmp.path();
    let ring_slots = RING_SLOTS.to_string();
    let server = Server::start(
        dir,
        &[
            "--io",
            io,
            "--threads",
            "1",
            "--ring-slots",
            &ring_slots,
            "--admin-listen",
            "off",
        ],
    );
    let mut compactor = Command::new(GLINT)
        .args(["compact", "--interval", "50ms", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let streams = streams();
    let work_tmp = tempdir(&format!("multislot-volume-load-{io}"));
    let work = work_tmp.path();
    let loads: Vec<_> = streams
        .iter()
        .map(|s| {
            let mut cmd = Command::new(GLINT);
            cmd.args(["loadgen", "-t", "1", "-d", "4s", "--json", "--id-param"])
                .arg(format!("id_{}", s.name))
                .arg("--acked-out")
                .arg(work.join(format!("acked.{}", s.name)))
                .args(&s.flags)
                .args(["-H", &format!("User-Agent: {UA}")])
                .args(["-H", &format!("Referer: {REFERER}")]);
            if !s.body.is_empty() {
                let file = work.join(format!("body.{}", s.name));
                std::fs::write(&file, &s.body).unwrap();
                cmd.arg("--body").arg(format!("@{}", file.display()));
            }
            cmd.arg(format!("http://{}{}", server.addr, s.path))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut l in loads {
        let status = wait_bounded(&mut l, Duration::from_secs(60));
        assert!(status.success(), "loadgen: {status}");
    }
    assert!(server.stop().success());
    signal(&compactor, "-TERM");
    assert_eq!(
        wait_bounded(&mut compactor, Duration::from_secs(60)).code(),
        Some(0)
    );

    // Every record in the segments, by stream and id; each checked whole.
    let mut seen: HashMap<&str, HashSet<u64>> = HashMap::new();
    let mut stored_bytes = 0u64;
    for path in list_segments(dir).unwrap() {
        let mut r = SegmentReader::open(&path).unwrap();
        while let Some(v) = r.next_record().unwrap() {
            let target = std::str::from_utf8(v.target()).unwrap();
            let (base, id) = target.rsplit_once('&').unwrap();
            let s = streams
                .iter()
                .find(|s| s.path == base)
                .unwrap_or_else(|| panic!("unknown target {target:.100}"));
            let id: u64 = id
                .strip_prefix(&format!("id_{}=", s.name))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(v.user_agent(), UA.as_bytes(), "{} id {id}", s.name);
            assert_eq!(v.referer(), REFERER.as_bytes(), "{} id {id}", s.name);
            assert!(
                v.body() == s.body.as_slice(),
                "{} id {id}: body of {} bytes, sent {}",
                s.name,
                v.body().len(),
                s.body.len()
            );
            stored_bytes += (target.len() + UA.len() + REFERER.len() + v.body().len()) as u64;
            assert!(
                seen.entry(s.name).or_default().insert(id),
                "{} id {id} twice",
                s.name
            );
        }
    }
    for s in &streams {
        let acked: Vec<u64> = std::fs::read_to_string(work.join(format!("acked.{}", s.name)))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let got = seen.get(s.name).cloned().unwrap_or_default();
        let missing: Vec<_> = acked.iter().filter(|i| !got.contains(i)).take(5).collect();
        assert!(
            missing.is_empty(),
            "{io} {}: acknowledged but in no segment: {missing:?}",
            s.name
        );
        assert!(
            acked.len() >= 100,
            "{io} {}: only {} acknowledged",
            s.name,
            acked.len()
        );
        println!(
            "{io} {}: {} acknowledged, {} in the segments",
            s.name,
            acked.len(),
            got.len()
        );
    }
    // The ring wrapped: far more bytes went through it than it holds.
    assert!(
        stored_bytes > 8 * 512 * RING_SLOTS,
        "{io}: only {stored_bytes} bytes stored"
    );
    let verify = Command::new(GLINT)
        .arg("decode")
        .arg("--verify")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn every_acknowledged_multi_slot_record_is_read_back_whole_epoll() {
    run("epoll");
}

#[test]
fn every_acknowledged_multi_slot_record_is_read_back_whole_uring() {
    run("uring");
}
