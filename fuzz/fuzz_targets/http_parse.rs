//! libFuzzer entry for `harness/http_parse.rs` (request head parser, chunked decoder).
#![no_main]

#[path = "../harness/http_parse.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
