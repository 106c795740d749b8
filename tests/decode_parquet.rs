//! `glint decode --format parquet -o FILE`, read back by two independent readers (pyarrow and
//! DuckDB from PyPI): every row and every field equal to what `glint decode` prints as JSON,
//! the same filters and field lists, the column types of the table in docs/analytics.md,
//! zstd pages, dictionaries on low-cardinality columns.
//!
//! Needs the venv `target/lake-tools` that `.ci/run` creates (see `common/lake.rs`).

mod common;

use common::decode::*;
use common::lake::Tools;
use common::tempdir;
use serde_json::Value;
use std::path::Path;

/// A data dir with two cores of varied records (odd bytes, multi-slot fields, cookies, bodies).
fn varied_dir(tag: &str) -> tempfile::TempDir {
    let tmp = tempdir(tag);
    write_ring(tmp.path(), 0, 256, BASE_TS + 123_456_789, 1_000_001, 150);
    write_ring(tmp.path(), 1, 256, BASE_TS + 333, 777_777, 150);
    tmp
}

fn parquet(args: &[&str], file: &Path) {
    let mut all = args.to_vec();
    all.extend(["--format", "parquet", "-o", file.to_str().unwrap()]);
    let out = decode_ok(&all);
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert!(file.is_file());
}

/// Both readers' rows equal decode's JSON objects, in order.
fn assert_same_rows(tools: &Tools, file: &Path, json: &[Value], fix: &dyn Fn(&mut Value)) {
    for reader in ["pyarrow", "duckdb"] {
        let mut rows = tools.rows(reader, &[file.to_str().unwrap()], &[]);
        assert_eq!(rows.len(), json.len(), "{reader}: row count");
        for (i, (row, obj)) in rows.iter_mut().zip(json).enumerate() {
            fix(row);
            assert_eq!(row, obj, "{reader}: row {i}");
        }
    }
}

#[test]
fn every_field_of_every_record_reads_back_as_decode_prints_it() {
    let Some(tools) = Tools::find("parquet_every_field") else {
        return;
    };
    let tmp = varied_dir("pq-all");
    let dir = tmp.path();
    let file = dir.join("all.parquet");
    parquet(&[dir.to_str().unwrap()], &file);
    let json = jsonl(&decode_ok(&[dir.to_str().unwrap()]));
    assert_eq!(json.len(), 300);
    // The set holds what needs the raw-bytes columns and the nulls.
    assert!(json.iter().any(|o| o.get("ua_b64").is_some()));
    assert!(json.iter().any(|o| o.get("path_b64").is_some()));
    assert!(json.iter().any(|o| o.get("cookie").is_none()));
    assert!(json.iter().any(|o| o.get("body").is_some()));
    assert_same_rows(&tools, &file, &json, &|_| {});
    assert!(
        !dir.join("all.parquet.partial").exists(),
        "the partial file was renamed"
    );
}

#[test]
fn filters_and_field_lists_select_the_same_records_as_json() {
    let Some(tools) = Tools::find("parquet_filters") else {
        return;
    };
    let tmp = varied_dir("pq-filter");
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let args = [
        d,
        "--from",
        "2025-11-24T16:00:00.05Z",
        "--to",
        "2025-11-24T16:00:00.1Z",
        "--where",
        "method=GET",
        "--fields",
        "seq,ts,core,target,target_b64,ua,ua_b64,method,status,truncated,q",
        "--expand-query",
    ];
    let file = dir.join("some.parquet");
    parquet(&args, &file);
    let json = jsonl(&decode_ok(&args));
    assert!(json.len() > 20 && json.len() < 250, "{}", json.len());
    // `q` is the JSON object's text, as in CSV; the *_b64 fields are base64 text.
    assert_same_rows(&tools, &file, &json, &|row| {
        let q = row["q"].as_str().unwrap().to_string();
        row["q"] = serde_json::from_str(&q).unwrap();
    });
}

#[test]
fn first_release_records_keep_truncation_and_original_lengths() {
    let Some(tools) = Tools::find("parquet_v1") else {
        return;
    };
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/data");
    let tmp = tempdir("pq-v1");
    let dir = tmp.path();
    let file = dir.join("v1.parquet");
    parquet(&[fixture], &file);
    let json = jsonl(&decode_ok(&[fixture]));
    assert!(json.iter().any(|o| o.get("orig_len").is_some()));
    assert!(json.iter().any(|o| o.get("instance").is_none()));
    assert_same_rows(&tools, &file, &json, &|_| {});
}

/// The column table of docs/analytics.md: (column, DuckDB type).
fn documented_types() -> Vec<(String, String)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/analytics.md")).unwrap();
    let start = doc.find("| column |").expect("the Parquet column table");
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let strip = |s: &str| s.trim_matches('`').to_string();
            (strip(cells[1]), strip(cells[3]))
        })
        .collect()
}

#[test]
fn types_are_as_documented_with_zstd_and_dictionaries() {
    let Some(tools) = Tools::find("parquet_types") else {
        return;
    };
    let tmp = varied_dir("pq-types");
    let dir = tmp.path();
    let names = glint::decode::columns::Column::names().replace(' ', "");
    let file = dir.join("types.parquet");
    parquet(
        &[dir.to_str().unwrap(), "--fields", &names, "--expand-query"],
        &file,
    );
    let schema = tools.schema(file.to_str().unwrap());
    let duck = schema["duckdb"].as_object().unwrap();
    let documented = documented_types();
    for (name, typ) in &documented {
        assert_eq!(
            duck.get(name).and_then(Value::as_str),
            Some(typ.as_str()),
            "column {name} in docs/analytics.md vs DuckDB: {duck:?}"
        );
    }
    assert_eq!(
        documented.len(),
        duck.len(),
        "every column is documented: {duck:?}"
    );
    assert_eq!(schema["rows"], 300);
    assert_eq!(schema["compression"], serde_json::json!(["ZSTD"]));
    let dict = &schema["dictionary"];
    for low in ["method", "ip_source", "instance", "instance_id", "status"] {
        assert_eq!(dict[low], true, "{low} is dictionary-encoded: {dict}");
    }
    for high in ["ts", "ts_ns", "seq", "body_bytes"] {
        assert_eq!(dict[high], false, "{high} is not: {dict}");
    }
    assert!(schema["created_by"].as_str().unwrap().starts_with("glint "));
    // Columns present in every record are REQUIRED; optional ones nullable.
    let nullable = &schema["nullable"];
    assert_eq!(nullable["ts"], false);
    assert_eq!(nullable["cookie"], true);
    assert_eq!(nullable["orig_len"], true);
}

#[test]
fn bad_arguments_are_one_line_and_leave_no_file() {
    let tmp = varied_dir("pq-args");
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let out = decode(&[d, "--format", "parquet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format parquet needs -o FILE"));
    let file = dir.join("x.parquet");
    let f = file.to_str().unwrap();
    let out = decode(&[d, "--format", "parquet", "-o", f, "--stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not with --follow, --verify or --stats"));
    let out = decode(&[d, "--format", "parquet", "-o", "/nonexistent-dir/x.parquet"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/x.parquet.partial"));
    assert!(!file.exists());
    // -o works for the text formats too, and gives the same bytes as stdout.
    let jsonl_file = dir.join("x.jsonl");
    decode_ok(&[d, "-o", jsonl_file.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&jsonl_file).unwrap(),
        decode_ok(&[d])
    );
}
