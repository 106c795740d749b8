//! Network knobs: balancer-side sysctls, socket buffers, NIC queues, IRQs, RPS/RFS, busy polling.

use super::checks::{sysctl_fix, Context, Finding, Verdict};
use super::machine::{self, format_cpu_list, Nic};

/// A knob that matters on the balancer (it opens the connections), shown for reference.
pub fn balancer_side(name: &str, recommended: &str) -> Finding {
    let current = machine::sysctl(name).unwrap_or_else(|| "absent".into());
    Finding::new(
        current,
        Verdict::Info,
        format!("set on the balancer, which opens the connections: `{name} = {recommended}` in its /etc/sysctl.d/"),
    )
}

/// A "min default max" buffer sysctl whose default should stay small: it multiplies by connections.
pub fn buffer_default_at_most(name: &str, max_default: u64, kernel_default: &str) -> Finding {
    let Some(current) = machine::sysctl(name) else {
        return Finding::new("absent", Verdict::Info, "not on this kernel");
    };
    let default: Option<u64> = current.split(' ').nth(1).and_then(|d| d.parse().ok());
    match default {
        Some(d) if d <= max_default => Finding::ok(current),
        _ => Finding::new(
            current,
            Verdict::Change,
            format!("echo '{name} = {kernel_default}' >> /etc/sysctl.d/60-glint.conf && sysctl --system"),
        ),
    }
}

/// Receive queues (RSS) per NIC against the worker count.
pub fn nic_queues(ctx: &Context) -> Finding {
    nic_queues_finding(&ctx.nics, ctx.threads)
}

pub fn nic_queues_finding(nics: &[Nic], threads: usize) -> Finding {
    if nics.is_empty() {
        return Finding::new(
            "no NIC",
            Verdict::Info,
            "no interface with a device here (container?): check on the host",
        );
    }
    let current = nics
        .iter()
        .map(|n| format!("{}: {} rx", n.name, n.rx_queues))
        .collect::<Vec<_>>()
        .join(", ");
    match nics.iter().find(|n| n.rx_queues < threads) {
        None => Finding::ok(current),
        Some(n) => Finding::new(
            current,
            Verdict::Change,
            format!(
                "ethtool -L {nic} combined {threads} && echo 'ACTION==\"add\", SUBSYSTEM==\"net\", ATTR{{address}}==\"{mac}\", RUN+=\"/usr/sbin/ethtool -L $name combined {threads}\"' > /etc/udev/rules.d/90-glint-{nic}.rules   (if the NIC has fewer queues, see RPS/RFS)",
                nic = n.name,
                mac = n.mac
            ),
        ),
    }
}

/// Where the NICs' interrupts run, and whether irqbalance moves them.
pub fn irq_affinity(ctx: &Context) -> Finding {
    irq_affinity_finding(&ctx.nics, machine::process_running("irqbalance"))
}

pub fn irq_affinity_finding(nics: &[Nic], irqbalance: bool) -> Finding {
    let with_irqs: Vec<&Nic> = nics.iter().filter(|n| !n.irqs.is_empty()).collect();
    let mut current = with_irqs
        .iter()
        .map(|n| {
            format!(
                "{}: {} IRQs on CPUs {}",
                n.name,
                n.irqs.len(),
                format_cpu_list(&n.irq_cpus)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if irqbalance {
        current = format!(
            "{current}{}irqbalance running",
            if current.is_empty() { "" } else { "; " }
        );
        return Finding::new(
            current,
            Verdict::Change,
            "systemctl disable --now irqbalance, then pin queue i's IRQ to worker CPU i (tuning.md, IRQ affinity)",
        );
    }
    if with_irqs.is_empty() {
        return Finding::new(
            "no MSI IRQs visible",
            Verdict::Info,
            "virtual or absent NIC: IRQ placement is the host's",
        );
    }
    Finding::ok(current)
}

/// RPS/RFS: needed only when the NIC has fewer receive queues than workers.
pub fn rps_rfs(ctx: &Context) -> Finding {
    let flows = machine::sysctl_u64("net.core.rps_sock_flow_entries").unwrap_or(0);
    rps_rfs_finding(&ctx.nics, ctx.threads, &ctx.cpus, flows)
}

pub fn rps_rfs_finding(nics: &[Nic], threads: usize, cpus: &[usize], flows: u64) -> Finding {
    let rps: Vec<String> = nics
        .iter()
        .map(|n| format!("{}: {}/{} rx with RPS", n.name, n.rps_queues, n.rx_queues))
        .collect();
    let current = format!(
        "{}; rps_sock_flow_entries {flows}",
        if rps.is_empty() {
            "no NIC".into()
        } else {
            rps.join(", ")
        }
    );
    let short = nics
        .iter()
        .find(|n| n.rx_queues < threads && n.rps_queues < n.rx_queues);
    if let Some(nic) = short {
        let workers: Vec<usize> = cpus.iter().copied().take(threads).collect();
        let mask = cpu_mask_hex(&workers);
        return Finding::new(
            current,
            Verdict::Change,
            format!(
                "echo 'ACTION==\"add\", SUBSYSTEM==\"queues\", KERNEL==\"rx-*\", ATTRS{{address}}==\"{mac}\", ATTR{{rps_cpus}}=\"{mask}\", ATTR{{rps_flow_cnt}}=\"4096\"' > /etc/udev/rules.d/60-glint-rps.rules && udevadm trigger --action=add --subsystem-match=queues && echo 'net.core.rps_sock_flow_entries = 32768' >> /etc/sysctl.d/60-glint.conf && sysctl --system",
                mac = nic.mac
            ),
        );
    }
    let needless = nics
        .iter()
        .any(|n| n.rx_queues >= threads && n.rps_queues > 0);
    if needless {
        return Finding::new(current, Verdict::Info, "RPS is on although the NIC has a queue per worker: it costs an inter-CPU interrupt per packet; keep it only if measured better");
    }
    Finding::ok(current)
}

/// A CPU set as the kernel's hex mask: 32-bit groups, most significant first, comma-separated.
pub fn cpu_mask_hex(cpus: &[usize]) -> String {
    let groups = cpus.iter().max().map_or(1, |m| m / 32 + 1);
    let mut words = vec![0u32; groups];
    for &cpu in cpus {
        words[cpu / 32] |= 1 << (cpu % 32);
    }
    let text: Vec<String> = words.iter().rev().map(|w| format!("{w:08x}")).collect();
    let joined = text.join(",");
    let trimmed = joined.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.starts_with(',') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// Busy polling spins a CPU on an empty queue to save an interrupt's latency.
pub fn busy_poll() -> Finding {
    let poll = machine::sysctl_u64("net.core.busy_poll");
    let read = machine::sysctl_u64("net.core.busy_read");
    let show = |v: Option<u64>| v.map_or("absent".into(), |v| v.to_string());
    let current = format!("busy_poll {}, busy_read {}", show(poll), show(read));
    if poll.unwrap_or(0) == 0 && read.unwrap_or(0) == 0 {
        Finding::ok(current)
    } else {
        Finding::new(current, Verdict::Info, "spins CPUs on empty queues: keep only on a box dedicated to glint, where it was measured to help")
    }
}

/// SO_REUSEPORT: migrate queued connections of a closing listener to its siblings.
pub fn migrate_req() -> Finding {
    match machine::sysctl_u64("net.ipv4.tcp_migrate_req") {
        None => Finding::new(
            "absent",
            Verdict::Info,
            "kernel before 5.14: a closing listener's queued connections are reset",
        ),
        Some(1) => Finding::ok("1"),
        Some(v) => Finding::new(
            v.to_string(),
            Verdict::Change,
            sysctl_fix("net.ipv4.tcp_migrate_req"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(rx: usize, rps: usize, irqs: Vec<u32>) -> Nic {
        Nic {
            name: "eth0".into(),
            mac: "52:54:00:12:34:56".into(),
            rx_queues: rx,
            rps_queues: rps,
            irqs,
            irq_cpus: vec![0, 1],
        }
    }

    #[test]
    fn masks_follow_the_kernel_format() {
        assert_eq!(cpu_mask_hex(&[0, 1, 2, 3]), "f");
        assert_eq!(cpu_mask_hex(&[1]), "2");
        assert_eq!(cpu_mask_hex(&[0, 33]), "2,00000001");
        assert_eq!(cpu_mask_hex(&[]), "0");
    }

    #[test]
    fn too_few_queues_asks_for_ethtool_and_rps() {
        let f = nic_queues_finding(&[nic(1, 0, vec![])], 4);
        assert_eq!(f.verdict, Verdict::Change);
        assert!(
            f.note.starts_with("ethtool -L eth0 combined 4"),
            "{}",
            f.note
        );
        assert_eq!(
            nic_queues_finding(&[nic(4, 0, vec![])], 4).verdict,
            Verdict::Ok
        );
        let f = rps_rfs_finding(&[nic(1, 0, vec![])], 4, &[0, 1, 2, 3], 0);
        assert_eq!(f.verdict, Verdict::Change);
        assert!(f.note.contains(r#"ATTR{rps_cpus}="f""#), "{}", f.note);
        assert_eq!(
            rps_rfs_finding(&[nic(4, 0, vec![])], 4, &[0, 1, 2, 3], 0).verdict,
            Verdict::Ok
        );
        assert_eq!(
            rps_rfs_finding(&[nic(4, 4, vec![])], 4, &[0, 1, 2, 3], 0).verdict,
            Verdict::Info
        );
    }

    #[test]
    fn irqbalance_is_a_change() {
        assert_eq!(
            irq_affinity_finding(&[nic(2, 0, vec![30, 31])], true).verdict,
            Verdict::Change
        );
        let f = irq_affinity_finding(&[nic(2, 0, vec![30, 31])], false);
        assert_eq!(
            (f.verdict, f.current.as_str()),
            (Verdict::Ok, "eth0: 2 IRQs on CPUs 0-1")
        );
        assert_eq!(irq_affinity_finding(&[], false).verdict, Verdict::Info);
    }
}
