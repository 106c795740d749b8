//! Writing the in-progress segment: blocks, checkpoints (commit points), sealing, recovery.

use super::format::{
    encode_checkpoint, encode_index, BlockEntry, BlockHeader, BlockKind, Codec, FileHeader,
    SegmentError, Trailer, Watermark, BLOCK_HEADER_LEN, BLOCK_TARGET, CHECKPOINT_ENTRY_LEN,
    HEADER_LEN, INDEX_ENTRY_LEN, MAX_INDEX_ENTRIES, OPEN_SUFFIX, SEGMENT_SUFFIX, SEGMENT_VERSION,
};
use crate::instance::Identity;
use crate::record::RecordView;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// zstd level of `glint compact --zstd-level` when not given.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;
/// The levels `--zstd-level` takes: zstd's fastest useful negative levels up to its highest.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -7..=19;

/// Appends blocks to one `….gls.open` file; [`SegmentWriter::seal`] makes it a `….gls`.
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    header: FileHeader,
    len: u64,
    pub(super) index: Vec<BlockEntry>,
    block: Vec<u8>,
    block_count: u32,
    block_min: u64,
    block_max: u64,
    pub(super) record_count: u64,
    uncommitted: u64,
    pub(super) last_checkpoint: u64,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    packed: Vec<u8>,
}

/// What [`SegmentWriter::recover`] found in an in-progress file.
pub struct Recovered {
    /// The writer to continue with; `None` if the file was complete and has been sealed now,
    /// or was removed.
    pub writer: Option<SegmentWriter>,
    /// The last checkpoint in the file (empty if it had none).
    pub marks: Vec<Watermark>,
    /// Bytes cut from the end: blocks after the last checkpoint, or a torn block.
    pub cut_bytes: u64,
    /// Path of the file (the sealed name when it was sealed now).
    pub path: PathBuf,
    /// The file held only a torn header (killed while being created) and was removed.
    pub removed: bool,
}

impl SegmentWriter {
    /// Creates `dir/<start>-<tag>.gls.open` for the records of instance `identity`, writes
    /// and syncs its header, and syncs `dir`.
    pub fn create(
        dir: &Path,
        start_ns: u64,
        codec: Codec,
        identity: Option<Identity>,
    ) -> Result<SegmentWriter, SegmentError> {
        let path = dir.join(format!(
            "{}{}",
            super::segment_file_name(start_ns, identity.as_ref()).trim_end_matches(SEGMENT_SUFFIX),
            OPEN_SUFFIX
        ));
        let header = FileHeader {
            version: SEGMENT_VERSION,
            codec,
            seed: random_seed(),
            start_ns,
            created_ns: crate::clock::now_ns(),
            identity,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)
            .map_err(|e| SegmentError::io(&path, e))?;
        file.write_all(&header.encode())
            .and_then(|()| file.sync_all())
            .map_err(|e| SegmentError::io(&path, e))?;
        crate::sys::sync_dir(dir).map_err(|e| SegmentError::io(dir, e))?;
        Ok(Self::with_file(file, path, header, HEADER_LEN as u64))
    }

    pub(super) fn with_file(
        file: File,
        path: PathBuf,
        header: FileHeader,
        len: u64,
    ) -> SegmentWriter {
        let compressor = (header.codec == Codec::Zstd).then(|| {
            zstd::bulk::Compressor::new(DEFAULT_ZSTD_LEVEL).expect("zstd context allocation")
        });
        SegmentWriter {
            file,
            path,
            header,
            len,
            index: Vec::new(),
            block: Vec::with_capacity(BLOCK_TARGET + crate::record::MAX_SLOT_SIZE),
            block_count: 0,
            block_min: u64::MAX,
            block_max: 0,
            record_count: 0,
            uncommitted: 0,
            last_checkpoint: 0,
            compressor,
            packed: Vec::new(),
        }
    }

    /// Compresses the blocks written from now on at zstd `level` (one of [`ZSTD_LEVELS`]);
    /// readers do not need to know it. No effect on a segment without compression.
    pub fn set_zstd_level(&mut self, level: i32) -> Result<(), SegmentError> {
        if let Some(c) = self.compressor.as_mut() {
            c.set_compression_level(level)
                .map_err(|e| SegmentError::io(&self.path, e))?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The time in the file name.
    pub fn start_ns(&self) -> u64 {
        self.header.start_ns
    }
    /// The instance named in the header (`None` in a version 1 file being continued).
    pub fn identity(&self) -> Option<Identity> {
        self.header.identity
    }
    /// Bytes in the file plus the block being gathered.
    pub fn len(&self) -> u64 {
        self.len + self.block.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }
    /// File size after pushing `add` more record bytes, committing `marks` checkpoint entries
    /// and sealing: what a size limit compares against.
    pub fn projected_len(&self, add: usize, marks: usize) -> u64 {
        let blocks = self.index.len() + 1;
        let tail = 3 * BLOCK_HEADER_LEN + marks * CHECKPOINT_ENTRY_LEN;
        let index = blocks * INDEX_ENTRY_LEN + super::TRAILER_LEN;
        self.len() + (add + tail + index) as u64
    }
    /// Whether the index has room for no more records blocks than the one being gathered:
    /// the segment must be sealed before another record is pushed (see
    /// [`super::MAX_INDEX_ENTRIES`]).
    pub fn index_full(&self) -> bool {
        self.index.len() + 1 >= MAX_INDEX_ENTRIES
    }
    /// Records pushed, committed or not.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }
    /// Bytes written to the file so far (header and blocks; the gathered block excluded).
    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    /// Adds one record; writes a block when enough bytes are gathered.
    pub fn push(&mut self, rec: &RecordView<'_>) -> Result<(), SegmentError> {
        self.block.extend_from_slice(rec.bytes());
        self.block_count += 1;
        self.block_min = self.block_min.min(rec.ts_ns());
        self.block_max = self.block_max.max(rec.ts_ns());
        self.record_count += 1;
        self.uncommitted += 1;
        if self.block.len() >= BLOCK_TARGET {
            self.write_records_block()?;
        }
        Ok(())
    }

    fn write_records_block(&mut self) -> Result<(), SegmentError> {
        if self.block_count == 0 {
            return Ok(());
        }
        let entry = BlockEntry {
            offset: self.len,
            min_ts: self.block_min,
            max_ts: self.block_max,
            count: self.block_count,
        };
        let block = std::mem::take(&mut self.block);
        let result = self.write_block(BlockKind::Records, &block, entry);
        self.block = block;
        result?;
        self.index.push(entry);
        self.block.clear();
        self.block_count = 0;
        self.block_min = u64::MAX;
        self.block_max = 0;
        Ok(())
    }

    fn write_block(
        &mut self,
        kind: BlockKind,
        raw: &[u8],
        e: BlockEntry,
    ) -> Result<(), SegmentError> {
        let mut zstd = false;
        if let (Some(c), BlockKind::Records) = (self.compressor.as_mut(), kind) {
            self.packed.clear();
            self.packed
                .reserve(zstd::zstd_safe::compress_bound(raw.len()));
            let n = c
                .compress_to_buffer(raw, &mut self.packed)
                .map_err(|e| SegmentError::io(&self.path, e))?;
            zstd = n < raw.len();
        }
        let payload: &[u8] = if zstd { &self.packed } else { raw };
        let refuse = |what: String| {
            let what =
                format!("refusing to write a {kind:?} block the reader would refuse: {what}");
            SegmentError::format(&self.path, self.len, what)
        };
        let len32 = |n: usize| u32::try_from(n).map_err(|_| refuse(format!("{n} bytes")));
        let header = BlockHeader {
            kind,
            zstd,
            stored_len: len32(payload.len())?,
            raw_len: len32(raw.len())?,
            count: e.count,
            min_ts: e.min_ts,
            max_ts: e.max_ts,
            crc: 0,
        };
        header
            .check_lengths(self.len, self.len.saturating_add(header.total_len()))
            .map_err(refuse)?;
        let head = header.encode(self.header.seed, payload);
        self.file
            .write_all_at(&head, self.len)
            .and_then(|()| {
                self.file
                    .write_all_at(payload, self.len + head.len() as u64)
            })
            .map_err(|e| SegmentError::io(&self.path, e))?;
        self.len += header.total_len();
        Ok(())
    }

    /// Writes the gathered block and a checkpoint, then fdatasyncs: every record pushed so far
    /// is durable and `marks` says which ring records they are. Only then may cursors move.
    pub fn commit(&mut self, marks: &[Watermark]) -> Result<(), SegmentError> {
        self.write_records_block()?;
        let payload = encode_checkpoint(marks);
        let offset = self.len;
        let entry = BlockEntry {
            offset,
            min_ts: 0,
            max_ts: 0,
            count: marks.len() as u32,
        };
        self.write_block(BlockKind::Checkpoint, &payload, entry)?;
        self.file
            .sync_data()
            .map_err(|e| SegmentError::io(&self.path, e))?;
        self.last_checkpoint = offset;
        self.uncommitted = 0;
        Ok(())
    }

    /// Writes the index and trailer, syncs, renames to `….gls` and syncs the directory.
    /// Call [`SegmentWriter::commit`] first: records pushed after the last commit are refused.
    pub fn seal(mut self) -> Result<PathBuf, SegmentError> {
        if self.uncommitted > 0 || self.last_checkpoint == 0 {
            let what = format!(
                "cannot seal: {} records after the last checkpoint",
                self.uncommitted
            );
            return Err(SegmentError::format(&self.path, self.len, what));
        }
        let (min_ts, max_ts) = self.index.iter().fold((u64::MAX, 0), |(lo, hi), e| {
            (lo.min(e.min_ts), hi.max(e.max_ts))
        });
        let index_offset = self.len;
        let entry = BlockEntry {
            offset: index_offset,
            min_ts,
            max_ts,
            count: self.index.len() as u32,
        };
        let payload = encode_index(&self.index);
        self.write_block(BlockKind::Index, &payload, entry)?;
        let trailer = Trailer {
            index_offset,
            checkpoint_offset: self.last_checkpoint,
            record_count: self.record_count,
        };
        self.file
            .write_all_at(&trailer.encode(self.header.seed), self.len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| SegmentError::io(&self.path, e))?;
        finish_rename(&self.path)
    }
}

pub(super) fn finish_rename(open_path: &Path) -> Result<PathBuf, SegmentError> {
    let name = open_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(OPEN_SUFFIX))
        .ok_or_else(|| SegmentError::format(open_path, 0, "not an in-progress segment name"))?;
    let sealed = open_path.with_file_name(format!("{name}{SEGMENT_SUFFIX}"));
    std::fs::rename(open_path, &sealed).map_err(|e| SegmentError::io(&sealed, e))?;
    let dir = open_path.parent().unwrap_or(Path::new("."));
    crate::sys::sync_dir(dir).map_err(|e| SegmentError::io(dir, e))?;
    Ok(sealed)
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if crate::sys::getrandom(&mut bytes).is_err() {
        // The seed only has to differ from files that were here before.
        return crate::clock::now_ns().rotate_left(23) ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}
