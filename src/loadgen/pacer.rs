//! Open-loop send timing with microsecond precision: a connection's [`Schedule`] plus a
//! CLOCK_MONOTONIC timerfd armed at the next due time (absolute, so arming late never shifts the
//! plan). tokio's timer rounds wake-ups to whole milliseconds, which made every request up to
//! 1 ms late: the corrected percentiles measured the timer, not the server. The timerfd fires
//! within microseconds of the due time; the connection then sends every request that is due,
//! each stamped with its planned time, so corrected and uncorrected latency agree when nothing
//! stalls.

use super::schedule::Schedule;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Instant;
use tokio::io::unix::AsyncFd;

/// One connection's schedule and the timer that wakes it for the next due request.
pub struct Pacer {
    schedule: Schedule,
    timer: AsyncFd<File>,
    /// The due time the timer is armed for, if armed.
    armed: Option<Instant>,
}

impl Pacer {
    /// Needs a tokio runtime with I/O enabled (the timer is registered with its reactor).
    pub fn new(schedule: Schedule) -> io::Result<Pacer> {
        Ok(Pacer {
            schedule,
            timer: crate::sys::timerfd_monotonic()?,
            armed: None,
        })
    }

    /// When the next request is due.
    #[inline]
    pub fn due(&self) -> Instant {
        self.schedule.due()
    }

    /// Takes the next due time (the request's planned send time) and moves on.
    #[inline]
    pub fn take(&mut self) -> Instant {
        self.schedule.take()
    }

    /// Arms the timer for the next due time, unless it already is.
    pub fn arm(&mut self) -> io::Result<()> {
        let due = self.schedule.due();
        if self.armed == Some(due) {
            return Ok(());
        }
        // Instant has no public CLOCK_MONOTONIC value: carry the distance over to the clock,
        // reading the clock second so the expiry is never before `due`.
        let now = Instant::now();
        let at = crate::sys::monotonic_now() + due.saturating_duration_since(now);
        crate::sys::timerfd_set_absolute(self.timer.get_ref().as_fd(), at)?;
        self.armed = Some(due);
        Ok(())
    }

    /// Waits until the armed timer fires (at once if it already has). Cancel-safe.
    pub async fn fired(&self) -> io::Result<()> {
        loop {
            let mut ready = self.timer.readable().await?;
            let mut count = [0u8; 8];
            match ready.get_inner().read(&mut count) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.clear_ready(),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn fires_at_each_due_time_never_before() {
        runtime().block_on(async {
            let t0 = Instant::now() + Duration::from_millis(5);
            let mut p = Pacer::new(Schedule::new(t0, 2000.0, 1, 0)).unwrap();
            for _ in 0..20 {
                p.arm().unwrap();
                p.fired().await.unwrap();
                let (now, due) = (Instant::now(), p.due());
                assert!(now >= due, "woke {:?} before its due time", due - now);
                assert_eq!(p.take(), due);
            }
            assert!(p.due() >= t0 + Duration::from_millis(10));
        });
    }

    #[test]
    fn a_past_due_time_fires_at_once_and_rearming_the_same_time_is_free() {
        runtime().block_on(async {
            let start = Instant::now() - Duration::from_secs(1);
            let mut p = Pacer::new(Schedule::new(start, 10.0, 1, 0)).unwrap();
            p.arm().unwrap();
            p.arm().unwrap();
            tokio::time::timeout(Duration::from_secs(5), p.fired())
                .await
                .expect("a due time in the past fires at once")
                .unwrap();
        });
    }
}
