//! Reading sealed segments (trailer and index) and in-progress ones (block scan).

use super::format::{
    decode_checkpoint, decode_index, BlockEntry, BlockHeader, BlockKind, FileHeader, SegmentError,
    Trailer, Watermark, BLOCK_HEADER_LEN, BLOCK_MAGIC, HEADER_LEN, TRAILER_LEN,
};
use crate::record::RecordView;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What reading one block found.
pub(crate) enum BlockRead {
    /// A valid block; its stored payload is in the caller's buffer.
    Ok(BlockHeader, u64),
    /// Exactly at the end of the file.
    End,
    /// Not a valid block: torn, damaged or not a block at all.
    Bad(String),
    Io(std::io::Error),
}

/// Reads and CRC-checks the block at `at` into `payload` (still compressed, if it is).
pub(crate) fn read_block_at(
    file: &File,
    seed: u64,
    at: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> BlockRead {
    if at == file_len {
        return BlockRead::End;
    }
    if at.saturating_add(BLOCK_HEADER_LEN as u64) > file_len {
        return BlockRead::Bad(format!(
            "torn block header ({} bytes)",
            file_len.saturating_sub(at)
        ));
    }
    let mut raw_head = [0u8; BLOCK_HEADER_LEN];
    if let Err(e) = file.read_exact_at(&mut raw_head, at) {
        return BlockRead::Io(e);
    }
    let h = match BlockHeader::decode(&raw_head)
        .and_then(|h| h.check_lengths(at, file_len).map(|()| h))
    {
        Ok(h) => h,
        Err(why) => return BlockRead::Bad(why),
    };
    payload.clear();
    payload.resize(h.stored_len as usize, 0);
    if let Err(e) = file.read_exact_at(payload, at + BLOCK_HEADER_LEN as u64) {
        return BlockRead::Io(e);
    }
    if !h.crc_ok(seed, &raw_head, payload) {
        return BlockRead::Bad("block CRC mismatch".into());
    }
    BlockRead::Ok(h, h.total_len())
}

/// The first valid block (magic, lengths and CRC) at or after `from` for which `want` holds,
/// found by looking for the block magic: how readers step over damage.
pub(crate) fn find_block(
    file: &File,
    seed: u64,
    from: u64,
    file_len: u64,
    want: impl Fn(&BlockHeader) -> bool,
) -> std::io::Result<Option<(u64, BlockHeader)>> {
    let mut payload = Vec::new();
    let mut window = vec![0u8; 1 << 16];
    let mut at = from;
    while at < file_len {
        let n = file.read_at(&mut window, at)?;
        if n == 0 {
            break;
        }
        let starts = window[..n]
            .windows(BLOCK_MAGIC.len())
            .enumerate()
            .filter(|(_, w)| *w == BLOCK_MAGIC)
            .map(|(i, _)| at + i as u64);
        for off in starts {
            if let BlockRead::Ok(h, _) = read_block_at(file, seed, off, file_len, &mut payload) {
                if want(&h) {
                    return Ok(Some((off, h)));
                }
            }
        }
        // Windows overlap by 3 bytes, so a magic across the boundary is found once.
        at += n.saturating_sub(BLOCK_MAGIC.len() - 1).max(1) as u64;
    }
    Ok(None)
}

/// Reads the records of one segment in stored order.
pub struct SegmentReader {
    file: File,
    path: PathBuf,
    header: FileHeader,
    file_len: u64,
    index: Vec<BlockEntry>,
    checkpoint_offset: u64,
    next_block: usize,
    stored: Vec<u8>,
    raw: Vec<u8>,
    pos: usize,
    block: Option<(BlockEntry, u32)>,
    bytes_read: u64,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl SegmentReader {
    /// Opens a sealed segment (or the compactor's in-progress file), validating the header.
    ///
    /// An in-progress file is read up to its last checkpoint: records after it are not
    /// committed yet and may still be cut by the compactor's recovery.
    pub fn open(path: &Path) -> Result<SegmentReader, SegmentError> {
        Self::open_with(path, None)
    }

    /// Like [`SegmentReader::open`], for `decode --skip-bad`: a sealed segment whose trailer or
    /// index is damaged is still read, by walking its blocks (every one CRC-checked) and
    /// stepping over damaged ones to the next valid block. Returns the reader and what was
    /// damaged (file and offset each), for the caller to report. A damaged file header is
    /// still an error: without its seed no block can be checked.
    pub fn open_salvaging(path: &Path) -> Result<(SegmentReader, Vec<SegmentError>), SegmentError> {
        let mut damage = Vec::new();
        let r = Self::open_with(path, Some(&mut damage))?;
        Ok((r, damage))
    }

    fn open_with(
        path: &Path,
        salvage: Option<&mut Vec<SegmentError>>,
    ) -> Result<SegmentReader, SegmentError> {
        let file = File::open(path).map_err(|e| SegmentError::io(path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| SegmentError::io(path, e))?
            .len();
        let mut head = [0u8; HEADER_LEN];
        let n = (file_len as usize).min(HEADER_LEN);
        file.read_exact_at(&mut head[..n], 0)
            .map_err(|e| SegmentError::io(path, e))?;
        let header = FileHeader::decode(path, &head[..n])?;
        let mut r = SegmentReader {
            file,
            path: path.to_path_buf(),
            header,
            file_len,
            index: Vec::new(),
            checkpoint_offset: 0,
            next_block: 0,
            stored: Vec::new(),
            raw: Vec::new(),
            pos: 0,
            block: None,
            bytes_read: header.len(),
            decompressor: None,
        };
        let in_progress = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(super::OPEN_SUFFIX));
        let indexed = match r.read_trailer() {
            Ok(t) => r.load_index(t),
            Err(_) if in_progress => return r.scan_headers().map(|()| r),
            Err(what) => {
                let at = file_len.saturating_sub(TRAILER_LEN as u64);
                Err(SegmentError::format(path, at, what))
            }
        };
        match (indexed, salvage) {
            (Ok(()), _) => {}
            (Err(e), None) => return Err(e),
            (Err(e), Some(damage)) => {
                damage.push(e);
                r.index.clear();
                r.checkpoint_offset = 0;
                r.scan_salvaging(damage)?;
            }
        }
        Ok(r)
    }

    fn read_trailer(&mut self) -> Result<Trailer, &'static str> {
        if self.file_len < self.header.len() + TRAILER_LEN as u64 {
            return Err("no segment trailer (truncated or unsealed segment?)");
        }
        let mut b = [0u8; TRAILER_LEN];
        let at = self.file_len - TRAILER_LEN as u64;
        self.file
            .read_exact_at(&mut b, at)
            .map_err(|_| "cannot read the segment trailer")?;
        self.bytes_read += TRAILER_LEN as u64;
        Trailer::decode(self.header.seed, &b)
    }

    fn load_index(&mut self, t: Trailer) -> Result<(), SegmentError> {
        let h = self.block_at(t.index_offset, BlockKind::Index)?;
        self.index = decode_index(&self.stored);
        let sum: u64 = self.index.iter().map(|e| u64::from(e.count)).sum();
        if self.index.len() != h.count as usize || sum != t.record_count {
            let what = format!(
                "index lists {} blocks with {sum} records, header and trailer say {} and {}",
                self.index.len(),
                h.count,
                t.record_count
            );
            return Err(SegmentError::format(&self.path, t.index_offset, what));
        }
        self.checkpoint_offset = t.checkpoint_offset;
        Ok(())
    }

    /// Builds the index of an in-progress file from block headers, up to its last checkpoint.
    fn scan_headers(&mut self) -> Result<(), SegmentError> {
        let mut at = self.header.len();
        let mut pending = Vec::new();
        while at + BLOCK_HEADER_LEN as u64 <= self.file_len {
            let mut b = [0u8; BLOCK_HEADER_LEN];
            self.file
                .read_exact_at(&mut b, at)
                .map_err(|e| SegmentError::io(&self.path, e))?;
            self.bytes_read += BLOCK_HEADER_LEN as u64;
            let Ok(h) = BlockHeader::decode(&b) else {
                break;
            };
            if h.check_lengths(at, self.file_len).is_err() || h.kind == BlockKind::Index {
                break;
            }
            if h.kind == BlockKind::Records {
                pending.push(BlockEntry {
                    offset: at,
                    min_ts: h.min_ts,
                    max_ts: h.max_ts,
                    count: h.count,
                });
            } else {
                self.index.append(&mut pending);
                self.checkpoint_offset = at;
            }
            at += h.total_len();
        }
        Ok(())
    }

    /// Builds the index of a sealed segment whose trailer or index is unusable: every block up
    /// to the index, CRC-checked, stepping over a damaged stretch to the next valid block.
    fn scan_salvaging(&mut self, damage: &mut Vec<SegmentError>) -> Result<(), SegmentError> {
        let (seed, len) = (self.header.seed, self.file_len);
        let mut at = self.header.len();
        let mut payload = Vec::new();
        loop {
            match read_block_at(&self.file, seed, at, len, &mut payload) {
                BlockRead::Ok(h, n) => {
                    self.bytes_read += n;
                    match h.kind {
                        BlockKind::Records => self.index.push(BlockEntry {
                            offset: at,
                            min_ts: h.min_ts,
                            max_ts: h.max_ts,
                            count: h.count,
                        }),
                        BlockKind::Checkpoint => self.checkpoint_offset = at,
                        BlockKind::Index => return Ok(()),
                    }
                    at += n;
                }
                BlockRead::End => return Ok(()),
                BlockRead::Io(e) => return Err(SegmentError::io(&self.path, e)),
                BlockRead::Bad(why) => {
                    let next = find_block(&self.file, seed, at + 1, len, |_| true)
                        .map_err(|e| SegmentError::io(&self.path, e))?;
                    let what = match next {
                        Some((n, _)) => format!(
                            "{why}; {} bytes skipped to the next valid block at offset {n}",
                            n - at
                        ),
                        None => format!(
                            "{why}; no valid block after it ({} bytes skipped)",
                            len - at
                        ),
                    };
                    damage.push(SegmentError::format(&self.path, at, what));
                    match next {
                        Some((n, _)) => at = n,
                        None => return Ok(()),
                    }
                }
            }
        }
    }

    /// Reads, checks and (for records) decompresses the block at `at` into `self.stored`.
    fn block_at(&mut self, at: u64, want: BlockKind) -> Result<BlockHeader, SegmentError> {
        let mut stored = std::mem::take(&mut self.stored);
        let read = read_block_at(&self.file, self.header.seed, at, self.file_len, &mut stored);
        self.stored = stored;
        let h = match read {
            BlockRead::Ok(h, n) => {
                self.bytes_read += n;
                h
            }
            BlockRead::End => {
                return Err(SegmentError::format(
                    &self.path,
                    at,
                    "block expected, end of file",
                ))
            }
            BlockRead::Bad(why) => return Err(SegmentError::format(&self.path, at, why)),
            BlockRead::Io(e) => return Err(SegmentError::io(&self.path, e)),
        };
        if h.kind != want {
            let what = format!("expected a {want:?} block, found {:?}", h.kind);
            return Err(SegmentError::format(&self.path, at, what));
        }
        Ok(h)
    }

    /// The last checkpoint: which ring records this segment and the ones before it hold.
    pub fn checkpoint(&mut self) -> Result<Vec<Watermark>, SegmentError> {
        if self.checkpoint_offset == 0 {
            return Ok(Vec::new());
        }
        self.block_at(self.checkpoint_offset, BlockKind::Checkpoint)?;
        Ok(decode_checkpoint(&self.stored))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The time in the file name (ns since the Unix epoch).
    /// The instance whose records the segment holds (`None` in a version 1 segment).
    pub fn identity(&self) -> Option<crate::instance::Identity> {
        self.header.identity
    }

    pub fn start_ns(&self) -> u64 {
        self.header.start_ns
    }
    /// True min record timestamp (ns); `u64::MAX` for a segment without records.
    pub fn min_ts_ns(&self) -> u64 {
        self.index
            .iter()
            .map(|e| e.min_ts)
            .min()
            .unwrap_or(u64::MAX)
    }
    /// True max record timestamp (ns); 0 for a segment without records.
    pub fn max_ts_ns(&self) -> u64 {
        self.index.iter().map(|e| e.max_ts).max().unwrap_or(0)
    }
    pub fn record_count(&self) -> u64 {
        self.index.iter().map(|e| u64::from(e.count)).sum()
    }
    /// File bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Positions the reader at the first block that may hold a record with ts >= `from_ns`:
    /// every block before it has a max timestamp below `from_ns`.
    pub fn seek(&mut self, from_ns: u64) -> Result<(), SegmentError> {
        self.next_block = self
            .index
            .iter()
            .position(|e| e.max_ts >= from_ns)
            .unwrap_or(self.index.len());
        self.block = None;
        self.raw.clear();
        self.pos = 0;
        Ok(())
    }

    /// Record blocks in the file (an in-progress file: up to its last checkpoint).
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Positions the reader at record block `n` in file order, the blocks before it unread
    /// (the shipper resumes an in-progress segment where it stopped).
    pub fn seek_block(&mut self, n: usize) {
        self.next_block = n.min(self.index.len());
        self.block = None;
        self.raw.clear();
        self.pos = 0;
    }

    /// The next record in stored order (block CRC checked, zstd decompressed), or None at the end.
    ///
    /// After an error the reader stands at the next block: calling again reads on past the
    /// damaged block (what `decode --skip-bad` does), or the caller stops there.
    pub fn next_record(&mut self) -> Result<Option<RecordView<'_>>, SegmentError> {
        while self.pos >= self.raw.len() {
            self.finish_block()?;
            if self.next_block >= self.index.len() {
                return Ok(None);
            }
            let entry = self.index[self.next_block];
            self.next_block += 1;
            if let Err(e) = self.load_block(entry) {
                self.raw.clear();
                self.pos = 0;
                return Err(e);
            }
        }
        let (entry, seen) = self.block.expect("a block is loaded");
        match RecordView::parse(&self.raw[self.pos..]) {
            Ok(view) => {
                self.block = Some((entry, seen + 1));
                self.pos += view.len();
                Ok(Some(view))
            }
            Err(e) => {
                // The framing is lost: the rest of this block cannot be delimited.
                let what = format!("record {seen} of the block: {e}");
                self.pos = self.raw.len();
                self.block = None;
                Err(SegmentError::format(&self.path, entry.offset, what))
            }
        }
    }

    fn load_block(&mut self, entry: BlockEntry) -> Result<(), SegmentError> {
        let h = self.block_at(entry.offset, BlockKind::Records)?;
        if h.zstd {
            let d = match self.decompressor.as_mut() {
                Some(d) => d,
                None => self.decompressor.insert(
                    zstd::bulk::Decompressor::new().map_err(|e| SegmentError::io(&self.path, e))?,
                ),
            };
            self.raw.clear();
            self.raw.reserve(h.raw_len as usize);
            let bad = |e: std::io::Error| format!("zstd block does not decompress: {e}");
            d.decompress_to_buffer(&self.stored, &mut self.raw)
                .map_err(|e| SegmentError::format(&self.path, entry.offset, bad(e)))?;
        } else {
            std::mem::swap(&mut self.raw, &mut self.stored);
        }
        if self.raw.len() != h.raw_len as usize || h.count != entry.count {
            let what = format!(
                "block holds {} bytes and {} records, header and index say {} and {}",
                self.raw.len(),
                h.count,
                h.raw_len,
                entry.count
            );
            return Err(SegmentError::format(&self.path, entry.offset, what));
        }
        self.pos = 0;
        self.block = Some((entry, 0));
        Ok(())
    }

    fn finish_block(&mut self) -> Result<(), SegmentError> {
        if let Some((entry, seen)) = self.block.take() {
            if seen != entry.count {
                let what = format!(
                    "block holds {seen} records, its header says {}",
                    entry.count
                );
                return Err(SegmentError::format(&self.path, entry.offset, what));
            }
        }
        Ok(())
    }
}
