//! Every documented `glint ...` command runs as written: the examples in README.md, docs/*.md,
//! tuning.md, the systemd units and the `--help` texts are extracted and run against a data
//! dir with records; none may end in a usage error (exit 2, "unexpected argument").
//!
//! Shell code blocks (```sh) are read line by line, with `\` continuations joined and every
//! command of a pipeline or `&&` list that invokes glint (also as `sudo -u glint glint ...` or
//! `/usr/local/bin/glint ...`) taken; inline code spans that start with `glint ` are taken too.
//! Paths are mapped to the test's files (`/var/lib/glint` and `./glint-data` to the data dir,
//! `/etc/glint/glint.toml` to a copy of `systemd/glint.toml`, any URL or Kafka broker to a
//! closed loopback port);
//! a server gets `127.0.0.1:0`, no admin port, small rings and its own data dir. A command still
//! running after a few seconds (serve, compact without `--once`, `decode --follow`, loadgen)
//! got past argument parsing and is stopped. Synopses with `[optional]` parts or placeholders
//! other than `URL` are not commands and are listed as skipped.

mod common;

use common::{roundtrip, signal, tempdir, Server, GLINT};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The subcommands, as `glint --help` lists them (so a new one is covered without a change here).
fn subcommands() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new(GLINT).arg("--help").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let list: Vec<String> = text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| *name != "help")
            .map(String::from)
            .collect();
        assert!(list.len() >= 5, "subcommands in glint --help: {list:?}");
        list
    })
}
/// How long a command may run before it is taken as long-running and stopped.
const RUN_LIMIT: Duration = Duration::from_secs(3);
/// A loopback port nothing listens on (the discard port): loadgen's traffic goes nowhere.
const CLOSED_URL: &str = "http://127.0.0.1:9";

/// One documented command: where it was found and its words after `glint`.
#[derive(Debug, Clone)]
struct Example {
    at: String,
    words: Vec<String>,
}

/// Splits a shell line into words and operators (`|`, `&&`, `;`, `>`, ...), dropping a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(q),
                    }
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '|' | '&' | ';' | '>' | '<' | '(' | ')' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                words.push(c.to_string());
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The glint invocations in a list of shell words: the words after `glint` up to an operator.
fn glint_commands(words: &[String]) -> Vec<Vec<String>> {
    let is_op = |w: &str| matches!(w, "|" | "&" | ";" | ">" | "<" | "(" | ")");
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < words.len() {
        let w = words[i].as_str();
        if (w == "glint" || w.ends_with("/glint")) && subcommands().contains(&words[i + 1]) {
            let end = words[i + 1..]
                .iter()
                .position(|w| is_op(w))
                .map_or(words.len(), |p| i + 1 + p);
            out.push(words[i + 1..end].to_vec());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Commands of shell code blocks and inline code spans of one markdown (or plain) text.
fn markdown_examples(name: &str, text: &str, whole_lines: bool) -> Vec<Example> {
    let mut out = Vec::new();
    let mut block: Option<bool> = None; // Some(is_shell) inside a fenced block
    let mut prose = String::new();
    let mut prose_lines = Vec::new();
    let mut joined = String::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(matches!(lang.trim(), "sh" | "bash" | "console" | "shell")),
            };
            continue;
        }
        match block {
            Some(true) => {
                joined.push_str(line.trim_end().trim_end_matches('\\'));
                joined.push(' ');
                if line.trim_end().ends_with('\\') {
                    continue;
                }
                for words in glint_commands(&shell_words(&joined)) {
                    out.push(Example {
                        at: format!("{name}:{}", n + 1),
                        words,
                    });
                }
                joined.clear();
            }
            Some(false) => {}
            None => {
                if whole_lines && trimmed.starts_with("glint ") {
                    for words in glint_commands(&shell_words(trimmed)) {
                        out.push(Example {
                            at: format!("{name}:{}", n + 1),
                            words,
                        });
                    }
                }
                prose.push_str(line);
                prose.push(' ');
                prose_lines.push((prose.len(), n + 1));
            }
        }
    }
    // Inline spans may wrap across lines: split the prose (lines joined) at backticks.
    let mut at = 0;
    for (i, span) in prose.split('`').enumerate() {
        if i % 2 == 1 && span.starts_with("glint ") {
            let line = prose_lines
                .iter()
                .find(|(end, _)| *end > at)
                .map_or(0, |(_, l)| *l);
            for words in glint_commands(&shell_words(span)) {
                // `glint loadgen` alone in prose names the command; it is not an example.
                if words.len() > 1 {
                    out.push(Example {
                        at: format!("{name}:{line} (inline)"),
                        words,
                    });
                }
            }
        }
        at += span.len() + 1;
    }
    out
}

fn all_examples(root: &Path) -> Vec<Example> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![repo.join("README.md"), repo.join("tuning.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(repo).unwrap().display().to_string();
        out.extend(markdown_examples(&name, &text, false));
    }
    for unit in ["glint.service", "glint-compact.service"] {
        let text = std::fs::read_to_string(repo.join("systemd").join(unit)).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(cmd) = line.strip_prefix("ExecStart=") {
                for words in glint_commands(&shell_words(cmd)) {
                    out.push(Example {
                        at: format!("systemd/{unit}:{}", n + 1),
                        words,
                    });
                }
            }
        }
    }
    let helps = std::iter::once(vec![]).chain(subcommands().iter().map(|s| vec![s.as_str()]));
    for sub in helps {
        let out_help = Command::new(GLINT)
            .args(&sub)
            .arg("--help")
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out_help.status.success());
        let text = String::from_utf8(out_help.stdout).unwrap();
        let name = format!(
            "glint {}--help",
            sub.iter().map(|s| format!("{s} ")).collect::<String>()
        );
        out.extend(markdown_examples(&name, &text, true));
    }
    out
}

/// A synopsis rather than a command: optional parts or placeholders other than URL.
fn is_synopsis(words: &[String]) -> bool {
    words.iter().any(|w| {
        w.starts_with('[')
            || w.contains('<')
            || w.contains('…')
            || w.contains("...")
            || (w.len() > 1 && w != "URL" && w.chars().all(|c| c.is_ascii_uppercase()))
    })
}

/// Maps the documented paths and addresses to the test's files.
fn localize(words: &[String], root: &Path) -> Vec<String> {
    let data = root.join("glint-data");
    let data = data.to_str().unwrap();
    let config = root.join("glint.toml");
    words
        .iter()
        .map(|w| {
            if w == "URL" {
                return format!("{CLOSED_URL}/p.gif");
            }
            if let Some(rest) = w.strip_prefix("http://").or(w.strip_prefix("https://")) {
                let path = rest.find('/').map_or("/", |i| &rest[i..]);
                return format!("{CLOSED_URL}{path}");
            }
            w.replace("/etc/glint/glint.toml", config.to_str().unwrap())
                .replace("/var/lib/glint", data)
        })
        .collect()
}

/// Sets `flag`'s value wherever it is given (`--flag V` or `--flag=V`), or appends it.
fn set_flag(words: &mut Vec<String>, flag: &str, value: &str) {
    let mut found = false;
    let mut i = 0;
    while i < words.len() {
        if words[i] == flag && i + 1 < words.len() {
            words[i + 1] = value.to_string();
            found = true;
            i += 2;
            continue;
        }
        if words[i].starts_with(&format!("{flag}=")) {
            words[i] = format!("{flag}={value}");
            found = true;
        }
        i += 1;
    }
    if !found {
        words.extend([flag.to_string(), value.to_string()]);
    }
}

fn has_flag(words: &[String], flag: &str) -> bool {
    words
        .iter()
        .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
}

/// Runs one example; `Err` describes a usage error.
fn run(example: &Example, root: &Path, n: usize) -> Result<(), String> {
    let mut words = localize(&example.words, root);
    let help = words.iter().any(|w| w == "--help" || w == "-h");
    if words[0] == "ship" && !help && has_flag(&words, "--brokers") {
        // A closed loopback port: no traffic leaves the machine.
        set_flag(&mut words, "--brokers", "127.0.0.1:9");
    }
    if words[0] == "ship" && !help && has_flag(&words, "--to") {
        // The S3 endpoint a closed loopback port (the last --s3-opt wins), no admin port.
        words.extend(
            [
                "--s3-opt",
                "endpoint=http://127.0.0.1:9",
                "--s3-opt",
                "allow_http=true",
            ]
            .map(String::from),
        );
        set_flag(&mut words, "--admin-listen", "off");
    }
    if words[0] == "serve" && !help {
        // Its own data dir and loopback port: the documented flags are what is tested.
        set_flag(&mut words, "--listen", "127.0.0.1:0");
        set_flag(&mut words, "--admin-listen", "off");
        let dir = root.join(format!("serve-{n}"));
        set_flag(&mut words, "--data-dir", dir.to_str().unwrap());
        if !has_flag(&words, "--ring-slots") {
            set_flag(&mut words, "--ring-slots", "1024");
        }
        if !has_flag(&words, "--threads") {
            set_flag(&mut words, "--threads", "1");
        }
    }
    let mut child = Command::new(GLINT)
        .args(&words)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr as it comes: a chatty child must not block on a full pipe.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let started = Instant::now();
    let mut stopping = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        match stopping {
            // Still running: its arguments were accepted. Stop it as an operator would.
            None if started.elapsed() > RUN_LIMIT => {
                signal(&child, "-TERM");
                stopping = Some(Instant::now());
            }
            Some(at) if at.elapsed() > Duration::from_secs(15) => {
                let _ = child.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap();
    let usage = status.code() == Some(2)
        || stderr.contains("unexpected argument")
        || stderr.contains("invalid value")
        || stderr.contains("For more information, try '--help'");
    if usage {
        return Err(format!(
            "{}: `glint {}` (run as `glint {}`): {}",
            example.at,
            example.words.join(" "),
            words.join(" "),
            stderr.trim()
        ));
    }
    Ok(())
}

#[test]
fn every_documented_command_runs_without_a_usage_error() {
    let root_tmp = tempdir("doc-commands");
    let root = root_tmp.path();
    let data = root.join("glint-data");
    let server = Server::start(&data, &["--io", "epoll"]);
    let mut stream = server.connect();
    for i in 0..5 {
        let raw = format!("GET /p.gif?doc={i} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(roundtrip(&mut stream, raw.as_bytes()).unwrap().status, 200);
    }
    drop(stream);
    assert!(server.stop().success());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(repo.join("systemd/glint.toml"), root.join("glint.toml")).unwrap();

    let examples = all_examples(root);
    let (synopses, runnable): (Vec<_>, Vec<_>) =
        examples.into_iter().partition(|e| is_synopsis(&e.words));
    // The extraction itself must keep working: the README's quick start and the analytics
    // loader line are found.
    let found = |s: &str| runnable.iter().any(|e| e.words.join(" ") == s);
    assert!(found(
        "decode ./glint-data --format csv --fields ts,ip,method,path,query,status --from -1h"
    ));
    assert!(found("decode /var/lib/glint --from -1h"));
    assert!(found("serve --config /etc/glint/glint.toml"));
    assert!(
        runnable.len() >= 20,
        "only {} commands found",
        runnable.len()
    );
    for s in &synopses {
        println!("skipped synopsis {}: glint {}", s.at, s.words.join(" "));
    }
    let failures: Vec<String> = runnable
        .iter()
        .enumerate()
        .filter_map(|(n, e)| run(e, root, n).err())
        .collect();
    println!("ran {} documented commands", runnable.len());
    assert!(
        failures.is_empty(),
        "{} documented command(s) end in a usage error:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn shell_lines_are_split_into_glint_commands() {
    let words = shell_words(
        "sudo -u glint /usr/local/bin/glint decode '/a b' --where \"ua~x y\" | head # note",
    );
    assert_eq!(
        glint_commands(&words),
        [["decode", "/a b", "--where", "ua~x y"]
            .map(String::from)
            .to_vec()]
    );
    let words = shell_words("glint compact --once && glint decode x > out.jsonl");
    assert_eq!(glint_commands(&words).len(), 2);
    let md =
        "`glint serve` and `glint decode\nDIR --stats` and\n```sh\nglint doctor \\\n  --data-dir d  # c\n```\n";
    let found: Vec<String> = markdown_examples("m", md, false)
        .iter()
        .map(|e| format!("{} {}", e.at, e.words.join(" ")))
        .collect();
    assert_eq!(
        found,
        ["m:5 doctor --data-dir d", "m:1 (inline) decode DIR --stats"]
    );
    assert!(is_synopsis(&shell_words("loadgen URL [-R RATE]")));
    assert!(!is_synopsis(&shell_words("loadgen URL -c 64")));
}
