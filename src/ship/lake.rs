//! `glint ship --to s3://BUCKET/PREFIX`: the records of each closed time window as Parquet
//! objects in S3-compatible object storage, Hive-partitioned by day and hour.
//!
//! Same reading and cursor discipline as the Kafka sink: committed segment records in order,
//! one durable cursor per ring stream (`DATA_DIR/ship-cursor.json`), moved only past records
//! whose object the store has confirmed. Records are spooled per (stream, window) into a
//! Parquet file under `DATA_DIR/ship-spool/` (the decoder's writer and schema); once a window
//! is closed (its end plus `--window-grace` has passed, or `--once`) the file is uploaded as
//!
//! `PREFIX/dt=YYYY-MM-DD/hour=HH/INSTANCE-CORE-SEED-FIRSTSEQ.parquet`
//!
//! (SEED: the ring's seed, 16 hex digits; FIRSTSEQ: the stream's first seq in the object), in
//! one PUT, or as a multipart upload in `--part-size` parts when larger. The name depends only
//! on the records, so after a kill the same records are uploaded again under the same name and
//! overwrite the first copy: no duplicate. Records of a window already uploaded (late ones)
//! start a new object in the same partition, named by their own first seq. While the store is
//! unreachable the spool files wait and are retried with back-off; the cursor does not move,
//! so compactor retention keeps the segments.

use super::cursor::ShipCursor;
use crate::compact::segment::{list_segments, SegmentReader, Watermark};
use crate::decode::columns::Selection;
use crate::decode::parquet::ParquetWriter;
use crate::decode::source::Origin;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::collections::{BTreeMap, HashMap};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The spool folder's name inside the data dir.
pub const SPOOL_DIR: &str = "ship-spool";
/// Smallest multipart part S3 accepts (but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Longest wait between two tries of a failed upload.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `s3://BUCKET/PREFIX` split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("--to {url:?}: expected s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("--to {url:?}: no bucket"));
        }
        Ok(Target {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// What the S3 sink does, from the command line.
#[derive(Debug, Clone)]
pub struct LakeOptions {
    pub data_dir: PathBuf,
    pub target: Target,
    /// `KEY=VALUE` settings of object_store's S3 client (over the `AWS_*` environment).
    pub s3_opts: Vec<(String, String)>,
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

/// The S3 client: `AWS_*` environment variables, then the `--s3-opt` settings.
pub fn store(opts: &LakeOptions) -> Result<Arc<dyn ObjectStore>, String> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(&opts.target.bucket);
    for (k, v) in &opts.s3_opts {
        let key = k
            .parse()
            .map_err(|e| format!("--s3-opt {k}: not an S3 setting ({e})"))?;
        b = b.with_config(key, v);
    }
    b.build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("S3 settings: {e}"))
}

/// Parses `--s3-opt KEY=VALUE`.
pub fn parse_s3_opt(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))?;
    let _: object_store::aws::AmazonS3ConfigKey = k
        .parse()
        .map_err(|e| format!("{k}: not an S3 setting ({e})"))?;
    Ok((k.to_string(), v.to_string()))
}

/// One (stream, window) spool file.
struct Spool {
    writer: ParquetWriter<BufWriter<std::fs::File>>,
    path: PathBuf,
    first_seq: u64,
}

/// One ring stream (core, seed).
struct Stream {
    core: u32,
    seed: u64,
    /// Next seq to read from the segments.
    next_read: u64,
    /// Value in the durable cursor.
    durable: u64,
    /// Open spools by window start (ns).
    open: BTreeMap<u64, Spool>,
    /// Finished spool files waiting for their upload, by first seq: (window start, file,
    /// records).
    ready: BTreeMap<u64, (u64, PathBuf, u64)>,
    instance: String,
}

impl Stream {
    fn cursor(&self) -> u64 {
        self.open
            .values()
            .map(|s| s.first_seq)
            .chain(self.ready.keys().copied())
            .min()
            .unwrap_or(self.next_read)
    }
}

/// The S3 sink's state.
pub struct Lake {
    opts: LakeOptions,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    streams: Vec<Stream>,
    by_ring: HashMap<(u32, u64), usize>,
    position: Option<(String, usize)>,
    selection: Selection,
    agents: Arc<crate::agent::Classifier>,
    spool: PathBuf,
    failures: u32,
    retry_at: Option<Instant>,
    /// Objects and records uploaded in this run.
    pub uploaded: (u64, u64),
}

impl Lake {
    pub fn new(opts: LakeOptions, store: Arc<dyn ObjectStore>) -> Result<Lake, String> {
        let cursor = match ShipCursor::load(&opts.data_dir)? {
            Some(c) => c,
            None => {
                let c = ShipCursor {
                    instance: opts.instance.clone(),
                    ..ShipCursor::default()
                };
                c.store(&opts.data_dir).map_err(|e| {
                    format!(
                        "{}: cannot create the ship cursor: {e}",
                        super::cursor::cursor_path(&opts.data_dir).display()
                    )
                })?;
                c
            }
        };
        // Spool files of an earlier run are not uploaded: their records are read again from
        // the cursor and land under the same names.
        let spool = opts.data_dir.join(SPOOL_DIR);
        let _ = std::fs::remove_dir_all(&spool);
        std::fs::create_dir_all(&spool).map_err(|e| format!("{}: {e}", spool.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("ship: cannot start the S3 client's runtime: {e}"))?;
        let mut lake = Lake {
            selection: Selection::new(None, false)?,
            agents: Arc::new(crate::agent::Classifier::builtin()),
            opts,
            store,
            rt,
            streams: Vec::new(),
            by_ring: HashMap::new(),
            position: None,
            spool,
            failures: 0,
            retry_at: None,
            uploaded: (0, 0),
        };
        for (&(core, seed), &next) in &cursor.streams {
            let i = lake.stream(core, seed);
            lake.streams[i].next_read = next;
            lake.streams[i].durable = next;
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
            durable: 0,
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
        let segments = list_segments(&self.opts.data_dir)
            .map_err(|e| format!("{}/segments: {e}", self.opts.data_dir.display()))?;
        let mut read = 0;
        for path in segments {
            let stem = segment_stem(&path);
            let resume = match &self.position {
                Some((done, _)) if stem < *done => continue,
                Some((done, blocks)) if stem == *done => Some(*blocks),
                _ => None,
            };
            let mut reader = match SegmentReader::open(&path) {
                Ok(r) => r,
                Err(_) if !path.exists() => return Ok(read),
                Err(e) => {
                    crate::error!("ship: {e}; nothing after it is shipped until it reads cleanly");
                    return Ok(read);
                }
            };
            let checkpoint: Vec<Watermark> = match reader.checkpoint() {
                Ok(c) => c,
                Err(e) => {
                    crate::error!("ship: {e}; nothing after it is shipped until it reads cleanly");
                    return Ok(read);
                }
            };
            reader.seek_block(resume.unwrap_or(0));
            let origin = reader.identity().map(|id| Origin {
                name: id.name().to_string(),
                id_hex: id.id_hex(),
            });
            let seeds: BTreeMap<u32, u64> = checkpoint.iter().map(|m| (m.core, m.seed)).collect();
            let window = u64::try_from(self.opts.window.as_nanos()).unwrap_or(u64::MAX);
            loop {
                let rec = match reader.next_record() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        crate::error!(
                            "ship: {e}; nothing after it is shipped until it reads cleanly"
                        );
                        return Ok(read);
                    }
                };
                let core = u32::from(rec.core());
                let seed = seeds.get(&core).copied().unwrap_or(0);
                let i = match self.by_ring.get(&(core, seed)) {
                    Some(&i) => i,
                    None => self.stream(core, seed),
                };
                let s = &mut self.streams[i];
                if rec.seq() < s.next_read {
                    continue;
                }
                if let Some(o) = &origin {
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
                    let file = std::fs::File::create(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
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
                        },
                    );
                }
                let spool = s.open.get_mut(&start).expect("inserted above");
                spool
                    .writer
                    .write(&rec, origin.as_ref())
                    .map_err(|e| format!("{}: {e}", spool.path.display()))?;
                s.next_read = rec.seq() + 1;
                read += 1;
                if stop() {
                    return Ok(read);
                }
            }
            self.position = Some((stem, reader.block_count()));
        }
        Ok(read)
    }

    /// Uploads the spools of closed windows (all with `all`); true when none is left that
    /// was due. Stores the cursor after each success.
    fn upload_due(&mut self, all: bool, stop: &dyn Fn() -> bool) -> Result<bool, String> {
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
            for start in due {
                let spool = s.open.remove(&start).expect("listed above");
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
                s.ready.insert(spool.first_seq, (start, path, records));
            }
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        for i in 0..self.streams.len() {
            while let Some((&first, (start, path, records))) =
                self.streams[i].ready.first_key_value()
            {
                if stop() {
                    return Ok(false);
                }
                let (start, path, records) = (*start, path.clone(), *records);
                let key = object_key(&self.opts.target.prefix, start, &path);
                match self.upload(&path, &key) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&path);
                        self.streams[i].ready.remove(&first);
                        self.uploaded.0 += 1;
                        self.uploaded.1 += records;
                        if self.failures > 0 {
                            crate::info!("ship: the object store answers again");
                        }
                        self.failures = 0;
                        self.retry_at = None;
                        self.store_cursor()?;
                    }
                    Err(e) => {
                        self.failures += 1;
                        if self.failures == 1 {
                            crate::warn!("ship: upload of {key} failed ({e}); retrying with back-off, the cursor waits");
                        }
                        let backoff = Duration::from_millis(100)
                            .saturating_mul(1 << self.failures.min(6))
                            .min(MAX_BACKOFF);
                        self.retry_at = Some(Instant::now() + backoff);
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// PUT, or a multipart upload in `part_size` parts for a larger file.
    fn upload(&self, path: &Path, key: &ObjectPath) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let part = usize::try_from(self.opts.part_size).unwrap_or(usize::MAX);
        let store = self.store.clone();
        self.rt
            .block_on(async move {
                if bytes.len() <= part {
                    store.put(key, bytes.into()).await.map(|_| ())
                } else {
                    let upload = store.put_multipart(key).await?;
                    let mut w = WriteMultipart::new_with_chunk_size(upload, part);
                    for chunk in bytes.chunks(part) {
                        w.wait_for_capacity(2).await?;
                        w.write(chunk);
                    }
                    w.finish().await.map(|_| ())
                }
            })
            .map_err(|e| e.to_string())
    }

    fn store_cursor(&mut self) -> Result<(), String> {
        let mut cursor = ShipCursor {
            instance: self.opts.instance.clone(),
            ..ShipCursor::default()
        };
        for s in &mut self.streams {
            s.durable = s.cursor();
            cursor.streams.insert((s.core, s.seed), s.durable);
        }
        cursor.store(&self.opts.data_dir).map_err(|e| {
            format!(
                "{}: cannot store the ship cursor: {e}",
                super::cursor::cursor_path(&self.opts.data_dir).display()
            )
        })
    }
}

/// `PREFIX/dt=YYYY-MM-DD/hour=HH/NAME` for a window starting at `start_ns`.
pub fn object_key(prefix: &str, start_ns: u64, spool: &Path) -> ObjectPath {
    let secs = start_ns / 1_000_000_000;
    let days = secs / 86_400;
    let (y, m, d) = crate::clock::civil_from_days(days as i64);
    let hour = secs % 86_400 / 3600;
    let name = spool.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let part = format!("dt={y:04}-{m:02}-{d:02}/hour={hour:02}/{name}");
    if prefix.is_empty() {
        ObjectPath::from(part)
    } else {
        ObjectPath::from(format!("{prefix}/{part}"))
    }
}

fn segment_stem(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split(".gls").next().unwrap_or(name).to_string()
}
