//! The io_uring backend: a core's [`Handler`](super::handler::Handler) (glint's is the HTTP
//! layer, [`crate::http::conn`]) on one ring per core, driven directly with the `io-uring` crate.
//!
//! One `submit_and_wait` per loop turn submits everything queued and waits (at most until the
//! next 100 ms tick) for completions, which are then all handled. Listeners use multishot
//! accept. A connection waiting for a request holds no buffer: its recv selects one from the
//! core's provided buffer ring (Linux 5.19+) when bytes arrive, and that buffer goes back once
//! the batch is answered. On Linux 6.0+ that recv is one multishot recv per connection, armed
//! from accept to close: each arrival of bytes is a completion carrying its ring buffer, so a
//! kept-alive request costs one submission (its answers' `MSG_WAITALL` send) and two
//! completions. The recv stays armed while answers are written; bytes that arrive meanwhile
//! are queued and answered after them, and the recv is cancelled (the client back-pressured)
//! until they are. On 5.19 each request has its own recv, linked behind the previous answers'
//! send (a partial request keeps its buffer and receives into its tail); the environment
//! variable `GLINT_URING_SINGLE_RECV` forces that path (the tests run it too). The ring is created
//! with `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1+), else `COOP_TASKRUN` (5.19+). All unsafe
//! code is in `driver.rs`.
//!
//! Modules:
//! - `connection`: one connection's life on the ring.
//! - `driver`: the ring and its unsafe code.
//! - `event_loop`: the per-core loop: accepts, connections, ticks, shutdown.
//! - `op`: each operation packed into its `user_data`.

mod connection;
mod driver;
mod event_loop;
mod op;

use super::Worker;

/// Runs one worker on io_uring until shutdown.
pub fn run<H: super::handler::Handler>(worker: Worker<H>) -> Result<(), crate::BoxError> {
    event_loop::run(worker)
}

#[cfg(test)]
mod tests {
    use super::driver::{Driver, Input};
    use super::op::{Completion, Op};
    use crate::http::conn::Conn;
    use crate::http::context::Context;
    use crate::ingest::MemorySink;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    type TestDriver = Driver<Context<MemorySink>, ()>;

    /// A driver holding one accepted loopback connection, and what made it.
    struct One {
        core: Context<MemorySink>,
        listener: TcpListener,
        client: TcpStream,
        driver: TestDriver,
        index: u32,
        gen: u32,
    }

    fn one_connection() -> One {
        let core = Context::new(
            Default::default(),
            Default::default(),
            MemorySink::new(0, 512, 64),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nodelay(true).unwrap();
        let (server, peer) = listener.accept().unwrap();
        let mut driver: TestDriver = Driver::new(8, 4).unwrap();
        let (index, gen) = driver.insert(server, Conn::new(peer, &core), ());
        One {
            core,
            listener,
            client,
            driver,
            index,
            gen,
        }
    }

    #[test]
    fn driver_lends_a_connection_only_when_the_kernel_is_done_with_it() {
        let One {
            core,
            listener,
            mut client,
            mut driver,
            index,
            gen,
        } = one_connection();
        let idle = driver.conn_mut(index).unwrap();
        assert!(
            !idle.io.holds_read_buf() && idle.io.out.capacity() == 0,
            "an open connection owns no buffer before bytes arrive"
        );
        assert!(
            driver.has_buf_ring(),
            "the kernel (5.19+) takes a provided buffer ring"
        );
        driver.recv(index).unwrap();
        assert!(
            driver.conn_mut(index).is_none(),
            "buffer lent to the kernel"
        );
        assert!(
            !driver.remove(index),
            "freed while the kernel holds its buffer"
        );
        assert!(
            driver.recv(index).is_err(),
            "second buffer operation on a busy slot"
        );
        let request = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
        client.write_all(request).unwrap();
        let mut batch = Vec::with_capacity(8);
        let give_up = Instant::now() + Duration::from_secs(5);
        while batch.is_empty() && Instant::now() < give_up {
            driver.submit_and_wait(Duration::from_millis(100)).unwrap();
            driver.reap(&mut batch);
        }
        let c = &batch[0];
        assert_eq!(
            (c.op, c.index, c.gen, c.result),
            (Op::Recv, index, gen, request.len() as i32)
        );
        let conn = driver.conn_mut(index).expect("released by its completion");
        conn.io.filled(request.len());
        assert_eq!(
            conn.io.received(),
            request,
            "the ring buffer the kernel selected is the connection's read buffer now"
        );
        assert!(driver.remove(index));
        assert_eq!(driver.len(), 0);
        let _client2 = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server2, peer2) = listener.accept().unwrap();
        let reused = driver.insert(server2, Conn::new(peer2, &core), ());
        assert_eq!(
            reused,
            (index, gen + 1),
            "a reused slot gets a new generation"
        );
    }

    /// Reaps until `n` completions arrived (or 5 s passed).
    fn reap_n<D: FnMut(&mut Vec<Completion>)>(n: usize, mut turn: D) -> Vec<Completion> {
        let mut batch = Vec::with_capacity(16);
        let give_up = Instant::now() + Duration::from_secs(5);
        while batch.len() < n && Instant::now() < give_up {
            turn(&mut batch);
        }
        batch
    }

    #[test]
    fn a_multishot_recv_queues_each_arrival_and_reports_the_end_after_the_bytes() {
        // The listener and the context are not needed once the connection is in the driver.
        let One {
            mut client,
            mut driver,
            index,
            gen,
            ..
        } = one_connection();
        assert!(driver.multishot(), "Linux 6.0+ with a buffer ring");
        driver.arm(index).unwrap();
        assert!(
            driver.conn_mut(index).is_some(),
            "an armed multishot recv holds no memory of the connection"
        );
        assert_eq!(driver.reading_op(index), Op::RecvMulti);
        let request = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
        let (head, tail) = request.split_at(10);
        for part in [head, tail] {
            client.write_all(part).unwrap();
            let got = reap_n(1, |b| {
                driver.submit_and_wait(Duration::from_millis(100)).unwrap();
                driver.reap(b);
            });
            let c = &got[0];
            assert_eq!(
                (c.op, c.index, c.gen, c.result, c.more),
                (Op::RecvMulti, index, gen, part.len() as i32, true),
                "one completion per arrival, and the recv stays armed"
            );
        }
        assert_eq!(driver.take_input(index), Input::Bytes);
        assert_eq!(
            driver.conn_mut(index).unwrap().io.received(),
            request,
            "the first arrival's buffer is the read buffer, the second is copied behind it"
        );
        assert_eq!(driver.take_input(index), Input::Empty);
        client.write_all(b"GET /q").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let got = reap_n(2, |b| {
            driver.submit_and_wait(Duration::from_millis(100)).unwrap();
            driver.reap(b);
        });
        let results: Vec<(i32, bool)> = got.iter().map(|c| (c.result, c.more)).collect();
        assert_eq!(results, [(6, true), (0, false)], "bytes, then the end");
        let conn = driver.conn_mut(index).unwrap();
        let n = conn.io.received().len();
        conn.io.consume(n);
        assert_eq!(
            driver.take_input(index),
            Input::Bytes,
            "bytes before the end"
        );
        assert_eq!(driver.conn_mut(index).unwrap().io.received(), b"GET /q");
        assert_eq!(driver.take_input(index), Input::End(0));
        assert!(!driver.any_busy(), "the recv ended with the input");
        assert!(driver.remove(index));
    }

    #[test]
    fn removing_a_connection_cancels_its_multishot_recv() {
        // The listener and the context are not needed once the connection is in the driver.
        let One {
            mut client,
            mut driver,
            index,
            gen,
            ..
        } = one_connection();
        driver.arm(index).unwrap();
        driver.submit_and_wait(Duration::ZERO).unwrap();
        assert!(driver.any_busy(), "armed");
        assert!(driver.remove(index), "an armed recv does not pin the slot");
        assert!(
            driver.any_busy(),
            "until its recv ends, a freed slot's recv may still select ring buffers"
        );
        let got = reap_n(2, |b| {
            driver.submit_and_wait(Duration::from_millis(100)).unwrap();
            driver.reap(b);
        });
        assert!(!driver.any_busy(), "the recv ended");
        assert!(
            got.iter().any(|c| (c.op, c.index, c.gen, c.result, c.more)
                == (Op::RecvMulti, index, gen, -libc::ECANCELED, false)),
            "the recv was cancelled: {got:?}"
        );
        // The socket is closed once the recv let go of it: the client reads the end.
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(std::io::Read::read(&mut client, &mut buf).unwrap(), 0);
    }
}
