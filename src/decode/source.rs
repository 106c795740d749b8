//! The inputs: which files a PATH names, and reading records out of rings and segments.

use crate::compact::cycle::ring_paths;
use crate::compact::segment::{list_segments, SegmentReader, SEGMENT_SUFFIX};
use crate::instance::Identity;
use crate::record::RecordView;
use crate::ring::{RingReader, SlotState};
use std::path::{Path, PathBuf};

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Ring(PathBuf),
    Segment(PathBuf),
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::Ring(p) | Input::Segment(p) => p,
        }
    }
}

/// Errors found in the inputs, each printed as one line when found.
#[derive(Debug, Default)]
pub struct Problems {
    pub count: u64,
}

impl Problems {
    pub fn report(&mut self, line: impl std::fmt::Display) {
        crate::error!("{line}");
        self.count += 1;
    }
}

/// Turns the PATH arguments into ring and segment files. A PATH that cannot be used (missing,
/// not a glint file, a directory without any) is an error; with `skip_bad` (`--skip-bad`) it
/// is reported there and left out, and the other PATHs are still read.
pub fn discover(
    paths: &[PathBuf],
    mut skip_bad: Option<&mut Problems>,
) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for path in paths {
        match discover_one(path) {
            Ok(found) => inputs.extend(found),
            Err(e) => match skip_bad.as_deref_mut() {
                Some(problems) => problems.report(format_args!("{e}; skipped (--skip-bad)")),
                None => return Err(e),
            },
        }
    }
    Ok(inputs)
}

fn discover_one(path: &Path) -> Result<Vec<Input>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![classify_file(path)?]);
    }
    let found = discover_dir(path)?;
    if found.is_empty() {
        return Err(format!(
            "{}: no ring files (ring-NNN.glr) or segments (segments/*{SEGMENT_SUFFIX}) in this directory",
            path.display()
        ));
    }
    Ok(found)
}

/// Rings of a data dir, its `segments/` (sealed in time order, then the in-progress one), and
/// segment files lying directly in the dir (a `segments/` dir given as PATH).
pub fn discover_dir(dir: &Path) -> Result<Vec<Input>, String> {
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut inputs: Vec<Input> = ring_paths(dir)
        .map_err(err)?
        .into_iter()
        .map(Input::Ring)
        .collect();
    inputs.extend(
        list_segments(dir)
            .map_err(err)?
            .into_iter()
            .map(Input::Segment),
    );
    let mut loose: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(SEGMENT_SUFFIX)))
        .collect();
    loose.sort();
    inputs.extend(loose.into_iter().map(Input::Segment));
    Ok(inputs)
}

/// A file given by name: ring or segment by its magic bytes.
fn classify_file(path: &Path) -> Result<Input, String> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = file
        .read(&mut magic)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match &magic[..n] {
        b"GLINTRNG" => Ok(Input::Ring(path.to_path_buf())),
        b"GLINTSEG" => Ok(Input::Segment(path.to_path_buf())),
        short if short.len() < 8 => Err(format!(
            "{}: offset {n}: file is {n} bytes, too short for a glint ring or segment header",
            path.display()
        )),
        other => Err(format!(
            "{}: offset 0: not a glint ring or segment file (magic {:02x?}, want GLINTRNG or GLINTSEG)",
            path.display(),
            other
        )),
    }
}

/// Sort key of a record in the merged output: (ts, core, seq, origin).
pub type Key = (u64, u16, u64, OriginId);

/// Which instance a source's records come from: an index into [`Origins`], 0 for none.
pub type OriginId = u32;

/// An instance as printed: its name and its id in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: String,
    pub id_hex: String,
}

/// The instances of all sources, each once (by id); [`OriginId`] 0 means "no instance"
/// (files written before identities, outside any data dir that has one).
#[derive(Debug, Default)]
pub struct Origins {
    ids: Vec<[u8; crate::instance::ID_LEN]>,
    printed: Vec<Origin>,
}

impl Origins {
    pub fn intern(&mut self, identity: Option<Identity>) -> OriginId {
        let Some(identity) = identity else { return 0 };
        if let Some(i) = self.ids.iter().position(|id| *id == identity.id()) {
            return i as OriginId + 1;
        }
        self.ids.push(identity.id());
        self.printed.push(Origin {
            name: identity.name().to_string(),
            id_hex: identity.id_hex(),
        });
        self.ids.len() as OriginId
    }

    /// Instances seen.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn get(&self, id: OriginId) -> Option<&Origin> {
        id.checked_sub(1).and_then(|i| self.printed.get(i as usize))
    }
}

/// The instance a file's records belong to: its header's identity, or for a file inside a
/// data dir without one in its header (written before identities), the data dir's
/// `instance.toml`. A data dir's identity file also supplies the current name of its own id.
pub fn file_identity(path: &Path, header: Option<Identity>) -> Option<Identity> {
    let dir_identity = data_dir_of(path).and_then(|dir| crate::instance::load(&dir).ok().flatten());
    match (header, dir_identity) {
        (None, dir) => dir,
        (Some(h), Some(dir)) if dir.id() == h.id() => Some(dir),
        (Some(h), _) => Some(h),
    }
}

/// The data dir a ring (`DIR/ring-NNN.glr`) or segment (`DIR/segments/x.gls`) lies in.
fn data_dir_of(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    if parent.file_name().is_some_and(|n| n == "segments") {
        parent.parent().map(Path::to_path_buf)
    } else {
        Some(parent.to_path_buf())
    }
}

fn key_of(bytes: &[u8], origin: OriginId) -> Key {
    let v = RecordView::parse(bytes).expect("sources hold validated records");
    (v.ts_ns(), v.core(), v.seq(), origin)
}

/// Records of one ring, from the oldest still in it.
pub struct RingSource {
    pub reader: RingReader,
    /// Next sequence number to read.
    pub next: u64,
    /// The instance that wrote the ring, if known.
    pub identity: Option<Identity>,
    current: Vec<u8>,
}

impl RingSource {
    pub fn open(path: &Path) -> Result<RingSource, String> {
        let mut reader = RingReader::open(path).map_err(|e| e.to_string())?;
        let next = reader.valid_range().start;
        let identity = file_identity(path, reader.header().identity);
        Ok(RingSource {
            reader,
            next,
            identity,
            current: Vec::new(),
        })
    }

    /// Reads the next committed record into the current buffer; false when there is none yet.
    /// A corrupt slot is reported with its file offset and skipped.
    pub fn advance(&mut self, problems: &mut Problems) -> bool {
        loop {
            let seq = self.next;
            let state = match self.reader.read(seq) {
                Ok(view) => {
                    self.next = view.seqs().end;
                    self.current.clear();
                    self.current.extend_from_slice(view.bytes());
                    return true;
                }
                Err(state) => state,
            };
            if state == SlotState::Uncommitted && !self.reader.is_damaged(seq) {
                return false;
            }
            problems.report(format_args!(
                "{}: offset {}: record seq {seq} fails its CRC or format check; skipped",
                self.reader.path().display(),
                self.reader.slot_offset(seq)
            ));
            // Its span cannot be trusted: go on at the next record that validates.
            let window = seq + 1 + 2 * self.reader.max_span();
            self.next = self.reader.next_valid(seq + 1, window).unwrap_or(seq + 1);
        }
    }
}

/// Records of one segment, from the first block that may hold `from_ns`.
pub struct SegmentSource {
    reader: SegmentReader,
    /// The instance whose records the segment holds, if known.
    pub identity: Option<Identity>,
    current: Vec<u8>,
    done: bool,
    /// `--skip-bad`: read on past a damaged block instead of leaving the rest of the segment.
    skip_bad: bool,
}

impl SegmentSource {
    /// Opens a segment; `None` when its time span misses `from_ns..to_ns` (only the header,
    /// trailer and index were read). With `skip_bad`, a damaged trailer or index is reported
    /// to `problems` and the segment is read by walking its blocks.
    pub fn open(
        path: &Path,
        from_ns: u64,
        to_ns: u64,
        skip_bad: bool,
        problems: &mut Problems,
    ) -> Result<Option<SegmentSource>, String> {
        let mut reader = if skip_bad {
            let (reader, damage) =
                SegmentReader::open_salvaging(path).map_err(|e| e.to_string())?;
            for e in damage {
                problems.report(format_args!(
                    "{e}; reading the segment's blocks without it (--skip-bad)"
                ));
            }
            reader
        } else {
            SegmentReader::open(path).map_err(|e| e.to_string())?
        };
        if reader.record_count() == 0 || reader.max_ts_ns() < from_ns || reader.min_ts_ns() >= to_ns
        {
            return Ok(None);
        }
        reader.seek(from_ns).map_err(|e| e.to_string())?;
        let identity = file_identity(path, reader.identity());
        Ok(Some(SegmentSource {
            reader,
            identity,
            current: Vec::new(),
            done: false,
            skip_bad,
        }))
    }

    pub fn bytes_read(&self) -> u64 {
        self.reader.bytes_read()
    }

    pub fn advance(&mut self, problems: &mut Problems) -> bool {
        while !self.done {
            match self.reader.next_record() {
                Ok(Some(view)) => {
                    self.current.clear();
                    self.current.extend_from_slice(view.bytes());
                    return true;
                }
                Ok(None) => self.done = true,
                Err(e) if self.skip_bad => {
                    problems.report(format_args!("{e}; block skipped, reading on (--skip-bad)"));
                }
                Err(e) => {
                    problems.report(format_args!(
                        "{e}; rest of this segment skipped (--skip-bad reads on past it)"
                    ));
                    self.done = true;
                }
            }
        }
        false
    }
}

/// What a source reads from.
pub enum Reading {
    Ring(RingSource),
    Segment(SegmentSource),
}

/// A ring or a segment being read, and the instance its records belong to.
pub struct Source {
    pub reading: Reading,
    pub origin: OriginId,
}

impl Source {
    /// A source whose records are attributed to its file's instance (interned in `origins`).
    pub fn new(reading: Reading, origins: &mut Origins) -> Source {
        let identity = match &reading {
            Reading::Ring(r) => r.identity,
            Reading::Segment(s) => s.identity,
        };
        Source {
            origin: origins.intern(identity),
            reading,
        }
    }

    pub fn advance(&mut self, problems: &mut Problems) -> bool {
        match &mut self.reading {
            Reading::Ring(r) => r.advance(problems),
            Reading::Segment(s) => s.advance(problems),
        }
    }

    /// The record read by the last successful [`Source::advance`].
    pub fn current(&self) -> &[u8] {
        match &self.reading {
            Reading::Ring(r) => &r.current,
            Reading::Segment(s) => &s.current,
        }
    }

    pub fn key(&self) -> Key {
        key_of(self.current(), self.origin)
    }

    /// The seqs the current record accounts for (see [`RecordView::seqs`]).
    pub fn seqs(&self) -> std::ops::Range<u64> {
        RecordView::parse(self.current())
            .expect("sources hold validated records")
            .seqs()
    }
}

/// Opens every input; a file that cannot be opened is reported and left out.
pub fn open_sources(
    inputs: &[Input],
    from_ns: u64,
    to_ns: u64,
    skip_bad: bool,
    origins: &mut Origins,
    problems: &mut Problems,
) -> Vec<Source> {
    let mut sources = Vec::new();
    for input in inputs {
        let opened = match input {
            Input::Ring(p) => RingSource::open(p).map(|r| Some(Reading::Ring(r))),
            Input::Segment(p) => SegmentSource::open(p, from_ns, to_ns, skip_bad, problems)
                .map(|s| s.map(Reading::Segment)),
        };
        match opened {
            Ok(Some(r)) => sources.push(Source::new(r, origins)),
            Ok(None) => {}
            Err(line) => problems.report(line),
        }
    }
    sources
}
