//! Recovery of a ring a writer reopens: the scan from the cursor, the clean-stop check, the new
//! writer epoch, and the in-place upgrade of a drained version 1 ring. See [`super::format`]
//! for the clean-stop word and the epoch rule.

use super::format::{
    RingError, RingHeader, HEADER_PAGE, OFF_CURSOR, OFF_EPOCH, OFF_IDENTITY, RING_VERSION,
};
use super::slot::{check_slot, locate, max_span, SlotState};
use super::writer::{random_seed, RingOptions, RingWriter};
use crate::instance::BLOCK_LEN as IDENTITY_LEN;
use crate::record;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

/// What reopening a ring found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The file did not exist and was created.
    pub created: bool,
    /// Consumer cursor read from the header.
    pub cursor: u64,
    /// Valid records found from the cursor on (not yet compacted).
    pub pending: u64,
    /// Sequence number the writer resumes at.
    pub next_seq: u64,
    /// 1 if the slot where the valid run ended claimed a record of the crashed run (a seq at
    /// or past it) that failed its check, and was cleared; 0 otherwise. Records of the crashed
    /// run beyond it are left in place: the new epoch makes them stale.
    pub torn: u64,
    /// The previous writer stopped cleanly (its head was recorded after its final sync).
    pub clean: bool,
    /// After a clean stop: seqs between the cursor and the recorded head whose slots fail
    /// their check. Corruption, not torn writes: their bytes are kept and the writer resumes
    /// after the recorded head.
    pub damaged: Vec<u64>,
    /// Records recovery checked (a record may take several slots): the pending records plus at
    /// most one.
    pub scanned: u64,
    /// The epoch this writer runs in.
    pub epoch: u32,
    /// A version 1 ring with no pending records was rewritten as the current version.
    pub upgraded: bool,
}

impl RingWriter {
    /// Rewrites a version 1 ring with no pending records as a current one (see [`Self::open`]).
    pub(super) fn upgrade_drained(self, opts: RingOptions) -> Result<RingWriter, RingError> {
        let cursor = self.raw.cursor().load(Ordering::Acquire);
        let mut buf = Vec::new();
        if check_slot(&self.raw, self.crc_init, cursor, &mut buf) == SlotState::Valid {
            return Err(RingError::format(
                &self.path,
                self.header.slot_offset(cursor) as u64,
                format!(
                    "ring format version {} holds records from seq {cursor} not yet compacted; \
                     run `glint compact --once` on this data dir, then start again (a drained \
                     ring is upgraded in place)",
                    self.header.version
                ),
            ));
        }
        let header = RingHeader {
            version: RING_VERSION,
            seed: random_seed(),
            identity: opts.identity,
            ..self.header
        };
        let mut page = [0u8; HEADER_PAGE];
        header.encode(&mut page);
        let path = self.path.clone();
        // The immutable fields and the identity, synced; the mutable words between them (the
        // cursor kept) are set by recovery.
        let identity = OFF_IDENTITY..OFF_IDENTITY + IDENTITY_LEN;
        self.file
            .write_all_at(&page[..OFF_CURSOR], 0)
            .and_then(|()| {
                self.file
                    .write_all_at(&page[identity.clone()], identity.start as u64)
            })
            .and_then(|()| self.file.sync_data())
            .map_err(|e| RingError::io(&path, e))?;
        drop(self);
        let (file, raw, header) = super::mapped::open_mapped(&path, true)?;
        debug_assert_eq!(header.capacity, opts.capacity);
        Ok(RingWriter {
            raw,
            file,
            path,
            crc_init: record::crc_init(header.seed),
            header,
            epoch: 0,
            next_seq: 0,
            cached_cursor: 0,
            max_span: max_span(header.slot_size as usize, header.capacity),
        })
    }

    /// Scans from the consumer cursor, starts a new epoch at the head found, syncs the header.
    pub(super) fn recover(&mut self) -> Result<Recovery, RingError> {
        let cursor = self.raw.cursor().load(Ordering::Acquire);
        let clean_word = self.raw.clean_stop().load(Ordering::Acquire);
        let cap = self.header.capacity;
        let mut buf = Vec::new();
        // A clean stop recorded its head; a word outside the cursor's lap is itself damage,
        // and the scan falls back to the crash rule.
        let clean_head = clean_word
            .checked_sub(1)
            .filter(|&h| h >= cursor && h - cursor <= cap);
        // Everything from the cursor to the current epoch's start was checked (and synced) by
        // the recovery that set it, damaged records after a clean stop included: the scan
        // starts there, unless a damaged header word puts it outside the cursor's lap.
        let start = self.raw.epoch_start().load(Ordering::Acquire);
        let from = if start >= cursor && start - cursor <= cap {
            start
        } else {
            cursor
        };
        let clean_head = clean_head.filter(|&h| h >= from);
        let mut end = from;
        let mut scanned = 0;
        let mut damaged = Vec::new();
        // Record after record (a record may take several slots, or start at the ring's start
        // after skipped slots). (A damaged header's cursor near u64::MAX must not overflow.)
        while end - cursor < cap && end < u64::MAX - 2 * cap {
            if clean_head == Some(end) {
                break;
            }
            scanned += 1;
            let next = match locate(&self.raw, self.crc_init, end, &mut buf) {
                (at, SlotState::Valid) => {
                    // The record skipped the slots from `end` to the ring's end. A record an
                    // earlier run left there is stale now, but once the new epoch starts past
                    // these seqs the epoch rule alone would call it current: its commit word is
                    // cleared (and flushed below, before the header) so it never reads again.
                    for skipped in end..at {
                        self.raw.commit_word(skipped).store(0, Ordering::Release);
                    }
                    Some(at + u64::from(record::declared_span(&buf)))
                }
                _ => None,
            };
            match (next, clean_head) {
                (Some(next), None) if next - cursor <= cap => end = next,
                (Some(next), Some(head)) if next <= head => end = next,
                (_, Some(head)) => {
                    // Corruption after a clean stop: its span cannot be trusted; the next
                    // record that validates, or the recorded head, is where the scan goes on.
                    damaged.push(end);
                    let after = (end + 1..head).find(|&seq| {
                        scanned += 1;
                        check_slot(&self.raw, self.crc_init, seq, &mut buf) == SlotState::Valid
                    });
                    end = after.unwrap_or(head);
                }
                _ => break,
            }
        }
        let mut torn = 0;
        if clean_head.is_none() && end - cursor < cap && end < u64::MAX - cap {
            // A half-written slot at `end` (a crash mid-write) may keep an older lap's commit
            // word over new bytes: clear it whole, word and payload. Its old record is below
            // the cursor. Nothing past it is touched: the new epoch makes it stale.
            // (A word naming another slot's seq is continuation bytes of an older record.)
            let claimed = self.raw.commit_word(end).load(Ordering::Acquire);
            torn = u64::from(claimed > end && (claimed - 1) & (cap - 1) == end & (cap - 1));
            self.raw.commit_word(end).store(0, Ordering::Release);
            self.raw.with_slot_payload(end, |p| p.fill(0));
        }
        // The records the new epoch counts as current below its start must be on disk before
        // the header that says so.
        self.raw
            .flush_slots(cursor, end)
            .map_err(|e| RingError::io(&self.path, e))?;
        let epoch = self
            .raw
            .epoch()
            .load(Ordering::Acquire)
            .checked_add(1)
            .ok_or_else(|| {
                RingError::format(
                    &self.path,
                    OFF_EPOCH as u64,
                    "writer epoch exhausted (2^32 starts); compact the ring and move it away",
                )
            })?;
        // Epoch before start: a reader that sees the new start also sees the new epoch.
        self.raw.epoch().store(epoch, Ordering::Release);
        self.raw.epoch_start().store(end, Ordering::Release);
        self.raw.clean_stop().store(0, Ordering::Release);
        self.raw
            .flush_header()
            .map_err(|e| RingError::io(&self.path, e))?;
        self.epoch = epoch;
        self.next_seq = end;
        self.cached_cursor = cursor;
        Ok(Recovery {
            created: false,
            cursor,
            pending: end - cursor,
            next_seq: end,
            torn,
            clean: clean_head.is_some(),
            damaged,
            scanned,
            epoch,
            upgraded: false,
        })
    }
}
