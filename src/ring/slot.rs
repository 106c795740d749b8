//! Validation of one slot: the rule every ring reader and the recovery scan share.

use super::raw::RawRing;
use crate::record::RecordView;
use std::sync::atomic::Ordering;

/// What a slot holds for the sequence number asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// The record for this seq, committed and intact (copied into the caller's buffer).
    Valid,
    /// Not committed yet for this seq: empty, an earlier lap, a write in progress, or a stale
    /// record of an older writer epoch beyond where that writer's run was recovered.
    Uncommitted,
    /// The commit word claims this seq but the bytes do not validate (torn or corrupt).
    Corrupt,
}

/// Copies `seq`'s slot into `buf` and checks it: commit word, lengths, seq field, CRC and
/// writer epoch (see [`super::format`]).
pub fn check_slot(raw: &RawRing, crc_init: u32, seq: u64, buf: &mut [u8]) -> SlotState {
    if raw.commit_word(seq).load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    raw.copy_slot(seq, buf);
    // Start before epoch: the writer stores epoch then start, so a start that is new comes with
    // its epoch; an old start with a new epoch is only stricter (a record reads as not yet).
    let start = raw.epoch_start().load(Ordering::Acquire);
    let epoch = raw.epoch().load(Ordering::Acquire);
    let state = match RecordView::parse(buf) {
        Ok(view) if view.seq() == seq && view.crc_ok(crc_init) => {
            if is_current(view.epoch(), seq, epoch, start) {
                SlotState::Valid
            } else {
                SlotState::Uncommitted
            }
        }
        _ => SlotState::Corrupt,
    };
    // A writer that lapped us while we copied has replaced the commit word: not ours any more.
    if raw.commit_word(seq).load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    state
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
