//! Files written by the first release still decode: `tests/fixtures/v1` holds a data dir (two v1
//! rings, a zstd and an uncompressed v1 segment) and what that release's `glint decode` printed.
//! Later releases may add fields; every field the first release printed must come out the same.

mod common;

use common::{tempdir, GLINT};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1");

/// The fields the first release printed in `decode.jsonl`.
const V1_FIELDS: &str =
    "ts,ts_ns,core,seq,ip,ip_source,peer,port,method,http_version,status,target,\
path,query,ua,referer,cookie,body,body_kind,truncated,dnt,gpc,keep_alive,pipelined,chunked";

/// A copy of the fixture's data dir (in a temp dir removed on drop): serve and compact may
/// upgrade files in place.
fn copy_fixture(tag: &str) -> (tempfile::TempDir, PathBuf) {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let dest = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &dest);
            } else {
                std::fs::copy(entry.path(), dest).unwrap();
            }
        }
    }
    let tmp = tempdir(tag);
    let dir = tmp.path().join("data");
    copy_dir(&Path::new(FIXTURE).join("data"), &dir);
    (tmp, dir)
}

/// The first release's output, keyed by (core, seq).
fn expected() -> BTreeMap<(u64, u64), Value> {
    let text = std::fs::read_to_string(Path::new(FIXTURE).join("decode.jsonl")).unwrap();
    let rows: BTreeMap<_, _> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            ((v["core"].as_u64().unwrap(), v["seq"].as_u64().unwrap()), v)
        })
        .collect();
    assert_eq!(rows.len(), 33, "the fixture holds 33 distinct records");
    rows
}

/// Every record of `expected` is decoded from `dir` once, with every v1 field unchanged.
fn assert_decodes_as_v1(dir: &Path) {
    let want = expected();
    let got = common::decode_jsonl(dir, &["--fields", V1_FIELDS]);
    assert_eq!(got.len(), want.len(), "record count");
    let mut seen = std::collections::BTreeSet::new();
    for row in &got {
        let key = (row["core"].as_u64().unwrap(), row["seq"].as_u64().unwrap());
        let exp = want
            .get(&key)
            .unwrap_or_else(|| panic!("record {key:?} is not in the v1 output: {row}"));
        for (field, value) in exp.as_object().unwrap() {
            assert_eq!(&row[field], value, "record {key:?} field {field}");
        }
        assert!(seen.insert(key), "record {key:?} printed twice");
    }
    // The fixture is meant to exercise truncated fields and bodies: make sure it still does.
    assert!(want
        .values()
        .any(|v| v["truncated"] != Value::Array(vec![])));
    assert!(want.values().any(|v| v["body"].is_string()));
}

#[test]
fn v1_data_dir_decodes_as_the_first_release_printed_it() {
    let (_tmp, dir) = copy_fixture("v1-decode");
    assert_decodes_as_v1(&dir);
}

#[test]
fn v1_data_dir_verifies_clean() {
    let (_tmp, dir) = copy_fixture("v1-verify");
    let out = Command::new(GLINT)
        .args(["decode", "--verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn v1_rings_compact_into_current_segments_without_loss() {
    let (_tmp, dir) = copy_fixture("v1-compact");
    common::compact_once(&dir, &[]);
    assert_decodes_as_v1(&dir);
}

/// The user agent `make.sh` sends on its long beacons: longer than a 256-byte slot.
const LONG_UA_LEN: u64 = 102 + 200;

#[test]
fn v1_truncated_fields_show_their_original_length() {
    let (_tmp, dir) = copy_fixture("v1-origlen");
    let rows = common::decode_jsonl(&dir, &[]);
    let mut cut = 0;
    for row in &rows {
        let truncated: Vec<&str> = row["truncated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if truncated.is_empty() {
            assert!(row.get("orig_len").is_none(), "only when cut: {row}");
            continue;
        }
        cut += 1;
        let orig = row["orig_len"].as_object().unwrap();
        let keys: Vec<&str> = orig.keys().map(String::as_str).collect();
        let mut want = truncated.clone();
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want, "{row}");
        for name in truncated {
            let stored = match name {
                "target" => {
                    row["path"].as_str().unwrap().len() + 1 + row["query"].as_str().unwrap().len()
                }
                other => row[other].as_str().unwrap().len(),
            } as u64;
            let len = orig[name].as_u64().unwrap();
            assert!(
                len > stored,
                "{name}: original {len} > stored {stored}: {row}"
            );
            if name == "ua" {
                assert_eq!(len, LONG_UA_LEN, "{row}");
            }
        }
    }
    assert!(cut >= 2, "the fixture has cut records");
}
