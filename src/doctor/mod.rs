//! `glint doctor`: reads this machine's settings for every knob in `tuning.md` and prints a
//! table (current value, recommended value, OK or the exact command to change it).
//!
//! It never writes. Exit status 1 when a check would stop glint from working: io_uring
//! unavailable with `--io uring`, a data dir that is missing or not writable, too few file
//! descriptors, no room for the rings. Run it as the service user so permissions are the ones
//! glint will have; `--config` reads what serve will use from its config file. When a glint is
//! already serving the data dir, the rlimit rows judge that process's limits ([`service`]).
//!
//! Modules:
//! - [`checks`]: the knob table: what doctor checks and `tuning.md` explains.
//! - [`host`]: io_uring, rlimits, CPUs, transparent huge pages, cpufreq.
//! - [`machine`]: reading procfs, sysfs, rlimits and the mount table.
//! - [`net`]: balancer-side sysctls, socket buffers, NIC queues, IRQs, RPS/RFS, busy polling.
//! - [`plan`]: what serve will run with: doctor's flags over serve's config over its defaults.
//! - [`service`]: the glint serving a data dir and its real limits.
//! - [`shipping`]: the shipper's settings and how far its cursor is.
//! - [`storage`]: the data dir, its filesystem and mount options, room for the rings.

pub mod checks;
pub mod host;
pub mod machine;
pub mod net;
pub mod plan;
pub mod service;
pub mod shipping;
pub mod storage;

use self::checks::{Context, Finding, Verdict, KNOBS};
use crate::server::IoBackend;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `glint doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// glint serve's config file (e.g. /etc/glint/glint.toml): its data-dir, io, threads,
    /// slot-size and ring-slots are what doctor checks; the flags below win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory glint serve will use: checked for existence, write permission
    /// (without writing), free space for its rings, filesystem and mount options. A glint
    /// already serving it (holding its lock) is the process whose limits are judged
    /// [default: the config's data-dir, else serve's default ./glint-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The I/O backend glint serve will be started with; with `uring` an unavailable
    /// io_uring is a failure, with `auto` glint would fall back to epoll [default: auto].
    #[arg(long, value_enum)]
    pub io: Option<IoBackend>,
    /// The worker threads glint serve will run [default: the CPUs this process may use]:
    /// compared with CPUs and NIC queues, and used to size the rings' disk space.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs `glint doctor`.
pub fn run(args: DoctorArgs) -> Result<ExitCode, crate::BoxError> {
    let plan = plan::resolve(&args)?;
    let cpus = crate::sys::allowed_cpus();
    let ctx = Context {
        threads: plan.threads.unwrap_or(cpus.len()).max(1),
        cpus,
        data_dir: plan.data_dir.clone(),
        io: plan.io,
        slot_size: plan.slot_size,
        ring_slots: plan.ring_slots,
        kernel: machine::kernel_version(),
        nics: machine::physical_nics(),
        serving: service::find(&plan.data_dir),
        config: args.config.clone(),
    };
    let rows: Vec<(&str, &str, Finding)> = KNOBS
        .iter()
        .map(|k| (k.name, k.recommended, (k.check)(&ctx)))
        .collect();
    print!("{}", render(&rows));
    let failed: Vec<String> = rows
        .iter()
        .filter(|(_, _, f)| f.verdict == Verdict::Fail)
        .map(|(name, _, f)| format!("{name}: {}", f.note))
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(format!(
        "{} check(s) would stop glint: {}",
        failed.len(),
        failed.join("; ")
    )
    .into())
}

/// The table: one line per knob, and under each that is not OK an indented line with the
/// command to run (CHANGE, FAIL) or why nothing is judged (INFO).
pub fn render(rows: &[(&str, &str, Finding)]) -> String {
    let width = |col: fn(&(&str, &str, Finding)) -> usize, title: &str| {
        rows.iter().map(col).max().unwrap_or(0).max(title.len())
    };
    let w_name = width(|r| r.0.len(), "KNOB");
    let w_current = width(|r| r.2.current.len(), "CURRENT");
    let w_rec = width(|r| r.1.len(), "RECOMMENDED");
    let mut out = format!(
        "{:w_name$}  {:w_current$}  {:w_rec$}  STATUS\n",
        "KNOB", "CURRENT", "RECOMMENDED"
    );
    for (name, recommended, f) in rows {
        out.push_str(&format!(
            "{name:w_name$}  {:w_current$}  {recommended:w_rec$}  {}\n",
            f.current,
            f.verdict.label()
        ));
        match f.verdict {
            Verdict::Ok => {}
            Verdict::Info => out.push_str(&format!("    why: {}\n", f.note)),
            Verdict::Change | Verdict::Fail => out.push_str(&format!("    fix: {}\n", f.note)),
        }
    }
    let count = |v: Verdict| rows.iter().filter(|r| r.2.verdict == v).count();
    out.push_str(&format!(
        "\n{} OK, {} to change, {} info, {} failed\n",
        count(Verdict::Ok),
        count(Verdict::Change),
        count(Verdict::Info),
        count(Verdict::Fail)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_fixes_under_their_rows() {
        let rows = vec![
            ("a.knob", ">= 1", Finding::ok("5")),
            (
                "b",
                "on",
                Finding::new("off", Verdict::Change, "turn-it-on --now"),
            ),
            ("c", "x", Finding::new("y", Verdict::Fail, "broken")),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "KNOB    CURRENT  RECOMMENDED  STATUS");
        assert_eq!(lines[1], "a.knob  5        >= 1         OK");
        assert_eq!(lines[2], "b       off      on           CHANGE");
        assert_eq!(lines[3], "    fix: turn-it-on --now");
        assert_eq!(lines[5], "    fix: broken");
        assert_eq!(
            lines.last().unwrap(),
            &"1 OK, 1 to change, 0 info, 1 failed"
        );
    }
}
