//! What this kernel's io_uring offers glint, decided in one place: `serve` builds its rings
//! with [`build_ring`] and chooses its backend with [`probe`], and `glint doctor` reports the
//! same [`probe`], so the two can never disagree on what a kernel supports or why it refuses.
//!
//! | Needed                                       | Since Linux |
//! |----------------------------------------------|-------------|
//! | `EXT_ARG` (wait with a timeout), `NODROP`    | 5.11        |
//! | `COOP_TASKRUN`, `TASKRUN_FLAG`, `SUBMIT_ALL`  | 5.19        |
//! | `SINGLE_ISSUER`, `DEFER_TASKRUN` (preferred) | 6.1         |

use io_uring::IoUring;
use std::io;

/// How completions of a ring get run: the kernel feature set it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskRun {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1+).
    Deferred,
    /// `COOP_TASKRUN | TASKRUN_FLAG` (Linux 5.19+).
    Cooperative,
}

/// Creates a ring with `entries` submission slots and the best task-running mode this kernel
/// offers; refuses a ring without the features glint's event loop relies on.
pub fn build_ring(entries: u32) -> io::Result<(IoUring, TaskRun)> {
    let deferred = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .setup_cqsize(entries * 4)
        .build(entries);
    let (ring, mode) = match deferred {
        Ok(ring) => (ring, TaskRun::Deferred),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let ring = IoUring::builder()
                .setup_coop_taskrun()
                .setup_taskrun_flag()
                .setup_submit_all()
                .setup_cqsize(entries * 4)
                .build(entries)?;
            (ring, TaskRun::Cooperative)
        }
        Err(e) => return Err(e),
    };
    check_features(
        ring.params().is_feature_ext_arg(),
        ring.params().is_feature_nodrop(),
    )?;
    Ok((ring, mode))
}

/// Refuses a ring without `EXT_ARG` (the loop's timed wait) or `NODROP` (no lost completions).
fn check_features(ext_arg: bool, nodrop: bool) -> io::Result<()> {
    if ext_arg && nodrop {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring lacks the EXT_ARG/NODROP features glint's backend needs (kernel 5.11+)",
        ))
    }
}

/// Creates and drops a small ring the way `serve` does; the error names the cause and errno.
pub fn probe() -> Result<TaskRun, String> {
    build_ring(8)
        .map(|(_, mode)| mode)
        .map_err(|e| explain_setup_error(&e))
}

/// Maps `io_uring_setup`'s errno to the setting that causes it.
pub fn explain_setup_error(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring_setup failed with ENOSYS: this kernel has no io_uring \
                               (built without CONFIG_IO_URING, or older than 5.1)"
            .into(),
        Some(errno @ (libc::EPERM | libc::EACCES)) => {
            let name = if errno == libc::EPERM {
                "EPERM"
            } else {
                "EACCES"
            };
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                "io_uring_setup failed with {name}: io_uring is refused to this process \
                 (sysctl kernel.io_uring_disabled = {sysctl}, or a seccomp filter such as a \
                 container's or a unit's SystemCallFilter=)"
            )
        }
        Some(libc::ENOMEM) => {
            let have = crate::sys::get_rlimit(libc::RLIMIT_MEMLOCK)
                .map(|(soft, _)| soft.to_string())
                .unwrap_or_else(|_| "unknown".into());
            format!(
                "io_uring_setup failed with ENOMEM: RLIMIT_MEMLOCK is too low for the ring \
                 ({have} bytes; kernels before 5.12 charge rings to it): raise it with \
                 `ulimit -l` or LimitMEMLOCK="
            )
        }
        Some(libc::EINVAL) => "io_uring_setup failed with EINVAL: this kernel lacks features \
                               glint needs (COOP_TASKRUN, SUBMIT_ALL and multishot accept: 5.19+)"
            .into(),
        None => err.to_string(),
        _ => format!("io_uring_setup failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(errno: i32) -> String {
        explain_setup_error(&io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn every_known_errno_names_itself_and_its_cause() {
        for (errno, name, cause) in [
            (libc::ENOSYS, "ENOSYS", "no io_uring"),
            (libc::EPERM, "EPERM", "kernel.io_uring_disabled"),
            (libc::EACCES, "EACCES", "kernel.io_uring_disabled"),
            (libc::ENOMEM, "ENOMEM", "RLIMIT_MEMLOCK"),
            (libc::EINVAL, "EINVAL", "5.19+"),
        ] {
            let msg = explain(errno);
            assert!(msg.contains(name) && msg.contains(cause), "{msg}");
        }
        assert!(explain(libc::EBADF).starts_with("io_uring_setup failed: "));
    }

    #[test]
    fn a_ring_without_ext_arg_or_nodrop_is_refused_with_the_kernel_it_needs() {
        assert!(check_features(true, true).is_ok());
        for (ext_arg, nodrop) in [(false, true), (true, false), (false, false)] {
            let err = check_features(ext_arg, nodrop).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Unsupported);
            let msg = explain_setup_error(&err);
            assert!(
                msg.contains("EXT_ARG/NODROP") && msg.contains("5.11+"),
                "{msg}"
            );
        }
    }

    #[test]
    fn probe_and_build_ring_agree() {
        match (probe(), build_ring(8)) {
            (Ok(mode), Ok((_, built))) => assert_eq!(mode, built),
            (Err(why), Err(e)) => assert_eq!(why, explain_setup_error(&e)),
            (p, b) => panic!("probe {p:?} but build_ring {:?}", b.map(|(_, m)| m)),
        }
    }
}
