//! The per-core loop of the uring backend: accepts, per-connection states, ticks, shutdown.
//! Behaves like the epoll backend (`server::epoll`), step for step.

use super::connection::{ConnState, Life};
use super::driver::{Driver, REAP_BATCH};
use super::op::{user_data, Completion, Op};
use crate::server::backend::{AcceptFailures, ACCEPT_BACKOFF};
use crate::server::handler::Handler;
use crate::server::stats::CoreStats;
use crate::server::{Phase, Worker};
use crate::uring_probe::TaskRun;
use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the loop wakes without I/O: Date refresh, phase changes, deadlines.
const TICK: Duration = Duration::from_millis(100);
/// After the drain deadline, how long cancelled operations may take to complete.
const CANCEL_WAIT: Duration = Duration::from_secs(1);
const SUBMISSION_ENTRIES: u32 = 1024;

struct Listening {
    socket: Option<TcpListener>,
    armed: bool,
    rearm_at: Option<Instant>,
}

pub(super) struct EventLoop<H: Handler> {
    pub(super) driver: Driver<H, ConnState>,
    pub(super) core: H,
    pub(super) stats: Arc<CoreStats>,
    /// The second of the last tick.
    pub(super) now_secs: u64,
    listeners: Vec<Listening>,
    phase: watch::Receiver<Phase>,
    drain_timeout: Duration,
    max_conns: usize,
    /// Set when `Phase::Closing` arrives: the time busy connections must be done by.
    pub(super) deadline: Option<Instant>,
    /// The second of the last deadline sweep.
    swept_secs: u64,
    /// Lingering connections (index, generation, deadline) in deadline order.
    pub(super) lingering: VecDeque<(u32, u32, Instant)>,
    accept_failures: AcceptFailures,
}

/// Runs one worker until its connections are done after `Phase::Closing`, or the drain timed out.
pub fn run<H: Handler>(worker: Worker<H>) -> Result<(), crate::BoxError> {
    let Worker {
        id,
        handler: core,
        stats,
        listeners,
        phase,
        drain_timeout,
        max_conns,
    } = worker;
    let driver =
        Driver::new(SUBMISSION_ENTRIES, max_conns).map_err(|e| format!("io_uring setup: {e}"))?;
    if id == 0 {
        let mode = match driver.task_run {
            TaskRun::Deferred => "SINGLE_ISSUER | DEFER_TASKRUN",
            TaskRun::Cooperative => "COOP_TASKRUN (kernel before 6.1)",
        };
        let recv = if driver.multishot_allowed() {
            "a multishot recv per connection where the kernel has it (6.0+)"
        } else {
            "one recv per request (GLINT_URING_SINGLE_RECV is set)"
        };
        crate::info!("io_uring ring set up with {mode}; {recv}");
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
        stats,
        now_secs: crate::clock::now_secs(),
        listeners,
        phase,
        drain_timeout,
        max_conns,
        deadline: None,
        swept_secs: 0,
        lingering: VecDeque::new(),
        accept_failures: AcceptFailures::default(),
    };
    ev.serve()?;
    ev.cancel_the_rest()
}

impl<H: Handler> EventLoop<H> {
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
        self.now_secs = crate::clock::now_ns() / 1_000_000_000;
        self.core.tick(self.now_secs);
        self.stats.conns.heartbeat();
        let phase = match self.phase.has_changed() {
            Ok(true) => Some(*self.phase.borrow_and_update()),
            Ok(false) => None,
            Err(_) => Some(Phase::Closing),
        };
        if let Some(phase) = phase {
            self.core.set_draining(phase != Phase::Running);
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
        if self.now_secs != self.swept_secs {
            self.swept_secs = self.now_secs;
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
    /// Retried each tick, since a recv still queued behind its linked send cannot be found
    /// (nor a multishot recv between its end and its re-arming).
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
                let op = self.driver.reading_op(index);
                self.driver.cancel(user_data(op, index, gen))?;
            }
        }
        Ok(())
    }

    /// Once a second: cancels the recv of every connection past its idle or head timeout.
    fn expire_reads(&mut self) -> std::io::Result<()> {
        let now_secs = self.now_secs;
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
                        let op = self.driver.reading_op(index);
                        self.driver.cancel(user_data(op, index, gen))?;
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
            Op::RecvMulti => self.on_multi(c.index, c.result),
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
            self.stats.conns.accept_error();
            if self.accept_failures.back_off(&err, now) {
                listener.rearm_at = Some(now + ACCEPT_BACKOFF);
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
            self.stats.conns.refused();
            return;
        }
        let Ok(peer) = stream.peer_addr() else { return };
        self.stats.conns.opened();
        let Some(mut conn) = self.core.open(peer) else {
            // Refused by the handler (PROXY protocol from an untrusted peer).
            self.stats.conns.closed();
            return;
        };
        let deadline = self.core.deadline(&mut conn, crate::clock::now_secs());
        let state = ConnState {
            life: Life::reading(true, 0, deadline),
            send_failed: None,
        };
        let (index, _) = self.driver.insert(stream, conn, state);
        self.await_input(index);
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&listener).set_nodelay(true).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
