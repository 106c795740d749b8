//! The TOML file of `--config`, read one way for every subcommand: its keys are long flags
//! (`data-dir = "/var/lib/glint"`, snake_case too), turned into flag words placed before the
//! command line's, so clap checks the file exactly as it checks the command line and the
//! command line's last word wins. `serve` (and `doctor`, which reads what serve will run with)
//! take the top-level keys and `[[route]]` tables ([`crate::server::config`]); `ship` takes
//! the `[ship]` table ([`crate::ship::config_flags`]). Errors name the file and, when it is the
//! file's, the key.

use std::ffi::OsString;
use std::path::Path;

/// Reads and parses the file; errors name it.
pub fn read_table(path: &Path) -> Result<toml::Table, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("config {shown}: {e}"))?;
    text.parse()
        .map_err(|e: toml::de::Error| format!("config {shown}: {}", e.to_string().trim()))
}

/// The error for a `config = ...` key: files do not nest.
pub fn nested_config(path: &Path) -> String {
    format!(
        "config {}: a config file cannot name another config file",
        path.display()
    )
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
        let value = match item {
            toml::Value::Boolean(true) => {
                flags.push(flag.clone().into());
                continue;
            }
            toml::Value::Boolean(false) => continue,
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(format!(
                    "config {}: key {key:?}: unsupported value {other}",
                    path.display()
                ))
            }
        };
        if value.starts_with('-') {
            // One word, or clap would read `-2` as a flag of its own.
            flags.push(format!("{flag}={value}").into());
        } else {
            flags.extend([flag.clone().into(), value.into()]);
        }
    }
    Ok(())
}

/// The flag of a word: `--threads` of `--threads=-2`.
fn flag_name(word: &OsString) -> &str {
    let word = word.to_str().unwrap_or_default();
    word.split_once('=').map_or(word, |(flag, _)| flag)
}

/// Merges the file's flags with the command line's words after the subcommand: repeatable
/// flags given on the command line replace the file's values instead of adding to them.
pub fn merge(file_flags: &[OsString], cli: &[OsString], repeatable: &[&str]) -> Vec<OsString> {
    let mut merged = Vec::with_capacity(file_flags.len() + cli.len());
    for (flag, span) in flag_spans(file_flags) {
        let word = flag_name(&flag[0]);
        if !(repeatable.contains(&word) && on_command_line(cli, word)) {
            merged.extend_from_slice(span);
        }
    }
    merged.extend_from_slice(cli);
    merged
}

/// The file's flag words in groups: each flag with its value, if it has one.
fn flag_spans(file_flags: &[OsString]) -> impl Iterator<Item = (&[OsString], &[OsString])> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let flag = file_flags.get(i..i + 1)?;
        let takes_value = file_flags
            .get(i + 1)
            .and_then(|w| w.to_str())
            .is_some_and(|w| !w.starts_with("--"))
            && !flag[0].to_str().unwrap_or_default().contains('=');
        let span = &file_flags[i..i + if takes_value { 2 } else { 1 }];
        i += span.len();
        Some((flag, span))
    })
}

fn on_command_line(cli: &[OsString], flag: &str) -> bool {
    cli.iter().any(|w| {
        w.to_str()
            .is_some_and(|w| w == flag || w.strip_prefix(flag).is_some_and(|v| v.starts_with('=')))
    })
}

/// The command line's words after `subcommand` (none if it is not there).
pub fn command_line_after(subcommand: &str) -> Vec<OsString> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    argv.iter()
        .position(|w| w == subcommand)
        .map_or_else(Vec::new, |i| argv[i + 1..].to_vec())
}

/// Parses the file's flags followed by the command line's words as the options `A` of
/// `command` (e.g. "glint serve"); a later word overrides an earlier one.
pub fn parse_args<A: clap::Args + clap::FromArgMatches>(
    command: &'static str,
    path: &Path,
    file_flags: &[OsString],
    cli: &[OsString],
    repeatable: &[&str],
) -> Result<A, String> {
    let cmd = A::augment_args(clap::Command::new(command).args_override_self(true));
    let words = merge(file_flags, cli, repeatable);
    cmd.try_get_matches_from(std::iter::once(OsString::from(command)).chain(words))
        .and_then(|m| A::from_arg_matches(&m))
        .map_err(|e| clap_error(path, file_flags, cli, &e))
}

/// One line for a clap error: the file, the key when the bad flag came from the file (and not
/// from the command line too), and clap's first line.
fn clap_error(path: &Path, file_flags: &[OsString], cli: &[OsString], e: &clap::Error) -> String {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let flag = match e.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(arg)) => {
            arg.split([' ', '=']).next().unwrap_or_default().to_string()
        }
        _ => String::new(),
    };
    let from_file = flag.starts_with("--")
        && flag_spans(file_flags).any(|(f, _)| flag_name(&f[0]) == flag)
        && !on_command_line(cli, &flag);
    if from_file {
        format!("config {}: key {:?}: {first}", path.display(), &flag[2..])
    } else {
        format!("config {}: {first}", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_line_replaces_repeatable_and_follows_single_flags() {
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
        // `--listen=ADDR` on the command line counts as giving --listen; `--listener` does not.
        let merged = merge(&file, &os(&["--listen=127.0.0.1:9"]), &["--listen"]);
        assert_eq!(merged[0], "--threads");
        let merged = merge(&file, &os(&["--listener"]), &["--listen"]);
        assert_eq!(merged[0], "--listen");
    }

    #[derive(Debug, clap::Args)]
    struct Opts {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long)]
        name: Option<String>,
    }

    #[test]
    fn errors_name_the_key_only_when_the_file_gave_it() {
        let path = Path::new("/etc/glint/glint.toml");
        let file = os(&["--threads", "x"]);
        let e = parse_args::<Opts>("t", path, &file, &[], &[]).unwrap_err();
        assert!(
            e.starts_with("config /etc/glint/glint.toml: key \"threads\": invalid value 'x'"),
            "{e}"
        );
        // A value starting with `-` is one word with its flag, so clap reads it as the value.
        let mut negative = Vec::new();
        key_flags(path, "threads", toml::Value::Integer(-2), &mut negative).unwrap();
        assert_eq!(negative, os(&["--threads=-2"]));
        let e = parse_args::<Opts>("t", path, &negative, &[], &[]).unwrap_err();
        assert!(e.contains("key \"threads\""), "{e}");
        let e = parse_args::<Opts>("t", path, &file, &os(&["--threads", "y"]), &[]).unwrap_err();
        assert!(!e.contains("key "), "{e}");
        let e = parse_args::<Opts>("t", path, &os(&["--nope", "1"]), &[], &[]).unwrap_err();
        assert!(e.contains("key \"nope\"") && e.contains("'--nope'"), "{e}");
        let file = os(&["--threads", "2", "--name", "a"]);
        let ok = parse_args::<Opts>("t", path, &file, &os(&["--threads", "3"]), &[]).unwrap();
        assert_eq!((ok.threads, ok.name.as_deref()), (3, Some("a")));
    }
}
