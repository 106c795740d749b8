//! The shipped operations files: systemd units pass `systemd-analyze verify` and comment every
//! directive, the example config parses as `glint serve` flags, the sysctl file and tuning.md
//! agree with doctor's knob table.

mod common;

use common::tempdir;

use std::path::{Path, PathBuf};
use std::process::Command;

const GLINT: &str = env!("CARGO_BIN_EXE_glint");
const UNITS: [&str; 3] = [
    "glint.service",
    "glint-compact.service",
    "glint-ship.service",
];

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Installs the systemd package when `systemd-analyze` is missing and we are root; `None` (with
/// the reason printed) only if it still cannot run.
fn systemd_analyze() -> Option<&'static str> {
    let runs = || {
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs() {
        return Some("systemd-analyze");
    }
    eprintln!("systemd-analyze missing: trying apt-get install systemd");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if installed && runs() {
        return Some("systemd-analyze");
    }
    eprintln!("SKIPPED: systemd-analyze cannot run here (not installed, and apt-get install systemd failed)");
    None
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    // verify checks that ExecStart's binary exists, so point the copies at the one just built.
    let tmp = tempdir("units");
    let dir = tmp.path();
    let mut paths = Vec::new();
    for unit in UNITS {
        let text = read(&format!("systemd/{unit}"));
        assert!(text.contains("ExecStart=/usr/local/bin/glint "), "{unit}");
        let path = dir.join(unit);
        std::fs::write(&path, text.replace("/usr/local/bin/glint", GLINT)).unwrap();
        paths.push(path);
    }
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and bad syscall names; it only prints them.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("glint")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn verify_output_check_catches_a_broken_unit() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let tmp = tempdir("units-bad");
    let dir = tmp.path();
    let text = read("systemd/glint.service")
        .replace("/usr/local/bin/glint", GLINT)
        .replace("io_uring_enter", "io_uring_entr");
    let path = dir.join("glint.service");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("io_uring_entr"),
        "the typo went unnoticed:\n{stderr}"
    );
}

#[test]
fn every_unit_directive_has_a_comment_above_it() {
    for unit in UNITS {
        let text = read(&format!("systemd/{unit}"));
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let directive = line.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
            });
            if directive {
                let above = if i == 0 { "" } else { lines[i - 1] };
                assert!(
                    above.starts_with("# "),
                    "{unit}:{}: `{line}` has no comment above it",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn server_unit_keeps_io_uring_limits_and_notify() {
    let unit = read("systemd/glint.service");
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "LimitNOFILE=1048576",
        "LimitMEMLOCK=infinity",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "StateDirectory=glint",
        "ReadWritePaths=/var/lib/glint",
        "SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register",
        "ExecStart=/usr/local/bin/glint serve --config /etc/glint/glint.toml",
        "User=glint",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(needed)),
            "glint.service lacks {needed}"
        );
    }
    let compact = read("systemd/glint-compact.service");
    assert!(compact.contains("ExecStart=/usr/local/bin/glint compact --data-dir /var/lib/glint"));
    let sysusers = read("systemd/glint.sysusers.conf");
    assert!(sysusers.lines().any(|l| l.starts_with("u glint ")));
}

/// The unit's `Key=` value, if it sets `key`.
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// The background units yield the CPU to the server by a cgroup weight: systemd runs each
/// service in its own session, and under the kernel's autogroup a `Nice=` alone does not rank
/// one session against another (tuning.md, "CPUs and --threads").
#[test]
fn background_units_weigh_less_than_the_server_for_cpu() {
    // systemd's default CPUWeight, which glint.service keeps.
    const DEFAULT_WEIGHT: u32 = 100;
    assert_eq!(
        unit_value(&read("systemd/glint.service"), "CPUWeight"),
        None
    );
    for unit in ["glint-compact.service", "glint-ship.service"] {
        let text = read(&format!("systemd/{unit}"));
        let weight: u32 = unit_value(&text, "CPUWeight")
            .unwrap_or_else(|| panic!("{unit} sets no CPUWeight="))
            .parse()
            .unwrap_or_else(|e| panic!("{unit}: CPUWeight= is no number: {e}"));
        assert!(
            (1..DEFAULT_WEIGHT).contains(&weight),
            "{unit}: CPUWeight={weight} does not rank it below the server"
        );
        let nice: i32 = unit_value(&text, "Nice").map_or(0, |n| n.parse().unwrap());
        assert!(
            nice > 0,
            "{unit}: Nice={nice} does not rank it below the server"
        );
    }
}

/// Keys of the example config that `glint serve` does not have yet (the lead adds them).
const PENDING_SERVE_FLAGS: &[&str] = &[];

#[test]
fn example_config_ship_table_parses_as_ship_flags() {
    use clap::Args;
    let path = repo_file("systemd/glint.toml");
    let words = glint::ship::config_flags(&path).unwrap_or_else(|e| panic!("{e}"));
    let cmd = glint::ship::ShipArgs::augment_args(clap::Command::new("ship"));
    let argv = std::iter::once("ship".into()).chain(words.clone());
    let m = cmd.try_get_matches_from(argv);
    assert!(m.is_ok(), "{words:?}: {}", m.unwrap_err());
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into()).collect();
    assert!(words.contains(&"--brokers".to_string()), "{words:?}");
    assert!(
        words.contains(&"message.max.bytes=1000000".to_string()),
        "{words:?}"
    );
}

fn serve_command() -> clap::Command {
    use clap::Args;
    glint::server::ServeArgs::augment_args(clap::Command::new("serve"))
}

#[test]
fn example_config_loads_and_parses_as_serve_flags() {
    let path = repo_file("systemd/glint.toml");
    let config = glint::server::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let cmd = serve_command();
    let flags: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    for pending in PENDING_SERVE_FLAGS {
        assert!(
            !flags.contains(&format!("--{pending}")),
            "serve has --{pending} now: drop it from PENDING_SERVE_FLAGS"
        );
    }
    // Drop the pending flags' words (flag and value), keep everything else for clap to check.
    let words: Vec<String> = config
        .flags
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let mut argv = vec!["serve".to_string()];
    let mut i = 0;
    while i < words.len() {
        let pending = PENDING_SERVE_FLAGS
            .iter()
            .any(|p| words[i] == format!("--{p}"));
        let has_value = words.get(i + 1).is_some_and(|w| !w.starts_with("--"));
        let span = if has_value { 2 } else { 1 };
        if !pending {
            assert!(
                flags.contains(&words[i]),
                "systemd/glint.toml: `{}` is not a glint serve flag",
                words[i]
            );
            argv.extend_from_slice(&words[i..i + span]);
        }
        i += span;
    }
    assert!(argv.len() > 10, "{argv:?}");
    let matches = cmd.try_get_matches_from(&argv);
    assert!(matches.is_ok(), "{argv:?}: {}", matches.unwrap_err());
}

#[test]
fn sysctl_file_is_doctors_sysctl_settings() {
    let text = read("systemd/60-glint.sysctl.conf");
    let mut file: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("bad sysctl line {l:?}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut table: Vec<(String, String)> = glint::doctor::checks::SYSCTL_SETTINGS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    file.sort();
    table.sort();
    assert_eq!(file, table);
}

/// The `### ` headings under `## Knobs` in tuning.md.
fn tuning_knob_headings() -> Vec<String> {
    let text = read("tuning.md");
    let knobs = text
        .split("\n## ")
        .find(|section| section.starts_with("Knobs"))
        .expect("tuning.md has a `## Knobs` section");
    knobs
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().trim_matches('`').to_string())
        .collect()
}

#[test]
fn tuning_md_and_doctor_agree_knob_for_knob() {
    let headings = tuning_knob_headings();
    let knobs: Vec<String> = glint::doctor::checks::KNOBS
        .iter()
        .map(|k| k.name.to_string())
        .collect();
    for k in &knobs {
        assert!(
            headings.contains(k),
            "doctor checks `{k}` but tuning.md has no `### {k}` under ## Knobs"
        );
    }
    for h in &headings {
        assert!(
            knobs.contains(h),
            "tuning.md explains `{h}` but doctor does not check it"
        );
    }
    let text = read("tuning.md");
    for (name, value) in glint::doctor::checks::SYSCTL_SETTINGS {
        assert!(
            text.contains(&format!("{name} = {value}")),
            "tuning.md lacks `{name} = {value}`"
        );
    }
}

#[test]
fn install_doc_uses_the_shipped_files() {
    let text = read("README.md");
    for needed in [
        "cargo build --release",
        "systemd/glint.service",
        "systemd/glint-compact.service",
        "systemd/glint.sysusers.conf",
        "systemd/glint.toml",
        "systemd/60-glint.sysctl.conf",
        "systemctl enable --now glint",
        "glint doctor",
        "curl",
    ] {
        assert!(
            text.contains(needed),
            "README.md's install section lacks `{needed}`"
        );
    }
}

/// Top-level folders of this repository: a word in the docs starting with one of them followed
/// by `/` names a file of the checkout.
const REPO_DIRS: [&str; 8] = [
    "systemd", "docs", "loadtest", "tests", "src", "benches", "fuzz", ".ci",
];

/// Paths into the checkout that `text` names: words like `systemd/glint.toml` or `tuning.md`
/// (globs and placeholders skipped).
fn repo_paths(text: &str) -> Vec<String> {
    let is_sep = |c: char| c.is_whitespace() || "`()[]<>,;:\"'|".contains(c);
    let mut out: Vec<String> = text
        .split(is_sep)
        .map(|w| w.trim_end_matches(['.', '!', '?']))
        .filter(|w| !w.contains(['*', '{', '$']) && !w.contains("..."))
        .filter(|w| {
            let first = w.split('/').next().unwrap_or("");
            (w.contains('/') && REPO_DIRS.contains(&first))
                || (!w.contains('/') && w.ends_with(".md") && w.len() > 3)
        })
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Absolute paths an installed unit relies on that the install steps put there.
fn installed_paths(unit: &str) -> Vec<&str> {
    unit.split(|c: char| c.is_whitespace() || c == '=' || c == ':')
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.starts_with("/usr/") || w.starts_with("/etc/glint/"))
        .collect()
}

#[test]
fn every_path_the_units_and_readme_name_exists() {
    let mut missing = Vec::new();
    let mut docs = vec!["README.md".to_string()];
    docs.extend(UNITS.iter().map(|u| format!("systemd/{u}")));
    for doc in &docs {
        for path in repo_paths(&read(doc)) {
            if !repo_file(&path).exists() {
                missing.push(format!("{doc} names {path}"));
            }
        }
    }
    let readme = read("README.md");
    for unit in UNITS {
        for path in installed_paths(&read(&format!("systemd/{unit}"))) {
            if !readme.contains(path) {
                missing.push(format!(
                    "{unit} relies on {path}, which README's install never puts there"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn path_check_sees_a_dangling_reference() {
    let found = repo_paths("Install: see docs/install.md. Or (`systemd/glint.toml`), tuning.md; 4xx/5xx glint-data/ring-*.glr");
    assert_eq!(
        found,
        ["docs/install.md", "systemd/glint.toml", "tuning.md"]
    );
    assert!(!repo_file("docs/install.md").exists());
    assert_eq!(
        installed_paths("ExecStart=/usr/local/bin/glint serve --config /etc/glint/glint.toml\nReadWritePaths=/var/lib/glint"),
        ["/usr/local/bin/glint", "/etc/glint/glint.toml"]
    );
}

/// The install section's disk figure is what serve's defaults preallocate per core.
#[test]
fn install_section_states_the_default_ring_size_per_core() {
    let defaults = glint::doctor::plan::serve_defaults();
    let per_core = glint::ring::format::file_len(defaults.slot_size, defaults.ring_slots).unwrap();
    let human = glint::units::format_bytes;
    let readme = read("README.md");
    for figure in [
        format!("which is {} per core with the defaults", human(per_core)),
        format!("(2 workers: {})", human(2 * per_core)),
    ] {
        assert!(readme.contains(&figure), "README.md lacks `{figure}`");
    }
}
