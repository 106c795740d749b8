//! Records of several boxes are never mistaken for each other: each data dir has its own
//! instance identity, in every ring and segment header, printed by decode and part of the
//! dedup key, and segment names that do not collide when several boxes' segments share a folder.

#[macro_use]
mod common;

use common::{compact_once, decode_jsonl, roundtrip, tempdir, Server, GLINT};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Starts a one-core box named `name`, sends `count` beacons tagged with it, stops it.
fn run_box(root: &Path, name: &str, count: usize, io: &str) -> PathBuf {
    let dir = root.join(name);
    let server = Server::start(
        &dir,
        &["--io", io, "--threads", "1", "--instance-name", name],
    );
    let mut stream = server.connect();
    for i in 0..count {
        let raw = format!("GET /p.gif?box={name}&i={i} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(roundtrip(&mut stream, raw.as_bytes()).unwrap().status, 200);
    }
    assert!(server.stop().success());
    dir
}

fn instance_id(dir: &Path) -> String {
    glint::instance::load(dir)
        .unwrap()
        .expect("instance.toml")
        .id_hex()
}

/// Every record once: (instance, query) pairs, and the instance ids seen per name.
fn check_sum_of_both(rows: &[Value], a: (&str, &str, usize), b: (&str, &str, usize)) {
    assert_eq!(rows.len(), a.2 + b.2, "records of both boxes: {rows:?}");
    let mut keys = BTreeSet::new();
    for row in rows {
        let name = row["instance"].as_str().expect("instance printed");
        let id = row["instance_id"].as_str().unwrap();
        let (want_id, _) = [(a.1, a.0), (b.1, b.0)]
            .into_iter()
            .find(|(_, n)| *n == name)
            .unwrap_or_else(|| panic!("unknown instance {name}"));
        assert_eq!(id, want_id, "{row}");
        assert_eq!(row["query"], format!("box={name}&i={}", row["seq"]));
        assert!(keys.insert((id.to_string(), row["core"].as_u64(), row["seq"].as_u64())));
    }
}

fn two_boxes_decode_to_the_sum_of_both(io: &str) {
    let root_tmp = tempdir("fleet");
    let root = root_tmp.path();
    let a = run_box(root, "box-a", 7, io);
    let b = run_box(root, "box-b", 5, io);
    let (ida, idb) = (instance_id(&a), instance_id(&b));
    assert_ne!(ida, idb);
    let want = (("box-a", ida.as_str(), 7), ("box-b", idb.as_str(), 5));
    let both = |extra: &[&str]| {
        let out = Command::new(GLINT)
            .args(["decode", "--format", "jsonl"])
            .args(extra)
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    // Rings only: both boxes wrote core 0, seqs 0.. .
    check_sum_of_both(&both(&[]), want.0, want.1);
    // Rings and segments (each record is in both): still each record once.
    compact_once(&a, &[]);
    compact_once(&b, &[]);
    check_sum_of_both(&both(&[]), want.0, want.1);
    // --where and --fields know the instance.
    assert_eq!(both(&["--where", "instance=box-b"]).len(), 5);
    let rows = both(&[
        "--where",
        &format!("instance_id={ida}"),
        "--fields",
        "instance,seq",
    ]);
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0].as_object().unwrap().len(), 2);

    // Both boxes' segments gathered into one folder: no name collides, all records are there.
    let gathered = root.join("gathered");
    std::fs::create_dir_all(&gathered).unwrap();
    let mut names = BTreeSet::new();
    for dir in [&a, &b] {
        for seg in glint::compact::segment::list_segments(dir).unwrap() {
            let name = seg.file_name().unwrap().to_owned();
            let tag = &instance_id(dir)[..glint::instance::NAME_PREFIX_HEX];
            assert!(name.to_str().unwrap().contains(tag), "{name:?}");
            assert!(names.insert(name.clone()), "{name:?} collides");
            std::fs::copy(&seg, gathered.join(&name)).unwrap();
        }
    }
    check_sum_of_both(&decode_jsonl(&gathered, &[]), want.0, want.1);
    let csv = Command::new(GLINT)
        .args([
            "decode",
            "--format",
            "csv",
            "--fields",
            "instance,instance_id,core,seq",
        ])
        .arg(&gathered)
        .output()
        .unwrap();
    let text = String::from_utf8(csv.stdout).unwrap();
    assert!(
        text.starts_with("instance,instance_id,core,seq\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("box-b,{idb},0,4\r\n")), "{text}");
    let verify = Command::new(GLINT)
        .args(["decode", "--verify"])
        .arg(&gathered)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{summary}");
    assert!(
        summary.contains("instance box-a core 0: seqs 0..7"),
        "{summary}"
    );
    assert!(
        summary.contains("instance box-b core 0: seqs 0..5"),
        "{summary}"
    );
}

for_each_backend!(two_boxes_decode_to_the_sum_of_both);

#[test]
fn identity_is_kept_across_restarts_and_renamed_by_the_flag() {
    let root_tmp = tempdir("fleet-rename");
    let root = root_tmp.path();
    let dir = run_box(root, "old-name", 2, "epoll");
    let id = instance_id(&dir);
    // A restart without the flag keeps the name; with another name, every record shows it.
    let server = Server::start(&dir, &["--io", "epoll", "--threads", "1"]);
    assert!(server.stop().success());
    assert_eq!(
        glint::instance::load(&dir).unwrap().unwrap().name(),
        "old-name"
    );
    let server = Server::start(
        &dir,
        &["--io", "epoll", "--threads", "1", "--instance-name", "new"],
    );
    assert!(server.stop().success());
    assert_eq!(instance_id(&dir), id);
    let rows = decode_jsonl(&dir, &[]);
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["instance"] == "new" && r["instance_id"] == id.as_str()));
}

#[test]
fn a_ring_of_another_instance_is_refused_by_serve_and_compact() {
    let root_tmp = tempdir("fleet-foreign");
    let root = root_tmp.path();
    let a = run_box(root, "a", 1, "epoll");
    let b = run_box(root, "b", 1, "epoll");
    let ring = glint::ring::ring_file_name(0);
    std::fs::copy(b.join(&ring), a.join(&ring)).unwrap();
    let out = Command::new(GLINT)
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        .args(["--threads", "1", "--ring-slots", "4096", "--data-dir"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = format!(
        "{}: offset 192: ring of instance {}",
        a.join(&ring).display(),
        instance_id(&b)
    );
    assert!(err.contains(&line), "{err}");
    let out = Command::new(GLINT)
        .args(["compact", "--once", "--data-dir"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not compacted: give it its own data dir"),
        "{err}"
    );
}

#[test]
fn instance_name_is_checked_and_read_from_the_config_file() {
    let root_tmp = tempdir("fleet-config");
    let root = root_tmp.path();
    let out = Command::new(GLINT)
        .args(["serve", "--instance-name", "bad\tname", "--data-dir"])
        .arg(root.join("x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("control characters"));
    let config = root.join("glint.toml");
    std::fs::write(&config, "instance_name = \"from-config\"\n").unwrap();
    let dir = root.join("data");
    let config_arg = config.to_str().unwrap().to_string();
    let server = Server::start(&dir, &["--io", "epoll", "--config", &config_arg]);
    assert!(server.stop().success());
    assert_eq!(
        glint::instance::load(&dir).unwrap().unwrap().name(),
        "from-config"
    );
}

#[test]
fn v1_files_decode_without_instance() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/data");
    let rows = decode_jsonl(&fixture, &[]);
    assert_eq!(rows.len(), 33);
    assert!(rows
        .iter()
        .all(|r| r.get("instance").is_none() && r.get("instance_id").is_none()));
    let rows = decode_jsonl(&fixture, &["--fields", "instance,instance_id,seq"]);
    assert!(rows
        .iter()
        .all(|r| r["instance"] == "" && r["instance_id"] == ""));
}
