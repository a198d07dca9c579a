//! The error apply returns: which resource and target, which step, the cause, what became of
//! the target, and what the operator can do.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::command::CommandError;

#[derive(Debug)]
pub struct ApplyError {
    /// The resource id.
    pub id: String,
    /// The target as configured (before following symlinks).
    pub target: PathBuf,
    /// Boxed to keep `Result<_, ApplyError>` small.
    pub kind: Box<ApplyErrorKind>,
    /// A resource with several templates: its other files that were to change with
    /// `target`. They share its fate: left unchanged, or put back with it.
    pub together_with: Vec<PathBuf>,
}

pub(super) fn apply_error(id: &str, target: &Path, kind: ApplyErrorKind) -> ApplyError {
    ApplyError {
        id: id.to_string(),
        target: target.to_path_buf(),
        kind: Box::new(kind),
        together_with: Vec::new(),
    }
}

pub(super) fn io_error(
    id: &str,
    target: &Path,
    step: Step,
    path: &Path,
    source: io::Error,
) -> ApplyError {
    apply_error(
        id,
        target,
        ApplyErrorKind::Io {
            step,
            path: path.to_path_buf(),
            source,
        },
    )
}

#[derive(Debug)]
pub enum ApplyErrorKind {
    /// A file-system operation on `path` failed; the target was left unchanged.
    Io {
        step: Step,
        path: PathBuf,
        source: io::Error,
    },
    /// The target exists but is a directory, device, FIFO or socket.
    NotARegularFile { path: PathBuf, what: &'static str },
    /// The target's directory does not exist and `mkdirs` is off.
    DirectoryMissing { dir: PathBuf },
    /// `owner` or `group` names no user/group (or the lookup itself failed).
    UnknownId {
        field: &'static str,
        name: String,
        lookup_error: Option<io::Error>,
    },
    /// The check command rejected the new content.
    CheckFailed {
        error: CommandError,
        target_state: TargetState,
    },
}

/// Where a failed check left the target.
#[derive(Debug)]
pub enum TargetState {
    /// Checked before install (`{{src}}`): the target was never touched.
    Untouched,
    /// Checked after install: the previous content (mode, owner) was put back.
    Restored,
    /// Checked after install: there was no previous file, so the new one was removed.
    RemovedNewFile,
    /// Checked after install and putting the previous state back failed: the target holds
    /// the new, rejected content.
    RestoreFailed(io::Error),
    /// Dry run: the check ran on a private copy; nothing was installed.
    DryRun,
}

/// The step of an install that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    ResolveSymlinks,
    ReadCurrent,
    CreateDirectory,
    CreateTemp,
    WriteTemp,
    ChownTemp,
    ChmodTemp,
    SyncTemp,
    Rename,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::ResolveSymlinks => "looking up",
            Step::ReadCurrent => "reading the current",
            Step::CreateDirectory => "creating directory",
            Step::CreateTemp => "creating temporary file",
            Step::WriteTemp => "writing temporary file",
            Step::ChownTemp => "setting owner/group of temporary file",
            Step::ChmodTemp => "setting mode of temporary file",
            Step::SyncTemp => "syncing temporary file",
            Step::Rename => "renaming the temporary file over",
        })
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No resource id: every log line already carries it as its label.
        let target = self.subject();
        match self.kind.as_ref() {
            ApplyErrorKind::CheckFailed {
                target_state: TargetState::DryRun,
                ..
            } => write!(f, "dry run: the change to {target} would be rejected: ")?,
            _ => write!(f, "cannot install {target}: ")?,
        }
        match self.kind.as_ref() {
            ApplyErrorKind::Io { step, path, source } => {
                write!(f, "{step} {} failed: {source}. ", path.display())?;
                write!(f, "{}{target} was left unchanged", advice(*step, source))
            }
            ApplyErrorKind::NotARegularFile { path, what } => write!(
                f,
                "{} is {what}, not a regular file. Point \"target\" at a file; {target} was left unchanged",
                path.display()
            ),
            ApplyErrorKind::DirectoryMissing { dir } => write!(
                f,
                "directory {} of target does not exist; create it or set \"mkdirs\": true",
                dir.display()
            ),
            ApplyErrorKind::UnknownId { field, name, lookup_error: None } => write!(
                f,
                "\"{field}\": no {} named {name:?} on this host. Create it or fix \"{field}\"; {target} was left unchanged",
                if *field == "owner" { "user" } else { "group" }
            ),
            ApplyErrorKind::UnknownId { field, name, lookup_error: Some(error) } => write!(
                f,
                "\"{field}\": looking up {name:?} failed: {error}. Check /etc/passwd, /etc/group and NSS; {target} was left unchanged"
            ),
            ApplyErrorKind::CheckFailed { error, target_state } => {
                write!(f, "the check of the new content failed: {error}\n{}", describe(target_state, &target))
            }
        }
    }
}

impl ApplyError {
    /// The target, or for a group the target and the files that share its fate.
    fn subject(&self) -> String {
        let target = self.target.display().to_string();
        if self.together_with.is_empty() {
            return target;
        }
        let others: Vec<String> = self
            .together_with
            .iter()
            .map(|other| other.display().to_string())
            .collect();
        format!("{target} (with {}, one group)", others.join(", "))
    }
}

fn describe(state: &TargetState, target: &dyn fmt::Display) -> String {
    match state {
        TargetState::Untouched => format!("{target} was left unchanged; fix the template or the data so the check passes"),
        TargetState::Restored => format!("the previous {target} was restored; fix the template or the data so the check passes"),
        TargetState::RemovedNewFile => format!("{target} did not exist before and was removed again; fix the template or the data so the check passes"),
        TargetState::DryRun => format!("nothing was written; a real run would leave {target} unchanged"),
        TargetState::RestoreFailed(error) => format!(
            "RESTORING THE PREVIOUS CONTENT FAILED ({error}): {target} now holds the rejected new content. Fix it by hand before reloading the service"
        ),
    }
}

/// A hint for the usual causes, by error kind.
fn advice(step: Step, error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::PermissionDenied if step == Step::ReadCurrent => {
            "Check that reconfig's user may read it. "
        }
        io::ErrorKind::PermissionDenied => {
            "Check that reconfig's user may write the target's directory. "
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            "The file system is mounted read-only; remount it read-write or choose another target. "
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "Free space on that file system. "
        }
        io::ErrorKind::NotADirectory => {
            "A component of the path is not a directory; fix \"target\". "
        }
        _ if error.raw_os_error() == Some(libc::ELOOP) => "Fix the symlink loop. ",
        _ => "",
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.kind.as_ref() {
            ApplyErrorKind::Io { source, .. } => Some(source),
            ApplyErrorKind::UnknownId {
                lookup_error: Some(error),
                ..
            } => Some(error),
            ApplyErrorKind::CheckFailed { error, .. } => Some(error),
            _ => None,
        }
    }
}
