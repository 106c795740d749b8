//! Validation of one record in a ring: the rule every ring reader and the recovery scan share.

use super::raw::RawRing;
use crate::record::{self, RecordView, MAX_RECORD_LEN};
use std::sync::atomic::Ordering;

/// What a slot holds for the sequence number asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// The record for this seq, committed and intact (copied into the caller's buffer).
    Valid,
    /// Not committed yet for this seq: empty, an earlier lap, a continuation slot of another
    /// record, a write in progress, or a stale record of an older writer epoch beyond where
    /// that writer's run was recovered.
    Uncommitted,
    /// The commit word claims this seq but the bytes do not validate (torn or corrupt).
    Corrupt,
}

/// Most slots one record may take in a ring of this geometry: a record of
/// [`MAX_RECORD_LEN`], and at most half the ring, so a record and the slots skipped before it
/// at the ring's end always fit.
pub fn max_span(slot_size: usize, capacity: u64) -> u64 {
    ((MAX_RECORD_LEN / slot_size) as u64)
        .min(capacity / 2)
        .max(1)
}

/// Copies the record starting at `seq` into `buf` and checks it: commit word, span, lengths,
/// seq field, CRC over all its slots, and writer epoch (see [`super::format`]). On `Valid`,
/// `buf` starts with the record.
pub fn check_slot(raw: &RawRing, crc_init: u32, seq: u64, buf: &mut Vec<u8>) -> SlotState {
    let word = raw.commit_word(seq);
    if word.load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    let slot = raw.slot_size();
    let cap = raw.capacity();
    buf.resize(slot, 0);
    raw.copy_slots(seq, &mut buf[..slot]);
    // Start before epoch: the writer stores epoch then start, so a start that is new comes with
    // its epoch; an old start with a new epoch is only stricter (a record reads as not yet).
    let start = raw.epoch_start().load(Ordering::Acquire);
    let epoch = raw.epoch().load(Ordering::Acquire);
    let span = u64::from(record::declared_span(buf));
    let state = if span == 0 || span > max_span(slot, cap) || (seq & (cap - 1)) + span > cap {
        SlotState::Corrupt
    } else {
        let len = span as usize * slot;
        if span > 1 {
            buf.resize(len, 0);
            raw.copy_slots(seq, &mut buf[..len]);
        }
        match RecordView::parse(&buf[..len]) {
            Ok(view) if valid_in_ring(&view, seq, slot, cap, crc_init) => {
                if is_current(view.epoch(), seq, epoch, start) {
                    SlotState::Valid
                } else {
                    SlotState::Uncommitted
                }
            }
            _ => SlotState::Corrupt,
        }
    };
    // A writer that lapped us while we copied has replaced the commit word: not ours any more.
    if word.load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    state
}

/// The ring-level rules on a parsed record: its seq, a span that is exactly what its length
/// needs, slots skipped only at the ring's start, and the CRC.
fn valid_in_ring(view: &RecordView<'_>, seq: u64, slot: usize, cap: u64, crc_init: u32) -> bool {
    let span_ok = view.version() == 1 || view.span() as usize == view.len().div_ceil(slot);
    let pad = u64::from(view.pad_before());
    let pad_ok = pad == 0 || (seq & (cap - 1) == 0 && pad < cap && seq >= pad);
    view.seq() == seq && span_ok && pad_ok && view.crc_ok(crc_init)
}

/// The epoch rule: a record written in `rec_epoch` with `seq` is current in a ring whose
/// writer epoch is `epoch`, started at seq `start`.
pub fn is_current(rec_epoch: u32, seq: u64, epoch: u32, start: u64) -> bool {
    if seq >= start {
        rec_epoch == epoch
    } else {
        rec_epoch < epoch
    }
}

/// The record at a record boundary `seq`: the one starting there, or, when none does and `seq`
/// is not at the ring's start, the one the writer placed at the next multiple of the capacity
/// after skipping the slots from `seq` to the ring's end. Returns the seq checked last and its
/// state; on `Valid`, `buf` starts with that record.
pub fn locate(raw: &RawRing, crc_init: u32, seq: u64, buf: &mut Vec<u8>) -> (u64, SlotState) {
    let state = check_slot(raw, crc_init, seq, buf);
    let mask = raw.capacity() - 1;
    if state != SlotState::Uncommitted || seq & mask == 0 {
        return (seq, state);
    }
    let Some(wrapped) = (seq | mask).checked_add(1) else {
        return (seq, state);
    };
    match check_slot(raw, crc_init, wrapped, buf) {
        SlotState::Valid
            if RecordView::parse(buf).is_ok_and(|v| u64::from(v.pad_before()) == wrapped - seq) =>
        {
            (wrapped, SlotState::Valid)
        }
        SlotState::Corrupt => (wrapped, SlotState::Corrupt),
        _ => (seq, SlotState::Uncommitted),
    }
}

#[cfg(test)]
mod tests {
    use super::is_current;

    #[test]
    fn epoch_rule() {
        // Version 1 rings: epoch 0 from seq 0, every record epoch 0.
        assert!(is_current(0, 0, 0, 0) && is_current(0, 99, 0, 0));
        // Epoch 3 started at seq 50.
        assert!(is_current(3, 50, 3, 50) && is_current(3, 70, 3, 50));
        assert!(
            !is_current(2, 55, 3, 50),
            "an older epoch past the start is stale"
        );
        assert!(is_current(2, 49, 3, 50) && is_current(1, 10, 3, 50));
        assert!(!is_current(3, 49, 3, 50) && !is_current(4, 60, 3, 50));
    }
}
