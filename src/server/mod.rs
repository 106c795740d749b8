//! `glint serve`: one pinned worker per CPU, each with its own listeners, runtime and ring.
//!
//! Start-up binds every listener and recovers every ring before any worker runs, so a bad flag,
//! a busy port or an unusable data dir fails at once with one clear line. Shutdown on SIGTERM or
//! SIGINT: health checks answer 503 for `--drain-delay`, listeners close, requests already read
//! are answered, rings are synced, exit 0.

pub mod core;
pub mod epoll;
pub mod listener;
pub mod stats;
pub mod uring;

use self::core::{CoreState, ResponseKind, ServeConfig};
use self::stats::CoreStats;
use crate::clock::{parse_duration, HttpDate};
use crate::http::parse::{Limits, HEADERS_CAP};
use crate::ring::{ring_file_name, RingOptions, RingWriter};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// I/O backend choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IoBackend {
    /// io_uring if this kernel and process allow it, else epoll (with a log line saying why).
    Auto,
    /// io_uring only; fail at start if unavailable.
    Uring,
    /// A tokio current-thread runtime (epoll) per core.
    Epoll,
}

/// When ring records are made durable against power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// msync each batch's records before its answers are sent.
    Always,
    /// fdatasync every ring each --sync-interval (a process crash loses nothing either way).
    Interval,
}

/// Options of `glint serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; repeat for several. Every worker binds each one with SO_REUSEPORT.
    #[arg(long = "listen", value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub listen: Vec<SocketAddr>,
    /// Directory for the per-core ring files (created if missing).
    #[arg(long, value_name = "DIR", default_value = "./glint-data")]
    pub data_dir: PathBuf,
    /// Worker threads, one pinned per CPU [default: the CPUs this process may use].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// I/O backend.
    #[arg(long, value_enum, default_value_t = IoBackend::Auto)]
    pub io: IoBackend,
    /// Bytes per ring slot (one record): a power of two from 256 to 4096. Fixed per ring file.
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    pub slot_size: usize,
    /// Slots per ring (a power of two). Each core's ring file is slot-size x ring-slots + 4 KiB, preallocated.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub ring_slots: u64,
    /// With --sync interval, how often rings are flushed to disk: bounds what a power loss can take.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub sync_interval: Duration,
    /// Durability mode against power loss.
    #[arg(long, value_enum, default_value_t = SyncMode::Interval)]
    pub sync: SyncMode,
    /// Answer to GET and HEAD beacons: the 43-byte GIF or 204 No Content.
    #[arg(long, value_enum, default_value_t = ResponseKind::Gif)]
    pub response: ResponseKind,
    /// Listen backlog (capped by net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub backlog: i32,
    /// Largest request head (request line plus headers) in bytes; larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = 8192)]
    pub max_head_size: usize,
    /// Most header fields in one request; more gets 431.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_headers: usize,
    /// Longest request target in bytes; longer gets 414.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub max_target: usize,
    /// Largest request body in bytes; larger gets 413. Bodies are stored up to the slot's room.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_body: u64,
    /// Requests served on one connection before it is closed.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_requests_per_conn: u64,
    /// Open connections per worker; beyond it new connections are closed at once and counted.
    #[arg(long, value_name = "N", default_value_t = 65_536)]
    pub max_conns: usize,
    /// Path answered 200 (503 while draining) without writing a record, for load balancer checks.
    #[arg(long, value_name = "PATH", default_value = "/healthz")]
    pub health_path: String,
    /// On shutdown, how long health checks answer 503 before the listeners close.
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = parse_duration)]
    pub drain_delay: Duration,
    /// On shutdown, how long open connections may take to finish after the listeners close.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Shutdown phases, broadcast from the main thread to every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Health checks answer 503; answers carry `Connection: close`.
    Draining,
    /// Listeners close; idle connections close; busy ones finish within the drain timeout.
    Closing,
}

/// Everything one worker thread needs; moved into the thread.
pub struct Worker {
    pub core: CoreState,
    pub listeners: Vec<TcpListener>,
    pub phase: watch::Receiver<Phase>,
    pub drain_timeout: Duration,
    pub max_conns: usize,
}

/// Runs `glint serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<ExitCode, crate::BoxError> {
    let cfg = Arc::new(config(&args)?);
    let cpus = crate::sys::allowed_cpus();
    let threads = args.threads.unwrap_or(cpus.len()).max(1);
    let backend = choose_backend(args.io)?;
    let _lock = lock_data_dir(&args.data_dir)?;
    let listeners = listener::bind_all(&args.listen, threads, args.backlog)?;
    let addrs: Vec<String> = listeners[0]
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let mut workers = Vec::with_capacity(threads);
    let mut sync_files = Vec::with_capacity(threads);
    let mut all_stats = Vec::with_capacity(threads);
    for (id, listeners) in listeners.into_iter().enumerate() {
        let core = open_core(id, &args, &cfg)?;
        sync_files.push((core.ring.path().to_path_buf(), core.ring.sync_handle()?));
        all_stats.push(core.stats.clone());
        workers.push(Worker {
            core,
            listeners,
            phase: phase_rx.clone(),
            drain_timeout: args.drain_timeout,
            max_conns: args.max_conns,
        });
    }
    crate::info!(
        "listening on {} with {threads} workers, io {}, data dir {}",
        addrs.join(", "),
        if backend == IoBackend::Uring {
            "uring"
        } else {
            "epoll"
        },
        args.data_dir.display()
    );
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<(usize, Result<(), String>)>();
    let mut handles = Vec::with_capacity(threads);
    for (id, worker) in workers.into_iter().enumerate() {
        let cpu = cpus.get(id % cpus.len().max(1)).copied();
        let done_tx = done_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("glint-core-{id}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = crate::sys::pin_to_cpu(cpu) {
                        crate::warn!("worker {id}: cannot pin to cpu {cpu}: {e}");
                    }
                }
                let result = match backend {
                    IoBackend::Uring => uring::run(worker),
                    _ => epoll::run(worker),
                };
                let _ = done_tx.send((id, result.map_err(|e| e.to_string())));
            })?;
        handles.push(handle);
    }
    drop(done_tx);
    crate::notify::ready();
    let syncer = (args.sync == SyncMode::Interval)
        .then(|| spawn_syncer(sync_files_clone(&sync_files), args.sync_interval));
    let failed = wait_for_shutdown(&phase_tx, &mut done_rx, args.drain_delay)?;
    for handle in handles {
        let _ = handle.join();
    }
    while let Ok((id, result)) = done_rx.try_recv() {
        if let Err(e) = result {
            crate::error!("worker {id}: {e}");
        }
    }
    if let Some((stop, handle)) = syncer {
        drop(stop);
        let _ = handle.join();
    }
    let mut sync_failed = false;
    for (path, file) in &sync_files {
        if let Err(e) = file.sync_data() {
            crate::error!("{}: final sync failed: {e}", path.display());
            sync_failed = true;
        }
    }
    let records: u64 = all_stats
        .iter()
        .map(|s| s.records.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    crate::info!("stopped: {records} records written this run");
    Ok(if failed.is_some() || sync_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn config(args: &ServeArgs) -> Result<ServeConfig, String> {
    crate::ring::format::check_geometry(args.slot_size, args.ring_slots)
        .map_err(|e| e.to_string())?;
    if args.listen.is_empty() {
        return Err("at least one --listen address is needed".into());
    }
    if args.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    if !(1..=HEADERS_CAP).contains(&args.max_headers) {
        return Err(format!("--max-headers must be from 1 to {HEADERS_CAP}"));
    }
    if args.max_head_size < 256 || args.max_head_size > 1 << 20 {
        return Err("--max-head-size must be from 256 bytes to 1 MiB".into());
    }
    if !args.health_path.starts_with('/') {
        return Err(format!(
            "--health-path {:?} must start with /",
            args.health_path
        ));
    }
    Ok(ServeConfig {
        limits: Limits {
            max_head: args.max_head_size,
            max_headers: args.max_headers,
            max_target: args.max_target.min(args.max_head_size),
            max_body: args.max_body,
        },
        slot_size: args.slot_size,
        response: args.response,
        health_path: args.health_path.clone(),
        max_requests_per_conn: args.max_requests_per_conn.max(1),
        sync_always: args.sync == SyncMode::Always,
    })
}

fn choose_backend(asked: IoBackend) -> Result<IoBackend, String> {
    match (asked, uring::probe()) {
        (IoBackend::Epoll, _) => Ok(IoBackend::Epoll),
        (_, Ok(())) => Ok(IoBackend::Uring),
        (IoBackend::Uring, Err(why)) => Err(format!("--io uring: {why}")),
        (IoBackend::Auto, Err(why)) => {
            crate::info!("io_uring unavailable ({why}); using epoll");
            Ok(IoBackend::Epoll)
        }
    }
}

/// Creates the data dir if needed and locks it so two servers never share rings.
fn lock_data_dir(dir: &Path) -> Result<File, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("data dir {}: cannot create: {e}", dir.display()))?;
    let lock_path = dir.join(".serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("data dir {}: not writable: {e}", dir.display()))?;
    match crate::sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(format!(
            "data dir {} is in use by another glint serve",
            dir.display()
        )),
        Err(e) => Err(format!(
            "data dir {}: cannot lock {}: {e}",
            dir.display(),
            lock_path.display()
        )),
    }
}

fn open_core(
    id: usize,
    args: &ServeArgs,
    cfg: &Arc<ServeConfig>,
) -> Result<CoreState, crate::BoxError> {
    let path = args.data_dir.join(ring_file_name(id));
    let opts = RingOptions {
        slot_size: args.slot_size,
        capacity: args.ring_slots,
        core: id as u32,
    };
    let (ring, rec) = RingWriter::open(&path, opts)?;
    if rec.created {
        crate::info!(
            "{}: created ({} slots of {} bytes)",
            path.display(),
            args.ring_slots,
            args.slot_size
        );
    } else {
        crate::info!(
            "{}: recovered, {} records not yet compacted, resuming at seq {}{}",
            path.display(),
            rec.pending,
            rec.next_seq,
            if rec.torn > 0 {
                format!(", zeroed {} torn slots", rec.torn)
            } else {
                String::new()
            }
        );
    }
    Ok(CoreState {
        id: id as u16,
        ring,
        date: HttpDate::default(),
        cfg: cfg.clone(),
        stats: Arc::new(CoreStats::default()),
        draining: false,
    })
}

fn sync_files_clone(files: &[(PathBuf, File)]) -> Vec<(PathBuf, File)> {
    files
        .iter()
        .filter_map(|(p, f)| f.try_clone().ok().map(|f| (p.clone(), f)))
        .collect()
}

/// Flushes every ring each interval, off the request path. Dropping the sender stops it.
fn spawn_syncer(
    files: Vec<(PathBuf, File)>,
    every: Duration,
) -> (crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let handle = std::thread::Builder::new()
        .name("glint-sync".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stop_rx.recv_timeout(every)
            {
                for (path, file) in &files {
                    if let Err(e) = file.sync_data() {
                        crate::error!("{}: periodic sync failed: {e}", path.display());
                    }
                }
            }
        })
        .expect("spawn sync thread");
    (stop_tx, handle)
}

/// Waits for SIGTERM/SIGINT (or a worker dying), then drives the shutdown phases.
/// Returns the id of a worker that failed, if any.
fn wait_for_shutdown(
    phase: &watch::Sender<Phase>,
    done: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, Result<(), String>)>,
    drain_delay: Duration,
) -> Result<Option<usize>, crate::BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let failed = tokio::select! {
            _ = term.recv() => None,
            _ = int.recv() => None,
            exit = done.recv() => {
                let (id, result) = exit.unwrap_or((0, Err("worker thread vanished".into())));
                crate::error!("worker {id} stopped unexpectedly: {}", result.err().unwrap_or_else(|| "no error".into()));
                Some(id)
            }
        };
        crate::info!("shutting down: draining for {drain_delay:?}, then closing listeners");
        crate::notify::stopping();
        let _ = phase.send(Phase::Draining);
        tokio::select! {
            _ = tokio::time::sleep(drain_delay) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = phase.send(Phase::Closing);
        Ok(failed)
    })
}
