//! Any bytes as a segment file (sealed or in progress): open, seek, read every record, never panic.
#![no_main]

use glint::compact::segment::SegmentReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ts, bytes) = data.split_at(data.len().min(8));
    let mut from = [0u8; 8];
    from[..ts.len()].copy_from_slice(ts);
    for name in ["s.gls", "s.gls.open"] {
        let path = std::env::temp_dir().join(format!("glint-fuzz-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        if let Ok(mut s) = SegmentReader::open(&path) {
            let _ = (s.min_ts_ns(), s.max_ts_ns(), s.record_count());
            let _ = s.seek(u64::from_le_bytes(from));
            for _ in 0..100_000 {
                match s.next_record() {
                    Ok(Some(v)) => {
                        let _ = (v.seq(), v.user_agent());
                    }
                    _ => break,
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
});
