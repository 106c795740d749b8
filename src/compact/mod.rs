//! `glint compact`: merges the per-core rings into time-ordered, indexed, crash-safe segments.
//!
//! Every cycle reads each ring from where compaction stopped (one ring capacity at most),
//! k-way merges the committed records by (timestamp, core, seq) ([`merge`]) and appends them,
//! padding dropped, to the in-progress segment `DATA_DIR/segments/<start>.gls.open`
//! ([`segment`] documents the format). While a ring is behind the next cycle starts at once;
//! once all are caught up cycles start at most `--interval` (default 1 s) apart, sooner when a
//! ring is a quarter full ([`schedule`]). Segments roll by span or size; retention deletes the oldest sealed ones
//! ([`retention`]).
//!
//! # Crash safety
//! The hand-off from a ring to a segment, in this order:
//! 1. append the cycle's records as CRC'd blocks, then a checkpoint block listing, per ring
//!    file (core and random seed), the first seq not compacted (`next_seq`);
//! 2. fdatasync the segment (its creation also fsynced the file and the directory);
//! 3. only then store each ring's consumer cursor (`advance_cursor` msyncs the header);
//! 4. sealing writes the index and trailer, fsyncs, renames `.gls.open` to `.gls` and fsyncs
//!    the directory; the cursors never wait for a seal, so a 1-hour segment does not hold
//!    an hour of records in the rings.
//!
//! On start (`Compactor::open`) the in-progress file is validated block by block: everything after
//! its last checkpoint (a cycle that did not finish its fsync) is cut, since those records are
//! still in the rings; a complete but unrenamed file is renamed. The last checkpoint (from the
//! in-progress file, else the newest sealed segment) says where each ring stopped; when a crash
//! came between step 2 and step 3 it is ahead of the ring's cursor, and the compactor continues
//! from the checkpoint, so no record is written twice. A checkpoint for another seed (a ring
//! file that was recreated) is ignored. A damaged block before a valid checkpoint is
//! corruption, not a torn tail: the compactor names file and offset and stops, cutting nothing.
//! A corrupt ring record stops that ring (reported every cycle with file and offset); it is
//! never skipped or deleted. An I/O error while writing (disk full, a failed fsync) ends the
//! process with exit code 1 instead of retrying: after a failed fsync the page cache cannot be
//! trusted, and a restart (systemd) recovers from the last checkpoint on disk.
//!
//! Memory is bounded by the number of rings (one held record each) and the block size (64 KiB
//! gathered, plus its compressed copy), plus a 32-byte index entry per block of the open segment.
//!
//! Modules:
//! - [`cycle`]: one cycle: merge into the open segment, commit, move the cursors.
//! - [`merge`]: the k-way merge of ring records by (timestamp, core, seq).
//! - `recover`: start-up: finish or continue the segment a crashed compactor left.
//! - [`retention`]: delete the oldest sealed segments by age or total size.
//! - [`schedule`]: when the next cycle runs.
//! - [`segment`]: the segment file format, writer, reader and recovery.

pub mod cycle;
pub mod merge;
mod recover;
pub mod retention;
pub mod schedule;
pub mod segment;

pub use cycle::{CompactOptions, Compactor, CycleReport};
pub use retention::Retention;

use segment::Codec;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options of `glint compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Directory holding the ring files (`ring-NNN.glr`); segments are written to DIR/segments/.
    #[arg(long, value_name = "DIR", default_value = "./glint-data")]
    pub data_dir: PathBuf,
    /// Compact what the rings hold now, seal the segment and exit (0, or 1 if a ring or
    /// segment is damaged).
    #[arg(long)]
    pub once: bool,
    /// Longest time between cycle starts when looping (ms, s, m, h, d). While a ring is behind
    /// (a cycle took a whole ring's capacity from it) the next cycle starts at once, and a wait
    /// ends early when a ring is a quarter full. SIGTERM or SIGINT ends the loop after the current cycle; the open segment is
    /// sealed and the exit code is 0.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = crate::clock::parse_duration)]
    pub interval: Duration,
    /// Seal a segment once a record is this much newer than the segment's start, or once the
    /// wall clock has passed its start by this much.
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = crate::clock::parse_duration)]
    pub segment_span: Duration,
    /// Seal a segment before it would grow past this size, index and trailer included
    /// (KiB, MiB, GiB; a segment holds at least one record).
    #[arg(long, value_name = "N", default_value = "1GiB", value_parser = crate::units::parse_bytes)]
    pub segment_max_bytes: u64,
    /// Delete sealed segments whose newest record is older than this (never the newest sealed
    /// segment, never a record still only in a ring).
    #[arg(long, value_name = "DUR", value_parser = crate::clock::parse_duration)]
    pub retain: Option<Duration>,
    /// Delete the oldest sealed segments while all segments together are larger than this.
    #[arg(long, value_name = "N", value_parser = crate::units::parse_bytes)]
    pub retain_bytes: Option<u64>,
    /// Block compression: zstd (at --zstd-level; a block is stored raw when zstd does not shrink
    /// it) or none.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: Codec,
    /// zstd level, -7 to 19: negative levels compress faster and less (on browser beacons, one
    /// core: 1 is about 61 bytes a record, -7 about 95, none 431; see README "Design notes").
    /// Readers need not know it.
    #[arg(long, value_name = "N", default_value_t = segment::DEFAULT_ZSTD_LEVEL,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(i64::from(*segment::ZSTD_LEVELS.start())..=i64::from(*segment::ZSTD_LEVELS.end())))]
    pub zstd_level: i32,
    /// Name of this box's instance in every segment (default: the name in
    /// DATA_DIR/instance.toml, created with the host name); a new name replaces the stored one.
    #[arg(long, value_name = "NAME", value_parser = crate::instance::parse_name)]
    pub instance_name: Option<String>,
}

impl CompactArgs {
    /// The compactor options these flags ask for.
    pub fn options(&self) -> CompactOptions {
        CompactOptions {
            data_dir: self.data_dir.clone(),
            span_ns: duration_ns(self.segment_span),
            max_bytes: self.segment_max_bytes,
            codec: self.compression,
            zstd_level: self.zstd_level,
            retain_ns: self.retain.map(duration_ns),
            retain_bytes: self.retain_bytes,
            instance_name: self.instance_name.clone(),
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `glint compact`.
pub fn run(args: CompactArgs) -> Result<ExitCode, crate::BoxError> {
    if !args.data_dir.is_dir() {
        return Err(format!("{}: not a directory (--data-dir)", args.data_dir.display()).into());
    }
    let stop = if args.once {
        None
    } else {
        Some(stop_signal()?)
    };
    let opts = args.options();
    let retention = Retention {
        max_age_ns: opts.retain_ns,
        max_bytes: opts.retain_bytes,
    };
    let mut compactor = Compactor::open(opts)?;
    crate::info!(
        "compact: {} -> {}/segments, {}",
        args.data_dir.display(),
        args.data_dir.display(),
        if args.once {
            "once".to_string()
        } else {
            format!(
                "cycles at most {:?} apart, back to back while a ring is behind",
                args.interval
            )
        }
    );
    let mut failed = false;
    let mut stopping = false;
    // Cycles run back to back while a ring is behind; their reports are summed into one log
    // line (and retention runs) at most once per --interval, and whenever it catches up.
    let mut unlogged: Option<(CycleReport, Instant)> = None;
    loop {
        let began = Instant::now();
        let mut report = compactor.cycle()?;
        if let Some(rx) = &stop {
            if rx.try_recv().is_ok() {
                // The stop came while this cycle ran, and the cycle began before it: records
                // written in between would be missed, so one more cycle starts after the signal.
                stopping = true;
                let more = compactor.cycle()?;
                report.absorb(more);
            }
        }
        let last = stop.is_none() || stopping;
        if last {
            // The last cycle drains: a ring held back by the per-cycle budget gets more cycles,
            // so `--once` and a stop leave nothing behind that was there when they began.
            let mut extra = 0;
            while report
                .lag
                .iter()
                .any(|(_, s)| matches!(s, Some(merge::Stopped::Budget)))
                && extra < MAX_DRAIN_CYCLES
            {
                let more = compactor.cycle()?;
                report.absorb(more);
                extra += 1;
            }
            compactor.commit_and_seal(&mut report)?;
        }
        failed |= !report.problems.is_empty();
        let wait = schedule::wait_before_next(&report, args.interval, began.elapsed());
        let caught_up = !schedule::behind(&report);
        let (summed, since) = match unlogged.take() {
            Some((mut earlier, since)) => {
                earlier.absorb(report);
                (earlier, since)
            }
            None => (report, began),
        };
        if last || caught_up || since.elapsed() >= args.interval {
            let gone = retention.apply(&args.data_dir, crate::clock::now_ns());
            log_cycle(&summed, gone);
        } else {
            unlogged = Some((summed, since));
        }
        if last {
            break;
        }
        if let Some(rx) = &stop {
            // A signal during the wait (or between back-to-back cycles) ends it: one more
            // cycle, then seal and exit.
            stopping = schedule::wait(wait, rx, || compactor.ring_filling());
        }
    }
    Ok(if failed && args.once {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Bound on the extra cycles a final drain runs (each moves up to one ring's capacity per ring),
/// so a server that keeps writing faster than the compactor cannot hold a stop forever.
const MAX_DRAIN_CYCLES: usize = 64;

fn log_cycle(r: &CycleReport, gone: std::io::Result<retention::RetentionReport>) {
    for p in &r.problems {
        crate::error!("{p}");
    }
    let mut lag = String::new();
    for (core, why) in &r.lag {
        use std::fmt::Write as _;
        let state = match why {
            None => "0",
            Some(merge::Stopped::Corrupt(_)) => "stalled",
            Some(merge::Stopped::Budget) => "behind",
        };
        let _ = write!(lag, " core{core}={state}");
    }
    let deleted = match gone {
        Ok(g) => {
            for p in &g.problems {
                crate::error!("{p}");
            }
            g.deleted.len()
        }
        Err(e) => {
            crate::error!("retention: {e}");
            0
        }
    };
    crate::info!(
        "compact: moved {} records, {} ring bytes -> {} segment bytes, sealed {}, deleted {}; lag{}",
        r.moved,
        r.ring_bytes,
        r.segment_bytes,
        r.sealed.len(),
        deleted,
        if lag.is_empty() { " none (no rings)" } else { &lag }
    );
}

/// A channel that receives one message per SIGTERM or SIGINT, watched on a small thread.
pub(crate) fn stop_signal() -> std::io::Result<crossbeam_channel::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    // Register before returning, so a signal right after start is not the default (fatal) one.
    let (mut term, mut int) = {
        let _ctx = rt.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("compact-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            })
        })?;
    Ok(rx)
}
