//! Startup: finish or continue the segment a crashed compactor left, find where it stopped.

use super::cycle::{CompactOptions, Compactor};
use super::segment::{
    list_segments, SegmentError, SegmentReader, SegmentWriter, Watermark, OPEN_SUFFIX,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Compactor {
    /// Creates `segments/` if needed, recovers an in-progress segment and loads the last
    /// checkpoint. A damaged in-progress segment is an error: nothing is cut or deleted.
    pub fn open(opts: CompactOptions) -> Result<Compactor, SegmentError> {
        let seg_dir = opts.data_dir.join("segments");
        if !seg_dir.is_dir() {
            std::fs::create_dir_all(&seg_dir).map_err(|e| SegmentError::io(&seg_dir, e))?;
            crate::sys::sync_dir(&opts.data_dir)
                .map_err(|e| SegmentError::io(&opts.data_dir, e))?;
        }
        let lock = lock_segments(&seg_dir)?;
        let identity =
            crate::instance::open_or_create(&opts.data_dir, opts.instance_name.as_deref())
                .map_err(|e| SegmentError::Io {
                    path: e.path,
                    source: std::io::Error::other(e.what),
                })?;
        let all = list_segments(&opts.data_dir).map_err(|e| SegmentError::io(&seg_dir, e))?;
        let open: Vec<&PathBuf> = all.iter().filter(|p| is_open(p)).collect();
        let mut writer = None;
        let mut marks = Vec::new();
        for (i, path) in open.iter().enumerate() {
            let rec = SegmentWriter::recover(path)?;
            if rec.cut_bytes > 0 {
                crate::warn!(
                    "{}: cut {} bytes written after the last checkpoint (their records are still in the rings)",
                    path.display(),
                    rec.cut_bytes
                );
            }
            match rec.writer {
                None if rec.removed => crate::warn!(
                    "{}: held only a torn header (no record), removed",
                    path.display()
                ),
                None => crate::info!("{}: was complete, sealed it", rec.path.display()),
                Some(w) if w.is_empty() => {
                    // Only the header is left: no record in it was ever committed.
                    drop(w);
                    std::fs::remove_file(path).map_err(|e| SegmentError::io(path, e))?;
                    crate::sys::sync_dir(&seg_dir).map_err(|e| SegmentError::io(&seg_dir, e))?;
                }
                Some(mut w) if i + 1 == open.len() => {
                    marks = rec.marks;
                    w.set_zstd_level(opts.zstd_level)?;
                    writer = Some(w);
                }
                Some(w) => {
                    crate::info!(
                        "{}: an older in-progress segment, sealing it",
                        path.display()
                    );
                    w.seal()?;
                }
            }
        }
        let sealed: Vec<PathBuf> = list_segments(&opts.data_dir)
            .map_err(|e| SegmentError::io(&seg_dir, e))?
            .into_iter()
            .filter(|p| !is_open(p))
            .collect();
        let mut startup_problems = Vec::new();
        if marks.is_empty() {
            marks = newest_checkpoint(&sealed, &mut startup_problems);
        }
        let last_start_ns = newest_start(&sealed, writer.as_ref());
        let accounted = writer.as_ref().map_or(0, SegmentWriter::bytes_written);
        Ok(Compactor {
            opts,
            identity,
            seg_dir,
            rings: Vec::new(),
            marks: marks
                .into_iter()
                .map(|m| (m.core, m))
                .collect::<BTreeMap<_, _>>(),
            writer,
            last_start_ns,
            accounted,
            startup_problems,
            _lock: lock,
        })
    }
}

/// Locks `segments/` so two compactors never write segments or move cursors side by side.
fn lock_segments(seg_dir: &Path) -> Result<std::fs::File, SegmentError> {
    let path = seg_dir.join(".compact.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SegmentError::io(&path, e))?;
    match crate::sys::lock_exclusive_within(&file, std::time::Duration::from_secs(1)) {
        Ok(true) => Ok(file),
        Ok(false) => Err(SegmentError::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another glint compact is running on this data dir",
            ),
        )),
        Err(e) => Err(SegmentError::io(&path, e)),
    }
}

fn is_open(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(OPEN_SUFFIX))
}

/// The checkpoint of the newest readable sealed segment; a damaged one is reported and
/// skipped (the ring cursors then bound what may be compacted twice).
fn newest_checkpoint(sealed: &[PathBuf], problems: &mut Vec<String>) -> Vec<Watermark> {
    for path in sealed.iter().rev() {
        match SegmentReader::open(path).and_then(|mut r| r.checkpoint()) {
            Ok(marks) if !marks.is_empty() => return marks,
            Ok(_) => {}
            Err(e) => problems.push(format!("{e} (its checkpoint is skipped)")),
        }
    }
    Vec::new()
}

fn newest_start(sealed: &[PathBuf], writer: Option<&SegmentWriter>) -> u64 {
    let sealed_start = sealed
        .iter()
        .rev()
        .find_map(|p| SegmentReader::open(p).ok().map(|r| r.start_ns()))
        .unwrap_or(0);
    sealed_start.max(writer.map_or(0, SegmentWriter::start_ns))
}
