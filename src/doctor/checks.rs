//! The knob table: the single list of what `glint doctor` checks and `tuning.md` explains.
//!
//! Every [`KNOBS`] name is a `### ` heading under `## Knobs` in `tuning.md` and every such
//! heading is a knob here (a test keeps them equal), and [`SYSCTL_SETTINGS`] is exactly the
//! content of `systemd/60-glint.sysctl.conf`.

use super::host;
use super::machine::Nic;
use super::net;
use super::shipping;
use super::storage;
use crate::server::IoBackend;
use std::path::PathBuf;

/// What doctor knows about the run it is checking for.
#[derive(Debug, Clone)]
pub struct Context {
    pub data_dir: PathBuf,
    pub io: IoBackend,
    /// Worker threads glint would run (`--threads`, default: the allowed CPUs).
    pub threads: usize,
    /// CPUs this process may run on.
    pub cpus: Vec<usize>,
    /// Ring geometry glint serve will create rings with (`--slot-size`, `--ring-slots`).
    pub slot_size: usize,
    pub ring_slots: u64,
    pub kernel: Option<(u32, u32)>,
    pub nics: Vec<Nic>,
    /// The glint serving the data dir, whose limits the rlimit rows judge.
    pub serving: Option<super::service::Serving>,
    /// The config file given to doctor (its `[ship]` table is the shipper's settings).
    pub config: Option<PathBuf>,
}

/// How a knob's current value compares with the recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// As recommended.
    Ok,
    /// Nothing to judge here (balancer-side knob, no such hardware): read the note.
    Info,
    /// glint works, but worse than it could: run the note's command.
    Change,
    /// glint would not work: the note says why and what to run.
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Info => "INFO",
            Verdict::Change => "CHANGE",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One knob's reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub current: String,
    pub verdict: Verdict,
    /// For CHANGE and FAIL the exact command to run; for INFO why nothing is judged.
    pub note: String,
}

impl Finding {
    pub fn new(current: impl Into<String>, verdict: Verdict, note: impl Into<String>) -> Self {
        Finding {
            current: current.into(),
            verdict,
            note: note.into(),
        }
    }
    pub fn ok(current: impl Into<String>) -> Self {
        Finding::new(current, Verdict::Ok, "")
    }
}

/// One row of the doctor table and one section of tuning.md.
pub struct Knob {
    pub name: &'static str,
    pub recommended: &'static str,
    pub check: fn(&Context) -> Finding,
}

/// The sysctls glint's box should have, as shipped in `systemd/60-glint.sysctl.conf`.
pub const SYSCTL_SETTINGS: &[(&str, &str)] = &[
    ("net.core.somaxconn", "65535"),
    ("net.ipv4.tcp_max_syn_backlog", "65535"),
    ("net.core.netdev_max_backlog", "16384"),
    ("net.ipv4.tcp_migrate_req", "1"),
    ("kernel.io_uring_disabled", "0"),
    ("fs.file-max", "4194304"),
    ("fs.nr_open", "1048576"),
    ("vm.dirty_background_bytes", "67108864"),
    ("vm.dirty_expire_centisecs", "1000"),
];

/// The persistent command that sets a sysctl to its [`SYSCTL_SETTINGS`] value.
pub fn sysctl_fix(name: &str) -> String {
    let value = SYSCTL_SETTINGS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("?", |(_, v)| v);
    format!("echo '{name} = {value}' >> /etc/sysctl.d/60-glint.conf && sysctl --system")
}

/// A numeric sysctl that should be at least `min`; the fix sets its [`SYSCTL_SETTINGS`] value.
pub fn sysctl_at_least(name: &str, min: u64) -> Finding {
    match super::machine::sysctl_u64(name) {
        None => Finding::new("absent", Verdict::Info, "not on this kernel"),
        Some(v) if v >= min => Finding::ok(v.to_string()),
        Some(v) => Finding::new(v.to_string(), Verdict::Change, sysctl_fix(name)),
    }
}

/// Every knob, in tuning.md's order.
pub const KNOBS: &[Knob] = &[
    Knob {
        name: "net.core.somaxconn",
        recommended: ">= 4096 (>= --backlog)",
        check: |_| sysctl_at_least("net.core.somaxconn", 4096),
    },
    Knob {
        name: "net.ipv4.tcp_max_syn_backlog",
        recommended: ">= 8192",
        check: |_| sysctl_at_least("net.ipv4.tcp_max_syn_backlog", 8192),
    },
    Knob {
        name: "net.core.netdev_max_backlog",
        recommended: ">= 16384",
        check: |_| sysctl_at_least("net.core.netdev_max_backlog", 16384),
    },
    Knob {
        name: "net.ipv4.ip_local_port_range",
        recommended: "1024 65535 (on the balancer)",
        check: |_| net::balancer_side("net.ipv4.ip_local_port_range", "1024 65535"),
    },
    Knob {
        name: "net.ipv4.tcp_tw_reuse",
        recommended: "1 (on the balancer)",
        check: |_| net::balancer_side("net.ipv4.tcp_tw_reuse", "1"),
    },
    Knob {
        name: "net.ipv4.tcp_rmem",
        recommended: "default <= 131072",
        check: |_| net::buffer_default_at_most("net.ipv4.tcp_rmem", 131072, "4096 131072 6291456"),
    },
    Knob {
        name: "net.ipv4.tcp_wmem",
        recommended: "default <= 131072",
        check: |_| net::buffer_default_at_most("net.ipv4.tcp_wmem", 131072, "4096 16384 4194304"),
    },
    Knob {
        name: "NIC queues (RSS)",
        recommended: ">= --threads rx queues",
        check: net::nic_queues,
    },
    Knob {
        name: "IRQ affinity",
        recommended: "pinned, no irqbalance",
        check: net::irq_affinity,
    },
    Knob {
        name: "RPS/RFS",
        recommended: "off if queues >= threads",
        check: net::rps_rfs,
    },
    Knob {
        name: "net.core.busy_poll",
        recommended: "0 (50 on a dedicated box)",
        check: |_| net::busy_poll(),
    },
    Knob {
        name: "net.ipv4.tcp_migrate_req",
        recommended: "1",
        check: |_| net::migrate_req(),
    },
    Knob {
        name: "kernel.io_uring_disabled",
        recommended: "0",
        check: host::io_uring_disabled,
    },
    Knob {
        name: "io_uring",
        recommended: "available",
        check: host::io_uring,
    },
    Knob {
        name: "RLIMIT_MEMLOCK",
        recommended: "infinity on kernels < 5.12",
        check: host::memlock,
    },
    Knob {
        name: "RLIMIT_NOFILE",
        recommended: ">= 65536 (1048576)",
        check: host::nofile,
    },
    Knob {
        name: "fs.file-max",
        recommended: ">= 1048576",
        check: |_| sysctl_at_least("fs.file-max", 1048576),
    },
    Knob {
        name: "fs.nr_open",
        recommended: ">= 1048576",
        check: |_| sysctl_at_least("fs.nr_open", 1048576),
    },
    Knob {
        name: "CPUs and --threads",
        recommended: "threads <= CPUs",
        check: host::cpus,
    },
    Knob {
        name: "data dir",
        recommended: "writable directory",
        check: storage::data_dir,
    },
    Knob {
        name: "glint ship",
        recommended: "valid [ship]; cursor keeps up",
        check: shipping::shipper,
    },
    Knob {
        name: "data dir free space",
        recommended: ">= new rings + 1 GiB",
        check: storage::free_space,
    },
    Knob {
        name: "data dir filesystem",
        recommended: "ext4/xfs, noatime",
        check: storage::filesystem,
    },
    Knob {
        name: "vm.dirty_background_bytes",
        recommended: "1..=268435456 (64 MiB)",
        check: |_| storage::dirty_background(),
    },
    Knob {
        name: "vm.dirty_expire_centisecs",
        recommended: "<= 3000",
        check: |_| storage::dirty_expire(),
    },
    Knob {
        name: "transparent huge pages",
        recommended: "madvise or never",
        check: |_| host::transparent_hugepages(),
    },
    Knob {
        name: "CPU frequency governor",
        recommended: "performance",
        check: host::governor,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_names_are_unique() {
        let mut names: Vec<_> = KNOBS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn sysctl_fixes_carry_the_shipped_values() {
        assert_eq!(
            sysctl_fix("net.core.somaxconn"),
            "echo 'net.core.somaxconn = 65535' >> /etc/sysctl.d/60-glint.conf && sysctl --system"
        );
        for (name, _) in SYSCTL_SETTINGS {
            assert!(!sysctl_fix(name).contains('?'), "{name}");
        }
    }
}
