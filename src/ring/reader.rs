//! Reading a ring file that may be live (another process writing) or left by a crash.

use super::format::{RingError, RingHeader};
use super::raw::RawRing;
use super::slot::{check_slot, locate, max_span, SlotState};
use crate::record::{self, RecordView};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Reads committed records of one ring file; never writes unless opened as the consumer.
pub struct RingReader {
    raw: RawRing,
    path: PathBuf,
    header: RingHeader,
    crc_init: u32,
    buf: Vec<u8>,
    _file: File,
}

impl RingReader {
    /// Opens a ring read-only.
    pub fn open(path: &Path) -> Result<RingReader, RingError> {
        Self::open_mode(path, false)
    }

    /// Opens a ring as its consumer (the compactor), allowed to advance the cursor.
    pub fn open_consumer(path: &Path) -> Result<RingReader, RingError> {
        Self::open_mode(path, true)
    }

    fn open_mode(path: &Path, writable: bool) -> Result<RingReader, RingError> {
        let (file, raw, header) = super::mapped::open_mapped(path, writable)?;
        Ok(RingReader {
            raw,
            path: path.to_path_buf(),
            crc_init: record::crc_init(header.seed),
            buf: vec![0u8; header.slot_size as usize],
            header,
            _file: file,
        })
    }

    pub fn header(&self) -> &RingHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The consumer cursor: every seq below it is durably stored elsewhere.
    pub fn cursor(&self) -> u64 {
        self.raw.cursor().load(Ordering::Acquire)
    }

    /// The head recorded by the writer's clean stop, if it stopped cleanly and none has
    /// opened the ring since: every seq from the cursor up to it must validate.
    pub fn clean_stop_head(&self) -> Option<u64> {
        self.raw.clean_stop().load(Ordering::Acquire).checked_sub(1)
    }

    /// The first seq of the current writer epoch: every seq below it that was not current
    /// when that writer started has been passed for good.
    pub fn epoch_start(&self) -> u64 {
        self.raw.epoch_start().load(Ordering::Acquire)
    }

    /// Whether `seq` is a record the writer has passed for good that does not read back: at or
    /// past the cursor (never overwritten), below the current epoch's start (recovery, or a
    /// clean stop, put the writer's head past it), and still not valid. Corruption, never a
    /// record still being written: readers report it and go on instead of waiting for it.
    pub fn is_damaged(&mut self, seq: u64) -> bool {
        // Start first: a check after it sees the epoch that came with it (see `check_slot`).
        let start = self.epoch_start();
        seq >= self.cursor() && seq < start && self.state(seq) != SlotState::Valid
    }

    /// The `slots` slots from `seq`'s, byte for byte, whatever they hold (to keep a damaged
    /// record); fewer when the ring's end comes first.
    pub fn slot_bytes(&mut self, seq: u64, slots: u64) -> &[u8] {
        let cap = self.header.capacity;
        let slots = slots.clamp(1, cap - (seq & (cap - 1)));
        let len = slots as usize * self.header.slot_size as usize;
        self.buf.resize(len, 0);
        self.raw.copy_slots(seq, &mut self.buf[..len]);
        &self.buf[..len]
    }

    /// Byte offset in the file of the slot holding `seq`.
    pub fn slot_offset(&self, seq: u64) -> u64 {
        self.header.slot_offset(seq) as u64
    }

    /// Reads the record at the record boundary `seq`, if it is committed and intact: the one
    /// starting at `seq`, or the one placed at the ring's start after the slots from `seq` to
    /// the ring's end were skipped (its `seq()` is then larger). The next record is at the
    /// returned record's `seqs().end`.
    pub fn read(&mut self, seq: u64) -> Result<RecordView<'_>, SlotState> {
        match locate(&self.raw, self.crc_init, seq, &mut self.buf) {
            (_, SlotState::Valid) => {
                Ok(RecordView::parse(&self.buf).expect("check_slot validated the record"))
            }
            (_, other) => Err(other),
        }
    }

    /// [`RingReader::read`] into the caller's buffer (its bytes replaced by the record's slots,
    /// padding included): a consumer that keeps the record, as the compactor's merge does,
    /// copies it out of the ring once instead of twice.
    pub fn read_into<'b>(
        &mut self,
        seq: u64,
        out: &'b mut Vec<u8>,
    ) -> Result<RecordView<'b>, SlotState> {
        match locate(&self.raw, self.crc_init, seq, out) {
            (_, SlotState::Valid) => {
                let out: &'b Vec<u8> = out;
                Ok(RecordView::parse(out).expect("check_slot validated the record"))
            }
            (_, other) => Err(other),
        }
    }

    /// Whether a record starting exactly at `seq` is committed and intact, without handing it
    /// out (a continuation slot reads as uncommitted).
    pub fn state(&mut self, seq: u64) -> SlotState {
        check_slot(&self.raw, self.crc_init, seq, &mut self.buf)
    }

    /// Most slots one record may take in this ring.
    pub fn max_span(&self) -> u64 {
        max_span(self.header.slot_size as usize, self.header.capacity)
    }

    /// The first seq in `from..to` where a committed, intact record starts. Two record starts
    /// are never more than `2 * max_span()` slots apart (a record and the slots skipped before
    /// it), so after a corrupt record this finds the next one within that many slots.
    pub fn next_valid(&mut self, from: u64, to: u64) -> Option<u64> {
        (from..to).find(|&seq| self.state(seq) == SlotState::Valid)
    }

    /// The contiguous run of valid records around the cursor: `start..end`.
    ///
    /// `end` is the first record boundary at or after the cursor holding no committed record
    /// (the writer's next seq for a healthy ring); `start` is the oldest record below the cursor
    /// that is still whole (compacted, not yet overwritten): the first record start at or
    /// after `end - capacity`, since the writer has reused every slot of an older seq.
    pub fn valid_range(&mut self) -> std::ops::Range<u64> {
        let cursor = self.cursor();
        let cap = self.header.capacity;
        let mut end = cursor;
        while end - cursor < cap && end < u64::MAX - 2 * cap {
            match self.read(end) {
                Ok(view) if view.seqs().end - cursor <= cap => end = view.seqs().end,
                _ => break,
            }
        }
        let lo = end.saturating_sub(cap);
        let window = lo.saturating_add(2 * self.max_span() + 1).min(cursor);
        let start = self.next_valid(lo, window).unwrap_or(cursor);
        start..end
    }

    /// Moves the consumer cursor forward to `seq` and makes it durable.
    ///
    /// Only the compactor calls this, after the records below `seq` are durably in a segment.
    pub fn advance_cursor(&self, seq: u64) -> std::io::Result<()> {
        let old = self.raw.cursor().load(Ordering::Acquire);
        if seq > old {
            self.raw.cursor().store(seq, Ordering::Release);
            self.raw.flush_header()?;
        }
        Ok(())
    }
}
