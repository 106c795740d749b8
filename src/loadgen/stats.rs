//! What one thread measures: two latency histograms (from the planned and from the actual send
//! time), request outcome counters, and the acknowledged-id log. Merged once at the end.

use hdrhistogram::Histogram;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Highest latency a histogram tracks exactly (larger values are clamped to it).
const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// Ways a request or connection can fail, besides a non-2xx status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection could not be opened (counted per attempt).
    Connect,
    /// The connection failed or closed while answers were outstanding.
    Read,
    /// The request could not be written.
    Write,
    /// No answer within --timeout.
    Timeout,
    /// The answer could not be framed (malformed, chunked, no length, unsolicited).
    Protocol,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub protocol: u64,
}

impl ErrorCounts {
    fn add(&mut self, kind: ErrorKind, n: u64) {
        *match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Read => &mut self.read,
            ErrorKind::Write => &mut self.write,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Protocol => &mut self.protocol,
        } += n;
    }

    /// Errors of requests that were sent (connect failures are attempts, not requests).
    pub fn request_errors(&self) -> u64 {
        self.read + self.write + self.timeout + self.protocol
    }
}

/// Counters the progress line reads while the run goes on; one writer (its thread).
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    // Single writer: a load and a store, no locked instruction on the hot path.
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// Everything one thread measured.
pub struct ThreadStats {
    /// Nanoseconds from the planned send time to the complete answer (coordinated omission
    /// corrected; equal to `uncorrected` in closed loop).
    pub latency: Histogram<u64>,
    /// Nanoseconds from the actual send to the complete answer.
    pub uncorrected: Histogram<u64>,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub in_flight: u64,
    /// Answers by status code, indexed 0..=999.
    pub by_status: Vec<u64>,
    pub errors: ErrorCounts,
    pub bytes_read: u64,
    pub bytes_written: u64,
    acked: Option<BufWriter<File>>,
    acked_error: Option<String>,
}

impl ThreadStats {
    pub fn new(acked: Option<File>) -> ThreadStats {
        let hist = || Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("valid bounds");
        ThreadStats {
            latency: hist(),
            uncorrected: hist(),
            sent: 0,
            completed: 0,
            ok: 0,
            in_flight: 0,
            by_status: vec![0; 1000],
            errors: ErrorCounts::default(),
            bytes_read: 0,
            bytes_written: 0,
            acked: acked.map(|f| BufWriter::with_capacity(64 * 1024, f)),
            acked_error: None,
        }
    }

    pub fn sent(&mut self, n: u64, bytes: usize) {
        self.sent += n;
        self.in_flight += n;
        self.bytes_written += bytes as u64;
    }

    /// One complete answer to the request with id `id`.
    #[inline]
    pub fn answered(
        &mut self,
        live: &LiveCounters,
        status: u16,
        id: u64,
        corrected: Duration,
        uncorrected: Duration,
    ) {
        self.in_flight -= 1;
        self.completed += 1;
        self.by_status[usize::from(status).min(999)] += 1;
        self.latency.saturating_record(nanos(corrected));
        self.uncorrected.saturating_record(nanos(uncorrected));
        bump(&live.completed, 1);
        if (200..300).contains(&status) {
            self.ok += 1;
            self.log_ack(id);
        }
    }

    /// `n` requests (or connect attempts) failed with `kind`.
    pub fn failed(&mut self, live: &LiveCounters, kind: ErrorKind, n: u64) {
        if kind != ErrorKind::Connect {
            self.in_flight -= n;
        }
        self.errors.add(kind, n);
        bump(&live.errors, n);
    }

    fn log_ack(&mut self, id: u64) {
        let Some(out) = &mut self.acked else { return };
        let mut line = Vec::with_capacity(24);
        super::templates::write_decimal(id, &mut line);
        line.push(b'\n');
        // One write_all per line: with O_APPEND and a buffer larger than a line, lines never interleave.
        if let Err(e) = out.write_all(&line) {
            self.acked_error = Some(e.to_string());
            self.acked = None;
        }
    }

    /// Flushes the acked-id log; returns its first error.
    pub fn finish_acked(&mut self) -> Option<String> {
        if let Some(mut out) = self.acked.take() {
            if let Err(e) = out.flush() {
                self.acked_error.get_or_insert(e.to_string());
            }
        }
        self.acked_error.take()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ThreadStats) {
        self.latency.add(&other.latency).expect("same bounds");
        self.uncorrected
            .add(&other.uncorrected)
            .expect("same bounds");
        self.sent += other.sent;
        self.completed += other.completed;
        self.ok += other.ok;
        self.in_flight += other.in_flight;
        for (a, b) in self.by_status.iter_mut().zip(&other.by_status) {
            *a += b;
        }
        let e = &other.errors;
        for (kind, n) in [
            (ErrorKind::Connect, e.connect),
            (ErrorKind::Read, e.read),
            (ErrorKind::Write, e.write),
            (ErrorKind::Timeout, e.timeout),
            (ErrorKind::Protocol, e.protocol),
        ] {
            self.errors.add(kind, n);
        }
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_add_up_and_merge() {
        let live = LiveCounters::default();
        let mut a = ThreadStats::new(None);
        a.sent(3, 300);
        a.answered(
            &live,
            200,
            1,
            Duration::from_micros(90),
            Duration::from_micros(50),
        );
        a.answered(
            &live,
            503,
            2,
            Duration::from_micros(10),
            Duration::from_micros(10),
        );
        a.failed(&live, ErrorKind::Timeout, 1);
        a.failed(&live, ErrorKind::Connect, 4);
        let mut b = ThreadStats::new(None);
        b.sent(1, 100);
        b.merge(&a);
        assert_eq!((b.sent, b.completed, b.ok, b.in_flight), (4, 2, 1, 1));
        assert_eq!((b.by_status[200], b.by_status[503]), (1, 1));
        assert_eq!((b.errors.timeout, b.errors.connect), (1, 4));
        assert_eq!(
            b.sent,
            b.completed + b.errors.request_errors() + b.in_flight
        );
        assert!(b.latency.max() > b.uncorrected.max());
        assert_eq!(live.completed.load(Relaxed), 2);
    }
}
