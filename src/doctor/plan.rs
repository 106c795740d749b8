//! What `glint serve` will run with, as far as doctor cares: doctor's flags over serve's config
//! file over serve's own defaults. The file is read by serve's own reader
//! ([`crate::server::config::serve_args`]), so doctor sees what serve would, refusals included.

use super::DoctorArgs;
use crate::server::{IoBackend, ServeArgs};
use std::path::PathBuf;

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

/// Resolves doctor's flags over what serve reads from the config file (if given) and its own
/// defaults.
pub fn resolve(args: &DoctorArgs) -> Result<ServePlan, String> {
    let (serve, _routes) = crate::server::config::serve_args(args.config.as_deref(), &[])?;
    let mut plan = ServePlan::from(&serve);
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
    let (serve, _) =
        crate::server::config::serve_args(None, &[]).expect("glint serve parses with no flags");
    ServePlan::from(&serve)
}

impl From<&ServeArgs> for ServePlan {
    fn from(serve: &ServeArgs) -> Self {
        ServePlan {
            data_dir: serve.data_dir.clone(),
            io: serve.io,
            threads: serve.threads,
            slot_size: serve.slot_size,
            ring_slots: serve.ring_slots,
        }
    }
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

    /// `text` as `glint.toml` in a fresh directory, removed when the returned guard drops.
    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("glint.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
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
        let (_dir, path) = write_config(
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
    }

    #[test]
    fn bad_config_values_name_the_file_and_key() {
        let (_dir, path) = write_config("io = \"fast\"\n");
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
