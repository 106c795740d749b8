use super::format::{BlockHeader, INDEX_ENTRY_LEN};
use super::*;
use crate::record::{self, BodyKind, IpSource, Method, RecordFields, RecordView};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// Encodes one realistic record as a 512-byte slot would hold it; returns exactly its bytes.
pub(crate) fn record_bytes(core: u16, seq: u64, ts_ns: u64) -> Vec<u8> {
    let target = format!("/p.gif?e=view&u=https%3A%2F%2Fshop.example%2Fitem%2F{seq}&c={core}");
    let fields = RecordFields {
        ts_ns,
        core,
        status: 200,
        method: Method::Get,
        http_minor: 1,
        flags: 0,
        peer_ip: Ipv6Addr::LOCALHOST,
        peer_port: 40000,
        client_ip: Ipv6Addr::LOCALHOST,
        ip_source: IpSource::Peer,
        body_kind: BodyKind::None,
        target: target.as_bytes(),
        user_agent: b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        referer: b"https://shop.example/",
        cookie: b"",
        body: b"",
    };
    let mut slot = vec![0u8; 512];
    let len = record::encode(
        &mut slot,
        seq,
        record::crc_init(7),
        &fields,
        record::Placement::ONE,
    );
    slot.truncate(len);
    slot
}

fn mark(next_seq: u64) -> Vec<Watermark> {
    vec![Watermark {
        core: 0,
        seed: 7,
        next_seq,
    }]
}

/// Writes `n` records with ts 1000*i in one sealed segment.
fn sealed(dir: &Path, n: u64, codec: Codec) -> PathBuf {
    sealed_at(dir, n, codec, DEFAULT_ZSTD_LEVEL)
}

fn sealed_at(dir: &Path, n: u64, codec: Codec, zstd_level: i32) -> PathBuf {
    let mut w = SegmentWriter::create(dir, 1_000, codec, None).unwrap();
    w.set_zstd_level(zstd_level).unwrap();
    for i in 0..n {
        let b = record_bytes(0, i, 1_000 * (i + 1));
        w.push(&RecordView::parse(&b).unwrap()).unwrap();
    }
    w.commit(&mark(n)).unwrap();
    w.seal().unwrap()
}

fn read_all(path: &Path) -> Vec<(u64, u64)> {
    let mut r = SegmentReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(v) = r.next_record().unwrap() {
        out.push((v.seq(), v.ts_ns()));
    }
    out
}

#[test]
fn round_trip_with_and_without_zstd_keeps_exact_bytes() {
    let levels = [*ZSTD_LEVELS.start(), DEFAULT_ZSTD_LEVEL, *ZSTD_LEVELS.end()];
    let runs = [(Codec::None, DEFAULT_ZSTD_LEVEL)]
        .into_iter()
        .chain(levels.map(|l| (Codec::Zstd, l)));
    for (codec, level) in runs {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = sealed_at(dir, 3000, codec, level);
        assert!(path
            .to_str()
            .unwrap()
            .ends_with("19700101T000000.000001000Z.gls"));
        let mut r = SegmentReader::open(&path).unwrap();
        assert_eq!(
            (r.record_count(), r.min_ts_ns(), r.max_ts_ns()),
            (3000, 1_000, 3_000_000)
        );
        assert_eq!(r.checkpoint().unwrap(), mark(3000));
        for i in 0..3000u64 {
            let v = r.next_record().unwrap().unwrap();
            assert_eq!(
                v.bytes(),
                record_bytes(0, i, 1_000 * (i + 1)),
                "{codec:?} level {level}, record {i}"
            );
            assert!(v.crc_ok(record::crc_init(7)));
        }
        assert!(r.next_record().unwrap().is_none());
    }
}

#[test]
fn seek_skips_blocks_instead_of_scanning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = sealed(dir, 5000, Codec::None);
    let mut full = SegmentReader::open(&path).unwrap();
    while full.next_record().unwrap().is_some() {}
    let mut r = SegmentReader::open(&path).unwrap();
    r.seek(4_900_000).unwrap();
    let first = r.next_record().unwrap().unwrap().ts_ns();
    assert!(first <= 4_900_000, "seek is conservative: {first}");
    let mut last = 0;
    while let Some(v) = r.next_record().unwrap() {
        last = v.ts_ns();
    }
    assert_eq!(last, 5_000_000);
    assert!(
        r.bytes_read() * 5 < full.bytes_read(),
        "{} vs {}",
        r.bytes_read(),
        full.bytes_read()
    );
}

#[test]
fn damaged_block_and_truncated_segment_name_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = sealed(dir, 1000, Codec::Zstd);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEADER_LEN + BLOCK_HEADER_LEN + 10] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let mut r = SegmentReader::open(&path).unwrap();
    let err = r.next_record().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{}: offset {HEADER_LEN}: block CRC mismatch",
            path.display()
        )),
        "{err}"
    );
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let err = SegmentReader::open(&path).err().unwrap().to_string();
    let at = bytes.len() - 7 - TRAILER_LEN;
    assert!(
        err.contains(&format!("offset {at}: no segment trailer")),
        "{err}"
    );
    std::fs::write(&path, b"GLINTSEG").unwrap();
    let err = SegmentReader::open(&path).err().unwrap().to_string();
    assert!(err.contains("offset 8: file is 8 bytes, shorter"), "{err}");
}

#[test]
fn recovery_cuts_uncommitted_blocks_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = SegmentWriter::create(dir, 5, Codec::None, None).unwrap();
    let recs: Vec<Vec<u8>> = (0..2000).map(|i| record_bytes(0, i, 10 + i)).collect();
    for b in &recs[..1000] {
        w.push(&RecordView::parse(b).unwrap()).unwrap();
    }
    w.commit(&mark(1000)).unwrap();
    for b in &recs[1000..1500] {
        w.push(&RecordView::parse(b).unwrap()).unwrap();
    }
    w.commit(&mark(1500)).unwrap();
    let open = w.path().to_path_buf();
    drop(w);
    // A crash after more blocks were written but before their checkpoint.
    let committed = std::fs::metadata(&open).unwrap().len();
    let mut w = SegmentWriter::recover(&open).unwrap().writer.unwrap();
    for b in &recs[1500..1800] {
        w.push(&RecordView::parse(b).unwrap()).unwrap();
    }
    drop(w);
    let grown = std::fs::metadata(&open).unwrap().len();
    assert!(
        grown > committed,
        "records blocks were written without a checkpoint"
    );
    // A reader of the in-progress file sees only committed records.
    assert_eq!(SegmentReader::open(&open).unwrap().record_count(), 1500);
    let rec = SegmentWriter::recover(&open).unwrap();
    assert_eq!(rec.cut_bytes, grown - committed);
    assert_eq!(rec.marks, mark(1500));
    let mut w = rec.writer.unwrap();
    assert_eq!(w.record_count(), 1500);
    for b in &recs[1500..] {
        w.push(&RecordView::parse(b).unwrap()).unwrap();
    }
    w.commit(&mark(2000)).unwrap();
    let sealed = w.seal().unwrap();
    let got = read_all(&sealed);
    assert_eq!(got.len(), 2000);
    assert!(got.iter().enumerate().all(|(i, (s, _))| *s == i as u64));
}

#[test]
fn recovery_of_a_sealed_but_unrenamed_file_renames_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = sealed(dir, 10, Codec::None);
    let open = dir.join(format!(
        "{}{OPEN_SUFFIX}",
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(SEGMENT_SUFFIX)
    ));
    std::fs::rename(&path, &open).unwrap();
    assert_eq!(list_segments(dir.parent().unwrap()).unwrap().len(), 0);
    let rec = SegmentWriter::recover(&open).unwrap();
    assert!(rec.writer.is_none());
    assert_eq!((rec.path, rec.marks), (path.clone(), mark(10)));
    assert_eq!(read_all(&path).len(), 10);
}

#[test]
fn damage_before_a_checkpoint_is_refused_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = SegmentWriter::create(dir, 5, Codec::None, None).unwrap();
    for i in 0..100 {
        w.push(&RecordView::parse(&record_bytes(0, i, i)).unwrap())
            .unwrap();
    }
    w.commit(&mark(100)).unwrap();
    w.commit(&mark(100)).unwrap();
    let open = w.path().to_path_buf();
    drop(w);
    let mut bytes = std::fs::read(&open).unwrap();
    bytes[HEADER_LEN + BLOCK_HEADER_LEN + 3] ^= 1;
    std::fs::write(&open, &bytes).unwrap();
    let err = SegmentWriter::recover(&open).err().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "offset {HEADER_LEN}: block CRC mismatch, but a valid checkpoint follows"
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&open).unwrap(), bytes, "nothing was cut");
}

#[test]
fn names_sort_by_time_and_open_file_is_listed_last() {
    assert_eq!(
        segment_file_name(1_764_394_080_123_456_789, None),
        "20251129T052800.123456789Z.gls"
    );
    let box_a = crate::instance::Identity::new([0xab; 16], "a").unwrap();
    assert_eq!(
        segment_file_name(1_764_394_080_123_456_789, Some(&box_a)),
        "20251129T052800.123456789Z-abababababababab.gls"
    );
    let data_tmp = tempfile::tempdir().unwrap();
    let data = data_tmp.path();
    let dir = data.join("segments");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = sealed(&dir, 1, Codec::None);
    let open = SegmentWriter::create(&dir, 2_000_000_000, Codec::None, None).unwrap();
    let mut late = SegmentWriter::create(&dir, 1_000_000_000, Codec::None, None).unwrap();
    late.push(&RecordView::parse(&record_bytes(0, 0, 1)).unwrap())
        .unwrap();
    late.commit(&mark(1)).unwrap();
    let late = late.seal().unwrap();
    let names: Vec<String> = list_segments(data)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "19700101T000000.000001000Z.gls",
            late.file_name().unwrap().to_str().unwrap(),
            open.path().file_name().unwrap().to_str().unwrap()
        ]
    );
    assert!(names[2].ends_with(".gls.open"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Whatever the timestamps (clock steps, late records), seek never skips a wanted record.
    #[test]
    fn seek_never_skips_a_record_at_or_after_from(
        ts in proptest::collection::vec(0u64..1_000_000, 600..1200),
        from in 0u64..1_000_000,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut w = SegmentWriter::create(dir, 1, Codec::Zstd, None).unwrap();
        for (i, t) in ts.iter().enumerate() {
            w.push(&RecordView::parse(&record_bytes(0, i as u64, *t)).unwrap()).unwrap();
        }
        w.commit(&mark(ts.len() as u64)).unwrap();
        let path = w.seal().unwrap();
        let mut r = SegmentReader::open(&path).unwrap();
        r.seek(from).unwrap();
        let mut after = Vec::new();
        while let Some(v) = r.next_record().unwrap() {
            after.push(v.seq());
        }
        let wanted: Vec<u64> = (0..ts.len() as u64).filter(|&i| ts[i as usize] >= from).collect();
        proptest::prop_assert!(wanted.iter().all(|s| after.contains(s)));
        // What seek leaves is a suffix of the stored order.
        let start = after.first().copied().unwrap_or(ts.len() as u64);
        proptest::prop_assert_eq!(after, (start..ts.len() as u64).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_file_killed_before_its_header_was_written_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for len in [0usize, 20, 64] {
        let open = dir.join(format!("19700101T000000.00000000{len}Z{OPEN_SUFFIX}"));
        std::fs::write(&open, vec![0u8; len]).unwrap();
        let rec = SegmentWriter::recover(&open).unwrap();
        assert!(rec.removed && rec.writer.is_none() && !open.exists());
    }
    // A damaged header on a file with blocks behind it is an error, and the file stays.
    let path = sealed(dir, 5, Codec::None);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 1;
    let open = dir.join(format!("x{OPEN_SUFFIX}"));
    std::fs::write(&open, &bytes).unwrap();
    let err = SegmentWriter::recover(&open).err().unwrap().to_string();
    assert!(err.contains("offset 0: not a glint segment"), "{err}");
    assert!(open.exists());
}

/// A segment as the first release wrote it, byte by byte (not through today's writer): header,
/// `blocks` records blocks of one raw record each, a checkpoint, the index, the trailer.
fn old_release_segment(path: &Path, blocks: u32) -> Vec<Vec<u8>> {
    let seed = 0x5eed_u64;
    let crc_seeded = |parts: &[&[u8]]| {
        let mut crc = crc32c::crc32c(&seed.to_le_bytes());
        for p in parts {
            crc = crc32c::crc32c_append(crc, p);
        }
        crc
    };
    let mut file = Vec::new();
    let mut head = [0u8; 64];
    head[0..8].copy_from_slice(b"GLINTSEG");
    head[8..12].copy_from_slice(&1u32.to_le_bytes()); // segment format 1
    head[12..16].copy_from_slice(&record::FORMAT_VERSION.to_le_bytes());
    head[16..20].copy_from_slice(&1u32.to_le_bytes()); // zstd asked for
    head[24..32].copy_from_slice(&seed.to_le_bytes());
    head[32..40].copy_from_slice(&1_000u64.to_le_bytes());
    let crc = crc32c::crc32c(&head[..60]);
    head[60..64].copy_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&head);
    let block = |file: &mut Vec<u8>, kind: u8, count: u32, ts: (u64, u64), payload: &[u8]| {
        let at = file.len() as u64;
        let mut h = [0u8; 40];
        h[0..4].copy_from_slice(b"GLBK");
        h[4] = kind;
        h[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        h[16..20].copy_from_slice(&count.to_le_bytes());
        h[20..28].copy_from_slice(&ts.0.to_le_bytes());
        h[28..36].copy_from_slice(&ts.1.to_le_bytes());
        let crc = crc_seeded(&[&h[..36], payload]);
        h[36..40].copy_from_slice(&crc.to_le_bytes());
        file.extend_from_slice(&h);
        file.extend_from_slice(payload);
        at
    };
    let mut index = Vec::new();
    let mut records = Vec::new();
    for i in 0..u64::from(blocks) {
        let rec = record_bytes(0, i, 1_000 + i);
        let at = block(&mut file, 1, 1, (1_000 + i, 1_000 + i), &rec);
        for v in [at, 1_000 + i, 1_000 + i] {
            index.extend_from_slice(&v.to_le_bytes());
        }
        index.extend_from_slice(&1u32.to_le_bytes());
        index.extend_from_slice(&[0u8; 4]);
        records.push(rec);
    }
    let mut checkpoint = Vec::new();
    checkpoint.extend_from_slice(&0u32.to_le_bytes());
    checkpoint.extend_from_slice(&[0u8; 4]);
    checkpoint.extend_from_slice(&7u64.to_le_bytes());
    checkpoint.extend_from_slice(&u64::from(blocks).to_le_bytes());
    let checkpoint_at = block(&mut file, 2, 1, (0, 0), &checkpoint);
    let last = 1_000 + u64::from(blocks) - 1;
    let index_at = block(&mut file, 3, blocks, (1_000, last), &index);
    let mut t = [0u8; 40];
    t[0..8].copy_from_slice(&index_at.to_le_bytes());
    t[8..16].copy_from_slice(&checkpoint_at.to_le_bytes());
    t[16..24].copy_from_slice(&u64::from(blocks).to_le_bytes());
    let crc = crc_seeded(&[&t[..24]]);
    t[24..28].copy_from_slice(&crc.to_le_bytes());
    t[32..40].copy_from_slice(b"GLSEGEND");
    file.extend_from_slice(&t);
    std::fs::write(path, &file).unwrap();
    records
}

/// Issue 17: the first release wrote indexes over the 1 MiB its own reader accepted (a
/// segment past about 100 MB); such a segment decodes now, bounded by the file's length.
#[test]
fn an_old_segment_with_an_index_over_one_mib_still_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("19700101T000000.000001000Z.gls");
    let blocks = 40_000u32;
    let records = old_release_segment(&path, blocks);
    let index_len = blocks as usize * INDEX_ENTRY_LEN;
    assert!(index_len > 1 << 20, "the index is over the old 1 MiB limit");
    let mut r = SegmentReader::open(&path).unwrap();
    assert_eq!(r.record_count(), u64::from(blocks));
    assert_eq!(r.checkpoint().unwrap(), mark(u64::from(blocks)));
    for (i, want) in records.iter().enumerate() {
        let v = r.next_record().unwrap().unwrap();
        assert_eq!(v.bytes(), &want[..], "record {i}");
    }
    assert!(r.next_record().unwrap().is_none());
    // The same file as an in-progress one is read by scanning, and recovery keeps it whole.
    let open = dir.join(format!("19700101T000000.000001000Z{OPEN_SUFFIX}"));
    std::fs::rename(&path, &open).unwrap();
    assert_eq!(
        SegmentReader::open(&open).unwrap().record_count(),
        u64::from(blocks)
    );
    let rec = SegmentWriter::recover(&open).unwrap();
    assert_eq!((rec.path, rec.cut_bytes), (path.clone(), 0));
    assert_eq!(read_all(&path).len(), blocks as usize);
}

/// An index that claims more entries than records blocks fit before it is refused with file
/// and offset, without reading a payload the size it claims.
#[test]
fn an_index_longer_than_its_file_allows_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = dir.join("19700101T000000.000001000Z.gls");
    old_release_segment(&path, 3);
    let mut bytes = std::fs::read(&path).unwrap();
    let t = bytes.len() - TRAILER_LEN;
    let index_at = u64::from_le_bytes(bytes[t..t + 8].try_into().unwrap()) as usize;
    // Count 1000 entries and a matching length, still inside the file: a CRC would catch it
    // too, so the length check must come first and name the bound.
    bytes[index_at + 16..index_at + 20].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = SegmentReader::open(&path).err().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "offset {index_at}: index block lists 1000 entries"
        )),
        "{err}"
    );
}

fn header(kind: BlockKind, zstd: bool, stored: usize, raw: usize, count: u32) -> BlockHeader {
    BlockHeader {
        kind,
        zstd,
        stored_len: stored as u32,
        raw_len: raw as u32,
        count,
        min_ts: 0,
        max_ts: 0,
        crc: 0,
    }
}

#[test]
fn the_length_contract_at_its_edges() {
    use BlockKind::*;
    let big = u64::MAX / 2;
    let ok = |h: BlockHeader, at: u64| h.check_lengths(at, big).is_ok();
    // Records: up to one maximal record past the block target, raw or zstd no longer than raw.
    assert!(ok(
        header(Records, false, MAX_RECORDS_BLOCK, MAX_RECORDS_BLOCK, 1),
        64
    ));
    assert!(!ok(
        header(
            Records,
            false,
            MAX_RECORDS_BLOCK + 1,
            MAX_RECORDS_BLOCK + 1,
            1
        ),
        64
    ));
    assert!(ok(header(Records, true, 10, 112, 1), 64));
    assert!(!ok(header(Records, true, 113, 112, 1), 64));
    assert!(!ok(header(Records, false, 100, 112, 1), 64));
    assert!(!ok(header(Records, false, 0, 0, 0), 64));
    assert!(
        !ok(header(Records, false, 224, 224, 3), 64),
        "3 records need 336 bytes"
    );
    // Checkpoint: one entry per core at most.
    let n = MAX_CHECKPOINT_ENTRIES;
    assert!(ok(header(Checkpoint, false, n * 24, n * 24, n as u32), 64));
    assert!(!ok(
        header(Checkpoint, false, (n + 1) * 24, (n + 1) * 24, n as u32 + 1),
        64
    ));
    assert!(!ok(header(Checkpoint, true, 24, 24, 1), 64));
    assert!(!ok(header(Checkpoint, false, 24, 24, 2), 64));
    // Index: bounded by the records blocks (41 bytes at least) that fit before it.
    let at = super::format::HEADER_FIXED_LEN as u64 + 41 * 1000;
    assert!(ok(header(Index, false, 32_000, 32_000, 1000), at));
    assert!(!ok(header(Index, false, 32_032, 32_032, 1001), at));
    assert!(ok(
        header(Index, false, 32 << 20, 32 << 20, 1 << 20),
        64 + (41 << 20)
    ));
    assert!(ok(header(Index, false, 0, 0, 0), 64));
    // Every block ends inside the file, with no overflow on a huge offset.
    let h = header(Index, false, 32, 32, 1);
    assert_eq!(
        h.check_lengths(1000, 1071).unwrap_err(),
        "block of 72 bytes runs past the end of the file (1071 bytes)"
    );
    assert!(h.check_lengths(u64::MAX - 10, u64::MAX).is_err());
}

/// The writer runs the same contract before writing: a checkpoint the reader would refuse is
/// an error naming file and offset, and nothing is written.
#[test]
fn the_writer_refuses_a_block_the_reader_would_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = SegmentWriter::create(dir, 5, Codec::None, None).unwrap();
    w.push(&RecordView::parse(&record_bytes(0, 0, 1)).unwrap())
        .unwrap();
    w.commit(&mark(1)).unwrap();
    let len = std::fs::metadata(w.path()).unwrap().len();
    let marks: Vec<Watermark> = (0..=MAX_CHECKPOINT_ENTRIES as u32)
        .map(|core| Watermark {
            core,
            seed: 1,
            next_seq: 1,
        })
        .collect();
    let err = w.commit(&marks).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "offset {len}: refusing to write a Checkpoint block the reader would refuse: checkpoint block lists 65537 entries"
        )),
        "{err}"
    );
    assert_eq!(std::fs::metadata(w.path()).unwrap().len(), len);
    w.commit(&marks[..MAX_CHECKPOINT_ENTRIES]).unwrap();
    let sealed = w.seal().unwrap();
    let mut r = SegmentReader::open(&sealed).unwrap();
    assert_eq!(r.checkpoint().unwrap().len(), MAX_CHECKPOINT_ENTRIES);
}
