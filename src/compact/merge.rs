//! The k-way merge of ring records by (timestamp, core, seq), one held record per ring.

use crate::record::RecordView;
use crate::ring::{RingReader, SlotState};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Why a ring was not read to its end in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It gave its capacity's worth of records; the rest waits for the next cycle, which
    /// starts at once ([`super::schedule`]).
    Budget,
    /// A committed record does not validate: the error line (file and offset). The ring is not
    /// compacted past it until an operator repairs or moves the file.
    Corrupt(String),
}

/// One ring the compactor consumes.
pub struct RingSource {
    pub reader: RingReader,
    /// Next seq to read: every lower seq is in a segment (or was before a restart).
    pub next_seq: u64,
    /// Next seq not yet in a committed checkpoint (where the cursor may move to).
    pub committed_seq: u64,
    /// Why this ring stopped before its end in the last cycle, if it did.
    pub stopped: Option<Stopped>,
    /// Device and inode the reader mapped.
    pub file_id: (u64, u64),
}

impl RingSource {
    pub fn core(&self) -> u32 {
        self.reader.header().core
    }
    pub fn seed(&self) -> u64 {
        self.reader.header().seed
    }
}

/// Merges the committed records of several rings; memory is one slot per ring.
pub struct RingMerge {
    heads: Vec<Vec<u8>>,
    heap: BinaryHeap<Reverse<(u64, u16, u64, usize)>>,
    budget: Vec<u64>,
}

impl RingMerge {
    /// Reads the first record of every ring. A ring gives at most its capacity per cycle, so
    /// a cycle ends even while servers keep writing.
    pub fn start(rings: &mut [RingSource]) -> RingMerge {
        let mut m = RingMerge {
            heads: vec![Vec::new(); rings.len()],
            heap: BinaryHeap::with_capacity(rings.len()),
            budget: rings.iter().map(|r| r.reader.header().capacity).collect(),
        };
        for (i, ring) in rings.iter_mut().enumerate() {
            ring.stopped = None;
            m.refill(ring, i);
        }
        m
    }

    /// Index of the ring holding the smallest record, and that record; `None` when all are done.
    pub fn peek(&self) -> Option<(usize, RecordView<'_>)> {
        let Reverse((_, _, _, i)) = *self.heap.peek()?;
        Some((
            i,
            RecordView::parse(&self.heads[i]).expect("validated when read"),
        ))
    }

    /// Drops the smallest record (already written) and reads the next one of its ring.
    pub fn advance(&mut self, rings: &mut [RingSource]) {
        if let Some(Reverse((_, _, seq, i))) = self.heap.pop() {
            rings[i].next_seq = seq + 1;
            self.refill(&mut rings[i], i);
        }
    }

    fn refill(&mut self, ring: &mut RingSource, i: usize) {
        if self.budget[i] == 0 {
            ring.stopped = Some(Stopped::Budget);
            return;
        }
        let seq = ring.next_seq;
        match ring.reader.read(seq) {
            Ok(view) => {
                self.budget[i] -= 1;
                let key = (view.ts_ns(), view.core(), seq, i);
                self.heads[i].clear();
                self.heads[i].extend_from_slice(view.bytes());
                self.heap.push(Reverse(key));
            }
            Err(SlotState::Uncommitted) => {}
            Err(_) => {
                ring.stopped = Some(Stopped::Corrupt(format!(
                    "{}: offset {}: record seq {seq} is corrupt (CRC or length mismatch); this ring is not compacted past it",
                    ring.reader.path().display(),
                    ring.reader.slot_offset(seq)
                )));
            }
        }
    }
}
