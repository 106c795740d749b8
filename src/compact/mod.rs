//! `glint compact`: merges the per-core rings into time-ordered, indexed, crash-safe segments.

#![forbid(unsafe_code)]

pub mod segment;

use std::process::ExitCode;

/// Options of `glint compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {}

/// Runs `glint compact`.
pub fn run(_args: CompactArgs) -> Result<ExitCode, crate::BoxError> {
    Err("glint compact is not implemented yet".into())
}
