//! `glint decode`: not built yet (see its issue).

use std::process::ExitCode;

/// Options of `glint decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {}

/// Runs `glint decode`.
pub fn run(_args: DecodeArgs) -> Result<ExitCode, crate::BoxError> {
    Err("glint decode is not implemented yet".into())
}
