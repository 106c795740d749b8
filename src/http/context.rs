//! What the HTTP layer of one core works with besides the request bytes: its policy, the
//! cached `Date`, whether the server is draining, its counters and the ingest sink.

use super::policy::HttpPolicy;
use super::stats::HttpStats;
use crate::clock::HttpDate;
use crate::ingest::Sink;
use std::sync::Arc;

/// One core's HTTP context; lives on that core's thread only.
pub struct Context<S> {
    pub policy: Arc<HttpPolicy>,
    /// Refreshed by the core's timer ([`Context::tick`]).
    pub date: HttpDate,
    /// Set when shutdown begins: health checks answer 503, connections close after each answer.
    pub draining: bool,
    pub stats: Arc<HttpStats>,
    pub sink: S,
    /// When the batch being answered was read ([`Context::start_batch`]): the time of every
    /// record made from it. Its answers leave together, in one write.
    pub batch_ns: u64,
}

impl<S: Sink> Context<S> {
    /// A context counting into `stats`, not draining, its Date set to now.
    pub fn new(policy: Arc<HttpPolicy>, stats: Arc<HttpStats>, sink: S) -> Context<S> {
        Context {
            policy,
            date: HttpDate::default(),
            draining: false,
            stats,
            sink,
            batch_ns: crate::clock::now_ns(),
        }
    }

    /// Reads the clock once for a batch of pipelined requests (one per read, not per record).
    pub fn start_batch(&mut self) {
        self.batch_ns = crate::clock::now_ns();
    }

    /// The current second, as last refreshed by [`Context::tick`] (coarse, no syscall).
    pub fn now_secs(&self) -> u64 {
        self.date.secs()
    }

    /// Refreshes the cached `Date` (the core's timer calls this).
    pub fn tick(&mut self, unix_secs: u64) {
        self.date.refresh(unix_secs);
    }
}
