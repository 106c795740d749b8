//! Bad input: one clear error line naming the file and offset, a non-zero exit, never a panic.

mod common;

use common::decode::*;
use common::tempdir;
use glint::ring::ring_file_name;

/// Runs decode expecting failure; returns stderr, checked to be one line without a panic.
fn fails(args: &[&str]) -> String {
    let out = decode(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn damaged_ring_files_name_file_and_offset() {
    let tmp = tempdir("badring");
    let dir = tmp.path();
    write_ring(dir, 0, 64, BASE_TS, 1000, 10);
    let good = std::fs::read(dir.join(ring_file_name(0))).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let p = write("truncated.glr", &good[..good.len() - 100]);
    assert!(fails(&[&p]).contains(&format!("{p}: offset {}: ", good.len() - 100)));
    let p = write("short.glr", &good[..4000]);
    assert!(fails(&[&p]).contains(&format!("{p}: offset 4000: ")));
    let mut bad = good.clone();
    bad[0] = b'X';
    let p = write("magic.glr", &bad);
    assert!(fails(&[&p]).contains(&format!("{p}: offset 0: not a glint ring or segment file")));
    let mut future = good.clone();
    future[12..16].copy_from_slice(&3u32.to_le_bytes());
    let p = write("future.glr", &future);
    let e = fails(&[&p]);
    assert!(
        e.contains(&format!("{p}: offset 12: record format version 3")),
        "{e}"
    );
    let p = write("empty.glr", b"");
    assert!(fails(&[&p]).contains(&format!("{p}: offset 0: file is 0 bytes")));
    let mut state = 0x1234_5678_9abc_def0u64;
    let random: Vec<u8> = (0..9000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let p = write("random.bin", &random);
    assert!(fails(&[&p]).contains(&format!("{p}: offset 0: ")));
}

#[test]
fn damaged_segments_and_empty_dirs() {
    let tmp = tempdir("badseg");
    let dir = tmp.path();
    write_ring(dir, 0, 64, BASE_TS, 1000, 20);
    let out = glint(&["compact", "--once", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let seg = glint::compact::segment::list_segments(dir)
        .unwrap()
        .remove(0);
    let bytes = std::fs::read(&seg).unwrap();
    let cut = dir.join("cut.gls");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let e = fails(&[cut.to_str().unwrap()]);
    assert!(e.contains(&format!("{}: offset ", cut.display())), "{e}");
    let mut future = bytes.clone();
    future[8..12].copy_from_slice(&9u32.to_le_bytes());
    let p = dir.join("future.gls");
    std::fs::write(&p, &future).unwrap();
    let e = fails(&[p.to_str().unwrap()]);
    assert!(e.contains(&format!("{}: offset 8", p.display())), "{e}");
    let empty_tmp = tempdir("emptydir");
    let empty = empty_tmp.path();
    let e = fails(&[empty.to_str().unwrap()]);
    assert!(
        e.contains(&format!("{}: no ring files", empty.display())),
        "{e}"
    );
    let e = fails(&[empty.join("nope").to_str().unwrap()]);
    assert!(e.contains("No such file"), "{e}");
    let e = fails(&["--from", "yesterday", dir.to_str().unwrap()]);
    assert!(e.contains("invalid time \"yesterday\""), "{e}");
}

#[test]
fn a_corrupt_ring_record_is_reported_and_the_rest_printed() {
    let tmp = tempdir("corrupt");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 64, BASE_TS, 1000, 10);
    let path = dir.join(ring_file_name(0));
    let mut bytes = std::fs::read(&path).unwrap();
    let offset = 4096 + 3 * SLOT;
    bytes[offset + 113] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = decode(&[path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&format!(
            "{}: offset {offset}: record seq 3 fails its CRC",
            path.display()
        )),
        "{err}"
    );
    let seqs: Vec<u64> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .map(|o| o["seq"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = sent.iter().map(|s| s.seq).filter(|&s| s != 3).collect();
    assert_eq!(seqs, want);
    let out = decode(&["--verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("offset {offset}")));

    // The last record damaged: a torn tail, reported, not corruption.
    let last = sent.last().unwrap().seq;
    assert!(last > 9, "the varied records include some of several slots");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset + 113] ^= 1;
    bytes[4096 + last as usize * SLOT + 113] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = decode(&["--verify", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "offset {}: torn tail: 1 record(s) from seq {last}",
            4096 + last as usize * SLOT
        )),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 ring records"));
}

/// A header with a correct CRC that claims 2^52 slots of 4096 bytes: its byte length wraps a
/// u64 to exactly the 4096-byte file. Every reader refuses it by name and offset, no signal.
#[test]
fn a_header_whose_geometry_wraps_is_refused_by_every_reader() {
    let tmp = tempdir("wrapring");
    let dir = tmp.path();
    let header = glint::ring::RingHeader {
        version: glint::ring::format::RING_VERSION,
        slot_size: 4096,
        core: 0,
        capacity: 1 << 52,
        seed: 1,
        created_ns: 0,
        identity: None,
    };
    let mut page = vec![0u8; glint::ring::format::HEADER_PAGE];
    header.encode(&mut page);
    let path = dir.join(ring_file_name(0));
    std::fs::write(&path, &page).unwrap();
    let p = path.to_str().unwrap();
    let want = format!("{p}: offset 24: ");
    for args in [vec![p], vec!["--verify", p], vec![dir.to_str().unwrap()]] {
        let e = fails(&args);
        assert!(
            e.contains(&want) && e.contains("4503599627370496"),
            "{args:?}: {e}"
        );
    }
    let out = glint(&["compact", "--once", "--data-dir", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&want), "{err}");
}

/// Offsets and record counts of a segment's blocks, walked from its first block header.
fn blocks(bytes: &[u8]) -> Vec<(usize, u8, u64)> {
    let mut at = bytes.windows(4).position(|w| w == b"GLBK").unwrap();
    let mut out = Vec::new();
    while at + 40 <= bytes.len() && &bytes[at..at + 4] == b"GLBK" {
        let stored = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let count = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().unwrap());
        out.push((at, bytes[at + 4], u64::from(count)));
        at += 40 + stored;
    }
    out
}

/// Runs decode expecting exit 1; returns the (core, seq) of every record printed, sorted, and
/// stderr.
fn keys_and_errors(args: &[&str]) -> (Vec<(u64, u64)>, String) {
    let out = decode(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let mut keys: Vec<(u64, u64)> = jsonl(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .map(|o| (o["core"].as_u64().unwrap(), o["seq"].as_u64().unwrap()))
        .collect();
    keys.sort_unstable();
    (keys, err)
}

/// Asserts `got == want` without printing thousands of keys.
fn same_keys(got: &[(u64, u64)], want: &[(u64, u64)]) {
    let missing: Vec<_> = want
        .iter()
        .filter(|k| got.binary_search(k).is_err())
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|k| want.binary_search(k).is_err())
        .take(5)
        .collect();
    assert!(
        got.len() == want.len() && missing.is_empty() && extra.is_empty(),
        "{} printed, {} wanted; missing {missing:?}, extra {extra:?}",
        got.len(),
        want.len()
    );
}

/// Issue 17: one bad segment among several. Without --skip-bad the damaged segment is read up
/// to the damage; with it, the decoder names file and offset, steps over the damaged block
/// (or rebuilds a lost index from the blocks) and goes on; the exit status is 1 either way.
#[test]
fn skip_bad_reads_on_past_a_damaged_block_index_or_file() {
    let tmp = tempdir("skipbad");
    let dir = tmp.path();
    let first = write_ring(dir, 0, 4096, BASE_TS, 1000, 3000);
    let compact = || {
        let out = glint(&["compact", "--once", "--data-dir", dir.to_str().unwrap()]);
        assert!(out.status.success());
    };
    compact();
    let second = write_ring(dir, 1, 4096, BASE_TS + 10_000_000_000, 1000, 500);
    compact();
    let segs = glint::compact::segment::list_segments(dir).unwrap();
    assert_eq!(segs.len(), 2);
    let bad = &segs[0];
    let seg_dir = dir.join("segments");
    let seg_dir = seg_dir.to_str().unwrap();
    let good = std::fs::read(bad).unwrap();
    let layout = blocks(&good);
    let records: Vec<_> = layout.iter().filter(|b| b.1 == 1).collect();
    assert!(records.len() >= 5, "{} records blocks", records.len());
    // The first segment holds core 0's records in seq order: block 1 follows block 0's.
    let (hit, before) = (records[1], records[0].2);
    let mut all: Vec<(u64, u64)> = first
        .iter()
        .map(|s| (0, s.seq))
        .chain(second.iter().map(|s| (1, s.seq)))
        .collect();
    all.sort_unstable();
    // The damaged block's records, by position (seqs count slots; some records take two).
    let lost: Vec<u64> = first[before as usize..(before + hit.2) as usize]
        .iter()
        .map(|s| s.seq)
        .collect();
    let want: Vec<(u64, u64)> = all
        .iter()
        .copied()
        .filter(|&(c, s)| c == 1 || !lost.contains(&s))
        .collect();

    // A damaged records block.
    let mut damaged = good.clone();
    damaged[hit.0 + 40 + 7] ^= 0x40;
    std::fs::write(bad, &damaged).unwrap();
    let (keys, err) = keys_and_errors(&[seg_dir]);
    let line = format!("{}: offset {}: block CRC mismatch", bad.display(), hit.0);
    assert!(
        err.contains(&format!("{line}; rest of this segment skipped")),
        "{err}"
    );
    assert_eq!(
        keys.len() as u64,
        before + 500,
        "the other segment is still read"
    );
    let (keys, err) = keys_and_errors(&["--skip-bad", seg_dir]);
    assert!(
        err.contains(&format!("{line}; block skipped, reading on (--skip-bad)")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    same_keys(&keys, &want);
    let out = decode(&["--verify", "--skip-bad", seg_dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains(&format!("{} segment records", want.len())),
        "{text}"
    );

    // A damaged trailer as well: the index is rebuilt from the blocks.
    let t = damaged.len() - 40;
    damaged[t + 3] ^= 1;
    std::fs::write(bad, &damaged).unwrap();
    let (keys, err) = keys_and_errors(&[seg_dir]);
    let trailer = format!(
        "{}: offset {t}: segment trailer CRC mismatch",
        bad.display()
    );
    assert!(err.contains(&trailer), "{err}");
    assert_eq!(keys.len(), 500, "only the other segment");
    let (keys, err) = keys_and_errors(&["--skip-bad", seg_dir]);
    assert!(
        err.contains(&format!(
            "{trailer}; reading the segment's blocks without it"
        )),
        "{err}"
    );
    let next = records[2].0;
    assert!(
        err.contains(&format!(
            "{line}; {} bytes skipped to the next valid block at offset {next}",
            next - hit.0
        )),
        "{err}"
    );
    same_keys(&keys, &want);

    // A PATH that is not a glint file at all, before the good ones.
    std::fs::write(bad, &good).unwrap();
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"not a segment, not a ring").unwrap();
    let junk = junk.to_str().unwrap();
    let (keys, err) = keys_and_errors(&[junk, seg_dir]);
    assert!(keys.is_empty(), "{} printed", keys.len());
    assert!(
        err.contains(&format!("{junk}: offset 0: not a glint")),
        "{err}"
    );
    let (keys, err) = keys_and_errors(&["--skip-bad", junk, seg_dir]);
    assert!(err.contains("; skipped (--skip-bad)"), "{err}");
    same_keys(&keys, &all);
}
