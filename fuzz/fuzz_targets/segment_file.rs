//! libFuzzer entry for `harness/segment_file.rs` (writer-reader length contract; any bytes as a
//! segment, read plainly and with `--skip-bad`'s reading on).
#![no_main]

#[path = "../harness/segment_file.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
