//! Bad input: one clear error line naming the file and offset, a non-zero exit, never a panic.

mod decode_support;

use decode_support::*;
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
    let dir = tempdir("badring");
    write_ring(&dir, 0, 64, BASE_TS, 1000, 10);
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
    future[12..16].copy_from_slice(&2u32.to_le_bytes());
    let p = write("future.glr", &future);
    let e = fails(&[&p]);
    assert!(
        e.contains(&format!("{p}: offset 12: record format version 2")),
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
    let dir = tempdir("badseg");
    write_ring(&dir, 0, 64, BASE_TS, 1000, 20);
    let out = glint(&["compact", "--once", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let seg = glint::compact::segment::list_segments(&dir)
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
    let empty = tempdir("emptydir");
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
    let dir = tempdir("corrupt");
    let sent = write_ring(&dir, 0, 64, BASE_TS, 1000, 10);
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
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset + 113] ^= 1;
    bytes[4096 + 9 * SLOT + 113] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = decode(&["--verify", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "offset {}: torn tail: 1 slot(s) from seq 9",
            4096 + 9 * SLOT
        )),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 ring records"));
}

/// A header with a correct CRC that claims 2^52 slots of 4096 bytes: its byte length wraps a
/// u64 to exactly the 4096-byte file. Every reader refuses it by name and offset, no signal.
#[test]
fn a_header_whose_geometry_wraps_is_refused_by_every_reader() {
    let dir = tempdir("wrapring");
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
