//! `--config FILE`: a TOML file whose keys are the long flags of `glint serve` (kebab-case,
//! `data-dir = "/var/lib/glint"`), plus `[[route]]` tables for per-path behaviour. Flags on the
//! command line override the file: the file's keys are turned into flags placed before the
//! command line's, and the command line's last word wins.

use crate::http::route::Route;
use std::ffi::OsString;
use std::path::Path;

/// What a config file holds: flag words and routes.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub flags: Vec<OsString>,
    pub routes: Vec<Route>,
}

/// Reads and checks a config file; errors name the file and the key.
pub fn load(path: &Path) -> Result<ConfigFile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("config {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!("config {}: {}", path.display(), e.to_string().trim())
    })?;
    let mut out = ConfigFile::default();
    for (key, value) in table {
        if key == "route" {
            out.routes = value.try_into().map_err(|e: toml::de::Error| {
                format!(
                    "config {}: [[route]]: {}",
                    path.display(),
                    e.to_string().trim()
                )
            })?;
            continue;
        }
        if key == "config" {
            return Err(format!(
                "config {}: a config file cannot name another config file",
                path.display()
            ));
        }
        if key == "ship" {
            // `glint ship`'s section ([`crate::ship`]): one file can configure both.
            continue;
        }
        key_flags(path, &key, value, &mut out.flags)?;
    }
    Ok(out)
}

/// Turns one TOML key into flag words: `key = "v"` -> `--key v`, `key = true` -> `--key`,
/// an array repeats the flag. Errors name the file and the key.
pub fn key_flags(
    path: &Path,
    key: &str,
    value: toml::Value,
    flags: &mut Vec<OsString>,
) -> Result<(), String> {
    let flag = format!("--{}", key.replace('_', "-"));
    let items = match value {
        toml::Value::Array(items) => items,
        single => vec![single],
    };
    for item in items {
        match item {
            toml::Value::Boolean(true) => flags.push(flag.clone().into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => flags.extend([flag.clone().into(), s.into()]),
            toml::Value::Integer(i) => flags.extend([flag.clone().into(), i.to_string().into()]),
            toml::Value::Float(f) => flags.extend([flag.clone().into(), f.to_string().into()]),
            other => {
                return Err(format!(
                    "config {}: key {key:?}: unsupported value {other}",
                    path.display()
                ))
            }
        }
    }
    Ok(())
}

/// Merges the file's flags with the command line's words after `serve`: repeatable flags given
/// on the command line replace the file's values instead of adding to them.
pub fn merge(file_flags: &[OsString], cli: &[OsString], repeatable: &[&str]) -> Vec<OsString> {
    let on_cli = |flag: &str| {
        cli.iter().any(|w| {
            w.to_str()
                .is_some_and(|w| w == flag || w.starts_with(&format!("{flag}=")))
        })
    };
    let mut merged = Vec::with_capacity(file_flags.len() + cli.len());
    let mut i = 0;
    while i < file_flags.len() {
        let word = file_flags[i].to_str().unwrap_or_default();
        let takes_value = file_flags
            .get(i + 1)
            .and_then(|w| w.to_str())
            .is_some_and(|w| !w.starts_with("--"));
        let span = if takes_value { 2 } else { 1 };
        if !(repeatable.contains(&word) && on_cli(word)) {
            merged.extend_from_slice(&file_flags[i..i + span]);
        }
        i += span;
    }
    merged.extend_from_slice(cli);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flags_and_routes_parse() {
        let dir = std::env::temp_dir().join(format!("glint-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("glint.toml");
        std::fs::write(
            &path,
            "listen = [\"0.0.0.0:80\", \"[::]:80\"]\ndata_dir = \"/var/lib/glint\"\nthreads = 4\nip-anonymize = true\nproxy-protocol = false\n[[route]]\npath = \"/quiet\"\nresponse = \"204\"\nrecord = false\n",
        )
        .unwrap();
        let cfg = load(&path).unwrap();
        let words: Vec<String> = cfg
            .flags
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        // Keys come out in the table's (sorted) order; flag order does not matter to clap.
        assert_eq!(
            words,
            [
                "--data-dir",
                "/var/lib/glint",
                "--ip-anonymize",
                "--listen",
                "0.0.0.0:80",
                "--listen",
                "[::]:80",
                "--threads",
                "4"
            ]
        );
        assert_eq!(cfg.routes.len(), 1);
        assert!(!cfg.routes[0].record);
        std::fs::write(&path, "[[route]]\npath = \"/x\"\nresponse = \"teapot\"\n").unwrap();
        assert!(load(&path).unwrap_err().contains("[[route]]"));
        std::fs::write(&path, "threads = [\n").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .starts_with(&format!("config {}", path.display())));
    }

    #[test]
    fn command_line_replaces_repeatable_and_follows_single_flags() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let file = os(&["--listen", "0.0.0.0:80", "--threads", "4", "--ip-anonymize"]);
        let merged = merge(
            &file,
            &os(&["--listen", "127.0.0.1:9", "--threads", "1"]),
            &["--listen"],
        );
        assert_eq!(
            merged,
            os(&[
                "--threads",
                "4",
                "--ip-anonymize",
                "--listen",
                "127.0.0.1:9",
                "--threads",
                "1"
            ])
        );
    }
}
