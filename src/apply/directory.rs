//! What installs into one directory share within this process: a lock for the
//! directory's entries and its fsyncs.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

/// What this process shares about one target directory.
#[derive(Default)]
struct Directory {
    /// Held for each create, rename or unlink in the directory (see [`in_directory`]).
    changes: Mutex<()>,
    fsyncs: Mutex<Fsyncs>,
    fsync_done: Condvar,
}

/// The directory's fsyncs, numbered; one runs at a time, so they finish in order.
#[derive(Default)]
struct Fsyncs {
    started: u64,
    finished: u64,
    running: bool,
    /// Why the last finished one failed, if it did.
    last_error: Option<String>,
}

fn directory(dir: &Path) -> Arc<Directory> {
    static DIRECTORIES: OnceLock<Mutex<HashMap<PathBuf, Arc<Directory>>>> = OnceLock::new();
    let mut directories = DIRECTORIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = directories.get(dir) {
        return Arc::clone(known);
    }
    Arc::clone(directories.entry(dir.to_path_buf()).or_default())
}

/// Runs `change` (a create, rename or unlink in `dir`) holding this process's lock on `dir`.
///
/// The kernel takes a directory's own lock exclusively for each of these, and its waiters
/// spin for it: 100 resources installing into one directory at once spent a third of
/// their CPU time spinning there, time the other renders needed. Waiting here first puts
/// them to sleep instead; changes to different directories still run in parallel.
pub(super) fn in_directory<T>(dir: &Path, change: impl FnOnce() -> T) -> T {
    let directory = directory(dir);
    let _held = directory
        .changes
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    change()
}

/// fsync of the directory makes the rename durable. A failure here is only logged: the new
/// file is already in place and visible, only its survival of a power cut is in doubt.
///
/// Renames into one directory share fsyncs: any fsync of the directory that starts after a
/// rename covers it. So 100 resources installing into one directory at once wait for a few
/// fsyncs instead of queueing for 100 (each a disk flush, and on a VM an exit to the host).
pub(super) fn sync_dir(dir: &Path) {
    let shared = directory(dir);
    if let Err(error) = shared.fsync(|| File::open(dir).and_then(|d| d.sync_all())) {
        log::warn!("cannot fsync directory {}: {error}", dir.display());
    }
}

impl Directory {
    /// Returns once an fsync that started after this call has finished: one already running
    /// (it may predate the caller's rename) does not count, the next one started does.
    fn fsync(&self, run: impl FnOnce() -> io::Result<()>) -> Result<(), String> {
        let lock = || self.fsyncs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fsyncs = lock();
        let needed = fsyncs.started + 1;
        while fsyncs.running {
            fsyncs = self
                .fsync_done
                .wait(fsyncs)
                .unwrap_or_else(PoisonError::into_inner);
            if fsyncs.finished >= needed {
                return fsyncs.last_error.clone().map_or(Ok(()), Err);
            }
        }
        fsyncs.started += 1;
        fsyncs.running = true;
        let mine = fsyncs.started;
        drop(fsyncs);
        let result = run().map_err(|error| error.to_string());
        let mut fsyncs = lock();
        fsyncs.running = false;
        fsyncs.finished = mine;
        fsyncs.last_error = result.clone().err();
        drop(fsyncs);
        self.fsync_done.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn concurrent_directory_fsyncs_are_shared() {
        let directory = Directory::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let run = || {
            runs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(())
        };
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| assert_eq!(directory.fsync(run), Ok(())));
            }
        });
        let shared = runs.load(Ordering::SeqCst);
        assert!((1..8).contains(&shared), "{shared} fsyncs for 8 callers");
        directory.fsync(run).expect("fsync");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            shared + 1,
            "a later call runs its own"
        );
    }

    #[test]
    fn an_fsync_already_running_does_not_cover_a_later_caller() {
        let directory = Directory::default();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let (directory, runs) = (&directory, &runs);
            scope.spawn(move || {
                directory.fsync(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    started_tx.send(()).expect("send");
                    release_rx.recv().expect("released");
                    Err(io::Error::other("disk gone"))
                })
            });
            started_rx.recv().expect("first fsync running");
            let later = scope.spawn(move || {
                directory.fsync(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            });
            // Let the later caller arrive while the first fsync still runs.
            std::thread::sleep(std::time::Duration::from_millis(50));
            release_tx.send(()).expect("release");
            assert_eq!(
                later.join().expect("no panic"),
                Ok(()),
                "its own fsync, not the failed one"
            );
        });
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
