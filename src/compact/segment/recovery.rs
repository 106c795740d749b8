//! Crash recovery of an in-progress segment: validate every block, keep the committed prefix.

use super::format::{
    decode_checkpoint, BlockEntry, BlockKind, FileHeader, SegmentError, Trailer, Watermark,
    HEADER_LEN,
};
use super::reader::{find_block, read_block_at, BlockRead};
use super::writer::{finish_rename, Recovered, SegmentWriter};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

impl SegmentWriter {
    /// Reopens an in-progress file after a crash: validates every block, keeps everything up
    /// to the last checkpoint, cuts the rest. A file that was fully sealed is renamed.
    pub fn recover(path: &Path) -> Result<Recovered, SegmentError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| SegmentError::io(path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| SegmentError::io(path, e))?
            .len();
        let mut head = [0u8; HEADER_LEN];
        let n = read_prefix(&file, &mut head).map_err(|e| SegmentError::io(path, e))?;
        let header = match FileHeader::decode(path, &head[..n]) {
            Ok(h) => h,
            // Killed between creating the file and syncing its header: nothing was ever in it.
            Err(_) if file_len <= HEADER_LEN as u64 => return remove_torn(path, file_len),
            Err(e) => return Err(e),
        };
        let scan = scan_blocks(&file, path, &header, file_len)?;
        if scan.sealed {
            let sealed = finish_rename(path)?;
            return Ok(Recovered {
                writer: None,
                marks: scan.marks,
                cut_bytes: 0,
                path: sealed,
                removed: false,
            });
        }
        file.set_len(scan.keep)
            .and_then(|()| file.sync_all())
            .map_err(|e| SegmentError::io(path, e))?;
        let mut w = Self::with_file(file, path.to_path_buf(), header, scan.keep);
        w.index = scan.index;
        w.record_count = w.index.iter().map(|e| u64::from(e.count)).sum();
        w.last_checkpoint = scan.last_checkpoint;
        Ok(Recovered {
            writer: Some(w),
            marks: scan.marks,
            cut_bytes: file_len - scan.keep,
            path: path.to_path_buf(),
            removed: false,
        })
    }
}

fn remove_torn(path: &Path, file_len: u64) -> Result<Recovered, SegmentError> {
    std::fs::remove_file(path).map_err(|e| SegmentError::io(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::sys::sync_dir(dir).map_err(|e| SegmentError::io(dir, e))?;
    Ok(Recovered {
        writer: None,
        marks: Vec::new(),
        cut_bytes: file_len,
        path: path.to_path_buf(),
        removed: true,
    })
}

struct Scan {
    keep: u64,
    index: Vec<BlockEntry>,
    marks: Vec<Watermark>,
    last_checkpoint: u64,
    sealed: bool,
}

/// Walks the blocks; stops at the first invalid one, or at an index followed by a valid trailer.
fn scan_blocks(
    file: &File,
    path: &Path,
    header: &FileHeader,
    file_len: u64,
) -> Result<Scan, SegmentError> {
    let seed = header.seed;
    let mut scan = Scan {
        keep: header.len(),
        index: Vec::new(),
        marks: Vec::new(),
        last_checkpoint: 0,
        sealed: false,
    };
    let mut pending = Vec::new();
    let mut at = header.len();
    let mut payload = Vec::new();
    let stop = loop {
        let (h, _) = match read_block_at(file, seed, at, file_len, &mut payload) {
            BlockRead::Ok(h, n) => (h, n),
            BlockRead::End => break None,
            BlockRead::Bad(why) => break Some(why),
            BlockRead::Io(e) => return Err(SegmentError::io(path, e)),
        };
        let next = at + h.total_len();
        match h.kind {
            BlockKind::Records => pending.push(BlockEntry {
                offset: at,
                min_ts: h.min_ts,
                max_ts: h.max_ts,
                count: h.count,
            }),
            BlockKind::Checkpoint => {
                scan.index.append(&mut pending);
                scan.marks = decode_checkpoint(&payload);
                scan.last_checkpoint = at;
                scan.keep = next;
            }
            BlockKind::Index => {
                scan.sealed = pending.is_empty() && trailer_ok(file, seed, next, file_len, at);
                break None;
            }
        }
        at = next;
    };
    if let Some(why) = stop {
        refuse_lost_checkpoint(file, path, seed, at, file_len, &why)?;
    }
    Ok(scan)
}

fn trailer_ok(file: &File, seed: u64, at: u64, file_len: u64, index_offset: u64) -> bool {
    let mut b = [0u8; super::TRAILER_LEN];
    if at + b.len() as u64 != file_len || file.read_exact_at(&mut b, at).is_err() {
        return false;
    }
    matches!(Trailer::decode(seed, &b), Ok(t) if t.index_offset == index_offset)
}

/// A bad block followed by a valid checkpoint is damage to committed data, not a torn tail:
/// cutting there would lose records whose ring slots may already be reused.
fn refuse_lost_checkpoint(
    file: &File,
    path: &Path,
    seed: u64,
    bad_at: u64,
    file_len: u64,
    why: &str,
) -> Result<(), SegmentError> {
    let found = find_block(file, seed, bad_at + 1, file_len, |h| {
        h.kind == BlockKind::Checkpoint
    })
    .map_err(|e| SegmentError::io(path, e))?;
    if let Some((off, _)) = found {
        let what = format!("{why}, but a valid checkpoint follows at offset {off}: committed records are damaged; move this file away and run again (its records from this block on are lost)");
        return Err(SegmentError::format(path, bad_at, what));
    }
    Ok(())
}

fn read_prefix(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
