//! `--follow`: keep printing new records as the server writes them, like `tail -f`.
//!
//! Every 100 ms: each ring is read on from its last seq; a ring that lapped the reader (more
//! than a ring's worth written since the last poll) jumps to its oldest record, with a warning;
//! data dirs are listed again for new ring files (or a replaced one) and new sealed segments,
//! which are read whole (dedup by (instance, core, seq) drops what the rings already gave). Output is
//! flushed after every poll. Ctrl-C ends it.

use super::filter::Filter;
use super::merge::Merger;
use super::output::{Output, OutputError};
use super::source::{discover_dir, Input, Problems, Reading, RingSource, SegmentSource, Source};
use super::{print_records, DecodeArgs, Printer};
use crate::ring::SlotState;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

/// Files already being read, with their inode (a ring replaced under its name is reopened).
struct Known {
    files: HashMap<PathBuf, u64>,
}

fn inode(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// Polls until interrupted or until the output is closed.
pub fn run(
    args: &DecodeArgs,
    inputs: &[Input],
    merger: &mut Merger,
    filter: &mut Filter,
    printer: &mut Printer,
    out: &mut Output<'_>,
    problems: &mut Problems,
) -> Result<(), OutputError> {
    let mut known = Known {
        files: inputs
            .iter()
            .map(|i| (i.path().to_path_buf(), inode(i.path())))
            .collect(),
    };
    let dirs: Vec<PathBuf> = args.paths.iter().filter(|p| p.is_dir()).cloned().collect();
    crate::info!(
        "following {} file(s) and {} dir(s); Ctrl-C ends",
        inputs.len(),
        dirs.len()
    );
    loop {
        std::thread::sleep(POLL);
        for dir in &dirs {
            add_new_files(dir, &mut known, merger, filter, args.skip_bad, problems);
        }
        skip_lapped(merger);
        merger.prime(problems);
        print_records(merger, filter, printer, out, problems)?;
        if !out.buf.is_empty() {
            out.flush()?;
        }
    }
}

fn add_new_files(
    dir: &std::path::Path,
    known: &mut Known,
    merger: &mut Merger,
    filter: &Filter,
    skip_bad: bool,
    problems: &mut Problems,
) {
    let Ok(found) = discover_dir(dir) else { return };
    for input in found {
        let path = input.path().to_path_buf();
        let ino = inode(&path);
        if known.files.get(&path) == Some(&ino) {
            continue;
        }
        let opened = match &input {
            Input::Ring(p) => RingSource::open(p).map(|r| Some(Reading::Ring(r))),
            // The in-progress file is followed through the rings; it is read once sealed.
            Input::Segment(p) if p.to_str().is_some_and(|s| s.ends_with(".open")) => continue,
            Input::Segment(p) => {
                SegmentSource::open(p, filter.from_ns, filter.to_ns, skip_bad, problems)
                    .map(|s| s.map(Reading::Segment))
            }
        };
        known.files.insert(path, ino);
        match opened {
            Ok(Some(reading)) => {
                let source = Source::new(reading, &mut merger.origins);
                merger.sources.push(source);
            }
            Ok(None) => {}
            Err(line) => problems.report(line),
        }
    }
}

/// A ring whose writer went a whole lap past our next seq continues at its oldest record.
fn skip_lapped(merger: &mut Merger) {
    for source in &mut merger.sources {
        let Reading::Ring(ring) = &mut source.reading else {
            continue;
        };
        let next = ring.next;
        // Below the consumer cursor a record that no longer reads was overwritten.
        if next < ring.reader.cursor()
            && matches!(ring.reader.read(next), Err(SlotState::Uncommitted))
        {
            let start = ring.reader.valid_range().start;
            if start > next {
                crate::warn!(
                    "{}: the server wrote faster than we read: seqs {next}..{start} were overwritten (they are in segments)",
                    ring.reader.path().display()
                );
                ring.next = start;
            }
        }
    }
}
