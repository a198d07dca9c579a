//! What every resource is doing, for operators: the [`StatusBoard`] the watchers report to,
//! written as one JSON document (`--status-file`) and as Prometheus metrics
//! (`--metrics-file`), each atomically, at most a few times per second however busy the
//! resources are. `reconfig status` reads the document back ([`read`], [`table`]).
//!
//! The watchers call one method per event (`rendered`, `installed`, `reloaded`, `failed`);
//! a board without outputs does nothing, so the calls cost nothing when the flags are off.

mod document;
mod metrics;
mod table;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::apply::{ApplyErrorKind, ReloadResult};
use crate::resource::Resource;
use crate::watch::{Converged, PassError};

pub use document::{
    now, CommandResult, Counters, Document, LastError, Mode, ResourceStatus, State, FORMAT_VERSION,
};
pub use table::table;

/// Shortest pause between two writes: changes in between are written together.
const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(250);

/// Where the board is written; a board with neither is off.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub status_file: Option<PathBuf>,
    /// Prometheus text format.
    pub metrics_file: Option<PathBuf>,
}

impl Outputs {
    fn is_empty(&self) -> bool {
        self.status_file.is_none() && self.metrics_file.is_none()
    }
}

/// The shared status of every resource. Cloning shares it; the default board is off.
#[derive(Clone, Default)]
pub struct StatusBoard {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    board: Mutex<Board>,
    /// Signalled when the board changes or closes.
    changed: Condvar,
    outputs: Outputs,
    mode: Mode,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Whether the last write failed: a failure is logged when it starts, not on every write.
    write_failing: AtomicBool,
}

/// A resource's entry on the board: its id and target (ids need not be unique, targets are).
type EntryKey = (String, String);

#[derive(Default)]
struct Board {
    /// Sorted by id, then target, as the document lists them.
    entries: BTreeMap<EntryKey, Entry>,
    /// The document the previous process left, for what outlives a restart.
    previous: BTreeMap<EntryKey, ResourceStatus>,
    dirty: bool,
    closed: bool,
}

struct Entry {
    status: ResourceStatus,
    has_check: bool,
    /// Whether etcd was ever read: a later reconnection is counted, not the first one.
    ever_connected: bool,
}

impl StatusBoard {
    /// A board written to `outputs`, or an off board when there are none. The outputs are
    /// written once at once, so a path that cannot be written is an error at start-up.
    pub fn start(outputs: Outputs, mode: Mode) -> Result<StatusBoard, String> {
        if outputs.is_empty() {
            return Ok(StatusBoard::default());
        }
        let previous = outputs
            .status_file
            .as_deref()
            .and_then(|path| read(path).ok())
            .map(|document| {
                document
                    .resources
                    .into_iter()
                    .map(|status| ((status.id.clone(), status.target.clone()), status))
                    .collect()
            })
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            board: Mutex::new(Board {
                previous,
                ..Board::default()
            }),
            changed: Condvar::new(),
            outputs,
            mode,
            writer: Mutex::new(None),
            write_failing: AtomicBool::new(false),
        });
        shared.write(&shared.lock().document(mode))?;
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("status writer".to_string())
            .spawn(move || writer.run_writer())
            .map_err(|e| format!("cannot start the status writer thread: {e}"))?;
        *shared.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(StatusBoard {
            shared: Some(shared),
        })
    }

    /// Writes the final document and stops the writer thread. For the end of the process.
    pub fn finish(&self) {
        let Some(shared) = &self.shared else { return };
        shared.lock().closed = true;
        shared.changed.notify_all();
        let thread = shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        let document = shared.lock().document(shared.mode);
        shared.write_logged(&document);
    }

    /// The resources now running (at start and after SIGHUP): others are dropped, new ones
    /// start from what the previous process recorded for the same id and target.
    pub fn track(&self, resources: &[Arc<Resource>]) {
        let Some(shared) = &self.shared else { return };
        let mut board = shared.lock();
        let mut entries = BTreeMap::new();
        for resource in resources {
            let key = key_of(resource);
            let entry = board
                .entries
                .remove(&key)
                .unwrap_or_else(|| Entry::new(resource, board.previous.get(&key)));
            entries.insert(key, entry);
        }
        board.entries = entries;
        board.dirty = true;
        drop(board);
        shared.changed.notify_all();
    }

    /// A pass rendered from the data at `index` and ended with `result`.
    pub fn rendered(&self, resource: &Resource, index: u64, result: &Result<Converged, PassError>) {
        self.update(resource, |entry| {
            entry.status.counters.renders += 1;
            entry.connected(true);
            if result.is_ok() {
                entry.status.applied_index = Some(index);
                entry.status.applied_at = Some(now());
                entry.status.error = None;
            }
        });
    }

    /// A new target was installed (and its check, if any, passed).
    pub fn installed(&self, resource: &Resource) {
        self.update(resource, |entry| {
            let at = now();
            entry.status.counters.installs += 1;
            entry.status.changed_at = Some(at);
            if entry.has_check {
                entry.status.check = Some(CommandResult {
                    ok: true,
                    at,
                    error: None,
                });
            }
        });
    }

    /// The reload command ran (or was due and did not run).
    pub fn reloaded(&self, resource: &Resource, result: &ReloadResult) {
        self.update(resource, |entry| match result {
            ReloadResult::NotConfigured => entry.status.reload_pending = false,
            ReloadResult::Reloaded => {
                let at = now();
                entry.status.reload = Some(CommandResult {
                    ok: true,
                    at,
                    error: None,
                });
                entry.status.reloaded_at = Some(at);
                entry.status.reload_pending = false;
            }
            ReloadResult::Failed(error) => {
                entry.status.reload = Some(CommandResult {
                    ok: false,
                    at: now(),
                    error: Some(error.to_string()),
                });
                entry.status.counters.reload_failures += 1;
                entry.status.reload_pending = true;
            }
            ReloadResult::Stopped => entry.status.reload_pending = true,
        });
    }

    /// A pass or a watch failed (every attempt, not only the logged ones).
    pub fn failed(&self, resource: &Resource, error: &PassError) {
        let Some(kind) = kind_of(error) else { return };
        self.update(resource, |entry| {
            let at = now();
            let since = match &entry.status.error {
                Some(last) if last.kind == kind => last.since,
                _ => at,
            };
            entry.status.error = Some(LastError {
                kind: kind.to_string(),
                text: error.to_string(),
                since,
            });
            entry.connected(!matches!(error, PassError::Etcd(_)));
            if kind == "check" {
                entry.status.counters.check_failures += 1;
                entry.status.check = Some(CommandResult {
                    ok: false,
                    at,
                    error: Some(error.to_string()),
                });
            }
        });
    }

    fn update(&self, resource: &Resource, change: impl FnOnce(&mut Entry)) {
        let Some(shared) = &self.shared else { return };
        let mut board = shared.lock();
        let Some(entry) = board.entries.get_mut(&key_of(resource)) else {
            return;
        };
        change(entry);
        board.dirty = true;
        drop(board);
        shared.changed.notify_all();
    }
}

impl fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shared {
            Some(shared) => write!(f, "StatusBoard({:?})", shared.outputs),
            None => f.write_str("StatusBoard(off)"),
        }
    }
}

fn key_of(resource: &Resource) -> EntryKey {
    (
        resource.id().to_string(),
        resource.target().display().to_string(),
    )
}

/// The kind of problem named in the document; `None` for a stop (no problem).
fn kind_of(error: &PassError) -> Option<&'static str> {
    Some(match error {
        PassError::Etcd(_) => "etcd",
        PassError::Missing => "missing",
        PassError::Render(_) => "render",
        PassError::Refused(_) => "refused",
        PassError::Apply(e) if matches!(*e.kind, ApplyErrorKind::CheckFailed { .. }) => "check",
        PassError::Apply(_) => "install",
        PassError::Reload(_) => "reload",
        PassError::Panicked => "internal",
        PassError::Stopped => return None,
    })
}

impl Entry {
    fn new(resource: &Resource, previous: Option<&ResourceStatus>) -> Entry {
        let target = resource.target().display().to_string();
        // What outlives a restart (`previous` is of the same id and target): its history.
        Entry {
            status: ResourceStatus {
                id: resource.id().to_string(),
                target,
                key: resource.key.clone(),
                state: State::Starting,
                applied_index: None,
                applied_at: None,
                changed_at: previous.and_then(|p| p.changed_at),
                error: None,
                check: previous.and_then(|p| p.check.clone()),
                reload: previous.and_then(|p| p.reload.clone()),
                reloaded_at: previous.and_then(|p| p.reloaded_at),
                watch_connected: false,
                reload_pending: false,
                counters: Counters::default(),
            },
            has_check: resource.install.checkcmd.is_some(),
            ever_connected: false,
        }
    }

    fn connected(&mut self, connected: bool) {
        if connected && !self.status.watch_connected && self.ever_connected {
            self.status.counters.watch_reconnects += 1;
        }
        self.ever_connected |= connected;
        self.status.watch_connected = connected;
    }
}

impl Board {
    fn document(&self, mode: Mode) -> Document {
        let resources = self
            .entries
            .values()
            .map(|entry| {
                let mut status = entry.status.clone();
                status.state = if status.error.is_some() {
                    State::Error
                } else if status.applied_at.is_some() {
                    State::Ok
                } else {
                    State::Starting
                };
                status
            })
            .collect();
        Document {
            version: FORMAT_VERSION,
            pid: std::process::id(),
            mode,
            written_at: now(),
            resources,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes whenever the board changed, then pauses so a burst costs one write. Ends
    /// when the board is closed; [`StatusBoard::finish`] writes the last document.
    fn run_writer(&self) {
        loop {
            let mut board = self.lock();
            while !board.dirty && !board.closed {
                board = self
                    .changed
                    .wait(board)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if board.closed {
                return;
            }
            board.dirty = false;
            let document = board.document(self.mode);
            drop(board);
            self.write_logged(&document);
            let board = self.lock();
            let _ = self
                .changed
                .wait_timeout_while(board, MIN_WRITE_INTERVAL, |board| !board.closed);
        }
    }

    /// Every output; the first error names the file and what to do.
    fn write(&self, document: &Document) -> Result<(), String> {
        if let Some(path) = &self.outputs.status_file {
            let mut json = serde_json::to_vec_pretty(document)
                .map_err(|e| format!("cannot encode the status document: {e}"))?;
            json.push(b'\n');
            write_output(path, "--status-file", &json)?;
        }
        if let Some(path) = &self.outputs.metrics_file {
            write_output(path, "--metrics-file", metrics::render(document).as_bytes())?;
        }
        Ok(())
    }

    /// [`Shared::write`], logging a failure when writes start failing and when they work again.
    fn write_logged(&self, document: &Document) {
        let result = self.write(document);
        let was_failing = self.write_failing.swap(result.is_err(), Ordering::Relaxed);
        match result {
            Err(e) if !was_failing => log::warn!("{e} (logged once until it works again)"),
            Ok(()) if was_failing => log::info!("status written again"),
            _ => {}
        }
    }
}

fn write_output(path: &Path, flag: &str, bytes: &[u8]) -> Result<(), String> {
    crate::atomic_file::write_atomically(path, bytes).map_err(|e| {
        format!(
            "{flag} {}: cannot write it: {e}; create its directory or choose another path",
            path.display()
        )
    })
}

/// Why a status document could not be read.
#[derive(Debug)]
pub enum ReadError {
    Missing(PathBuf),
    Unreadable(PathBuf, std::io::Error),
    Invalid(PathBuf, serde_json::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Missing(path) => write!(
                f,
                "{} does not exist: is reconfig running with --status-file {}? (pass the daemon's path with --status-file)",
                path.display(),
                path.display()
            ),
            ReadError::Unreadable(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            ReadError::Invalid(path, e) => write!(
                f,
                "{} is not a reconfig status document: {e}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a status document as `--status-file` writes it.
pub fn read(path: &Path) -> Result<Document, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ReadError::Missing(path.to_path_buf())
        } else {
            ReadError::Unreadable(path.to_path_buf(), e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| ReadError::Invalid(path.to_path_buf(), e))
}
