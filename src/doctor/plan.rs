//! What `glint serve` will run with, as far as doctor cares: doctor's flags over serve's config
//! file over serve's own defaults (taken from its clap definition, so they cannot drift).

use super::DoctorArgs;
use crate::server::{IoBackend, ServeArgs};
use std::path::{Path, PathBuf};

/// The serve settings doctor checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServePlan {
    pub data_dir: PathBuf,
    pub io: IoBackend,
    /// `None`: one worker per allowed CPU.
    pub threads: Option<usize>,
    pub slot_size: usize,
    pub ring_slots: u64,
}

/// Resolves doctor's flags, the config file (if given) and serve's defaults.
pub fn resolve(args: &DoctorArgs) -> Result<ServePlan, String> {
    let mut plan = serve_defaults();
    if let Some(path) = &args.config {
        apply_config(&mut plan, path)?;
    }
    if let Some(dir) = &args.data_dir {
        plan.data_dir = dir.clone();
    }
    if let Some(io) = args.io {
        plan.io = io;
    }
    if args.threads.is_some() {
        plan.threads = args.threads;
    }
    if plan.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    Ok(plan)
}

/// `glint serve`'s defaults, parsed from an empty serve command line.
pub fn serve_defaults() -> ServePlan {
    use clap::{Args, FromArgMatches};
    let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let serve = cmd
        .try_get_matches_from(["serve"])
        .map_err(|e| e.to_string())
        .and_then(|m| ServeArgs::from_arg_matches(&m).map_err(|e| e.to_string()))
        .expect("glint serve parses with no flags");
    ServePlan {
        data_dir: serve.data_dir,
        io: serve.io,
        threads: serve.threads,
        slot_size: serve.slot_size,
        ring_slots: serve.ring_slots,
    }
}

/// Reads the keys doctor needs from serve's TOML config (`data-dir` or `data_dir`).
fn apply_config(plan: &mut ServePlan, path: &Path) -> Result<(), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("config {shown}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("config {shown}: {}", e.to_string().trim()))?;
    let get = |key: &str| table.get(key).or_else(|| table.get(&key.replace('-', "_")));
    let bad = |key: &str, want: &str| format!("config {shown}: key {key:?} must be {want}");
    if let Some(v) = get("data-dir") {
        plan.data_dir = v
            .as_str()
            .ok_or_else(|| bad("data-dir", "a path string"))?
            .into();
    }
    if let Some(v) = get("io") {
        use clap::ValueEnum;
        let name = v.as_str().ok_or_else(|| bad("io", "a string"))?;
        plan.io = IoBackend::from_str(name, true).map_err(|_| bad("io", "auto, uring or epoll"))?;
    }
    let count = |key: &str| -> Result<Option<u64>, String> {
        get(key)
            .map(|v| {
                v.as_integer()
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| bad(key, "a non-negative integer"))
            })
            .transpose()
    };
    if let Some(n) = count("threads")? {
        plan.threads = Some(n as usize);
    }
    if let Some(n) = count("slot-size")? {
        plan.slot_size = n as usize;
    }
    if let Some(n) = count("ring-slots")? {
        plan.ring_slots = n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, data_dir: Option<&str>, threads: Option<usize>) -> DoctorArgs {
        DoctorArgs {
            config,
            data_dir: data_dir.map(PathBuf::from),
            io: None,
            threads,
        }
    }

    fn write_config(tag: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "glint-doctor-plan-{tag}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_serves() {
        let plan = resolve(&args(None, None, None)).unwrap();
        assert_eq!(plan.data_dir, PathBuf::from("./glint-data"));
        assert_eq!((plan.io, plan.threads), (IoBackend::Auto, None));
        assert_eq!((plan.slot_size, plan.ring_slots), (512, 1 << 20));
    }

    #[test]
    fn config_keys_apply_and_flags_win() {
        let path = write_config(
            "ok",
            "listen = [\"0.0.0.0:80\"]\ndata_dir = \"/srv/glint\"\nio = \"epoll\"\nthreads = 3\nring-slots = 4096\nadmin-listen = \"127.0.0.1:9100\"\n",
        );
        let plan = resolve(&args(Some(path.clone()), None, None)).unwrap();
        assert_eq!(plan.data_dir, PathBuf::from("/srv/glint"));
        assert_eq!(
            (plan.io, plan.threads, plan.ring_slots),
            (IoBackend::Epoll, Some(3), 4096)
        );
        let plan = resolve(&args(Some(path.clone()), Some("/tmp/x"), Some(1))).unwrap();
        assert_eq!(
            (plan.data_dir, plan.threads),
            (PathBuf::from("/tmp/x"), Some(1))
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_config_values_name_the_file_and_key() {
        let path = write_config("bad", "io = \"fast\"\n");
        let e = resolve(&args(Some(path.clone()), None, None)).unwrap_err();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("\"io\""),
            "{e}"
        );
        std::fs::write(&path, "threads = -2\n").unwrap();
        let e = resolve(&args(Some(path.clone()), None, None)).unwrap_err();
        assert!(e.contains("\"threads\""), "{e}");
        std::fs::write(&path, "threads = [oops\n").unwrap();
        assert!(resolve(&args(Some(path.clone()), None, None))
            .unwrap_err()
            .starts_with("config "));
        std::fs::remove_file(&path).unwrap();
        let e = resolve(&args(Some(path.clone()), None, None)).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}
