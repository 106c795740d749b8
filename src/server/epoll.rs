//! The epoll backend: the shared connection code on a per-core tokio current-thread runtime.

#![forbid(unsafe_code)]

use super::listener::is_resource_exhaustion;
use super::{Phase, Worker};
use crate::http::conn::{Conn, Next};
use crate::server::core::CoreState;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Runs one worker until shutdown; returns when its connections are done or the drain timed out.
pub fn run(worker: Worker) -> Result<(), crate::BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, serve(worker))
}

async fn serve(worker: Worker) -> Result<(), crate::BoxError> {
    let Worker {
        core,
        listeners,
        mut phase,
        drain_timeout,
        max_conns,
    } = worker;
    let core = Rc::new(RefCell::new(core));
    let open = Rc::new(Cell::new(0usize));
    let mut accepts = Vec::new();
    for listener in listeners {
        let listener = TcpListener::from_std(listener)?;
        let ctx = ConnCtx {
            core: core.clone(),
            phase: phase.clone(),
            open: open.clone(),
            drain_timeout,
        };
        accepts.push(tokio::task::spawn_local(accept_loop(
            listener, ctx, max_conns,
        )));
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => core.borrow_mut().date.refresh(crate::clock::now_ns() / 1_000_000_000),
            changed = phase.changed() => {
                let now = if changed.is_err() { Phase::Closing } else { *phase.borrow_and_update() };
                core.borrow_mut().draining = now != Phase::Running;
                if now == Phase::Closing {
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

#[derive(Clone)]
struct ConnCtx {
    core: Rc<RefCell<CoreState>>,
    phase: watch::Receiver<Phase>,
    open: Rc<Cell<usize>>,
    drain_timeout: Duration,
}

async fn accept_loop(listener: TcpListener, ctx: ConnCtx, max_conns: usize) {
    let stats = ctx.core.borrow().stats.clone();
    let mut last_warning: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if ctx.open.get() >= max_conns {
                    stats.conn_refused();
                    continue;
                }
                let _ = stream.set_nodelay(true);
                ctx.open.set(ctx.open.get() + 1);
                stats.conn_opened();
                let ctx = ctx.clone();
                let stats = stats.clone();
                tokio::task::spawn_local(async move {
                    serve_conn(stream, peer, &ctx).await;
                    ctx.open.set(ctx.open.get() - 1);
                    stats.conn_closed();
                });
            }
            Err(e) => {
                stats.accept_error();
                if is_resource_exhaustion(&e) {
                    // The connection stays queued: retrying at once would spin at 100% CPU.
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        crate::warn!("accept failed ({e}); backing off 100 ms");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn serve_conn(mut stream: TcpStream, peer: SocketAddr, ctx: &ConnCtx) {
    let mut phase = ctx.phase.clone();
    let mut conn = Conn::new(peer, &ctx.core.borrow());
    loop {
        let closing = *phase.borrow() == Phase::Closing;
        if closing && conn.buffered() == 0 {
            return;
        }
        let read = tokio::select! {
            r = stream.read(conn.read_buf()) => r,
            r = phase.changed(), if !closing => {
                if r.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(ctx.drain_timeout), if closing => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => conn.filled(n),
        }
        loop {
            let next = conn.process(&mut ctx.core.borrow_mut());
            if !conn.out.is_empty() {
                if stream.write_all(&conn.out).await.is_err() {
                    return;
                }
                conn.out.clear();
            }
            match next {
                Next::Read => break,
                Next::Write => continue,
                Next::Close => return linger_close(stream).await,
            }
        }
    }
}

/// Half-closes, then drains what the client still sends for a moment, so the kernel does not
/// answer unread bytes with a RST that could destroy the response in flight.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut total = 0usize;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}
