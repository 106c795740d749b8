//! Restarts of a real `glint serve`: what a clean stop promises, what a restart costs, and that
//! a served address cannot be taken by a second server.

#[macro_use]
mod common;
use common::*;
use glint::ring::{ring_file_name, RingReader};
use std::process::Command;

for_each_backend!(
    after_a_clean_stop_a_flipped_byte_in_the_newest_record_is_corruption_kept,
    a_second_serve_on_a_served_address_is_refused_whatever_its_data_dir,
    rings_are_recovered_before_any_listener_exists,
);

fn beacons(server: &Server, n: usize, tag: &str) {
    let mut s = server.connect();
    for i in 0..n {
        let req = format!("GET /p?{tag}={i} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(roundtrip(&mut s, req.as_bytes()).unwrap().status, 200);
    }
}

fn verify(dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(GLINT)
        .args(["decode", "--verify"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn after_a_clean_stop_a_flipped_byte_in_the_newest_record_is_corruption_kept(io: &str) {
    let tmp = tempdir("cleanstop");
    let dir = tmp.path();
    let ring = dir.join(ring_file_name(0));
    let one_core = ["--io", io, "--threads", "1", "--admin-listen", "off"];
    let server = Server::start(dir, &one_core);
    beacons(&server, 5, "before");
    assert!(server.stop().success());
    let reader = RingReader::open(&ring).unwrap();
    assert_eq!(
        reader.clean_stop_head(),
        Some(5),
        "SIGTERM records a clean stop"
    );
    // Flip one byte of the newest acknowledged record's target while stopped.
    let offset = reader.slot_offset(4) as usize + glint::record::HEADER_LEN + 3;
    drop(reader);
    let mut bytes = std::fs::read(&ring).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(&ring, &bytes).unwrap();
    let damaged = bytes[offset - 200..offset + 100].to_vec();

    let (code, stdout, stderr) = verify(dir);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("record seq 4 fails its CRC or format check after a clean stop"),
        "{stderr}"
    );
    assert!(stdout.contains("0 torn tail record(s)"), "{stdout}");

    // The next serve keeps the bytes, says so, and goes on after them.
    let server = Server::start(dir, &one_core);
    let log = server.log_text();
    assert!(
        log.contains(
            "record seq 4 fails its check after a clean stop: corruption, not a torn write"
        ),
        "{log}"
    );
    beacons(&server, 2, "after");
    assert!(server.stop().success());
    let bytes = std::fs::read(&ring).unwrap();
    assert_eq!(
        &bytes[offset - 200..offset + 100],
        &damaged[..],
        "bytes kept"
    );
    let seqs: Vec<u64> = ring_records(dir).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3], "the valid run stops at the damage");

    // The compactor keeps a copy of the damaged slot and compacts everything else.
    let out = Command::new(GLINT)
        .args(["compact", "--once", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record seq 4 is corrupt and the writer has passed it"),
        "{err}"
    );
    let kept = std::fs::read(dir.join("damaged").join("ring-000.glr.seq-4")).unwrap();
    let slot = RingReader::open(&ring).unwrap().slot_offset(4) as usize;
    assert_eq!(kept, bytes[slot..slot + kept.len()]);
    let targets: Vec<String> = decode_jsonl(&dir.join("segments"), &[])
        .iter()
        .map(|o| {
            format!(
                "{}?{}",
                o["path"].as_str().unwrap(),
                o["query"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            "/p?before=0",
            "/p?before=1",
            "/p?before=2",
            "/p?before=3",
            "/p?after=0",
            "/p?after=1"
        ]
    );
}

fn a_second_serve_on_a_served_address_is_refused_whatever_its_data_dir(io: &str) {
    let first_tmp = tempdir("addr-a");
    let first = Server::start(first_tmp.path(), &["--io", io, "--admin-listen", "off"]);
    let other_tmp = tempdir("addr-b");
    let other = other_tmp.path();
    let out = Command::new(GLINT)
        .args([
            "serve",
            "--io",
            io,
            "--admin-listen",
            "off",
            "--ring-slots",
            "4096",
        ])
        .args(["--listen", &first.addr.to_string(), "--data-dir"])
        .arg(other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{} is already served by another glint serve",
            first.addr
        )),
        "{err}"
    );
    assert!(
        std::fs::read_dir(other).unwrap().next().is_none(),
        "refused before the data dir was touched"
    );
    // Once the first one is gone, its address is free again.
    let port = first.addr;
    drop(first);
    let second = Server::start(other, &["--io", io, "--admin-listen", "off"]);
    assert_ne!(second.addr, port);
}

fn rings_are_recovered_before_any_listener_exists(io: &str) {
    let tmp = tempdir("order");
    let dir = tmp.path();
    let server = Server::start(dir, &["--io", io, "--admin-listen", "off"]);
    beacons(&server, 3, "x");
    server.kill();
    let server = Server::start(dir, &["--io", io, "--admin-listen", "off"]);
    let log = server.log.lock().unwrap().clone();
    let listening = log.iter().position(|l| l.contains("listening on")).unwrap();
    let recovered: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("recovered after a crash"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(recovered.len(), 2, "{log:?}");
    assert!(recovered.iter().all(|&i| i < listening), "{log:?}");
}
