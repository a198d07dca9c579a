//! Running the resources: once (`--onetime`) or as a daemon with one thread per resource,
//! and the signals: TERM/INT stop, HUP re-reads conf.d and templates, USR1 toggles debug.

use crate::apply;
use crate::etcd::{Client, SnapshotCache};
use crate::pool::Pool;
use crate::resource::{self, LoadOptions, Resource};
use crate::stop::Stop;
use crate::watch::{Converged, PassError, RunOptions, Watcher};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Watch threads need little stack: nothing on them is deep, except renders in `--onetime`
/// (the daemon renders on its pool's threads).
const WATCH_THREAD_STACK: usize = 512 * 1024;

/// Builds a fresh etcd client; the daemon makes one per generation so that SIGHUP can
/// close the old generation's pending watches.
pub type ClientFactory = dyn FnMut() -> Result<Client, String> + Send;

/// Exit codes of `reconfig`; the README documents them.
pub mod exit {
    pub const OK: i32 = 0;
    /// Bad command line or configuration: nothing was started.
    pub const CONFIG: i32 = 1;
    /// `--onetime`: at least one resource did not converge, or a resource file was skipped
    /// as invalid.
    pub const NOT_CONVERGED: i32 = 2;
    /// `--onetime`: no etcd endpoint answered; either mode: the SRV record giving the
    /// endpoints could not be resolved at start-up.
    pub const UNAVAILABLE: i32 = 3;
    /// `--onetime --notreally`: every resource could be rendered and checked, and at least
    /// one file would change (a drift signal for cron and CI).
    pub const WOULD_CHANGE: i32 = 4;
}

/// The valid resources of conf.d, and how many of its files were skipped as invalid.
pub struct LoadedResources {
    pub resources: Vec<Arc<Resource>>,
    /// Each was logged; `--onetime` then exits [`exit::NOT_CONVERGED`] so cron notices.
    pub skipped_files: usize,
}

/// Loads conf.d, logging every rejected file; `Err` when nothing valid is left.
pub fn load_resources(options: &LoadOptions) -> Result<LoadedResources, String> {
    let loaded = resource::load(options).map_err(|e| e.to_string())?;
    for problem in &loaded.problems {
        log::error!("{problem}; this resource is skipped");
    }
    if loaded.resources.is_empty() {
        return Err(format!(
            "no valid resource in {}: add a *.json resource file (see README) or fix the errors above",
            options.confdir.display()
        ));
    }
    for r in &loaded.resources {
        log::info!(target: &r.id,
            "bound: key {}{} → {} (template {})",
            r.key,
            if r.recursive { " (recursive)" } else { "" },
            r.target.display(),
            r.template_path.display());
    }
    Ok(LoadedResources {
        resources: loaded.resources.into_iter().map(Arc::new).collect(),
        skipped_files: loaded.problems.len(),
    })
}

/// Temp files a killed predecessor left beside the targets.
fn clean_stale_temp_files(resources: &[Arc<Resource>]) {
    for r in resources {
        let removed = apply::remove_stale_temp_files(&r.target);
        if removed > 0 {
            log::info!(target: &r.id, "removed {removed} temp file(s) left by an interrupted run");
        }
    }
}

/// Renders every resource once, in parallel; exit code 0 only if all converged, no resource
/// file was skipped and (dry run) no file would change.
pub fn run_onetime(loaded: LoadedResources, client: Client, options: RunOptions) -> i32 {
    let resources = loaded.resources;
    if !options.dry_run {
        clean_stale_temp_files(&resources);
    }
    let results = converge_all(&resources, &SnapshotCache::keeping(client), &options);
    let total = results.len();
    let mut failed = 0;
    let mut unreachable = 0;
    let mut would_change = 0;
    for result in results {
        match result {
            Ok(Converged::WouldChange) => would_change += 1,
            Ok(_) => {}
            Err(PassError::Etcd(e)) if e.is_unreachable() => unreachable += 1,
            Err(_) => failed += 1,
        }
    }
    if unreachable == total {
        log::error!("no resource could read etcd");
        return exit::UNAVAILABLE;
    }
    let mut code = exit::OK;
    if failed + unreachable > 0 {
        log::error!(
            "{} of {total} resources did not converge",
            failed + unreachable
        );
        code = exit::NOT_CONVERGED;
    }
    if loaded.skipped_files > 0 {
        log::error!(
            "{} resource file(s) were skipped as invalid: fix the errors above",
            loaded.skipped_files
        );
        code = exit::NOT_CONVERGED;
    }
    if would_change > 0 {
        log::info!("dry run: {would_change} of {total} resources would change");
        if code == exit::OK {
            code = exit::WOULD_CHANGE;
        }
    }
    code
}

/// Threads of `--onetime`: enough to overlap etcd reads, renders and check/reload commands,
/// few enough that the rendered texts held at once stay small.
fn onetime_workers(resources: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).clamp(4, 16).min(resources.max(1))
}

/// One pass per resource on a few worker threads that share the etcd reads. A worker that
/// could not be started or died counts as one failed resource per resource it had left.
fn converge_all(
    resources: &[Arc<Resource>],
    snapshots: &SnapshotCache,
    options: &RunOptions,
) -> Vec<Result<Converged, PassError>> {
    let stop = Stop::new();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut results = Vec::new();
        while let Some(resource) = resources.get(next.fetch_add(1, Ordering::Relaxed)) {
            let mut watcher = Watcher::new(
                Arc::clone(resource),
                snapshots.clone(),
                options.clone(),
                stop.clone(),
                stop.clone(),
            );
            results.push(watcher.converge_once());
        }
        results
    };
    let mut results = Vec::with_capacity(resources.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..onetime_workers(resources.len()))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .stack_size(WATCH_THREAD_STACK)
                    .spawn_scoped(scope, work)
                    .map_err(|e| log::error!("cannot start a worker thread: {e}"))
                    .ok()
            })
            .collect();
        for worker in workers {
            results.extend(worker.join().unwrap_or_default());
        }
    });
    // Resources no worker got to (no thread could start, or one died): not converged.
    while results.len() < resources.len() {
        results.push(Err(PassError::Stopped));
    }
    results
}

/// One set of watch threads sharing a client and a stop signal.
struct Generation {
    stop: Stop,
    client: Client,
    threads: Vec<JoinHandle<()>>,
}

impl Generation {
    fn start(
        resources: &[Arc<Resource>],
        client: Client,
        options: &RunOptions,
        process: &Stop,
    ) -> Generation {
        let stop = Stop::new();
        let snapshots = SnapshotCache::new(client.clone());
        let mut threads = Vec::new();
        for r in resources {
            let watcher = Watcher::new(
                Arc::clone(r),
                snapshots.clone(),
                options.clone(),
                stop.clone(),
                process.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("watch {}", r.id))
                .stack_size(WATCH_THREAD_STACK)
                .spawn(move || watcher.run());
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => log::error!(target: &r.id, "cannot start its watch thread: {e}"),
            }
        }
        Generation {
            stop,
            client,
            threads,
        }
    }

    /// Stops the watches (pending long-polls are closed) and waits for the threads; a
    /// thread in the middle of an install finishes it first.
    fn end(self) {
        self.stop.stop();
        self.client.shutdown();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The daemon: runs until SIGTERM/SIGINT. `loaded` by the caller; skipped files were logged.
pub fn run_daemon(
    loaded: LoadedResources,
    load_options: LoadOptions,
    mut make_client: Box<ClientFactory>,
    mut options: RunOptions,
) -> i32 {
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
    {
        Ok(signals) => signals,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return exit::CONFIG;
        }
    };
    let client = match make_client() {
        Ok(client) => client,
        Err(e) => {
            log::error!("{e}");
            return exit::CONFIG;
        }
    };
    let resources = loaded.resources;
    if !options.dry_run {
        clean_stale_temp_files(&resources);
    }
    match Pool::per_core() {
        Ok(pool) => options.render_pool = Some(Arc::new(pool)),
        Err(e) => {
            log::warn!("cannot start the render threads ({e}); rendering on the watch threads")
        }
    }
    let process = Stop::new();
    let mut generation = Generation::start(&resources, client, &options, &process);
    log::info!(
        "watching {} resource(s); SIGHUP reloads conf.d, SIGUSR1 toggles debug",
        resources.len()
    );
    for signal in signals.forever() {
        match signal {
            SIGTERM | SIGINT => {
                log::info!("stopping on signal {signal}");
                process.stop();
                generation.end();
                return exit::OK;
            }
            SIGHUP => {
                log::info!("SIGHUP: re-reading {}", load_options.confdir.display());
                let reloaded = load_resources(&load_options)
                    .and_then(|r| make_client().map(|c| (r.resources, c)));
                match reloaded {
                    Ok((resources, client)) => {
                        generation.end();
                        if !options.dry_run {
                            clean_stale_temp_files(&resources);
                        }
                        generation = Generation::start(&resources, client, &options, &process);
                        log::info!("now watching {} resource(s)", resources.len());
                    }
                    Err(e) => log::error!("SIGHUP: {e}; keeping the resources already running"),
                }
            }
            SIGUSR1 => {
                let on = crate::logging::toggle_debug();
                log::info!("SIGUSR1: debug logging {}", if on { "on" } else { "off" });
            }
            _ => {}
        }
    }
    exit::OK
}
