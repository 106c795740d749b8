//! The `glint` binary: parse the command line, run the subcommand, map errors to exit codes.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glint: a high-throughput raw beacon collector.
#[derive(Parser)]
#[command(name = "glint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the collector: answer beacons and append one record per request to per-core rings.
    Serve(glint::server::ServeArgs),
    /// Merge the per-core rings into time-ordered, indexed segment files.
    Compact(glint::compact::CompactArgs),
    /// Deliver every record to Kafka, or as hourly Parquet objects to S3 (nothing lost).
    Ship(glint::ship::ShipArgs),
    /// Print rings and segments as JSON Lines, CSV or TSV; verify them; summarise them.
    Decode(glint::decode::DecodeArgs),
    /// Summarise rings and segments as one self-contained HTML page (charts, top lists, groups).
    Report(glint::report::ReportArgs),
    /// Generate HTTP load and report throughput and latency (wrk/wrk2 style).
    Loadgen(glint::loadgen::LoadgenArgs),
    /// Check this machine's settings against tuning.md (reads only).
    Doctor(glint::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let (name, result) = match Cli::parse().command {
        Command::Serve(a) => ("serve", glint::server::run(a)),
        Command::Compact(a) => ("compact", glint::compact::run(a)),
        Command::Ship(a) => ("ship", glint::ship::run(a)),
        Command::Decode(a) => ("decode", glint::decode::run(a)),
        Command::Report(a) => ("report", glint::report::run(a)),
        Command::Loadgen(a) => ("loadgen", glint::loadgen::run(a)),
        Command::Doctor(a) => ("doctor", glint::doctor::run(a)),
    };
    result.unwrap_or_else(|e| {
        glint::error!("glint {name}: {e}");
        ExitCode::from(1)
    })
}
