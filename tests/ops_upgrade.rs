//! What an operator's `systemctl restart` and binary upgrade do to the rings: a restart keeps
//! every record and continues the sequence numbers; rings of another format version are refused
//! with one line naming the file, the offset and both versions, and are left untouched.

mod common;

use common::{roundtrip, tempdir, Server};
use std::path::Path;
use std::process::Command;

fn send_beacons(server: &Server, tag: &str, count: usize) {
    let mut stream = server.connect();
    for i in 0..count {
        let raw = format!("GET /p.gif?run={tag}&i={i} HTTP/1.1\r\nHost: t\r\n\r\n");
        let resp = roundtrip(&mut stream, raw.as_bytes()).expect("an answer");
        assert_eq!(resp.status, 200);
    }
}

fn targets(data_dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = common::ring_records(data_dir)
        .iter()
        .map(|r| String::from_utf8_lossy(&r.target).into_owned())
        .collect();
    t.sort();
    t
}

#[test]
fn restart_keeps_every_record_and_continues_sequences() {
    let tmp = tempdir("ops-restart");
    let dir = tmp.path();
    let first = Server::start(dir, &["--io", "epoll"]);
    send_beacons(&first, "a", 50);
    assert!(first.stop().success());
    let before = common::ring_records(dir);
    assert_eq!(before.len(), 50);

    let second = Server::start(dir, &["--io", "epoll"]);
    send_beacons(&second, "b", 30);
    assert!(second.stop().success());
    let after = common::ring_records(dir);
    assert_eq!(after.len(), 80);
    let mut want: Vec<String> = (0..50).map(|i| format!("/p.gif?run=a&i={i}")).collect();
    want.extend((0..30).map(|i| format!("/p.gif?run=b&i={i}")));
    want.sort();
    assert_eq!(targets(dir), want);
    // Records from the first run are byte-for-byte what they were; seqs never repeat per core.
    for old in &before {
        assert!(after.contains(old), "record {old:?} changed or vanished");
    }
    let mut keys: Vec<(u16, u64)> = after.iter().map(|r| (r.core, r.seq)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 80, "a (core, seq) was reused after the restart");
}

/// Rewrites one little-endian u32 of a ring header, as a glint of another version would have.
fn set_header_u32(ring: &Path, offset: usize, value: u32) {
    let mut bytes = std::fs::read(ring).unwrap();
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(ring, bytes).unwrap();
}

fn refused_start(dir: &Path) -> String {
    let out = Command::new(common::GLINT)
        .args([
            "serve",
            "--admin-listen",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--io",
            "epoll",
        ])
        .args(["--threads", "2", "--ring-slots", "4096", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "started on a ring of another version:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn rings_of_another_format_version_are_refused_and_left_alone() {
    let tmp = tempdir("ops-upgrade");
    let dir = tmp.path();
    let server = Server::start(dir, &["--io", "epoll"]);
    send_beacons(&server, "v1", 10);
    assert!(server.stop().success());
    let ring = dir.join(glint::ring::ring_file_name(0));
    let current = glint::record::FORMAT_VERSION;
    let cases = [
        (12, current + 1, "record format version"),
        (
            8,
            glint::ring::format::RING_VERSION + 1,
            "ring format version",
        ),
    ];
    for (offset, version, what) in cases {
        let pristine = std::fs::read(&ring).unwrap();
        let original = u32::from_le_bytes(pristine[offset..offset + 4].try_into().unwrap());
        set_header_u32(&ring, offset, version);
        let changed = std::fs::read(&ring).unwrap();
        let stderr = refused_start(dir);
        let line = stderr
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line about the {what}:\n{stderr}"));
        assert!(line.contains(&ring.display().to_string()), "{line}");
        assert!(line.contains(&format!("offset {offset}")), "{line}");
        assert!(line.contains(&format!("{what} {version}")), "{line}");
        assert!(
            line.contains(&format!("reads version {original}")),
            "{line}"
        );
        assert_eq!(
            std::fs::read(&ring).unwrap(),
            changed,
            "a refused ring was modified"
        );
        set_header_u32(&ring, offset, original);
    }
    // Back at the right versions, every record is still there.
    assert_eq!(common::ring_records(dir).len(), 10);
}
