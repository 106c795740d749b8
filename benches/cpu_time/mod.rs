//! A criterion measurement of the bench thread's CPU time, beside criterion's wall clock: on a
//! machine shared with other work, wall-clock medians mostly measure the other work.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::time::Duration;

/// CPU time of the measuring thread (`CLOCK_THREAD_CPUTIME_ID`), shown like wall-clock time.
pub struct ThreadCpuTime {
    formatter: WallTime,
}

impl Default for ThreadCpuTime {
    fn default() -> Self {
        ThreadCpuTime {
            formatter: WallTime,
        }
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        glint::sys::thread_cpu_time()
    }
    fn end(&self, started: Duration) -> Duration {
        glint::sys::thread_cpu_time().saturating_sub(started)
    }
    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.formatter.formatter()
    }
}
