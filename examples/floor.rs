//! The floor: a bench-only server that shows what this machine allows a pixel server on glint's
//! own I/O backends (issue 15). Not a product feature.
//!
//! It is a [`Handler`] on glint's very backends (`server::uring::run` by default, the same
//! ring setup, multishot accept and recv, one `submit_and_wait` per loop turn; or
//! `server::epoll::run`), on listeners bound by glint's own `bind_reuseport`, one pinned worker
//! per CPU. What it leaves out is glint's work: it parses no header and records nothing; it
//! only finds where each request head ends (`\r\n\r\n`) and answers it with glint's canned
//! pixel, the same bytes `glint serve` sends. `loadtest/compare.sh` runs it as the `floor`
//! column; glint's CPU per request divided by the floor's is glint's own overhead.
//!
//! ```sh
//! cargo build --release --example floor
//! taskset -c 0 target/release/examples/floor --listen 127.0.0.1:18180 --threads 1
//! ```
//!
//! Requests with a body are not supported (a beacon GET has none); a head longer than the read
//! buffer closes the connection.

use clap::{Parser, ValueEnum};
use glint::clock::HttpDate;
use glint::http::buffers::ConnBuffers;
use glint::http::conn::Next;
use glint::http::response::{self, ConnHeader};
use glint::server::handler::Handler;
use glint::server::listener::bind_all;
use glint::server::stats::CoreStats;
use glint::server::{Phase, Worker};
use memchr::memmem::Finder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Bench-only floor server: answers every complete request head with glint's canned pixel on
/// glint's own I/O backend, parsing and recording nothing.
#[derive(Parser)]
#[command(name = "floor")]
struct Args {
    /// Address to listen on (one SO_REUSEPORT listener per worker).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Workers, each pinned to one of the CPUs this process may run on [default: one per such
    /// CPU].
    #[arg(long)]
    threads: Option<usize>,
    /// I/O backend: glint's io_uring driver or its epoll (tokio) one.
    #[arg(long, value_enum, default_value_t = Io::Uring)]
    io: Io,
    /// Listen backlog (as `glint serve --backlog`).
    #[arg(long, default_value_t = 4096)]
    backlog: i32,
    /// Open connections per worker; more are closed at once (as `glint serve --max-conns`).
    #[arg(long, default_value_t = 65_536)]
    max_conns: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Io {
    Uring,
    Epoll,
}

/// Read buffer of a connection while it has bytes to answer (lent by the backend, as glint's):
/// glint's smallest (`Conn` uses max(--max-head-size, 16 KiB)).
const READ_BUF: usize = 16 * 1024;
/// Answers per connection before they are written out (glint's `out` holds 32 KiB and more).
const OUT_CAPACITY: usize = 32 * 1024;
/// Idle connections are closed after this long (as `glint serve --idle-timeout`'s default).
const IDLE_SECS: u64 = 60;

/// One core's floor: the cached Date and the head-end finder.
struct Floor {
    date: HttpDate,
    finder: Finder<'static>,
}

impl Floor {
    fn new() -> Floor {
        let mut date = HttpDate::default();
        date.refresh(glint::clock::now_secs());
        Floor {
            date,
            finder: Finder::new(b"\r\n\r\n"),
        }
    }
}

impl Handler for Floor {
    type Conn = ConnBuffers;

    fn open(&mut self, _peer: SocketAddr) -> Option<ConnBuffers> {
        Some(ConnBuffers::new(READ_BUF, OUT_CAPACITY))
    }

    fn buffers(conn: &mut ConnBuffers) -> &mut ConnBuffers {
        conn
    }

    /// Answers every complete head received, as long as `out` has room for another answer.
    fn process(&mut self, io: &mut ConnBuffers) -> Next {
        io.reserve_out();
        while let Some(at) = self.finder.find(io.received()) {
            if io.out.len() + response::max_len(0) > io.out.capacity() {
                return Next::Write;
            }
            io.consume(at + 4);
            response::write(
                &mut io.out,
                &response::PIXEL,
                &self.date,
                ConnHeader::None,
                b"",
                false,
            );
        }
        if io.buffered() == READ_BUF {
            return Next::Close;
        }
        Next::Read
    }

    fn mid_request(conn: &ConnBuffers) -> bool {
        conn.buffered() > 0
    }

    fn deadline(&self, _conn: &mut ConnBuffers, now_secs: u64) -> u64 {
        now_secs + IDLE_SECS
    }

    fn timed_out(&mut self, _conn: &mut ConnBuffers) -> Next {
        Next::Close
    }

    fn tick(&mut self, unix_secs: u64) {
        self.date.refresh(unix_secs);
    }

    fn set_draining(&mut self, _draining: bool) {}
}

fn main() -> Result<(), glint::BoxError> {
    let args = Args::parse();
    let cpus = glint::sys::allowed_cpus();
    let threads = args.threads.unwrap_or(cpus.len()).max(1);
    let listeners = bind_all(&[args.listen], threads, args.backlog)?;
    let addr = listeners[0][0].local_addr()?;
    // Never sent: the floor runs until it is killed. Dropping it would close every worker.
    let (_phase, phase_rx) = tokio::sync::watch::channel(Phase::Running);
    eprintln!("floor: listening on {addr} with {threads} workers");
    let handles = listeners
        .into_iter()
        .enumerate()
        .map(|(id, listeners)| {
            let cpu = cpus.get(id % cpus.len().max(1)).copied();
            let worker = Worker {
                id: id + 1, // not 0: glint's backends log their set-up on core 0
                handler: Floor::new(),
                stats: Arc::new(CoreStats::default()),
                listeners,
                phase: phase_rx.clone(),
                drain_timeout: Duration::from_secs(1),
                max_conns: args.max_conns,
            };
            let io = args.io;
            std::thread::spawn(move || {
                if let Some(cpu) = cpu {
                    let _ = glint::sys::pin_to_cpu(cpu);
                }
                let result = match io {
                    Io::Uring => glint::server::uring::run(worker),
                    Io::Epoll => glint::server::epoll::run(worker),
                };
                if let Err(e) = result {
                    eprintln!("floor: worker {id}: {e}");
                    std::process::exit(1);
                }
            })
        })
        .collect::<Vec<_>>();
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn pixel() -> Vec<u8> {
        let mut out = Vec::new();
        let date = HttpDate::default();
        response::write(
            &mut out,
            &response::PIXEL,
            &date,
            ConnHeader::None,
            b"",
            false,
        );
        out
    }

    #[test]
    fn answers_each_complete_head_and_keeps_a_partial_one() {
        let mut floor = Floor::new();
        floor.date = HttpDate::default();
        let mut io = floor.open("127.0.0.1:1".parse().unwrap()).unwrap();
        let input =
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nHo";
        io.read_buf()[..input.len()].copy_from_slice(input);
        io.filled(input.len());
        assert!(matches!(floor.process(&mut io), Next::Read));
        assert_eq!(io.out, [pixel(), pixel()].concat());
        assert_eq!(io.received(), b"GET /c HTTP/1.1\r\nHo");
    }

    #[test]
    fn a_head_longer_than_the_buffer_closes() {
        let mut floor = Floor::new();
        let mut io = floor.open("127.0.0.1:1".parse().unwrap()).unwrap();
        let room = io.read_buf().len();
        io.read_buf().fill(b'a');
        io.filled(room);
        assert!(matches!(floor.process(&mut io), Next::Close));
    }

    #[test]
    fn stops_answering_when_out_is_full_and_resumes_after_the_write() {
        let mut floor = Floor::new();
        let mut io = floor.open("127.0.0.1:1".parse().unwrap()).unwrap();
        let request = b"GET / HTTP/1.1\r\n\r\n";
        let n = READ_BUF / request.len();
        for _ in 0..n {
            io.read_buf()[..request.len()].copy_from_slice(request);
            io.filled(request.len());
        }
        let mut answered = 0;
        while io.buffered() >= request.len() {
            let next = floor.process(&mut io);
            assert!(
                io.out.len() <= OUT_CAPACITY,
                "out never grows past its capacity"
            );
            answered += io.out.len() / pixel().len();
            io.out.clear();
            if matches!(next, Next::Read) {
                break;
            }
        }
        assert_eq!(answered, n);
    }

    /// On a real socket on each of glint's backends: pipelined requests split across writes
    /// get one pixel each, in order.
    #[test]
    fn serves_pipelined_requests_on_both_backends() {
        for io in [Io::Uring, Io::Epoll] {
            let listener =
                glint::server::listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 64)
                    .unwrap();
            let addr = listener.local_addr().unwrap();
            let (phase, rx) = tokio::sync::watch::channel(Phase::Running);
            let worker = Worker {
                id: 1,
                handler: Floor::new(),
                stats: Arc::new(CoreStats::default()),
                listeners: vec![listener],
                phase: rx,
                drain_timeout: Duration::from_secs(1),
                max_conns: 8,
            };
            let server = std::thread::spawn(move || match io {
                Io::Uring => glint::server::uring::run(worker).map_err(|e| e.to_string()),
                Io::Epoll => glint::server::epoll::run(worker).map_err(|e| e.to_string()),
            });
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            client
                .write_all(b"GET /p.gif HTTP/1.1\r\nHost: a\r\n\r\nGET /p.gif HTTP/1.1\r\nHo")
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            client.write_all(b"st: a\r\n\r\n").unwrap();
            let want = 2 * pixel().len();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while got.len() < want {
                let n = client.read(&mut chunk).unwrap();
                assert!(n > 0, "closed after {} bytes", got.len());
                got.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(got.len(), want);
            assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(got.ends_with(response::GIF));
            drop(client);
            phase.send(Phase::Closing).unwrap();
            server.join().unwrap().unwrap();
        }
    }
}
