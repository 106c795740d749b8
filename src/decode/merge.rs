//! The k-way merge of all sources by (ts, core, seq), printing each (instance, core, seq) once.

use super::source::{Key, Origin, OriginId, Origins, Problems, Source};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

/// The (instance, core, seq) triples seen so far, as sorted disjoint ranges per instance and
/// core (a core's seqs are nearly contiguous, so this stays a few ranges long however many
/// records pass). Records of different instances are never taken for each other.
#[derive(Debug, Default)]
pub struct SeenSeqs {
    origins: Vec<Vec<Vec<Range<u64>>>>,
}

impl SeenSeqs {
    /// Records `(origin, core, seq)`; false when it was already there.
    pub fn insert(&mut self, origin: OriginId, core: u16, seq: u64) -> bool {
        self.insert_range(origin, core, seq..seq.saturating_add(1))
    }

    /// Records the seqs one record accounts for (its slots, and any skipped before it at the
    /// ring's end); false, and nothing recorded, when any of them was already there.
    pub fn insert_range(&mut self, origin: OriginId, core: u16, seqs: Range<u64>) -> bool {
        if seqs.is_empty() {
            return true;
        }
        let origin = origin as usize;
        if self.origins.len() <= origin {
            self.origins.resize_with(origin + 1, Vec::new);
        }
        let cores = &mut self.origins[origin];
        let core = usize::from(core);
        if cores.len() <= core {
            cores.resize_with(core + 1, Vec::new);
        }
        let ranges = &mut cores[core];
        match ranges.last_mut() {
            Some(last) if seqs.start == last.end => {
                last.end = seqs.end;
                return true;
            }
            Some(last) if seqs.start > last.end => {
                ranges.push(seqs);
                return true;
            }
            None => {
                ranges.push(seqs);
                return true;
            }
            Some(_) => {}
        }
        let i = ranges.partition_point(|r| r.end <= seqs.start);
        if i < ranges.len() && ranges[i].start < seqs.end {
            return false;
        }
        let joins_left = i > 0 && ranges[i - 1].end == seqs.start;
        let joins_right = i < ranges.len() && ranges[i].start == seqs.end;
        match (joins_left, joins_right) {
            (true, true) => {
                ranges[i - 1].end = ranges[i].end;
                ranges.remove(i);
            }
            (true, false) => ranges[i - 1].end = seqs.end,
            (false, true) => ranges[i].start = seqs.start,
            (false, false) => ranges.insert(i, seqs),
        }
        true
    }

    /// Per instance and core, the ranges of seqs seen.
    pub fn ranges(&self) -> impl Iterator<Item = (OriginId, u16, &[Range<u64>])> {
        self.origins.iter().enumerate().flat_map(|(o, cores)| {
            cores
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_empty())
                .map(move |(c, r)| (o as OriginId, c as u16, r.as_slice()))
        })
    }
}

/// Merges sources that are each (nearly) in time order into one stream.
pub struct Merger {
    pub sources: Vec<Source>,
    /// The instances the sources' records belong to.
    pub origins: Origins,
    heap: BinaryHeap<Reverse<(Key, usize)>>,
    pub seen: SeenSeqs,
    pending: Option<usize>,
    pub duplicates: u64,
}

impl Merger {
    pub fn new(sources: Vec<Source>, origins: Origins) -> Merger {
        Merger {
            sources,
            origins,
            heap: BinaryHeap::new(),
            seen: SeenSeqs::default(),
            pending: None,
            duplicates: 0,
        }
    }

    /// Reads the first record of every source (or, in follow mode, the next new one).
    pub fn prime(&mut self, problems: &mut Problems) {
        let queued: Vec<usize> = self.heap.iter().map(|Reverse((_, i))| *i).collect();
        for i in 0..self.sources.len() {
            if Some(i) != self.pending && !queued.contains(&i) && self.sources[i].advance(problems)
            {
                self.heap.push(Reverse((self.sources[i].key(), i)));
            }
        }
    }

    fn refill(&mut self, i: usize, problems: &mut Problems) {
        if self.sources[i].advance(problems) {
            self.heap.push(Reverse((self.sources[i].key(), i)));
        }
    }

    /// The next record in (ts, core, seq) order that was not printed before, and its instance.
    pub fn next(&mut self, problems: &mut Problems) -> Option<(&[u8], Option<&Origin>)> {
        if let Some(i) = self.pending.take() {
            self.refill(i, problems);
        }
        loop {
            let Reverse(((_, core, _, origin), i)) = self.heap.pop()?;
            if self.seen.insert_range(origin, core, self.sources[i].seqs()) {
                self.pending = Some(i);
                return Some((self.sources[i].current(), self.origins.get(origin)));
            }
            self.duplicates += 1;
            self.refill(i, problems);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn seen_seqs_merge_ranges_and_find_repeats() {
        let mut s = SeenSeqs::default();
        for seq in [0, 1, 2, 10, 11, 5, 4, 6, 3] {
            assert!(s.insert(1, 7, seq), "{seq} is new");
        }
        for seq in [0, 3, 6, 10, 11] {
            assert!(!s.insert(1, 7, seq), "{seq} was seen");
        }
        assert!(s.insert(1, 2, 3));
        // The same (core, seq) of another instance (or of none) is another record.
        assert!(s.insert(2, 7, 0));
        assert!(s.insert(0, 7, 0));
        assert!(!s.insert(2, 7, 0));
        let all: Vec<_> = s.ranges().map(|(o, c, r)| (o, c, r.to_vec())).collect();
        assert_eq!(
            all,
            vec![
                (0, 7, vec![0..1]),
                (1, 2, vec![3..4]),
                (1, 7, vec![0..7, 10..12]),
                (2, 7, vec![0..1])
            ]
        );
        assert!(s.insert(1, 7, 8));
        assert!(s.insert(1, 7, 9));
        // Multi-slot records: a record's seqs are one range; any overlap is a repeat.
        assert!(s.insert_range(1, 7, 20..24));
        assert!(!s.insert_range(1, 7, 22..23));
        assert!(!s.insert_range(1, 7, 18..21));
        assert!(s.insert_range(1, 7, 14..20));
        assert!(s.insert_range(1, 7, 12..14));
        assert!(s.insert(1, 7, 7));
        assert_eq!(s.ranges().nth(2).unwrap().2, &[0..24]);
    }
}
