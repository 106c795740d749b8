//! When the compactor runs its next cycle.
//!
//! A cycle takes at most one ring's capacity from each ring, then commits (fdatasync) and
//! moves the ring cursors, which gives the server its slots back. While a ring still has
//! records after a full cycle, the next cycle starts at once ([`wait_before_next`]): the
//! compactor's throughput is bounded by its CPU and disk, not by `--interval`. Only when every
//! ring is caught up does it wait, so cycles start at most `--interval` apart, and even then
//! the wait ends early ([`wait`], checking every [`POLL`]) as soon as a ring holds
//! [`wake_at`] records, a quarter of it, so a ring does not fill while the compactor sleeps.
//! Before this a cycle took at most one ring capacity and then slept the whole interval, so
//! a 65,536-slot ring could not move more than 65,536 records per second and a faster server
//! got 503s.

use super::cycle::CycleReport;
use super::merge::Stopped;
use std::time::{Duration, Instant};

/// Records waiting in a ring that end a caught-up compactor's wait: a quarter of the ring (at
/// least 1), so three quarters are still free when the cycle starts.
pub fn wake_at(capacity: u64) -> u64 {
    (capacity / 4).max(1)
}

/// Whether some ring gave a whole cycle's budget (its capacity) and may hold more.
pub fn behind(report: &CycleReport) -> bool {
    report
        .lag
        .iter()
        .any(|(_, s)| matches!(s, Some(Stopped::Budget)))
}

/// How long to wait after a cycle that began `took` ago: nothing while a ring is behind, else
/// what is left of `interval`.
pub fn wait_before_next(report: &CycleReport, interval: Duration, took: Duration) -> Duration {
    if behind(report) {
        Duration::ZERO
    } else {
        interval.saturating_sub(took)
    }
}

/// How often a wait checks whether a ring is filling (one slot read per ring).
pub const POLL: Duration = Duration::from_millis(20);

/// Waits up to `max`, ending early when `ring_filling` says a ring holds [`wake_at`] records
/// or a stop signal arrives on `stop`; returns whether a stop arrived.
pub fn wait(
    max: Duration,
    stop: &crossbeam_channel::Receiver<()>,
    mut ring_filling: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + max;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || ring_filling() {
            return false;
        }
        match stop.recv_timeout(left.min(POLL)) {
            Ok(()) => return true,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left.min(POLL))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lag: Vec<Option<Stopped>>) -> CycleReport {
        CycleReport {
            lag: lag
                .into_iter()
                .enumerate()
                .map(|(c, s)| (c as u32, s))
                .collect(),
            ..CycleReport::default()
        }
    }

    #[test]
    fn a_ring_behind_means_no_wait_and_caught_up_means_the_rest_of_the_interval() {
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        let behind = report(vec![None, Some(Stopped::Budget)]);
        assert_eq!(wait_before_next(&behind, second, ms(10)), Duration::ZERO);
        let caught_up = report(vec![None, None]);
        assert_eq!(wait_before_next(&caught_up, second, ms(300)), ms(700));
        assert_eq!(
            wait_before_next(&caught_up, second, ms(1500)),
            Duration::ZERO
        );
        // A stalled (corrupt) ring is not "behind": retrying at once would not help it.
        let stalled = report(vec![Some(Stopped::Corrupt("x".into()))]);
        assert_eq!(wait_before_next(&stalled, second, ms(0)), second);
        assert_eq!(wait_before_next(&report(vec![]), second, ms(0)), second);
    }

    #[test]
    fn a_wait_ends_when_a_ring_fills_or_at_a_stop_and_else_lasts_its_time() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let long = Duration::from_secs(30);
        let mut polls = 0;
        let t = Instant::now();
        assert!(!wait(long, &rx, || {
            polls += 1;
            polls == 3
        }));
        assert!(polls == 3 && t.elapsed() < long);
        tx.send(()).unwrap();
        assert!(wait(long, &rx, || false));
        let t = Instant::now();
        assert!(!wait(Duration::from_millis(50), &rx, || false));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_wait_ends_at_a_quarter_ring() {
        assert_eq!(wake_at(65_536), 16_384);
        assert_eq!(wake_at(2), 1);
        assert_eq!(wake_at(1 << 32), 1 << 30);
    }
}
