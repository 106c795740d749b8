//! The io_uring backend: not built yet.

use super::Worker;

/// Checks that this process can create an io_uring; the error says why not.
pub fn probe() -> Result<(), String> {
    Err("the io_uring backend is not built yet".into())
}

/// Runs one worker on io_uring.
pub fn run(_worker: Worker) -> Result<(), crate::BoxError> {
    Err("the io_uring backend is not built yet".into())
}
