//! The glint serving a data dir, and the resource limits it really runs with.
//!
//! Doctor's own limits are its shell's, not the service's: systemd sets `LimitNOFILE=` and
//! `LimitMEMLOCK=` for the unit, and lowers them silently when it lacks CAP_SYS_RESOURCE. So when
//! a glint is serving the data dir, its limits are read from `/proc/PID/limits`. The PID comes
//! from the data dir's lock ([`crate::server::DATA_DIR_LOCK`], held with flock by the serving
//! process, listed in `/proc/locks` by device and inode), else from `systemctl show -p MainPID
//! glint` when systemd runs the box.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the shipped `systemd/glint.service` asks for (a test keeps them equal to the file).
pub const UNIT_LIMIT_NOFILE: u64 = 1_048_576;
/// `LimitMEMLOCK=infinity`.
pub const UNIT_LIMIT_MEMLOCK: u64 = u64::MAX;

/// A running glint whose limits doctor judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    pub pid: u32,
    /// How it was found, for the table: "holds DIR/.serve.lock" or "glint.service MainPID".
    pub found_by: String,
    /// (soft, hard) from `/proc/PID/limits`; `u64::MAX` is unlimited.
    pub nofile: Option<(u64, u64)>,
    pub memlock: Option<(u64, u64)>,
}

/// The glint serving `data_dir`, if one is and its limits can be read.
pub fn find(data_dir: &Path) -> Option<Serving> {
    let lock = lock_path(data_dir);
    let (pid, found_by) = match lock_holder(&lock) {
        Some(pid) => (pid, format!("holds {}", lock.display())),
        None => {
            let pid = systemd_main_pid()?;
            // A glint.service serving another data dir is not the one to judge.
            if std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok()
                && !std::fs::canonicalize(&lock).is_ok_and(|l| has_open(pid, &l))
            {
                return None;
            }
            (pid, "glint.service MainPID".to_string())
        }
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    Some(Serving {
        pid,
        found_by,
        nofile: limit(&limits, "Max open files"),
        memlock: limit(&limits, "Max locked memory"),
    })
}

/// The process holding the flock on `lock`: the `/proc/locks` entry with its device and inode.
/// On overlayfs the device `stat` shows is not the one the lock is listed under, so failing an
/// exact match, a holder of a lock on the same inode number is taken if it is a glint (its
/// `comm`, readable even when the service is not dumpable) or has `lock` open.
fn lock_holder(lock: &Path) -> Option<u32> {
    let meta = std::fs::metadata(lock).ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let holders = flock_holders(&table);
    let dev = (dev_major(meta.dev()), dev_minor(meta.dev()));
    if let Some(h) = holders.iter().find(|h| h.dev == dev && h.ino == meta.ino()) {
        return Some(h.pid);
    }
    let lock = std::fs::canonicalize(lock).ok()?;
    holders
        .iter()
        .filter(|h| h.ino == meta.ino())
        .map(|h| h.pid)
        .find(|&pid| is_glint(pid) || has_open(pid, &lock))
}

/// Whether process `pid` runs glint (its main thread's name).
fn is_glint(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "glint")
}

/// One granted flock in `/proc/locks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlockHolder {
    pub pid: u32,
    /// (major, minor) of the device, as the kernel prints them (hex).
    pub dev: (u32, u32),
    pub ino: u64,
}

/// The granted FLOCK entries of a `/proc/locks` text (`N: FLOCK ADVISORY WRITE PID
/// MAJ:MIN:INO START END`); waiters (`N: -> FLOCK ...`) and malformed lines are skipped.
pub fn flock_holders(table: &str) -> Vec<FlockHolder> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, "FLOCK", _, _, pid, id, ..] = fields.as_slice() else {
                return None;
            };
            let mut parts = id.split(':');
            let major = u32::from_str_radix(parts.next()?, 16).ok()?;
            let minor = u32::from_str_radix(parts.next()?, 16).ok()?;
            let ino = parts.next()?.parse().ok()?;
            Some(FlockHolder {
                pid: pid.parse().ok().filter(|&p| p > 0)?,
                dev: (major, minor),
                ino,
            })
        })
        .collect()
}

/// Linux's dev_t encoding (glibc `gnu_dev_major`/`gnu_dev_minor`).
fn dev_major(dev: u64) -> u32 {
    (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)) as u32
}

fn dev_minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32
}

/// Whether process `pid` has `path` open (false when its fds cannot be read).
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == path))
}

/// `systemctl show -p MainPID --value glint` on a box booted with systemd; None when glint.service
/// is not running (MainPID 0) or there is no systemd.
fn systemd_main_pid() -> Option<u32> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    let out = std::process::Command::new("systemctl")
        .args(["show", "-p", "MainPID", "--value", "glint"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

/// (soft, hard) of one `/proc/PID/limits` row such as `Max open files  1024  4096  files`.
pub fn limit(limits: &str, name: &str) -> Option<(u64, u64)> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(name))?;
    let mut values = rest.split_whitespace().map(|v| match v {
        "unlimited" => Some(u64::MAX),
        v => v.parse().ok(),
    });
    Some((values.next()??, values.next()??))
}

/// Where a data dir's lock lives (for messages).
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::server::DATA_DIR_LOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_become_holders() {
        let table = "1: FLOCK  ADVISORY  WRITE 23536 fe:00:10011956 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 fe:00:1 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 777 fe:00:10011956 0 EOF\n\
                     4: FLOCK  ADVISORY  READ 0 00:2e:5 0 EOF\n\
                     5: FLOCK  ADVISORY  WRITE 12 103:0a:42 0 EOF\n\
                     garbage\n";
        assert_eq!(
            flock_holders(table),
            [
                FlockHolder {
                    pid: 23536,
                    dev: (0xfe, 0),
                    ino: 10011956
                },
                FlockHolder {
                    pid: 12,
                    dev: (0x103, 0x0a),
                    ino: 42
                },
            ]
        );
    }

    #[test]
    fn dev_numbers_split_like_glibc() {
        assert_eq!((dev_major(0xfe00), dev_minor(0xfe00)), (0xfe, 0));
        // Both numbers need the high bits of the encoding.
        let (major, minor): (u64, u64) = (4097, 1_048_575);
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        assert_eq!((dev_major(dev), dev_minor(dev)), (4097, 1_048_575));
    }

    #[test]
    fn limits_rows_parse_with_unlimited() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            20000                40000                files     \n\
                    Max locked memory         unlimited            unlimited            bytes     \n";
        assert_eq!(limit(text, "Max open files"), Some((20000, 40000)));
        assert_eq!(limit(text, "Max locked memory"), Some((u64::MAX, u64::MAX)));
        assert_eq!(limit(text, "Max processes"), None);
    }

    #[test]
    fn unit_limits_are_the_shipped_units() {
        let unit = include_str!("../../systemd/glint.service");
        let has = |line: &str| unit.lines().any(|l| l == line);
        assert!(has(&format!("LimitNOFILE={UNIT_LIMIT_NOFILE}")));
        assert_eq!(UNIT_LIMIT_MEMLOCK, u64::MAX);
        assert!(has("LimitMEMLOCK=infinity"));
    }

    #[test]
    fn this_process_is_found_by_its_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let file = std::fs::File::create(lock_path(dir)).unwrap();
        assert!(crate::sys::try_lock_exclusive(&file).unwrap());
        let found = find(dir).expect("the lock holder");
        assert_eq!(found.pid, std::process::id());
        assert!(found.found_by.ends_with(".serve.lock"), "{found:?}");
        let own = crate::sys::get_rlimit(libc::RLIMIT_NOFILE).unwrap();
        assert_eq!(found.nofile, Some(own));
        drop(file);
    }
}
