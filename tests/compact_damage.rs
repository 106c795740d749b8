//! Damaged rings and segments: one clear error naming file and offset, nothing deleted.

mod common;

use common::compact::*;
use common::tempdir;
use glint::compact::segment::{list_segments, Codec, SegmentWriter, Watermark};
use glint::record::RecordView;
use glint::ring::{ring_file_name, RingReader};

#[test]
fn corrupt_ring_record_stops_that_ring_only_and_exits_1() {
    let tmp = tempdir("badring");
    let dir = tmp.path();
    for c in 0..2u32 {
        let mut w = open_ring(dir, c, 64);
        for i in 0..20 {
            append_beacon(&mut w, c as u16, BASE_TS + i, i);
        }
    }
    let ring0 = dir.join(ring_file_name(0));
    let mut bytes = std::fs::read(&ring0).unwrap();
    let slot = 4096 + 10 * 512;
    bytes[slot + 120] ^= 0x20;
    std::fs::write(&ring0, &bytes).unwrap();
    let out = compact(dir, &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let want = format!(
        "{}: offset {slot}: record seq 10 is corrupt",
        ring0.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("core0=stalled core1=0"), "{err}");
    let stored = read_segments(dir);
    assert_exactly_once(&stored, &[10, 20]);
    assert_eq!(RingReader::open(&ring0).unwrap().cursor(), 10);
    assert_eq!(
        std::fs::read(&ring0).unwrap()[4096..],
        bytes[4096..],
        "slots untouched"
    );
    // It stays stalled, loudly, run after run; nothing is skipped.
    let out = compact(dir, &["--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&want));
}

#[test]
fn truncated_ring_is_named_and_the_others_still_compact() {
    let tmp = tempdir("shortring");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 64);
    append_beacon(&mut w, 0, BASE_TS, 0);
    let mut w1 = open_ring(dir, 1, 64);
    append_beacon(&mut w1, 1, BASE_TS, 0);
    drop(w1);
    let ring1 = dir.join(ring_file_name(1));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&ring1)
        .unwrap();
    f.set_len(5000).unwrap();
    let out = compact(dir, &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let want = format!("{}: offset 5000: file is 5000 bytes", ring1.display());
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_exactly_once(&read_segments(dir), &[1]);
    assert_eq!(std::fs::metadata(&ring1).unwrap().len(), 5000);
}

#[test]
fn damaged_in_progress_segment_is_refused_and_left_alone() {
    let tmp = tempdir("badopen");
    let dir = tmp.path();
    let seg_dir = dir.join("segments");
    std::fs::create_dir_all(&seg_dir).unwrap();
    let mut w = open_ring(dir, 0, 64);
    let mut seg = SegmentWriter::create(&seg_dir, BASE_TS, Codec::None, None).unwrap();
    let mut ring = RingReader::open(&dir.join(ring_file_name(0))).unwrap();
    for i in 0..5 {
        append_beacon(&mut w, 0, BASE_TS + i, i);
        seg.push(&RecordView::parse(ring.read(i).unwrap().bytes()).unwrap())
            .unwrap();
        let mark = Watermark {
            core: 0,
            seed: ring.header().seed,
            next_seq: i + 1,
        };
        seg.commit(&[mark]).unwrap();
    }
    let open = seg.path().to_path_buf();
    drop(seg);
    let mut bytes = std::fs::read(&open).unwrap();
    let first_block = glint::compact::segment::HEADER_LEN;
    bytes[first_block + 40 + 30] ^= 1;
    std::fs::write(&open, &bytes).unwrap();
    let out = compact(dir, &["--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let want = format!(
        "{}: offset {first_block}: block CRC mismatch, but a valid checkpoint follows",
        open.display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert_eq!(std::fs::read(&open).unwrap(), bytes, "not cut, not deleted");
    assert_eq!(list_segments(dir).unwrap(), [open]);
}

#[test]
fn truncated_sealed_segment_is_reported_not_deleted() {
    let tmp = tempdir("badsealed");
    let dir = tmp.path();
    let mut w = open_ring(dir, 0, 64);
    for i in 0..5 {
        append_beacon(&mut w, 0, BASE_TS + i, i);
    }
    assert!(compact(dir, &["--once"]).status.success());
    let sealed = list_segments(dir).unwrap().remove(0);
    let len = std::fs::metadata(&sealed).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&sealed)
        .unwrap();
    f.set_len(len - 3).unwrap();
    append_beacon(&mut w, 0, BASE_TS + 5, 5);
    let out = compact(dir, &["--once", "--retain-bytes", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let at = len - 3 - 40;
    let want = format!("{}: offset {at}: no segment trailer", sealed.display());
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(sealed.exists(), "a damaged segment is never deleted");
    // The cursor still bounds the work: the new record is compacted once.
    let segs = list_segments(dir).unwrap();
    assert_eq!(segs.len(), 2);
    let mut r = glint::compact::segment::SegmentReader::open(&segs[1]).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().seq(), 5);
    assert!(r.next_record().unwrap().is_none());
}
