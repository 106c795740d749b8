//! `glint ship --to s3://BUCKET/PREFIX`: the records of each closed time window as Parquet
//! objects in S3-compatible object storage, Hive-partitioned by day and hour.
//!
//! Same reading and cursor discipline as the Kafka sink: committed segment records in order
//! through the one walker ([`super::segments`]), one durable cursor per ring stream
//! (`DATA_DIR/ship-cursor.json`), moved only past records whose object the store has confirmed. Records are spooled per (stream, window) into a
//! Parquet file under `DATA_DIR/ship-spool/` (the decoder's writer and schema); once a window
//! is closed (its end plus `--window-grace` has passed, or `--once`) the file is uploaded as
//!
//! `PREFIX/dt=YYYY-MM-DD/hour=HH/INSTANCE-CORE-SEED-FIRSTSEQ.parquet`
//!
//! (SEED: the ring's seed, 16 hex digits; FIRSTSEQ: the stream's first seq in the object), in
//! one PUT, or as a multipart upload in `--part-size` parts when larger, streamed from the
//! spool file ([`store::upload_file`]). The name depends only
//! on the records, so after a kill the same records are uploaded again under the same name and
//! overwrite the first copy: no duplicate. Records of a window already uploaded (late ones)
//! start a new object in the same partition, named by their own first seq. While the store is
//! unreachable the spool files wait and are retried with back-off; the cursor does not move,
//! so compactor retention keeps the segments.
//!
//! Modules:
//! - [`store`]: the object store: target URL, client settings, object names, uploads.

pub mod store;

use super::cursor::ShipCursor;
use super::metrics::{CoreLag, LakeMetrics};
use super::segments::{RecordSink, SegmentWalker};
use crate::compact::segment::Watermark;
use crate::decode::columns::Selection;
use crate::decode::parquet::ParquetWriter;
use crate::decode::source::Origin;
use crate::record::RecordView;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::collections::{BTreeMap, HashMap};
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use store::{parse_s3_opt, Target, MIN_PART_SIZE};

/// The spool folder's name inside the data dir.
pub const SPOOL_DIR: &str = "ship-spool";
/// Longest wait between two tries of a failed upload.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the S3 sink does, from the command line.
#[derive(Debug, Clone)]
pub struct LakeOptions {
    pub data_dir: PathBuf,
    pub target: Target,
    pub window: Duration,
    pub grace: Duration,
    pub part_size: u64,
    pub poll_interval: Duration,
    /// Instance id of the data dir, for segments without an identity.
    pub instance: String,
}

/// Checks `--window`: at most an hour and a whole fraction of it, so no window spans two
/// `hour=` partitions.
pub fn check_window(window: Duration) -> Result<(), String> {
    let s = window.as_secs();
    if window.subsec_nanos() != 0 || s == 0 || 3600 % s != 0 {
        return Err(format!(
            "--window {window:?}: must be whole seconds dividing an hour (1s .. 1h)"
        ));
    }
    Ok(())
}

/// One (stream, window) spool file.
struct Spool {
    writer: ParquetWriter<BufWriter<std::fs::File>>,
    path: PathBuf,
    first_seq: u64,
    first_ts: u64,
}

/// A closed spool file waiting for its upload.
struct Ready {
    window_start: u64,
    path: PathBuf,
    records: u64,
    first_ts: u64,
}

/// One ring stream (core, seed).
struct Stream {
    core: u32,
    seed: u64,
    /// Next seq to read from the segments.
    next_read: u64,
    /// `next_seq` of the newest checkpoint seen: the records the compactor has committed.
    committed: u64,
    /// Open spools by window start (ns).
    open: BTreeMap<u64, Spool>,
    /// Closed spool files waiting for their upload, by first seq.
    ready: BTreeMap<u64, Ready>,
    instance: String,
}

impl Stream {
    /// First seq not in an uploaded object: the stream's durable cursor.
    fn cursor(&self) -> u64 {
        self.open
            .values()
            .map(|s| s.first_seq)
            .chain(self.ready.keys().copied())
            .min()
            .unwrap_or(self.next_read)
    }

    /// Time of the oldest record read and not uploaded, if any.
    fn oldest_ts(&self) -> Option<u64> {
        self.open
            .values()
            .map(|s| s.first_ts)
            .chain(self.ready.values().map(|r| r.first_ts))
            .min()
    }
}

/// The S3 sink's state.
pub struct Lake {
    opts: LakeOptions,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    metrics: Arc<LakeMetrics>,
    streams: Vec<Stream>,
    by_ring: HashMap<(u32, u64), usize>,
    walker: SegmentWalker,
    selection: Selection,
    agents: Arc<crate::agent::Classifier>,
    spool: PathBuf,
    failures: u32,
    down_since: Option<Instant>,
    retry_at: Option<Instant>,
    /// Objects and records uploaded in this run.
    pub uploaded: (u64, u64),
}

impl Lake {
    /// Starts from the durable cursor (creating it, which tells retention a shipper exists).
    pub fn new(
        opts: LakeOptions,
        store: Arc<dyn ObjectStore>,
        metrics: Arc<LakeMetrics>,
    ) -> Result<Lake, String> {
        let cursor = ShipCursor::open(&opts.data_dir, &opts.instance)?;
        // Spool files of an earlier run are not uploaded: their records are read again from
        // the cursor and land under the same names.
        let spool = opts.data_dir.join(SPOOL_DIR);
        let _ = std::fs::remove_dir_all(&spool);
        std::fs::create_dir_all(&spool).map_err(|e| format!("{}: {e}", spool.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("ship: cannot start the S3 client's runtime: {e}"))?;
        metrics.store_up.store(true, Relaxed);
        let mut lake = Lake {
            selection: Selection::new(None, false)?,
            agents: Arc::new(crate::agent::Classifier::builtin()),
            opts,
            store,
            rt,
            metrics,
            streams: Vec::new(),
            by_ring: HashMap::new(),
            walker: SegmentWalker::default(),
            spool,
            failures: 0,
            down_since: None,
            retry_at: None,
            uploaded: (0, 0),
        };
        for (&(core, seed), &next) in &cursor.streams {
            let i = lake.stream(core, seed);
            lake.streams[i].next_read = next;
        }
        Ok(lake)
    }

    fn stream(&mut self, core: u32, seed: u64) -> usize {
        if let Some(&i) = self.by_ring.get(&(core, seed)) {
            return i;
        }
        self.streams.push(Stream {
            core,
            seed,
            next_read: 0,
            committed: 0,
            open: BTreeMap::new(),
            ready: BTreeMap::new(),
            instance: self.opts.instance.clone(),
        });
        self.by_ring.insert((core, seed), self.streams.len() - 1);
        self.streams.len() - 1
    }

    /// Ships until `stop` says so, or with `once`, until everything committed at the start is
    /// in the store (open windows too).
    pub fn run(&mut self, stop: &dyn Fn() -> bool, once: bool) -> Result<(), String> {
        loop {
            let read = self.pass(stop)?;
            let all_up = self.upload_due(once, stop)?;
            self.update_lag();
            if stop() || (once && read == 0 && all_up) {
                return Ok(());
            }
            if read == 0 {
                std::thread::sleep(self.opts.poll_interval);
            }
        }
    }

    /// Spools every committed record not read yet; returns how many.
    fn pass(&mut self, stop: &dyn Fn() -> bool) -> Result<u64, String> {
        let mut walker = std::mem::take(&mut self.walker);
        let read = walker.pass(&self.opts.data_dir.clone(), self, stop);
        self.walker = walker;
        read
    }

    /// Closes the spools of closed windows (all with `all`) and uploads every closed one;
    /// true when none is left. Stores the cursor after each upload.
    fn upload_due(&mut self, all: bool, stop: &dyn Fn() -> bool) -> Result<bool, String> {
        self.close_due(all)?;
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        for i in 0..self.streams.len() {
            while let Some((&first, ready)) = self.streams[i].ready.first_key_value() {
                if stop() {
                    return Ok(false);
                }
                let (path, records) = (ready.path.clone(), ready.records);
                let key = store::object_key(&self.opts.target.prefix, ready.window_start, &path);
                let sent =
                    store::upload_file(&self.rt, &self.store, &path, &key, self.opts.part_size);
                match sent {
                    Ok(up) => {
                        let _ = std::fs::remove_file(&path);
                        self.streams[i].ready.remove(&first);
                        self.uploaded.0 += 1;
                        self.uploaded.1 += records;
                        self.count_upload(up, records);
                        crate::info!(
                            "ship: {key}: uploaded ({records} records, {} bytes)",
                            up.bytes
                        );
                        self.store_cursor()?;
                    }
                    Err(e) => {
                        self.upload_failed(&key, &e);
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Finishes the spool files of windows that are over (end + grace passed), or all.
    fn close_due(&mut self, all: bool) -> Result<(), String> {
        let now = crate::clock::now_ns();
        let window = u64::try_from(self.opts.window.as_nanos()).unwrap_or(u64::MAX);
        let grace = u64::try_from(self.opts.grace.as_nanos()).unwrap_or(u64::MAX);
        for s in &mut self.streams {
            let due: Vec<u64> = s
                .open
                .keys()
                .copied()
                .filter(|&start| all || now >= start.saturating_add(window).saturating_add(grace))
                .collect();
            for window_start in due {
                let spool = s.open.remove(&window_start).expect("listed above");
                let records = spool.writer.records();
                let path = spool.path;
                let flushed = spool
                    .writer
                    .finish()
                    .map_err(|e| e.to_string())
                    .and_then(|w| w.into_inner().map_err(|e| e.into_error().to_string()))
                    .and_then(|f| f.sync_all().map_err(|e| e.to_string()));
                if let Err(e) = flushed {
                    return Err(format!("{}: {e}", path.display()));
                }
                let ready = Ready {
                    window_start,
                    path,
                    records,
                    first_ts: spool.first_ts,
                };
                s.ready.insert(spool.first_seq, ready);
            }
        }
        Ok(())
    }

    fn count_upload(&mut self, up: store::Uploaded, records: u64) {
        let m = &self.metrics;
        if up.parts == 0 {
            m.objects_put.fetch_add(1, Relaxed);
        } else {
            m.objects_multipart.fetch_add(1, Relaxed);
            m.parts.fetch_add(up.parts, Relaxed);
        }
        m.bytes.fetch_add(up.bytes, Relaxed);
        m.records.fetch_add(records, Relaxed);
        m.spooled
            .fetch_sub(records.min(m.spooled.load(Relaxed)), Relaxed);
        m.last_upload_ns.store(crate::clock::now_ns(), Relaxed);
        m.store_up.store(true, Relaxed);
        if let Some(since) = self.down_since.take() {
            crate::info!(
                "ship: the object store takes uploads again after {:.1} s; catching up",
                since.elapsed().as_secs_f64()
            );
        }
        self.failures = 0;
        self.retry_at = None;
    }

    /// Counts a failed upload, logs the first of a run of them, schedules the retry.
    fn upload_failed(&mut self, key: &ObjectPath, e: &str) {
        self.failures += 1;
        self.metrics.upload_errors.fetch_add(1, Relaxed);
        self.metrics.store_up.store(false, Relaxed);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            crate::warn!(
                "ship: upload of {key} failed ({e}); retrying with back-off, the cursor waits"
            );
        }
        let backoff = Duration::from_millis(100)
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + backoff);
    }

    fn store_cursor(&mut self) -> Result<(), String> {
        let mut cursor = ShipCursor {
            instance: self.opts.instance.clone(),
            ..ShipCursor::default()
        };
        for s in &self.streams {
            cursor.streams.insert((s.core, s.seed), s.cursor());
        }
        cursor.save(&self.opts.data_dir)?;
        self.metrics.cursor_stores.fetch_add(1, Relaxed);
        Ok(())
    }

    fn update_lag(&self) {
        let now = crate::clock::now_ns();
        let mut per_core: BTreeMap<u32, CoreLag> = BTreeMap::new();
        for s in &self.streams {
            let l = per_core.entry(s.core).or_insert(CoreLag {
                core: s.core,
                ..CoreLag::default()
            });
            l.records += s.committed.saturating_sub(s.cursor());
            if let Some(ts) = s.oldest_ts() {
                l.seconds = l.seconds.max(now.saturating_sub(ts) as f64 / 1e9);
            }
        }
        if let Ok(mut lag) = self.metrics.lag.lock() {
            *lag = per_core.into_values().collect();
        }
    }
}

/// The S3 sink's side of the segment walk: each record into its (stream, window) spool file.
impl RecordSink for Lake {
    fn checkpoint(&mut self, marks: &[Watermark]) -> bool {
        let mut have_all = true;
        for m in marks {
            let i = self.stream(m.core, m.seed);
            let s = &mut self.streams[i];
            s.committed = s.committed.max(m.next_seq);
            have_all &= s.next_read >= m.next_seq;
        }
        have_all
    }

    fn next_seq(&mut self, core: u32, seed: u64) -> u64 {
        let i = self.stream(core, seed);
        self.streams[i].next_read
    }

    fn record(
        &mut self,
        rec: &RecordView<'_>,
        seed: u64,
        origin: Option<&Origin>,
        _stop: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        let window = u64::try_from(self.opts.window.as_nanos()).unwrap_or(u64::MAX);
        let i = self.stream(u32::from(rec.core()), seed);
        let s = &mut self.streams[i];
        if let Some(o) = origin {
            s.instance.clone_from(&o.id_hex);
        }
        let start = rec.ts_ns() - rec.ts_ns() % window;
        if !s.open.contains_key(&start) {
            let path = self.spool.join(format!(
                "{}-{}-{:016x}-{}.parquet",
                s.instance,
                s.core,
                s.seed,
                rec.seq()
            ));
            let file =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let writer = ParquetWriter::new(
                BufWriter::with_capacity(1 << 20, file),
                &self.selection,
                self.agents.clone(),
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
            s.open.insert(
                start,
                Spool {
                    writer,
                    path,
                    first_seq: rec.seq(),
                    first_ts: rec.ts_ns(),
                },
            );
        }
        let spool = s.open.get_mut(&start).expect("inserted above");
        spool
            .writer
            .write(rec, origin)
            .map_err(|e| format!("{}: {e}", spool.path.display()))?;
        s.next_read = rec.seqs().end; // a record may take several slots, each a seq
        self.metrics.spooled.fetch_add(1, Relaxed);
        Ok(())
    }
}
