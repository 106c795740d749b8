//! One connection's life on the ring: read, answer, write, linger, close. Mirrors
//! `serve_conn` and `linger_close` of the epoll backend.

use super::event_loop::EventLoop;
use crate::http::conn::Next;
use crate::server::backend::{LINGER_BYTES, LINGER_TIME};
use crate::server::handler::Handler;
use std::time::Instant;

/// Where a connection is; its one buffer operation (if any) is in flight in the driver.
#[derive(Debug, Clone, Copy)]
pub(super) enum Life {
    /// A recv is in flight, behind a send of `out[from..end]` when `end > 0`.
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

#[derive(Debug, Clone, Copy)]
pub(super) enum AfterWrite {
    /// `out` filled before the batch was answered: process again without reading.
    Process,
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
            Next::Read | Next::Write => {
                let deadline = self.core.deadline(conn, crate::clock::now_secs());
                self.set_life(
                    index,
                    Life::Reading {
                        idle,
                        from: 0,
                        end: out,
                        deadline,
                        expired: false,
                        cancel_sent: false,
                    },
                );
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
