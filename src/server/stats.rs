//! Per-core counters. Each core writes only its own `CoreStats` (plain loads and stores, no
//! contended read-modify-write); the admin listener and shutdown summary read them.

use crate::http::parse::Reject;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one core, on their own cache lines so cores never share one.
#[repr(align(128))]
#[derive(Default, Debug)]
pub struct CoreStats {
    pub records: AtomicU64,
    pub record_bytes: AtomicU64,
    pub ring_full: AtomicU64,
    pub status_2xx: AtomicU64,
    pub status_3xx: AtomicU64,
    pub status_4xx: AtomicU64,
    pub status_5xx: AtomicU64,
    /// Rejections by reason, indexed like [`REJECT_REASONS`].
    pub rejects: [AtomicU64; 6],
    /// Records that took more than one ring slot.
    pub multi_slot: AtomicU64,
    pub conns_open: AtomicU64,
    pub conns_accepted: AtomicU64,
    pub conns_refused: AtomicU64,
    pub accept_errors: AtomicU64,
    pub msync_errors: AtomicU64,
    /// Connections closed because a request took longer than the head timeout (answered 408).
    pub request_timeouts: AtomicU64,
    /// Kept-alive connections closed after the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Redirects refused because the target host is not in `--redirect-allow`.
    pub redirects_refused: AtomicU64,
    /// Hits with `Sec-GPC: 1` answered but not stored (`--honor-gpc drop`).
    pub gpc_dropped: AtomicU64,
    /// PROXY-protocol connections closed, by reason (see `http::proxy::PROXY_ERROR_REASONS`).
    pub proxy_errors: [AtomicU64; 3],
    /// The ring's next sequence number, for occupancy (the consumer cursor is in the ring file).
    pub ring_head: AtomicU64,
    /// Bumped by the core's once-a-second timer; the systemd watchdog checks it moves.
    pub heartbeats: AtomicU64,
}

/// Rejection reasons in counter order.
pub const REJECT_REASONS: [Reject; 6] = [
    Reject::BadRequest,
    Reject::UriTooLong,
    Reject::HeaderTooLarge,
    Reject::VersionNotSupported,
    Reject::NotImplemented,
    Reject::PayloadTooLarge,
];

#[inline]
fn bump(c: &AtomicU64) {
    add(c, 1);
}

#[inline]
fn add(c: &AtomicU64, n: u64) {
    // Single writer per core: a load and a store, no locked instruction.
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl CoreStats {
    /// A record appended: the ring's next seq after it, and the slots it took (skipped slots
    /// at the ring's end included) of `slot_size` bytes.
    #[inline]
    pub fn recorded(&self, next_seq: u64, slots: u64, slot_size: usize) {
        bump(&self.records);
        self.ring_head.store(next_seq, Relaxed);
        add(&self.record_bytes, slots * slot_size as u64);
        if slots > 1 {
            bump(&self.multi_slot);
        }
    }

    #[inline]
    pub fn answered(&self, status: u16) {
        bump(match status {
            200..=299 => &self.status_2xx,
            300..=399 => &self.status_3xx,
            400..=499 => &self.status_4xx,
            _ => &self.status_5xx,
        });
    }

    pub fn ring_full(&self) {
        bump(&self.ring_full);
    }

    pub fn rejected(&self, reject: Reject) {
        let i = REJECT_REASONS
            .iter()
            .position(|r| *r == reject)
            .unwrap_or(0);
        bump(&self.rejects[i]);
        self.answered(reject.status());
    }

    pub fn msync_failed(&self, err: &std::io::Error) {
        bump(&self.msync_errors);
        crate::error!("msync of ring records failed, their answers were withheld: {err}");
    }

    pub fn conn_opened(&self) {
        bump(&self.conns_accepted);
        bump(&self.conns_open);
    }

    pub fn conn_closed(&self) {
        self.conns_open
            .store(self.conns_open.load(Relaxed).saturating_sub(1), Relaxed);
    }

    pub fn conn_refused(&self) {
        bump(&self.conns_refused);
    }

    pub fn timed_out(&self, mid_request: bool) {
        if mid_request {
            bump(&self.request_timeouts);
            self.answered(408);
        } else {
            bump(&self.idle_timeouts);
        }
    }

    pub fn redirect_refused(&self) {
        bump(&self.redirects_refused);
    }

    /// Counts a PROXY-protocol failure; `reason` indexes `http::proxy::PROXY_ERROR_REASONS`.
    pub fn proxy_error(&self, reason: usize) {
        bump(&self.proxy_errors[reason]);
    }

    /// Records that the core's event loop is alive (called from its timer).
    pub fn heartbeat(&self) {
        bump(&self.heartbeats);
    }

    pub fn gpc_dropped(&self) {
        bump(&self.gpc_dropped);
    }

    pub fn accept_error(&self) {
        bump(&self.accept_errors);
    }
}
