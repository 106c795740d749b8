//! One connection's driver, the same code for every mode: up to `--pipeline` requests in
//! flight (closed loop: a batch of N in one write, the next batch once all are answered, as
//! wrk's pipelining does; open loop: each request when the schedule says it is due and there
//! is room), all sendable requests rendered into one buffer and written with one call, then
//! every complete answer framed from each read.

use super::pacer::Pacer;
use super::response::{ResponseParser, Step};
use super::stats::{ErrorKind, LiveCounters, ThreadStats};
use super::templates::RequestSet;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Read buffer per connection; a response head larger than this is a protocol error.
const READ_BUFFER: usize = 64 * 1024;
/// Pause after a failed connect so a dead server does not turn into a busy loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// What the connections of one thread share (single-threaded: `Cell`/`RefCell`).
pub struct ThreadCtx {
    pub addr: SocketAddr,
    pub requests: Arc<RequestSet>,
    pub pipeline: usize,
    pub timeout: Duration,
    /// No request is sent at or after this instant.
    pub end: Option<Instant>,
    /// Requests this thread may still start (`-n`), if limited.
    pub budget: Option<Cell<u64>>,
    /// The next `--id-param` value, shared by all threads.
    pub ids: Arc<AtomicU64>,
    pub stats: RefCell<ThreadStats>,
    pub live: Arc<LiveCounters>,
}

impl ThreadCtx {
    /// Takes one request from the `-n` budget; false when it is spent.
    fn claim(&self) -> bool {
        match &self.budget {
            None => true,
            Some(left) if left.get() > 0 => {
                left.set(left.get() - 1);
                true
            }
            Some(_) => false,
        }
    }

    fn fail(&self, kind: ErrorKind, n: u64) {
        if n > 0 {
            self.stats.borrow_mut().failed(&self.live, kind, n);
        }
    }
}

/// How a connection's life ended.
enum End {
    /// Nothing more to send (budget spent or past the end) and nothing in flight.
    Finished,
    /// The connection broke or the server closed it: open a new one.
    Reconnect,
}

struct InFlight {
    planned: Instant,
    sent: Instant,
    id: u64,
}

/// Drives connection number `index` until the run ends; reconnects as needed.
pub async fn drive(ctx: std::rc::Rc<ThreadCtx>, index: usize, mut pacer: Option<Pacer>) {
    let mut conn = Conn {
        inflight: VecDeque::with_capacity(ctx.pipeline),
        wbuf: Vec::with_capacity(1024 * ctx.pipeline),
        rbuf: vec![0; READ_BUFFER],
        filled: 0,
        parser: ResponseParser::default(),
        counter: index as u64,
        timer: Box::pin(tokio::time::sleep(ctx.timeout)),
        timer_at: Instant::now() + ctx.timeout,
    };
    loop {
        if ctx.end.is_some_and(|e| Instant::now() >= e) {
            return;
        }
        let stream = match connect(&ctx).await {
            Ok(s) => s,
            Err(()) => {
                // A failed connect spends one attempt of the -n budget, so runs always end.
                if !ctx.claim() {
                    return;
                }
                ctx.fail(ErrorKind::Connect, 1);
                tokio::time::sleep(CONNECT_BACKOFF).await;
                continue;
            }
        };
        if let End::Finished = conn.serve(&ctx, stream, &mut pacer).await {
            return;
        }
    }
}

async fn connect(ctx: &ThreadCtx) -> Result<TcpStream, ()> {
    match tokio::time::timeout(ctx.timeout, TcpStream::connect(ctx.addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        _ => Err(()),
    }
}

struct Conn {
    inflight: VecDeque<InFlight>,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    filled: usize,
    parser: ResponseParser,
    /// Rotates through the request templates.
    counter: u64,
    /// Wakes the connection for a timeout check (open loop wakes for sends with its [`Pacer`]).
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
}

impl Conn {
    async fn serve(
        &mut self,
        ctx: &ThreadCtx,
        mut stream: TcpStream,
        pacer: &mut Option<Pacer>,
    ) -> End {
        self.filled = 0;
        self.parser.reset();
        self.set_timer(Instant::now() + ctx.timeout);
        loop {
            let now = Instant::now();
            let exhausted = self.fill(ctx, pacer, now);
            if !self.wbuf.is_empty() {
                if let Err(kind) = self.write(ctx, &mut stream).await {
                    self.fail_all(ctx, kind);
                    return End::Reconnect;
                }
            }
            if self.inflight.is_empty() && exhausted {
                return End::Finished;
            }
            // Open loop: also wake when the next request falls due, if there is room for it.
            let room = self.inflight.len() < ctx.pipeline;
            if let (Some(p), true) = (pacer.as_mut(), room) {
                // Fails only for a bad descriptor or time, neither possible with our own timer.
                p.arm().expect("arming the loadgen's own timerfd");
            }
            let filled = self.filled;
            tokio::select! {
                biased;
                read = stream.read(&mut self.rbuf[filled..]) => {
                    if let Err(end) = self.on_read(ctx, read) {
                        return end;
                    }
                }
                () = &mut self.timer => {
                    if self.on_timer(ctx) {
                        return End::Reconnect;
                    }
                }
                fired = async { pacer.as_ref().expect("guarded").fired().await },
                    if pacer.is_some() && room =>
                {
                    fired.expect("waiting on the loadgen's own timerfd");
                }
            }
        }
    }

    /// Renders every request that may be sent now into `wbuf`. Returns true when no more
    /// requests will ever be sent (past the end or budget spent).
    fn fill(&mut self, ctx: &ThreadCtx, pacer: &mut Option<Pacer>, now: Instant) -> bool {
        self.wbuf.clear();
        if pacer.is_none() && !self.inflight.is_empty() {
            // Closed loop sends whole batches, like wrk's pipelining: the server sees N
            // requests per read instead of a trickle of refills.
            return false;
        }
        let mut batch = 0;
        let mut exhausted = false;
        while self.inflight.len() < ctx.pipeline {
            let planned = match pacer.as_ref() {
                Some(p) if p.due() > now => break,
                Some(p) => p.due(),
                None => now,
            };
            if ctx.end.is_some_and(|e| planned >= e) || !ctx.claim() {
                exhausted = true;
                break;
            }
            if let Some(p) = pacer.as_mut() {
                p.take();
            }
            let id = if ctx.requests.with_id {
                ctx.ids.fetch_add(1, Relaxed)
            } else {
                0
            };
            ctx.requests.render_into(self.counter, id, &mut self.wbuf);
            self.counter += 1;
            self.inflight.push_back(InFlight {
                planned,
                sent: now,
                id,
            });
            batch += 1;
        }
        if batch > 0 {
            ctx.stats.borrow_mut().sent(batch, self.wbuf.len());
        }
        exhausted
    }

    async fn write(&mut self, ctx: &ThreadCtx, stream: &mut TcpStream) -> Result<(), ErrorKind> {
        // Fast path: the socket buffer takes the whole batch without waiting.
        let mut done = match stream.try_write(&self.wbuf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return Err(ErrorKind::Write),
        };
        if done < self.wbuf.len() {
            let rest = &self.wbuf[done..];
            match tokio::time::timeout(ctx.timeout, stream.write_all(rest)).await {
                Ok(Ok(())) => done = self.wbuf.len(),
                Ok(Err(_)) => return Err(ErrorKind::Write),
                Err(_) => return Err(ErrorKind::Timeout),
            }
        }
        debug_assert_eq!(done, self.wbuf.len());
        Ok(())
    }

    /// Frames every complete answer now buffered. `Err` ends this connection.
    fn on_read(&mut self, ctx: &ThreadCtx, read: std::io::Result<usize>) -> Result<(), End> {
        let n = match read {
            Ok(n) if n > 0 => n,
            _ => {
                // EOF or error: whatever was outstanding will never be answered.
                self.fail_all(ctx, ErrorKind::Read);
                return Err(End::Reconnect);
            }
        };
        self.filled += n;
        let now = Instant::now();
        let mut stats = ctx.stats.borrow_mut();
        stats.bytes_read += n as u64;
        let mut pos = 0;
        let mut outcome = Ok(());
        while pos < self.filled {
            match self
                .parser
                .feed(&self.rbuf[pos..self.filled], ctx.requests.head_method)
            {
                Step::Complete {
                    status,
                    used,
                    close,
                } => {
                    pos += used;
                    let Some(req) = self.inflight.pop_front() else {
                        outcome = Err(ErrorKind::Protocol); // an answer nobody asked for
                        break;
                    };
                    let corrected = now.saturating_duration_since(req.planned);
                    let uncorrected = now.saturating_duration_since(req.sent);
                    stats.answered(&ctx.live, status, req.id, corrected, uncorrected);
                    if close {
                        outcome = Err(ErrorKind::Read);
                        break;
                    }
                }
                Step::Consumed { used } => pos += used,
                Step::Partial => break,
                Step::Invalid(_) => {
                    outcome = Err(ErrorKind::Protocol);
                    break;
                }
            }
        }
        drop(stats);
        if let Err(kind) = outcome {
            self.fail_all(ctx, kind);
            return Err(End::Reconnect);
        }
        self.rbuf.copy_within(pos..self.filled, 0);
        self.filled -= pos;
        if self.filled == self.rbuf.len() {
            self.fail_all(ctx, ErrorKind::Protocol); // a head larger than the whole buffer
            return Err(End::Reconnect);
        }
        Ok(())
    }

    /// The timer fired: fail everything if the oldest request is overdue (returns true),
    /// else re-arm it for the oldest request's deadline.
    fn on_timer(&mut self, ctx: &ThreadCtx) -> bool {
        let now = Instant::now();
        match self.inflight.front() {
            Some(oldest) if now >= oldest.sent + ctx.timeout => {
                self.fail_all(ctx, ErrorKind::Timeout);
                true
            }
            Some(oldest) => {
                self.set_timer(oldest.sent + ctx.timeout);
                false
            }
            None => {
                self.set_timer(now + ctx.timeout);
                false
            }
        }
    }

    fn set_timer(&mut self, at: Instant) {
        self.timer_at = at;
        self.timer.as_mut().reset(at.into());
    }

    fn fail_all(&mut self, ctx: &ThreadCtx, kind: ErrorKind) {
        ctx.fail(kind, self.inflight.len() as u64);
        self.inflight.clear();
    }
}
