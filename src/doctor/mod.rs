//! `glint doctor`: not built yet (see its issue).

use std::process::ExitCode;

/// Options of `glint doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

/// Runs `glint doctor`.
pub fn run(_args: DoctorArgs) -> Result<ExitCode, crate::BoxError> {
    Err("glint doctor is not implemented yet".into())
}
