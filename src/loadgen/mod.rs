//! `glint loadgen`: not built yet (see its issue).

use std::process::ExitCode;

/// Options of `glint loadgen`.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {}

/// Runs `glint loadgen`.
pub fn run(_args: LoadgenArgs) -> Result<ExitCode, crate::BoxError> {
    Err("glint loadgen is not implemented yet".into())
}
