//! The shipper's counters and gauges, rendered as Prometheus text on its `--admin-listen`.
//!
//! Labels come from fixed sets only (core index, error kind), so a scrape's size is bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// How far one core's stream is behind what the compactor has committed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CoreLag {
    pub core: u32,
    /// Records committed to segments and not yet acknowledged by the brokers.
    pub records: u64,
    /// Age of the oldest such record (0 when caught up).
    pub seconds: f64,
}

/// Everything the admin listener reads; the shipper thread writes it.
#[derive(Debug, Default)]
pub struct ShipMetrics {
    pub records_shipped: AtomicU64,
    pub bytes_shipped: AtomicU64,
    /// Delivery failures that were retried (the record was produced again).
    pub errors_retried: AtomicU64,
    /// Deliveries the brokers called done without an offset; the record was produced again.
    pub unconfirmed: AtomicU64,
    /// Records larger than the brokers accept, written to the dead-letter file.
    pub dead_letter: AtomicU64,
    /// Records produced and not yet acknowledged.
    pub in_flight: AtomicU64,
    pub cursor_stores: AtomicU64,
    pub broker_up: AtomicBool,
    /// Broker losses since start.
    pub broker_losses: AtomicU64,
    /// Records that may be on the topic twice after a kill: the in-flight bound.
    pub duplicate_bound: AtomicU64,
    pub lag: Mutex<Vec<CoreLag>>,
}

impl ShipMetrics {
    /// Writes the text exposition format 0.0.4.
    pub fn render(&self, out: &mut String) {
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            out,
            "glint_ship_records_total",
            "Records acknowledged by the brokers.",
            self.records_shipped.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_bytes_total",
            "Message bytes (key and value) acknowledged by the brokers.",
            self.bytes_shipped.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP glint_ship_delivery_errors_total Messages the brokers did not take, by what was done: retried, produced again after a delivery without an offset (unconfirmed), or written to the dead-letter file (too large).\n# TYPE glint_ship_delivery_errors_total counter"
        );
        let _ = writeln!(
            out,
            "glint_ship_delivery_errors_total{{kind=\"retried\"}} {}",
            self.errors_retried.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "glint_ship_delivery_errors_total{{kind=\"unconfirmed\"}} {}",
            self.unconfirmed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "glint_ship_delivery_errors_total{{kind=\"too_large\"}} {}",
            self.dead_letter.load(Relaxed)
        );
        gauge(
            out,
            "glint_ship_in_flight",
            "Records produced and not yet acknowledged.",
            self.in_flight.load(Relaxed),
        );
        gauge(
            out,
            "glint_ship_duplicate_bound",
            "Most records that can reach the topic twice after a kill (produced past the durable cursor).",
            self.duplicate_bound.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_cursor_stores_total",
            "Durable writes of the ship cursor.",
            self.cursor_stores.load(Relaxed),
        );
        gauge(
            out,
            "glint_ship_broker_up",
            "1 while the brokers acknowledge, 0 after they were lost.",
            u64::from(self.broker_up.load(Relaxed)),
        );
        counter(
            out,
            "glint_ship_broker_losses_total",
            "Times the shipper lost the brokers.",
            self.broker_losses.load(Relaxed),
        );
        let lag = self.lag.lock().map(|l| l.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP glint_ship_lag_records Records committed to segments and not yet acknowledged, per core.\n# TYPE glint_ship_lag_records gauge"
        );
        for l in &lag {
            let _ = writeln!(
                out,
                "glint_ship_lag_records{{core=\"{}\"}} {}",
                l.core, l.records
            );
        }
        let _ = writeln!(
            out,
            "# HELP glint_ship_lag_seconds Age of the oldest record not yet acknowledged, per core.\n# TYPE glint_ship_lag_seconds gauge"
        );
        for l in &lag {
            let _ = writeln!(
                out,
                "glint_ship_lag_seconds{{core=\"{}\"}} {:.3}",
                l.core, l.seconds
            );
        }
    }
}
