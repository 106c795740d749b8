//! The segment walk both sinks ship from: every committed record in order, each handed to the
//! sink once per run, resumed where the last pass stopped.
//!
//! Segments are read in their time order (sealed ones, then the in-progress one up to its last
//! checkpoint), so a sink never races the server's writer for a ring slot. Within a segment a
//! ring stream's (core, seed) records are in seq order, so one number per stream, the first
//! seq not yet shipped, is the whole cursor ([`super::cursor::ShipCursor`]); the walker skips
//! every record below the sink's [`RecordSink::next_seq`] and remembers how many record blocks
//! of the last segment it has read, so a pass over a growing in-progress segment starts at its
//! new blocks.
//!
//! # A damaged segment stops shipping there, for both sinks
//! A segment that does not open, whose checkpoint does not read, or whose record stream breaks,
//! ends the pass at that point; the error is logged once and later passes try again (a torn
//! read of a segment being sealed heals by itself, a damaged one after the compactor's
//! recovery or the operator's repair). Skipping it instead would hand the sink later records of
//! the same streams, whose higher seqs move the one-number cursor past the unread ones:
//! compactor retention would then delete the damaged segment and its records would be lost
//! without a trace. Stopping keeps the cursor true, keeps the segment, and shows as lag.

use crate::compact::segment::{list_segments, SegmentReader, Watermark};
use crate::decode::source::Origin;
use crate::record::RecordView;
use std::collections::BTreeMap;
use std::path::Path;

/// What a sink does with the walk.
pub trait RecordSink {
    /// A segment's checkpoint (what the compactor has committed per stream), before its
    /// records; true when the sink already has every record in it, so the walker skips it.
    fn checkpoint(&mut self, marks: &[Watermark]) -> bool;
    /// The first seq of stream (core, seed) the sink has not been handed yet.
    fn next_seq(&mut self, core: u32, seed: u64) -> u64;
    /// One record at or past [`RecordSink::next_seq`] of its stream, with its stream's seed and
    /// the segment's instance identity. The sink may block here (back-pressure) while `stop`
    /// says no.
    fn record(
        &mut self,
        rec: &RecordView<'_>,
        seed: u64,
        origin: Option<&Origin>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), String>;
}

/// The walk's position between passes.
#[derive(Debug, Default)]
pub struct SegmentWalker {
    /// Segment being read (file name without suffix) and the record blocks done in it.
    position: Option<(String, usize)>,
    /// The damaged segment last reported, so it is logged once, not every pass.
    problem: Option<String>,
}

impl SegmentWalker {
    /// Hands every committed record the sink has not had to it, in order; returns how many.
    /// Stops early when `stop` says so (after a record) or at a damaged segment (module docs).
    pub fn pass(
        &mut self,
        data_dir: &Path,
        sink: &mut dyn RecordSink,
        stop: &dyn Fn() -> bool,
    ) -> Result<u64, String> {
        let segments =
            list_segments(data_dir).map_err(|e| format!("{}/segments: {e}", data_dir.display()))?;
        let mut handed = 0;
        for path in segments {
            let stem = segment_stem(&path);
            let resume = match &self.position {
                Some((done, _)) if stem < *done => continue,
                Some((done, blocks)) if stem == *done => Some(*blocks),
                _ => None,
            };
            let mut reader = match SegmentReader::open(&path) {
                Ok(r) => r,
                // Renamed by sealing, or deleted by retention: a later pass sees it again.
                Err(_) if !path.exists() => return Ok(handed),
                Err(e) => return Ok(self.damaged(e.to_string(), handed)),
            };
            let checkpoint = match reader.checkpoint() {
                Ok(c) => c,
                Err(e) => return Ok(self.damaged(e.to_string(), handed)),
            };
            if sink.checkpoint(&checkpoint) && resume.is_none() {
                self.position = Some((stem, reader.block_count()));
                continue;
            }
            reader.seek_block(resume.unwrap_or(0));
            let origin = reader.identity().map(|id| Origin {
                name: id.name().to_string(),
                id_hex: id.id_hex(),
            });
            let seeds: BTreeMap<u32, u64> = checkpoint.iter().map(|m| (m.core, m.seed)).collect();
            loop {
                let rec = match reader.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => return Ok(self.damaged(e.to_string(), handed)),
                };
                let core = u32::from(rec.core());
                let seed = seeds.get(&core).copied().unwrap_or(0);
                if rec.seq() < sink.next_seq(core, seed) {
                    continue;
                }
                sink.record(&rec, seed, origin.as_ref(), stop)?;
                handed += 1;
                if stop() {
                    return Ok(handed);
                }
            }
            self.position = Some((stem, reader.block_count()));
        }
        self.problem = None;
        Ok(handed)
    }

    /// The damaged segment that stopped the last pass, if any.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    fn damaged(&mut self, what: String, handed: u64) -> u64 {
        if self.problem.as_deref() != Some(what.as_str()) {
            crate::error!("ship: {what}; nothing after it is shipped until it reads cleanly");
            self.problem = Some(what);
        }
        handed
    }
}

/// A segment's file name without `.gls` / `.gls.open`: the same while it is sealed.
fn segment_stem(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split(".gls").next().unwrap_or(name).to_string()
}
