//! The per-core ring writer: create or reopen, recover, append, sync.

use super::format::{check_geometry, RingError, RingHeader, HEADER_PAGE};
use super::raw::RawRing;
use super::slot::{check_slot, SlotState};
use crate::instance::Identity;
use crate::record::{self, RecordFields, MAX_SLOT_SIZE};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The file did not exist and was created.
    pub created: bool,
    /// Consumer cursor read from the header.
    pub cursor: u64,
    /// Valid records found from the cursor on (not yet compacted).
    pub pending: u64,
    /// Sequence number the writer resumes at.
    pub next_seq: u64,
    /// Slots past the last valid record that held a torn or invalid record and were zeroed.
    pub torn: u64,
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
    next_seq: u64,
    cached_cursor: u64,
}

impl RingWriter {
    /// Opens the ring at `path`, creating and preallocating it if missing, then recovers it.
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
            next_seq: 0,
            cached_cursor: 0,
        };
        let mut recovery = writer.recover();
        recovery.created = created;
        Ok((writer, recovery))
    }

    /// Scans from the consumer cursor, keeps the valid prefix, zeroes the torn tail.
    fn recover(&mut self) -> Recovery {
        let cursor = self.raw.cursor().load(Ordering::Acquire);
        let cap = self.header.capacity;
        let mut buf = [0u8; MAX_SLOT_SIZE];
        let buf = &mut buf[..self.header.slot_size as usize];
        let mut end = cursor;
        // (A damaged header's cursor near u64::MAX must not overflow the scan.)
        while end - cursor < cap
            && end < u64::MAX - cap
            && check_slot(&self.raw, self.crc_init, end, buf) == SlotState::Valid
        {
            end += 1;
        }
        let mut torn = 0;
        for slot in 0..cap {
            // `slot` addresses slot number `slot` (seq & mask); the seq a commit word claims is
            // never used as an address, since a damaged word may claim another slot's seq.
            let commit = self.raw.commit_word(slot).load(Ordering::Acquire);
            // A commit word claiming a seq at or past `end` is left from the crashed run's tail.
            if commit > end {
                self.raw.with_slot_payload(slot, |p| p.fill(0));
                self.raw.commit_word(slot).store(0, Ordering::Release);
                torn += 1;
            }
        }
        // A half-written slot at `end` (a crash mid-write) may keep an older lap's commit word
        // over new bytes: clear it whole, word and payload. Its old record is below the cursor.
        if end - cursor < cap {
            self.raw.commit_word(end).store(0, Ordering::Release);
            self.raw.with_slot_payload(end, |p| p.fill(0));
        }
        if torn > 0 {
            let _ = self.raw.flush_slots(0, cap);
        }
        self.next_seq = end;
        self.cached_cursor = cursor;
        Recovery {
            created: false,
            cursor,
            pending: end - cursor,
            next_seq: end,
            torn,
        }
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
        let crc_init = self.crc_init;
        // The slot may hold a record from the previous lap (already compacted). Retire its
        // commit word before touching the bytes, so a reader copying that old record sees the
        // word change and drops its copy, and a crash mid-write leaves an empty slot, never
        // the old commit word over half-new bytes (which would read as corruption).
        self.raw.commit_word(seq).store(0, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        let encoded = self.raw.with_slot_payload(seq, |payload| {
            record::encode_after_commit(payload, seq, crc_init, rec)
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

    /// A handle on the file for a background `fdatasync` (for `--sync interval`).
    pub fn sync_handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }
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
