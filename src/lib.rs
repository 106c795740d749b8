//! glint: a high-throughput raw beacon collector.
//!
//! Data flow: a pinned worker per CPU accepts on its own `SO_REUSEPORT` listener
//! ([`server`]), parses HTTP/1.x with httparse ([`http`]), hands one fixed-size [`record`] per
//! request to its core's [`ingest`] sink, which appends it to its own memory-mapped [`ring`]
//! file, and only then answers with a canned pixel or 204. Each of these modules imports only
//! the ones after it in that sentence. The [`compact`] process merges the per-core rings into time-ordered,
//! indexed segment files; [`decode`] turns rings and segments into JSON Lines or CSV, labelling
//! each record's sender with [`agent`] (browser, mail proxy, scanner, bot) as it reads;
//! [`report`] summarises them as one self-contained HTML page;
//! [`ship`] delivers the segments' records to Kafka; [`loadgen`] measures it all; [`doctor`]
//! checks a machine against `tuning.md`.
//! [`uring_probe`] decides what the kernel's io_uring offers, for `serve` and `doctor` alike.
//!
//! Unsafe code lives only in `ring::raw` (the shared mmap), [`sys`] (libc calls) and the
//! io_uring driver in `server::uring`; every block carries a `// SAFETY:` comment.
//!
//! Modules:
//! - [`agent`]: what sent each request (browser, mail proxy, scanner, bot), decided when records are read.
//! - [`clock`]: wall-clock time, durations on the command line and the per-core HTTP `Date`.
//! - [`compact`]: `glint compact`: rings merged into time-ordered, indexed segment files.
//! - [`config_file`]: the `--config` TOML file, read one way for serve, doctor and ship.
//! - [`decode`]: `glint decode`: rings and segments as JSON Lines, CSV, TSV or Parquet; `--verify`, `--stats`.
//! - [`doctor`]: `glint doctor`: this machine against every knob of `tuning.md`.
//! - [`exposition`]: the Prometheus text format, written one way for serve's and ship's metrics.
//! - `enum_table`: enums that own a table (counters indexed by the enum, never by position).
//! - [`http`]: HTTP/1.x: bytes in, answers and records out, no socket.
//! - [`ingest`]: the per-core sink a request's record goes to.
//! - [`instance`]: the data dir's fleet identity (instance id and name).
//! - [`loadgen`]: `glint loadgen`: the wrk/wrk2-style load generator.
//! - [`log`]: one line per event on stderr, with a journald level prefix.
//! - [`notify`]: systemd's notify protocol: ready, stopping, watchdog, status.
//! - [`record`]: the beacon record: layout, encoding and validation.
//! - [`report`]: `glint report`: rings and segments as one self-contained HTML page.
//! - [`ring`]: per-core ring files: format, writer, reader, recovery.
//! - [`server`]: `glint serve`: listeners, workers, the two I/O backends, admin, shutdown.
//! - [`ship`]: `glint ship`: segments' records to Kafka or S3 (Parquet).
//! - [`sys`]: the few libc calls.
//! - [`units`]: byte sizes and latencies as people type and read them.
//! - [`uring_probe`]: what this kernel's io_uring offers, for serve and doctor.

pub mod agent;
pub mod clock;
pub mod compact;
pub mod config_file;
pub mod decode;
pub mod doctor;
mod enum_table;
pub mod exposition;
pub mod http;
pub mod ingest;
pub mod instance;
pub mod loadgen;
pub mod notify;
#[macro_use]
pub mod log;
pub mod record;
pub mod report;
pub mod ring;
pub mod server;
pub mod ship;
pub mod sys;
pub mod units;
pub mod uring_probe;

/// The error type the subcommands return to `main`, which prints it as one line.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
