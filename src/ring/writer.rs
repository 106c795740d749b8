//! The per-core ring writer: create or reopen, recover, append, sync.

use super::format::{
    check_geometry, RingError, RingHeader, HEADER_PAGE, OFF_CURSOR, OFF_EPOCH, OFF_IDENTITY,
    RING_VERSION,
};
use super::raw::RawRing;
use super::slot::{check_slot, SlotState};
use crate::instance::Identity;
use crate::instance::BLOCK_LEN as IDENTITY_LEN;
use crate::record::{self, RecordFields, MAX_SLOT_SIZE};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Geometry and owner of a ring to open or create.
#[derive(Debug, Clone, Copy)]
pub struct RingOptions {
    pub slot_size: usize,
    pub capacity: u64,
    pub core: u32,
    /// The instance written into a new ring's header; an existing ring of another instance is
    /// refused. `None` writes no identity (tests, benches).
    pub identity: Option<Identity>,
}

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
    /// or past it) that failed its check, and was cleared; 0 otherwise. Records of the crashed run beyond it are
    /// left in place: the new epoch makes them stale.
    pub torn: u64,
    /// The previous writer stopped cleanly (its head was recorded after its final sync).
    pub clean: bool,
    /// After a clean stop: seqs between the cursor and the recorded head whose slots fail
    /// their check. Corruption, not torn writes: their bytes are kept and the writer resumes
    /// after the recorded head.
    pub damaged: Vec<u64>,
    /// Slots whose commit word recovery read: the pending records plus at most one.
    pub scanned: u64,
    /// The epoch this writer runs in.
    pub epoch: u32,
    /// A version 1 ring with no pending records was rewritten as the current version.
    pub upgraded: bool,
}

/// A committed record's sequence number and the `flags::TRUNC_*` bits its encoding set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub truncated: u32,
}

/// The ring would overwrite a record the consumer has not passed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFull;

/// Single writer of one ring file.
pub struct RingWriter {
    raw: RawRing,
    file: File,
    path: PathBuf,
    header: RingHeader,
    crc_init: u32,
    epoch: u32,
    next_seq: u64,
    cached_cursor: u64,
}

impl RingWriter {
    /// Opens the ring at `path`, creating and preallocating it if missing, then recovers it.
    ///
    /// Recovery reads from the consumer cursor forward and stops at the first slot that is not
    /// current (or, after a clean stop, at the recorded head), so it costs the pending records,
    /// not the capacity. It then starts a new writer epoch and syncs the header page before
    /// returning, so no record of this run can be written under the old epoch.
    ///
    /// A version 1 ring is upgraded in place when it has no pending records (a new header with
    /// a new seed, so none of its old slots validates again, and the same cursor, so seqs are
    /// never reused); with pending records it is refused until `glint compact` drained it.
    pub fn open(path: &Path, opts: RingOptions) -> Result<(RingWriter, Recovery), RingError> {
        let len = check_geometry(opts.slot_size, opts.capacity)?;
        let created = !path.exists();
        if created {
            create(path, opts)?;
        }
        let (file, raw, header) = super::reader::open_mapped(path, true)?;
        for (what, have, want) in [
            (
                "slot size",
                u64::from(header.slot_size),
                opts.slot_size as u64,
            ),
            ("capacity (slots)", header.capacity, opts.capacity),
        ] {
            if have != want {
                return Err(RingError::Mismatch {
                    path: path.display().to_string(),
                    what,
                    have,
                    want,
                });
            }
        }
        if let (Some(have), Some(want)) = (header.identity, opts.identity) {
            if have.id() != want.id() {
                return Err(RingError::format(
                    path,
                    super::format::OFF_IDENTITY as u64,
                    format!(
                        "ring of instance {} ({:?}), but this data dir is instance {} ({:?}); give the ring its own data dir",
                        have.id_hex(),
                        have.name(),
                        want.id_hex(),
                        want.name()
                    ),
                ));
            }
        }
        // Make sure no hole is left (a file copied sparse): a later write into one would SIGBUS on a full disk.
        preallocate(&file, path, len)?;
        let mut writer = RingWriter {
            raw,
            file,
            path: path.to_path_buf(),
            crc_init: record::crc_init(header.seed),
            header,
            epoch: 0,
            next_seq: 0,
            cached_cursor: 0,
        };
        if header.version < RING_VERSION {
            writer = writer.upgrade_drained(opts)?;
        }
        let mut recovery = writer.recover()?;
        recovery.created = created;
        recovery.upgraded = header.version < RING_VERSION;
        Ok((writer, recovery))
    }

    /// Rewrites a version 1 ring with no pending records as a current one (see [`Self::open`]).
    fn upgrade_drained(self, opts: RingOptions) -> Result<RingWriter, RingError> {
        let cursor = self.raw.cursor().load(Ordering::Acquire);
        let mut buf = [0u8; MAX_SLOT_SIZE];
        let buf = &mut buf[..self.header.slot_size as usize];
        if check_slot(&self.raw, self.crc_init, cursor, buf) == SlotState::Valid {
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
        let (file, raw, header) = super::reader::open_mapped(&path, true)?;
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
        })
    }

    /// Scans from the consumer cursor, starts a new epoch at the head found, syncs the header.
    fn recover(&mut self) -> Result<Recovery, RingError> {
        let cursor = self.raw.cursor().load(Ordering::Acquire);
        let clean_word = self.raw.clean_stop().load(Ordering::Acquire);
        let cap = self.header.capacity;
        let mut buf = [0u8; MAX_SLOT_SIZE];
        let buf = &mut buf[..self.header.slot_size as usize];
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
        // (A damaged header's cursor near u64::MAX must not overflow the scan.)
        while end - cursor < cap && end < u64::MAX - cap {
            if clean_head == Some(end) {
                break;
            }
            scanned += 1;
            match check_slot(&self.raw, self.crc_init, end, buf) {
                SlotState::Valid => {}
                _ if clean_head.is_some() => damaged.push(end),
                _ => break,
            }
            end += 1;
        }
        let mut torn = 0;
        if clean_head.is_none() && end - cursor < cap && end < u64::MAX - cap {
            // A half-written slot at `end` (a crash mid-write) may keep an older lap's commit
            // word over new bytes: clear it whole, word and payload. Its old record is below
            // the cursor. Nothing past it is touched: the new epoch makes it stale.
            let claimed = self.raw.commit_word(end).load(Ordering::Acquire);
            torn = u64::from(claimed > end);
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

    /// Encodes and commits one record; returns its sequence number and truncation bits.
    ///
    /// The payload and CRC are written first, then the commit word is stored with Release
    /// ordering, so any reader that sees the commit word sees the whole record.
    #[inline]
    pub fn append(&mut self, rec: &RecordFields<'_>) -> Result<Appended, RingFull> {
        let seq = self.next_seq;
        if seq - self.cached_cursor >= self.header.capacity {
            self.cached_cursor = self.raw.cursor().load(Ordering::Acquire);
            if seq - self.cached_cursor >= self.header.capacity {
                return Err(RingFull);
            }
        }
        let (crc_init, epoch) = (self.crc_init, self.epoch);
        // The slot may hold a record from the previous lap (already compacted). Retire its
        // commit word before touching the bytes, so a reader copying that old record sees the
        // word change and drops its copy, and a crash mid-write leaves an empty slot, never
        // the old commit word over half-new bytes (which would read as corruption).
        self.raw.commit_word(seq).store(0, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        let encoded = self.raw.with_slot_payload(seq, |payload| {
            record::encode_after_commit(payload, seq, epoch, crc_init, rec)
        });
        self.raw.commit_word(seq).store(seq + 1, Ordering::Release);
        self.next_seq = seq + 1;
        Ok(Appended {
            seq,
            truncated: encoded.truncated,
        })
    }

    /// Sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records written but not yet passed by the consumer (as last seen).
    pub fn occupancy(&self) -> u64 {
        self.next_seq - self.raw.cursor().load(Ordering::Relaxed).min(self.next_seq)
    }

    pub fn header(&self) -> &RingHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Durably writes back the slots of records `from_seq..to_seq` (for `--sync always`).
    pub fn sync_records(&self, from_seq: u64, to_seq: u64) -> std::io::Result<()> {
        self.raw.flush_slots(from_seq, to_seq)
    }

    /// Syncs every record and records a clean stop at the current head: the next open then
    /// treats any record up to that head that fails its check as corruption, not a torn write.
    pub fn close_clean(self) -> Result<(), RingError> {
        self.file
            .sync_data()
            .map_err(|e| RingError::io(&self.path, e))?;
        mark_clean_stop(&self.raw, &self.path, self.next_seq)
    }

    /// A handle on the file for a background `fdatasync` (for `--sync interval`).
    pub fn sync_handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }
}

/// Records a clean stop at `head` in the ring at `path`, whose writer has stopped and whose
/// records are synced (the server calls this after its final sync, for each core's ring).
pub fn record_clean_stop(path: &Path, head: u64) -> Result<(), RingError> {
    let (_file, raw, _) = super::reader::open_mapped(path, true)?;
    mark_clean_stop(&raw, path, head)
}

fn mark_clean_stop(raw: &RawRing, path: &Path, head: u64) -> Result<(), RingError> {
    raw.clean_stop()
        .store(head.saturating_add(1), Ordering::Release);
    raw.flush_header().map_err(|e| RingError::io(path, e))
}

fn create(path: &Path, opts: RingOptions) -> Result<(), RingError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("glr.tmp");
    let len = check_geometry(opts.slot_size, opts.capacity)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)
        .map_err(|e| RingError::io(&tmp, e))?;
    let result = (|| {
        preallocate(&file, &tmp, len)?;
        let map_len = usize::try_from(len).map_err(|_| too_large(len))?;
        let mut raw = RawRing::map(&file, map_len, true).map_err(|e| RingError::io(&tmp, e))?;
        let header = RingHeader {
            version: RING_VERSION,
            slot_size: opts.slot_size as u32,
            core: opts.core,
            capacity: opts.capacity,
            seed: random_seed(),
            created_ns: crate::clock::now_ns(),
            identity: opts.identity,
        };
        let mut page = [0u8; HEADER_PAGE];
        header.encode(&mut page);
        raw.write_header_page(&page);
        raw.flush_header().map_err(|e| RingError::io(&tmp, e))?;
        file.sync_all().map_err(|e| RingError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| RingError::io(path, e))?;
        crate::sys::sync_dir(dir).map_err(|e| RingError::io(dir, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn preallocate(file: &File, path: &Path, len: u64) -> Result<(), RingError> {
    let Ok(off_len) = libc::off_t::try_from(len) else {
        return Err(too_large(len));
    };
    crate::sys::posix_fallocate(file.as_raw_fd(), off_len).map_err(|source| {
        RingError::Preallocate {
            path: path.display().to_string(),
            bytes: len,
            source,
        }
    })
}

fn too_large(len: u64) -> RingError {
    RingError::Geometry(format!("ring of {len} bytes is too large"))
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if crate::sys::getrandom(&mut bytes).is_err() {
        // Fall back to time and pid: the seed only has to differ from earlier files.
        let mixed = crate::clock::now_ns() ^ (u64::from(std::process::id()) << 32);
        return mixed.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15;
    }
    u64::from_le_bytes(bytes)
}
