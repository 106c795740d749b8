//! Any bytes as a ring file: opening and reading every slot never panics, and the recovery
//! scan a restarting server runs never panics and keeps only records that read back valid.
//! Shared by the cargo-fuzz target and `tests/fuzz_replay.rs`.

use glint::ring::{RingOptions, RingReader, RingWriter};

pub fn check(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("glint-fuzz-ring-{}.glr", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(mut r) = RingReader::open(&path) {
        let header = *r.header();
        let range = r.valid_range();
        let cap = header.capacity.min(4096);
        for seq in range.start..range.start + cap {
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
            };
            if let Ok((writer, rec)) = RingWriter::open(&path, opts) {
                assert_eq!(writer.next_seq(), rec.next_seq);
                drop(writer);
                let mut r = RingReader::open(&path).expect("a recovered ring reopens");
                for seq in rec.cursor..rec.next_seq {
                    assert!(
                        r.read(seq).is_ok(),
                        "recovery kept seq {seq}, which does not read back"
                    );
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}
