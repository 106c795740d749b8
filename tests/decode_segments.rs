//! `glint decode` on segments written by `glint compact`, and on a data dir holding both.

mod common;

use common::decode::*;
use common::tempdir;
use glint::compact::segment::list_segments;
use glint::decode::source::{Problems, SegmentSource};

const HOUR: u64 = 3_600_000_000_000;

fn compact_once(dir: &std::path::Path) {
    let out = glint(&[
        "compact",
        "--once",
        "--segment-span",
        "1h",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mixed_dir_prints_each_record_once_in_time_order() {
    let tmp = tempdir("mixed");
    let dir = tmp.path();
    let mut sent = Vec::new();
    let mut writers: Vec<_> = (0..2u32).map(|c| open_ring(dir, c, 1024)).collect();
    for (c, w) in writers.iter_mut().enumerate() {
        let recs = (0..150)
            .map(|i| Sent::varied(c as u16, BASE_TS + i * 1_000_000 + c as u64, i))
            .collect();
        sent.extend(append_all(w, recs));
    }
    compact_once(dir);
    assert!(!list_segments(dir).unwrap().is_empty());
    // Newer records only in the rings; the compacted ones are still in the rings too.
    for (c, w) in writers.iter_mut().enumerate() {
        let recs = (150..200)
            .map(|i| Sent::varied(c as u16, BASE_TS + i * 1_000_000 + c as u64, i))
            .collect();
        sent.extend(append_all(w, recs));
    }
    sent.sort_by_key(|s| (s.ts_ns, s.core, s.seq));
    let objs = jsonl(&decode_ok(&[dir.to_str().unwrap()]));
    assert_eq!(objs.len(), sent.len(), "each record once");
    for (obj, s) in objs.iter().zip(&sent) {
        check_json(obj, s);
    }
    // The segments alone hold exactly the compacted records, with the same content.
    let seg_only = jsonl(&decode_ok(&[dir.join("segments").to_str().unwrap()]));
    assert_eq!(seg_only.len(), 300);
    let compacted: Vec<&Sent> = sent.iter().filter(|s| s.seq < 150).collect();
    for (obj, s) in seg_only.iter().zip(compacted) {
        check_json(obj, s);
    }
    // CSV from the mixed dir agrees with JSON.
    let rows = parse_csv(&decode_ok(&[
        "--format",
        "csv",
        "--fields",
        "core,seq,ts_ns",
        dir.to_str().unwrap(),
    ]));
    assert_eq!(rows.len(), sent.len() + 1);
    for (row, s) in rows[1..].iter().zip(&sent) {
        assert_eq!(
            row,
            &[s.core.to_string(), s.seq.to_string(), s.ts_ns.to_string()]
        );
    }
}

/// Filters and TSV over the mixed dir agree with what was written, record by record.
#[test]
fn mixed_dir_filters_and_tsv_match_the_records_written() {
    let tmp = tempdir("mixedfilter");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 512);
    let mut sent = append_all(
        &mut w,
        (0..120)
            .map(|i| Sent::varied(0, BASE_TS + i * 1_000_000, i))
            .collect(),
    );
    compact_once(dir);
    sent.extend(append_all(
        &mut w,
        (120..200)
            .map(|i| Sent::varied(0, BASE_TS + i * 1_000_000, i))
            .collect(),
    ));
    let text = decode_ok(&[
        "--format",
        "tsv",
        "--fields",
        "seq,method,ua_b64,referer",
        "--where",
        "method=POST",
        "--from",
        "2025-11-24T16:00:00.050Z",
        "--to",
        "2025-11-24T16:00:00.150Z",
        dir.to_str().unwrap(),
    ]);
    let want: Vec<&Sent> = sent
        .iter()
        .filter(|s| {
            s.method.as_str() == "POST" && (50..150).contains(&((s.ts_ns - BASE_TS) / 1_000_000))
        })
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "seq\tmethod\tua_b64\treferer");
    assert_eq!(lines.len(), want.len() + 1);
    assert!(
        want.iter().any(|s| s.seq < 120) && want.iter().any(|s| s.seq >= 120),
        "both sources"
    );
    for (line, s) in lines[1..].iter().zip(want) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[0], s.seq.to_string());
        assert_eq!(cols[1], "POST");
        assert_eq!(b64_decode(cols[2]), s.ua);
        assert_eq!(cols[3].as_bytes(), s.referer.as_slice());
    }
}

#[test]
fn one_hour_out_of_a_day_reads_about_a_twentyfourth_of_the_bytes() {
    let tmp = tempdir("seek");
    let dir = tmp.path();
    let per_hour = 400u64;
    let sent = write_ring(dir, 0, 16_384, BASE_TS, HOUR / per_hour, 24 * per_hour);
    compact_once(dir);
    let segments = list_segments(dir).unwrap();
    assert!(segments.len() >= 24, "hourly segments: {}", segments.len());
    let total_bytes: u64 = segments
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let (from, to) = (BASE_TS + 10 * HOUR, BASE_TS + 11 * HOUR);
    let mut read = 0u64;
    let mut records = 0u64;
    let mut problems = Problems::default();
    for seg in &segments {
        if let Some(mut s) = SegmentSource::open(seg, from, to, false, &mut problems).unwrap() {
            while s.advance(&mut problems) {
                records += 1;
            }
            read += s.bytes_read();
        }
    }
    assert_eq!(problems.count, 0);
    assert!(records >= per_hour, "{records}");
    eprintln!("one hour of 24: read {read} of {total_bytes} segment bytes");
    assert!(
        read * 12 < total_bytes,
        "read {read} of {total_bytes} bytes: the index was not used"
    );
    // And the command prints exactly that hour, from the segments dir alone.
    let text = decode_ok(&[
        "--from",
        "2025-11-25T02:00:00Z",
        "--to",
        "2025-11-25T03:00:00Z",
        "--fields",
        "seq",
        dir.join("segments").to_str().unwrap(),
    ]);
    let seqs: Vec<u64> = jsonl(&text)
        .iter()
        .map(|o| o["seq"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = sent
        .iter()
        .filter(|s| (from..to).contains(&s.ts_ns))
        .map(|s| s.seq)
        .collect();
    assert_eq!(seqs, want);
}

#[test]
fn verify_reports_a_missing_segment_as_a_gap_and_corruption_with_offsets() {
    let tmp = tempdir("verify");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 2048, BASE_TS, HOUR / 100, 300);
    compact_once(dir);
    let out = decode(&["--verify", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("300 ring records, 300 segment records; 0 gap(s)") && text.ends_with("OK\n"),
        "{text}"
    );
    let segs = list_segments(dir).unwrap();
    assert_eq!(segs.len(), 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let out = decode(&["--verify", dir.join("segments").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // Records 100..200 were in it; seqs count slots (some records take two).
    let (from, to) = (sent[100].seq, sent[200].seq);
    assert!(to - from > 100);
    assert!(
        text.lines().any(|l| l.starts_with(&format!(
            "core 0: gap: seqs {from}..{to} missing ({} slots of records",
            to - from
        ))),
        "{text}"
    );
    // Flip a byte inside the last segment's first block payload: its CRC fails.
    let mut bytes = std::fs::read(&segs[2]).unwrap();
    bytes[glint::compact::segment::HEADER_LEN + glint::compact::segment::BLOCK_HEADER_LEN + 5] ^=
        0x40;
    std::fs::write(&segs[2], &bytes).unwrap();
    let out = decode(&["--verify", dir.join("segments").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&format!(
            "{}: offset {}: block CRC mismatch",
            segs[2].display(),
            glint::compact::segment::HEADER_LEN
        )),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("CORRUPT\n"));
}

#[test]
fn a_lapped_ring_starts_at_its_oldest_record_and_the_dir_fills_in_from_segments() {
    let tmp = tempdir("lapped");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 64);
    let mut sent = append_all(
        &mut w,
        (0..48)
            .map(|i| Sent::varied(0, BASE_TS + i * 1000, i))
            .collect(),
    );
    compact_once(dir);
    sent.extend(append_all(
        &mut w,
        (48..80)
            .map(|i| Sent::varied(0, BASE_TS + i * 1000, i))
            .collect(),
    ));
    let end = w.next_seq();
    assert!(end > 64 + 10, "the writer lapped the 64-slot ring");
    let ring = dir.join(glint::ring::ring_file_name(0));
    let seqs: Vec<u64> = jsonl(&decode_ok(&["--fields", "seq", ring.to_str().unwrap()]))
        .iter()
        .map(|o| o["seq"].as_u64().unwrap())
        .collect();
    // Every record whose slots the writer has not reused yet, from the first at end - 64 on.
    let want: Vec<u64> = sent
        .iter()
        .map(|s| s.seq)
        .filter(|&s| s >= end - 64)
        .collect();
    assert_eq!(seqs, want, "the oldest records were overwritten");
    let objs = jsonl(&decode_ok(&[dir.to_str().unwrap()]));
    assert_eq!(objs.len(), 80);
    for (obj, s) in objs.iter().zip(&sent) {
        check_json(obj, s);
    }
}
