//! What reconfig remembers about a resource across restarts (`--state-dir`): whether a
//! reload is still owed for the installed file, and how many leaves that file was rendered
//! from (for `max_shrink`).
//!
//! One small JSON file per resource, named after its target path (so renaming the conf.d
//! file or changing its `id` keeps it), replaced atomically: a temp file in the same
//! directory, fsync'd, renamed over the old one, and the directory fsync'd, so a crash leaves
//! either the old state or the new one.

use crate::atomic_file;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The directory holding the state files.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    /// False in a dry run: state is read, never written.
    writable: bool,
}

/// A state directory that cannot be used; the binary adds the flag that chose it.
#[derive(Debug)]
pub struct StateDirError {
    pub dir: PathBuf,
    pub error: io::Error,
}

impl fmt::Display for StateDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state directory {}: cannot create or write it: {}",
            self.dir.display(),
            self.error
        )
    }
}

impl std::error::Error for StateDirError {}

impl StateDir {
    /// Creates `dir` when missing (mode 0700: the files name every target) and proves it
    /// writable now, so that a bad directory is a start-up error, not a reload forgotten
    /// later.
    pub fn open(dir: &Path) -> Result<StateDir, StateDirError> {
        let failed = |error| StateDirError {
            dir: dir.to_path_buf(),
            error,
        };
        if !dir.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(failed)?;
        }
        let probe = atomic_file::temp_path(&dir.join("write-probe")).map_err(failed)?;
        std::fs::File::create(&probe).map_err(failed)?;
        std::fs::remove_file(&probe).map_err(failed)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            writable: true,
        })
    }

    /// For a dry run: reads what is there, creates and writes nothing.
    pub fn read_only(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
            writable: false,
        }
    }

    /// The state file of the resource installing `target`: its file name (readable in `ls`)
    /// and a hash of the whole path (unique).
    fn file_for(&self, target: &Path) -> PathBuf {
        let digest = Sha256::digest(target.as_os_str().as_encoded_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let name = target
            .file_name()
            .map(|name| {
                name.to_string_lossy()
                    .replace(|c: char| c.is_control(), "_")
            })
            .unwrap_or_default();
        self.dir.join(format!("{name}.{hash}.json"))
    }
}

/// The remembered facts, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    /// For people reading the file; the file name already says whose it is.
    #[serde(default)]
    target: PathBuf,
    /// The installed file is newer than what the service last loaded.
    #[serde(default)]
    reload_pending: bool,
    /// How many leaves of the watched key the installed file was rendered from.
    #[serde(default)]
    rendered_leaves: Option<u64>,
}

/// One resource's remembered state, written through on every change. Without a state
/// directory (library use) it lives in memory only.
#[derive(Debug)]
pub struct Memory {
    file: Option<PathBuf>,
    writable: bool,
    stored: Stored,
}

impl Memory {
    /// The state of the resource installing `target`; a missing file is a fresh start, an
    /// unreadable one is logged and treated as one.
    pub fn load(dir: Option<&StateDir>, target: &Path, id: &str) -> Memory {
        let fresh = Stored {
            target: target.to_path_buf(),
            ..Stored::default()
        };
        let Some(dir) = dir else {
            return Memory {
                file: None,
                writable: false,
                stored: fresh,
            };
        };
        let file = dir.file_for(target);
        let stored = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!(target: id, "state file {} is not valid ({e}); starting without remembered state", file.display());
                fresh
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fresh,
            Err(e) => {
                log::warn!(target: id, "cannot read state file {} ({e}); starting without remembered state", file.display());
                fresh
            }
        };
        Memory {
            file: Some(file),
            writable: dir.writable,
            stored,
        }
    }

    /// Reads the file again: another reconfig (a `--onetime --force` beside the daemon) may
    /// have installed and reloaded since. A missing or unreadable file keeps what is known.
    pub fn refresh(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        if let Some(stored) = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            self.stored = stored;
        }
    }

    pub fn reload_pending(&self) -> bool {
        self.stored.reload_pending
    }

    pub fn rendered_leaves(&self) -> Option<u64> {
        self.stored.rendered_leaves
    }

    pub fn set_reload_pending(&mut self, pending: bool, id: &str) {
        self.update(id, |stored| stored.reload_pending = pending);
    }

    /// A new file is installed, rendered from `leaves` leaves: a reload is owed from now
    /// when `reload` (one write for both facts: an install costs one state write before
    /// its reload and one after).
    pub fn set_installed(&mut self, leaves: u64, reload: bool, id: &str) {
        self.update(id, |stored| {
            stored.rendered_leaves = Some(leaves);
            stored.reload_pending = reload;
        });
    }

    pub fn set_rendered_leaves(&mut self, leaves: u64, id: &str) {
        self.update(id, |stored| stored.rendered_leaves = Some(leaves));
    }

    /// Changes the state and, when it differs, writes it; a write that fails is logged (the
    /// run goes on: the state in memory still holds until the process ends).
    fn update(&mut self, id: &str, change: impl FnOnce(&mut Stored)) {
        let before = self.stored.clone();
        change(&mut self.stored);
        if self.stored == before || !self.writable {
            return;
        }
        let Some(file) = &self.file else {
            return;
        };
        if let Err(e) = write_atomically(file, &self.stored) {
            log::error!(target: id, "cannot write state file {}: {e}; a pending reload is not remembered if reconfig stops now", file.display());
        }
    }
}

/// The state as pretty JSON, replacing the file atomically.
fn write_atomically(file: &Path, stored: &Stored) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(stored).map_err(io::Error::other)?;
    text.push(b'\n');
    atomic_file::write_atomically(file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_new_memory_and_is_keyed_by_target() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::open(&temp.path().join("state")).expect("state dir");
        let target = Path::new("/etc/haproxy/haproxy.cfg");
        let mut memory = Memory::load(Some(&dir), target, "t");
        assert!(!memory.reload_pending());
        memory.set_reload_pending(true, "t");
        memory.set_rendered_leaves(12, "t");
        let again = Memory::load(Some(&dir), target, "t");
        assert!(again.reload_pending());
        assert_eq!(again.rendered_leaves(), Some(12));
        let other = Memory::load(Some(&dir), Path::new("/etc/other/haproxy.cfg"), "t");
        assert!(!other.reload_pending());
        let names: Vec<_> = std::fs::read_dir(temp.path().join("state"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("haproxy.cfg."), "{names:?}");
    }

    #[test]
    fn a_dry_run_reads_but_never_writes() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::read_only(&temp.path().join("absent"));
        let mut memory = Memory::load(Some(&dir), Path::new("/x"), "t");
        memory.set_reload_pending(true, "t");
        assert!(!temp.path().join("absent").exists());
    }

    #[test]
    fn a_corrupt_file_is_a_fresh_start() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = StateDir::open(temp.path()).expect("state dir");
        std::fs::write(dir.file_for(Path::new("/x")), "{not json").expect("write");
        let memory = Memory::load(Some(&dir), Path::new("/x"), "t");
        assert!(!memory.reload_pending());
        assert_eq!(memory.rendered_leaves(), None);
    }
}
