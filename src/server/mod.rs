//! `glint serve`: one pinned worker per CPU, each with its own listeners, runtime and ring.
//!
//! Start-up binds every listener and recovers every ring before any worker runs, so a bad flag,
//! a busy port or an unusable data dir fails at once with one clear line. Shutdown on SIGTERM or
//! SIGINT: health checks answer 503 for `--drain-delay`, listeners close, requests already read
//! are answered, rings are synced, exit 0.
//!
//! Modules:
//! - [`admin`]: the admin listener: Prometheus metrics and a health check.
//! - [`args`]: the command line of `glint serve`.
//! - [`backend`]: what the two I/O backends share.
//! - [`config`]: serve's `--config` file: flags and `[[route]]` tables.
//! - [`epoll`]: the epoll backend (tokio current-thread per core).
//! - [`handler`]: the seam between a backend and the protocol it serves.
//! - `lifecycle`: the data dir lock, the ring syncer, signals.
//! - [`listener`]: listening sockets made with socket2.
//! - [`stats`]: a core's connection counters and heartbeats.
//! - [`uring`]: the io_uring backend.

pub mod admin;
pub mod args;
pub mod backend;
pub mod config;
pub mod epoll;
pub mod handler;
mod lifecycle;
pub mod listener;
pub mod stats;
pub mod uring;

use self::admin::{AdminState, RingOccupancy};
pub use self::args::{IoBackend, ServeArgs, SyncMode};

/// The file in a data dir that the serving glint holds an exclusive flock on (one glint per
/// data dir); doctor finds the serving process by it.
pub const DATA_DIR_LOCK: &str = ".serve.lock";
use self::lifecycle::{lock_data_dir, spawn_syncer, sync_files_clone, Signals};
use self::stats::CoreStats;
use crate::http::context::Context;
use crate::http::parse::{Limits, HEADERS_CAP};
use crate::http::policy::HttpPolicy;
use crate::http::realip::{ClientIpHeader, RealIpPolicy, TrustedProxies};
use crate::ingest::{Durability, RingSink};
use crate::ring::{ring_file_name, RingOptions, RingWriter};

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
pub struct Worker<H> {
    /// The core's number (0 logs the backend's set-up).
    pub id: usize,
    /// What answers the connections: glint's HTTP [`Context`] over the core's ring sink.
    pub handler: H,
    /// This core's counters; the backend writes the connection ones.
    pub stats: Arc<CoreStats>,
    pub listeners: Vec<TcpListener>,
    pub phase: watch::Receiver<Phase>,
    pub drain_timeout: Duration,
    pub max_conns: usize,
}

/// Runs `glint serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<ExitCode, crate::BoxError> {
    let (args, routes) = match &args.config {
        Some(path) => {
            config::serve_args(Some(path), &crate::config_file::command_line_after("serve"))?
        }
        None => (args, Vec::new()),
    };
    let policy = Arc::new(config(&args, routes)?);
    // Handle SIGTERM and SIGINT before anything is announced, so an early signal drains
    // instead of killing the process with the default action.
    let signals = Signals::install()?;
    let cpus = crate::sys::allowed_cpus();
    let threads = args.threads.unwrap_or(cpus.len()).max(1);
    let backend = choose_backend(args.io)?;
    // Before anything is made in the data dir: a served address refuses with nothing changed.
    let mut claims = listener::AddressClaims::new();
    for &addr in args.listen.iter().filter(|a| a.port() != 0) {
        claims.claim(addr)?;
    }
    let _lock = lock_data_dir(&args.data_dir)?;
    let identity = crate::instance::open_or_create(&args.data_dir, args.instance_name.as_deref())?;
    // Every ring is recovered before any listener exists, so no connection waits on a recovery.
    let cores = (0..threads)
        .map(|id| open_core(id, &args, &policy, identity))
        .collect::<Result<Vec<_>, _>>()?;
    let listeners = listener::bind_all(&args.listen, threads, args.backlog)?;
    for (asked, bound) in args.listen.iter().zip(&listeners[0]) {
        if asked.port() == 0 {
            claims.claim(bound.local_addr()?)?;
        }
    }
    let addrs: Vec<String> = listeners[0]
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let mut workers = Vec::with_capacity(threads);
    let mut sync_files = Vec::with_capacity(threads);
    let mut all_stats = Vec::with_capacity(threads);
    for (id, ((handler, stats), listeners)) in cores.into_iter().zip(listeners).enumerate() {
        let ring = handler.sink.ring();
        sync_files.push((ring.path().to_path_buf(), ring.sync_handle()?));
        all_stats.push(stats.clone());
        workers.push(Worker {
            id,
            handler,
            stats,
            listeners,
            phase: phase_rx.clone(),
            drain_timeout: args.drain_timeout,
            max_conns: args.max_conns,
        });
    }
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
    let admin = start_admin(&args, &all_stats, &sync_files, backend)?;
    crate::info!(
        "listening on {} with {threads} workers, io {}, data dir {}, instance {:?} ({})",
        addrs.join(", "),
        if backend == IoBackend::Uring {
            "uring"
        } else {
            "epoll"
        },
        args.data_dir.display(),
        identity.name(),
        identity.id_hex()
    );
    let beats = all_stats.clone();
    let heartbeats = crate::notify::Heartbeats::of(beats.len(), move |core| {
        beats[core]
            .conns
            .heartbeats
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    let _watchdog = crate::notify::spawn_watchdog(heartbeats);
    crate::notify::ready();
    let syncer = (args.sync == SyncMode::Interval)
        .then(|| spawn_syncer(sync_files_clone(&sync_files), args.sync_interval));
    let on_drain = || {
        if let Some((state, _)) = &admin {
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let failed = signals.wait_for_shutdown(&phase_tx, &mut done_rx, args.drain_delay, &on_drain)?;
    if let Some((state, handle)) = admin {
        state.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handle.join();
    }
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
    for ((path, file), stats) in sync_files.iter().zip(&all_stats) {
        if let Err(e) = file.sync_data() {
            crate::error!("{}: final sync failed: {e}", path.display());
            sync_failed = true;
        } else if failed.is_none() {
            // Every worker has stopped, so its last append's head is final.
            let head = stats
                .sink
                .ring_head
                .load(std::sync::atomic::Ordering::Acquire);
            if let Err(e) = crate::ring::record_clean_stop(path, head) {
                crate::error!("cannot record the clean stop: {e}");
                sync_failed = true;
            }
        }
    }
    let records: u64 = all_stats
        .iter()
        .map(|s| s.sink.records.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    crate::info!("stopped: {records} records written this run");
    Ok(if failed.is_some() || sync_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn config(args: &ServeArgs, routes: Vec<crate::http::route::Route>) -> Result<HttpPolicy, String> {
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
    Limits::check_target_fits(args.max_target, args.max_head_size)?;
    check_record_room(args)?;
    if args.proxy_protocol && args.trusted_proxy.is_empty() {
        return Err(
            "--proxy-protocol needs --trusted-proxy with the load balancer's address".into(),
        );
    }
    if !args.health_path.starts_with('/') {
        return Err(format!(
            "--health-path {:?} must start with /",
            args.health_path
        ));
    }
    Ok(HttpPolicy {
        limits: Limits {
            max_head: args.max_head_size,
            max_headers: args.max_headers,
            max_target: args.max_target,
            max_body: args.max_body,
            named_ip_header: match &args.client_ip_header {
                // Leaked once at start-up: the parser borrows the name for the process's life.
                ClientIpHeader::Named(name) => Some(Box::leak(name.clone()).as_bytes()),
                _ => None,
            },
        },
        health_path: args.health_path.clone(),
        max_requests_per_conn: args.max_requests_per_conn.max(1),
        head_timeout_secs: args.head_timeout.as_secs().max(1),
        idle_timeout_secs: args.idle_timeout.as_secs().max(1),
        routes: crate::http::route::Routes::new(routes, args.response)?,
        cors: crate::http::route::CorsOrigins::new(&args.cors_origin, args.cors_max_age.as_secs()),
        redirect_allow: args
            .redirect_allow
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        honor_gpc: args.honor_gpc,
        proxy_protocol: args.proxy_protocol,
        real_ip: RealIpPolicy {
            trusted: TrustedProxies::new(args.trusted_proxy.clone()),
            header: Some(args.client_ip_header.clone()),
        },
        anonymize: args
            .ip_anonymize
            .then_some((args.ipv4_prefix, args.ipv6_prefix)),
        capture_cookie: args
            .capture_cookie
            .as_ref()
            .map(|c| c.trim().as_bytes().to_vec()),
    })
}

/// The largest request glint acknowledges must fit one record and the ring: every field is
/// stored whole, so the head (request line and headers: target, UA, referer, cookie) and the
/// body together bound the record.
fn check_record_room(args: &ServeArgs) -> Result<(), String> {
    let largest = (crate::record::HEADER_LEN as u64)
        .saturating_add(args.max_head_size as u64)
        .saturating_add(args.max_body);
    let max_len = crate::record::MAX_RECORD_LEN as u64;
    if largest > max_len {
        return Err(format!(
            "--max-head-size {} and --max-body {} allow a record of {largest} bytes; a record is at most {max_len} bytes: lower --max-body",
            args.max_head_size, args.max_body
        ));
    }
    let slots = largest.div_ceil(args.slot_size as u64);
    let allowed = crate::ring::max_span(args.slot_size, args.ring_slots);
    if slots > allowed {
        return Err(format!(
            "the largest request (--max-head-size {} + --max-body {}) needs {slots} slots of {} bytes, but one record may take at most {allowed} (half of --ring-slots {}): raise --ring-slots, or lower --max-body",
            args.max_head_size, args.max_body, args.slot_size, args.ring_slots
        ));
    }
    Ok(())
}

fn choose_backend(asked: IoBackend) -> Result<IoBackend, String> {
    match (asked, crate::uring_probe::probe()) {
        (IoBackend::Epoll, _) => Ok(IoBackend::Epoll),
        (_, Ok(_)) => Ok(IoBackend::Uring),
        (IoBackend::Uring, Err(why)) => Err(format!("--io uring: {why}")),
        (IoBackend::Auto, Err(why)) => {
            crate::info!("io_uring unavailable ({why}); using epoll");
            Ok(IoBackend::Epoll)
        }
    }
}

fn open_core(
    id: usize,
    args: &ServeArgs,
    policy: &Arc<HttpPolicy>,
    identity: crate::instance::Identity,
) -> Result<(Context<RingSink>, Arc<CoreStats>), crate::BoxError> {
    let path = args.data_dir.join(ring_file_name(id));
    let opts = RingOptions {
        slot_size: args.slot_size,
        capacity: args.ring_slots,
        core: id as u32,
        identity: Some(identity),
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
            "{}: recovered{}{}, {} records not yet compacted, resuming at seq {} (epoch {})",
            path.display(),
            if rec.clean {
                " after a clean stop"
            } else {
                " after a crash"
            },
            if rec.torn > 0 {
                ", cleared a torn write"
            } else if rec.upgraded {
                ", upgraded from ring format version 1"
            } else {
                ""
            },
            rec.pending,
            rec.next_seq,
            rec.epoch
        );
    }
    for &seq in rec.damaged.iter().take(10) {
        crate::error!(
            "{}: offset {}: record seq {seq} fails its check after a clean stop: corruption, not a torn write; its bytes are kept (glint decode --verify reports it, glint compact keeps a copy in {}/ and goes on)",
            path.display(),
            ring.header().slot_offset(seq),
            crate::compact::merge::DAMAGED_DIR
        );
    }
    if rec.damaged.len() > 10 {
        crate::error!(
            "{}: {} more damaged records not listed",
            path.display(),
            rec.damaged.len() - 10
        );
    }
    let durability = match args.sync {
        SyncMode::Always => Durability::EachBatch,
        SyncMode::Interval => Durability::Background,
    };
    Ok(core_on_ring(id as u16, ring, durability, policy.clone()))
}

/// One core's HTTP context over its ring, and the counters it shares with the admin listener.
pub fn core_on_ring(
    id: u16,
    ring: RingWriter,
    durability: Durability,
    policy: Arc<HttpPolicy>,
) -> (Context<RingSink>, Arc<CoreStats>) {
    let stats = Arc::new(CoreStats::default());
    let sink = RingSink::new(id, ring, stats.sink.clone(), durability);
    (Context::new(policy, stats.http.clone(), sink), stats)
}

/// The running admin listener: its shared state and its thread.
type Admin = (Arc<AdminState>, std::thread::JoinHandle<()>);

/// Starts the admin listener (metrics, health) unless `--admin-listen off`.
fn start_admin(
    args: &ServeArgs,
    stats: &[Arc<CoreStats>],
    rings: &[(std::path::PathBuf, std::fs::File)],
    backend: IoBackend,
) -> Result<Option<Admin>, crate::BoxError> {
    if args.admin_listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = args.admin_listen.parse().map_err(|_| {
        format!(
            "--admin-listen {:?}: expected ADDR:PORT or off",
            args.admin_listen
        )
    })?;
    let readers = rings
        .iter()
        .map(|(path, _)| crate::ring::RingReader::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let heads: Vec<Arc<CoreStats>> = stats.to_vec();
    let occupancy = move |core: usize| {
        let head = heads[core]
            .sink
            .ring_head
            .load(std::sync::atomic::Ordering::Relaxed);
        let reader = &readers[core];
        RingOccupancy {
            used: head.saturating_sub(reader.cursor()),
            capacity: reader.header().capacity,
        }
    };
    let name = if backend == IoBackend::Uring {
        "uring"
    } else {
        "epoll"
    };
    let state = Arc::new(AdminState::new(stats.to_vec(), name, Box::new(occupancy)));
    let (bound, handle) = admin::spawn_admin(addr, state.clone())
        .map_err(|e| format!("{e} (pick another address with --admin-listen, or off)"))?;
    crate::info!("admin listening on {bound} (GET /metrics)");
    Ok(Some((state, handle)))
}
