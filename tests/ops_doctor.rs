//! `glint doctor` run as a child process against real directories and real rlimits.

mod common;

use common::tempdir;
use std::path::Path;
use std::process::{Command, Output};

use common::GLINT;

fn doctor(data_dir: &Path, extra: &[&str]) -> Output {
    Command::new(GLINT)
        .args(["doctor", "--threads", "1", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("run glint doctor")
}

/// (knob, status) of every table row, found by the known knob names.
fn rows(stdout: &str) -> Vec<(&'static str, String)> {
    glint::doctor::checks::KNOBS
        .iter()
        .filter_map(|k| {
            let line = stdout.lines().find(|l| {
                l.strip_prefix(k.name)
                    .is_some_and(|rest| rest.starts_with("  "))
            })?;
            Some((k.name, line.split_whitespace().last()?.to_string()))
        })
        .collect()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn writable_dir_lists_every_knob_and_exits_by_hard_failures_only() {
    let tmp = tempdir("ok");
    let dir = tmp.path();
    let out = doctor(dir, &[]);
    let (stdout, stderr) = text(&out);
    let rows = rows(&stdout);
    let names: Vec<&str> = rows.iter().map(|(n, _)| *n).collect();
    for knob in glint::doctor::checks::KNOBS {
        assert!(
            names.contains(&knob.name),
            "no row for {}:\n{stdout}",
            knob.name
        );
    }
    for (name, status) in &rows {
        assert!(
            ["OK", "INFO", "CHANGE", "FAIL"].contains(&status.as_str()),
            "{name}: {status}"
        );
    }
    let status_of = |knob: &str| rows.iter().find(|(n, _)| *n == knob).unwrap().1.clone();
    assert_eq!(status_of("data dir"), "OK", "{stdout}");
    let failed: Vec<_> = rows.iter().filter(|(_, s)| s == "FAIL").collect();
    // A machine can fail on its own (say RLIMIT_NOFILE below 1024); the exit status must say so.
    assert_eq!(
        out.status.success(),
        failed.is_empty(),
        "{failed:?}\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("{} failed", failed.len())),
        "{stdout}"
    );
}

#[test]
fn doctor_never_writes_into_the_data_dir() {
    let tmp = tempdir("readonly");
    let dir = tmp.path();
    std::fs::write(dir.join("keep"), b"x").unwrap();
    let before = std::fs::metadata(dir).unwrap().modified().unwrap();
    let _ = doctor(dir, &[]);
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["keep"]);
    assert_eq!(std::fs::metadata(dir).unwrap().modified().unwrap(), before);
}

#[test]
fn missing_data_dir_fails_with_one_clear_line() {
    let tmp = tempdir("missing");
    let dir = tmp.path().join("nope");
    let out = doctor(&dir, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("missing") && stdout.contains("FAIL"),
        "{stdout}"
    );
    let line = format!("data dir {} does not exist", dir.display());
    assert_eq!(
        stderr.lines().filter(|l| l.contains(&line)).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_file_as_data_dir_fails() {
    let tmp = tempdir("file");
    let dir = tmp.path();
    let file = dir.join("ring-000.glr");
    std::fs::write(&file, b"not a dir").unwrap();
    let out = doctor(&file, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("is not a directory"), "{stderr}");
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|uid| uid == "0"))
        .unwrap()
}

#[test]
fn unwritable_data_dir_fails() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempdir("unwritable");
    let dir = tmp.path();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root may write anywhere: run the child as nobody so the mode bits count.
    let mut cmd = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", GLINT]);
        c
    } else {
        Command::new(GLINT)
    };
    let out = match cmd
        .args(["doctor", "--threads", "1", "--data-dir"])
        .arg(&data)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: cannot drop to an unprivileged user with setpriv: {e}");
            return;
        }
    };
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "data dir {} is not writable by uid",
            data.display()
        )),
        "{stderr}"
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn low_nofile_limit_fails() {
    let tmp = tempdir("nofile");
    let dir = tmp.path();
    let script = format!(
        "ulimit -n 64 && exec '{GLINT}' doctor --threads 1 --data-dir '{}'",
        dir.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("RLIMIT_NOFILE"))
        .unwrap();
    assert!(
        row.contains("soft 64 / hard 64") && row.ends_with("FAIL"),
        "{row}"
    );
    assert!(stderr.contains("only 64 file descriptors"), "{stderr}");
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(GLINT)
        .args(["doctor", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--data-dir", "--io", "--threads"] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(help.contains("uring") && help.contains("epoll"), "{help}");
}

#[test]
fn zero_threads_is_rejected() {
    let tmp = tempdir("zero");
    let dir = tmp.path();
    let out = Command::new(GLINT)
        .args(["doctor", "--threads", "0", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}

#[test]
fn config_file_sets_what_is_checked_and_flags_win() {
    let tmp = tempdir("config");
    let dir = tmp.path();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let config = dir.join("glint.toml");
    let toml = format!(
        "listen = [\"127.0.0.1:80\"]\ndata-dir = \"{}\"\nthreads = 3\nring-slots = 4096\n",
        data.display()
    );
    std::fs::write(&config, toml).unwrap();
    let out = Command::new(GLINT)
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("--threads 3"), "{stdout}\n{stderr}");
    // 3 rings of 4096 slots x 512 bytes plus a 4 KiB header each.
    assert!(
        stdout
            .contains("rings 2.0 MiB/core x 3 threads = 6.0 MiB (existing 0 B, new need 6.0 MiB)"),
        "{stdout}"
    );
    let data_row = stdout
        .lines()
        .find(|l| l.starts_with("data dir  "))
        .unwrap();
    assert!(data_row.ends_with("OK"), "{data_row}");
    // A flag beats the file: a missing --data-dir fails although the file's exists.
    let out = Command::new(GLINT)
        .args(["doctor", "--threads", "1", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("absent"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("--threads 1"), "{stdout}");
    assert!(stderr.contains("absent does not exist"), "{stderr}");
}

#[test]
fn shipped_example_config_is_read() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/glint.toml");
    let tmp = tempdir("example");
    let dir = tmp.path();
    let out = doctor(dir, &["--config", example.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!stderr.contains("config "), "{stderr}");
    let io_row = stdout
        .lines()
        .find(|l| l.starts_with("io_uring  "))
        .unwrap();
    assert!(
        !io_row.contains("unused"),
        "example says io = auto: {io_row}"
    );
}

#[test]
fn unreadable_config_is_one_clear_line() {
    let tmp = tempdir("badconfig");
    let dir = tmp.path();
    let config = dir.join("glint.toml");
    std::fs::write(&config, "io = \"fast\"\n").unwrap();
    let out = doctor(dir, &["--config", config.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("config {}: key \"io\"", config.display())),
        "{stderr}"
    );
}

/// With a glint serving the data dir, the rlimit rows show that process's limits (found by the
/// data dir's lock), not doctor's own, and a limit below the shipped unit's is flagged. The
/// existing rings' size and what a fresh start needs are both on the free-space line.
#[test]
fn limits_are_read_from_the_glint_serving_the_data_dir() {
    let tmp = tempdir("serving");
    let dir = tmp.path();
    let mut serve = Command::new("prlimit")
        .args([
            "--nofile=4096:4096",
            GLINT,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--admin-listen",
            "off",
            "--threads",
            "1",
            "--ring-slots",
            "4096",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs glint serve");
    let doctor_row = || {
        let out = Command::new("prlimit")
            .args([
                "--nofile=3000:3000",
                GLINT,
                "doctor",
                "--threads",
                "2",
                "--data-dir",
            ])
            .arg(dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let row = |name: &str| {
            stdout
                .lines()
                .skip_while(|l| !l.starts_with(name))
                .take(2)
                .collect::<Vec<_>>()
                .join("\n")
        };
        (row("RLIMIT_NOFILE"), row("data dir free space"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (nofile, space) = loop {
        let rows = doctor_row();
        // The lock is taken before the ring is made: wait for both.
        let ready = rows.0.contains("glint PID") && !rows.1.contains("existing 0 B");
        if ready || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let pid = serve.id();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        nofile.contains(&format!("soft 4096 / hard 4096 (glint PID {pid}, holds "))
            && nofile.contains(".serve.lock)"),
        "{nofile}"
    );
    assert!(nofile.contains("CHANGE"), "{nofile}");
    assert!(
        nofile.contains("below the unit's LimitNOFILE=1048576"),
        "{nofile}"
    );
    // One existing ring (4096 slots: 2 MiB + 4 KiB) beside what serve's defaults would
    // preallocate per core, and the second thread's ring still to come.
    let defaults = glint::doctor::plan::serve_defaults();
    let per_core = glint::ring::format::file_len(defaults.slot_size, defaults.ring_slots).unwrap();
    let human = glint::units::format_bytes;
    let want = format!(
        "rings {}/core x 2 threads = {} (existing 2.0 MiB, new need {})",
        human(per_core),
        human(2 * per_core),
        human(per_core)
    );
    assert!(space.contains(&want), "{space}\nwant {want}");
    let (after, _) = doctor_row();
    assert!(
        after.contains("soft 3000 / hard 3000 (doctor's own: no glint serving)"),
        "{after}"
    );
}
