//! Any bytes as a ring file: opening and reading every slot never panics.
#![no_main]

use glint::ring::RingReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("glint-fuzz-ring-{}.glr", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(mut r) = RingReader::open(&path) {
        let range = r.valid_range();
        let cap = r.header().capacity.min(4096);
        for seq in range.start..range.start + cap {
            let _ = r.state(seq);
            if let Ok(v) = r.read(seq) {
                let _ = (v.seq(), v.target(), v.body());
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
