//! One load thread: its own current-thread tokio runtime driving its share of the connections
//! until the duration ends, its `-n` share is done, or the run is stopped (Ctrl-C).

use super::conn::{drive, ThreadCtx};
use super::pacer::Pacer;
use super::schedule::Schedule;
use super::stats::{LiveCounters, ThreadStats};
use super::templates::RequestSet;
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What every thread shares, read-only.
pub struct RunShape {
    pub addr: SocketAddr,
    pub requests: Arc<RequestSet>,
    pub connections: usize,
    pub pipeline: usize,
    pub timeout: Duration,
    pub rate: Option<f64>,
    pub start: Instant,
    pub end: Option<Instant>,
    pub ids: Arc<AtomicU64>,
}

/// One thread's share.
pub struct ThreadShare {
    /// Global indices of this thread's connections (they set the open-loop phases).
    pub connections: Vec<usize>,
    pub budget: Option<u64>,
    pub acked: Option<File>,
    pub live: Arc<LiveCounters>,
}

/// Runs one thread's connections to the end and returns what they measured.
pub fn run_thread(
    shape: Arc<RunShape>,
    share: ThreadShare,
    mut stop: watch::Receiver<bool>,
) -> Result<ThreadStats, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a load thread's runtime: {e}"))?;
    let ctx = Rc::new(ThreadCtx {
        addr: shape.addr,
        requests: shape.requests.clone(),
        pipeline: shape.pipeline,
        timeout: shape.timeout,
        end: shape.end,
        budget: share.budget.map(Cell::new),
        ids: shape.ids.clone(),
        stats: RefCell::new(ThreadStats::new(share.acked)),
        live: share.live,
    });
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut conns = tokio::task::JoinSet::new();
        for &index in &share.connections {
            let pacer = match shape.rate {
                None => None,
                Some(r) => {
                    let schedule = Schedule::new(shape.start, r, shape.connections, index);
                    Some(Pacer::new(schedule).map_err(|e| {
                        format!("cannot create an open-loop send timer (timerfd): {e}")
                    })?)
                }
            };
            conns.spawn_local(drive(ctx.clone(), index, pacer));
        }
        let deadline = async {
            match shape.end {
                Some(end) => tokio::time::sleep_until(end.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = async { while conns.join_next().await.is_some() {} } => {}
            () = deadline => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
        conns.abort_all();
        while conns.join_next().await.is_some() {}
        Ok::<(), String>(())
    })?;
    drop(local);
    let ctx = Rc::try_unwrap(ctx).map_err(|_| "a connection outlived its thread".to_string())?;
    Ok(ctx.stats.into_inner())
}
