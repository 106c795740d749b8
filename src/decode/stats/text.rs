//! `decode --stats` as text lines.

use super::group::key_values;
use super::{bucket_name, others_name, shown, shown_entry, top_entries, Summary};
use crate::agent::AgentClass;
use crate::decode::time::format_rfc3339;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Width of a count column.
const COUNT_WIDTH: usize = 10;

/// The summary as text lines; lists and groups hold at most `top` entries (0: all).
pub fn render(s: &Summary, top: usize) -> String {
    let mut out = String::new();
    let Some(first) = s.first_ns else {
        out.push_str("records: 0\n");
        return out;
    };
    let span = s.span_ns();
    let share = |n: u64| 100.0 * n as f64 / s.total as f64;
    let _ = writeln!(out, "records: {}", s.total);
    let _ = writeln!(
        out,
        "span: {} .. {} ({:.3} s)",
        format_rfc3339(first),
        format_rfc3339(s.last_ns),
        span as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "truncated: {} ({:.2}%)",
        s.truncated,
        share(s.truncated)
    );
    let _ = writeln!(
        out,
        "errors: {} ({:.2}%, status 400 and up)",
        s.errors(),
        share(s.errors())
    );
    let pairs = |list: Vec<String>| list.join(" ");
    let cores = s.per_core.iter().map(|(c, n)| format!("{c}={n}")).collect();
    let _ = writeln!(out, "per core: {}", pairs(cores));
    if !s.per_instance.is_empty() {
        let mut per: Vec<_> = s.per_instance.iter().collect();
        per.sort_by(|a, b| (&a.1 .0, a.0).cmp(&(&b.1 .0, b.0)));
        let list = per
            .iter()
            .map(|(id, (name, n))| format!("{name} ({})={n}", &id[..8]))
            .collect();
        let _ = writeln!(out, "per instance: {}", pairs(list));
    }
    let statuses = s
        .per_status
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect();
    let _ = writeln!(out, "per status: {}", pairs(statuses));
    let classes = AgentClass::ALL
        .iter()
        .map(|c| format!("{}={}", c.as_str(), s.classes[*c as usize]))
        .collect();
    let _ = writeln!(out, "per agent class: {}", pairs(classes));
    let unit = s.unit();
    let _ = writeln!(out, "per {}:", unit.name);
    for (start, tally) in s.buckets() {
        let _ = writeln!(out, "  {}  {}", bucket_name(start, unit), tally.total);
    }
    top_list(&mut out, "top paths", &s.paths.map, s.paths.other, top);
    top_list(&mut out, "top agents", &s.labels, 0, top);
    top_list(
        &mut out,
        "top referers",
        &s.referers.map,
        s.referers.other,
        top,
    );
    let uas = &s.user_agents;
    top_list(&mut out, "top user agents", &uas.map, uas.other, top);
    if !s.by.keys.is_empty() {
        groups(&mut out, s, top);
    }
    out
}

fn top_list<K: AsRef<[u8]> + Ord>(
    out: &mut String,
    title: &str,
    map: &HashMap<K, u64>,
    other: u64,
    top: usize,
) {
    let _ = writeln!(out, "{title}:");
    for (key, n) in top_entries(map, top) {
        let _ = writeln!(out, "  {n:>COUNT_WIDTH$}  {}", shown_entry(key.as_ref()));
    }
    if other > 0 {
        let _ = writeln!(out, "  {other:>COUNT_WIDTH$}  {}", others_name());
    }
}

/// The `--by` table: count, one column per agent class, then the key values.
fn groups(out: &mut String, s: &Summary, top: usize) {
    let names: Vec<&str> = s.by.keys.iter().map(|k| k.name()).collect();
    let _ = writeln!(
        out,
        "by {} ({} groups):",
        names.join(","),
        s.groups.map.len()
    );
    let width = |c: &AgentClass| c.as_str().len().max(COUNT_WIDTH);
    let _ = write!(out, "  {:>COUNT_WIDTH$}", "count");
    for c in &AgentClass::ALL {
        let _ = write!(out, "  {:>w$}", c.as_str(), w = width(c));
    }
    let _ = writeln!(out, "  {}", names.join(" "));
    for (key, counts) in s.top_groups(top) {
        let _ = write!(out, "  {:>COUNT_WIDTH$}", counts.iter().sum::<u64>());
        for c in &AgentClass::ALL {
            let _ = write!(out, "  {:>w$}", counts[*c as usize], w = width(c));
        }
        let values: Vec<String> = key_values(key)
            .iter()
            .zip(&names)
            .map(|(v, name)| match v {
                Some(v) => format!("{name}=\"{}\"", shown(v)),
                None => format!("{name}=(none)"),
            })
            .collect();
        let _ = writeln!(out, "  {}", values.join(" "));
    }
    let other = &s.groups.other;
    if other.iter().sum::<u64>() > 0 {
        let _ = write!(out, "  {:>COUNT_WIDTH$}", other.iter().sum::<u64>());
        for c in &AgentClass::ALL {
            let _ = write!(out, "  {:>w$}", other[*c as usize], w = width(c));
        }
        let _ = writeln!(out, "  {}", others_name());
    }
}
