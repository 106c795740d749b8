//! The io_uring backend: the shared connection code ([`crate::http::conn`]) on one ring per
//! core, driven directly with the `io-uring` crate.
//!
//! One `submit_and_wait` per loop turn submits everything queued and waits (at most until the
//! next 100 ms tick) for completions, which are then all handled. Listeners use multishot
//! accept; each connection receives into its own `Conn` buffer, and its answers go out with
//! one `MSG_WAITALL` send linked in front of the next recv, so a kept-alive request costs one
//! completion. The ring is created with `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1+), else
//! `COOP_TASKRUN` (5.19+). All unsafe code is in [`driver`].

#![deny(unsafe_code)]

mod connection;
#[allow(unsafe_code)]
mod driver;
mod event_loop;
mod op;

use super::Worker;

/// Checks that this process can create an io_uring; the error names the cause and the errno.
pub fn probe() -> Result<(), String> {
    driver::probe()
        .map(|_| ())
        .map_err(|e| explain_setup_error(&e))
}

/// Runs one worker on io_uring until shutdown.
pub fn run(worker: Worker) -> Result<(), crate::BoxError> {
    event_loop::run(worker)
}

fn explain_setup_error(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring_setup failed with ENOSYS: this kernel has no io_uring \
                               (built without CONFIG_IO_URING, or older than 5.1)"
            .into(),
        Some(libc::EPERM) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                "io_uring_setup failed with EPERM: io_uring is not allowed here \
                 (sysctl kernel.io_uring_disabled = {sysctl}, or a seccomp filter blocks it)"
            )
        }
        Some(libc::ENOMEM) => {
            let have = crate::sys::get_rlimit(libc::RLIMIT_MEMLOCK)
                .map(|(soft, _)| soft.to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                "io_uring_setup failed with ENOMEM: RLIMIT_MEMLOCK is too low \
                 ({have} bytes; raise it with `ulimit -l` or LimitMEMLOCK=)"
            )
        }
        Some(libc::EINVAL) => "io_uring_setup failed with EINVAL: this kernel lacks features \
                               glint needs (5.19+: multishot accept, COOP_TASKRUN, EXT_ARG)"
            .into(),
        _ => format!("io_uring_setup failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_explains_every_known_errno() {
        for (errno, name) in [
            (libc::ENOSYS, "ENOSYS"),
            (libc::EPERM, "EPERM"),
            (libc::ENOMEM, "ENOMEM"),
            (libc::EINVAL, "EINVAL"),
        ] {
            let msg = super::explain_setup_error(&std::io::Error::from_raw_os_error(errno));
            assert!(msg.contains(name), "{msg}");
        }
    }
}
