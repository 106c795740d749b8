//! The units under a real PID 1: `systemd-nspawn -b` boots systemd on an overlay of this
//! machine's own root (writes go to a tmpfs, the host is untouched), after the files were
//! installed by running the `sudo install` lines of README's "Install on a server" into it.
//! A check unit inside then verifies that glint.service is active (Type=notify: READY=1 was
//! sent), a beacon is answered 200, `glint doctor` reads the service's own limits (naming its
//! MainPID, found by the data dir's lock; for a dir it does not serve, doctor's own), and a
//! `systemctl restart` keeps the records. Needs root and systemd-nspawn
//! (Debian's systemd-container, installed by .ci/run); skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GLINT: &str = env!("CARGO_BIN_EXE_glint");
/// The whole boot, checks and power-off; the previous runs took about 12 s.
const BOOT_LIMIT: Duration = Duration::from_secs(180);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|ids| ids.split_whitespace().nth(1).map(str::to_string))
        })
        .flatten();
    if uid.as_deref() != Some("0") {
        return Some("not root (mounting the overlay and booting a container need it)".into());
    }
    let nspawn = Command::new("systemd-nspawn")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !nspawn {
        return Some("systemd-nspawn missing (apt-get install systemd-container)".into());
    }
    if !Path::new("/lib/systemd/systemd").exists() {
        return Some("no /lib/systemd/systemd to boot (apt-get install systemd)".into());
    }
    None
}

/// An overlay of this machine's root filesystem: the root (without its submounts) as the read-only
/// lower layer, a tmpfs as the upper one. Unmounted and removed on drop.
struct Overlay {
    dir: PathBuf,
}

impl Overlay {
    fn mount() -> Result<Overlay, String> {
        let dir = std::env::temp_dir().join(format!("glint-nspawn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["lower", "rw", "root"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let overlay = Overlay { dir };
        let d = &overlay.dir;
        run(Command::new("mount")
            .args(["--bind", "/"])
            .arg(d.join("lower")))?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(d.join("rw")))?;
        for sub in ["rw/upper", "rw/work"] {
            std::fs::create_dir(d.join(sub)).map_err(|e| e.to_string())?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            d.join("lower").display(),
            d.join("rw/upper").display(),
            d.join("rw/work").display()
        );
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(d.join("root")))?;
        Ok(overlay)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        for sub in ["root", "rw", "lower"] {
            let _ = Command::new("umount").arg(self.dir.join(sub)).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the `sudo install ...` lines of README's install section with every absolute
/// destination under `root`, and the README's `target/release/glint` replaced by this build.
fn install_as_readme_says(root: &Path) -> Result<Vec<String>, String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).map_err(|e| e.to_string())?;
    let section = readme
        .split("## Install on a server")
        .nth(1)
        .ok_or("README has no install section")?;
    let lines: Vec<String> = section
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("sudo install "))
        .map(|l| l.split(" #").next().unwrap_or(l).trim().to_string())
        .collect();
    if lines.len() < 6 {
        return Err(format!("README install lines not found: {lines:?}"));
    }
    for line in &lines {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|a| match a {
                "target/release/glint" => GLINT.to_string(),
                a if a.starts_with('/') => format!("{}{a}", root.display()),
                a => a.to_string(),
            })
            .collect();
        run(Command::new("install").args(&args).current_dir(repo()))?;
    }
    Ok(lines)
}

/// The check that runs inside the booted container; writes `key=value` lines to REPORT.
const CHECK_SCRIPT: &str = r#"#!/bin/bash
set -u
report=/var/tmp/glint-nspawn.report
exec 2>/var/tmp/glint-nspawn.stderr
say() { echo "$1=$2" >> "$report"; }
beacon() { curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:18080/p.gif?e=$1"; }
journal() { journalctl -b -u glint -u glint-compact --no-pager -o cat > /var/tmp/glint-journal.txt 2>&1; }
say active "$(systemctl is-active glint)"
journal
pid=$(systemctl show -p MainPID --value glint)
say mainpid "$pid"
say beacon1 "$(beacon nspawn-one)"
runuser -u glint -- glint doctor --config /etc/glint/glint.toml > /var/tmp/glint-doctor.txt 2>&1
say doctor_nofile "$(grep '^RLIMIT_NOFILE' /var/tmp/glint-doctor.txt | tr -s ' ')"
say limits_nofile "$(grep 'Max open files' /proc/$pid/limits | tr -s ' ')"
mkdir -p /var/tmp/not-served && chown glint /var/tmp/not-served
say doctor_elsewhere "$(runuser -u glint -- glint doctor --data-dir /var/tmp/not-served 2>&1 | grep '^RLIMIT_NOFILE' | tr -s ' ')"
say proc_locks "$(tr '\n' '|' < /proc/locks)"
say lock_stat "$(stat -c '%d %D %i' /var/lib/glint/.serve.lock)"
systemctl restart glint
say restart "$?"
say active_after_restart "$(systemctl is-active glint)"
say mainpid_after_restart "$(systemctl show -p MainPID --value glint)"
say beacon2 "$(beacon nspawn-two)"
systemctl stop glint glint-compact
glint decode /var/lib/glint > /var/tmp/glint-decoded.jsonl
say decoded_one "$(grep -c 'e=nspawn-one' /var/tmp/glint-decoded.jsonl)"
say decoded_two "$(grep -c 'e=nspawn-two' /var/tmp/glint-decoded.jsonl)"
journal
say done yes
"#;

const CHECK_UNIT: &str = "[Unit]
Description=glint nspawn check
Wants=glint.service
After=glint.service glint-compact.service
SuccessAction=poweroff
FailureAction=poweroff
[Service]
Type=oneshot
ExecStart=/bin/bash /usr/local/libexec/glint-nspawn-check
[Install]
WantedBy=multi-user.target
";

/// Boots the container and waits (bounded) for it to power off; returns nspawn's output.
fn boot(root: &Path) -> Result<String, String> {
    let machine = format!("glint-test-{}", std::process::id());
    let log = root.join("../nspawn.log");
    let mut child = Command::new("systemd-nspawn")
        .arg("-D")
        .arg(root)
        .args(["-b", "--private-network", "--register=no", "--keep-unit"])
        .args(["--link-journal=no", "-M", &machine])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("systemd-nspawn: {e}"))?;
    let deadline = Instant::now() + BOOT_LIMIT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return if status.success() {
                Ok(out)
            } else {
                Err(format!("systemd-nspawn exited {status}:\n{out}"))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("container still up after {BOOT_LIMIT:?}:\n{out}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn units_boot_under_systemd_record_a_beacon_and_keep_it_across_a_restart() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let started = Instant::now();
    let overlay = Overlay::mount().expect("overlay of / on a tmpfs");
    let root = overlay.root();
    let installed = install_as_readme_says(&root).expect("README's install commands");
    // "then edit: listen, threads, ...": ports no service of the host's root takes, small rings.
    let config = root.join("etc/glint/glint.toml");
    let edited: String = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .map(|l| match l.split('=').next().unwrap_or("").trim() {
            "listen" => "listen = [\"127.0.0.1:18080\"]".to_string(),
            "admin-listen" => "admin-listen = \"127.0.0.1:19100\"".to_string(),
            _ => l.to_string(),
        })
        .chain(["ring-slots = 65536".to_string()])
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&config, edited).unwrap();
    // README step 3 and 4, offline: the user, and the units enabled for boot.
    run(Command::new("systemd-sysusers").arg(format!("--root={}", root.display())))
        .expect("systemd-sysusers");
    run(Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["enable", "glint", "glint-compact"]))
    .expect("systemctl enable");
    // A fresh machine id, so the container is not mistaken for the host.
    std::fs::write(root.join("etc/machine-id"), "").unwrap();
    std::fs::create_dir_all(root.join("usr/local/libexec")).unwrap();
    std::fs::write(
        root.join("usr/local/libexec/glint-nspawn-check"),
        CHECK_SCRIPT,
    )
    .unwrap();
    std::fs::write(
        root.join("etc/systemd/system/glint-nspawn-check.service"),
        CHECK_UNIT,
    )
    .unwrap();
    run(Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["enable", "glint-nspawn-check"]))
    .expect("enable the check unit");

    let console = boot(&root).unwrap_or_else(|e| panic!("{e}"));
    let report =
        std::fs::read_to_string(root.join("var/tmp/glint-nspawn.report")).unwrap_or_default();
    let stderr =
        std::fs::read_to_string(root.join("var/tmp/glint-nspawn.stderr")).unwrap_or_default();
    let get = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or("")
            .to_string()
    };
    let context = format!(
        "report:\n{report}\nstderr:\n{stderr}\ninstalled: {installed:#?}\nconsole tail:\n{}",
        console
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "booted, checked and powered off in {:.1} s\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(get("done"), "yes", "{context}");
    assert_eq!(
        get("active"),
        "active",
        "READY=1 reached systemd\n{context}"
    );
    assert_eq!(get("beacon1"), "200", "{context}");
    let pid = get("mainpid");
    assert!(
        get("doctor_nofile").contains(&format!(
            "(glint PID {pid}, holds /var/lib/glint/.serve.lock)"
        )),
        "doctor reads the service's limits\n{context}"
    );
    // A data dir nobody serves: glint.service (serving /var/lib/glint) is not taken for its glint.
    assert!(
        get("doctor_elsewhere").contains("(doctor's own: no glint serving)"),
        "{context}"
    );
    assert_eq!(get("restart"), "0", "{context}");
    assert_eq!(get("active_after_restart"), "active", "{context}");
    assert_ne!(
        get("mainpid_after_restart"),
        pid,
        "a new process\n{context}"
    );
    assert_eq!(get("beacon2"), "200", "{context}");
    assert_eq!(
        get("decoded_one"),
        "1",
        "the first beacon survived the restart\n{context}"
    );
    assert_eq!(get("decoded_two"), "1", "{context}");
    drop(overlay);
}
