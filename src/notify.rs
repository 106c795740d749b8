//! systemd's notify protocol (`READY=1`, `STOPPING=1`, `WATCHDOG=1`): not built yet.
