//! The serving stack imports downward only: server -> http -> ingest -> ring -> record (see
//! README "Architecture"). A `use` (or path) that reaches a layer above its own fails here.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Each layer's sources and the modules above it, which it must never name.
const LAYERS: [(&str, &[&str]); 4] = [
    ("src/http", &["server"]),
    ("src/ingest", &["server", "http"]),
    ("src/ring", &["server", "http", "ingest"]),
    ("src/record.rs", &["server", "http", "ingest", "ring"]),
];

fn sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Whether a line of code names one of `above` through `crate::` (also inside `crate::{...}`).
fn names_any(code: &str, above: &[&str]) -> bool {
    code.match_indices("crate::").any(|(i, m)| {
        let rest = &code[i + m.len()..];
        let paths = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or(""),
            None => rest,
        };
        paths.split(',').any(|p| {
            let name = p
                .trim()
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next();
            name.is_some_and(|n| above.contains(&n))
        })
    })
}

#[test]
fn no_layer_imports_one_above_it() {
    let mut upward = Vec::new();
    for (layer, above) in LAYERS {
        let mut files = Vec::new();
        sources(&Path::new(ROOT).join(layer), &mut files);
        assert!(!files.is_empty(), "{layer}: no sources found");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                // Comments may mention other layers (doc links); code may not.
                let code = line.split("//").next().unwrap_or("");
                if names_any(code, above) {
                    upward.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports upward:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_upward_paths_in_every_form() {
    let above = ["server", "http"];
    for code in [
        "use crate::server::stats::CoreStats;",
        "use crate::{record, server};",
        "use crate::{http::parse::Reject, ring::RingWriter};",
        "    let s = crate::server::stats::CoreStats::default();",
        "use crate::http;",
    ] {
        assert!(names_any(code, &above), "missed: {code}");
    }
    for code in [
        "use crate::record::RecordFields;",
        "use crate::{ring, record};",
        "use crate::httpdate;",
    ] {
        assert!(!names_any(code, &above), "flagged: {code}");
    }
}

/// One layout for unit tests (README "Development"): inline `mod tests`, or `tests.rs` beside
/// the `mod.rs` of a module directory. No source file is pulled in by `#[path]`.
#[test]
fn no_source_file_is_included_by_path() {
    let mut files = Vec::new();
    sources(&Path::new(ROOT).join("src"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.split("//").next().unwrap_or("").contains("#[path") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "#[path] in src:\n{}", found.join("\n"));
}
