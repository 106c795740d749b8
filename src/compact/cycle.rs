//! One compaction cycle: merge what the rings hold into the open segment, commit, move cursors.

use super::merge::{RingMerge, RingSource, Stopped};
use super::segment::{Codec, SegmentError, SegmentWriter, Watermark};
use crate::instance::Identity;
use crate::ring::RingReader;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the compactor does, from the command line.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub data_dir: PathBuf,
    pub span_ns: u64,
    pub max_bytes: u64,
    pub codec: Codec,
    /// zstd level of the blocks this compactor writes (`--zstd-level`).
    pub zstd_level: i32,
    pub retain_ns: Option<u64>,
    pub retain_bytes: Option<u64>,
    /// `--instance-name`: names (or renames) the data dir's instance.
    pub instance_name: Option<String>,
}

/// What one cycle did, for its log line.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub moved: u64,
    pub ring_bytes: u64,
    pub segment_bytes: u64,
    pub sealed: Vec<PathBuf>,
    /// Per core: why the ring was not drained this cycle (`None`: drained, no lag).
    pub lag: Vec<(u32, Option<Stopped>)>,
    /// Rings that could not be read or that stopped at a corrupt record.
    pub problems: Vec<String>,
}

impl CycleReport {
    /// Folds a following cycle's report into this one: totals add up, the lag is the newest.
    pub fn absorb(&mut self, next: CycleReport) {
        self.moved += next.moved;
        self.ring_bytes += next.ring_bytes;
        self.segment_bytes += next.segment_bytes;
        self.sealed.extend(next.sealed);
        self.lag = next.lag;
        // A stalled ring is reported by every cycle; one line per problem is enough.
        for p in next.problems {
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }
}

/// The compactor's state between cycles.
pub struct Compactor {
    pub(crate) opts: CompactOptions,
    /// The data dir's instance: written into every segment; rings of another instance are refused.
    pub(crate) identity: Identity,
    pub(crate) seg_dir: PathBuf,
    pub(crate) rings: Vec<RingSource>,
    pub(crate) marks: BTreeMap<u32, Watermark>,
    pub(crate) writer: Option<SegmentWriter>,
    pub(crate) last_start_ns: u64,
    /// Bytes of the open segment already counted in a cycle report.
    pub(crate) accounted: u64,
    /// Damaged files found at startup, reported with the first cycle.
    pub(crate) startup_problems: Vec<String>,
    /// The `segments/.compact.lock` flock, held while this compactor lives.
    pub(crate) _lock: std::fs::File,
}

impl Compactor {
    /// Merges every ring from where compaction stopped into the open segment, commits it,
    /// then moves the ring cursors; seals the segment when its span or size is reached.
    pub fn cycle(&mut self) -> Result<CycleReport, SegmentError> {
        let mut report = CycleReport {
            problems: std::mem::take(&mut self.startup_problems),
            ..CycleReport::default()
        };
        self.refresh_rings(&mut report);
        let mut merge = RingMerge::start(&mut self.rings);
        while let Some((i, rec)) = merge.peek() {
            if self.must_roll(rec.ts_ns(), rec.len()) {
                self.commit_and_seal(&mut report)?;
            }
            let writer = match self.writer.as_mut() {
                Some(w) => w,
                None => self.writer.insert(Self::create(
                    &self.seg_dir,
                    &mut self.last_start_ns,
                    rec.ts_ns(),
                    (self.opts.codec, self.opts.zstd_level),
                    self.identity,
                )?),
            };
            writer.push(&rec)?;
            report.moved += 1;
            report.ring_bytes += u64::from(self.rings[i].reader.header().slot_size);
            merge.advance(&mut self.rings);
        }
        self.commit()?;
        let written = self.writer.as_ref().map_or(0, SegmentWriter::bytes_written);
        report.segment_bytes += written.saturating_sub(self.accounted);
        self.accounted = written;
        let span_over = self.writer.as_ref().is_some_and(|w| {
            crate::clock::now_ns() >= w.start_ns().saturating_add(self.opts.span_ns)
        });
        if span_over {
            self.commit_and_seal(&mut report)?;
        }
        for ring in &self.rings {
            report.lag.push((ring.core(), ring.stopped.clone()));
            if let Some(Stopped::Corrupt(why)) = &ring.stopped {
                report.problems.push(why.clone());
            }
        }
        Ok(report)
    }

    /// Whether some ring already holds [`super::schedule::wake_at`] records past where
    /// compaction stopped (one slot read per ring): a caught-up compactor's wait ends then.
    pub fn ring_filling(&mut self) -> bool {
        self.rings.iter_mut().any(|r| {
            let last = r.next_seq + super::schedule::wake_at(r.reader.header().capacity) - 1;
            !matches!(r.stopped, Some(Stopped::Corrupt(_)))
                && r.reader.state(last) == crate::ring::SlotState::Valid
        })
    }

    fn must_roll(&self, ts_ns: u64, rec_len: usize) -> bool {
        let Some(w) = self.writer.as_ref() else {
            return false;
        };
        let span_end = w.start_ns().saturating_add(self.opts.span_ns);
        let too_big =
            w.projected_len(rec_len, self.rings.len() + self.marks.len()) > self.opts.max_bytes;
        !w.is_empty() && (ts_ns >= span_end || too_big || w.index_full())
    }

    fn create(
        dir: &Path,
        last_start_ns: &mut u64,
        ts_ns: u64,
        (codec, zstd_level): (Codec, i32),
        identity: Identity,
    ) -> Result<SegmentWriter, SegmentError> {
        // Names must sort in creation order even after a clock step backwards.
        let start = ts_ns.max(last_start_ns.saturating_add(1));
        let mut w = SegmentWriter::create(dir, start, codec, Some(identity))?;
        w.set_zstd_level(zstd_level)?;
        *last_start_ns = start;
        Ok(w)
    }

    /// The checkpoint for everything pushed so far: known rings plus rings seen before.
    fn current_marks(&self) -> BTreeMap<u32, Watermark> {
        let mut marks = self.marks.clone();
        for ring in &self.rings {
            let mark = Watermark {
                core: ring.core(),
                seed: ring.seed(),
                next_seq: ring.next_seq,
            };
            marks.insert(mark.core, mark);
        }
        marks
    }

    /// Makes every pushed record durable, then moves each ring's cursor past them.
    pub fn commit(&mut self) -> Result<(), SegmentError> {
        let marks = self.current_marks();
        let unchanged = self.rings.iter().all(|r| r.next_seq == r.committed_seq);
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        if unchanged && marks == self.marks {
            return Ok(());
        }
        let list: Vec<Watermark> = marks.values().copied().collect();
        w.commit(&list)?;
        self.marks = marks;
        self.advance_cursors();
        Ok(())
    }

    fn advance_cursors(&mut self) {
        for ring in &mut self.rings {
            if let Err(e) = ring.reader.advance_cursor(ring.next_seq) {
                // The records are safe in the segment; a restart finds them by the checkpoint.
                crate::error!(
                    "{}: cannot store the consumer cursor {}: {e}",
                    ring.reader.path().display(),
                    ring.next_seq
                );
            }
            ring.committed_seq = ring.next_seq;
        }
    }

    /// Commits and seals the open segment, if any.
    pub fn commit_and_seal(&mut self, report: &mut CycleReport) -> Result<(), SegmentError> {
        self.commit()?;
        if let Some(w) = self.writer.take() {
            if w.is_empty() {
                // Created but never given a record: nothing to seal, keep it for the next one.
                self.writer = Some(w);
                return Ok(());
            }
            let path = w.seal()?;
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            report.segment_bytes += len.saturating_sub(self.accounted);
            self.accounted = 0;
            report.sealed.push(path);
        }
        Ok(())
    }

    /// Opens consumer readers for ring files that appeared since the last cycle.
    fn refresh_rings(&mut self, report: &mut CycleReport) {
        let paths = match ring_paths(&self.opts.data_dir) {
            Ok(p) => p,
            Err(e) => {
                let dir = self.opts.data_dir.display();
                report
                    .problems
                    .push(format!("{dir}: cannot list ring files: {e}"));
                return;
            }
        };
        // A ring file replaced (new inode) or removed since it was opened is dropped; its
        // last checkpoint entry stays in `marks`.
        self.rings
            .retain(|r| file_id(r.reader.path()) == Some(r.file_id));
        for path in paths {
            if self.rings.iter().any(|r| r.reader.path() == path) {
                continue;
            }
            let Some(id) = file_id(&path) else { continue };
            match RingReader::open_consumer(&path) {
                Ok(reader) if !self.owns(&reader) => {
                    let theirs = reader.header().identity.expect("owns() accepts None");
                    report.problems.push(format!(
                        "{}: ring of instance {} ({:?}), but this data dir is instance {} ({:?}); not compacted: give it its own data dir",
                        path.display(),
                        theirs.id_hex(),
                        theirs.name(),
                        self.identity.id_hex(),
                        self.identity.name()
                    ));
                }
                Ok(reader) => {
                    let source = self.resume(reader, id);
                    self.rings.push(source);
                }
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        self.rings.sort_by_key(RingSource::core);
    }

    /// Whether a ring was written by this data dir's instance (a ring without identity, from
    /// before identities, is taken as this instance's).
    fn owns(&self, reader: &RingReader) -> bool {
        reader
            .header()
            .identity
            .is_none_or(|i| i.id() == self.identity.id())
    }

    /// Where to continue a ring: its cursor, or further if a checkpoint says so (a crash
    /// between a segment commit and the cursor store).
    fn resume(&self, reader: RingReader, file_id: (u64, u64)) -> RingSource {
        let cursor = reader.cursor();
        let h = *reader.header();
        let mark = self
            .marks
            .get(&h.core)
            .filter(|m| m.seed == h.seed && m.next_seq > cursor);
        let next_seq = mark.map_or(cursor, |m| m.next_seq);
        if next_seq > cursor {
            crate::info!(
                "{}: cursor {cursor} is behind the last checkpoint; records up to seq {} are already in segments, moving it",
                reader.path().display(),
                next_seq
            );
            if let Err(e) = reader.advance_cursor(next_seq) {
                crate::error!(
                    "{}: cannot store the consumer cursor: {e}",
                    reader.path().display()
                );
            }
        }
        RingSource {
            reader,
            next_seq,
            committed_seq: next_seq,
            stopped: None,
            file_id,
        }
    }
}

/// Device and inode of a file, to notice a ring file replaced under the same name.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// `ring-*.glr` files directly in the data dir, sorted by name.
pub fn ring_paths(data_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("ring-") && name.ends_with(".glr") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
