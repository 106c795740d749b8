//! The epoll backend: a core's [`Handler`] on a per-core tokio current-thread runtime.
//!
//! A connection waits for readability holding no buffer; its read buffer and `out` come from
//! the core's [`BufferPool`] only once bytes are there to read, and go back when the batch is
//! answered (a partial request keeps its read buffer).

use super::backend::{AcceptFailures, ACCEPT_BACKOFF, LINGER_BYTES, LINGER_TIME};
use super::handler::Handler;
use super::stats::CoreStats;
use super::{Phase, Worker};
use crate::http::buffers::BufferPool;
use crate::http::conn::Next;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// Runs one worker until shutdown; returns when its connections are done or the drain timed out.
pub fn run<H: Handler>(worker: Worker<H>) -> Result<(), crate::BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(worker))
}

async fn serve<H: Handler>(worker: Worker<H>) -> Result<(), crate::BoxError> {
    let Worker {
        id: _,
        handler,
        stats,
        listeners,
        mut phase,
        drain_timeout,
        max_conns,
    } = worker;
    let core = Rc::new(RefCell::new(handler));
    let now = Rc::new(Cell::new(crate::clock::now_secs()));
    let open = Rc::new(Cell::new(0usize));
    let timers: Timers = Rc::default();
    let pool = Rc::new(RefCell::new(BufferPool::new(POOL_LIMIT)));
    // A connection that used up its coop budget yields through the runtime's list of deferred
    // wakers, which is allocated on first use: use it once now, not mid-traffic.
    tokio::task::yield_now().await;
    let mut accepts = Vec::new();
    for listener in listeners {
        let listener = TcpListener::from_std(listener)?;
        let ctx = ConnCtx {
            core: core.clone(),
            stats: stats.clone(),
            now: now.clone(),
            phase: phase.clone(),
            open: open.clone(),
            drain_timeout,
            timers: timers.clone(),
            pool: pool.clone(),
        };
        accepts.push(tokio::task::spawn_local(accept_loop(
            listener, ctx, max_conns,
        )));
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let secs = crate::clock::now_ns() / 1_000_000_000;
                core.borrow_mut().tick(secs);
                now.set(secs);
                stats.conns.heartbeat();
                sweep(&timers, secs);
            }
            changed = phase.changed() => {
                let next = if changed.is_err() { Phase::Closing } else { *phase.borrow_and_update() };
                core.borrow_mut().set_draining(next != Phase::Running);
                if next == Phase::Closing {
                    break;
                }
            }
        }
    }
    for accept in accepts {
        accept.abort();
    }
    let deadline = Instant::now() + drain_timeout;
    while open.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

struct ConnCtx<H> {
    core: Rc<RefCell<H>>,
    stats: Arc<CoreStats>,
    /// The second of the core's last tick.
    now: Rc<Cell<u64>>,
    phase: watch::Receiver<Phase>,
    open: Rc<Cell<usize>>,
    drain_timeout: Duration,
    timers: Timers,
    pool: Rc<RefCell<BufferPool>>,
}

/// Spare buffers a core keeps of each kind (read buffers, `out`s); more are freed.
const POOL_LIMIT: usize = 1024;

impl<H> Clone for ConnCtx<H> {
    fn clone(&self) -> Self {
        ConnCtx {
            core: self.core.clone(),
            stats: self.stats.clone(),
            now: self.now.clone(),
            phase: self.phase.clone(),
            open: self.open.clone(),
            drain_timeout: self.drain_timeout,
            timers: self.timers.clone(),
            pool: self.pool.clone(),
        }
    }
}

/// A connection's deadline, checked by the core's once-a-second sweep instead of a timer per
/// request: the connection only stores a number after each read.
#[derive(Default)]
struct Deadline {
    at_secs: Cell<u64>,
    expired: Notify,
}

type Timers = Rc<RefCell<Vec<Weak<Deadline>>>>;

/// Wakes every connection whose deadline has passed and forgets closed ones.
fn sweep(timers: &Timers, now_secs: u64) {
    timers.borrow_mut().retain(|weak| match weak.upgrade() {
        Some(deadline) => {
            if deadline.at_secs.get() <= now_secs {
                deadline.expired.notify_one();
            }
            true
        }
        None => false,
    });
}

async fn accept_loop<H: Handler>(listener: TcpListener, ctx: ConnCtx<H>, max_conns: usize) {
    let stats = ctx.stats.clone();
    let mut failures = AcceptFailures::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if ctx.open.get() >= max_conns {
                    stats.conns.refused();
                    continue;
                }
                let _ = stream.set_nodelay(true);
                ctx.open.set(ctx.open.get() + 1);
                stats.conns.opened();
                let ctx = ctx.clone();
                let stats = stats.clone();
                tokio::task::spawn_local(async move {
                    serve_conn(stream, peer, &ctx).await;
                    ctx.open.set(ctx.open.get() - 1);
                    stats.conns.closed();
                });
            }
            Err(e) => {
                stats.conns.accept_error();
                if failures.back_off(&e, Instant::now()) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

async fn serve_conn<H: Handler>(mut stream: TcpStream, peer: SocketAddr, ctx: &ConnCtx<H>) {
    let Some(mut conn) = ctx.core.borrow_mut().open(peer) else {
        return;
    };
    let end = serve_open(&mut stream, &mut conn, ctx).await;
    H::buffers(&mut conn).out.clear();
    H::buffers(&mut conn).release(&mut ctx.pool.borrow_mut());
    drop(conn);
    if end == End::Linger {
        linger_close(stream).await;
    }
}

#[derive(PartialEq, Eq)]
enum End {
    Close,
    Linger,
}

/// Serves `conn` until it ends; says whether to close at once or linger.
async fn serve_open<H: Handler>(
    stream: &mut TcpStream,
    conn: &mut H::Conn,
    ctx: &ConnCtx<H>,
) -> End {
    let mut phase = ctx.phase.clone();
    let deadline = Rc::new(Deadline::default());
    ctx.timers.borrow_mut().push(Rc::downgrade(&deadline));
    loop {
        let closing = *phase.borrow() == Phase::Closing;
        if closing && !H::mid_request(conn) {
            return End::Close;
        }
        let at = ctx.core.borrow().deadline(conn, crate::clock::now_secs());
        deadline.at_secs.set(at);
        let ready = tokio::select! {
            r = stream.readable() => r,
            _ = deadline.expired.notified() => {
                // A wake-up from before the deadline moved is stale.
                if deadline.at_secs.get() > ctx.now.get() {
                    continue;
                }
                H::buffers(conn).equip(&mut ctx.pool.borrow_mut());
                ctx.core.borrow_mut().timed_out(conn);
                let out = &H::buffers(conn).out;
                if !out.is_empty() && stream.write_all(out).await.is_err() {
                    return End::Close;
                }
                return End::Linger;
            }
            r = phase.changed(), if !closing => {
                if r.is_err() {
                    return End::Close;
                }
                continue;
            }
            _ = tokio::time::sleep(ctx.drain_timeout), if closing => return End::Close,
        };
        if ready.is_err() {
            return End::Close;
        }
        let io = H::buffers(conn);
        io.equip(&mut ctx.pool.borrow_mut());
        match stream.try_read(io.read_buf()) {
            Ok(0) => return End::Close,
            Ok(n) => io.filled(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                io.release(&mut ctx.pool.borrow_mut());
                continue;
            }
            Err(_) => return End::Close,
        }
        loop {
            let next = ctx.core.borrow_mut().process(conn);
            let out = &mut H::buffers(conn).out;
            if !out.is_empty() {
                if stream.write_all(out).await.is_err() {
                    return End::Close;
                }
                out.clear();
            }
            match next {
                Next::Read => break,
                Next::Write => continue,
                Next::Close => return End::Linger,
            }
        }
        H::buffers(conn).release(&mut ctx.pool.borrow_mut());
    }
}

/// Half-closes, then drains what the client still sends for a moment, so the kernel does not
/// answer unread bytes with a RST that could destroy the response in flight.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    // On the heap, only now: an array here would be part of every connection's task.
    let mut sink = vec![0u8; 4096];
    let drain = async {
        let mut total = 0usize;
        while total < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
