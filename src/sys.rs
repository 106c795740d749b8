//! Thin wrappers over the few libc calls glint needs (the crate's other unsafe module besides
//! the ring map and the io_uring driver). Each returns `io::Result` and keeps errno handling here.
#![allow(unsafe_code)]

use std::io;
use std::path::Path;

/// Preallocates `len` bytes so later writes through a mmap cannot hit a full disk (SIGBUS).
pub fn posix_fallocate(fd: i32, len: libc::off_t) -> io::Result<()> {
    // SAFETY: plain syscall on a file descriptor the caller owns; no memory is passed.
    let rc = unsafe { libc::posix_fallocate(fd, 0, len) };
    // posix_fallocate returns the error number instead of setting errno.
    match rc {
        0 => Ok(()),
        err => Err(io::Error::from_raw_os_error(err)),
    }
}

/// Fills `buf` from the kernel's random source.
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable buffer.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} out of range"),
        ));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so CPU_SET stays inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; the pointer and size describe `set`.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs this process may run on, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is its empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this process; the pointer and size describe `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: every index is below CPU_SETSIZE, the size of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// A resource limit's (soft, hard) values; `u64::MAX` means unlimited.
pub fn get_rlimit(resource: libc::__rlimit_resource_t) -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the pointer refers to a live rlimit struct.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Sets a resource limit's soft value, keeping the hard value.
pub fn set_soft_rlimit(resource: libc::__rlimit_resource_t, soft: u64) -> io::Result<()> {
    let (_, hard) = get_rlimit(resource)?;
    let lim = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: the pointer refers to a live rlimit struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: statvfs is plain data; zeroed is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a live struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Takes an exclusive advisory lock on `file` without blocking; `Ok(false)` if another process holds it.
pub fn try_lock_exclusive(file: &std::fs::File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: plain syscall on a descriptor `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Checks, without writing anything, that this process may create files in `dir` (write and
/// search permission for the effective user, read-only mounts included).
pub fn check_dir_writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let mode = libc::W_OK | libc::X_OK;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; no memory is written.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// [`try_lock_exclusive`], retried for up to `wait`: a process that is exiting (or a fork that
/// has not yet exec'd and so still shares the descriptor) releases the lock a moment later.
pub fn lock_exclusive_within(file: &std::fs::File, wait: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if try_lock_exclusive(file)? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// CLOCK_MONOTONIC now: the clock `std::time::Instant` reads on Linux, and the one
/// [`timerfd_monotonic`] timers are set against.
pub fn monotonic_now() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the pointer refers to a live timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID): what the benches measure, so
/// their figures hold on a machine shared with other work.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the pointer refers to a live timespec; every Linux thread has this clock.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A new non-blocking, close-on-exec timerfd on CLOCK_MONOTONIC (disarmed), registered with the
/// current tokio reactor (call inside a runtime with I/O enabled). Reading it yields the expiry
/// count once it has fired; a read before that fails with `WouldBlock`.
pub fn timerfd_monotonic() -> io::Result<tokio::io::unix::AsyncFd<std::fs::File>> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall with constant flags; no memory is passed.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by timerfd_create, is open, and nothing else owns it.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: the File owns its descriptor: it stays open, and `as_raw_fd` returns that same
    // descriptor, until the AsyncFd (which owns the File) is dropped.
    unsafe { tokio::io::unix::AsyncFd::register(file) }.map_err(io::Error::from)
}

/// Arms `timer` (from [`timerfd_monotonic`]) to fire once when CLOCK_MONOTONIC reaches `at`
/// (absolute, so a late call never pushes the expiry later; a past `at` fires at once). Re-arming
/// replaces the previous expiry and clears an unread expiry count.
pub fn timerfd_set_absolute(
    timer: std::os::fd::BorrowedFd<'_>,
    at: std::time::Duration,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::timespec {
        // An expiry of zero would disarm the timer; CLOCK_MONOTONIC is never zero after boot.
        tv_sec: libc::time_t::try_from(at.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: at.subsec_nanos().max(u32::from(at.is_zero())) as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    // SAFETY: `timer` is an open descriptor for the call's duration; `spec` is a live
    // itimerspec and a null old-value pointer is allowed.
    let rc = unsafe {
        libc::timerfd_settime(
            timer.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME,
            &spec,
            std::ptr::null_mut(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
