//! Crash tests: `glint compact` killed with SIGKILL at random points while a writer process
//! appends (and is itself killed now and then), then `--once`: no loss, no duplicate, order.
//! Also: SIGTERM finishes the cycle, seals and exits 0.

mod common;

use common::compact::*;
use common::tempdir;
use glint::compact::segment::list_segments;
use glint::ring::{ring_file_name, RingReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CORES: u32 = 3;
const CAPACITY: u64 = 1 << 13;
const WRITER_ENV: &str = "GLINT_KILLTEST_WRITER_DIR";

/// The writer process: appends beacons to every ring until it is killed. Runs only as the
/// child of the kill test (the variable is unset in a normal test run).
#[test]
fn writer_child() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut rings: Vec<_> = (0..CORES).map(|c| open_ring(&dir, c, CAPACITY)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 0u64;
    while Instant::now() < deadline {
        for (c, w) in rings.iter_mut().enumerate() {
            let mut ts = glint::clock::now_ns();
            if n % 5000 > 4900 {
                ts -= 2_000_000_000; // a wall-clock step backwards, now and then
            }
            if try_append_beacon(w, c as u16, ts, n).is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        n += 1;
        if n % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn spawn_writer(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "writer_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(WRITER_ENV, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn spawn_compactor(dir: &Path, codec: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_glint"))
        .args([
            "compact",
            "--interval",
            "10ms",
            "--segment-max-bytes",
            "192KiB",
        ])
        .args(["--compression", codec])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// xorshift64*: a seeded, printable source of kill points.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let tmp = tempdir("kill");
    let dir = tmp.path();
    let seed = glint::clock::now_ns() | 1;
    println!("kill test seed {seed}");
    let mut rng = Rng(seed);
    // Create the rings before the first compactor looks for them.
    drop(
        (0..CORES)
            .map(|c| open_ring(dir, c, CAPACITY))
            .collect::<Vec<_>>(),
    );
    let mut writer = spawn_writer(dir);
    let (mut cut, mut resumed, mut writer_kills) = (0, 0, 0);
    for round in 0..50 {
        let mut c = spawn_compactor(dir, if round % 2 == 0 { "zstd" } else { "none" });
        std::thread::sleep(Duration::from_millis(20 + rng.below(230)));
        c.kill().unwrap();
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        cut += err.matches("cut ").count();
        resumed += err.matches("behind the last checkpoint").count();
        if rng.below(4) == 0 {
            writer.kill().unwrap();
            writer.wait().unwrap();
            writer_kills += 1;
            writer = spawn_writer(dir);
        }
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let out = compact(dir, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ends: Vec<u64> = (0..CORES as usize)
        .map(|c| {
            let mut r = RingReader::open(&dir.join(ring_file_name(c))).unwrap();
            let end = r.valid_range().end;
            assert_eq!(r.cursor(), end, "core {c}: everything compacted");
            end
        })
        .collect();
    let stored = read_segments(dir);
    println!(
        "{} records in {} segments; recoveries: {cut} cut tails, {resumed} cursors behind a checkpoint; writer killed {writer_kills} times",
        stored.len(),
        list_segments(dir).unwrap().len()
    );
    assert!(
        ends.iter().all(|&e| e > 500),
        "too few records to mean anything: {ends:?}"
    );
    assert_exactly_once(&stored, &ends);
    assert!(
        list_segments(dir)
            .unwrap()
            .iter()
            .all(|p| p.extension().unwrap() == "gls"),
        "--once sealed the in-progress segment"
    );
}

#[test]
fn sigterm_finishes_the_cycle_seals_and_exits_0() {
    let tmp = tempdir("term");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 1024);
    let now = glint::clock::now_ns();
    for i in 0..300 {
        append_beacon(&mut w, 0, now + i, i);
    }
    let mut c = spawn_compactor(dir, "zstd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while RingReader::open(&dir.join(ring_file_name(0)))
        .unwrap()
        .cursor()
        < 300
    {
        assert!(Instant::now() < deadline, "compactor made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let open = list_segments(dir).unwrap();
    assert!(open[0].to_str().unwrap().ends_with(".gls.open"), "{open:?}");
    let second = compact(dir, &["--once"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains(".compact.lock: another glint compact is running"),
        "{}",
        stderr(&second)
    );
    for i in 300..310 {
        append_beacon(&mut w, 0, now + i, i);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let segs = list_segments(dir).unwrap();
    assert_eq!(segs.len(), 1);
    assert!(segs[0].to_str().unwrap().ends_with(".gls"), "{segs:?}");
    assert_exactly_once(&read_segments(dir), &[310]);
}
