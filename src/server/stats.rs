//! One core's counters as the server keeps them: its connections and heartbeats, beside the
//! HTTP layer's and the sink's (each written only by that core; admin and shutdown read them).

use crate::http::stats::HttpStats;
use crate::ingest::stats::{bump, SinkStats};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Every counter of one core.
#[derive(Default, Debug)]
pub struct CoreStats {
    pub http: Arc<HttpStats>,
    pub sink: Arc<SinkStats>,
    pub conns: ConnStats,
}

/// The backend's counters, on their own cache lines.
#[repr(align(128))]
#[derive(Default, Debug)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Bumped by the core's once-a-second timer; the systemd watchdog checks it moves.
    pub heartbeats: AtomicU64,
}

impl ConnStats {
    pub fn opened(&self) {
        bump(&self.accepted);
        bump(&self.open);
    }

    pub fn closed(&self) {
        self.open
            .store(self.open.load(Relaxed).saturating_sub(1), Relaxed);
    }

    pub fn refused(&self) {
        bump(&self.refused);
    }

    pub fn accept_error(&self) {
        bump(&self.accept_errors);
    }

    /// Records that the core's event loop is alive (called from its timer).
    pub fn heartbeat(&self) {
        bump(&self.heartbeats);
    }
}
