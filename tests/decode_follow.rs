//! `glint decode --follow` prints records appended while it runs, including from a ring
//! created after it started.

mod common;

use common::decode::*;
use common::tempdir;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills the child when the test ends, pass or fail.
struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn next_line(rx: &mpsc::Receiver<String>) -> serde_json::Value {
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a line within 10 s");
    serde_json::from_str(&line).unwrap()
}

#[test]
fn follow_prints_new_records_as_they_are_appended() {
    let tmp = tempdir("follow");
    let dir = tmp.path();
    let first = write_ring(dir, 0, 256, BASE_TS, 1000, 5);
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_glint"))
            .args(["decode", "--follow", dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    for s in &first {
        check_json(&next_line(&rx), s);
    }
    // Reopening the ring as its writer resumes at seq 5.
    let mut w = open_ring(dir, 0, 256);
    for round in 0..3u64 {
        let recs = (0..4)
            .map(|i| Sent::varied(0, BASE_TS + (10 + round * 4 + i) * 1000, 10 + round * 4 + i))
            .collect();
        for s in append_all(&mut w, recs) {
            check_json(&next_line(&rx), &s);
        }
    }
    // A second core's ring appears while following.
    let late = write_ring(dir, 1, 64, BASE_TS + 1_000_000, 1000, 3);
    for s in &late {
        check_json(&next_line(&rx), s);
    }
    // The compactor seals a segment holding everything so far: nothing is printed again,
    // and records after the roll still arrive.
    let out = glint(&["compact", "--once", "--data-dir", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!glint::compact::segment::list_segments(dir)
        .unwrap()
        .is_empty());
    let after = append_all(&mut w, vec![Sent::varied(0, BASE_TS + 90_000, 90)]);
    check_json(&next_line(&rx), &after[0]);
    assert!(
        rx.recv_timeout(Duration::from_millis(400)).is_err(),
        "nothing printed twice"
    );
}
