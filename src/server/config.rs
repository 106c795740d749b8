//! `glint serve --config FILE`: the file's top-level keys are serve's long flags
//! (`data-dir = "/var/lib/glint"`), its `[[route]]` tables per-path behaviour, its `[ship]`
//! table is `glint ship`'s. Read as every config file is ([`crate::config_file`]): the command
//! line's flags override the file's.

use super::ServeArgs;
use crate::config_file::{key_flags, nested_config, parse_args, read_table};
use crate::http::route::Route;
use std::ffi::OsString;
use std::path::Path;

/// Flags that may be given several times: given on the command line, they replace the file's.
const REPEATABLE: [&str; 3] = ["--listen", "--cors-origin", "--redirect-allow"];

/// What a config file holds: flag words and routes.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub flags: Vec<OsString>,
    pub routes: Vec<Route>,
}

/// Reads and checks a config file; errors name the file and the key.
pub fn load(path: &Path) -> Result<ConfigFile, String> {
    let table = read_table(path)?;
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
            return Err(nested_config(path));
        }
        if key == "ship" {
            // `glint ship`'s section ([`crate::ship`]): one file can configure both.
            continue;
        }
        key_flags(path, &key, value, &mut out.flags)?;
    }
    Ok(out)
}

/// `glint serve`'s options from the config file (if any) with `cli`, the words after `serve`,
/// over it, and the file's routes. Serve and doctor both read the file through this.
pub fn serve_args(
    config: Option<&Path>,
    cli: &[OsString],
) -> Result<(ServeArgs, Vec<Route>), String> {
    let file = match config {
        Some(path) => load(path)?,
        None => ConfigFile::default(),
    };
    let path = config.unwrap_or(Path::new("(none)"));
    let args = parse_args("glint serve", path, &file.flags, cli, &REPEATABLE)?;
    Ok((args, file.routes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flags_and_routes_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
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
}
