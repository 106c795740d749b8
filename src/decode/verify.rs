//! `--verify`: check every record and block, find per-core seq gaps and torn ring tails.
//!
//! A ring slot whose commit word claims a seq but whose bytes fail the CRC or format check is
//! *corrupt* when a valid record follows it, and part of a *torn tail* when only uncommitted
//! or failing slots follow (a crash between a page write and its neighbour; the server's
//! recovery cuts it). After a clean stop (the ring header records the head the writer stopped
//! at) nothing can be torn: every slot from the cursor to that head that fails is corruption.
//! Segment blocks are checked by their CRC and record framing. Gaps are
//! holes between the seq ranges found for a core across all inputs: records lost, or not
//! written yet. Exit status 1 means something is corrupt; gaps and torn tails are reported but
//! are not corruption.

use super::merge::SeenSeqs;
use super::output::{Output, OutputError};
use super::source::{file_identity, Input, OriginId, Origins, Problems};
use crate::compact::segment::SegmentReader;
use crate::ring::{RingReader, SlotState};
use std::fmt::Write as _;
use std::path::Path;

/// What the checks found.
#[derive(Default)]
pub struct Findings {
    pub files: u64,
    pub ring_records: u64,
    pub segment_records: u64,
    pub torn_records: u64,
    pub segment_duplicates: u64,
    seen_rings: SeenSeqs,
    seen_segments: SeenSeqs,
    all: SeenSeqs,
    origins: Origins,
}

/// Checks all inputs and prints the summary; each problem is reported as it is found.
pub fn run(
    inputs: &[Input],
    skip_bad: bool,
    out: &mut Output<'_>,
    problems: &mut Problems,
) -> Result<(), OutputError> {
    let mut f = Findings::default();
    for input in inputs {
        f.files += 1;
        match input {
            Input::Ring(p) => verify_ring(p, &mut f, problems),
            Input::Segment(p) => verify_segment(p, skip_bad, &mut f, problems),
        }
    }
    out.buf.extend_from_slice(summary(&f, problems).as_bytes());
    out.flush()
}

fn verify_ring(path: &Path, f: &mut Findings, problems: &mut Problems) {
    let mut ring = match RingReader::open(path) {
        Ok(r) => r,
        Err(e) => return problems.report(e),
    };
    let origin = f
        .origins
        .intern(file_identity(path, ring.header().identity));
    let cap = ring.header().capacity;
    // Two record starts are at most this many slots apart (a record and skipped slots).
    let window = 2 * ring.max_span() + 1;
    let range = ring.valid_range();
    let mut seq = range.start;
    while seq < range.end {
        let Ok(view) = ring.read(seq) else { break };
        let (core, seqs) = (view.core(), view.seqs());
        note(
            f,
            origin,
            core,
            seqs.start.max(range.start)..seqs.end,
            false,
        );
        f.ring_records += 1;
        seq = seqs.end;
    }
    // Below the oldest whole record, a record start that fails its check (already compacted).
    let lo = range.end.saturating_sub(cap);
    for seq in lo..range.start.min(lo + window) {
        if ring.state(seq) == SlotState::Corrupt {
            problems.report(format_args!(
                "{}: offset {}: record seq {seq} (already compacted) fails its CRC or format check",
                path.display(),
                ring.slot_offset(seq)
            ));
        }
    }
    // Past the valid run: failing records followed by a valid one are corruption, the rest a
    // torn tail, except up to the head a clean stop recorded: there nothing can be torn.
    let cursor = ring.cursor();
    let clean_head = ring
        .clean_stop_head()
        .filter(|&h| h >= cursor && h - cursor <= cap);
    let mut failing = Vec::new();
    let mut seq = range.end;
    while seq - range.start < cap {
        let state = match ring.read(seq) {
            Ok(view) => {
                let (core, seqs) = (view.core(), view.seqs());
                for bad in failing.drain(..) {
                    problems.report(format_args!(
                        "{}: offset {}: record seq {bad} fails its CRC or format check",
                        path.display(),
                        ring.slot_offset(bad)
                    ));
                }
                note(f, origin, core, seqs.clone(), false);
                f.ring_records += 1;
                seq = seqs.end;
                continue;
            }
            Err(state) => state,
        };
        match state {
            _ if clean_head.is_some_and(|h| seq < h) => problems.report(format_args!(
                "{}: offset {}: record seq {seq} fails its CRC or format check after a clean stop (corruption, not a torn write)",
                path.display(),
                ring.slot_offset(seq)
            )),
            SlotState::Uncommitted => break,
            _ => failing.push(seq),
        }
        // A failing record's span cannot be trusted: look for the next valid start.
        match ring.next_valid(seq + 1, seq + window) {
            Some(next) => seq = next,
            None => break,
        }
    }
    if let Some(&first) = failing.first() {
        crate::warn!(
            "{}: offset {}: torn tail: {} record(s) from seq {first} claim a record but fail its check (a crash mid-write; the server's recovery cuts them)",
            path.display(),
            ring.slot_offset(first),
            failing.len()
        );
        f.torn_records += failing.len() as u64;
    }
}

/// Checks every block of a segment; with `skip_bad` a damaged block (or trailer or index) is
/// reported and the blocks after it are still checked.
fn verify_segment(path: &Path, skip_bad: bool, f: &mut Findings, problems: &mut Problems) {
    let opened = if skip_bad {
        SegmentReader::open_salvaging(path).map(|(seg, damage)| {
            damage.into_iter().for_each(|e| problems.report(e));
            seg
        })
    } else {
        SegmentReader::open(path)
    };
    let mut seg = match opened {
        Ok(s) => s,
        Err(e) => return problems.report(e),
    };
    let origin = f.origins.intern(file_identity(path, seg.identity()));
    loop {
        match seg.next_record() {
            Ok(Some(v)) => {
                note(f, origin, v.core(), v.seqs(), true);
                f.segment_records += 1;
            }
            Ok(None) => break,
            Err(e) if skip_bad => problems.report(e),
            Err(e) => return problems.report(e),
        }
    }
}

/// Notes the seqs one record accounts for (see [`crate::record::RecordView::seqs`]).
fn note(
    f: &mut Findings,
    origin: OriginId,
    core: u16,
    seqs: std::ops::Range<u64>,
    in_segment: bool,
) {
    if in_segment {
        if !f.seen_segments.insert_range(origin, core, seqs.clone()) {
            f.segment_duplicates += 1;
        }
    } else {
        f.seen_rings.insert_range(origin, core, seqs.clone());
    }
    f.all.insert_range(origin, core, seqs);
}

fn summary(f: &Findings, problems: &Problems) -> String {
    let mut s = String::new();
    let mut gaps = 0u64;
    let mut missing = 0u64;
    for (origin, core, ranges) in f.all.ranges() {
        let spans: Vec<String> = ranges
            .iter()
            .map(|r| format!("{}..{}", r.start, r.end))
            .collect();
        // With one instance (or none) the lines stay as they were; with several, each says whose.
        let core = match f.origins.get(origin) {
            Some(o) if f.origins.len() > 1 => format!("instance {} core {core}", o.name),
            _ => format!("core {core}"),
        };
        let _ = writeln!(s, "{core}: seqs {}", spans.join(", "));
        for pair in ranges.windows(2) {
            let (from, to) = (pair[0].end, pair[1].start);
            gaps += 1;
            missing += to - from;
            let _ = writeln!(
                s,
                "{core}: gap: seqs {from}..{to} missing ({} slots of records lost or not yet written)",
                to - from
            );
        }
    }
    let _ = writeln!(
        s,
        "verified {} file(s): {} ring records, {} segment records; {} gap(s) ({missing} seqs); \
         {} torn tail record(s); {} duplicate(s) inside segments; {} corrupt or unreadable",
        f.files,
        f.ring_records,
        f.segment_records,
        gaps,
        f.torn_records,
        f.segment_duplicates,
        problems.count
    );
    let _ = writeln!(s, "{}", if problems.count == 0 { "OK" } else { "CORRUPT" });
    s
}
