//! The ring file's header page and slot geometry.
//!
//! A ring file is one 4096-byte header page followed by `capacity` slots of `slot_size` bytes.
//! Slot `i` starts at `HEADER_PAGE + i * slot_size`; a record with sequence number `seq` lives in
//! slot `seq % capacity`. Slots never straddle a page because both sizes are powers of two.
//!
//! | offset | size | field                | meaning                                               |
//! |-------:|-----:|----------------------|-------------------------------------------------------|
//! |      0 |    8 | `magic`              | `GLINTRNG`                                            |
//! |      8 |    4 | `ring_version`       | [`RING_VERSION`]                                      |
//! |     12 |    4 | `record_version`     | [`crate::record::FORMAT_VERSION`] of the writer (records say their own) |
//! |     16 |    4 | `slot_size`          | bytes per slot, power of two 256..=4096               |
//! |     20 |    4 | `core`               | worker index that owns this ring                      |
//! |     24 |    8 | `capacity`           | number of slots, power of two                         |
//! |     32 |    8 | `seed`               | random per file, mixed into every record CRC          |
//! |     40 |    8 | `created_ns`         | creation time, ns since the Unix epoch                |
//! |     48 |    4 | `header_crc`         | CRC32C of bytes 0..48                                 |
//! |     52 |   12 | reserved             | zero                                                  |
//! |     64 |    8 | `consumer_cursor`    | first seq not yet durably compacted (own cache line)  |
//! |     72 |   56 | reserved             | zero (rest of the cursor's cache line)                |
//! |    128 |    8 | `clean_stop`         | 0 while a writer runs or after a crash; `head + 1` after a clean stop |
//! |    136 |    4 | `epoch`              | writer epoch, bumped and synced at every writer open  |
//! |    140 |    4 | reserved             | zero                                                  |
//! |    144 |    8 | `epoch_start`        | first seq of the current epoch (the head recovery found) |
//! |    152 |   40 | reserved             | zero                                                  |
//! |    192 |   88 | `identity`           | the instance that wrote the ring ([`crate::instance`]) |
//! |    280 | 3816 | reserved             | zero                                                  |
//!
//! Bytes 0..48 never change after creation (their CRC is at 48). The words from 64 on are
//! updated in place with atomic stores and are not covered by the CRC.
//!
//! **Clean stop.** A server that stops cleanly (SIGTERM/SIGINT, every record synced) stores
//! `head + 1` at 128 after the final sync; the next writer clears it (durably) before it writes
//! anything. After a clean stop nothing can be torn: every slot from the cursor to that head
//! must validate, and one that does not is corruption, reported, never zeroed.
//!
//! **Writer epoch.** Each writer open bumps `epoch`, sets `epoch_start` to the head its
//! recovery found and syncs the header page before the first record of the run; every record
//! carries the epoch it was written in (record bytes 76..80, inside its CRC). A record is
//! current when its seq is at or past `epoch_start` and its epoch equals `epoch`, or its seq is
//! below `epoch_start` and its epoch is older. So a record a power loss left beyond the
//! recovered head (pages persist in any order) is stale and never reads as current, even once
//! the new run has written the seqs before it; recovery can stop at the first slot that is not
//! current and never has to look at (or zero) the rest of the ring: a restart reads the
//! records pending since the cursor, not the capacity.
//!
//! **Version 1** rings (no clean-stop word, no epoch: bytes 128..192 zero, records with epoch 0)
//! are read by every reader under the same rule (epoch 0, start 0). A writer upgrades a drained
//! v1 ring in place (see [`crate::ring::RingWriter::open`]).
//!
//! Version 1 files (no identity block, bytes 192..280 zero) are still read; their records
//! have no instance. Only version 2 rings are written.

use crate::instance::{Identity, BLOCK_LEN as IDENTITY_LEN};
use crate::record::{FORMAT_VERSION, MAX_SLOT_SIZE, MIN_SLOT_SIZE, OLDEST_FORMAT_VERSION};
use std::path::Path;

/// Bytes before the first slot.
pub const HEADER_PAGE: usize = 4096;
/// Ring file magic.
pub const MAGIC: [u8; 8] = *b"GLINTRNG";
/// Version of the ring file layout above.
pub const RING_VERSION: u32 = 2;
/// Oldest ring layout readers still accept (version 1: no identity block).
pub const MIN_RING_VERSION: u32 = 1;
/// Offset of the instance identity block ([`crate::instance::BLOCK_LEN`] bytes).
pub const OFF_IDENTITY: usize = 192;
/// Offset of the consumer cursor (an 8-byte aligned u64 on its own cache line).
pub const OFF_CURSOR: usize = 64;
/// Offset of the clean-stop word (u64: 0, or the head + 1 after a clean stop).
pub const OFF_CLEAN_STOP: usize = 128;
/// Offset of the writer epoch (u32).
pub const OFF_EPOCH: usize = 136;
/// Offset of the first seq of the current epoch (u64).
pub const OFF_EPOCH_START: usize = 144;
const HEADER_CRC_LEN: usize = 48;
/// Fewest slots a ring may have.
pub const MIN_CAPACITY: u64 = 2;
/// Most slots a ring may have (2^32): far above any useful ring, far below where the slot
/// arithmetic could overflow.
pub const MAX_CAPACITY: u64 = 1 << 32;
/// Largest ring file (header page and slots), 4 TiB: a flag or a header claiming more is refused
/// before anything is mapped.
pub const MAX_FILE_LEN: u64 = 4 << 40;

/// The immutable part of a ring header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingHeader {
    /// Ring layout version read from the file; [`RingHeader::encode`] always writes
    /// [`RING_VERSION`].
    pub version: u32,
    pub slot_size: u32,
    pub core: u32,
    pub capacity: u64,
    pub seed: u64,
    pub created_ns: u64,
    /// The instance that wrote the ring; `None` in a version 1 file.
    pub identity: Option<Identity>,
}

/// Why a ring file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: offset {offset}: {what}")]
    Format {
        path: String,
        offset: u64,
        what: String,
    },
    #[error("{path}: ring has {what} {have}, but {want} was asked for; compact the ring and move it away, or run with the same setting")]
    Mismatch {
        path: String,
        what: &'static str,
        have: u64,
        want: u64,
    },
    #[error("{path}: cannot preallocate {bytes} bytes: {source} (is the disk full?)")]
    Preallocate {
        path: String,
        bytes: u64,
        source: std::io::Error,
    },
    #[error("invalid ring geometry: {0}")]
    Geometry(String),
}

impl RingError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        RingError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn format(path: &Path, offset: u64, what: impl Into<String>) -> Self {
        RingError::Format {
            path: path.display().to_string(),
            offset,
            what: what.into(),
        }
    }
}

/// Checks a slot size and capacity before any file is touched; returns the file length they
/// need. Every bound is checked with overflow-safe arithmetic, so no flag and no header can
/// make a ring's byte length wrap.
pub fn check_geometry(slot_size: usize, capacity: u64) -> Result<u64, RingError> {
    check_slot_size(slot_size)?;
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(RingError::Geometry(format!(
            "ring slots {capacity} must be a power of two from {MIN_CAPACITY} to {MAX_CAPACITY}"
        )));
    }
    match file_len(slot_size, capacity) {
        Some(len) if len <= MAX_FILE_LEN => Ok(len),
        _ => Err(RingError::Geometry(format!(
            "{capacity} slots of {slot_size} bytes exceed the largest ring file, {} GiB",
            MAX_FILE_LEN >> 30
        ))),
    }
}

fn check_slot_size(slot_size: usize) -> Result<(), RingError> {
    if !slot_size.is_power_of_two() || !(MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&slot_size) {
        return Err(RingError::Geometry(format!(
            "slot size {slot_size} must be a power of two from {MIN_SLOT_SIZE} to {MAX_SLOT_SIZE}"
        )));
    }
    Ok(())
}

/// Total file size for a geometry; `None` if it does not fit in a u64.
pub fn file_len(slot_size: usize, capacity: u64) -> Option<u64> {
    (slot_size as u64)
        .checked_mul(capacity)?
        .checked_add(HEADER_PAGE as u64)
}

impl RingHeader {
    /// Writes the header fields into the first bytes of a zeroed header page.
    pub fn encode(&self, page: &mut [u8]) {
        page[0..8].copy_from_slice(&MAGIC);
        page[8..12].copy_from_slice(&RING_VERSION.to_le_bytes());
        page[12..16].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        page[16..20].copy_from_slice(&self.slot_size.to_le_bytes());
        page[20..24].copy_from_slice(&self.core.to_le_bytes());
        page[24..32].copy_from_slice(&self.capacity.to_le_bytes());
        page[32..40].copy_from_slice(&self.seed.to_le_bytes());
        page[40..48].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32c::crc32c(&page[..HEADER_CRC_LEN]);
        page[48..52].copy_from_slice(&crc.to_le_bytes());
        if let Some(identity) = &self.identity {
            page[OFF_IDENTITY..OFF_IDENTITY + IDENTITY_LEN].copy_from_slice(&identity.encode());
        }
    }

    /// Validates and decodes a header page; `file_len` is the file's actual size.
    pub fn decode(path: &Path, page: &[u8], actual_len: u64) -> Result<RingHeader, RingError> {
        if page.len() < HEADER_PAGE {
            return Err(RingError::format(
                path,
                page.len() as u64,
                format!(
                    "file is {} bytes, shorter than the {HEADER_PAGE}-byte ring header",
                    page.len()
                ),
            ));
        }
        if page[0..8] != MAGIC {
            return Err(RingError::format(
                path,
                0,
                "not a glint ring file (bad magic)",
            ));
        }
        let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(page[at..at + 8].try_into().expect("8"));
        let ring_version = u32_at(8);
        if !(MIN_RING_VERSION..=RING_VERSION).contains(&ring_version) {
            return Err(RingError::format(
                path,
                8,
                format!(
                    "ring format version {ring_version}, this glint reads version {RING_VERSION} (and {MIN_RING_VERSION})"
                ),
            ));
        }
        let record_version = u32_at(12);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&record_version) {
            return Err(RingError::format(
                path,
                12,
                format!("record format version {record_version}, this glint reads version {FORMAT_VERSION} (and older ones down to {OLDEST_FORMAT_VERSION})"),
            ));
        }
        if crc32c::crc32c(&page[..HEADER_CRC_LEN]) != u32_at(48) {
            return Err(RingError::format(path, 48, "ring header CRC mismatch"));
        }
        let header = RingHeader {
            version: ring_version,
            slot_size: u32_at(16),
            core: u32_at(20),
            capacity: u64_at(24),
            seed: u64_at(32),
            created_ns: u64_at(40),
            identity: Identity::decode(&page[OFF_IDENTITY..OFF_IDENTITY + IDENTITY_LEN])
                .map_err(|(at, what)| RingError::format(path, (OFF_IDENTITY + at) as u64, what))?,
        };
        let slot_size = header.slot_size as usize;
        check_slot_size(slot_size).map_err(|e| RingError::format(path, 16, e.to_string()))?;
        let want = check_geometry(slot_size, header.capacity)
            .map_err(|e| RingError::format(path, 24, e.to_string()))?;
        if actual_len < want {
            return Err(RingError::format(
                path,
                actual_len,
                format!("file is {actual_len} bytes, its header promises {want} (truncated ring)"),
            ));
        }
        Ok(header)
    }

    pub fn slot_offset(&self, seq: u64) -> usize {
        HEADER_PAGE + (seq & (self.capacity - 1)) as usize * self.slot_size as usize
    }
}

/// The file name of core `core`'s ring inside a data dir.
pub fn ring_file_name(core: usize) -> String {
    format!("ring-{core:03}.glr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = RingHeader {
            version: RING_VERSION,
            slot_size: 512,
            core: 2,
            capacity: 1024,
            seed: 99,
            created_ns: 5,
            identity: Some(Identity::new([3; 16], "box-a").unwrap()),
        };
        let mut page = vec![0u8; HEADER_PAGE];
        h.encode(&mut page);
        let p = Path::new("r");
        let len = file_len(512, 1024).unwrap();
        assert_eq!(RingHeader::decode(p, &page, len).unwrap(), h);
        let e = RingHeader::decode(p, &page, len - 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated ring"), "{e}");
        page[OFF_IDENTITY + 30] ^= 1;
        let e = RingHeader::decode(p, &page, len).unwrap_err().to_string();
        assert!(e.contains("offset 276") && e.contains("identity"), "{e}");
        page[OFF_IDENTITY + 30] ^= 1;
        page[20] ^= 1;
        let e = RingHeader::decode(p, &page, len).unwrap_err().to_string();
        assert!(e.contains("offset 48") && e.contains("CRC"), "{e}");
        page[0] = b'X';
        assert!(RingHeader::decode(p, &page, len)
            .unwrap_err()
            .to_string()
            .contains("bad magic"));
    }

    #[test]
    fn newer_versions_are_refused_by_name() {
        let h = RingHeader {
            version: RING_VERSION,
            slot_size: 256,
            core: 0,
            capacity: 2,
            seed: 1,
            created_ns: 0,
            identity: None,
        };
        let mut page = vec![0u8; HEADER_PAGE];
        h.encode(&mut page);
        page[12..16].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let e = RingHeader::decode(Path::new("r"), &page, file_len(256, 2).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("offset 12") && e.contains("record format version 3"),
            "{e}"
        );
    }

    #[test]
    fn version_1_files_are_read_without_identity() {
        let h = RingHeader {
            version: 1,
            slot_size: 256,
            core: 1,
            capacity: 2,
            seed: 1,
            created_ns: 0,
            identity: None,
        };
        let mut page = vec![0u8; HEADER_PAGE];
        h.encode(&mut page);
        page[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&page[..HEADER_CRC_LEN]);
        page[48..52].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            RingHeader::decode(Path::new("r"), &page, file_len(256, 2).unwrap()).unwrap(),
            h
        );
        page[8..12].copy_from_slice(&(RING_VERSION + 1).to_le_bytes());
        let crc = crc32c::crc32c(&page[..HEADER_CRC_LEN]);
        page[48..52].copy_from_slice(&crc.to_le_bytes());
        let e = RingHeader::decode(Path::new("r"), &page, file_len(256, 2).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("offset 8") && e.contains("ring format version 3"),
            "{e}"
        );
    }

    #[test]
    fn geometry_is_checked() {
        assert!(check_geometry(512, 1 << 20).is_ok());
        assert!(check_geometry(300, 1024).is_err());
        assert!(check_geometry(8192, 1024).is_err());
        assert!(check_geometry(512, 1000).is_err());
        assert!(check_geometry(512, 1).is_err());
        assert_eq!(check_geometry(256, MAX_CAPACITY).unwrap(), (1 << 40) + 4096);
        assert!(check_geometry(256, MAX_CAPACITY << 1).is_err());
        // 2^52 slots of 4096 bytes: the byte length wraps a u64 to 4096 without checks.
        let e = check_geometry(4096, 1 << 52).unwrap_err().to_string();
        assert!(e.contains("4503599627370496"), "{e}");
        // Within the slot count bound, over the file length bound (8 TiB).
        let e = check_geometry(2048, MAX_CAPACITY).unwrap_err().to_string();
        assert!(e.contains("largest ring file"), "{e}");
        assert_eq!(file_len(4096, 1 << 52), None);
    }

    #[test]
    fn a_header_claiming_a_wrapping_geometry_is_refused_at_its_offset() {
        // A valid CRC over 2^52 slots of 4096 bytes: 4096 + 2^64 wraps to the 4096-byte file.
        let h = RingHeader {
            version: RING_VERSION,
            slot_size: 4096,
            core: 0,
            capacity: 1 << 52,
            seed: 7,
            created_ns: 0,
            identity: None,
        };
        let mut page = vec![0u8; HEADER_PAGE];
        h.encode(&mut page);
        let e = RingHeader::decode(Path::new("r.glr"), &page, HEADER_PAGE as u64)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.glr: offset 24: "), "{e}");
        let h = RingHeader {
            version: RING_VERSION,
            slot_size: 3000,
            ..h
        };
        h.encode(&mut page);
        let e = RingHeader::decode(Path::new("r.glr"), &page, HEADER_PAGE as u64)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.glr: offset 16: "), "{e}");
    }
}
