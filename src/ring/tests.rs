use super::*;
use crate::record::{BodyKind, IpSource, Method, RecordFields};
use crate::ring::AppendError;
use std::net::Ipv6Addr;

fn rec(target: &[u8]) -> RecordFields<'_> {
    RecordFields {
        ts_ns: 42,
        core: 0,
        status: 200,
        method: Method::Get,
        http_minor: 1,
        flags: 0,
        peer_ip: Ipv6Addr::LOCALHOST,
        peer_port: 1,
        client_ip: Ipv6Addr::LOCALHOST,
        ip_source: IpSource::Peer,
        body_kind: BodyKind::None,
        target,
        user_agent: b"ua",
        referer: b"",
        cookie: b"",
        body: b"",
    }
}

fn opts(capacity: u64) -> RingOptions {
    RingOptions {
        slot_size: 256,
        capacity,
        core: 0,
        identity: None,
    }
}

#[test]
fn append_then_read_back_and_reopen_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, rec0) = RingWriter::open(&path, opts(8)).unwrap();
    assert!(rec0.created);
    assert_eq!(rec0.next_seq, 0);
    for i in 0..5u64 {
        assert_eq!(w.append(&rec(format!("/p?{i}").as_bytes())).unwrap().seq, i);
    }
    drop(w);
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(r.valid_range(), 0..5);
    assert_eq!(r.read(3).unwrap().target(), b"/p?3");
    assert_eq!(r.read(5).unwrap_err(), SlotState::Uncommitted);
    let (w, again) = RingWriter::open(&path, opts(8)).unwrap();
    assert_eq!(
        (again.created, again.pending, again.next_seq, again.torn),
        (false, 5, 5, 0)
    );
    assert_eq!(w.next_seq(), 5);
}

#[test]
fn full_ring_refuses_until_cursor_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(4)).unwrap();
    for _ in 0..4 {
        w.append(&rec(b"/")).unwrap();
    }
    assert_eq!(w.append(&rec(b"/x")), Err(AppendError::Full));
    let consumer = RingReader::open_consumer(&path).unwrap();
    consumer.advance_cursor(2).unwrap();
    assert_eq!(w.append(&rec(b"/a")).map(|a| a.seq), Ok(4));
    assert_eq!(w.append(&rec(b"/b")).map(|a| a.seq), Ok(5));
    assert_eq!(w.append(&rec(b"/c")), Err(AppendError::Full));
    let mut r = RingReader::open(&path).unwrap();
    // Seqs 0 and 1 were overwritten by 4 and 5 (same slots): never read as the old records.
    assert_eq!(r.read(0).unwrap_err(), SlotState::Uncommitted);
    assert_eq!(r.read(4).unwrap().target(), b"/a");
    assert_eq!(r.valid_range(), 2..6);
}

#[test]
fn recovery_zeroes_torn_tail_and_keeps_valid_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(16)).unwrap();
    for _ in 0..6 {
        w.append(&rec(b"/ok")).unwrap();
    }
    drop(w);
    // Tear record 3: flip a byte of its inline data (as a lost page would) and leave 4, 5 behind it.
    let mut bytes = std::fs::read(&path).unwrap();
    let off = format::HEADER_PAGE + 3 * 256 + crate::record::HEADER_LEN;
    bytes[off] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let (mut w, r) = RingWriter::open(&path, opts(16)).unwrap();
    assert_eq!((r.pending, r.next_seq, r.torn, r.clean), (3, 3, 1, false));
    // Only the slot where the run ended was looked at past the valid records.
    assert_eq!(r.scanned, 4);
    assert_eq!(w.append(&rec(b"/new")).unwrap().seq, 3);
    drop(w);
    let mut reader = RingReader::open(&path).unwrap();
    // 4 and 5 are still in their slots, intact, but of the crashed run's epoch: stale.
    assert_eq!(reader.valid_range(), 0..4);
    assert_eq!(reader.read(3).unwrap().target(), b"/new");
    assert_eq!(reader.read(4).unwrap_err(), SlotState::Uncommitted);
}

#[test]
fn reopening_with_other_geometry_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    drop(RingWriter::open(&path, opts(8)).unwrap());
    let err = RingWriter::open(
        &path,
        RingOptions {
            slot_size: 512,
            ..opts(8)
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("slot size 256, but 512"), "{err}");
    let err = RingWriter::open(&path, opts(16)).err().unwrap().to_string();
    assert!(err.contains("capacity (slots) 8, but 16"), "{err}");
}

#[test]
fn garbage_and_short_files_name_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("junk.glr");
    std::fs::write(&path, vec![7u8; 5000]).unwrap();
    let err = RingReader::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("junk.glr: offset 0: not a glint ring file"),
        "{err}"
    );
    std::fs::write(&path, b"GLINT").unwrap();
    let err = RingReader::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("offset 5") && err.contains("shorter than"),
        "{err}"
    );
}

#[test]
fn crash_while_overwriting_an_old_lap_leaves_no_false_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(4)).unwrap();
    let consumer = RingReader::open_consumer(&path).unwrap();
    for _ in 0..4 {
        w.append(&rec(b"/lap0")).unwrap();
    }
    consumer.advance_cursor(4).unwrap();
    for _ in 0..2 {
        w.append(&rec(b"/lap1")).unwrap(); // seqs 4, 5 overwrite slots 0, 1
    }
    drop(w);
    // Seq 6 goes to slot 2, which holds compacted seq 2. A crash mid-write of seq 6: the old
    // commit word (3) still stands over bytes the new record had started to overwrite.
    let mut bytes = std::fs::read(&path).unwrap();
    let slot2 = format::HEADER_PAGE + 2 * 256;
    assert_eq!(
        u64::from_le_bytes(bytes[slot2..slot2 + 8].try_into().unwrap()),
        3
    );
    bytes[slot2 + crate::record::HEADER_LEN..slot2 + crate::record::HEADER_LEN + 5]
        .copy_from_slice(b"/half");
    std::fs::write(&path, &bytes).unwrap();
    let (_w, r) = RingWriter::open(&path, opts(4)).unwrap();
    assert_eq!((r.next_seq, r.torn), (6, 0));
    let mut reader = RingReader::open(&path).unwrap();
    // Seq 2 is gone (it was compacted), not "corrupt"; the valid run is intact.
    assert_eq!(reader.state(2), SlotState::Uncommitted);
    assert_eq!(reader.valid_range(), 3..6);
}

#[test]
fn recovery_clears_the_slot_it_inspects_not_the_one_a_damaged_word_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(4)).unwrap();
    for _ in 0..3 {
        w.append(&rec(b"/kept")).unwrap();
    }
    drop(w);
    // Slot 3 is empty; damage its commit word so it claims seq 9, whose slot would be 1.
    let mut bytes = std::fs::read(&path).unwrap();
    let slot3 = format::HEADER_PAGE + 3 * 256;
    bytes[slot3..slot3 + 8].copy_from_slice(&10u64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (_w, r) = RingWriter::open(&path, opts(4)).unwrap();
    // A word that does not name its own slot's seq is no commit word (it may be continuation
    // bytes of a multi-slot record): it is left, and never read as seq 9 either.
    assert_eq!((r.next_seq, r.torn), (3, 0));
    let mut reader = RingReader::open(&path).unwrap();
    assert_eq!(reader.read(9).unwrap_err(), SlotState::Uncommitted);
    assert_eq!(reader.valid_range(), 0..3, "seq 1 (slot 1) must survive");
    assert_eq!(reader.read(1).unwrap().target(), b"/kept");
}

/// Flips one byte of the inline data of `seq`'s slot (256-byte slots).
fn flip(path: &std::path::Path, seq: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[format::HEADER_PAGE + seq as usize * 256 + crate::record::HEADER_LEN] ^= 0xFF;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn after_a_clean_stop_a_damaged_tail_is_kept_not_zeroed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(16)).unwrap();
    for _ in 0..6 {
        w.append(&rec(b"/ok")).unwrap();
    }
    w.close_clean().unwrap();
    assert_eq!(RingReader::open(&path).unwrap().clean_stop_head(), Some(6));
    // The newest record, and one in the middle, damaged while stopped.
    flip(&path, 5);
    flip(&path, 2);
    let before = std::fs::read(&path).unwrap();
    let (mut w, r) = RingWriter::open(&path, opts(16)).unwrap();
    assert!(r.clean);
    assert_eq!((r.pending, r.next_seq, r.torn), (6, 6, 0));
    assert_eq!(r.damaged, vec![2, 5]);
    let after = std::fs::read(&path).unwrap();
    let slots = format::HEADER_PAGE..format::HEADER_PAGE + 16 * 256;
    assert_eq!(before[slots.clone()], after[slots], "slot bytes kept");
    let mut reader = RingReader::open(&path).unwrap();
    assert_eq!(reader.clean_stop_head(), None, "cleared on open");
    assert_eq!(reader.state(5), SlotState::Corrupt);
    assert!(reader.is_damaged(5) && reader.is_damaged(2) && !reader.is_damaged(4));
    assert_eq!(w.append(&rec(b"/next")).unwrap().seq, 6);
    assert_eq!(reader.read(6).unwrap().target(), b"/next");
    // A crash (no clean stop) with the same damage: the tail is torn and cut as before.
    drop(w);
    flip(&path, 6);
    let (_w, r) = RingWriter::open(&path, opts(16)).unwrap();
    assert!(!r.clean);
    // The scan starts where the last recovery ended (6): the kept damage below is not touched.
    assert_eq!(
        (r.next_seq, r.torn, r.scanned, r.damaged.len()),
        (6, 1, 1, 0)
    );
    let mut reader = RingReader::open(&path).unwrap();
    assert_eq!(reader.state(2), SlotState::Corrupt, "kept bytes stay");
}

#[test]
fn a_restart_reads_the_pending_records_not_the_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(1 << 12)).unwrap();
    let consumer = RingReader::open_consumer(&path).unwrap();
    for _ in 0..3000 {
        w.append(&rec(b"/x")).unwrap();
    }
    consumer.advance_cursor(2990).unwrap();
    drop(w);
    let (_w, r) = RingWriter::open(&path, opts(1 << 12)).unwrap();
    assert_eq!((r.cursor, r.pending, r.next_seq), (2990, 10, 3000));
    assert_eq!(r.scanned, 11, "the pending records and the slot after them");
    assert_eq!(r.epoch, 2);
}

#[test]
fn a_drained_v1_ring_is_upgraded_in_place_and_a_pending_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(8)).unwrap();
    for _ in 0..5 {
        w.append(&rec(b"/v1")).unwrap();
    }
    drop(w);
    // Make it look like version 1: version word 1, mutable v2 words zero, records of epoch 0.
    let as_v1 = |path: &std::path::Path| {
        let mut bytes = std::fs::read(path).unwrap();
        let mut page = [0u8; 64];
        let h =
            RingHeader::decode(path, &bytes[..format::HEADER_PAGE], bytes.len() as u64).unwrap();
        h.encode(&mut page);
        page[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&page[..48]);
        page[48..52].copy_from_slice(&crc.to_le_bytes());
        bytes[..52].copy_from_slice(&page[..52]);
        bytes[128..192].fill(0);
        for seq in 0..8 {
            let slot = format::HEADER_PAGE + seq * 256;
            bytes[slot + 76..slot + 80].fill(0);
            // Re-seal the CRC over the record with epoch 0.
            let len = u16::from_le_bytes([bytes[slot + 12], bytes[slot + 13]]) as usize;
            if (crate::record::HEADER_LEN..=256).contains(&len) {
                let crc = crc32c::crc32c_append(
                    crate::record::crc_init(h.seed),
                    &bytes[slot + 12..slot + len],
                );
                bytes[slot + 8..slot + 12].copy_from_slice(&crc.to_le_bytes());
            }
        }
        std::fs::write(path, &bytes).unwrap();
    };
    as_v1(&path);
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(r.header().version, 1);
    assert_eq!(
        r.valid_range(),
        0..5,
        "v1 records read under the epoch rule"
    );
    drop(r);
    let e = RingWriter::open(&path, opts(8)).err().unwrap().to_string();
    assert!(
        e.contains("ring format version 1 holds records from seq 0 not yet compacted")
            && e.contains("glint compact --once"),
        "{e}"
    );
    RingReader::open_consumer(&path)
        .unwrap()
        .advance_cursor(5)
        .unwrap();
    let (mut w, rec1) = RingWriter::open(&path, opts(8)).unwrap();
    assert!(rec1.upgraded);
    assert_eq!((rec1.cursor, rec1.pending, rec1.next_seq), (5, 0, 5));
    assert_eq!(w.header().version, format::RING_VERSION);
    assert_eq!(w.append(&rec(b"/v2")).unwrap().seq, 5);
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(
        r.valid_range(),
        5..6,
        "old records never validate under the new seed"
    );
}

/// A record of about `slots` 256-byte slots (its body fills the rest), tagged by `tag`.
fn sized(tag: &[u8], body: &'static mut Vec<u8>, slots: usize) -> RecordFields<'static> {
    let len = slots * 256 - crate::record::HEADER_LEN - 2 - 40;
    body.clear();
    body.extend((0..len).map(|i| (i * 7 + tag.len()) as u8));
    let tag: &'static [u8] = Box::leak(tag.to_vec().into_boxed_slice());
    RecordFields { body, ..rec(tag) }
}

fn body_buf() -> &'static mut Vec<u8> {
    Box::leak(Box::new(Vec::new()))
}

/// Reads every record from `from` to `to`, record after record: (seq, slots, target, body).
fn chain(r: &mut RingReader, from: u64, to: u64) -> Vec<(u64, u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seq = from;
    while seq < to {
        let v = r.read(seq).unwrap_or_else(|e| panic!("seq {seq}: {e:?}"));
        out.push((
            v.seq(),
            u64::from(v.span()),
            v.target().to_vec(),
            v.body().to_vec(),
        ));
        seq = v.seqs().end;
    }
    assert_eq!(seq, to);
    out
}

#[test]
fn multi_slot_records_are_whole_and_skip_to_the_ring_start_instead_of_wrapping() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(16)).unwrap();
    assert_eq!(w.max_span(), 8);
    let consumer = RingReader::open_consumer(&path).unwrap();
    let mut sent = Vec::new();
    // 1 + 3 + 5 + 4 = 13 slots, then a 5-slot record cannot fit slots 13..16: it skips them
    // and starts at seq 16 (slot 0), after the consumer freed the start.
    for (i, slots) in [1usize, 3, 5, 4].into_iter().enumerate() {
        let f = sized(format!("/r{i}").as_bytes(), body_buf(), slots);
        let a = w.append(&f).unwrap();
        assert_eq!(a.slots, slots as u64);
        sent.push((a.seq, slots as u64, f.target.to_vec(), f.body.to_vec()));
    }
    assert_eq!(w.next_seq(), 13);
    let big = sized(b"/wrap", body_buf(), 5);
    assert_eq!(
        w.append(&big),
        Err(AppendError::Full),
        "3 skipped + 5 slots need room"
    );
    consumer.advance_cursor(4).unwrap();
    assert_eq!(
        w.append(&big),
        Err(AppendError::Full),
        "13 - 4 + 3 + 5 > 16"
    );
    consumer.advance_cursor(9).unwrap();
    let a = w.append(&big).unwrap();
    assert_eq!((a.seq, a.slots), (16, 3 + 5));
    sent.push((16, 5, big.target.to_vec(), big.body.to_vec()));
    assert_eq!(w.next_seq(), 21);
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(
        r.valid_range(),
        9..21,
        "slots 0..5 were reused: records 0, 1, 4 are gone"
    );
    assert_eq!(r.state(4), SlotState::Uncommitted);
    // From seq 13 a reader finds the record at 16, which says it skipped 3 slots.
    let v = r.read(13).unwrap();
    assert_eq!((v.seq(), v.pad_before(), v.seqs()), (16, 3, 13..21));
    assert_eq!(chain(&mut r, 9, 21), sent[3..].to_vec());
    drop(w);
    // Reopening walks the same chain and resumes after it.
    let (w, rec2) = RingWriter::open(&path, opts(16)).unwrap();
    assert_eq!(
        (rec2.cursor, rec2.next_seq, rec2.pending, rec2.torn),
        (9, 21, 12, 0)
    );
    assert_eq!(w.next_seq(), 21);
}

#[test]
fn a_record_larger_than_half_the_ring_is_refused_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(8)).unwrap();
    let f = sized(b"/big", body_buf(), 5);
    assert!(matches!(w.append(&f), Err(AppendError::TooLarge { len }) if len > 4 * 256));
    assert_eq!(w.next_seq(), 0, "nothing written");
    let f = sized(b"/fits", body_buf(), 4);
    assert_eq!(w.append(&f).map(|a| a.slots), Ok(4));
}

#[test]
fn a_torn_multi_slot_record_is_never_half_read_and_recovery_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(16)).unwrap();
    for i in 0..4 {
        w.append(&sized(format!("/m{i}").as_bytes(), body_buf(), 3))
            .unwrap();
    }
    drop(w);
    // Record 1 (seqs 3..6): its third slot lost its page (old zero bytes), header intact.
    let mut bytes = std::fs::read(&path).unwrap();
    let slot5 = format::HEADER_PAGE + 5 * 256;
    bytes[slot5..slot5 + 256].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(r.read(3).unwrap_err(), SlotState::Corrupt);
    assert_eq!(r.valid_range(), 0..3);
    assert_eq!(
        r.next_valid(4, 16),
        Some(6),
        "the record after it still validates"
    );
    drop(r);
    let (mut w, rec2) = RingWriter::open(&path, opts(16)).unwrap();
    // Seq 3 (torn) is cleared; 6 and 9 (valid but past the cut) are stale under the new
    // writer epoch; 0..3 kept whole.
    assert_eq!((rec2.next_seq, rec2.torn), (3, 1));
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(r.state(6), SlotState::Uncommitted);
    assert_eq!(r.state(9), SlotState::Uncommitted);
    drop(r);
    let again = sized(b"/again", body_buf(), 2);
    assert_eq!(w.append(&again).unwrap().seq, 3);
    drop(w);
    let mut r = RingReader::open(&path).unwrap();
    assert_eq!(r.valid_range(), 0..5);
    assert_eq!(r.read(3).unwrap().body(), again.body);
    assert_eq!(
        r.state(6),
        SlotState::Uncommitted,
        "the old record after the cut is gone"
    );
}

#[test]
fn continuation_bytes_that_look_like_commit_words_survive_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("r.glr");
    let (mut w, _) = RingWriter::open(&path, opts(8)).unwrap();
    // A body whose bytes at the start of the record's second slot read as the commit word of
    // a far later seq at that very slot (1 + 8k), and at the third as plain text.
    let len = 3 * 256 - crate::record::HEADER_LEN - 10;
    let mut body = vec![b'z'; len];
    let second = 256 - crate::record::HEADER_LEN - 4; // after target "/x" and ua "ua"
    body[second..second + 8].copy_from_slice(&(1 + 8 * 1000 + 1u64).to_le_bytes());
    let f = RecordFields {
        body: &body,
        ..rec(b"/x")
    };
    assert_eq!(w.append(&f).unwrap().slots, 3);
    drop(w);
    let (_w, r) = RingWriter::open(&path, opts(8)).unwrap();
    assert_eq!((r.next_seq, r.torn), (3, 0));
    let mut reader = RingReader::open(&path).unwrap();
    assert_eq!(reader.read(0).unwrap().body(), &body[..]);
    assert_eq!(reader.state(1), SlotState::Uncommitted);
}
