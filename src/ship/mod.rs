//! `glint ship`: delivers every record of a data dir to a Kafka topic, in order per
//! (instance, core), nothing lost and every duplicate recognisable by its key; or, with
//! `--to s3://BUCKET/PREFIX`, as hourly Parquet objects to object storage ([`lake`]).
//!
//! A separate process, like the compactor, so the server's hot path never waits on the
//! network. Both sinks read the segments the compactor has committed through one walker
//! ([`segments`]) and keep one cursor ([`cursor`]). The Kafka sink ([`shipper`]) produces each
//! record through librdkafka's idempotent producer with `acks=all` ([`kafka`]), and moves a
//! durable cursor ([`cursor`]) only past records whose delivery reports say the brokers have
//! them. Message key: `INSTANCE_ID:CORE:SEQ` (the segment's instance identity, 32 hex
//! digits); value: the JSON object `glint decode` prints
//! (or, with `--value-format record`, the record's stored bytes). No message headers: one
//! per message cost 15 % of the shipper's CPU, and the value's form is the topic's setting.
//!
//! # Guarantees
//! - Nothing acknowledged by the server is lost: records stay in segments until the cursor
//!   has passed them (compactor retention checks [`cursor::ShipCursor::covers`]), and a
//!   record is never given up on (`message.timeout.ms=0`): while the brokers are down,
//!   records wait on disk and the shipper retries with back-off.
//! - Duplicates only after a kill, at most `--max-in-flight` of them: no more than that many
//!   records are ever produced past the durable cursor, and a restart resumes at the cursor.
//!   Each carries the same key as its first copy.
//! - A delivery report without an offset does not move the cursor: librdkafka calls a retried
//!   batch delivered when the broker answers "duplicate sequence number", with no offset, and a
//!   broker can say so for a batch it does not hold (Tansu after a restart). Such records are
//!   produced again (`glint_ship_delivery_errors_total{kind="unconfirmed"}`); if the broker did
//!   hold them, the topic gets a duplicate with the same key ([`kafka::OffsetlessRuns`]).
//! - A record larger than the brokers accept is written to `DATA_DIR/ship-dead-letter.jsonl`,
//!   logged and counted (`glint_ship_delivery_errors_total{kind="too_large"}`), then passed:
//!   one oversized record does not stop the pipeline, and none vanishes silently.
//!
//! Modules:
//! - [`cursor`]: `DATA_DIR/ship-cursor.json`: where each stream stopped.
//! - [`kafka`]: librdkafka's producer with glint's fixed safety settings.
//! - [`lake`]: `--to s3://`: closed time windows as Parquet objects.
//! - [`metrics`]: the shipper's counters on `--admin-listen`.
//! - [`segments`]: the segment walk both sinks ship from.
//! - [`settings`]: the librdkafka settings a user may pass and the fixed ones.
//! - [`shipper`]: the Kafka ship loop.

pub mod cursor;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lake;
pub mod metrics;
pub mod segments;
pub mod settings;
#[cfg(feature = "kafka")]
pub mod shipper;

use crate::server::admin::{spawn_admin, AdminPage};
use metrics::LakeMetrics;
#[cfg(feature = "kafka")]
use metrics::ShipMetrics;
#[cfg(feature = "kafka")]
use shipper::{ShipOptions, Shipper};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The message value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueFormat {
    /// The JSON object `glint decode` prints for the record (default fields).
    Json,
    /// The record's stored bytes (layout in the `record` module docs), smaller and cheaper.
    Record,
}

/// Compression of message batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Lz4,
    Zstd,
    None,
}

/// Options of `glint ship`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ShipArgs {
    /// TOML file: the keys of its `[ship]` table are these long flags (`brokers = "k1:9092"`,
    /// `to = "s3://b/p"`), its `[ship.kafka]` table holds librdkafka settings (as --kafka-opt),
    /// its `[ship.s3]` table S3 client settings (as --s3-opt). Flags on the
    /// command line win. The server ignores the `[ship]` table, so one file can serve both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data dir whose segments are shipped (the compactor's output, DIR/segments/).
    #[arg(long, value_name = "DIR", default_value = "./glint-data")]
    pub data_dir: PathBuf,
    /// Ship to S3-compatible object storage instead of Kafka: each (--window) window's records
    /// as Parquet objects s3://BUCKET/PREFIX/dt=YYYY-MM-DD/hour=HH/INSTANCE-CORE-SEED-FIRSTSEQ.parquet
    /// (AWS S3, MinIO, SeaweedFS, Ceph RGW, R2, ...). Endpoint, region, credentials and
    /// addressing style come from the AWS_* environment variables and --s3-opt (see below).
    #[arg(long, value_name = "s3://BUCKET/PREFIX", conflicts_with_all = ["brokers", "topic"])]
    pub to: Option<String>,
    /// With --to: an S3 client setting, over the AWS_* environment: endpoint=URL (an
    /// S3-compatible server; AWS_ENDPOINT_URL), region=R (AWS_REGION), access_key_id=K and
    /// secret_access_key=S (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), session_token=T,
    /// allow_http=true (plain http endpoints), virtual_hosted_style_request=true
    /// (BUCKET.host addressing; the default is path-style host/BUCKET), role_arn=A with
    /// web_identity_token_file=F, server_side_encryption=aws:kms, sse_kms_key_id=K.
    /// Repeatable; also the [ship.s3] table of --config.
    #[arg(long = "s3-opt", value_name = "KEY=VALUE", value_parser = lake::parse_s3_opt)]
    pub s3_opts: Vec<(String, String)>,
    /// With --to: the time window of one object (by record time); whole seconds dividing an
    /// hour, so a window never spans two hour= partitions.
    #[arg(long, value_name = "DUR", default_value = "1h", value_parser = crate::clock::parse_duration)]
    pub window: Duration,
    /// With --to: how long after a window's end its object is written (records committed
    /// later still go in, as another object in the same partition).
    #[arg(long, value_name = "DUR", default_value = "1m", value_parser = crate::clock::parse_duration)]
    pub window_grace: Duration,
    /// With --to: objects larger than this go up as a multipart upload in parts of this size,
    /// read from the spool file part by part (memory: about 3 parts); at least 5 MiB.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub part_size: u64,
    /// Kafka: bootstrap brokers, comma-separated.
    #[arg(long, value_name = "HOST:PORT[,..]")]
    pub brokers: Option<String>,
    /// Kafka: the topic the records go to; it must exist.
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
    /// Kafka: a librdkafka setting passed through, e.g. security.protocol=ssl, ssl.ca.location=FILE,
    /// sasl.mechanisms=SCRAM-SHA-512, sasl.username=U, client.id=ID, message.max.bytes=N,
    /// linger.ms=N. Repeatable. enable.idempotence, acks and message.timeout.ms are fixed.
    #[arg(long = "kafka-opt", value_name = "KEY=VALUE", value_parser = settings::parse_kafka_opt)]
    pub kafka_opts: Vec<(String, String)>,
    /// Kafka: batch compression.
    #[arg(long, value_enum, default_value = "lz4")]
    pub compression: Compression,
    /// Kafka: message value, json (what `glint decode` prints) or record (stored bytes).
    #[arg(long, value_enum, default_value = "json")]
    pub value_format: ValueFormat,
    /// Kafka: records produced past the durable cursor at most; after a kill at most this many
    /// records reach the topic twice (same key).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_in_flight: u64,
    /// Kafka: how often the cursor is written while deliveries come in (ms, s). The S3 sink
    /// writes it after each completed upload.
    #[arg(long, value_name = "DUR", default_value = "200ms", value_parser = crate::clock::parse_duration)]
    pub cursor_interval: Duration,
    /// How often to look for newly committed records when caught up.
    #[arg(long, value_name = "DUR", default_value = "200ms", value_parser = crate::clock::parse_duration)]
    pub poll_interval: Duration,
    /// Kafka: at start, how long the brokers may take to answer before `glint ship` gives up with
    /// one line (exit 1).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = crate::clock::parse_duration)]
    pub connect_timeout: Duration,
    /// Kafka: on SIGTERM/SIGINT, how long to wait for records in flight before storing the
    /// cursor and exiting (unacknowledged records are shipped again on the next start). The S3
    /// sink finishes the upload under way and exits; spooled records are read again next time.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = crate::clock::parse_duration)]
    pub drain_timeout: Duration,
    /// Ship what is committed now, wait until the brokers (or the object store, open windows
    /// included) have all of it, exit.
    #[arg(long)]
    pub once: bool,
    /// Admin listener for Prometheus metrics (GET /metrics) and health, for either sink;
    /// `off` disables it.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9101")]
    pub admin_listen: String,
}

const AFTER_HELP: &str = "\
Runs next to `glint compact` on the same data dir and ships what the compactor has committed
(latency: about --interval of the compactor plus linger, or with --to the window plus
--window-grace). While a ship cursor exists (DATA_DIR/ship-cursor.json), compactor retention
never deletes a segment not yet shipped; delete the cursor file when you stop shipping for good.

Object storage (--to s3://BUCKET/PREFIX): records are spooled per window in
DATA_DIR/ship-spool/ and uploaded once the window's end plus --window-grace has passed (with
--once: everything, open windows too); the cursor moves after the upload completed. The object
name depends only on its records, so a retry after a crash overwrites the same object; records
of a window already uploaded (late ones) become another object in the same partition. S3
settings, each an environment variable or --s3-opt KEY=VALUE (the flag wins):
  AWS_ENDPOINT_URL / endpoint=URL     S3-compatible server, e.g. http://127.0.0.1:8333
  AWS_REGION / region=R               region (us-east-1 when unset)
  AWS_ACCESS_KEY_ID / access_key_id, AWS_SECRET_ACCESS_KEY / secret_access_key,
  AWS_SESSION_TOKEN / session_token   static credentials; without them: web identity
                                      (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the ECS
                                      container or EC2 instance metadata. ~/.aws files are
                                      not read.
  AWS_ALLOW_HTTP=true / allow_http    allow a plain http:// endpoint
  AWS_VIRTUAL_HOSTED_STYLE_REQUEST / virtual_hosted_style_request=true
                                      BUCKET.endpoint addressing (default: path-style)
A multipart upload cut short by a kill stays in the bucket, unfinished and invisible, until a
lifecycle rule (AbortIncompleteMultipartUpload) removes it; see docs/analytics.md.

Exit status: 0 after a clean stop (or --once), 1 on a bad setting, unreachable brokers or an
unknown topic at start (one line on stderr), or a fatal producer error.";

/// What `glint ship` says when this glint was built without the `kafka` cargo feature.
pub const NO_KAFKA: &str = "glint ship: this glint was built without Kafka support (cargo feature `kafka` off, e.g. `--no-default-features`); rebuild with the default features to ship records";

/// Runs `glint ship`: to object storage with `--to`, else to Kafka.
pub fn run(args: ShipArgs) -> Result<ExitCode, crate::BoxError> {
    let args = match &args.config {
        Some(path) => with_config_file(path)?,
        None => args,
    };
    if args.to.is_some() {
        return run_lake(args);
    }
    run_kafka(args)
}

/// The S3 target of `--to`, after checking `--window` and `--part-size` (also `glint doctor`).
pub fn check_lake_args(args: &ShipArgs) -> Result<lake::Target, String> {
    let target = lake::Target::parse(args.to.as_deref().unwrap_or_default())?;
    lake::check_window(args.window)?;
    if args.part_size < lake::MIN_PART_SIZE {
        return Err(format!(
            "--part-size {}: at least {} (S3's smallest part)",
            args.part_size,
            lake::MIN_PART_SIZE
        ));
    }
    Ok(target)
}

/// `glint ship --to s3://...`.
fn run_lake(args: ShipArgs) -> Result<ExitCode, crate::BoxError> {
    let target = check_lake_args(&args)?;
    if !args.data_dir.is_dir() {
        return Err(format!("{}: not a directory (--data-dir)", args.data_dir.display()).into());
    }
    let _lock = lock_data_dir(&args.data_dir)?;
    let opts = lake::LakeOptions {
        data_dir: args.data_dir.clone(),
        target: target.clone(),
        window: args.window,
        grace: args.window_grace,
        part_size: args.part_size,
        poll_interval: args.poll_interval,
        instance: instance_id(&args.data_dir)?,
    };
    let store = lake::store::store(&target, &args.s3_opts)?;
    let metrics = Arc::new(LakeMetrics::default());
    let m = metrics.clone();
    let admin = start_admin(&args.admin_listen, move |out: &mut String| m.render(out))?;
    let mut sink = lake::Lake::new(opts, store, metrics)?;
    crate::info!(
        "ship: {} -> s3://{}/{} every {:?} window (+{:?} grace){}",
        args.data_dir.display(),
        target.bucket,
        target.prefix,
        args.window,
        args.window_grace,
        if args.once { " (once)" } else { "" }
    );
    let stop = if args.once {
        None
    } else {
        Some(crate::compact::stop_signal()?)
    };
    let stopped = std::cell::Cell::new(false);
    let should_stop = || {
        stopped.get()
            || stop.as_ref().is_some_and(|rx| {
                let got = rx.try_recv().is_ok();
                if got {
                    stopped.set(true);
                }
                got
            })
    };
    let result = sink.run(&should_stop, args.once);
    stop_admin(admin);
    result?;
    crate::info!(
        "ship: stopped; {} objects with {} records uploaded this run",
        sink.uploaded.0,
        sink.uploaded.1
    );
    Ok(ExitCode::SUCCESS)
}

/// Built without the `kafka` feature: says so (exit 1).
#[cfg(not(feature = "kafka"))]
fn run_kafka(_args: ShipArgs) -> Result<ExitCode, crate::BoxError> {
    Err(NO_KAFKA.into())
}

/// `glint ship --brokers ... --topic ...`.
#[cfg(feature = "kafka")]
fn run_kafka(args: ShipArgs) -> Result<ExitCode, crate::BoxError> {
    let (Some(brokers), Some(topic)) = (args.brokers.clone(), args.topic.clone()) else {
        return Err("--brokers and --topic are required (or `brokers` and `topic` in the [ship] table of --config)".into());
    };
    if !args.data_dir.is_dir() {
        return Err(format!("{}: not a directory (--data-dir)", args.data_dir.display()).into());
    }
    let _lock = lock_data_dir(&args.data_dir)?;
    let compression = match args.compression {
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
        Compression::None => "none",
    };
    let queue = usize::try_from(args.max_in_flight)
        .unwrap_or(usize::MAX)
        .saturating_add(1000);
    let cfg = kafka::client_config(&brokers, compression, queue, &args.kafka_opts)?;
    let producer = kafka::connect(&cfg, &topic, args.connect_timeout)?;
    let metrics = Arc::new(ShipMetrics::default());
    let m = metrics.clone();
    let admin = start_admin(&args.admin_listen, move |out: &mut String| m.render(out))?;
    let opts = ShipOptions {
        data_dir: args.data_dir.clone(),
        topic: topic.clone(),
        value_format: args.value_format,
        max_in_flight: args.max_in_flight,
        cursor_interval: args.cursor_interval,
        poll_interval: args.poll_interval,
        instance: instance_id(&args.data_dir)?,
    };
    let mut shipper = Shipper::new(opts, producer, metrics.clone())?;
    crate::info!(
        "ship: {} -> topic {topic} on {brokers}; at most {} records past the cursor (the duplicate bound after a kill){}",
        args.data_dir.display(),
        args.max_in_flight,
        if args.once { " (once)" } else { "" }
    );
    let stop = if args.once {
        None
    } else {
        Some(crate::compact::stop_signal()?)
    };
    let stopped = AtomicBool::new(false);
    let should_stop = || {
        stopped.load(Relaxed)
            || stop.as_ref().is_some_and(|rx| {
                let got = rx.try_recv().is_ok();
                if got {
                    stopped.store(true, Relaxed);
                }
                got
            })
    };
    let result = shipper.run(&should_stop, args.once, args.drain_timeout);
    stop_admin(admin);
    result?;
    crate::info!(
        "ship: stopped; {} records acknowledged this run",
        metrics.records_shipped.load(Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}

/// The data dir's instance id (hex), for records of segments without an identity; `-` when
/// the data dir has none either.
pub fn instance_id(data_dir: &Path) -> Result<String, String> {
    match crate::instance::load(data_dir) {
        Ok(Some(id)) => Ok(id.id_hex()),
        Ok(None) => Ok("-".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// One shipper per data dir: `DATA_DIR/.ship.lock`, held while it runs.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, String> {
    let path = data_dir.join(".ship.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match crate::sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(format!(
            "{}: another glint ship is running on this data dir",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The admin page of the shipper: either sink's metrics.
struct ShipPage {
    render: Box<dyn Fn(&mut String) + Send + Sync>,
    stop: AtomicBool,
}

impl AdminPage for ShipPage {
    fn render_metrics(&self, out: &mut String) {
        (self.render)(out);
    }
    fn draining(&self) -> bool {
        false
    }
    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }
    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

type Admin = (Arc<ShipPage>, std::thread::JoinHandle<()>);

fn start_admin(
    listen: &str,
    render: impl Fn(&mut String) + Send + Sync + 'static,
) -> Result<Option<Admin>, String> {
    if listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| format!("--admin-listen {listen:?}: expected ADDR:PORT or off"))?;
    let page = Arc::new(ShipPage {
        render: Box::new(render),
        stop: AtomicBool::new(false),
    });
    let (bound, handle) = spawn_admin(addr, page.clone())
        .map_err(|e| format!("{e} (pick another address with --admin-listen, or off)"))?;
    crate::info!("ship: admin listening on {bound} (GET /metrics)");
    Ok(Some((page, handle)))
}

fn stop_admin(admin: Option<Admin>) {
    if let Some((page, handle)) = admin {
        page.stop.store(true, Relaxed);
        let _ = handle.join();
    }
}

/// Re-reads the command line with the config file's `[ship]` flags in front of it.
fn with_config_file(path: &Path) -> Result<ShipArgs, String> {
    let flags = config_flags(path)?;
    let cli = crate::config_file::command_line_after("ship");
    crate::config_file::parse_args(
        "glint ship",
        path,
        &flags,
        &cli,
        &["--kafka-opt", "--s3-opt"],
    )
}

/// The flag words of a config file's `[ship]` table and `[ship.kafka]` settings.
pub fn config_flags(path: &Path) -> Result<Vec<OsString>, String> {
    let table = crate::config_file::read_table(path)?;
    let Some(toml::Value::Table(ship)) = table.get("ship").cloned() else {
        return Err(format!("config {}: no [ship] table", path.display()));
    };
    let mut flags = Vec::new();
    for (key, value) in ship {
        match (key.as_str(), value) {
            ("s3", toml::Value::Table(s3)) => {
                for (k, v) in s3 {
                    let v = match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    flags.extend([OsString::from("--s3-opt"), format!("{k}={v}").into()]);
                }
            }
            ("kafka", toml::Value::Table(kafka)) => {
                for (k, v) in kafka {
                    let v = match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    flags.extend([OsString::from("--kafka-opt"), format!("{k}={v}").into()]);
                }
            }
            ("config", _) => return Err(crate::config_file::nested_config(path)),
            (_, value) => crate::config_file::key_flags(path, &key, value, &mut flags)?,
        }
    }
    Ok(flags)
}
