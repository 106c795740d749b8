//! The k-way merge of all sources by (ts, core, seq), printing each (core, seq) once.

#![forbid(unsafe_code)]

use super::source::{Key, Problems, Source};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

/// The (core, seq) pairs seen so far, as sorted disjoint ranges per core (a core's seqs are
/// nearly contiguous, so this stays a few ranges long however many records pass).
#[derive(Debug, Default)]
pub struct SeenSeqs {
    cores: Vec<Vec<Range<u64>>>,
}

impl SeenSeqs {
    /// Records `(core, seq)`; false when it was already there.
    pub fn insert(&mut self, core: u16, seq: u64) -> bool {
        let core = usize::from(core);
        if self.cores.len() <= core {
            self.cores.resize_with(core + 1, Vec::new);
        }
        let ranges = &mut self.cores[core];
        match ranges.last_mut() {
            Some(last) if seq == last.end => {
                last.end += 1;
                return true;
            }
            Some(last) if seq > last.end => {
                ranges.push(seq..seq + 1);
                return true;
            }
            None => {
                ranges.push(seq..seq + 1);
                return true;
            }
            Some(_) => {}
        }
        let i = ranges.partition_point(|r| r.end <= seq);
        if i < ranges.len() && ranges[i].start <= seq {
            return false;
        }
        let joins_left = i > 0 && ranges[i - 1].end == seq;
        let joins_right = i < ranges.len() && ranges[i].start == seq + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                ranges[i - 1].end = ranges[i].end;
                ranges.remove(i);
            }
            (true, false) => ranges[i - 1].end = seq + 1,
            (false, true) => ranges[i].start = seq,
            (false, false) => ranges.insert(i, seq..seq + 1),
        }
        true
    }

    /// Per core, the ranges of seqs seen.
    pub fn ranges(&self) -> impl Iterator<Item = (u16, &[Range<u64>])> {
        self.cores
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(c, r)| (c as u16, r.as_slice()))
    }
}

/// Merges sources that are each (nearly) in time order into one stream.
pub struct Merger {
    pub sources: Vec<Source>,
    heap: BinaryHeap<Reverse<(Key, usize)>>,
    pub seen: SeenSeqs,
    pending: Option<usize>,
    pub duplicates: u64,
}

impl Merger {
    pub fn new(sources: Vec<Source>) -> Merger {
        Merger {
            sources,
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

    /// The next record in (ts, core, seq) order that was not printed before.
    pub fn next(&mut self, problems: &mut Problems) -> Option<&[u8]> {
        if let Some(i) = self.pending.take() {
            self.refill(i, problems);
        }
        loop {
            let Reverse(((_, core, seq), i)) = self.heap.pop()?;
            if self.seen.insert(core, seq) {
                self.pending = Some(i);
                return Some(self.sources[i].current());
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
            assert!(s.insert(7, seq), "{seq} is new");
        }
        for seq in [0, 3, 6, 10, 11] {
            assert!(!s.insert(7, seq), "{seq} was seen");
        }
        assert!(s.insert(2, 3));
        let all: Vec<_> = s.ranges().map(|(c, r)| (c, r.to_vec())).collect();
        assert_eq!(all, vec![(2, vec![3..4]), (7, vec![0..7, 10..12])]);
        assert!(s.insert(7, 8));
        assert!(s.insert(7, 9));
        assert!(s.insert(7, 7));
        assert_eq!(s.ranges().nth(1).unwrap().1, &[0..12]);
    }
}
