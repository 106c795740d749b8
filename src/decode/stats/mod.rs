//! `--stats`: a summary of the selected records instead of the records.
//!
//! [`Summary`] is the one aggregation behind both `decode --stats` ([`text`]) and
//! `glint report` (`crate::report`), so the terminal and the page cannot disagree: counts per
//! minute/hour/day split by status and by agent class, per core, instance, status and agent,
//! top paths, referers and user agents, and the `--by` groups ([`group`]) with their counts
//! per agent class (people's browsers apart from mail proxies, scanners and bots).
//!
//! Modules:
//! - [`group`]: `--by`: the keys records are grouped by.
//! - [`text`]: the summary as text lines.

pub mod group;
pub mod text;

use super::columns::split_target;
use super::filter::Filter;
use super::merge::Merger;
use super::output::{Output, OutputError};
use super::source::{Origin, Problems};
use crate::agent::{AgentClass, Classifier, Labeler};
use crate::record::{flags, RecordView};
use group::{GroupKey, KeyBuilder, KeyBytes};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const MINUTE_NS: u64 = 60_000_000_000;
pub const HOUR_NS: u64 = 60 * MINUTE_NS;
pub const DAY_NS: u64 = 24 * HOUR_NS;
/// Spans up to this long are counted per minute.
pub const PER_MINUTE_UP_TO: u64 = 3 * HOUR_NS;
/// Longer spans up to this long are counted per hour, longer ones per day.
pub const PER_HOUR_UP_TO: u64 = 7 * DAY_NS;
/// Entries in each top list and groups shown when `--top` is not given.
pub const DEFAULT_TOP: usize = 10;
/// Most distinct values counted apart per list (paths, referers, user agents, `--by` groups):
/// unique referers or campaign ids must not grow memory with the records read. Records of
/// values first seen beyond that are counted together ([`Bounded::other`]).
pub const MAX_DISTINCT: usize = 1 << 18;

/// Counts per agent class, indexed by `AgentClass as usize` (in [`AgentClass::ALL`] order).
pub type ClassCounts = [u64; AgentClass::ALL.len()];

/// The counts of one time bucket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub classes: ClassCounts,
    /// (status, count), a handful of distinct statuses: searched linearly.
    pub statuses: Vec<(u16, u64)>,
}

impl Tally {
    fn add(&mut self, status: u16, class: AgentClass) {
        self.total += 1;
        self.classes[class as usize] += 1;
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status, 1)),
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        for &(status, n) in &other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.statuses.push((status, n)),
            }
        }
    }

    /// The count of `status` in this bucket.
    pub fn status(&self, status: u16) -> u64 {
        self.statuses
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }
}

/// The time unit counts are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub ns: u64,
    pub name: &'static str,
}

/// The unit for a span: minutes up to 3 hours, hours up to 7 days, days beyond.
pub fn unit_for_span(span_ns: u64) -> Unit {
    if span_ns <= PER_MINUTE_UP_TO {
        Unit {
            ns: MINUTE_NS,
            name: "minute",
        }
    } else if span_ns <= PER_HOUR_UP_TO {
        Unit {
            ns: HOUR_NS,
            name: "hour",
        }
    } else {
        Unit {
            ns: DAY_NS,
            name: "day",
        }
    }
}

/// A bucket's start as shown: `2025-11-24T16:05` (a day: `2025-11-24`).
pub fn bucket_name(start_ns: u64, unit: Unit) -> String {
    let mut t = super::time::format_rfc3339(start_ns);
    t.truncate(if unit.ns == DAY_NS { 10 } else { 16 });
    t
}

/// Counts gathered over the records.
pub struct Summary {
    pub total: u64,
    pub truncated: u64,
    pub first_ns: Option<u64>,
    pub last_ns: u64,
    pub per_minute: BTreeMap<u64, Tally>,
    pub per_core: BTreeMap<u16, u64>,
    /// Records per instance id (with its name); records of no known instance are not counted.
    pub per_instance: HashMap<String, (String, u64)>,
    pub per_status: BTreeMap<u16, u64>,
    pub classes: ClassCounts,
    /// Records per agent label (`bot:googlebot`).
    pub labels: HashMap<String, u64>,
    pub paths: Bounded<u64>,
    pub user_agents: Bounded<u64>,
    pub referers: Bounded<u64>,
    /// Records per `--by` group key, per agent class.
    pub groups: Bounded<ClassCounts>,
    pub by: KeyBuilder,
    labeler: Labeler,
    key: KeyBytes,
}

/// Counts per distinct value (`V`: a count, or counts per agent class), at most `cap` values.
#[derive(Debug, Clone)]
pub struct Bounded<V> {
    pub map: HashMap<Vec<u8>, V>,
    /// The counts of records whose value was first seen when `cap` values were counted.
    pub other: V,
    cap: usize,
}

impl<V: Default> Bounded<V> {
    pub fn new(cap: usize) -> Bounded<V> {
        Bounded {
            map: HashMap::new(),
            other: V::default(),
            cap,
        }
    }

    /// The counts of `key` (of [`Bounded::other`] when the list is full and `key` is new).
    pub fn slot(&mut self, key: &[u8]) -> &mut V {
        if !self.map.contains_key(key) {
            if self.map.len() >= self.cap {
                return &mut self.other;
            }
            self.map.insert(key.to_vec(), V::default());
        }
        self.map.get_mut(key).expect("inserted above")
    }
}

/// How the values beyond [`MAX_DISTINCT`] show in lists.
pub fn others_name() -> String {
    format!("(values beyond the first {MAX_DISTINCT} distinct)")
}

impl Summary {
    /// An empty summary labelling agents with `agents` and grouping by `by`.
    pub fn new(agents: Arc<Classifier>, by: Vec<GroupKey>) -> Summary {
        Summary {
            total: 0,
            truncated: 0,
            first_ns: None,
            last_ns: 0,
            per_minute: BTreeMap::new(),
            per_core: BTreeMap::new(),
            per_instance: HashMap::new(),
            per_status: BTreeMap::new(),
            classes: ClassCounts::default(),
            labels: HashMap::new(),
            paths: Bounded::new(MAX_DISTINCT),
            user_agents: Bounded::new(MAX_DISTINCT),
            referers: Bounded::new(MAX_DISTINCT),
            groups: Bounded::new(MAX_DISTINCT),
            by: KeyBuilder::new(by),
            labeler: Labeler::new(agents),
            key: Vec::new(),
        }
    }

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
        let (label, class) = self.labeler.classify(rec.user_agent(), rec.client_ip());
        match self.labels.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                self.labels.insert(label.to_string(), 1);
            }
        }
        self.classes[class as usize] += 1;
        self.per_minute
            .entry(ts / MINUTE_NS)
            .or_default()
            .add(rec.status(), class);
        *self.per_core.entry(rec.core()).or_default() += 1;
        *self.per_status.entry(rec.status()).or_default() += 1;
        *self.paths.slot(split_target(rec.target()).0) += 1;
        *self.user_agents.slot(rec.user_agent()) += 1;
        *self.referers.slot(rec.referer()) += 1;
        if !self.by.keys.is_empty() {
            self.by.build(&mut self.key, rec, origin, &mut self.labeler);
            self.groups.slot(&self.key)[class as usize] += 1;
        }
    }

    /// Reads every record of `merger` that passes `filter`; `progress` is called now and then
    /// with the number of records read so far.
    pub fn read_all(
        &mut self,
        merger: &mut Merger,
        filter: &mut Filter,
        problems: &mut Problems,
        progress: &mut dyn FnMut(u64),
    ) {
        let mut read = 0u64;
        while let Some((bytes, origin)) = merger.next(problems) {
            let rec = RecordView::parse(bytes).expect("sources hold validated records");
            if filter.matches(&rec, origin) {
                self.add(&rec, origin);
            }
            read += 1;
            if read % (1 << 16) == 0 {
                progress(read);
            }
        }
    }

    /// The span from the first to the last record (0 without records).
    pub fn span_ns(&self) -> u64 {
        self.first_ns.map_or(0, |f| self.last_ns - f)
    }

    /// The unit the per-time counts are shown in, chosen by the span.
    pub fn unit(&self) -> Unit {
        unit_for_span(self.span_ns())
    }

    /// Counts per unit: (bucket start, counts) for each bucket that has records, in time order.
    pub fn buckets(&self) -> Vec<(u64, Tally)> {
        let unit = self.unit().ns;
        let mut out: Vec<(u64, Tally)> = Vec::new();
        for (minute, tally) in &self.per_minute {
            let start = minute * MINUTE_NS / unit * unit;
            match out.last_mut() {
                Some((s, t)) if *s == start => t.merge(tally),
                _ => out.push((start, tally.clone())),
            }
        }
        out
    }

    /// Records that got an error answer (status 400 and up).
    pub fn errors(&self) -> u64 {
        self.per_status.range(400..).map(|(_, n)| n).sum()
    }

    /// The groups by count (most first, then by key), at most `top` of them (0: all).
    pub fn top_groups(&self, top: usize) -> Vec<(&[u8], &ClassCounts)> {
        let mut all: Vec<(&[u8], &ClassCounts)> = self
            .groups
            .map
            .iter()
            .map(|(k, c)| (k.as_slice(), c))
            .collect();
        let sum = |c: &ClassCounts| c.iter().sum::<u64>();
        all.sort_by(|a, b| sum(b.1).cmp(&sum(a.1)).then_with(|| a.0.cmp(b.0)));
        all.truncate(limit(top, all.len()));
        all
    }
}

/// `--top N` as a length: 0 means all.
fn limit(top: usize, len: usize) -> usize {
    if top == 0 {
        len
    } else {
        top.min(len)
    }
}

/// The entries of `map` by count (most first, then by key), at most `top` of them (0: all).
pub fn top_entries<K: Ord>(map: &HashMap<K, u64>, top: usize) -> Vec<(&K, u64)> {
    let mut entries: Vec<(&K, u64)> = map.iter().map(|(k, n)| (k, *n)).collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    entries.truncate(limit(top, entries.len()));
    entries
}

/// A value from a record as shown in summaries: invalid UTF-8 as U+FFFD, control characters,
/// quotes and backslashes escaped as in Rust strings (`\n`, `\u{1b}`), so one value is one line.
pub fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

/// How an empty value (no User-Agent, no Referer) shows in a top list.
pub const EMPTY: &str = "(empty)";

/// A top-list entry as shown: [`shown`], or [`EMPTY`].
pub fn shown_entry(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        EMPTY.to_string()
    } else {
        shown(bytes)
    }
}

/// Summarises the records passing `filter` and prints the summary.
pub fn run(
    merger: &mut Merger,
    filter: &mut Filter,
    summary: &mut Summary,
    top: usize,
    out: &mut Output<'_>,
    problems: &mut Problems,
) -> Result<(), OutputError> {
    summary.read_all(merger, filter, problems, &mut |_| {});
    out.buf
        .extend_from_slice(text::render(summary, top).as_bytes());
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_list_counts_new_values_together() {
        let mut b: Bounded<u64> = Bounded::new(2);
        for key in ["a", "b", "a", "c", "d", "b", "c"] {
            *b.slot(key.as_bytes()) += 1;
        }
        assert_eq!((b.map[&b"a"[..]], b.map[&b"b"[..]], b.other), (2, 2, 3));
        assert_eq!(b.map.len(), 2);
        assert_eq!(top_entries(&b.map, 1), [(&b"a".to_vec(), 2)]);
    }

    #[test]
    fn units_follow_the_span() {
        assert_eq!(unit_for_span(0).name, "minute");
        assert_eq!(unit_for_span(PER_MINUTE_UP_TO).name, "minute");
        assert_eq!(unit_for_span(PER_MINUTE_UP_TO + 1).name, "hour");
        assert_eq!(unit_for_span(PER_HOUR_UP_TO + 1).name, "day");
        let day = unit_for_span(PER_HOUR_UP_TO + 1);
        assert_eq!(bucket_name(1_764_000_000_000_000_000, day), "2025-11-24");
    }
}
