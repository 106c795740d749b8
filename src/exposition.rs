//! The Prometheus text exposition format (0.0.4), written one way for `glint serve`'s admin
//! listener and `glint ship`'s: a family's `# HELP` and `# TYPE` lines, its samples, label values
//! escaped as the format requires.

use std::fmt::{Display, Write as _};

/// The `# HELP` and `# TYPE` lines that open a family; `kind` is `counter` or `gauge`.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A family of one unlabelled sample.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value escaped as the format requires (backslash, double quote, newline).
pub fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escapes() {
        let mut out = String::new();
        single(&mut out, "glint_x_total", "counter", "Things.", 7);
        family(&mut out, "glint_y", "gauge", "Levels.");
        assert_eq!(
            out,
            "# HELP glint_x_total Things.\n# TYPE glint_x_total counter\nglint_x_total 7\n\
             # HELP glint_y Levels.\n# TYPE glint_y gauge\n"
        );
        assert_eq!(label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
