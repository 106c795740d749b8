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

/// Merges the committed records of several rings; memory is one record per ring.
pub struct RingMerge {
    heads: Vec<Vec<u8>>,
    /// For each ring, the seq after its held record (where its next record starts).
    after: Vec<u64>,
    heap: BinaryHeap<Reverse<(u64, u16, u64, usize)>>,
    budget: Vec<u64>,
}

impl RingMerge {
    /// Reads the first record of every ring. A ring gives at most its capacity per cycle, so
    /// a cycle ends even while servers keep writing.
    pub fn start(rings: &mut [RingSource]) -> RingMerge {
        let mut m = RingMerge {
            heads: vec![Vec::new(); rings.len()],
            after: vec![0; rings.len()],
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
        if let Some(Reverse((_, _, _, i))) = self.heap.pop() {
            rings[i].next_seq = self.after[i];
            self.refill(&mut rings[i], i);
        }
    }

    fn refill(&mut self, ring: &mut RingSource, i: usize) {
        if self.budget[i] == 0 {
            ring.stopped = Some(Stopped::Budget);
            return;
        }
        loop {
            let seq = ring.next_seq;
            // Read straight into the held record's buffer: one copy out of the ring.
            let state = match ring.reader.read_into(seq, &mut self.heads[i]) {
                Ok(view) => {
                    // A ring gives at most its capacity in slots per cycle.
                    let seqs = view.seqs();
                    self.budget[i] = self.budget[i].saturating_sub(seqs.end - seq);
                    self.after[i] = seqs.end;
                    self.heap
                        .push(Reverse((view.ts_ns(), view.core(), view.seq(), i)));
                    return;
                }
                Err(state) => state,
            };
            let path = ring.reader.path().display().to_string();
            let offset = ring.reader.slot_offset(seq);
            if ring.reader.is_damaged(seq) {
                // Its span cannot be trusted: the damaged run ends at the next record that
                // validates (within the largest gap between two records), or at the epoch start.
                let limit = (seq + 1 + 2 * ring.reader.max_span()).min(ring.reader.epoch_start());
                let next = ring
                    .reader
                    .next_valid(seq + 1, limit)
                    .unwrap_or(limit.max(seq + 1));
                match keep_damaged(&mut ring.reader, seq, next - seq) {
                    Ok(kept) => {
                        crate::error!(
                            "{path}: offset {offset}: record seq {seq} is corrupt and the writer has passed it; its slots are kept in {} and compaction goes on",
                            kept.display()
                        );
                        ring.next_seq = next;
                        continue;
                    }
                    Err(e) => {
                        ring.stopped = Some(Stopped::Corrupt(format!(
                            "{path}: offset {offset}: record seq {seq} is corrupt and cannot be kept aside ({e}); this ring is not compacted past it"
                        )));
                        return;
                    }
                }
            }
            if state != SlotState::Uncommitted {
                ring.stopped = Some(Stopped::Corrupt(format!(
                    "{path}: offset {offset}: record seq {seq} is corrupt (CRC or length mismatch); this ring is not compacted past it"
                )));
            }
            return;
        }
    }
}

/// Dir (next to the rings) where the compactor keeps the slots of damaged records it skips.
pub const DAMAGED_DIR: &str = "damaged";

/// Copies the `slots` slots from `seq`'s byte for byte to `damaged/<ring file>.seq-<seq>` and
/// makes them durable, before the compactor moves past them.
fn keep_damaged(
    reader: &mut RingReader,
    seq: u64,
    slots: u64,
) -> std::io::Result<std::path::PathBuf> {
    let ring = reader.path().to_path_buf();
    let dir = ring
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(DAMAGED_DIR);
    std::fs::create_dir_all(&dir)?;
    let name = ring
        .file_name()
        .map_or_else(|| "ring".into(), |n| n.to_string_lossy().into_owned());
    let path = dir.join(format!("{name}.seq-{seq}"));
    let mut file = std::fs::File::create(&path)?;
    std::io::Write::write_all(&mut file, reader.slot_bytes(seq, slots))?;
    file.sync_all()?;
    crate::sys::sync_dir(&dir)?;
    Ok(path)
}
