//! Staging, check, atomic install and reload of a target file.
//!
//! Guarantees: the target is never left partial (a complete, fsync'd temp file in the same
//! directory is renamed over it); a failed check never leaves the new content in place; bytes
//! equal to the file on disk, with the mode and ids the resource asks for, mean no write and
//! no command.
//!
//! Order of [`apply`]: follow symlinks → read current → owner lookup → (same bytes, mode and
//! requested ids: done) → (dry run: check with `{{src}}` on a private copy, diff) → directory → stage → check with `{{src}}` →
//! rename → check without `{{src}}` (restore on failure) → splay → reload.

mod command;
mod diff;
mod directory;
mod error;
mod install;
mod owner;
mod placeholder;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::stop::Stop;

pub use command::{CommandError, CommandFailure};
pub use diff::FileSummary;
pub use error::{ApplyError, ApplyErrorKind, Step, TargetState};

use command::human_duration;
use install::{Attributes, Current, ReadError, RealTarget, StageError, StageStep};
use owner::{NotPreserved, Ownership, WantedId};

/// Mode of a new file when the resource sets none.
const DEFAULT_MODE: u32 = 0o644;

/// How one resource's target is installed.
#[derive(Clone, Debug)]
pub struct InstallSpec {
    /// Resource id, for messages.
    pub id: String,
    pub target: PathBuf,
    pub mode: Option<u32>,
    /// User name or numeric uid.
    pub owner: Option<String>,
    /// Group name or numeric gid.
    pub group: Option<String>,
    /// Create the target's missing directories (mode 0755).
    pub mkdirs: bool,
    pub checkcmd: Option<String>,
    pub reloadcmd: Option<String>,
    /// Pause between install and reload.
    pub splay: Duration,
    /// Limit for each check/reload command.
    pub command_timeout: Duration,
}

/// What applying a text did; `Reload` is what the reload gave ([`apply`]), or `()` when
/// it is still to run ([`install`]).
#[derive(Debug)]
pub enum Outcome<Reload = ReloadResult> {
    /// The rendered text equals the bytes on disk: nothing written, no command run.
    Unchanged,
    /// The new content is installed (even if the reload failed).
    Installed {
        old: Option<FileSummary>,
        new: FileSummary,
        reload: Reload,
    },
    /// Dry run: the unified diff; nothing written beside the target, no reload run (a
    /// `{{src}}` check ran on a private copy and passed).
    WouldChange { diff: String },
}

#[derive(Debug)]
pub enum ReloadResult {
    NotConfigured,
    Reloaded,
    Failed(CommandError),
    /// Stopped during the splay or while the command ran (its process group was killed).
    Stopped,
}

/// Brings `spec.target` to `content`: see the module doc for the order and guarantees.
pub fn apply(
    spec: &InstallSpec,
    content: &str,
    dry_run: bool,
    stop: &Stop,
) -> Result<Outcome, ApplyError> {
    Ok(match install(spec, content, dry_run, stop)? {
        Outcome::Unchanged => Outcome::Unchanged,
        Outcome::Installed { old, new, .. } => Outcome::Installed {
            old,
            new,
            reload: reload(spec, stop),
        },
        Outcome::WouldChange { diff } => Outcome::WouldChange { diff },
    })
}

/// [`apply`] up to the reload, which the caller runs ([`reload_now`]) when it sees fit: the
/// daemon waits out the splay as a deadline and reloads on its own threads, so that
/// installing the next resource's file never waits behind this one's reload.
pub fn install(
    spec: &InstallSpec,
    content: &str,
    dry_run: bool,
    stop: &Stop,
) -> Result<Outcome<()>, ApplyError> {
    let target = RealTarget::resolve(&spec.target)
        .map_err(|e| io_error(spec, Step::ResolveSymlinks, &spec.target, e))?;
    let current = read_current(spec, &target)?;
    let current_bytes = current.as_ref().map(|current| current.bytes.as_slice());
    let attributes = wanted_attributes(spec, current.as_ref())?;
    // Same bytes: nothing to do, unless the resource asks for a mode or owner the file
    // does not have (it was changed by hand, or the resource's fields were); then the
    // file is installed again with them, checked and reloaded like any change.
    let differences = current
        .as_ref()
        .map(|current| attributes.differences(current))
        .unwrap_or_default();
    if current_bytes == Some(content.as_bytes()) && differences.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    let attribute_change = if differences.is_empty() {
        String::new()
    } else {
        format!(" ({})", differences.join(", "))
    };
    if dry_run {
        check_privately(spec, &target, content, stop)?;
        let mut diff = diff::unified(&spec.target, &spec.id, current_bytes, content);
        if !differences.is_empty() {
            diff.push_str(&format!("# attributes{attribute_change}\n"));
        }
        if spec
            .checkcmd
            .as_ref()
            .is_some_and(|check| !check.contains(placeholder::SRC))
        {
            diff.push_str(
                "# checkcmd has no {{src}}: it checks the installed file, not run in a dry run\n",
            );
        }
        return Ok(Outcome::WouldChange { diff });
    }
    ensure_directory(spec, &target)?;
    install_checked(spec, &target, current.as_ref(), content, &attributes, stop)?;
    let old = current_bytes.map(FileSummary::of);
    let new = FileSummary::of(content.as_bytes());
    log::info!(target: &spec.id, "changed {}: {} -> {new}{attribute_change}", spec.target.display(), summary_text(old.as_ref()));
    Ok(Outcome::Installed {
        old,
        new,
        reload: (),
    })
}

/// Waits `spec.splay` then runs `reloadcmd`. Public so a failed reload can be retried.
pub fn reload(spec: &InstallSpec, stop: &Stop) -> ReloadResult {
    if spec.reloadcmd.is_none() {
        return ReloadResult::NotConfigured;
    }
    if stop.sleep(spec.splay) {
        return ReloadResult::Stopped;
    }
    reload_now(spec, stop)
}

/// Runs `reloadcmd` at once, without the splay.
pub fn reload_now(spec: &InstallSpec, stop: &Stop) -> ReloadResult {
    let Some(reloadcmd) = &spec.reloadcmd else {
        return ReloadResult::NotConfigured;
    };
    let command = placeholder::expand(reloadcmd, &spec.target, None);
    match command::run(&command, spec.command_timeout, stop) {
        Ok(took) => {
            log::info!(target: &spec.id, "reloaded: `{}` ({})", command.display, human_duration(took));
            ReloadResult::Reloaded
        }
        Err(error) if matches!(error.failure, CommandFailure::Stopped) => ReloadResult::Stopped,
        Err(error) => {
            // The caller reports the failure (once while it persists).
            log::debug!(target: &spec.id, "reload failed: {error}");
            ReloadResult::Failed(error)
        }
    }
}

/// Removes temp files that a crashed earlier reconfig left beside `target` (after following
/// its symlinks); returns how many. Files of a live process (a daemon's check in progress
/// while cron starts `--onetime`) are kept. Meant for start-up.
pub fn remove_stale_temp_files(target: &Path) -> usize {
    match RealTarget::resolve(target) {
        Ok(real) => install::remove_stale(&real),
        Err(_) => 0,
    }
}

fn read_current(spec: &InstallSpec, target: &RealTarget) -> Result<Option<Current>, ApplyError> {
    install::read_current(&target.path).map_err(|failure| match failure {
        ReadError::Io(e) => io_error(spec, Step::ReadCurrent, &target.path, e),
        ReadError::NotARegularFile(what) => apply_error(
            spec,
            ApplyErrorKind::NotARegularFile {
                path: target.path.clone(),
                what,
            },
        ),
    })
}

fn ensure_directory(spec: &InstallSpec, target: &RealTarget) -> Result<(), ApplyError> {
    match std::fs::metadata(&target.dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        // Exists, or an error the temp-file creation will report precisely.
        _ => return Ok(()),
    }
    if !spec.mkdirs {
        let dir = target.dir.clone();
        return Err(apply_error(spec, ApplyErrorKind::DirectoryMissing { dir }));
    }
    install::create_dirs(&target.dir)
        .map_err(|(dir, error)| io_error(spec, Step::CreateDirectory, &dir, error))
}

/// Mode: spec, else current, else 0644. Ids: spec (must work), else current (preserved).
fn wanted_attributes(
    spec: &InstallSpec,
    current: Option<&Current>,
) -> Result<Attributes, ApplyError> {
    let requested = |id| {
        Some(WantedId {
            id,
            requested: true,
        })
    };
    let preserved = |id| {
        Some(WantedId {
            id,
            requested: false,
        })
    };
    let uid = match &spec.owner {
        Some(name) => requested(lookup(spec, "owner", name, owner::user_id)?),
        None => current.and_then(|current| preserved(current.uid)),
    };
    let gid = match &spec.group {
        Some(name) => requested(lookup(spec, "group", name, owner::group_id)?),
        None => current.and_then(|current| preserved(current.gid)),
    };
    let mode = spec
        .mode
        .or(current.map(|current| current.mode))
        .unwrap_or(DEFAULT_MODE);
    Ok(Attributes {
        mode,
        ownership: Ownership { uid, gid },
    })
}

fn lookup(
    spec: &InstallSpec,
    field: &'static str,
    name: &str,
    resolve: fn(&str) -> io::Result<Option<u32>>,
) -> Result<u32, ApplyError> {
    let unknown = |lookup_error| ApplyErrorKind::UnknownId {
        field,
        name: name.to_string(),
        lookup_error,
    };
    match resolve(name) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(apply_error(spec, unknown(None))),
        Err(error) => Err(apply_error(spec, unknown(Some(error)))),
    }
}

/// Stage, check, rename; on any failure the target keeps (or gets back) its previous state.
fn install_checked(
    spec: &InstallSpec,
    target: &RealTarget,
    current: Option<&Current>,
    content: &str,
    attributes: &Attributes,
    stop: &Stop,
) -> Result<(), ApplyError> {
    let staged = install::stage(target, content.as_bytes(), attributes)
        .map_err(|failure| stage_error(spec, failure))?;
    log_not_preserved(spec, &staged.not_preserved);
    let checkcmd = spec.checkcmd.as_deref();
    if let Some(check) = checkcmd.filter(|check| check.contains(placeholder::SRC)) {
        // On error `staged` is dropped, which removes it: the target was never touched.
        run_check(spec, check, Some(staged.path()), stop)
            .map_err(|error| check_failed(spec, error, TargetState::Untouched))?;
    }
    staged
        .install(target)
        .map_err(|e| io_error(spec, Step::Rename, &target.path, e))?;
    if let Some(check) = checkcmd.filter(|check| !check.contains(placeholder::SRC)) {
        if let Err(error) = run_check(spec, check, None, stop) {
            let state = restore_after_failed_check(spec, target, current);
            return Err(check_failed(spec, error, state));
        }
    }
    Ok(())
}

/// Dry run: a `{{src}}` check runs on a private copy of the new content, so the diff shown
/// is one a real run would install. Other checks need the installed file and do not run.
fn check_privately(
    spec: &InstallSpec,
    target: &RealTarget,
    content: &str,
    stop: &Stop,
) -> Result<(), ApplyError> {
    let Some(check) = spec
        .checkcmd
        .as_deref()
        .filter(|check| check.contains(placeholder::SRC))
    else {
        return Ok(());
    };
    let copy = install::copy_privately(target, content.as_bytes())
        .map_err(|failure| stage_error(spec, failure))?;
    run_check(spec, check, Some(copy.path()), stop)
        .map_err(|error| check_failed(spec, error, TargetState::DryRun))
}

fn restore_after_failed_check(
    spec: &InstallSpec,
    target: &RealTarget,
    previous: Option<&Current>,
) -> TargetState {
    match install::restore(target, previous) {
        Ok(()) if previous.is_some() => TargetState::Restored,
        Ok(()) => TargetState::RemovedNewFile,
        Err(error) => {
            log::error!(target: &spec.id, "restoring {} after the failed check failed: {error}", spec.target.display());
            TargetState::RestoreFailed(error)
        }
    }
}

fn run_check(
    spec: &InstallSpec,
    check: &str,
    staged: Option<&Path>,
    stop: &Stop,
) -> Result<(), CommandError> {
    let command = placeholder::expand(check, &spec.target, staged);
    match command::run(&command, spec.command_timeout, stop) {
        Ok(took) => {
            log::info!(target: &spec.id, "check ok: `{}` ({})", command.display, human_duration(took));
            Ok(())
        }
        Err(error) => {
            // The caller logs the error.
            log::debug!(target: &spec.id, "check failed: {error}");
            Err(error)
        }
    }
}

fn log_not_preserved(spec: &InstallSpec, skipped: &[NotPreserved]) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    for item in skipped {
        let (what, wanted, actual) = match item {
            NotPreserved::Uid { wanted, actual } => ("owner uid", wanted, actual),
            NotPreserved::Gid { wanted, actual } => ("group gid", wanted, actual),
        };
        log::warn!(
            target: &spec.id,
            "cannot keep {what} {wanted} of {} (reconfig runs as uid {euid}): the new file gets {actual}; run reconfig as root or set \"owner\"/\"group\"",
            spec.target.display()
        );
    }
}

fn summary_text(summary: Option<&FileSummary>) -> String {
    summary.map_or_else(|| "(none)".to_string(), FileSummary::to_string)
}

fn apply_error(spec: &InstallSpec, kind: ApplyErrorKind) -> ApplyError {
    ApplyError {
        id: spec.id.clone(),
        target: spec.target.clone(),
        kind: Box::new(kind),
    }
}

fn io_error(spec: &InstallSpec, step: Step, path: &Path, source: io::Error) -> ApplyError {
    apply_error(
        spec,
        ApplyErrorKind::Io {
            step,
            path: path.to_path_buf(),
            source,
        },
    )
}

fn stage_error(spec: &InstallSpec, failure: StageError) -> ApplyError {
    let step = match failure.step {
        StageStep::Create => Step::CreateTemp,
        StageStep::Write => Step::WriteTemp,
        StageStep::Chown => Step::ChownTemp,
        StageStep::Chmod => Step::ChmodTemp,
        StageStep::Sync => Step::SyncTemp,
    };
    io_error(spec, step, &failure.path, failure.error)
}

fn check_failed(spec: &InstallSpec, error: CommandError, target_state: TargetState) -> ApplyError {
    apply_error(
        spec,
        ApplyErrorKind::CheckFailed {
            error,
            target_state,
        },
    )
}
