//! Both backends drive any `server::handler::Handler`, not only glint's HTTP layer: a handler
//! that answers every line with its length, on a real socket, on io_uring and on epoll.

use glint::http::buffers::ConnBuffers;
use glint::http::conn::Next;
use glint::server::handler::Handler;
use glint::server::stats::CoreStats;
use glint::server::{Phase, Worker};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Answers each complete line with its length in decimal and a newline; `quit` closes.
struct LineLengths;

impl Handler for LineLengths {
    type Conn = ConnBuffers;

    fn open(&mut self, _peer: SocketAddr) -> Option<ConnBuffers> {
        Some(ConnBuffers::new(1024, 4096))
    }

    fn buffers(conn: &mut ConnBuffers) -> &mut ConnBuffers {
        conn
    }

    fn process(&mut self, io: &mut ConnBuffers) -> Next {
        while let Some(end) = io.received().iter().position(|&b| b == b'\n') {
            if &io.received()[..end] == b"quit" {
                return Next::Close;
            }
            let answer = format!("{end}\n");
            io.out.extend_from_slice(answer.as_bytes());
            io.consume(end + 1);
        }
        Next::Read
    }

    fn mid_request(conn: &ConnBuffers) -> bool {
        conn.buffered() > 0
    }

    fn deadline(&self, _conn: &mut ConnBuffers, now_secs: u64) -> u64 {
        now_secs + 60
    }

    fn timed_out(&mut self, _conn: &mut ConnBuffers) -> Next {
        Next::Close
    }

    fn tick(&mut self, _unix_secs: u64) {}

    fn set_draining(&mut self, _draining: bool) {}
}

fn run(io: &'static str) {
    let listener =
        glint::server::listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let addr = listener.local_addr().unwrap();
    let (phase, rx) = tokio::sync::watch::channel(Phase::Running);
    let worker = Worker {
        id: 1,
        handler: LineLengths,
        stats: std::sync::Arc::new(CoreStats::default()),
        listeners: vec![listener],
        phase: rx,
        drain_timeout: Duration::from_secs(1),
        max_conns: 8,
    };
    let server = std::thread::spawn(move || match io {
        "uring" => glint::server::uring::run(worker).map_err(|e| e.to_string()),
        _ => glint::server::epoll::run(worker).map_err(|e| e.to_string()),
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Pipelined and split mid-line: answers come in order, one per complete line.
    s.write_all(b"a\nbbb\ncc").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"cc\nquit\n").unwrap();
    let answers: Vec<String> = BufReader::new(&s).lines().map(Result::unwrap).collect();
    assert_eq!(answers, ["1", "3", "4"], "{io}");
    phase.send(Phase::Closing).unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_foreign_handler_runs_on_io_uring() {
    run("uring");
}

#[test]
fn a_foreign_handler_runs_on_epoll() {
    run("epoll");
}
