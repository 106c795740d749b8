//! The per-core ring writer: create or reopen, recover, append, sync.

use super::format::{check_geometry, RingError, RingHeader, HEADER_PAGE, RING_VERSION};
use super::raw::RawRing;
use super::recover::Recovery;
use super::slot::max_span;
use crate::instance::Identity;
use crate::record::{self, Placement, RecordFields};
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

/// A committed record's sequence number and the slots it took (skipped slots included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub slots: u64,
}

/// Why a record was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The ring would overwrite a record the consumer has not passed yet.
    Full,
    /// The record needs more slots than this ring allows one record ([`max_span`]).
    TooLarge { len: usize },
}

/// Single writer of one ring file.
pub struct RingWriter {
    pub(super) raw: RawRing,
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) header: RingHeader,
    pub(super) crc_init: u32,
    pub(super) epoch: u32,
    pub(super) next_seq: u64,
    pub(super) cached_cursor: u64,
    pub(super) max_span: u64,
}

impl RingWriter {
    /// Opens the ring at `path`, creating and preallocating it if missing, then recovers it.
    ///
    /// Recovery ([`super::recover`]) reads from the consumer cursor (or the current epoch's
    /// start, if later) forward and stops at the first slot that is not current (or, after a
    /// clean stop, at the recorded head), so it costs the pending records, not the capacity.
    /// It then starts a new writer epoch and syncs the header page before returning, so no
    /// record of this run can be written under the old epoch.
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
        let (file, raw, header) = super::mapped::open_mapped(path, true)?;
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
            max_span: max_span(header.slot_size as usize, header.capacity),
        };
        if header.version < RING_VERSION {
            writer = writer.upgrade_drained(opts)?;
        }
        let mut recovery = writer.recover()?;
        recovery.created = created;
        recovery.upgraded = header.version < RING_VERSION;
        Ok((writer, recovery))
    }

    /// Encodes and commits one record in as many consecutive slots as it needs; returns its
    /// sequence number and the slots it took.
    ///
    /// A record that would pass the ring's end starts at the ring's start instead, the slots
    /// left at the end skipped (see [`crate::record`]). The room checked against the consumer
    /// cursor is everything the record takes, skipped slots included. The old commit words of
    /// all its slots are cleared first, the bytes and CRC written next, and the first slot's
    /// commit word stored last with Release ordering, so any reader that sees it sees the whole
    /// record.
    #[inline]
    pub fn append(&mut self, rec: &RecordFields<'_>) -> Result<Appended, AppendError> {
        let slot = self.header.slot_size as usize;
        let len = record::encoded_len(rec);
        let span = if len <= slot {
            1
        } else {
            len.div_ceil(slot) as u64
        };
        if span > self.max_span {
            return Err(AppendError::TooLarge { len });
        }
        let cap = self.header.capacity;
        let pos = self.next_seq & (cap - 1);
        let pad = if pos + span > cap { cap - pos } else { 0 };
        let end = self.next_seq + pad + span;
        if end - self.cached_cursor > cap {
            self.cached_cursor = self.raw.cursor().load(Ordering::Acquire);
            if end - self.cached_cursor.min(end) > cap {
                return Err(AppendError::Full);
            }
        }
        let seq = self.next_seq + pad;
        if pad > 0 {
            self.skip_to_ring_start(seq);
        }
        let (crc_init, epoch) = (self.crc_init, self.epoch);
        // The slots may hold records from the previous lap (already compacted). Retire their
        // commit words before touching the bytes, so a reader copying an old record sees its
        // word change and drops its copy, and a crash mid-write leaves an empty first slot,
        // never an old commit word over half-new bytes (which would read as corruption).
        for i in 0..span {
            self.raw.commit_word(seq + i).store(0, Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Release);
        let place = Placement {
            span: span as u32,
            pad_before: pad as u32,
        };
        self.raw.with_run_payload(seq, span as usize, |payload| {
            record::encode_after_commit(payload, seq, epoch, crc_init, rec, place)
        });
        self.raw.commit_word(seq).store(seq + 1, Ordering::Release);
        self.next_seq = end;
        Ok(Appended {
            seq,
            slots: pad + span,
        })
    }

    /// Retires the commit words of the slots from the head to the ring's end, which the next
    /// record skips, and writes them back before that record is written (once per lap).
    ///
    /// A record an earlier, crashed run left in those slots is stale, but once a later writer
    /// epoch starts past these seqs the epoch rule alone would call it current, and nothing
    /// else ever writes these seqs again. Synced first, so no power loss can keep the record
    /// that skips them without also keeping the cleared words. (Recovery clears them again
    /// when it walks over a skip; a failed write-back here leaves that as the safeguard.)
    #[cold]
    fn skip_to_ring_start(&mut self, start: u64) {
        for skipped in self.next_seq..start {
            self.raw.commit_word(skipped).store(0, Ordering::Release);
        }
        let _ = self.raw.flush_slots(self.next_seq, start);
    }

    /// Most slots one record may take in this ring (see [`max_span`]).
    pub fn max_span(&self) -> u64 {
        self.max_span
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
    let (_file, raw, _) = super::mapped::open_mapped(path, true)?;
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

pub(super) fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if crate::sys::getrandom(&mut bytes).is_err() {
        // Fall back to time and pid: the seed only has to differ from earlier files.
        let mixed = crate::clock::now_ns() ^ (u64::from(std::process::id()) << 32);
        return mixed.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15;
    }
    u64::from_le_bytes(bytes)
}
