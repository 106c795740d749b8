//! `glint decode` on rings: every format and filter, compared field by field with what was written.

mod common;

use common::decode::*;
use common::tempdir;
use glint::ring::ring_file_name;

const SEC: u64 = 1_000_000_000;

#[test]
fn ring_jsonl_matches_every_field_written() {
    let tmp = tempdir("jsonl");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 256, BASE_TS + 123_456_789, 1_000_001, 120);
    let ring = dir.join(ring_file_name(0));
    let objs = jsonl(&decode_ok(&[ring.to_str().unwrap()]));
    assert_eq!(objs.len(), sent.len());
    for (obj, s) in objs.iter().zip(&sent) {
        check_json(obj, s);
    }
    // The varied set holds invalid UTF-8, records of several slots (stored whole: nothing is
    // ever truncated) and absolute-form targets.
    assert!(objs.iter().any(|o| o.get("ua_b64").is_some()));
    assert!(objs.iter().any(|o| o.get("path_b64").is_some()));
    assert!(sent.iter().any(|s| s.target.len() > SLOT));
    assert!(objs
        .iter()
        .all(|o| o["truncated"].as_array().unwrap().is_empty()));
    // A real U+F7FF character is not confused with an escaped byte.
    assert!(objs
        .iter()
        .any(|o| o["ua"].as_str().unwrap().contains('\u{F7FF}') && o.get("ua_b64").is_none()));
}

#[test]
fn data_dir_merges_cores_in_time_order() {
    let tmp = tempdir("cores");
    let dir = tmp.path();
    let mut sent = Vec::new();
    for core in 0..3u16 {
        sent.extend(write_ring(
            dir,
            core,
            128,
            BASE_TS + u64::from(core) * 333,
            1000,
            100,
        ));
    }
    sent.sort_by_key(|s| (s.ts_ns, s.core, s.seq));
    let objs = jsonl(&decode_ok(&[dir.to_str().unwrap()]));
    assert_eq!(objs.len(), 300);
    for (obj, s) in objs.iter().zip(&sent) {
        check_json(obj, s);
    }
}

#[test]
fn csv_round_trips_with_quoting_and_b64_columns() {
    let tmp = tempdir("csv");
    let dir = tmp.path();
    let sent = write_ring(dir, 1, 64, BASE_TS, SEC, 40);
    let fields = "seq,ts,status,method,target,target_b64,ua,ua_b64,referer,truncated,dnt";
    let text = decode_ok(&["--format", "csv", "--fields", fields, dir.to_str().unwrap()]);
    let rows = parse_csv(&text);
    assert_eq!(rows[0], fields.split(',').collect::<Vec<_>>());
    assert_eq!(rows.len(), sent.len() + 1);
    for (row, s) in rows[1..].iter().zip(&sent) {
        assert_eq!(row[0], s.seq.to_string());
        assert_eq!(row[1], glint::decode::time::format_rfc3339(s.ts_ns));
        assert_eq!(row[2], s.status.to_string());
        assert_eq!(row[3], s.method.as_str());
        let target = b64_decode(&row[5]);
        let ua = b64_decode(&row[7]);
        assert_eq!(row[4], String::from_utf8_lossy(&target));
        assert_eq!(row[6], String::from_utf8_lossy(&ua));
        assert_eq!(row[9], "", "nothing truncated");
        assert_eq!((&target, &ua), (&s.target, &s.ua));
        assert_eq!(row[8], String::from_utf8_lossy(&s.referer));
        assert_eq!(
            row[10],
            (s.flags & glint::record::flags::DNT != 0).to_string()
        );
    }
}

#[test]
fn tsv_escapes_tabs_and_newlines() {
    let tmp = tempdir("tsv");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 64, BASE_TS, SEC, 12);
    let text = decode_ok(&[
        "--format",
        "tsv",
        "--fields",
        "seq,ua,query",
        dir.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "seq\tua\tquery");
    assert_eq!(lines.len(), sent.len() + 1, "no raw newline inside a row");
    for (line, s) in lines[1..].iter().zip(&sent) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{line}");
        let unescape = |t: &str| {
            t.replace("\\t", "\t")
                .replace("\\n", "\n")
                .replace("\\r", "\r")
                .replace("\\\\", "\\")
        };
        assert_eq!(cols[0], s.seq.to_string());
        assert_eq!(unescape(cols[1]), String::from_utf8_lossy(&s.ua));
        let query = String::from_utf8_lossy(&split(&s.target).1).into_owned();
        if s.target.len() > 300 {
            assert!(
                query.starts_with(&unescape(cols[2])),
                "a cut target keeps its prefix"
            );
        } else {
            assert_eq!(unescape(cols[2]), query);
        }
    }
}

#[test]
fn from_to_where_and_fields_select_exactly_the_matching_records() {
    let tmp = tempdir("filter");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 256, BASE_TS, 60 * SEC, 200);
    let d = dir.to_str().unwrap();
    let from = glint::decode::time::format_rfc3339(BASE_TS + 30 * 60 * SEC);
    let to = "2025-11-24T17:30:00+00:00";
    let to_ns = BASE_TS + 90 * 60 * SEC;
    let got = jsonl(&decode_ok(&[
        "--from",
        &from,
        "--to",
        to,
        "--where",
        "status=404",
        "--where",
        "method!=HEAD",
        d,
    ]));
    let want: Vec<&Sent> = sent
        .iter()
        .filter(|s| {
            s.ts_ns >= BASE_TS + 30 * 60 * SEC
                && s.ts_ns < to_ns
                && s.status == 404
                && s.method.as_str() != "HEAD"
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        got.iter()
            .map(|o| o["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        want.iter().map(|s| s.seq).collect::<Vec<_>>()
    );
    let got = jsonl(&decode_ok(&[
        "--where",
        "ua~Firefox",
        "--where",
        "dnt=false",
        "--fields",
        "status,seq,ua",
        d,
    ]));
    let want: Vec<u64> = sent
        .iter()
        .filter(|s| {
            s.ua.windows(7).any(|w| w == b"Firefox") && s.flags & glint::record::flags::DNT == 0
        })
        .map(|s| s.seq)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        got.iter()
            .map(|o| o["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        want
    );
    let keys: Vec<&String> = got[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);
    let first_line = decode_ok(&["--fields", "status,seq,ua", d])
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        first_line.starts_with("{\"status\":") && first_line.contains(",\"seq\":0,\"ua\":"),
        "{first_line}"
    );
}

#[test]
fn expand_query_decodes_and_keeps_repeated_keys() {
    let tmp = tempdir("query");
    let dir = tmp.path();
    write_ring(dir, 0, 64, BASE_TS, SEC, 6);
    let got = jsonl(&decode_ok(&[
        "--expand-query",
        "--fields",
        "seq,query,q",
        dir.to_str().unwrap(),
    ]));
    assert_eq!(got[0]["q"]["url"], "https://a.example/?x=1");
    assert_eq!(got[0]["q"]["tag"], serde_json::json!(["a", "b"]));
    assert_eq!(got[0]["q"]["n"], "0");
    assert_eq!(got[1]["q"]["q"], "\"quoted\",comma");
    assert_eq!(got[2]["q"]["x"], "\u{FFFD}");
    assert_eq!(got[3]["q"], serde_json::json!({}));
}

#[test]
fn stats_summarise_counts_paths_and_truncation() {
    let tmp = tempdir("stats");
    let dir = tmp.path();
    let sent = write_ring(dir, 0, 256, BASE_TS, 10 * SEC, 180);
    let text = decode_ok(&["--stats", dir.to_str().unwrap()]);
    assert!(text.contains("records: 180\n"), "{text}");
    assert!(sent.iter().any(|s| s.target.len() > SLOT));
    assert!(text.contains("truncated: 0 ("), "{text}");
    assert!(
        text.contains("per minute:\n  2025-11-24T16:00  6\n"),
        "{text}"
    );
    assert!(
        text.contains("span: 2025-11-24T16:00:00.000000Z .. 2025-11-24T16:29:50.000000Z"),
        "{text}"
    );
    assert!(text.contains(&format!("  {:>10}  /long\n", 30)), "{text}");
}

#[test]
fn broken_pipe_ends_quietly_with_exit_zero() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempdir("pipe");
    let dir = tmp.path();
    write_ring(dir, 0, 1 << 15, BASE_TS, 1000, 1 << 14);
    let mut child = Command::new(env!("CARGO_BIN_EXE_glint"))
        .args(["decode", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("{\"ts\":"));
    // The reader is dropped here, like `head -1` exiting.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn help_explains_every_flag() {
    let out = glint(&["decode", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--format",
        "--from",
        "--to",
        "--fields",
        "--where",
        "--expand-query",
        "--follow",
        "--verify",
        "--stats",
        "_b64",
        "Exit status",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
