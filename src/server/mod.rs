//! `glint serve`: not built yet.

use std::process::ExitCode;

/// Options of `glint serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `glint serve`.
pub fn run(_args: ServeArgs) -> Result<ExitCode, crate::BoxError> {
    Err("not yet".into())
}
