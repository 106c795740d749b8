//! Any bytes through the record parser and every output writer: no panic, and output that
//! parses as JSON.
#![no_main]

use glint::agent::Classifier;
use glint::decode::columns::Selection;
use glint::decode::{Format, Printer};
use glint::record::RecordView;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

static AGENTS: OnceLock<Arc<Classifier>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = RecordView::parse(data) else { return };
    let _ = rec.crc_ok(0);
    let sel = Selection::new(None, true).unwrap();
    let agents = AGENTS.get_or_init(|| Arc::new(Classifier::builtin()));
    let mut out = Vec::new();
    Printer::new(Format::Jsonl, &sel, agents.clone()).write(&mut out, &rec, None);
    let line = std::str::from_utf8(&out).expect("JSON output is UTF-8");
    assert!(line.ends_with("}\n"));
    for format in [Format::Csv, Format::Tsv] {
        out.clear();
        Printer::new(format, &sel, agents.clone()).write(&mut out, &rec, None);
    }
});
