//! Byte layouts of the segment header, block header, checkpoint and index entries, trailer.

use crate::instance::{Identity, BLOCK_LEN as IDENTITY_LEN};
use crate::record::{FORMAT_VERSION, MAX_RECORD_LEN, OLDEST_FORMAT_VERSION};
use std::path::{Path, PathBuf};

/// Sealed segment file name suffix.
pub const SEGMENT_SUFFIX: &str = ".gls";
/// Suffix of the segment the compactor is writing.
pub const OPEN_SUFFIX: &str = ".gls.open";
/// Version of the segment layout.
pub const SEGMENT_VERSION: u32 = 2;
/// Oldest segment layout readers still accept (version 1: no identity block).
pub const MIN_SEGMENT_VERSION: u32 = 1;
/// Bytes of the fixed header fields, the whole header of a version 1 segment.
pub const HEADER_FIXED_LEN: usize = 64;
/// Bytes of a version 2 header: the fixed fields, then the instance identity block.
pub const HEADER_LEN: usize = HEADER_FIXED_LEN + IDENTITY_LEN;
pub const BLOCK_HEADER_LEN: usize = 40;
pub const TRAILER_LEN: usize = 40;
pub(crate) const CHECKPOINT_ENTRY_LEN: usize = 24;
pub(crate) const INDEX_ENTRY_LEN: usize = 32;

// The length contract: every block length the writer may produce and the reader accepts
// follows from the constants below through [`BlockHeader::check_lengths`], which the writer
// (before writing a block), the reader, recovery, `decode --verify` and the fuzz targets all
// call. Nothing else decides whether a block length is acceptable.

/// Raw bytes of records gathered before a block is written (a block ends at most one record later).
pub const BLOCK_TARGET: usize = 64 * 1024;
/// Largest raw payload of a records block: the writer ends a block as soon as it holds
/// [`BLOCK_TARGET`] bytes, so before its last record it held at most `BLOCK_TARGET - 1`, and a
/// record is at most [`MAX_RECORD_LEN`]. Bounds the reader's memory for one block.
pub const MAX_RECORDS_BLOCK: usize = BLOCK_TARGET - 1 + MAX_RECORD_LEN;
/// Most entries in a checkpoint block: one per core, and a core is a `u16` in every record.
pub const MAX_CHECKPOINT_ENTRIES: usize = 1 << 16;
/// Most entries in an index block, so its length fits the `u32` length fields. The writer
/// seals a segment before it holds more records blocks than this; in practice the size and
/// span limits seal it long before (an index entry stands for a block of about 64 KiB raw).
/// The index is not bounded by a fixed byte count: it grows with the segment, and a reader
/// bounds it by the blocks that fit in the file before it.
pub const MAX_INDEX_ENTRIES: usize = u32::MAX as usize / INDEX_ENTRY_LEN;
/// Fewest bytes a records block takes in the file: its header and a non-empty payload.
const MIN_RECORDS_BLOCK_LEN: u64 = BLOCK_HEADER_LEN as u64 + 1;

const MAGIC: [u8; 8] = *b"GLINTSEG";
pub(crate) const BLOCK_MAGIC: [u8; 4] = *b"GLBK";
const TRAILER_MAGIC: [u8; 8] = *b"GLSEGEND";

/// Why a segment cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: offset {offset}: {what}")]
    Format {
        path: String,
        offset: u64,
        what: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl SegmentError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        SegmentError::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub(crate) fn format(path: &Path, offset: u64, what: impl Into<String>) -> Self {
        SegmentError::Format {
            path: path.display().to_string(),
            offset,
            what: what.into(),
        }
    }
}

/// Block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    None = 0,
    Zstd = 1,
}

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Records = 1,
    Checkpoint = 2,
    Index = 3,
}

/// A ring's compaction progress: records of ring file `seed` below `next_seq` are in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub core: u32,
    pub seed: u64,
    pub next_seq: u64,
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Header bytes of a segment of layout `version` (the first block starts there).
pub fn header_len(version: u32) -> usize {
    if version >= 2 {
        HEADER_LEN
    } else {
        HEADER_FIXED_LEN
    }
}

/// The segment file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub version: u32,
    pub codec: Codec,
    pub seed: u64,
    pub start_ns: u64,
    pub created_ns: u64,
    /// The instance whose rings the records came from; `None` in a version 1 segment.
    pub identity: Option<Identity>,
}

impl FileHeader {
    /// Bytes of this header in the file: where the first block starts.
    pub fn len(&self) -> u64 {
        header_len(self.version) as u64
    }

    /// Encodes a header of the current version.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[16..20].copy_from_slice(&(self.codec as u32).to_le_bytes());
        b[24..32].copy_from_slice(&self.seed.to_le_bytes());
        b[32..40].copy_from_slice(&self.start_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        if let Some(identity) = &self.identity {
            b[HEADER_FIXED_LEN..].copy_from_slice(&identity.encode());
        }
        b
    }

    /// Decodes the header at the start of `b` (the file's first bytes, as many as it has).
    pub fn decode(path: &Path, b: &[u8]) -> Result<FileHeader, SegmentError> {
        if b.len() < HEADER_FIXED_LEN {
            return Err(short_header(path, b.len(), HEADER_FIXED_LEN));
        }
        if b[0..8] != MAGIC {
            return Err(SegmentError::format(
                path,
                0,
                "not a glint segment (bad magic)",
            ));
        }
        let version = u32_at(b, 8);
        if !(MIN_SEGMENT_VERSION..=SEGMENT_VERSION).contains(&version) {
            let what = format!(
                "segment format version {version}, this glint reads version {SEGMENT_VERSION} (and {MIN_SEGMENT_VERSION})"
            );
            return Err(SegmentError::format(path, 8, what));
        }
        let record_version = u32_at(b, 12);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&record_version) {
            let what = format!(
                "record format version {record_version}, this glint reads version {FORMAT_VERSION} (and older ones down to {OLDEST_FORMAT_VERSION})"
            );
            return Err(SegmentError::format(path, 12, what));
        }
        if crc32c::crc32c(&b[..60]) != u32_at(b, 60) {
            return Err(SegmentError::format(
                path,
                60,
                "segment header CRC mismatch",
            ));
        }
        let codec = match u32_at(b, 16) {
            0 => Codec::None,
            1 => Codec::Zstd,
            other => {
                return Err(SegmentError::format(
                    path,
                    16,
                    format!("unknown codec {other}"),
                ))
            }
        };
        let identity = if version >= 2 {
            let block = b
                .get(HEADER_FIXED_LEN..HEADER_LEN)
                .ok_or_else(|| short_header(path, b.len(), HEADER_LEN))?;
            Identity::decode(block).map_err(|(at, what)| {
                SegmentError::format(path, (HEADER_FIXED_LEN + at) as u64, what)
            })?
        } else {
            None
        };
        Ok(FileHeader {
            version,
            codec,
            seed: u64_at(b, 24),
            start_ns: u64_at(b, 32),
            created_ns: u64_at(b, 40),
            identity,
        })
    }
}

fn short_header(path: &Path, have: usize, want: usize) -> SegmentError {
    SegmentError::format(
        path,
        have as u64,
        format!("file is {have} bytes, shorter than the {want}-byte segment header"),
    )
}

/// A decoded block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub kind: BlockKind,
    pub zstd: bool,
    pub stored_len: u32,
    pub raw_len: u32,
    pub count: u32,
    pub min_ts: u64,
    pub max_ts: u64,
    pub crc: u32,
}

impl BlockHeader {
    /// Encodes the header with the CRC over seed, header and `payload`.
    pub fn encode(&self, seed: u64, payload: &[u8]) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4] = self.kind as u8;
        b[5] = u8::from(self.zstd);
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.count.to_le_bytes());
        b[20..28].copy_from_slice(&self.min_ts.to_le_bytes());
        b[28..36].copy_from_slice(&self.max_ts.to_le_bytes());
        let crc = block_crc(seed, &b, payload);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header's fields; an error if it is not a block header at all. Its lengths are
    /// checked by [`BlockHeader::check_lengths`].
    pub fn decode(b: &[u8; BLOCK_HEADER_LEN]) -> Result<BlockHeader, String> {
        if b[0..4] != BLOCK_MAGIC {
            return Err("no block here (bad block magic)".into());
        }
        let kind = match b[4] {
            1 => BlockKind::Records,
            2 => BlockKind::Checkpoint,
            3 => BlockKind::Index,
            other => return Err(format!("unknown block kind {other}")),
        };
        if b[5] > 1 {
            return Err(format!("unknown block codec {}", b[5]));
        }
        let h = BlockHeader {
            kind,
            zstd: b[5] == 1,
            stored_len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            count: u32_at(b, 16),
            min_ts: u64_at(b, 20),
            max_ts: u64_at(b, 28),
            crc: u32_at(b, 36),
        };
        Ok(h)
    }

    /// The length contract for a block whose header is at file offset `at` in a file of
    /// `file_len` bytes (a writer passes the length the file will have with this block).
    ///
    /// - every block: it ends inside the file;
    /// - records: 1 ..= [`MAX_RECORDS_BLOCK`] raw bytes holding `count` >= 1 records of at
    ///   least [`crate::record::HEADER_LEN`] bytes each; stored raw (`stored_len == raw_len`)
    ///   or as a zstd frame no longer than the raw bytes;
    /// - checkpoint: at most [`MAX_CHECKPOINT_ENTRIES`] entries of 24 bytes, stored raw;
    /// - index: `count` entries of 32 bytes, stored raw, and no more entries than there are
    ///   records blocks that fit between the header and `at` (nor than [`MAX_INDEX_ENTRIES`]):
    ///   bounded by the file it is in, not by a fixed constant, so an index grows with its
    ///   segment and every index an earlier release wrote is still read.
    pub fn check_lengths(&self, at: u64, file_len: u64) -> Result<(), String> {
        let end = at
            .checked_add(self.total_len())
            .filter(|&end| end <= file_len);
        if end.is_none() {
            return Err(format!(
                "block of {} bytes runs past the end of the file ({file_len} bytes)",
                self.total_len()
            ));
        }
        let (stored, raw, count) = (
            u64::from(self.stored_len),
            u64::from(self.raw_len),
            u64::from(self.count),
        );
        let entries = |entry_len: usize, max: u64, what: &str| -> Result<(), String> {
            if self.zstd {
                return Err(format!(
                    "{what} block is compressed (only records blocks are)"
                ));
            }
            if count > max {
                return Err(format!(
                    "{what} block lists {count} entries, at most {max} fit here"
                ));
            }
            let want = count * entry_len as u64;
            if raw != want || stored != want {
                return Err(format!(
                    "{what} block of {count} entries is {stored} bytes (raw {raw}), want {want}"
                ));
            }
            Ok(())
        };
        match self.kind {
            BlockKind::Records => {
                if raw == 0 || raw > MAX_RECORDS_BLOCK as u64 {
                    return Err(format!(
                        "records block of {raw} raw bytes is outside 1..={MAX_RECORDS_BLOCK}"
                    ));
                }
                let framing_ok = if self.zstd {
                    (1..=raw).contains(&stored)
                } else {
                    stored == raw
                };
                if !framing_ok {
                    return Err(format!(
                        "records block stores {stored} bytes for {raw} raw bytes ({})",
                        if self.zstd { "zstd" } else { "uncompressed" }
                    ));
                }
                if count == 0 || count * crate::record::HEADER_LEN as u64 > raw {
                    return Err(format!(
                        "records block claims {count} records in {raw} bytes"
                    ));
                }
                Ok(())
            }
            BlockKind::Checkpoint => entries(
                CHECKPOINT_ENTRY_LEN,
                MAX_CHECKPOINT_ENTRIES as u64,
                "checkpoint",
            ),
            BlockKind::Index => {
                // The smallest header (version 1) leaves the most room: an upper bound for every version.
                let room = at.saturating_sub(HEADER_FIXED_LEN as u64) / MIN_RECORDS_BLOCK_LEN;
                entries(INDEX_ENTRY_LEN, room.min(MAX_INDEX_ENTRIES as u64), "index")
            }
        }
    }

    /// Whether the stored CRC matches this header and payload.
    pub fn crc_ok(&self, seed: u64, raw_header: &[u8; BLOCK_HEADER_LEN], payload: &[u8]) -> bool {
        block_crc(seed, raw_header, payload) == self.crc
    }

    /// Bytes the block takes in the file.
    pub fn total_len(&self) -> u64 {
        BLOCK_HEADER_LEN as u64 + u64::from(self.stored_len)
    }
}

fn block_crc(seed: u64, header: &[u8; BLOCK_HEADER_LEN], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&seed.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &header[..36]);
    crc32c::crc32c_append(crc, payload)
}

/// The trailer of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub index_offset: u64,
    pub checkpoint_offset: u64,
    pub record_count: u64,
}

impl Trailer {
    pub fn encode(&self, seed: u64) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.checkpoint_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.record_count.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seed.to_le_bytes()), &b[..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        b[32..40].copy_from_slice(&TRAILER_MAGIC);
        b
    }

    pub fn decode(seed: u64, b: &[u8; TRAILER_LEN]) -> Result<Trailer, &'static str> {
        if b[32..40] != TRAILER_MAGIC {
            return Err("no segment trailer (truncated or unsealed segment?)");
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seed.to_le_bytes()), &b[..24]);
        if crc != u32_at(b, 24) {
            return Err("segment trailer CRC mismatch");
        }
        Ok(Trailer {
            index_offset: u64_at(b, 0),
            checkpoint_offset: u64_at(b, 8),
            record_count: u64_at(b, 16),
        })
    }
}

/// One index entry: where a records block is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockEntry {
    pub offset: u64,
    pub min_ts: u64,
    pub max_ts: u64,
    pub count: u32,
}

pub(crate) fn encode_index(entries: &[BlockEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.min_ts.to_le_bytes());
        out.extend_from_slice(&e.max_ts.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
    }
    out
}

pub(crate) fn decode_index(payload: &[u8]) -> Vec<BlockEntry> {
    payload
        .chunks_exact(INDEX_ENTRY_LEN)
        .map(|c| BlockEntry {
            offset: u64_at(c, 0),
            min_ts: u64_at(c, 8),
            max_ts: u64_at(c, 16),
            count: u32_at(c, 24),
        })
        .collect()
}

pub(crate) fn encode_checkpoint(marks: &[Watermark]) -> Vec<u8> {
    let mut out = Vec::with_capacity(marks.len() * CHECKPOINT_ENTRY_LEN);
    for m in marks {
        out.extend_from_slice(&m.core.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&m.seed.to_le_bytes());
        out.extend_from_slice(&m.next_seq.to_le_bytes());
    }
    out
}

pub(crate) fn decode_checkpoint(payload: &[u8]) -> Vec<Watermark> {
    payload
        .chunks_exact(CHECKPOINT_ENTRY_LEN)
        .map(|c| Watermark {
            core: u32_at(c, 0),
            seed: u64_at(c, 8),
            next_seq: u64_at(c, 16),
        })
        .collect()
}

/// `YYYYMMDDTHHMMSS.nnnnnnnnnZ-<tag>.gls` (`tag`: the instance's id prefix, so segments of
/// several boxes can share a folder; version 1 segments have no tag): the time part is fixed
/// width, so names sort by time (years 1970..=9999).
pub fn segment_file_name(start_ns: u64, identity: Option<&Identity>) -> String {
    let secs = start_ns / 1_000_000_000;
    let nanos = start_ns % 1_000_000_000;
    let (y, m, d) = crate::clock::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let tag = identity
        .map(|i| format!("-{}", i.file_tag()))
        .unwrap_or_default();
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{nanos:09}Z{tag}{SEGMENT_SUFFIX}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Segment files of a data dir (`DATA_DIR/segments/`), sealed ones in time order; the
/// in-progress file, if any, last. A missing `segments/` directory means no segments.
pub fn list_segments(data_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = data_dir.join("segments");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sealed = Vec::new();
    let mut open = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(SEGMENT_SUFFIX) {
            sealed.push(path);
        } else if name.ends_with(OPEN_SUFFIX) {
            open.push(path);
        }
    }
    sealed.sort();
    open.sort();
    sealed.extend(open);
    Ok(sealed)
}
