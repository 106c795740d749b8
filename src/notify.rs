//! systemd's notify protocol (`READY=1`, `STOPPING=1`, `WATCHDOG=1`); placeholder until the
//! operations work lands: every call is a no-op.

/// Tells systemd the service is ready.
pub fn ready() {}

/// Tells systemd the service is stopping.
pub fn stopping() {}
