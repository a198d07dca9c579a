//! Running the resources: once (`--onetime`) or as a daemon (a watch thread per key, one
//! scheduler, pools for the passes),
//! and the signals: TERM/INT stop, HUP re-reads conf.d and templates, USR1 toggles debug.
//! Outcomes are typed ([`Onetime`], [`LoadError`]); the binary turns them into exit codes.

use crate::apply;
use crate::etcd::{Client, SnapshotCache};
use crate::follow::Watch;
use crate::resource::{self, ConfigError, LoadOptions, Resource};
use crate::schedule::{Notice, Pools, Scheduler};
use crate::stop::Stop;
use crate::watch::{Converged, PassError, RunOptions, Watcher};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The daemon's watch and scheduler threads and `--onetime`'s workers need little stack:
/// nothing on them is deep, except renders in `--onetime` (the daemon renders on its pool).
const WATCH_THREAD_STACK: usize = 512 * 1024;

/// How SIGHUP gets the next generation: the binary reads conf.d again and builds a fresh
/// client (one per generation, so that SIGHUP can close the old generation's pending
/// watches), and words what went wrong, as only it knows the flags that fix it.
pub struct Reload {
    /// The conf.d directory, named in the log.
    pub confdir: PathBuf,
    pub next: Box<dyn FnMut() -> Result<(LoadedResources, Client), String>>,
}

/// How `--onetime` ended; the binary turns it into its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Onetime {
    /// Every resource converged and no resource file was skipped; in a dry run, no file
    /// would change either.
    Converged,
    /// Dry run: every resource could be rendered and checked, no file was skipped, and at
    /// least one file would change.
    WouldChange,
    /// At least one resource did not converge, or a resource file was skipped as invalid.
    NotConverged,
    /// No resource could read etcd.
    Unavailable,
}

/// The valid resources of conf.d, and how many of its files were skipped as invalid.
pub struct LoadedResources {
    pub resources: Vec<Arc<Resource>>,
    /// Each was logged; `--onetime` then ends [`Onetime::NotConverged`] so cron notices.
    pub skipped_files: usize,
}

/// Why conf.d gave nothing to run.
#[derive(Debug)]
pub enum LoadError {
    /// The conf.d directory itself cannot be read.
    Unreadable(ConfigError),
    /// conf.d holds no resource file, or every one was invalid (each was logged).
    NoValidResource { confdir: PathBuf },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unreadable(e) => e.fmt(f),
            LoadError::NoValidResource { confdir } => write!(
                f,
                "no valid resource in {}: add a *.json resource file (see README) or fix the errors above",
                confdir.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads conf.d, logging every rejected file; `Err` when nothing valid is left.
pub fn load_resources(options: &LoadOptions) -> Result<LoadedResources, LoadError> {
    let loaded = resource::load(options).map_err(LoadError::Unreadable)?;
    for problem in &loaded.problems {
        log::error!("{problem}; this resource is skipped");
    }
    if loaded.resources.is_empty() {
        return Err(LoadError::NoValidResource {
            confdir: options.confdir.clone(),
        });
    }
    for r in &loaded.resources {
        log::info!(target: r.id(),
            "bound: key {}{} → {}",
            r.keys.join(", "),
            if r.recursive { " (recursive)" } else { "" },
            r.files_text());
    }
    Ok(LoadedResources {
        resources: loaded.resources.into_iter().map(Arc::new).collect(),
        skipped_files: loaded.problems.len(),
    })
}

/// Temp files a killed predecessor left beside the targets.
fn clean_stale_temp_files(resources: &[Arc<Resource>]) {
    for r in resources {
        let files = r.install.files();
        let removed: usize = files
            .iter()
            .map(|file| apply::remove_stale_temp_files(&file.target))
            .sum();
        if removed > 0 {
            log::info!(target: r.id(), "removed {removed} temp file(s) left by an interrupted run");
        }
    }
}

/// Renders every resource once, in parallel; [`Onetime::Converged`] only if all converged,
/// no resource file was skipped and (dry run) no file would change.
pub fn run_onetime(loaded: LoadedResources, client: Client, options: RunOptions) -> Onetime {
    let resources = loaded.resources;
    options.status.track(&resources);
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
        return Onetime::Unavailable;
    }
    let mut outcome = Onetime::Converged;
    if failed + unreachable > 0 {
        log::error!(
            "{} of {total} resources did not converge",
            failed + unreachable
        );
        outcome = Onetime::NotConverged;
    }
    if loaded.skipped_files > 0 {
        log::error!(
            "{} resource file(s) were skipped as invalid: fix the errors above",
            loaded.skipped_files
        );
        outcome = Onetime::NotConverged;
    }
    if would_change > 0 {
        log::info!("dry run: {would_change} of {total} resources would change");
        if outcome == Onetime::Converged {
            outcome = Onetime::WouldChange;
        }
    }
    outcome
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

/// One generation: a watch thread per distinct (key, recursive) and a scheduler thread,
/// sharing a client, its snapshot cache and a stop signal. Passes run on the daemon's
/// [`Pools`], which outlive generations.
struct Generation {
    stop: Stop,
    client: Client,
    notices: Sender<Notice>,
    threads: Vec<JoinHandle<()>>,
}

impl Generation {
    fn start(
        resources: &[Arc<Resource>],
        client: Client,
        options: &RunOptions,
        process: &Stop,
        pools: &Arc<Pools>,
    ) -> Generation {
        options.status.track(resources);
        let stop = Stop::new();
        let snapshots = SnapshotCache::new(client.clone());
        let (watches, watch_of) = distinct_watches(resources);
        let (notices, inbox) = mpsc::channel();
        let scheduler = Scheduler::new(
            resources,
            &watch_of,
            watches.len(),
            &snapshots,
            options,
            process,
            Arc::clone(pools),
            (notices.clone(), inbox),
        );
        let mut threads = Vec::new();
        match spawn("scheduler", move || scheduler.run()) {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                log::error!("cannot start the scheduler thread: {e}; nothing will be rendered")
            }
        }
        for watch in watches {
            let name = format!("watch {}", watch.key);
            let (snapshots, stop, notices) = (snapshots.clone(), stop.clone(), notices.clone());
            let max_backoff = options.max_backoff;
            let key = watch.key.clone();
            let follow = move || watch.run(&snapshots, &stop, max_backoff, &notices, Notice::Watch);
            match spawn(&name, follow) {
                Ok(handle) => threads.push(handle),
                Err(e) => log::error!("cannot start the watch thread of {key}: {e}"),
            }
        }
        Generation {
            stop,
            client,
            notices,
            threads,
        }
    }

    /// Stops the watches (pending long-polls are closed) and waits for the threads; a pass
    /// in the middle of an install or a reload finishes it first.
    fn end(self) {
        self.stop.stop();
        self.client.shutdown();
        let _ = self.notices.send(Notice::End);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(WATCH_THREAD_STACK)
        .spawn(run)
}

/// One [`Watch`] per distinct (key, recursive) of `resources`, and the watches each
/// follows (several with `keys` or `watch_altkeys`).
fn distinct_watches(resources: &[Arc<Resource>]) -> (Vec<Watch>, Vec<Vec<usize>>) {
    let mut watches: Vec<Watch> = Vec::new();
    let mut ids: HashMap<(&str, bool), usize> = HashMap::new();
    let watch_of = resources
        .iter()
        .map(|r| {
            let mut followed: Vec<usize> = Vec::new();
            for (key, recursive) in r.watched_keys() {
                let id = *ids.entry((key, recursive)).or_insert_with(|| {
                    watches.push(Watch {
                        id: watches.len(),
                        key: key.to_string(),
                        recursive,
                    });
                    watches.len() - 1
                });
                if !followed.contains(&id) {
                    followed.push(id);
                }
            }
            followed
        })
        .collect();
    (watches, watch_of)
}

/// The daemon: runs until SIGTERM/SIGINT. `loaded` by the caller; skipped files were logged.
/// `Err` says why it could not start.
pub fn run_daemon(
    loaded: LoadedResources,
    client: Client,
    mut reload: Reload,
    mut options: RunOptions,
) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let resources = loaded.resources;
    if !options.dry_run {
        clean_stale_temp_files(&resources);
    }
    let pools =
        Arc::new(Pools::start().map_err(|e| format!("cannot start the daemon's threads: {e}"))?);
    let process = Stop::new();
    let mut generation = Generation::start(&resources, client, &options, &process, &pools);
    // `--force` admits the first render of each resource, not those after SIGHUP.
    options.force = false;
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
                return Ok(());
            }
            SIGHUP => {
                log::info!("SIGHUP: re-reading {}", reload.confdir.display());
                match (reload.next)() {
                    Ok((LoadedResources { resources, .. }, client)) => {
                        generation.end();
                        if !options.dry_run {
                            clean_stale_temp_files(&resources);
                        }
                        generation =
                            Generation::start(&resources, client, &options, &process, &pools);
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
    Ok(())
}
