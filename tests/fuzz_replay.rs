//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same invariant
//! checks the cargo-fuzz targets run, so stable `cargo test` catches a regression on any input
//! the fuzzers ever found interesting (crash inputs are kept there too, named `crash-*`).

#[path = "../fuzz/harness/http_conn.rs"]
mod http_conn;
#[path = "../fuzz/harness/http_parse.rs"]
mod http_parse;
#[path = "../fuzz/harness/ring_file.rs"]
mod ring_file;
#[path = "../fuzz/harness/segment_file.rs"]
mod segment_file;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{}: corpus missing", dir.display());
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} violates an invariant",
            path.display()
        );
    }
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn http_parse_corpus_holds_every_invariant() {
    replay("http_parse", http_parse::check);
}

#[test]
fn http_conn_corpus_holds_every_invariant() {
    replay("http_conn", http_conn::check);
}

#[test]
fn ring_file_corpus_holds_every_invariant() {
    replay("ring_file", ring_file::check);
}

#[test]
fn segment_file_corpus_holds_every_invariant() {
    replay("segment_file", segment_file::check);
}
