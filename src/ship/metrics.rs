//! The shipper's counters and gauges, rendered as Prometheus text on its `--admin-listen`:
//! [`ShipMetrics`] for the Kafka sink, [`LakeMetrics`] for the S3 sink. Both name shipped
//! records `glint_ship_records_total` and lag `glint_ship_lag_*`, so one dashboard serves both.
//!
//! Labels come from fixed sets only (core index, error or upload kind), so a scrape's size is
//! bounded.

use crate::exposition::{family, single};
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

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    single(out, name, "counter", help, v);
}

fn gauge(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    single(out, name, "gauge", help, v);
}

/// `glint_ship_lag_records` and `glint_ship_lag_seconds` per core; `done` says what the sink
/// counts as shipped.
fn render_lag(out: &mut String, lag: &Mutex<Vec<CoreLag>>, done: &str) {
    let lag = lag.lock().map(|l| l.clone()).unwrap_or_default();
    family(
        out,
        "glint_ship_lag_records",
        "gauge",
        &format!("Records committed to segments and not yet {done}, per core."),
    );
    for l in &lag {
        let _ = writeln!(
            out,
            "glint_ship_lag_records{{core=\"{}\"}} {}",
            l.core, l.records
        );
    }
    family(
        out,
        "glint_ship_lag_seconds",
        "gauge",
        &format!("Age of the oldest record not yet {done}, per core."),
    );
    for l in &lag {
        let _ = writeln!(
            out,
            "glint_ship_lag_seconds{{core=\"{}\"}} {:.3}",
            l.core, l.seconds
        );
    }
}

impl ShipMetrics {
    /// Writes the text exposition format 0.0.4.
    pub fn render(&self, out: &mut String) {
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
        family(
            out,
            "glint_ship_delivery_errors_total",
            "counter",
            "Messages the brokers did not take, by what was done: retried, produced again after a delivery without an offset (unconfirmed), or written to the dead-letter file (too large).",
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
        render_lag(out, &self.lag, "acknowledged");
    }
}

/// The S3 sink's counters and gauges; the sink thread writes them.
#[derive(Debug, Default)]
pub struct LakeMetrics {
    /// Objects uploaded in one PUT.
    pub objects_put: AtomicU64,
    /// Objects uploaded as a multipart upload.
    pub objects_multipart: AtomicU64,
    pub parts: AtomicU64,
    pub bytes: AtomicU64,
    /// Rows in the uploaded objects.
    pub records: AtomicU64,
    /// Uploads that failed (each retried with back-off).
    pub upload_errors: AtomicU64,
    pub store_up: AtomicBool,
    /// Unix time (ns) of the last completed upload; 0 before the first.
    pub last_upload_ns: AtomicU64,
    /// Records read from the segments and waiting in spool files for their upload.
    pub spooled: AtomicU64,
    pub cursor_stores: AtomicU64,
    pub lag: Mutex<Vec<CoreLag>>,
}

impl LakeMetrics {
    /// Writes the text exposition format 0.0.4.
    pub fn render(&self, out: &mut String) {
        family(
            out,
            "glint_ship_objects_total",
            "counter",
            "Parquet objects uploaded, by upload kind.",
        );
        let _ = writeln!(
            out,
            "glint_ship_objects_total{{upload=\"put\"}} {}",
            self.objects_put.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "glint_ship_objects_total{{upload=\"multipart\"}} {}",
            self.objects_multipart.load(Relaxed)
        );
        counter(
            out,
            "glint_ship_multipart_parts_total",
            "Parts of completed multipart uploads.",
            self.parts.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_bytes_total",
            "Bytes of the Parquet objects uploaded.",
            self.bytes.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_records_total",
            "Records (rows) in the Parquet objects uploaded.",
            self.records.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_upload_errors_total",
            "Uploads that failed; each is retried with back-off and the cursor waits.",
            self.upload_errors.load(Relaxed),
        );
        gauge(
            out,
            "glint_ship_store_up",
            "1 while the object store takes uploads, 0 after an upload failed.",
            u64::from(self.store_up.load(Relaxed)),
        );
        let last = self.last_upload_ns.load(Relaxed);
        gauge(
            out,
            "glint_ship_last_upload_timestamp_seconds",
            "Unix time of the last completed upload (0 before the first).",
            format_args!(
                "{}.{:03}",
                last / 1_000_000_000,
                last % 1_000_000_000 / 1_000_000
            ),
        );
        gauge(
            out,
            "glint_ship_spooled_records",
            "Records read from the segments, waiting in spool files for their window's upload.",
            self.spooled.load(Relaxed),
        );
        counter(
            out,
            "glint_ship_cursor_stores_total",
            "Durable writes of the ship cursor.",
            self.cursor_stores.load(Relaxed),
        );
        render_lag(out, &self.lag, "uploaded");
    }
}
