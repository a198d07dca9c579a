//! File-system side of apply: finding the real target, staging a complete temp file beside it,
//! renaming it into place, restoring the previous file, and cleaning up stale temp files.
//!
//! Temp files are named `.<basename>.reconfig-<pid>-<n>.tmp` in the target's own directory, so
//! the final `rename(2)` is atomic (same file system) and leftovers are easy to recognise.
//! `n` is the first free number from 0: a retried check sees the same `{{src}}` path, so its
//! error reads the same on every retry.

use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::directory::{in_directory, sync_dir};
use super::in_place;
use super::owner::{NotPreserved, Ownership, WantedId};

/// Symlink hops followed before giving up, like the kernel's own limit.
const MAX_SYMLINK_HOPS: usize = 40;
/// Longest basename kept in a temp file name, so the name stays under NAME_MAX (255).
const MAX_BASENAME_IN_TEMP: usize = 200;
/// Attempts at a fresh temp name when one already exists.
const TEMP_NAME_ATTEMPTS: usize = 100;

/// The file that is really replaced: the end of the target's symlink chain.
pub(crate) struct RealTarget {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub file_name: OsString,
}

impl RealTarget {
    /// Follows `target` through symlinks (a dangling chain ends at the missing file, which
    /// will be created). The links themselves are never replaced.
    pub(crate) fn resolve(target: &Path) -> io::Result<RealTarget> {
        let mut path = target.to_path_buf();
        for _ in 0..MAX_SYMLINK_HOPS {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let destination = fs::read_link(&path)?;
                    path = parent_dir(&path).join(destination);
                }
                Ok(_) => return RealTarget::at(path),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return RealTarget::at(path)
                }
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    fn at(path: PathBuf) -> io::Result<RealTarget> {
        let file_name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
            .to_os_string();
        Ok(RealTarget {
            dir: parent_dir(&path),
            file_name,
            path,
        })
    }
}

/// The directory holding `path` ("." for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The installed file as it is now.
pub(crate) struct Current {
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Why the current target cannot be read.
pub(crate) enum ReadError {
    Io(io::Error),
    /// It exists but is a directory, device, FIFO or socket; the str says which.
    NotARegularFile(&'static str),
}

/// Reads the current target; `Ok(None)` when it does not exist.
pub(crate) fn read_current(path: &Path) -> Result<Option<Current>, ReadError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(ReadError::Io(error)),
    };
    // Checked before opening: opening a FIFO would block.
    if !meta.is_file() {
        return Err(ReadError::NotARegularFile(kind_of(&meta)));
    }
    let mut file = File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(ReadError::Io)?;
    Ok(Some(Current {
        bytes,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Creates `dir` and its missing parents with mode 0755, set explicitly (umask ignored).
/// On error, returns the directory that could not be created.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|ancestor| {
            !ancestor.as_os_str().is_empty()
                && matches!(fs::metadata(ancestor), Err(e) if e.kind() == io::ErrorKind::NotFound)
        })
        .collect();
    for path in missing.into_iter().rev() {
        let created = match DirBuilder::new().mode(0o755).create(path) {
            Ok(()) => fs::set_permissions(path, Permissions::from_mode(0o755)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error),
        };
        created.map_err(|error| (path.to_path_buf(), error))?;
    }
    Ok(())
}

/// Mode and ids for a staged file.
#[derive(Clone, Copy)]
pub(crate) struct Attributes {
    pub mode: u32,
    pub ownership: Ownership,
}

impl Attributes {
    /// What a restored previous file gets: exactly its old mode and (preserved) ids.
    pub(crate) fn of(current: &Current) -> Attributes {
        let preserve = |id| {
            Some(WantedId {
                id,
                requested: false,
            })
        };
        Attributes {
            mode: current.mode,
            ownership: Ownership {
                uid: preserve(current.uid),
                gid: preserve(current.gid),
            },
        }
    }

    /// How `current` differs from this mode and the ids the resource asks for (ids only
    /// preserved from it never differ), for the log: `["mode 0644 -> 0600", "owner 1000 -> 0"]`.
    /// Empty, and allocation-free, when the file already has them.
    pub(crate) fn differences(&self, current: &Current) -> Vec<String> {
        let mut differences = Vec::new();
        if self.mode != current.mode {
            differences.push(format!("mode {:04o} -> {:04o}", current.mode, self.mode));
        }
        for (what, wanted, actual) in [
            ("owner", self.ownership.uid, current.uid),
            ("group", self.ownership.gid, current.gid),
        ] {
            if let Some(wanted) = wanted.filter(|w| w.requested && w.id != actual) {
                differences.push(format!("{what} {actual} -> {}", wanted.id));
            }
        }
        differences
    }
}

/// The step of staging that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StageStep {
    Create,
    Write,
    Chown,
    Chmod,
    Sync,
}

#[derive(Debug)]
pub(crate) struct StageError {
    pub step: StageStep,
    pub path: PathBuf,
    pub error: io::Error,
}

/// A complete, fsync'd temp file beside the target. Removed on drop unless renamed.
pub(crate) struct Staged {
    path: PathBuf,
    /// What it was given, for an in-place rewrite to give the target.
    attributes: Attributes,
    /// Preserved ids that could not be kept (see `owner`), for the caller to log.
    pub not_preserved: Vec<NotPreserved>,
    installed: bool,
}

impl Staged {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the staged file to `path` in `dir` (its own directory); no fsync.
    pub(crate) fn rename_to(&mut self, dir: &Path, path: &Path) -> io::Result<()> {
        in_directory(dir, || fs::rename(&self.path, path))?;
        self.installed = true;
        Ok(())
    }

    /// Renames the staged file over `target` and fsyncs the directory. When the target
    /// cannot be renamed over (a bind mount), rewrites it in place instead (see `in_place`).
    /// On error the staged file is removed (on drop) and the target keeps its content.
    pub(crate) fn install(mut self, target: &RealTarget) -> io::Result<Placed> {
        match self.rename_to(&target.dir, &target.path) {
            Ok(()) => {
                sync_dir(&target.dir);
                Ok(Placed::Renamed)
            }
            Err(error) if in_place::rename_refused(&error) => {
                in_place::rewrite(&self.path, &target.path, &self.attributes).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("rename was refused ({error}), and rewriting in place failed: {e}"),
                    )
                })?;
                Ok(Placed::InPlace {
                    rename_error: error,
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// How an installed file got into place.
#[derive(Debug)]
pub(crate) enum Placed {
    /// Atomically, by rename(2).
    Renamed,
    /// Rewritten through a descriptor because rename(2) was refused (a bind-mounted file).
    InPlace { rename_error: io::Error },
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.installed {
            let dir = parent_dir(&self.path);
            if let Err(error) = in_directory(&dir, || fs::remove_file(&self.path)) {
                log::warn!(
                    "cannot remove temporary file {}: {error}",
                    self.path.display()
                );
            }
        }
    }
}

/// Writes `content` to a new temp file beside `target`, with the given mode and ids.
pub(crate) fn stage(
    target: &RealTarget,
    content: &[u8],
    attributes: &Attributes,
) -> Result<Staged, StageError> {
    let (path, mut file) = create_temp(target)?;
    // From here the guard removes the file on any error.
    let mut staged = Staged {
        path: path.clone(),
        attributes: *attributes,
        not_preserved: Vec::new(),
        installed: false,
    };
    let fail = |step, error| StageError {
        step,
        path: path.clone(),
        error,
    };
    file.write_all(content)
        .map_err(|e| fail(StageStep::Write, e))?;
    // chown before chmod: chown clears set-id bits.
    staged.not_preserved = attributes
        .ownership
        .apply_to(&file)
        .map_err(|e| fail(StageStep::Chown, e))?;
    file.set_permissions(Permissions::from_mode(attributes.mode))
        .map_err(|e| fail(StageStep::Chmod, e))?;
    file.sync_all().map_err(|e| fail(StageStep::Sync, e))?;
    Ok(staged)
}

/// The path errors mention for a temp file: the naming pattern, since the file is removed.
fn staged_path(target: &RealTarget) -> PathBuf {
    let mut name = temp_prefix(&target.file_name);
    name.push("<pid>-<n>.tmp");
    target.dir.join(name)
}

/// Creates a fresh temp file with O_EXCL (never follows or reuses an existing path).
fn create_temp(target: &RealTarget) -> Result<(PathBuf, File), StageError> {
    let mut last_error = io::Error::from(io::ErrorKind::AlreadyExists);
    for attempt in 0..TEMP_NAME_ATTEMPTS {
        let path = target.dir.join(temp_name(&target.file_name, attempt));
        let created = in_directory(&target.dir, || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        });
        match created {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = error,
            Err(error) => {
                return Err(StageError {
                    step: StageStep::Create,
                    path,
                    error,
                })
            }
        }
    }
    Err(StageError {
        step: StageStep::Create,
        path: staged_path(target),
        error: last_error,
    })
}

fn temp_name(file_name: &OsStr, attempt: usize) -> OsString {
    let mut name = temp_prefix(file_name);
    name.push(format!("{}-{attempt}.tmp", std::process::id()));
    name
}

/// `.<basename>.reconfig-`, with the basename shortened to keep the name valid.
fn temp_prefix(file_name: &OsStr) -> OsString {
    let bytes = file_name.as_bytes();
    let basename = &bytes[..bytes.len().min(MAX_BASENAME_IN_TEMP)];
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(basename);
    prefix.extend_from_slice(b".reconfig-");
    OsString::from_vec(prefix)
}

/// A copy of rendered content in a private directory of its own, for a dry run's check:
/// a dry run writes nothing beside the target. Both are removed on drop.
pub(crate) struct PrivateCopy {
    dir: PathBuf,
    path: PathBuf,
}

impl PrivateCopy {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            log::warn!("cannot remove directory {}: {error}", self.dir.display());
        }
    }
}

/// Writes `content` to `<tmp>/reconfig-dry-run-XXXXXX/<target's file name>` (mode 0600 in a
/// 0700 directory, so no other user sees the rendered text).
pub(crate) fn copy_privately(
    target: &RealTarget,
    content: &[u8],
) -> Result<PrivateCopy, StageError> {
    let template = std::env::temp_dir().join("reconfig-dry-run-XXXXXX");
    let fail = |step, path: &Path, error| StageError {
        step,
        path: path.to_path_buf(),
        error,
    };
    let mut template = std::ffi::CString::new(template.into_os_string().into_vec())
        .map_err(|error| {
            let error = io::Error::new(io::ErrorKind::InvalidInput, error);
            fail(StageStep::Create, &std::env::temp_dir(), error)
        })?
        .into_bytes_with_nul();
    // SAFETY: a writable, NUL-terminated buffer ending in XXXXXX, as mkdtemp(3) requires;
    // it only rewrites the Xs in place.
    let created = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    template.pop();
    let dir = PathBuf::from(OsString::from_vec(template));
    if created.is_null() {
        return Err(fail(StageStep::Create, &dir, io::Error::last_os_error()));
    }
    let copy = PrivateCopy {
        path: dir.join(&target.file_name),
        dir,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy.path)
        .map_err(|e| fail(StageStep::Create, &copy.path, e))?;
    file.write_all(content)
        .map_err(|e| fail(StageStep::Write, &copy.path, e))?;
    Ok(copy)
}

/// Puts `previous` back in place of the target (atomically, with its old mode and ids), or
/// removes the target when there was no previous file.
pub(crate) fn restore(target: &RealTarget, previous: Option<&Current>) -> io::Result<()> {
    match previous {
        Some(current) => {
            let staged = stage(target, &current.bytes, &Attributes::of(current))
                .map_err(|failure| failure.error)?;
            staged.install(target).map(|_| ())
        }
        None => {
            fs::remove_file(&target.path)?;
            sync_dir(&target.dir);
            Ok(())
        }
    }
}

/// Removes temp files a crashed earlier run left beside `target`; returns how many.
/// Files named with the pid of a live process are skipped: they may belong to an apply in
/// progress, ours or another reconfig's (cron's `--onetime` beside the daemon).
pub(crate) fn remove_stale(target: &RealTarget) -> usize {
    let Ok(entries) = fs::read_dir(&target.dir) else {
        return 0;
    };
    let prefix = temp_prefix(&target.file_name);
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_stale = stale_temp_pid(&name, &prefix).is_some_and(|pid| !process_exists(pid))
            && entry.file_type().is_ok_and(|kind| kind.is_file());
        if !is_stale {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(error) => log::warn!(
                "cannot remove stale temporary file {}: {error}",
                entry.path().display()
            ),
        }
    }
    removed
}

/// Whether a process `pid` exists (ours included). A pid reused by an unrelated process
/// keeps a stale file until that process ends: a leftover file is harmless, deleting a
/// live run's staged file fails its check.
fn process_exists(pid: u32) -> bool {
    // 0 and values beyond pid_t would make kill(2) signal a group or fail: no such process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    // EPERM: it exists but belongs to another user.
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid in a name of the form `<prefix><pid>-<n>.tmp`, if it has that form.
fn stale_temp_pid(name: &OsStr, prefix: &OsStr) -> Option<u32> {
    let rest = name.as_bytes().strip_prefix(prefix.as_bytes())?;
    let rest = std::str::from_utf8(rest.strip_suffix(b".tmp")?).ok()?;
    let (pid, counter) = rest.split_once('-')?;
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if all_digits(pid) && all_digits(counter) {
        pid.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_follow_the_recognisable_pattern() {
        let name = temp_name(OsStr::new("haproxy.cfg"), 3);
        let prefix = temp_prefix(OsStr::new("haproxy.cfg"));
        assert!(name.to_string_lossy().starts_with(".haproxy.cfg.reconfig-"));
        assert_eq!(stale_temp_pid(&name, &prefix), Some(std::process::id()));
    }

    #[test]
    fn only_exact_pattern_counts_as_stale() {
        let prefix = temp_prefix(OsStr::new("a.conf"));
        let pid = |name: &str| stale_temp_pid(OsStr::new(name), &prefix);
        assert_eq!(pid(".a.conf.reconfig-12-3.tmp"), Some(12));
        assert_eq!(pid(".a.conf.reconfig-12-3.tmp.bak"), None);
        assert_eq!(pid(".a.conf.reconfig--3.tmp"), None);
        assert_eq!(pid(".a.conf.reconfig-x-3.tmp"), None);
        assert_eq!(pid(".b.conf.reconfig-12-3.tmp"), None);
        assert_eq!(pid("a.conf"), None);
    }

    #[test]
    fn live_processes_exist_and_reaped_ones_do_not() {
        assert!(process_exists(std::process::id()));
        // pid 1 runs as root: kill(2) answers EPERM to other users, which still means alive.
        assert!(process_exists(1));
        assert!(!process_exists(0));
        assert!(!process_exists(u32::MAX));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_exists(pid));
    }

    #[test]
    fn long_basenames_are_shortened_in_temp_names() {
        let long = "x".repeat(250);
        assert!(temp_name(OsStr::new(&long), 99).len() < 255);
    }

    #[test]
    fn relative_symlink_resolves_against_its_directory() {
        let dir = std::env::temp_dir().join(format!("reconfig-install-{}", std::process::id()));
        fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink("real/file.conf", dir.join("link.conf")).unwrap();
        let target = RealTarget::resolve(&dir.join("link.conf")).unwrap();
        assert_eq!(target.path, dir.join("real/file.conf"));
        assert_eq!(target.dir, dir.join("real"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let dir = std::env::temp_dir().join(format!("reconfig-loop-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("b", dir.join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("b")).unwrap();
        let error = RealTarget::resolve(&dir.join("a")).err().unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
        fs::remove_dir_all(&dir).unwrap();
    }
}
