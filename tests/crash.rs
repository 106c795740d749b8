//! Crash safety: a server killed with SIGKILL mid-load, restarted on the same data dir, loses
//! no acknowledged record and duplicates none.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Clients send requests with unique ids until `stop`; return the ids answered 200.
fn drive(addr: std::net::SocketAddr, next_id: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut acked = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut pending = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            // Pipeline a few requests per write so kills land mid-batch too.
            let ids: Vec<u64> = (0..4)
                .map(|_| next_id.fetch_add(1, Ordering::Relaxed))
                .collect();
            let mut raw = Vec::new();
            for id in &ids {
                raw.extend_from_slice(
                    format!(
                        "GET /p.gif?rid={id} HTTP/1.1\r\nHost: a\r\nUser-Agent: crash-test\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
            if s.write_all(&raw).is_err() {
                break;
            }
            let mut ok = true;
            for id in ids {
                match read_response(&mut s, &mut pending, false) {
                    Some(r) if r.status == 200 => acked.push(id),
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
        }
    }
    acked
}

fn run_cycles(io: &str, cycles: usize) {
    let tmp = tempdir("crash");
    let dir = tmp.path();
    let next_id = Arc::new(AtomicU64::new(0));
    let acked_all = Arc::new(Mutex::new(Vec::new()));
    for cycle in 0..cycles {
        let server = Server::start(dir, &["--io", io, "--ring-slots", "65536"]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let (addr, next_id, stop) = (server.addr, next_id.clone(), stop.clone());
                std::thread::spawn(move || drive(addr, next_id, stop))
            })
            .collect();
        // Kill at a varying moment into the load.
        std::thread::sleep(Duration::from_millis(80 + 37 * (cycle as u64 % 5)));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            acked_all.lock().unwrap().extend(c.join().unwrap());
        }
    }
    // One clean run at the end: recovery, then a graceful stop.
    let server = Server::start(dir, &["--io", io, "--ring-slots", "65536"]);
    let started = Instant::now();
    assert!(server.stop().success());
    assert!(started.elapsed() < Duration::from_secs(15));
    let acked = acked_all.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "load too small to mean anything: {}",
        acked.len()
    );
    let mut logged: HashMap<u64, usize> = HashMap::new();
    let recs = ring_records(dir);
    for r in &recs {
        let target = String::from_utf8(r.target.clone()).unwrap();
        let id: u64 = target.strip_prefix("/p.gif?rid=").unwrap().parse().unwrap();
        *logged.entry(id).or_default() += 1;
    }
    let lost: Vec<_> = acked.iter().filter(|id| !logged.contains_key(id)).collect();
    let duplicated: Vec<_> = logged.iter().filter(|(_, n)| **n > 1).collect();
    let sent = next_id.load(Ordering::Relaxed);
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert!(
        logged.keys().all(|id| *id < sent),
        "a record that was never sent"
    );
    println!(
        "{cycles} kill cycles: sent {sent}, acknowledged {}, logged {}, lost 0, duplicated 0",
        acked.len(),
        recs.len()
    );
}

#[test]
fn sigkill_loses_no_acknowledged_record_epoll() {
    run_cycles("epoll", 6);
}

#[test]
fn sigkill_loses_no_acknowledged_record_uring() {
    run_cycles("uring", 6);
}

/// The short variant of `loadtest/crash.sh`: real loadgen with acknowledged ids, server and
/// compactor SIGKILLed, then compact, decode and `--verify`; the script fails on any loss.
#[test]
fn crash_script_short_run_loses_nothing() {
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/loadtest/crash.sh"))
        .arg("4")
        .env("GLINT", GLINT)
        .env("LOAD_SECS", "0.5")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("lost (acknowledged, not logged): 0"),
        "{text}"
    );
    assert!(
        text.contains("duplicated: 0") && text.contains("result: PASS"),
        "{text}"
    );
    let acked: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("acknowledged (2xx): "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(acked > 100, "too little load to mean anything: {text}");
}
