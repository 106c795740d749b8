//! wrk2's constant-rate schedule: request `i` of a connection is due at
//! `start + phase + i * interval`, whatever happened to the requests before it. Latency is
//! measured from that due time, so a stall delays every request planned during it.
//!
//! Sends are woken by a timerfd ([`super::pacer`]), not tokio's millisecond timer, so a
//! request leaves within microseconds of its due time and the corrected latency of an idle
//! server equals its uncorrected latency.

use std::time::{Duration, Instant};

/// The send plan of one connection in open-loop mode.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
    next: u64,
}

impl Schedule {
    /// Connection `index` of `connections` sharing `total_rate` requests per second: each gets
    /// `total_rate / connections`, and the phases are spread so sends do not come in bursts.
    pub fn new(start: Instant, total_rate: f64, connections: usize, index: usize) -> Schedule {
        let interval_ns = 1e9 * connections as f64 / total_rate;
        let phase = Duration::from_nanos((interval_ns * index as f64 / connections as f64) as u64);
        Schedule {
            start: start + phase,
            interval_ns,
            next: 0,
        }
    }

    /// When the next request is due.
    #[inline]
    pub fn due(&self) -> Instant {
        // Multiply from the start instead of adding intervals: no drift over long runs.
        self.start + Duration::from_nanos((self.interval_ns * self.next as f64) as u64)
    }

    /// Takes the next due time and moves on to the one after it.
    #[inline]
    pub fn take(&mut self) -> Instant {
        let due = self.due();
        self.next += 1;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_share_the_rate_with_spread_phases() {
        let t0 = Instant::now();
        // 1000 req/s over 4 connections: each every 4 ms, phases 0, 1, 2, 3 ms.
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|i| {
                let mut s = Schedule::new(t0, 1000.0, 4, i);
                (0..250).map(move |_| s.take() - t0).collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        assert_eq!(all.len(), 1000);
        for (k, d) in all.iter().enumerate() {
            let want = Duration::from_millis(k as u64);
            assert!(d.abs_diff(want) < Duration::from_micros(2), "{k}: {d:?}");
        }
    }

    #[test]
    fn due_does_not_move_until_taken() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10.0, 1, 0);
        assert_eq!(s.due(), t0);
        assert_eq!(s.take(), t0);
        assert_eq!(s.due() - t0, Duration::from_millis(100));
        for _ in 0..999 {
            s.take();
        }
        assert_eq!(s.due() - t0, Duration::from_secs(100));
    }
}
