//! Storage knobs: the data dir (exists, writable, room for the rings), its filesystem and mount
//! options, and the page cache writeback that flushes the rings.

use super::checks::{sysctl_fix, Context, Finding, Verdict};
use super::machine::{self, Mount};
use crate::units::format_bytes;
use std::path::{Path, PathBuf};

pub fn data_dir(ctx: &Context) -> Finding {
    data_dir_finding(&ctx.data_dir)
}

/// Whether `glint serve` could use `dir`, checked without writing.
pub fn data_dir_finding(dir: &Path) -> Finding {
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::new("missing", Verdict::Fail, format!("data dir {shown} does not exist: install -d -o glint -g glint -m 750 {shown}   (StateDirectory= creates /var/lib/glint under systemd)"));
        }
        Err(e) => {
            return Finding::new(
                "unreadable",
                Verdict::Fail,
                format!("data dir {shown}: {e}"),
            )
        }
    };
    if !meta.is_dir() {
        return Finding::new(
            "not a directory",
            Verdict::Fail,
            format!("data dir {shown} is not a directory: point --data-dir at a directory"),
        );
    }
    match crate::sys::check_dir_writable(dir) {
        Ok(()) => Finding::ok("writable directory"),
        Err(e) => Finding::new(
            "not writable",
            Verdict::Fail,
            format!(
                "data dir {shown} is not writable by uid {}: {e}; chown -R glint:glint {shown}",
                effective_uid()
            ),
        ),
    }
}

fn effective_uid() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string()
}

/// The directory itself, or its nearest existing ancestor (for free space and the mount).
fn existing_ancestor(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute
        .ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

pub fn free_space(ctx: &Context) -> Finding {
    let place = existing_ancestor(&ctx.data_dir);
    let Ok(free) = crate::sys::free_bytes(&place) else {
        return Finding::new(
            "unknown",
            Verdict::Info,
            format!("cannot statvfs {}", place.display()),
        );
    };
    let per_core = crate::ring::format::file_len(ctx.slot_size, ctx.ring_slots).unwrap_or(u64::MAX);
    let missing = (0..ctx.threads)
        .filter(|core| {
            !ctx.data_dir
                .join(crate::ring::ring_file_name(*core))
                .exists()
        })
        .count() as u64;
    let existing = crate::compact::cycle::ring_paths(&ctx.data_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .fold(0u64, u64::saturating_add);
    let rings = RingDisk {
        per_core,
        threads: ctx.threads as u64,
        existing,
        new: missing.saturating_mul(per_core),
    };
    free_space_finding(free, &rings)
}

/// Disk the rings take: each worker preallocates `slot-size x ring-slots + 4 KiB` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingDisk {
    /// One worker's ring file, from --slot-size and --ring-slots.
    pub per_core: u64,
    pub threads: u64,
    /// Bytes of the ring files already in the data dir (whatever their geometry).
    pub existing: u64,
    /// What starting now would still preallocate: the rings of workers without a file.
    pub new: u64,
}

/// Rings are preallocated at start (serve fails without room); segments need room after them.
pub fn free_space_finding(free: u64, rings: &RingDisk) -> Finding {
    let current = format!(
        "{} free; rings {}/core x {} threads = {} (existing {}, new need {})",
        format_bytes(free),
        format_bytes(rings.per_core),
        rings.threads,
        format_bytes(rings.per_core.saturating_mul(rings.threads)),
        format_bytes(rings.existing),
        format_bytes(rings.new)
    );
    if free < rings.new {
        Finding::new(
            current,
            Verdict::Fail,
            "glint serve cannot preallocate its rings: free space, or lower --ring-slots or --threads",
        )
    } else if free < rings.new.saturating_add(1 << 30) {
        Finding::new(current, Verdict::Change, "keep at least 1 GiB beyond the rings for segments: free space or lower --retain-bytes of glint compact")
    } else {
        Finding::ok(current)
    }
}

pub fn filesystem(ctx: &Context) -> Finding {
    match machine::mount_of(&existing_ancestor(&ctx.data_dir)) {
        Some(mount) => filesystem_finding(&mount),
        None => Finding::new("unknown", Verdict::Info, "no entry in /proc/self/mountinfo"),
    }
}

pub fn filesystem_finding(m: &Mount) -> Finding {
    let point = m.point.display();
    let current = format!("{} {} on {point} ({})", m.fstype, m.source, m.options);
    match m.fstype.as_str() {
        "tmpfs" | "ramfs" => Finding::new(current, Verdict::Change, "records on tmpfs are lost at reboot: put --data-dir on ext4 or xfs"),
        "ext4" | "xfs" if m.has_option("noatime") => Finding::ok(current),
        "ext4" | "xfs" => Finding::new(current, Verdict::Change, format!("mount -o remount,noatime {point}; then add noatime to {point}'s options in /etc/fstab")),
        _ => Finding::new(current, Verdict::Change, "ext4 or xfs (mounted noatime) are the tested filesystems for the rings' shared mmaps"),
    }
}

pub fn dirty_background() -> Finding {
    let bytes = machine::sysctl_u64("vm.dirty_background_bytes").unwrap_or(0);
    if bytes == 0 {
        let ratio = machine::sysctl("vm.dirty_background_ratio").unwrap_or_else(|| "?".into());
        return Finding::new(
            format!("0 (ratio {ratio}% of RAM)"),
            Verdict::Change,
            sysctl_fix("vm.dirty_background_bytes"),
        );
    }
    if bytes <= 256 << 20 {
        Finding::ok(bytes.to_string())
    } else {
        Finding::new(
            bytes.to_string(),
            Verdict::Change,
            sysctl_fix("vm.dirty_background_bytes"),
        )
    }
}

pub fn dirty_expire() -> Finding {
    match machine::sysctl_u64("vm.dirty_expire_centisecs") {
        None => Finding::new("absent", Verdict::Info, "not on this kernel"),
        Some(v) if v <= 3000 => Finding::ok(v.to_string()),
        Some(v) => Finding::new(
            v.to_string(),
            Verdict::Change,
            sysctl_fix("vm.dirty_expire_centisecs"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_fails_when_rings_do_not_fit() {
        let rings = |new| RingDisk {
            per_core: 512 << 20,
            threads: 2,
            existing: (1 << 30) - new,
            new,
        };
        let verdict = |free, new| free_space_finding(free, &rings(new)).verdict;
        assert_eq!(verdict(100 << 20, 512 << 20), Verdict::Fail);
        assert_eq!(verdict(1 << 30, 512 << 20), Verdict::Change);
        assert_eq!(verdict(10 << 30, 512 << 20), Verdict::Ok);
        assert_eq!(
            verdict(1 << 20, 0),
            Verdict::Change,
            "existing rings need no room"
        );
        assert_eq!(format_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn free_space_line_states_the_per_core_figure() {
        let f = free_space_finding(
            10 << 30,
            &RingDisk {
                per_core: (512 << 20) + 4096,
                threads: 2,
                existing: (512 << 20) + 4096,
                new: (512 << 20) + 4096,
            },
        );
        assert_eq!(
            f.current,
            "10.0 GiB free; rings 512.0 MiB/core x 2 threads = 1.0 GiB (existing 512.0 MiB, new need 512.0 MiB)"
        );
    }

    #[test]
    fn filesystems_want_ext4_or_xfs_with_noatime() {
        let mount = |fstype: &str, options: &str| Mount {
            point: "/var/lib".into(),
            fstype: fstype.into(),
            source: "/dev/sdb1".into(),
            options: options.into(),
        };
        assert_eq!(
            filesystem_finding(&mount("xfs", "rw,noatime")).verdict,
            Verdict::Ok
        );
        let f = filesystem_finding(&mount("ext4", "rw,relatime"));
        assert!(
            f.note.starts_with("mount -o remount,noatime /var/lib;"),
            "{}",
            f.note
        );
        assert_eq!(
            filesystem_finding(&mount("tmpfs", "rw,noatime")).verdict,
            Verdict::Change
        );
    }

    #[test]
    fn data_dir_problems_are_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        assert_eq!(data_dir_finding(base).verdict, Verdict::Ok);
        let missing = data_dir_finding(&base.join("absent"));
        assert_eq!(missing.verdict, Verdict::Fail);
        assert!(missing.note.contains("does not exist"));
        let file = base.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(data_dir_finding(&file).note.contains("not a directory"));
    }
}
