//! Installing the changed files of an apply as one: all staged, checked together, renamed in
//! order, and all put back when a rename or the check of the installed files fails.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::command::{self, human_duration, CommandError};
use super::error::{apply_error, io_error, ApplyError, ApplyErrorKind, Step, TargetState};
use super::install::{self, Placed, StageError, StageStep, Staged};
use super::member::Member;
use super::owner::NotPreserved;
use super::placeholder::{self, FilePaths};
use super::{backup, InstallSpec};
use crate::stop::Stop;

/// Stage, check, rename the members that need it; on any failure every target keeps (or
/// gets back) its previous state. Then rotates their backups.
pub(super) fn install_all(
    spec: &InstallSpec,
    members: &[Member],
    stop: &Stop,
) -> Result<(), ApplyError> {
    // Aligned with `members`; `None` for a file that does not change. On error the staged
    // files are dropped, which removes them: no target was touched.
    let mut staged: Vec<Option<Staged>> = Vec::with_capacity(members.len());
    for member in members {
        if !member.needs_install() {
            staged.push(None);
            continue;
        }
        let one = install::stage(
            &member.target,
            member.content.as_bytes(),
            &member.attributes,
        )
        .map_err(|failure| stage_error(spec, members, member, failure))?;
        log_not_preserved(spec, member, &one.not_preserved);
        staged.push(Some(one));
    }
    let checkcmd = spec.checkcmd.as_deref();
    if let Some(check) = checkcmd.filter(|check| placeholder::names_staged(check)) {
        let paths: Vec<FilePaths> = members
            .iter()
            .zip(&staged)
            .map(|(member, staged)| FilePaths {
                target: &member.file.target,
                // An unchanged file already holds its new content.
                src: Some(staged.as_ref().map_or(&*member.file.target, Staged::path)),
            })
            .collect();
        run_check(spec, check, &paths, stop)
            .map_err(|error| check_failed(spec, members, error, TargetState::Untouched))?;
    }
    let mut installed: Vec<&Member> = Vec::new();
    for (member, staged) in members.iter().zip(staged) {
        let Some(staged) = staged else {
            continue;
        };
        match staged.install(&member.target) {
            Ok(Placed::Renamed) => {}
            Ok(Placed::InPlace { rename_error }) => warn_in_place_once(spec, member, &rename_error),
            Err(error) => {
                put_back(spec, &installed);
                let path = &member.target.path;
                let mut failed = io_error(&spec.id, &member.file.target, Step::Rename, path, error);
                failed.together_with = others(members, member);
                return Err(failed);
            }
        }
        installed.push(member);
    }
    if let Some(check) = checkcmd.filter(|check| !placeholder::names_staged(check)) {
        let paths: Vec<FilePaths> = members
            .iter()
            .map(|member| FilePaths {
                target: &member.file.target,
                src: None,
            })
            .collect();
        if let Err(error) = run_check(spec, check, &paths, stop) {
            let state = put_back(spec, &installed);
            return Err(check_failed(spec, members, error, state));
        }
    }
    for member in installed {
        if let Some(replaced) = member
            .current
            .as_ref()
            .filter(|current| current.bytes != member.content.as_bytes())
        {
            keep_backup(spec, member, replaced);
        }
    }
    Ok(())
}

/// Puts the previous state of each installed member back, last installed first; returns
/// where that left them (a failure is also logged, naming its file).
fn put_back(spec: &InstallSpec, installed: &[&Member]) -> TargetState {
    let mut failure = None;
    for member in installed.iter().rev() {
        if let Err(error) = install::restore(&member.target, member.current.as_ref()) {
            log::error!(target: &spec.id, "putting back the previous {} failed: {error}", member.file.target.display());
            failure.get_or_insert(error);
        }
    }
    match failure {
        Some(error) => TargetState::RestoreFailed(error),
        None if installed.iter().any(|member| member.current.is_some()) => TargetState::Restored,
        None => TargetState::RemovedNewFile,
    }
}

/// Rotates the backups once a different content is in place for good (its check passed).
/// A failure is only logged: the new file is installed and the service must still reload.
fn keep_backup(spec: &InstallSpec, member: &Member, replaced: &install::Current) {
    if spec.backups == 0 {
        return;
    }
    match backup::rotate(&member.target, replaced, spec.backups) {
        Ok(newest) => {
            log::debug!(target: &spec.id, "kept the replaced version as {}", newest.display())
        }
        Err(error) => log::warn!(
            target: &spec.id,
            "cannot keep a backup of the replaced {}: {error}; the new content is installed",
            member.target.path.display()
        ),
    }
}

pub(super) fn run_check(
    spec: &InstallSpec,
    check: &str,
    files: &[FilePaths],
    stop: &Stop,
) -> Result<(), CommandError> {
    let command = placeholder::expand(check, files);
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

/// The first in-place rewrite of a target is worth a warning (it is not atomic); later ones
/// of the same target are expected and only logged at debug level.
fn warn_in_place_once(spec: &InstallSpec, member: &Member, rename_error: &io::Error) {
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let path = &member.target.path;
    let first = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(path.clone());
    if first {
        log::warn!(
            target: &spec.id,
            "{} cannot be replaced by rename ({rename_error}): it is probably a bind mount; \
             rewriting it in place instead (not atomic: readers may see it mid-write). \
             Logged once for this target",
            path.display()
        );
    } else {
        log::debug!(target: &spec.id, "rewrote {} in place", path.display());
    }
}

fn log_not_preserved(spec: &InstallSpec, member: &Member, skipped: &[NotPreserved]) {
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
            member.file.target.display()
        );
    }
}

/// The other changed files of the group, which share the fate of `member`.
fn others(members: &[Member], member: &Member) -> Vec<PathBuf> {
    members
        .iter()
        .filter(|other| other.needs_install() && !std::ptr::eq(*other, member))
        .map(|other| other.file.target.clone())
        .collect()
}

pub(super) fn stage_error(
    spec: &InstallSpec,
    members: &[Member],
    member: &Member,
    failure: StageError,
) -> ApplyError {
    let step = match failure.step {
        StageStep::Create => Step::CreateTemp,
        StageStep::Write => Step::WriteTemp,
        StageStep::Chown => Step::ChownTemp,
        StageStep::Chmod => Step::ChmodTemp,
        StageStep::Sync => Step::SyncTemp,
    };
    let target = &member.file.target;
    let mut error = io_error(&spec.id, target, step, &failure.path, failure.error);
    error.together_with = others(members, member);
    error
}

/// A failed check concerns every changed file: the first is named, the others go along.
pub(super) fn check_failed(
    spec: &InstallSpec,
    members: &[Member],
    error: CommandError,
    target_state: TargetState,
) -> ApplyError {
    let mut changed = members.iter().filter(|member| member.needs_install());
    let first: &Path = changed
        .next()
        .map_or(&spec.target, |member| &member.file.target);
    let kind = ApplyErrorKind::CheckFailed {
        error,
        target_state,
    };
    let mut failed = apply_error(&spec.id, first, kind);
    failed.together_with = changed.map(|member| member.file.target.clone()).collect();
    failed
}
