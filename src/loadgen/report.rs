//! The run summary: one [`Summary`] value, printed as wrk-like text or as one JSON object.

use super::args::Plan;
use super::stats::{ErrorCounts, ThreadStats};
use crate::units::{format_bytes_wrk, format_micros_wrk};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Latency figures in microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: f64| (ns / 1000.0 * 100.0).round() / 100.0;
        let q = |p: f64| us(h.value_at_quantile(p) as f64);
        Latency {
            mean: us(h.mean()),
            stdev: us(h.stdev()),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: us(h.max() as f64),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestCounts {
    /// Requests written to a socket.
    pub sent: u64,
    /// Requests that got a complete answer (any status).
    pub completed: u64,
    /// Complete answers with a 2xx status.
    pub ok_2xx: u64,
    /// Complete answers with any other status.
    pub non_2xx: u64,
    /// Sent but neither answered nor failed when the run stopped.
    pub in_flight_at_end: u64,
}

/// Everything the run measured; `sent = completed + request errors + in_flight_at_end`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub url: String,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    /// "closed" (next request when an answer arrives) or "open" (constant rate, -R).
    pub mode: &'static str,
    pub target_rate: Option<f64>,
    pub duration_s: f64,
    /// True when Ctrl-C (SIGINT) ended the run early.
    pub interrupted: bool,
    pub requests: RequestCounts,
    pub requests_per_sec: f64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bytes_per_sec: f64,
    /// From the planned send time (coordinated omission corrected); same as uncorrected in closed loop.
    pub latency_us: Latency,
    /// From the actual send time.
    pub latency_uncorrected_us: Latency,
    pub errors: ErrorCounts,
    /// Complete answers by status code.
    pub status: BTreeMap<u16, u64>,
    #[serde(skip)]
    spectrum: Vec<(f64, f64, f64)>,
}

impl Summary {
    pub fn new(plan: &Plan, stats: &ThreadStats, elapsed: Duration, interrupted: bool) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let status: BTreeMap<u16, u64> = (0..stats.by_status.len())
            .filter(|&s| stats.by_status[s] > 0)
            .map(|s| (s as u16, stats.by_status[s]))
            .collect();
        let spectrum = [
            50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
        ]
        .iter()
        .map(|&p| {
            let at = |h: &Histogram<u64>| h.value_at_percentile(p) as f64 / 1000.0;
            (p, at(&stats.latency), at(&stats.uncorrected))
        })
        .collect();
        Summary {
            url: plan.target.url.clone(),
            threads: plan.threads,
            connections: plan.connections,
            pipeline: plan.pipeline,
            mode: if plan.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            target_rate: plan.rate,
            duration_s: (secs * 1000.0).round() / 1000.0,
            interrupted,
            requests: RequestCounts {
                sent: stats.sent,
                completed: stats.completed,
                ok_2xx: stats.ok,
                non_2xx: stats.completed - stats.ok,
                in_flight_at_end: stats.in_flight,
            },
            requests_per_sec: (stats.completed as f64 / secs * 100.0).round() / 100.0,
            bytes_read: stats.bytes_read,
            bytes_written: stats.bytes_written,
            read_bytes_per_sec: (stats.bytes_read as f64 / secs).round(),
            latency_us: Latency::of(&stats.latency),
            latency_uncorrected_us: Latency::of(&stats.uncorrected),
            errors: stats.errors,
            status,
            spectrum,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("summary serialises")
    }

    /// The wrk-like text report; `detailed` adds the percentile spectrum (--latency).
    pub fn text(&self, detailed: bool) -> String {
        let mut o = String::new();
        let mode = match self.target_rate {
            Some(r) => format!("open loop at {r} req/s"),
            None => "closed loop".into(),
        };
        let _ = writeln!(
            o,
            "  {} threads and {} connections, {mode}, pipeline {}{}",
            self.threads,
            self.connections,
            self.pipeline,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "  {:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "Latency", "mean", "stdev", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        let open = self.target_rate.is_some();
        let mut rows = vec![(if open { "corrected" } else { "" }, &self.latency_us)];
        if open {
            rows.push(("uncorrected", &self.latency_uncorrected_us));
        }
        for (name, l) in rows {
            let _ = write!(o, "  {name:<22}");
            for v in [
                l.mean, l.stdev, l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max,
            ] {
                let _ = write!(o, "{:>10}", format_micros_wrk(v));
            }
            o.push('\n');
        }
        if detailed {
            self.spectrum_text(&mut o, open);
        }
        self.counts_text(&mut o);
        o
    }

    fn spectrum_text(&self, o: &mut String, open: bool) {
        let _ = writeln!(
            o,
            "  Latency distribution ({})",
            if open {
                "corrected / uncorrected"
            } else {
                "percentile"
            }
        );
        for &(p, c, u) in &self.spectrum {
            let _ = write!(o, "  {:>9}%{:>12}", p, format_micros_wrk(c));
            if open {
                let _ = write!(o, "{:>12}", format_micros_wrk(u));
            }
            o.push('\n');
        }
    }

    fn counts_text(&self, o: &mut String) {
        let r = &self.requests;
        let _ = writeln!(
            o,
            "  {} requests in {:.2}s, {} read ({} sent, {} in flight at end)",
            r.completed,
            self.duration_s,
            format_bytes_wrk(self.bytes_read as f64),
            r.sent,
            r.in_flight_at_end
        );
        if r.non_2xx > 0 {
            let by: Vec<String> = self
                .status
                .iter()
                .filter(|(s, _)| !(200..300).contains(*s))
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            let _ = writeln!(o, "  Non-2xx responses: {} ({})", r.non_2xx, by.join(", "));
        }
        let e = &self.errors;
        if e.connect + e.request_errors() > 0 {
            let _ = writeln!(
                o,
                "  Socket errors: connect {}, read {}, write {}, timeout {}, protocol {}",
                e.connect, e.read, e.write, e.timeout, e.protocol
            );
        }
        let _ = writeln!(o, "Requests/sec: {:>12.2}", self.requests_per_sec);
        let _ = writeln!(
            o,
            "Transfer/sec: {:>12}",
            format_bytes_wrk(self.read_bytes_per_sec)
        );
    }
}
