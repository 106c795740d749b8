//! `glint loadgen`: a wrk/wrk2-style HTTP load generator built to outrun the server it measures.
//!
//! One OS thread per `-t`, each with its own current-thread tokio runtime driving its share of
//! the `-c` connections ([`worker`]). Every connection runs the same driver ([`conn`]): closed
//! loop by default, up to `--pipeline` requests in flight, or open loop at a constant rate with
//! `-R` ([`schedule`], latency from the planned send time: coordinated omission corrected;
//! [`pacer`] wakes each send within microseconds of its due time).
//! Requests are pre-rendered templates copied into a reused buffer ([`templates`]); answers
//! are framed incrementally ([`response`]). Each thread records into its own HdrHistograms
//! ([`stats`]), merged once at the end ([`report`]), so memory stays flat however long it runs.
//! Ctrl-C stops the run early and the summary is still printed.
//!
//! Modules:
//! - [`args`]: the command line and its validation into a plan.
//! - [`conn`]: one connection's driver, the same for every mode.
//! - [`pacer`]: open-loop send timing within microseconds.
//! - [`progress`]: the live progress line on a terminal.
//! - [`report`]: the run summary, as wrk-like text or JSON.
//! - [`response`]: incremental HTTP/1.x response framing.
//! - [`schedule`]: wrk2's constant-rate schedule.
//! - [`stats`]: what one thread measures.
//! - [`target`]: the target URL, split into what a request needs.
//! - [`templates`]: pre-rendered requests.
//! - [`worker`]: one load thread and its runtime.

pub mod args;
pub mod conn;
pub mod pacer;
pub mod progress;
pub mod report;
pub mod response;
pub mod schedule;
pub mod stats;
pub mod target;
pub mod templates;
pub mod worker;

pub use args::LoadgenArgs;

use args::Plan;
use stats::{LiveCounters, ThreadStats};
use std::fs::File;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{RunShape, ThreadShare};

/// Runs `glint loadgen` and prints its summary on stdout.
pub fn run(args: LoadgenArgs) -> Result<ExitCode, crate::BoxError> {
    let plan = Plan::from_args(&args)?;
    let addr = plan.target.resolve()?;
    // Open loop gives every connection its own send timer (a timerfd) besides its socket.
    raise_fd_limit(plan.connections * if plan.rate.is_some() { 2 } else { 1 });
    let acked = open_acked_log(&plan)?;
    if !args.json {
        emit(&format!(
            "Running {} test @ {}\n",
            match (plan.duration, plan.requests) {
                (Some(d), _) => format!("{:.1}s", d.as_secs_f64()),
                (None, Some(n)) => format!("{n}-request"),
                (None, None) => unreachable!("validated: a run has a duration or a count"),
            },
            plan.target.url
        ))?;
    }
    let start = Instant::now();
    let shape = Arc::new(RunShape {
        addr,
        requests: Arc::new(templates::RequestSet::build(&plan)),
        connections: plan.connections,
        pipeline: plan.pipeline,
        timeout: plan.timeout,
        rate: plan.rate,
        start,
        end: plan.duration.map(|d| start + d),
        ids: Arc::new(AtomicU64::new(1)),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut handles = Vec::with_capacity(plan.threads);
    let mut live = Vec::with_capacity(plan.threads);
    for t in 0..plan.threads {
        let counters = Arc::new(LiveCounters::default());
        live.push(counters.clone());
        let share = ThreadShare {
            connections: (t..plan.connections).step_by(plan.threads).collect(),
            budget: plan.requests.map(|n| split(n, plan.threads, t)),
            acked: acked.as_ref().map(File::try_clone).transpose()?,
            live: counters,
        };
        let (shape, stop, done) = (shape.clone(), stop_rx.clone(), done_tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || {
                    let result = worker::run_thread(shape, share, stop);
                    let _ = done.send(());
                    result
                })?,
        );
    }
    drop(done_tx);
    let mut progress = progress::Progress::new(live, start, plan.duration);
    let interrupted = wait_for_threads(&mut done_rx, plan.threads, &stop_tx, &mut progress)?;
    let elapsed = start.elapsed();
    progress.clear();
    let mut total = ThreadStats::new(None);
    for h in handles {
        let mut stats = h.join().map_err(|_| "a load thread panicked")??;
        if let Some(e) = stats.finish_acked() {
            return Err(format!("--acked-out: write failed: {e}").into());
        }
        total.merge(&stats);
    }
    let summary = report::Summary::new(&plan, &total, elapsed, interrupted);
    if args.json {
        emit(&format!("{}\n", summary.json()))?;
    } else {
        emit(&summary.text(args.latency))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits until every thread is done, redrawing progress once a second. On SIGINT it tells the
/// threads to stop and returns true once they have.
fn wait_for_threads(
    done: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    threads: usize,
    stop: &tokio::sync::watch::Sender<bool>,
    progress: &mut progress::Progress,
) -> Result<bool, crate::BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let (mut finished, mut interrupted) = (0, false);
        while finished < threads {
            tokio::select! {
                msg = done.recv() => match msg {
                    Some(()) => finished += 1,
                    None => break,
                },
                _ = sigint.recv(), if !interrupted => {
                    interrupted = true;
                    let _ = stop.send(true);
                }
                _ = tick.tick() => progress.tick(),
            }
        }
        Ok(interrupted)
    })
}

/// Writes to stdout; a closed pipe is an error line, not a panic.
fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the summary to stdout: {e}"))
}

/// Part `index` of `n` split as evenly as possible over `parts`.
fn split(n: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    n / parts + u64::from((index as u64) < n % parts)
}

/// Creates (truncates) the --acked-out file; every thread appends whole lines to it.
fn open_acked_log(plan: &Plan) -> Result<Option<File>, String> {
    let Some(path) = &plan.acked_out else {
        return Ok(None);
    };
    let fail = |e: std::io::Error| format!("--acked-out {}: {e}", path.display());
    File::create(path).map_err(fail)?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(fail)?;
    Ok(Some(file))
}

/// Lifts the soft open-file limit toward the hard one when the connections need it.
fn raise_fd_limit(connections: usize) {
    let want = connections as u64 + 64;
    if let Ok((soft, hard)) = crate::sys::get_rlimit(libc::RLIMIT_NOFILE) {
        if soft < want {
            let _ = crate::sys::set_soft_rlimit(libc::RLIMIT_NOFILE, want.min(hard));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_is_even_and_complete() {
        for (n, parts) in [(10, 3), (1, 4), (1000, 7), (5, 5)] {
            let shares: Vec<u64> = (0..parts).map(|i| super::split(n, parts, i)).collect();
            assert_eq!(shares.iter().sum::<u64>(), n);
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
    }
}
