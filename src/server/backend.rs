//! What both I/O backends (`epoll`, `uring`) share besides the [`Handler`](super::handler::Handler):
//! how they back off a failing accept and how long they linger over a closing connection.

use super::listener::is_resource_exhaustion;
use std::time::{Duration, Instant};

/// Pause before accepting again after running out of descriptors or memory: the connection
/// stays queued, so retrying at once would spin at 100% CPU.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one accept-failure warning per this long.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// How long a closing connection's unread input is drained, and how much of it: enough for
/// the answer in flight to arrive before the kernel could reset the connection.
pub const LINGER_TIME: Duration = Duration::from_millis(500);
pub const LINGER_BYTES: usize = 64 * 1024;

/// One listener's accept failures.
#[derive(Debug, Default)]
pub struct AcceptFailures {
    last_warning: Option<Instant>,
}

impl AcceptFailures {
    /// Judges a failed accept: whether to wait [`ACCEPT_BACKOFF`] before the next. Warns about
    /// such failures at most once every ten seconds.
    pub fn back_off(&mut self, err: &std::io::Error, now: Instant) -> bool {
        if !is_resource_exhaustion(err) {
            return false;
        }
        if self
            .last_warning
            .is_none_or(|t| now.saturating_duration_since(t) > ACCEPT_WARNING_EVERY)
        {
            crate::warn!(
                "accept failed ({err}); backing off {} ms",
                ACCEPT_BACKOFF.as_millis()
            );
            self.last_warning = Some(now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_only_when_out_of_descriptors_or_memory() {
        let mut failures = AcceptFailures::default();
        let now = Instant::now();
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let err = std::io::Error::from_raw_os_error(errno);
            assert!(failures.back_off(&err, now), "{err}");
        }
        for errno in [libc::ECONNABORTED, libc::EPERM] {
            let err = std::io::Error::from_raw_os_error(errno);
            assert!(!failures.back_off(&err, now), "{err}");
        }
    }
}
