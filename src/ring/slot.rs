//! Validation of one slot: the rule every ring reader and the recovery scan share.

use super::raw::RawRing;
use crate::record::RecordView;
use std::sync::atomic::Ordering;

/// What a slot holds for the sequence number asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// The record for this seq, committed and intact (copied into the caller's buffer).
    Valid,
    /// Not committed yet for this seq: empty, an earlier lap, or a write in progress.
    Uncommitted,
    /// The commit word claims this seq but the bytes do not validate (torn or corrupt).
    Corrupt,
}

/// Copies `seq`'s slot into `buf` and checks it: commit word, lengths, seq field and CRC.
pub fn check_slot(raw: &RawRing, crc_init: u32, seq: u64, buf: &mut [u8]) -> SlotState {
    if raw.commit_word(seq).load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    raw.copy_slot(seq, buf);
    let state = match RecordView::parse(buf) {
        Ok(view) if view.seq() == seq && view.crc_ok(crc_init) => SlotState::Valid,
        _ => SlotState::Corrupt,
    };
    // A writer that lapped us while we copied has replaced the commit word: not ours any more.
    if raw.commit_word(seq).load(Ordering::Acquire) != seq.wrapping_add(1) {
        return SlotState::Uncommitted;
    }
    state
}
