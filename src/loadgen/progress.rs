//! The one-line live progress indicator on stderr (only when stderr is a terminal).

use super::stats::LiveCounters;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redraws one stderr line from the threads' live counters.
pub struct Progress {
    live: Vec<Arc<LiveCounters>>,
    start: Instant,
    planned: Option<Duration>,
    last: (Instant, u64),
    enabled: bool,
}

impl Progress {
    pub fn new(
        live: Vec<Arc<LiveCounters>>,
        start: Instant,
        planned: Option<Duration>,
    ) -> Progress {
        Progress {
            live,
            start,
            planned,
            last: (start, 0),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Redraws the line with the rate since the previous tick.
    pub fn tick(&mut self) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let done: u64 = self.live.iter().map(|l| l.completed.load(Relaxed)).sum();
        let errors: u64 = self.live.iter().map(|l| l.errors.load(Relaxed)).sum();
        let dt = now.duration_since(self.last.0).as_secs_f64().max(1e-3);
        let rate = (done - self.last.1) as f64 / dt;
        self.last = (now, done);
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let of = self
            .planned
            .map_or(String::new(), |d| format!("/{:.0}s", d.as_secs_f64()));
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kloadgen: {elapsed:.1}s{of}  {done} answers  {rate:.0} req/s  {errors} errors"
        );
        let _ = err.flush();
    }

    /// Clears the line before the summary is printed.
    pub fn clear(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
