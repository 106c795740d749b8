//! Process lifecycle around the workers: the data dir lock, the background ring syncer, and
//! signal handling that drives the shutdown phases.

use super::Phase;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Creates the data dir if needed and locks it so two servers never share rings.
pub fn lock_data_dir(dir: &Path) -> Result<File, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("data dir {}: cannot create: {e}", dir.display()))?;
    let lock_path = dir.join(super::DATA_DIR_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("data dir {}: not writable: {e}", dir.display()))?;
    match crate::sys::lock_exclusive_within(&file, std::time::Duration::from_secs(1)) {
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

pub fn sync_files_clone(files: &[(PathBuf, File)]) -> Vec<(PathBuf, File)> {
    files
        .iter()
        .filter_map(|(p, f)| f.try_clone().ok().map(|f| (p.clone(), f)))
        .collect()
}

/// Flushes every ring each interval, off the request path. Dropping the sender stops it.
pub fn spawn_syncer(
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

/// The main thread's signal handling: a small runtime and the SIGTERM/SIGINT streams.
pub struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, crate::BoxError> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _guard = rt.enter();
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        drop(_guard);
        Ok(Signals { rt, term, int })
    }

    /// Waits for SIGTERM/SIGINT (or a worker dying), then drives the shutdown phases: drain
    /// (a second signal cuts the drain delay short), then close. Returns a failed worker's id.
    pub fn wait_for_shutdown(
        mut self,
        phase: &watch::Sender<Phase>,
        done: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, Result<(), String>)>,
        drain_delay: Duration,
        on_drain: &dyn Fn(),
    ) -> Result<Option<usize>, crate::BoxError> {
        let Signals { rt, term, int } = &mut self;
        rt.block_on(async {
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
            on_drain();
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
}
