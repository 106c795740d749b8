//! A sink's counters. Each core writes only its own (plain loads and stores, no contended
//! read-modify-write); the admin listener and the shutdown summary read them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What one core's sink stored, on its own cache lines so cores never share one.
#[repr(align(128))]
#[derive(Default, Debug)]
pub struct SinkStats {
    pub records: AtomicU64,
    pub record_bytes: AtomicU64,
    pub ring_full: AtomicU64,
    /// Records that took more than one ring slot.
    pub multi_slot: AtomicU64,
    pub msync_errors: AtomicU64,
    /// The ring's next sequence number, for occupancy (the consumer cursor is in the ring file).
    pub ring_head: AtomicU64,
}

/// Adds one to a counter only this core writes.
#[inline]
pub fn bump(c: &AtomicU64) {
    add(c, 1);
}

/// Adds `n` to a counter only this core writes.
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    // Single writer per core: a load and a store, no locked instruction.
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl SinkStats {
    /// A record appended: the ring's next seq after it, and the slots it took (skipped slots
    /// at the ring's end included) of `slot_size` bytes.
    #[inline]
    pub fn recorded(&self, next_seq: u64, slots: u64, slot_size: usize) {
        bump(&self.records);
        self.ring_head.store(next_seq, Relaxed);
        add(&self.record_bytes, slots * slot_size as u64);
        if slots > 1 {
            bump(&self.multi_slot);
        }
    }

    pub fn ring_full(&self) {
        bump(&self.ring_full);
    }

    pub fn msync_failed(&self, err: &std::io::Error) {
        bump(&self.msync_errors);
        crate::error!("msync of ring records failed, their answers were withheld: {err}");
    }
}
