//! libFuzzer entry for `harness/http_conn.rs` (the whole connection state machine).
#![no_main]

#[path = "../harness/http_conn.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
