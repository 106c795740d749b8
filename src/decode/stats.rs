//! `--stats`: a summary of the selected records instead of the records.

use super::columns::split_target;
use super::filter::Filter;
use super::merge::Merger;
use super::output::{Output, OutputError};
use super::source::{Origin, Problems};
use super::time::format_rfc3339;
use crate::record::{flags, RecordView};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

const MINUTE_NS: u64 = 60_000_000_000;
const HOUR_NS: u64 = 60 * MINUTE_NS;
/// Spans up to this long are counted per minute, longer ones per hour.
const PER_MINUTE_UP_TO: u64 = 3 * HOUR_NS;
/// Entries in the top-paths and top-user-agents lists.
const TOP: usize = 10;

/// Counts gathered over the records.
#[derive(Default)]
pub struct Summary {
    pub total: u64,
    pub truncated: u64,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
    pub per_minute: BTreeMap<u64, u64>,
    pub per_core: BTreeMap<u16, u64>,
    /// Records per instance id (with its name); records of no known instance are not counted.
    pub per_instance: HashMap<String, (String, u64)>,
    pub paths: HashMap<Vec<u8>, u64>,
    pub user_agents: HashMap<Vec<u8>, u64>,
}

fn count(map: &mut HashMap<Vec<u8>, u64>, key: &[u8]) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_vec(), 1);
        }
    }
}

impl Summary {
    pub fn add(&mut self, rec: &RecordView<'_>, origin: Option<&Origin>) {
        let ts = rec.ts_ns();
        if let Some(o) = origin {
            match self.per_instance.get_mut(&o.id_hex) {
                Some((_, n)) => *n += 1,
                None => {
                    self.per_instance
                        .insert(o.id_hex.clone(), (o.name.clone(), 1));
                }
            }
        }
        self.total += 1;
        self.truncated += u64::from(rec.flags() & flags::TRUNC_ANY != 0);
        self.first_ns = Some(self.first_ns.map_or(ts, |f| f.min(ts)));
        self.last_ns = self.last_ns.max(ts);
        *self.per_minute.entry(ts / MINUTE_NS).or_default() += 1;
        *self.per_core.entry(rec.core()).or_default() += 1;
        count(&mut self.paths, split_target(rec.target()).0);
        count(&mut self.user_agents, rec.user_agent());
    }

    /// The summary as text lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let Some(first) = self.first_ns else {
            s.push_str("records: 0\n");
            return s;
        };
        let span = self.last_ns - first;
        let share = 100.0 * self.truncated as f64 / self.total as f64;
        let _ = writeln!(s, "records: {}", self.total);
        let _ = writeln!(
            s,
            "span: {} .. {} ({:.3} s)",
            format_rfc3339(first),
            format_rfc3339(self.last_ns),
            span as f64 / 1e9
        );
        let _ = writeln!(s, "truncated: {} ({share:.2}%)", self.truncated);
        let cores: Vec<String> = self
            .per_core
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        let _ = writeln!(s, "per core: {}", cores.join(" "));
        if !self.per_instance.is_empty() {
            let mut per: Vec<_> = self.per_instance.iter().collect();
            per.sort_by(|a, b| (&a.1 .0, a.0).cmp(&(&b.1 .0, b.0)));
            let list: Vec<String> = per
                .iter()
                .map(|(id, (name, n))| format!("{name} ({})={n}", &id[..8]))
                .collect();
            let _ = writeln!(s, "per instance: {}", list.join(" "));
        }
        let (unit, label) = if span <= PER_MINUTE_UP_TO {
            (MINUTE_NS, "minute")
        } else {
            (HOUR_NS, "hour")
        };
        let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
        for (minute, n) in &self.per_minute {
            *buckets.entry(minute * MINUTE_NS / unit * unit).or_default() += n;
        }
        let _ = writeln!(s, "per {label}:");
        for (start, n) in buckets {
            let _ = writeln!(s, "  {}  {n}", &format_rfc3339(start)[..16]);
        }
        top_list(&mut s, "top paths", &self.paths);
        top_list(&mut s, "top user agents", &self.user_agents);
        s
    }
}

fn top_list(s: &mut String, title: &str, map: &HashMap<Vec<u8>, u64>) {
    let mut entries: Vec<(&Vec<u8>, &u64)> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let _ = writeln!(s, "{title}:");
    for (key, n) in entries.into_iter().take(TOP) {
        let text = String::from_utf8_lossy(key);
        let _ = writeln!(s, "  {n:>10}  {}", text.escape_debug());
    }
}

/// Summarises the records passing `filter` and prints the summary.
pub fn run(
    merger: &mut Merger,
    filter: &mut Filter,
    out: &mut Output<'_>,
    problems: &mut Problems,
) -> Result<(), OutputError> {
    let mut summary = Summary::default();
    while let Some((bytes, origin)) = merger.next(problems) {
        let rec = RecordView::parse(bytes).expect("sources hold validated records");
        if filter.matches(&rec, origin) {
            summary.add(&rec, origin);
        }
    }
    out.buf.extend_from_slice(summary.render().as_bytes());
    out.flush()
}
