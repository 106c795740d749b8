//! Host knobs: io_uring, rlimits, CPUs, transparent huge pages, cpufreq.

use super::checks::{sysctl_fix, Context, Finding, Verdict};
use super::machine::{self, format_cpu_list};
use super::service::{Serving, UNIT_LIMIT_MEMLOCK, UNIT_LIMIT_NOFILE};
use crate::server::IoBackend;

const UNIT_HINT: &str = "the shipped systemd/glint.service sets it";

pub fn io_uring_disabled(_ctx: &Context) -> Finding {
    match machine::sysctl_u64("kernel.io_uring_disabled") {
        None => Finding::ok("absent (kernel before 6.6: always allowed)"),
        Some(0) => Finding::ok("0"),
        Some(v) => Finding::new(
            v.to_string(),
            Verdict::Change,
            format!(
                "{}   (1 allows only kernel.io_uring_group members)",
                sysctl_fix("kernel.io_uring_disabled")
            ),
        ),
    }
}

pub fn io_uring(ctx: &Context) -> Finding {
    io_uring_finding(crate::uring_probe::probe().map(drop), ctx.io)
}

/// Judges the io_uring probe against the backend glint was asked for.
pub fn io_uring_finding(probe: Result<(), String>, io: IoBackend) -> Finding {
    match (probe, io) {
        (Ok(()), IoBackend::Epoll) => Finding::ok("available (unused: --io epoll)"),
        (Ok(()), _) => Finding::ok("available"),
        (Err(why), IoBackend::Uring) => Finding::new(
            "unavailable",
            Verdict::Fail,
            format!("--io uring cannot start: {why}"),
        ),
        (Err(why), _) => Finding::new(
            "unavailable",
            Verdict::Info,
            format!("glint will use epoll: {why}"),
        ),
    }
}

/// An rlimit as systemd writes it: `infinity` for RLIM_INFINITY, else the number, or with
/// `bytes` the size for people ("8.0 MiB").
pub fn limit_text(v: u64, bytes: bool) -> String {
    match v {
        u64::MAX => "infinity".into(),
        v if bytes => crate::units::format_bytes(v),
        v => v.to_string(),
    }
}

pub fn memlock(ctx: &Context) -> Finding {
    match ctx.serving.as_ref().and_then(|s| Some((s, s.memlock?))) {
        Some((serving, (soft, _))) => {
            let f = memlock_finding(soft, ctx.kernel);
            below_unit(
                f,
                serving,
                soft,
                UNIT_LIMIT_MEMLOCK,
                "LimitMEMLOCK",
                ctx.kernel,
            )
        }
        None => {
            let soft = crate::sys::get_rlimit(libc::RLIMIT_MEMLOCK).map_or(0, |(soft, _)| soft);
            own_limits(memlock_finding(soft, ctx.kernel))
        }
    }
}

pub fn memlock_finding(soft: u64, kernel: Option<(u32, u32)>) -> Finding {
    let current = limit_text(soft, true);
    if kernel.is_some_and(|k| k >= (5, 12)) {
        return Finding::ok(format!("{current} (unused for rings on 5.12+)"));
    }
    if soft >= 64 << 20 {
        return Finding::ok(current);
    }
    Finding::new(
        current,
        Verdict::Change,
        format!("LimitMEMLOCK=infinity ({UNIT_HINT}); outside systemd: echo 'glint - memlock unlimited' > /etc/security/limits.d/glint.conf"),
    )
}

pub fn nofile(ctx: &Context) -> Finding {
    match ctx.serving.as_ref().and_then(|s| Some((s, s.nofile?))) {
        Some((serving, (soft, hard))) => {
            let f = nofile_finding(soft, hard);
            below_unit(f, serving, soft, UNIT_LIMIT_NOFILE, "LimitNOFILE", None)
        }
        None => {
            let (soft, hard) = crate::sys::get_rlimit(libc::RLIMIT_NOFILE).unwrap_or((0, 0));
            own_limits(nofile_finding(soft, hard))
        }
    }
}

/// No glint is serving the data dir: the row shows doctor's own limits, and says so.
fn own_limits(mut f: Finding) -> Finding {
    f.current.push_str(" (doctor's own: no glint serving)");
    f
}

/// A serving glint's limit: names the PID, and flags a limit below what the shipped unit asks
/// (`name=` in systemd/glint.service): systemd lowers it silently without CAP_SYS_RESOURCE.
/// `kernel` set (memlock): only kernels before 5.12 use the limit, later ones get INFO.
pub fn below_unit(
    mut f: Finding,
    serving: &Serving,
    soft: u64,
    asked: u64,
    name: &str,
    kernel: Option<(u32, u32)>,
) -> Finding {
    f.current.push_str(&format!(
        " (glint PID {}, {})",
        serving.pid, serving.found_by
    ));
    if soft >= asked {
        return f;
    }
    let asked = limit_text(asked, false);
    let why = format!(
        "glint PID {} runs with a soft limit of {}, below the unit's {name}={asked}: systemd lowers it \
         silently when it lacks CAP_SYS_RESOURCE (a container or a user manager); raise the limit \
         where systemd runs, or run glint under the shipped unit as the system manager",
        serving.pid,
        limit_text(soft, name == "LimitMEMLOCK"),
    );
    match f.verdict {
        Verdict::Ok if kernel.is_some_and(|k| k >= (5, 12)) => Finding::new(
            f.current,
            Verdict::Info,
            format!("{why} (unused for rings on 5.12+)"),
        ),
        Verdict::Ok | Verdict::Info => Finding::new(f.current, Verdict::Change, why),
        Verdict::Change | Verdict::Fail => {
            Finding::new(f.current, f.verdict, format!("{why}; {}", f.note))
        }
    }
}

/// glint holds one descriptor per connection; below 1024 it cannot serve a balancer's pool.
pub fn nofile_finding(soft: u64, hard: u64) -> Finding {
    let current = format!(
        "soft {} / hard {}",
        limit_text(soft, false),
        limit_text(hard, false)
    );
    let fix = format!("LimitNOFILE=1048576 ({UNIT_HINT}); in a shell: ulimit -n 1048576");
    if soft < 1024 {
        Finding::new(
            current,
            Verdict::Fail,
            format!("only {soft} file descriptors: glint needs one per connection plus its rings and listeners; {fix}"),
        )
    } else if soft < 65536 {
        Finding::new(current, Verdict::Change, fix)
    } else {
        Finding::ok(current)
    }
}

pub fn cpus(ctx: &Context) -> Finding {
    let current = format!(
        "{} CPUs ({}), --threads {}",
        ctx.cpus.len(),
        format_cpu_list(&ctx.cpus),
        ctx.threads
    );
    if ctx.threads > ctx.cpus.len().max(1) {
        Finding::new(
            current,
            Verdict::Change,
            format!(
                "--threads {} (more workers than CPUs share cores and lose their pinning)",
                ctx.cpus.len().max(1)
            ),
        )
    } else {
        Finding::ok(current)
    }
}
pub fn transparent_hugepages() -> Finding {
    match machine::transparent_hugepages().as_deref() {
        None => Finding::new("absent", Verdict::Info, "kernel without transparent huge pages"),
        Some("always") => Finding::new("always", Verdict::Change, "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled && echo 'w /sys/kernel/mm/transparent_hugepage/enabled - - - - madvise' > /etc/tmpfiles.d/glint-thp.conf"),
        Some(mode) => Finding::ok(mode),
    }
}

pub fn governor(ctx: &Context) -> Finding {
    governor_finding(&machine::governors(&ctx.cpus))
}

pub fn governor_finding(governors: &[(usize, String)]) -> Finding {
    if governors.is_empty() {
        return Finding::new("no cpufreq", Verdict::Info, "no cpufreq driver (VM or firmware-managed clocks): set performance mode in the BIOS or hypervisor");
    }
    let mut names: Vec<&str> = governors.iter().map(|(_, g)| g.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let current = names
        .iter()
        .map(|name| {
            let cpus: Vec<usize> = governors
                .iter()
                .filter(|(_, g)| g == name)
                .map(|(c, _)| *c)
                .collect();
            format!("{name} on {}", format_cpu_list(&cpus))
        })
        .collect::<Vec<_>>()
        .join(", ");
    if names == ["performance"] {
        Finding::ok(current)
    } else {
        Finding::new(current, Verdict::Change, "echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor && echo 'w /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor - - - - performance' > /etc/tmpfiles.d/glint-cpufreq.conf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_uring_fails_only_when_asked_for() {
        let err = || Err("EPERM".to_string());
        assert_eq!(
            io_uring_finding(err(), IoBackend::Uring).verdict,
            Verdict::Fail
        );
        assert_eq!(
            io_uring_finding(err(), IoBackend::Auto).verdict,
            Verdict::Info
        );
        assert_eq!(
            io_uring_finding(err(), IoBackend::Epoll).verdict,
            Verdict::Info
        );
        assert_eq!(
            io_uring_finding(Ok(()), IoBackend::Uring).verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn nofile_thresholds() {
        assert_eq!(nofile_finding(64, 64).verdict, Verdict::Fail);
        assert_eq!(nofile_finding(1024, 4096).verdict, Verdict::Change);
        assert_eq!(nofile_finding(1 << 20, 1 << 20).verdict, Verdict::Ok);
    }

    #[test]
    fn memlock_matters_before_5_12_only() {
        assert_eq!(memlock_finding(8 << 20, Some((6, 1))).verdict, Verdict::Ok);
        assert_eq!(
            memlock_finding(64 << 10, Some((5, 10))).verdict,
            Verdict::Change
        );
        assert_eq!(memlock_finding(u64::MAX, Some((5, 4))).current, "infinity");
    }

    #[test]
    fn a_serving_glint_below_the_units_limits_is_flagged() {
        let serving = Serving {
            pid: 4242,
            found_by: "holds /var/lib/glint/.serve.lock".into(),
            nofile: Some((65536, 65536)),
            memlock: Some((8 << 20, 8 << 20)),
        };
        let f = below_unit(
            nofile_finding(65536, 65536),
            &serving,
            65536,
            UNIT_LIMIT_NOFILE,
            "LimitNOFILE",
            None,
        );
        assert_eq!(f.verdict, Verdict::Change);
        assert_eq!(
            f.current,
            "soft 65536 / hard 65536 (glint PID 4242, holds /var/lib/glint/.serve.lock)"
        );
        assert!(
            f.note.contains("below the unit's LimitNOFILE=1048576"),
            "{}",
            f.note
        );
        let ok = below_unit(
            nofile_finding(1 << 20, 1 << 20),
            &serving,
            1 << 20,
            UNIT_LIMIT_NOFILE,
            "LimitNOFILE",
            None,
        );
        assert_eq!(ok.verdict, Verdict::Ok);
        let low = below_unit(
            nofile_finding(512, 512),
            &serving,
            512,
            UNIT_LIMIT_NOFILE,
            "LimitNOFILE",
            None,
        );
        assert_eq!(
            low.verdict,
            Verdict::Fail,
            "still a failure, with the reason added"
        );
        assert!(low.note.contains("CAP_SYS_RESOURCE") && low.note.contains("only 512"));
        let old = below_unit(
            memlock_finding(8 << 20, Some((5, 10))),
            &serving,
            8 << 20,
            UNIT_LIMIT_MEMLOCK,
            "LimitMEMLOCK",
            Some((5, 10)),
        );
        assert_eq!(old.verdict, Verdict::Change);
        assert!(
            old.note
                .contains("8.0 MiB, below the unit's LimitMEMLOCK=infinity"),
            "{}",
            old.note
        );
        let new = below_unit(
            memlock_finding(8 << 20, Some((6, 1))),
            &serving,
            8 << 20,
            UNIT_LIMIT_MEMLOCK,
            "LimitMEMLOCK",
            Some((6, 1)),
        );
        assert_eq!(new.verdict, Verdict::Info);
    }

    #[test]
    fn governors_group_by_name() {
        let g = |c: usize, n: &str| (c, n.to_string());
        let f = governor_finding(&[g(0, "powersave"), g(1, "powersave"), g(2, "performance")]);
        assert_eq!(f.current, "performance on 2, powersave on 0-1");
        assert_eq!(f.verdict, Verdict::Change);
        assert_eq!(
            governor_finding(&[g(0, "performance")]).verdict,
            Verdict::Ok
        );
        assert_eq!(governor_finding(&[]).verdict, Verdict::Info);
    }
}
