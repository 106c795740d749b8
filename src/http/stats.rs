//! The HTTP layer's counters of one core: answers by status class, refusals by reason, timeouts,
//! privacy and PROXY-protocol outcomes. Single writer per core, like [`SinkStats`].
//!
//! [`SinkStats`]: crate::ingest::stats::SinkStats

use super::parse::Reject;
use super::proxy::ProxyError;
use crate::ingest::stats::bump;
use std::sync::atomic::AtomicU64;

/// One core's HTTP counters, on their own cache lines.
#[repr(align(128))]
#[derive(Default, Debug)]
pub struct HttpStats {
    pub status_2xx: AtomicU64,
    pub status_3xx: AtomicU64,
    pub status_4xx: AtomicU64,
    pub status_5xx: AtomicU64,
    /// Refusals before routing, one row per [`Reject`].
    pub rejects: [AtomicU64; Reject::COUNT],
    /// Connections closed because a request took longer than the head timeout (answered 408).
    pub request_timeouts: AtomicU64,
    /// Kept-alive connections closed after the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Redirects refused because the target host is not in `--redirect-allow`.
    pub redirects_refused: AtomicU64,
    /// Hits with `Sec-GPC: 1` answered but not stored (`--honor-gpc drop`).
    pub gpc_dropped: AtomicU64,
    /// PROXY-protocol connections closed, one row per [`ProxyError`].
    pub proxy_errors: [AtomicU64; ProxyError::COUNT],
}

impl HttpStats {
    #[inline]
    pub fn answered(&self, status: u16) {
        bump(match status {
            200..=299 => &self.status_2xx,
            300..=399 => &self.status_3xx,
            400..=499 => &self.status_4xx,
            _ => &self.status_5xx,
        });
    }

    pub fn rejected(&self, reject: Reject) {
        bump(&self.rejects[reject.index()]);
        self.answered(reject.status());
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

    pub fn proxy_error(&self, reason: ProxyError) {
        bump(&self.proxy_errors[reason.index()]);
    }

    pub fn gpc_dropped(&self) {
        bump(&self.gpc_dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn every_reject_and_proxy_error_has_its_own_row() {
        let stats = HttpStats::default();
        for (i, r) in Reject::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.rejected(*r);
            }
        }
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(
                stats.rejects[r.index()].load(Relaxed),
                i as u64 + 1,
                "{r:?}"
            );
        }
        for (i, e) in ProxyError::ALL.iter().enumerate() {
            for _ in 0..=i {
                stats.proxy_error(*e);
            }
        }
        let rows: Vec<u64> = stats.proxy_errors.iter().map(|c| c.load(Relaxed)).collect();
        assert_eq!(rows, [1, 2, 3]);
    }
}
