//! libFuzzer entry for `harness/ring_file.rs` (ring reader and recovery scan on any bytes).
#![no_main]

#[path = "../harness/ring_file.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
