//! One connection's life on the ring: read, answer, write, linger, close. Mirrors
//! `serve_conn` and `linger_close` of the epoll backend.

use super::driver::Input;
use super::event_loop::EventLoop;
use crate::http::conn::Next;
use crate::server::backend::{LINGER_BYTES, LINGER_TIME};
use crate::server::handler::Handler;
use std::time::Instant;

/// Where a connection is; its one buffer operation (if any) is in flight in the driver, and
/// its multishot recv (if the driver has them) is armed beside it while it reads or writes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Life {
    /// Waiting for bytes: a recv is in flight, behind a send of `out[from..end]` when
    /// `end > 0` (single-shot recvs), or the multishot recv is armed.
    Reading {
        /// No request is partly read: closing ends this connection at once.
        idle: bool,
        from: usize,
        end: usize,
        /// The coarse second of the idle or head timeout ([`Handler::deadline`]).
        deadline: u64,
        /// The deadline passed: a cancelled recv means "time out".
        expired: bool,
        cancel_sent: bool,
    },
    /// A lone send of `out[from..]` is in flight.
    Writing { from: usize, then: AfterWrite },
    /// Half-closed; discarding input until EOF, `LINGER_BYTES` or the deadline.
    Lingering { deadline: Instant, drained: usize },
}

impl Life {
    /// Waiting for bytes, with a fresh deadline; `end > 0`: behind a linked send of `out[..end]`.
    pub(super) fn reading(idle: bool, end: usize, deadline: u64) -> Life {
        Life::Reading {
            idle,
            from: 0,
            end,
            deadline,
            expired: false,
            cancel_sent: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum AfterWrite {
    /// `out` filled before the batch was answered: process again without reading.
    Process,
    /// The batch is answered: wait for the next request (multishot recv).
    Read,
    Linger,
    Close,
}

/// The loop's state of one connection, stored in the driver's slot.
pub(super) struct ConnState {
    pub(super) life: Life,
    /// A linked send failed (or was cut short) with this result; its recv was cancelled.
    pub(super) send_failed: Option<i32>,
}

impl<H: Handler> EventLoop<H> {
    pub(super) fn on_recv(&mut self, index: u32, result: i32) {
        let Some(state) = self.driver.state_mut(index) else {
            return;
        };
        let Life::Reading {
            from, end, expired, ..
        } = state.life
        else {
            return self.close(index);
        };
        if let Some(sent) = state.send_failed.take() {
            let resumed = from + sent.max(0) as usize;
            if sent > 0 && resumed < end {
                // Cut short (a signal, say): send the rest, then read as planned.
                if let Life::Reading { from, .. } = &mut state.life {
                    *from = resumed;
                }
                if self.driver.send_then_recv(index, resumed).is_ok() {
                    return;
                }
            }
            return self.close(index);
        }
        if result == -libc::ECANCELED && expired {
            return self.time_out(index);
        }
        if result == -libc::ENOBUFS {
            // More recvs completed in one turn than the ring has buffers; spares are back now.
            if self.driver.recv(index).is_err() {
                self.close(index);
            }
            return;
        }
        if result <= 0 {
            return self.close(index);
        }
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        let io = H::buffers(conn);
        if end > 0 {
            io.out.clear();
        }
        io.filled(result as usize);
        self.run_conn(index);
    }

    /// A completion of the connection's multishot recv: bytes (queued in the driver), its end,
    /// or why it stopped.
    pub(super) fn on_multi(&mut self, index: u32, result: i32) {
        let Some(state) = self.driver.state_mut(index) else {
            return;
        };
        match state.life {
            Life::Reading {
                expired,
                cancel_sent,
                ..
            } => {
                if result == -libc::ECANCELED && expired {
                    return self.time_out(index);
                }
                if result == -libc::ECANCELED && cancel_sent {
                    // Closing, and the connection was idle.
                    return self.close(index);
                }
                // Bytes, the end of input, or a stop (no ring buffer left, a cancel that
                // paused reading, a kernel without multishot recv): take them or re-arm.
                self.await_input(index)
            }
            // Answers are being written: stop reading a client that sends meanwhile, so it
            // is back-pressured rather than buffered without bound; what came stays queued.
            Life::Writing { .. } => {
                if result > 0 && self.driver.disarm(index).is_err() {
                    self.close(index);
                }
            }
            Life::Lingering { .. } => {
                let dropped = self.driver.discard_input(index);
                if let Some(ConnState {
                    life: Life::Lingering { drained, .. },
                    ..
                }) = self.driver.state_mut(index)
                {
                    *drained += dropped;
                }
            }
        }
    }

    /// The connection waits for a request: with multishot recvs, what already arrived is
    /// answered first, else the recv is (re)armed; without, one recv is started.
    pub(super) fn await_input(&mut self, index: u32) {
        if !self.driver.multishot() {
            if self.driver.recv(index).is_err() {
                self.close(index);
            }
            return;
        }
        match self.driver.take_input(index) {
            Input::Bytes => self.run_conn(index),
            // The peer closed (or the socket failed) after everything it sent was answered;
            // or its request does not fit the read buffer, which answering it would have
            // refused: as a single-shot recv into a full buffer, the connection ends.
            Input::End(_) | Input::Full => self.close(index),
            Input::Empty => {
                if self.driver.arm(index).is_err() {
                    self.close(index);
                }
            }
        }
    }

    /// The batch is answered and written: the connection reads its next request.
    fn read_next(&mut self, index: u32) {
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        let idle = !H::mid_request(conn);
        let deadline = self.core.deadline(conn, crate::clock::now_secs());
        self.set_life(index, Life::reading(idle, 0, deadline));
        self.driver.release(index);
        self.await_input(index);
    }

    pub(super) fn on_sent(&mut self, index: u32, result: i32) {
        let Some(&mut ConnState {
            life: Life::Writing { from, then },
            ..
        }) = self.driver.state_mut(index)
        else {
            return self.close(index);
        };
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        let total = H::buffers(conn).out.len();
        if result <= 0 {
            return self.close(index);
        }
        let sent = from + result as usize;
        if sent < total {
            self.set_life(index, Life::Writing { from: sent, then });
            if self.driver.send(index, sent).is_err() {
                self.close(index);
            }
            return;
        }
        H::buffers(conn).out.clear();
        match then {
            AfterWrite::Process => self.run_conn(index),
            AfterWrite::Read => self.read_next(index),
            AfterWrite::Linger => self.start_linger(index, Instant::now()),
            AfterWrite::Close => self.close(index),
        }
    }

    pub(super) fn on_linger(&mut self, index: u32, result: i32, now: Instant) {
        let Some(ConnState {
            life: Life::Lingering { deadline, drained },
            ..
        }) = self.driver.state_mut(index)
        else {
            return self.close(index);
        };
        *drained += result.max(0) as usize;
        if result <= 0 || *drained >= LINGER_BYTES || now >= *deadline {
            return self.close(index);
        }
        if self.driver.linger(index, false).is_err() {
            self.close(index);
        }
    }

    /// Past its deadline: 408 if a request was partly read, then a lingering close.
    fn time_out(&mut self, index: u32) {
        self.driver.equip(index);
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        H::buffers(conn).out.clear();
        self.core.timed_out(conn);
        if H::buffers(conn).out.is_empty() {
            self.start_linger(index, Instant::now());
        } else if self.write(index, AfterWrite::Linger).is_err() {
            self.close(index);
        }
    }

    /// Answers what the connection has buffered and starts its next operation.
    pub(super) fn run_conn(&mut self, index: u32) {
        let closing = self.deadline.is_some();
        let multishot = self.driver.multishot();
        self.driver.equip(index);
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        let next = self.core.process(conn);
        let (out, idle) = (H::buffers(conn).out.len(), !H::mid_request(conn));
        let started = match next {
            Next::Read | Next::Write if closing && idle && out == 0 => return self.close(index),
            Next::Read if closing && idle => self.write(index, AfterWrite::Close),
            Next::Write if out > 0 => self.write(index, AfterWrite::Process),
            Next::Read | Next::Write if multishot => {
                if out > 0 {
                    // The read buffer goes back now unless it holds a partial request; `out`
                    // after the send.
                    self.driver.release(index);
                    self.write(index, AfterWrite::Read)
                } else {
                    return self.read_next(index);
                }
            }
            Next::Read | Next::Write => {
                let deadline = self.core.deadline(conn, crate::clock::now_secs());
                self.set_life(index, Life::reading(idle, out, deadline));
                // Waiting for the next request: the read buffer (unless it holds a partial
                // one) and an empty `out` go back to the pool.
                self.driver.release(index);
                if out > 0 {
                    self.driver.send_then_recv(index, 0)
                } else {
                    self.driver.recv(index)
                }
            }
            Next::Close if out > 0 => self.write(index, AfterWrite::Linger),
            Next::Close => return self.start_linger(index, Instant::now()),
        };
        if started.is_err() {
            self.close(index);
        }
    }

    fn write(&mut self, index: u32, then: AfterWrite) -> std::io::Result<()> {
        self.set_life(index, Life::Writing { from: 0, then });
        self.driver.send(index, 0)
    }

    /// Half-closes, then drains what the client still sends for a moment, so the kernel does
    /// not answer unread bytes with a RST that could destroy the response in flight.
    fn start_linger(&mut self, index: u32, now: Instant) {
        // The linger recv discards what still comes; the multishot recv must not take it.
        if self.driver.disarm(index).is_err() {
            return self.close(index);
        }
        let deadline = now + LINGER_TIME;
        self.set_life(
            index,
            Life::Lingering {
                deadline,
                drained: 0,
            },
        );
        match (self.driver.gen(index), self.driver.linger(index, true)) {
            (Some(gen), Ok(())) => self.lingering.push_back((index, gen, deadline)),
            _ => self.close(index),
        }
    }

    fn set_life(&mut self, index: u32, life: Life) {
        if let Some(state) = self.driver.state_mut(index) {
            state.life = life;
            state.send_failed = None;
        }
    }

    pub(super) fn close(&mut self, index: u32) {
        if self.driver.remove(index) {
            self.stats.conns.closed();
        }
    }
}
