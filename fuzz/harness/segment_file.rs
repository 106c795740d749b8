//! Segment files, two ways. Shared by the cargo-fuzz target and `tests/fuzz_replay.rs`.
//!
//! - Input starting with `W`: the length contract end to end. The bytes choose records (any
//!   field lengths up to a 4096-byte slot), how often each repeats and where checkpoints fall;
//!   `SegmentWriter` writes and seals them (with zstd or without) and `SegmentReader` must give
//!   back exactly those records, with nothing reported damaged: the writer never produces a
//!   block, index or trailer the reader refuses.
//! - Any other input: 8 bytes of seek time, then arbitrary bytes as a segment file, sealed and
//!   in progress. Opening, seeking and reading never panic, and reading on past damage
//!   (`decode --skip-bad`: `open_salvaging`, then calling `next_record` again after an error)
//!   gives at least the records a plain read gives before its first error.

use glint::compact::segment::{Codec, SegmentReader, SegmentWriter, Watermark};
use glint::record::{self, BodyKind, IpSource, Method, RecordFields, RecordView};
use std::net::Ipv6Addr;

pub fn check(data: &[u8]) {
    match data.split_first() {
        Some((b'W', rest)) => check_written(rest),
        _ => check_file(data),
    }
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("glint-fuzz-seg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check_written(data: &[u8]) {
    let Some((&flags, mut ops)) = data.split_first() else {
        return;
    };
    let codec = if flags & 1 == 0 {
        Codec::Zstd
    } else {
        Codec::None
    };
    let dir = scratch("w");
    let mut w = SegmentWriter::create(&dir, 1_000, codec, None).unwrap();
    let mut pushed: Vec<Vec<u8>> = Vec::new();
    let mut slot = vec![0u8; record::MAX_SLOT_SIZE];
    let mut commits = 0u64;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        if op % 8 == 0 {
            w.commit(&marks(pushed.len() as u64, commits)).unwrap();
            commits += 1;
            continue;
        }
        // A record: field lengths and contents from the next bytes, repeated 1..=32 times.
        let take = (usize::from(op) * 37).min(ops.len());
        let (body, rest) = ops.split_at(take);
        ops = rest;
        let cut = |i: usize| &body[(body.len() * i / 5)..(body.len() * (i + 1) / 5)];
        for n in 0..=u64::from(op % 32) {
            let seq = pushed.len() as u64;
            let fields = RecordFields {
                ts_ns: 1_000 + seq * u64::from(op),
                core: u16::from(op % 4),
                status: 200,
                method: Method::Get,
                http_minor: 1,
                flags: 0,
                peer_ip: Ipv6Addr::LOCALHOST,
                peer_port: 40_000,
                client_ip: Ipv6Addr::LOCALHOST,
                ip_source: IpSource::Peer,
                body_kind: BodyKind::None,
                target: cut(0),
                user_agent: cut(1),
                referer: cut(2),
                cookie: cut(3),
                body: cut(4),
            };
            // Every field whole: the buffer takes the record's length (as a ring's slots would).
            let need = record::encoded_len(&fields);
            if need > record::MAX_RECORD_LEN {
                continue;
            }
            slot.resize(need.max(slot.len()), 0);
            let place = record::Placement::ONE;
            let len = record::encode(&mut slot, seq, record::crc_init(n), &fields, place);
            let view = RecordView::parse(&slot[..len]).expect("an encoded record parses");
            w.push(&view).unwrap();
            pushed.push(slot[..len].to_vec());
        }
    }
    w.commit(&marks(pushed.len() as u64, commits)).unwrap();
    let path = w.seal().unwrap();
    let (mut r, damage) = SegmentReader::open_salvaging(&path).unwrap();
    assert!(damage.is_empty(), "the writer's own segment: {damage:?}");
    assert_eq!(r.record_count(), pushed.len() as u64);
    assert_eq!(r.checkpoint().unwrap(), marks(pushed.len() as u64, commits));
    for (i, want) in pushed.iter().enumerate() {
        let got = r.next_record().unwrap().expect("record present");
        assert_eq!(got.bytes(), &want[..], "record {i}");
    }
    assert!(r.next_record().unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

fn marks(next_seq: u64, seed: u64) -> Vec<Watermark> {
    vec![Watermark {
        core: 0,
        seed,
        next_seq,
    }]
}

fn check_file(data: &[u8]) {
    let (ts, bytes) = data.split_at(data.len().min(8));
    let mut from = [0u8; 8];
    from[..ts.len()].copy_from_slice(ts);
    let from = u64::from_le_bytes(from);
    let dir = scratch("f");
    for name in ["s.gls", "s.gls.open"] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let plain = match SegmentReader::open(&path) {
            Ok(mut s) => {
                let _ = (
                    s.min_ts_ns(),
                    s.max_ts_ns(),
                    s.record_count(),
                    s.checkpoint(),
                );
                let _ = s.seek(from);
                read(&mut s, false)
            }
            Err(_) => 0,
        };
        if let Ok((mut s, _damage)) = SegmentReader::open_salvaging(&path) {
            let _ = s.seek(from);
            let salvaged = read(&mut s, true);
            assert!(
                salvaged >= plain,
                "{name}: reading on past damage gave {salvaged} records, a plain read {plain}"
            );
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records read; `on` reads on past errors (each error moves the reader to its next block).
fn read(s: &mut SegmentReader, on: bool) -> u64 {
    let mut n = 0;
    for _ in 0..200_000 {
        match s.next_record() {
            Ok(Some(v)) => {
                let _ = (v.seq(), v.user_agent());
                n += 1;
            }
            Ok(None) => break,
            Err(_) if on => {}
            Err(_) => break,
        }
    }
    n
}
