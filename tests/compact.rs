//! `glint compact` on rings written by a RingWriter: merge order, rolls, retention, restart.

mod common;

use common::compact::*;
use common::tempdir;
use glint::compact::segment::{list_segments, SegmentReader};
use glint::ring::{ring_file_name, RingReader};

const MIN: u64 = 60_000_000_000;

/// The k-way merge the compactor promises, computed naively: repeatedly the smallest head.
fn reference_merge(rings: &[Vec<u64>]) -> Vec<(u16, u64, u64)> {
    let mut pos = vec![0usize; rings.len()];
    let mut out = Vec::new();
    loop {
        let best = (0..rings.len())
            .filter(|&c| pos[c] < rings[c].len())
            .min_by_key(|&c| (rings[c][pos[c]], c, pos[c]));
        let Some(c) = best else { return out };
        out.push((c as u16, pos[c] as u64, rings[c][pos[c]]));
        pos[c] += 1;
    }
}

#[test]
fn merge_orders_interleaved_rings_and_keeps_a_clock_step_back() {
    let tmp = tempdir("merge");
    let dir = tmp.path();
    let mut ts: Vec<Vec<u64>> = (0..3u64)
        .map(|c| (0..400u64).map(|i| BASE_TS + i * 1000 + c * 7).collect())
        .collect();
    // Core 1's clock steps back 5 minutes half way and stays there.
    for t in &mut ts[1][200..] {
        *t -= 5 * MIN;
    }
    for (c, times) in ts.iter().enumerate() {
        let mut w = open_ring(dir, c as u32, 1024);
        for (i, &t) in times.iter().enumerate() {
            append_beacon(&mut w, c as u16, t, i as u64);
        }
    }
    let out = compact(dir, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("moved 1200 records"),
        "{}",
        stderr(&out)
    );
    let stored = read_segments(dir);
    let got: Vec<(u16, u64, u64)> = stored.iter().map(|s| (s.1, s.2, s.3)).collect();
    assert_eq!(got, reference_merge(&ts));
    let segs = list_segments(dir).unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    let r = SegmentReader::open(&segs[0]).unwrap();
    assert_eq!(
        r.min_ts_ns(),
        BASE_TS + 200 * 1000 + 7 - 5 * MIN,
        "the late record's ts"
    );
    // Exact ring bytes, padding dropped; cursors moved past everything.
    let mut seg = SegmentReader::open(&segs[0]).unwrap();
    let mut rings: Vec<RingReader> = (0..3)
        .map(|c| RingReader::open(&dir.join(ring_file_name(c))).unwrap())
        .collect();
    while let Some(v) = seg.next_record().unwrap() {
        let ring = &mut rings[v.core() as usize];
        let seq = v.seq();
        let bytes = v.bytes().to_vec();
        assert_eq!(ring.read(seq).unwrap().bytes(), &bytes[..]);
        assert!(bytes.len() < 512);
    }
    assert!(rings.iter().all(|r| r.cursor() == 400));
}

#[test]
fn segments_roll_by_span_and_names_sort_by_time() {
    let tmp = tempdir("span");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 64);
    for k in 0..10 {
        append_beacon(&mut w, 0, BASE_TS + k * 20 * MIN, k);
    }
    let out = compact(dir, &["--once", "--segment-span", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let segs = list_segments(dir).unwrap();
    let names: Vec<String> = segs
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names[0].starts_with("20251124T160000."), "{names:?}");
    let per_segment: Vec<u64> = (0..4)
        .map(|i| read_segments(dir).iter().filter(|s| s.0 == i).count() as u64)
        .collect();
    assert_eq!(per_segment, [3, 3, 3, 1]);
    assert_exactly_once(&read_segments(dir), &[10]);
}

#[test]
fn segments_roll_by_size_and_stay_under_the_limit() {
    let tmp = tempdir("size");
    let dir = tmp.path();
    for c in 0..2u32 {
        let mut w = open_ring(dir, c, 4096);
        for i in 0..1500 {
            append_beacon(&mut w, c as u16, BASE_TS + i * 1000, i);
        }
    }
    let out = compact(
        dir,
        &[
            "--once",
            "--segment-max-bytes",
            "64KiB",
            "--compression",
            "none",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let segs = list_segments(dir).unwrap();
    assert!(segs.len() >= 8, "{} segments", segs.len());
    for (i, s) in segs.iter().enumerate() {
        let len = std::fs::metadata(s).unwrap().len();
        assert!(len <= 65_536, "{} is {len} bytes", s.display());
        // Every segment but the last was sealed because the next record would not fit.
        assert!(
            i + 1 == segs.len() || len > 64_000,
            "{} is only {len} bytes",
            s.display()
        );
    }
    assert_exactly_once(&read_segments(dir), &[1500, 1500]);
}

#[test]
fn retention_deletes_old_segments_but_never_the_newest() {
    let tmp = tempdir("retain");
    let dir = tmp.path();
    let now = glint::clock::now_ns();
    let mut w = open_ring(dir, 0, 64);
    for k in 0..3 {
        append_beacon(&mut w, 0, now - 3 * 24 * 60 * MIN + k * 60 * MIN, k);
    }
    append_beacon(&mut w, 0, now, 3);
    let out = compact(dir, &["--once", "--retain", "1d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("deleted 3"), "{}", stderr(&out));
    let stored = read_segments(dir);
    assert_eq!(stored.iter().map(|s| s.2).collect::<Vec<_>>(), [3]);
    // By size: everything but the newest sealed segment goes; the rest stays readable.
    let mut w = open_ring(dir, 0, 64);
    for k in 4..8 {
        append_beacon(&mut w, 0, now + k * 60 * MIN, k);
    }
    let out = compact(dir, &["--once", "--retain-bytes", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = read_segments(dir);
    assert_eq!(stored.iter().map(|s| s.2).collect::<Vec<_>>(), [7]);
}

#[test]
fn restart_after_a_lost_cursor_store_duplicates_nothing() {
    let tmp = tempdir("cursor");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 256);
    for i in 0..100 {
        append_beacon(&mut w, 0, BASE_TS + i, i);
    }
    let out = compact(dir, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The crash window: segment durable, cursor store lost. Put the cursor back to 0.
    let ring = dir.join(ring_file_name(0));
    let mut bytes = std::fs::read(&ring).unwrap();
    bytes[64..72].copy_from_slice(&0u64.to_le_bytes());
    std::fs::write(&ring, &bytes).unwrap();
    assert_eq!(RingReader::open(&ring).unwrap().cursor(), 0);
    for i in 100..150 {
        append_beacon(&mut w, 0, BASE_TS + i, i);
    }
    let out = compact(dir, &["--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("behind the last checkpoint"),
        "{}",
        stderr(&out)
    );
    assert_exactly_once(&read_segments(dir), &[150]);
    assert_eq!(RingReader::open(&ring).unwrap().cursor(), 150);
}

#[test]
fn a_recreated_ring_file_is_compacted_from_its_start() {
    use glint::compact::segment::Codec;
    use glint::compact::{CompactOptions, Compactor};
    let tmp = tempdir("recreate");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 64);
    for i in 0..20 {
        append_beacon(&mut w, 0, BASE_TS + i, i);
    }
    let opts = CompactOptions {
        data_dir: dir.to_path_buf(),
        span_ns: u64::MAX,
        max_bytes: u64::MAX,
        codec: Codec::Zstd,
        zstd_level: glint::compact::segment::DEFAULT_ZSTD_LEVEL,
        retain_ns: None,
        retain_bytes: None,
        instance_name: None,
    };
    let mut c = Compactor::open(opts.clone()).unwrap();
    assert_eq!(c.cycle().unwrap().moved, 20);
    // The server's ring is moved away and a fresh one (new seed, seqs from 0) takes its name.
    drop(w);
    std::fs::rename(dir.join(ring_file_name(0)), dir.join("old.glr.bak")).unwrap();
    let mut w = open_ring(dir, 0, 64);
    for i in 0..5 {
        append_beacon(&mut w, 0, BASE_TS + 100 + i, i);
    }
    assert_eq!(c.cycle().unwrap().moved, 5);
    drop(c);
    // A restarted compactor trusts the checkpoint only for the same ring file (seed).
    for i in 5..8 {
        append_beacon(&mut w, 0, BASE_TS + 100 + i, i);
    }
    let mut c = Compactor::open(opts).unwrap();
    let mut report = c.cycle().unwrap();
    assert_eq!(report.moved, 3);
    c.commit_and_seal(&mut report).unwrap();
    let seqs: Vec<u64> = read_segments(dir).iter().map(|s| s.2).collect();
    let want: Vec<u64> = (0..20).chain(0..8).collect();
    assert_eq!(seqs, want);
}

#[test]
fn help_explains_every_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glint"))
        .args(["compact", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data-dir",
        "--once",
        "--interval",
        "--segment-span",
        "--segment-max-bytes",
        "--retain ",
        "--retain-bytes",
        "--compression",
        "--zstd-level",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let bad = compact(std::path::Path::new("/nonexistent-glint-dir"), &["--once"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("/nonexistent-glint-dir: not a directory"),
        "{}",
        stderr(&bad)
    );
    let bad = compact(
        std::path::Path::new("/tmp"),
        &["--segment-max-bytes", "12XB"],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unknown size unit"),
        "{}",
        stderr(&bad)
    );
}
