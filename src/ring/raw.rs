//! The only unsafe code of the ring: the shared memory map and pointers into it.
//!
//! Everything here works on a `memmap2::MmapRaw` of a ring file (`MAP_SHARED`), so writes are
//! in the page cache the moment they are made and survive the process being killed. Other
//! processes (the compactor, `glint decode --follow`) map the same file; they synchronise with
//! the writer through the commit words and the consumer cursor, which are 8-byte aligned u64s
//! accessed only atomically, and they validate every slot they copy with its CRC.
#![allow(unsafe_code)]

use super::format::{HEADER_PAGE, OFF_CLEAN_STOP, OFF_CURSOR, OFF_EPOCH, OFF_EPOCH_START};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A mapped ring file: header page plus `capacity` slots of `slot_size` bytes.
pub struct RawRing {
    map: MmapRaw,
    slot_size: usize,
    mask: u64,
}

impl RawRing {
    /// Maps `len` bytes of `file`. `writable` needs a file opened for writing.
    pub fn map(file: &File, len: usize, writable: bool) -> std::io::Result<Self> {
        // Every accessor of the header words relies on the header page being mapped.
        if len < HEADER_PAGE {
            return Err(std::io::Error::other(
                "ring map shorter than its header page",
            ));
        }
        let mut opts = MmapOptions::new();
        opts.len(len);
        let map = if writable {
            opts.map_raw(file)?
        } else {
            opts.map_raw_read_only(file)?
        };
        Ok(RawRing {
            map,
            slot_size: 0,
            mask: 0,
        })
    }

    /// Sets the slot geometry once the header has been validated against the file length.
    ///
    /// The header check already refused any geometry that does not fit; these asserts guard the
    /// pointer arithmetic below and stay on in release builds.
    pub fn set_geometry(&mut self, slot_size: usize, capacity: u64) {
        let end = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_mul(slot_size))
            .and_then(|b| b.checked_add(HEADER_PAGE));
        assert!(matches!(end, Some(end) if end <= self.map.len()));
        assert!(capacity.is_power_of_two() && slot_size.is_power_of_two() && slot_size >= 8);
        self.slot_size = slot_size;
        self.mask = capacity - 1;
    }

    /// Writes the header page of a freshly created file.
    pub fn write_header_page(&mut self, page: &[u8; HEADER_PAGE]) {
        assert!(self.map.len() >= HEADER_PAGE);
        // SAFETY: in bounds as checked; `&mut self` means this process has no other reference
        // into the map, and a new file is not yet visible to any other process (it is renamed
        // into place only after this write).
        unsafe { std::ptr::copy_nonoverlapping(page.as_ptr(), self.map.as_mut_ptr(), HEADER_PAGE) };
    }

    /// The consumer cursor in the header (offset 64, its own cache line).
    pub fn cursor(&self) -> &AtomicU64 {
        self.header_u64(OFF_CURSOR)
    }

    /// The clean-stop word (offset 128): 0, or the head + 1 after a clean stop.
    pub fn clean_stop(&self) -> &AtomicU64 {
        self.header_u64(OFF_CLEAN_STOP)
    }

    /// The first seq of the current writer epoch (offset 144).
    pub fn epoch_start(&self) -> &AtomicU64 {
        self.header_u64(OFF_EPOCH_START)
    }

    /// The writer epoch (offset 136).
    pub fn epoch(&self) -> &AtomicU32 {
        const _: () = assert!(OFF_EPOCH % 4 == 0 && OFF_EPOCH + 4 <= HEADER_PAGE);
        // SAFETY: the offset is 4-byte aligned (the map is page aligned) and inside the header
        // page, which every map has (checked in `map`); the word is only accessed atomically.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(OFF_EPOCH).cast::<u32>()) }
    }

    /// One of the header's mutable u64 words; `offset` is one of the constants above.
    fn header_u64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= HEADER_PAGE);
        // SAFETY: `offset` is 8-byte aligned (the map is page aligned) and in bounds of the
        // header page, which every map has (checked in `map`); the header's mutable words are
        // only ever accessed atomically, by this and other processes, and the returned
        // reference cannot outlive the map it points into.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }

    fn slot_ptr(&self, seq: u64) -> *mut u8 {
        self.run_ptr(seq, 1)
    }

    /// The start of the `slots` consecutive slots from `seq`'s, which must not pass the ring's
    /// end (a record never wraps).
    fn run_ptr(&self, seq: u64, slots: usize) -> *mut u8 {
        let first = (seq & self.mask) as usize;
        // Kept in release: the one check between slot numbers and a pointer. `first` is at most
        // `mask` and `slots` at most the capacity, so nothing below can overflow once
        // `set_geometry` has checked the map holds every slot.
        assert!(slots >= 1 && first + slots <= self.mask as usize + 1);
        let offset = HEADER_PAGE + first * self.slot_size;
        let len = slots * self.slot_size;
        assert!(offset + len <= self.map.len());
        // SAFETY: in bounds, as asserted.
        unsafe { self.map.as_mut_ptr().add(offset) }
    }

    /// Slot size, as set by `set_geometry`.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Number of slots, as set by `set_geometry`.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// The commit word of the slot that holds `seq`.
    pub fn commit_word(&self, seq: u64) -> &AtomicU64 {
        // SAFETY: the slot start is aligned to slot_size (a power of two >= 8) past a page
        // aligned header, so 8-byte aligned; the commit word is only accessed atomically.
        unsafe { AtomicU64::from_ptr(self.slot_ptr(seq).cast::<u64>()) }
    }

    /// Gives the single writer the bytes of the `slots` slots from `seq`'s, after the first
    /// slot's commit word.
    ///
    /// The first commit word (bytes 0..8) is left out: it is only touched through
    /// `commit_word`. Continuation slots are plain record bytes; the writer clears their old
    /// commit words through `commit_word` before it calls this.
    pub fn with_run_payload<R>(
        &mut self,
        seq: u64,
        slots: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let ptr = self.run_ptr(seq, slots);
        // SAFETY: the range is inside the map (see `run_ptr`) and excludes the first slot's
        // atomic commit word. `&mut self` makes this the only reference in this process. The
        // ring protocol makes this process the only writer of these slots: the server owns one
        // ring per core and never writes a slot the consumer cursor has not passed; other
        // processes only read and detect torn bytes with the record's commit word and CRC.
        let payload =
            unsafe { std::slice::from_raw_parts_mut(ptr.add(8), slots * self.slot_size - 8) };
        f(payload)
    }

    /// Gives the single writer the bytes of `seq`'s slot after its commit word.
    pub fn with_slot_payload<R>(&mut self, seq: u64, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.with_run_payload(seq, 1, f)
    }

    /// Copies the `out.len() / slot_size` whole slots from `seq`'s into `out` (a whole number of
    /// slots, not passing the ring's end).
    ///
    /// The copy may race with a writer in another process; callers validate it with the commit
    /// word read before and after the copy and the record CRC.
    pub fn copy_slots(&self, seq: u64, out: &mut [u8]) {
        assert!(out.len() % self.slot_size == 0);
        let src = self.run_ptr(seq, out.len() / self.slot_size);
        // SAFETY: source range is inside the map (see `run_ptr`), destination is a distinct
        // buffer of the same length. Concurrent writes from another process can only make the
        // copied bytes inconsistent, which the caller's CRC check rejects.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
    }

    /// Synchronously writes back the pages holding slots `from_seq..to_seq` (msync MS_SYNC).
    pub fn flush_slots(&self, from_seq: u64, to_seq: u64) -> std::io::Result<()> {
        if to_seq <= from_seq {
            return Ok(());
        }
        let capacity = self.mask + 1;
        if to_seq - from_seq >= capacity {
            return self.map.flush();
        }
        let first = (from_seq & self.mask) as usize;
        let last = ((to_seq - 1) & self.mask) as usize;
        let at = |i: usize| HEADER_PAGE + i * self.slot_size;
        if first <= last {
            self.map.flush_range(at(first), at(last + 1) - at(first))
        } else {
            self.map
                .flush_range(at(first), at(capacity as usize) - at(first))?;
            self.map.flush_range(at(0), at(last + 1) - at(0))
        }
    }

    /// Synchronously writes back the header page (after the cursor moved).
    pub fn flush_header(&self) -> std::io::Result<()> {
        self.map.flush_range(0, HEADER_PAGE)
    }
}
