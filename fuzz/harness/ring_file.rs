//! Any bytes as a ring file: opening and reading every slot never panics, and the recovery
//! scan a restarting server runs never panics and keeps only records that read back valid.
//! The same bytes are also tried behind a header with a correct CRC and a geometry taken from
//! the input (extreme slot sizes, slot counts up to 2^64, lengths that wrap), so the fuzzer
//! reaches the geometry checks instead of stopping at the CRC.
//! Shared by the cargo-fuzz target and `tests/fuzz_replay.rs`.

use glint::ring::format::{file_len, HEADER_PAGE, OFF_CURSOR};
use glint::ring::{RingHeader, RingOptions, RingReader, RingWriter};

pub fn check(data: &[u8]) {
    check_file(data);
    if let Some(file) = with_valid_header(data) {
        check_file(&file);
    }
}

/// Largest file a crafted geometry is padded to (bigger claims keep the input's length).
const MAX_PADDED: u64 = 1 << 20;

/// Bytes 0..10 choose a geometry and a cursor; a header with a correct CRC is written for them,
/// followed by the rest of the input as slot bytes.
fn with_valid_header(data: &[u8]) -> Option<Vec<u8>> {
    let (g, rest) = data.split_first_chunk::<10>()?;
    let wide = u64::from_le_bytes([g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9]]);
    let slot_size = match g[0] % 4 {
        0 => 1u32 << (g[1] % 32),
        1 => u32::from_le_bytes([g[1], g[2], 0, 0]),
        _ => 256 << (g[1] % 5),
    };
    let capacity = match (g[0] >> 2) % 4 {
        0 => 1u64 << (g[1] % 64),
        1 => u64::MAX >> (g[1] % 64),
        2 => wide,
        _ => 2 << (g[1] % 6),
    };
    let header = RingHeader {
        version: glint::ring::format::RING_VERSION,
        slot_size,
        core: u32::from(g[9]),
        capacity,
        seed: u64::from(g[8]),
        created_ns: 0,
        identity: None,
    };
    let claimed = file_len(slot_size as usize, capacity);
    let len = match claimed {
        Some(want) if g[0] & 0x10 != 0 && want <= MAX_PADDED => want as usize,
        _ => HEADER_PAGE + rest.len(),
    };
    let mut file = vec![0u8; len.max(HEADER_PAGE + rest.len())];
    header.encode(&mut file[..HEADER_PAGE]);
    let cursor = match (g[0] >> 5) % 4 {
        0 => 0,
        1 => u64::MAX - u64::from(g[7]),
        2 => u64::from(g[7]),
        _ => wide,
    };
    file[OFF_CURSOR..OFF_CURSOR + 8].copy_from_slice(&cursor.to_le_bytes());
    file[HEADER_PAGE..HEADER_PAGE + rest.len()].copy_from_slice(rest);
    Some(file)
}

fn check_file(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("glint-fuzz-ring-{}.glr", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(mut r) = RingReader::open(&path) {
        let header = *r.header();
        let want = file_len(header.slot_size as usize, header.capacity);
        assert!(
            matches!(want, Some(want) if want <= data.len() as u64),
            "a ring whose geometry does not fit its {} bytes was opened: {header:?}",
            data.len()
        );
        let range = r.valid_range();
        let cap = header.capacity.min(4096);
        for seq in range.start..range.start.saturating_add(cap) {
            let _ = r.state(seq);
            if let Ok(v) = r.read(seq) {
                let _ = (v.seq(), v.target(), v.body());
            }
        }
        drop(r);
        // Recovery on a ring of bounded size (a huge capacity would only test fallocate).
        if header.capacity <= 1 << 12 {
            let opts = RingOptions {
                slot_size: header.slot_size as usize,
                capacity: header.capacity,
                core: header.core,
                identity: header.identity,
            };
            if let Ok((writer, rec)) = RingWriter::open(&path, opts) {
                assert_eq!(writer.next_seq(), rec.next_seq);
                drop(writer);
                let mut r = RingReader::open(&path).expect("a recovered ring reopens");
                // Record after record (a record may take several slots).
                let mut seq = rec.cursor;
                while seq < rec.next_seq {
                    match r.read(seq) {
                        Ok(v) => seq = v.seqs().end,
                        Err(e) => {
                            panic!("recovery kept seq {seq}, which does not read back: {e:?}")
                        }
                    }
                }
                assert_eq!(seq, rec.next_seq, "records end where recovery resumed");
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}
