//! The per-core loop of the uring backend: accepts, per-connection states, ticks, shutdown.
//! Behaves like the epoll backend (`server::epoll`), step for step.

#![forbid(unsafe_code)]

use super::driver::{user_data, Completion, Driver, Op, REAP_BATCH};
use crate::http::conn::{Conn, Next};
use crate::server::core::CoreState;
use crate::server::listener::is_resource_exhaustion;
use crate::server::{Phase, Worker};
use std::collections::VecDeque;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the loop wakes without I/O: Date refresh, phase changes, deadlines.
const TICK: Duration = Duration::from_millis(100);
/// Pause before re-arming accept after EMFILE/ENFILE, so a full table never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a closing connection's unread input is drained, and how much of it.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 64 * 1024;
/// After the drain deadline, how long cancelled operations may take to complete.
const CANCEL_WAIT: Duration = Duration::from_secs(1);
const SUBMISSION_ENTRIES: u32 = 1024;

/// Where a connection is; its one buffer operation (if any) is in flight in the driver.
#[derive(Debug, Clone, Copy)]
enum Life {
    /// A recv is in flight, behind a send of `out[from..end]` when `end > 0`.
    Reading {
        /// No request is partly read: closing ends this connection at once.
        idle: bool,
        from: usize,
        end: usize,
        /// The coarse second of the idle or head timeout ([`Conn::deadline`]).
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
enum AfterWrite {
    /// `out` filled before the batch was answered: process again without reading.
    Process,
    Linger,
    Close,
}

/// The loop's state of one connection, stored in the driver's slot.
struct ConnState {
    life: Life,
    /// A linked send failed (or was cut short) with this result; its recv was cancelled.
    send_failed: Option<i32>,
}

struct Listening {
    socket: Option<TcpListener>,
    armed: bool,
    rearm_at: Option<Instant>,
}

struct EventLoop {
    driver: Driver<ConnState>,
    core: CoreState,
    listeners: Vec<Listening>,
    phase: watch::Receiver<Phase>,
    drain_timeout: Duration,
    max_conns: usize,
    /// Set when `Phase::Closing` arrives: the time busy connections must be done by.
    deadline: Option<Instant>,
    /// The second of the last deadline sweep.
    swept_secs: u64,
    /// Lingering connections (index, generation, deadline) in deadline order.
    lingering: VecDeque<(u32, u32, Instant)>,
    last_accept_warning: Option<Instant>,
}

/// Runs one worker until its connections are done after `Phase::Closing`, or the drain timed out.
pub fn run(worker: Worker) -> Result<(), crate::BoxError> {
    let Worker {
        core,
        listeners,
        phase,
        drain_timeout,
        max_conns,
    } = worker;
    let driver =
        Driver::new(SUBMISSION_ENTRIES, max_conns).map_err(|e| format!("io_uring setup: {e}"))?;
    if core.id == 0 {
        crate::info!("io_uring task running: {:?}", driver.task_run);
    }
    let listeners = listeners
        .into_iter()
        .map(|socket| {
            // Accepted sockets inherit TCP_NODELAY from their listener on Linux.
            socket2::SockRef::from(&socket).set_nodelay(true)?;
            Ok(Listening {
                socket: Some(socket),
                armed: false,
                rearm_at: None,
            })
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ev = EventLoop {
        driver,
        core,
        listeners,
        phase,
        drain_timeout,
        max_conns,
        deadline: None,
        swept_secs: 0,
        lingering: VecDeque::new(),
        last_accept_warning: None,
    };
    ev.serve()?;
    ev.cancel_the_rest()
}

impl EventLoop {
    fn serve(&mut self) -> Result<(), crate::BoxError> {
        let mut batch: Vec<Completion> = Vec::with_capacity(REAP_BATCH);
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now)?;
                next_tick = now + TICK;
            }
            if let Some(deadline) = self.deadline {
                if self.driver.len() == 0 || now >= deadline {
                    return Ok(());
                }
            }
            self.driver
                .submit_and_wait(next_tick.saturating_duration_since(now))?;
            self.driver.reap(&mut batch);
            for c in batch.drain(..) {
                self.on_completion(c, now);
            }
        }
    }

    /// Past the drain deadline: cancel what is left and wait (bounded) for the kernel to let go
    /// of its buffers; whatever it still holds is leaked by the driver, never freed.
    fn cancel_the_rest(&mut self) -> Result<(), crate::BoxError> {
        if !self.driver.any_busy() {
            return Ok(());
        }
        self.driver.cancel_everything()?;
        let give_up = Instant::now() + CANCEL_WAIT;
        let mut batch: Vec<Completion> = Vec::with_capacity(REAP_BATCH);
        while self.driver.any_busy() && Instant::now() < give_up {
            self.driver.submit_and_wait(TICK)?;
            self.driver.reap(&mut batch);
            batch.clear();
        }
        Ok(())
    }

    /// Date, phase, accept back-off, linger deadlines, and idle connections while closing.
    fn tick(&mut self, now: Instant) -> Result<(), crate::BoxError> {
        self.core
            .date
            .refresh(crate::clock::now_ns() / 1_000_000_000);
        let phase = match self.phase.has_changed() {
            Ok(true) => Some(*self.phase.borrow_and_update()),
            Ok(false) => None,
            Err(_) => Some(Phase::Closing),
        };
        if let Some(phase) = phase {
            self.core.draining = phase != Phase::Running;
            if phase == Phase::Closing && self.deadline.is_none() {
                self.stop_accepting()?;
                self.deadline = Some(now + self.drain_timeout);
            }
        }
        if self.deadline.is_none() {
            self.arm_listeners(now)?;
        } else {
            self.cancel_idle_reads()?;
        }
        if self.core.now_secs() != self.swept_secs {
            self.swept_secs = self.core.now_secs();
            self.expire_reads()?;
        }
        while let Some(&(index, gen, deadline)) = self.lingering.front() {
            if deadline > now {
                break;
            }
            self.lingering.pop_front();
            if self.driver.gen(index) == Some(gen) {
                self.driver.cancel(user_data(Op::Linger, index, gen))?;
            }
        }
        Ok(())
    }

    fn arm_listeners(&mut self, now: Instant) -> std::io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let (Some(socket), false) = (&l.socket, l.armed) else {
                continue;
            };
            if l.rearm_at.is_some_and(|t| t > now) {
                continue;
            }
            self.driver.accept_multi(i as u32, socket)?;
            l.armed = true;
            l.rearm_at = None;
        }
        Ok(())
    }

    fn stop_accepting(&mut self) -> std::io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            if l.armed {
                self.driver.cancel(user_data(Op::Accept, i as u32, 0))?;
            }
            // The accept request holds its own reference; the socket closes when it ends.
            l.socket = None;
        }
        Ok(())
    }

    /// While closing, connections waiting for a new request are closed: cancel their recv.
    /// Retried each tick, since a recv still queued behind its linked send cannot be found.
    fn cancel_idle_reads(&mut self) -> std::io::Result<()> {
        for index in 0..self.driver.capacity() {
            let Some(gen) = self.driver.gen(index) else {
                continue;
            };
            if let Some(ConnState {
                life:
                    Life::Reading {
                        idle: true,
                        cancel_sent: sent @ false,
                        ..
                    },
                ..
            }) = self.driver.state_mut(index)
            {
                *sent = true;
                self.driver.cancel(user_data(Op::Recv, index, gen))?;
            }
        }
        Ok(())
    }

    /// Once a second: cancels the recv of every connection past its idle or head timeout.
    fn expire_reads(&mut self) -> std::io::Result<()> {
        let now_secs = self.core.now_secs();
        for index in 0..self.driver.capacity() {
            let Some(gen) = self.driver.gen(index) else {
                continue;
            };
            if let Some(ConnState {
                life:
                    Life::Reading {
                        deadline,
                        expired,
                        cancel_sent,
                        ..
                    },
                ..
            }) = self.driver.state_mut(index)
            {
                if *deadline <= now_secs {
                    *expired = true;
                    if !*cancel_sent {
                        *cancel_sent = true;
                        self.driver.cancel(user_data(Op::Recv, index, gen))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_completion(&mut self, c: Completion, now: Instant) {
        if c.op == Op::Accept {
            return self.on_accept(c, now);
        }
        if self.driver.gen(c.index) != Some(c.gen) {
            return;
        }
        match c.op {
            Op::Cancel if c.result == -libc::ENOENT => {
                if let Some(ConnState {
                    life: Life::Reading { cancel_sent, .. },
                    ..
                }) = self.driver.state_mut(c.index)
                {
                    *cancel_sent = false;
                }
            }
            Op::LinkedSend => {
                if let Some(state) = self.driver.state_mut(c.index) {
                    state.send_failed = Some(c.result);
                }
            }
            Op::Recv => self.on_recv(c.index, c.result),
            Op::Send => self.on_sent(c.index, c.result),
            Op::Linger => self.on_linger(c.index, c.result, now),
            _ => {}
        }
    }

    fn on_accept(&mut self, c: Completion, now: Instant) {
        let Some(listener) = self.listeners.get_mut(c.index as usize) else {
            return;
        };
        if !c.more {
            listener.armed = false;
        }
        if c.result < 0 {
            let err = std::io::Error::from_raw_os_error(-c.result);
            if err.raw_os_error() == Some(libc::ECANCELED) {
                return;
            }
            self.core.stats.accept_error();
            if is_resource_exhaustion(&err) {
                // The connection stays queued: re-arming at once would spin at 100% CPU.
                listener.rearm_at = Some(now + ACCEPT_BACKOFF);
                if self
                    .last_accept_warning
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
                {
                    crate::warn!("accept failed ({err}); backing off 100 ms");
                    self.last_accept_warning = Some(now);
                }
            }
            return self.rearm_now(c.index as usize, now);
        }
        if !c.more {
            self.rearm_now(c.index as usize, now);
        }
        let Some(stream) = c.accepted else { return };
        if self.deadline.is_some() {
            return;
        }
        if self.driver.len() >= self.max_conns {
            self.core.stats.conn_refused();
            return;
        }
        let Ok(peer) = stream.peer_addr() else { return };
        let mut conn = Conn::new(peer, &self.core);
        self.core.stats.conn_opened();
        let deadline = conn.deadline(self.core.now_secs(), &self.core);
        let state = ConnState {
            life: Life::Reading {
                idle: true,
                from: 0,
                end: 0,
                deadline,
                expired: false,
                cancel_sent: false,
            },
            send_failed: None,
        };
        let (index, _) = self.driver.insert(stream, conn, state);
        if self.driver.recv(index).is_err() {
            self.close(index);
        }
    }

    /// Re-arms a listener whose multishot accept ended, unless it must wait out a back-off.
    fn rearm_now(&mut self, i: usize, now: Instant) {
        if self.deadline.is_some() || self.listeners[i].armed {
            return;
        }
        if self.listeners[i].rearm_at.is_none_or(|t| t <= now) {
            let _ = self.arm_listeners(now);
        }
    }

    fn on_recv(&mut self, index: u32, result: i32) {
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
        if result <= 0 {
            return self.close(index);
        }
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        if end > 0 {
            conn.out.clear();
        }
        conn.filled(result as usize);
        self.run_conn(index);
    }

    fn on_sent(&mut self, index: u32, result: i32) {
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
        let total = conn.out.len();
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
        conn.out.clear();
        match then {
            AfterWrite::Process => self.run_conn(index),
            AfterWrite::Linger => self.start_linger(index, Instant::now()),
            AfterWrite::Close => self.close(index),
        }
    }

    fn on_linger(&mut self, index: u32, result: i32, now: Instant) {
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
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        conn.out.clear();
        conn.timed_out(&mut self.core);
        if conn.out.is_empty() {
            self.start_linger(index, Instant::now());
        } else if self.write(index, AfterWrite::Linger).is_err() {
            self.close(index);
        }
    }

    /// Answers what the connection has buffered and starts its next operation.
    fn run_conn(&mut self, index: u32) {
        let closing = self.deadline.is_some();
        let Some(conn) = self.driver.conn_mut(index) else {
            return;
        };
        let next = conn.process(&mut self.core);
        let (out, idle) = (conn.out.len(), !conn.mid_request());
        let started = match next {
            Next::Read | Next::Write if closing && idle && out == 0 => return self.close(index),
            Next::Read if closing && idle => self.write(index, AfterWrite::Close),
            Next::Write if out > 0 => self.write(index, AfterWrite::Process),
            Next::Read | Next::Write => {
                let deadline = conn.deadline(self.core.now_secs(), &self.core);
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

    fn close(&mut self, index: u32) {
        if self.driver.remove(index) {
            self.core.stats.conn_closed();
        }
    }
}
