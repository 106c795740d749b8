//! Reads the running machine's values: procfs, sysfs, rlimits, the mount table.
//! Everything here only reads; a value that cannot be read is `None`, never an error.

use std::path::{Path, PathBuf};

/// A sysctl's value from `/proc/sys` (dots become slashes), whitespace runs as one space.
pub fn sysctl(name: &str) -> Option<String> {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A numeric sysctl.
pub fn sysctl_u64(name: &str) -> Option<u64> {
    sysctl(name)?.parse().ok()
}

/// The running kernel's (major, minor) version.
pub fn kernel_version() -> Option<(u32, u32)> {
    parse_kernel_version(&sysctl("kernel.osrelease")?)
}

/// Parses "6.1.0-18-amd64" into (6, 1).
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Parses a kernel CPU list such as "0-3,8,10-11".
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.trim().parse::<usize>(), hi.trim().parse::<usize>()) {
            cpus.extend(lo..=hi.min(lo + 4096));
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// Formats CPUs as a kernel CPU list ("0-3,8").
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(",")
    }
}

/// A network interface backed by a device (not lo, bridges, veth or other virtual ones).
#[derive(Debug, Clone)]
pub struct Nic {
    pub name: String,
    /// The MAC address, which udev rules match on (names can change at boot).
    pub mac: String,
    pub rx_queues: usize,
    /// Receive queues with a non-zero `rps_cpus` mask (RPS on).
    pub rps_queues: usize,
    /// The NIC's MSI interrupt numbers.
    pub irqs: Vec<u32>,
    /// The union of the CPUs those interrupts may run on.
    pub irq_cpus: Vec<usize>,
}

/// Every interface with a `device` link in sysfs.
pub fn physical_nics() -> Vec<Nic> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut nics: Vec<Nic> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("device").exists())
        .map(|e| read_nic(&e.path(), e.file_name().to_string_lossy().into_owned()))
        .collect();
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    nics
}

fn read_nic(dir: &Path, name: String) -> Nic {
    let mut rx_queues = 0;
    let mut rps_queues = 0;
    for queue in read_names(&dir.join("queues")) {
        if queue.starts_with("rx-") {
            rx_queues += 1;
            let mask = std::fs::read_to_string(dir.join("queues").join(&queue).join("rps_cpus"));
            if mask.is_ok_and(|m| m.trim().chars().any(|c| c.is_ascii_hexdigit() && c != '0')) {
                rps_queues += 1;
            }
        }
    }
    // virtio NICs keep their MSI vectors on the parent PCI device.
    let irq_dirs = [dir.join("device/msi_irqs"), dir.join("device/../msi_irqs")];
    let mut irqs: Vec<u32> = irq_dirs
        .iter()
        .find(|d| d.is_dir())
        .map(|d| {
            read_names(d)
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    irqs.sort_unstable();
    let mut irq_cpus: Vec<usize> = irqs
        .iter()
        .filter_map(|irq| {
            std::fs::read_to_string(format!("/proc/irq/{irq}/smp_affinity_list")).ok()
        })
        .flat_map(|list| parse_cpu_list(&list))
        .collect();
    irq_cpus.sort_unstable();
    irq_cpus.dedup();
    let mac = std::fs::read_to_string(dir.join("address"))
        .map_or_else(|_| "?".into(), |m| m.trim().to_string());
    Nic {
        name,
        mac,
        rx_queues,
        rps_queues,
        irqs,
        irq_cpus,
    }
}

fn read_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a process whose `comm` is `name` runs (e.g. irqbalance).
pub fn process_running(name: &str) -> bool {
    read_names(Path::new("/proc"))
        .iter()
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// Per-mount options (rw, noatime, ...).
    pub options: String,
}

impl Mount {
    pub fn has_option(&self, option: &str) -> bool {
        self.options.split(',').any(|o| o == option)
    }
}

/// The mount holding `path` (which must exist; pass its nearest existing ancestor).
pub fn mount_of(path: &Path) -> Option<Mount> {
    let path = path.canonicalize().ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_in_table(&table, &path)
}

/// The last, longest mount point in `mountinfo` text that contains `path`.
pub fn mount_in_table(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some(mount) = parse_mountinfo_line(line) else {
            continue;
        };
        let longer = match &best {
            Some(b) => mount.point.as_os_str().len() >= b.point.as_os_str().len(),
            None => true,
        };
        if path.starts_with(&mount.point) && longer {
            best = Some(mount);
        }
    }
    best
}

fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    Some(Mount {
        point: PathBuf::from(unescape_octal(fields.get(4)?)),
        options: fields.get(5)?.to_string(),
        fstype: right.next()?.to_string(),
        source: right.next()?.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The selected value of a sysfs multiple-choice file such as `always [madvise] never`.
pub fn bracketed_choice(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = start + text[start..].find(']')?;
    Some(text[start + 1..end].to_string())
}

/// The transparent huge page mode (always, madvise, never).
pub fn transparent_hugepages() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    bracketed_choice(&text)
}

/// Each CPU's frequency governor, or an empty list when there is no cpufreq (VMs).
pub fn governors(cpus: &[usize]) -> Vec<(usize, String)> {
    cpus.iter()
        .filter_map(|cpu| {
            let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
            std::fs::read_to_string(path)
                .ok()
                .map(|g| (*cpu, g.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(format_cpu_list(&[]), "none");
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(parse_kernel_version("junk"), None);
    }

    #[test]
    fn mount_lookup_takes_the_deepest_mount_and_unescapes() {
        let table = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:22 / /var/lib rw,noatime - xfs /dev/sdb1 rw,attr2
24 22 0:23 / /var/lib/my\\040dir rw - tmpfs tmpfs rw
25 22 0:24 / /var/lib rw,relatime - ext4 /dev/sdc1 rw";
        let m = mount_in_table(table, Path::new("/var/lib/glint")).unwrap();
        assert_eq!(
            (m.fstype.as_str(), m.source.as_str()),
            ("ext4", "/dev/sdc1")
        );
        assert!(!m.has_option("noatime"));
        let m = mount_in_table(table, Path::new("/var/lib/my dir/x")).unwrap();
        assert_eq!(m.fstype, "tmpfs");
        let m = mount_in_table(table, Path::new("/var/libx")).unwrap();
        assert_eq!(m.point, Path::new("/"));
    }

    #[test]
    fn bracketed_choices() {
        assert_eq!(
            bracketed_choice("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(bracketed_choice("always madvise never"), None);
    }

    #[test]
    fn sysctls_read_from_proc() {
        let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(sysctl("kernel.osrelease").unwrap(), osrelease.trim());
        assert!(sysctl_u64("net.core.somaxconn").is_some());
        assert_eq!(sysctl("net.no.such_knob"), None);
    }
}
