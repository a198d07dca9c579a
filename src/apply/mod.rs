//! Staging, check, atomic install and reload of a resource's target files.
//!
//! Guarantees: a target is never left partial (a complete, fsync'd temp file in the same
//! directory is renamed over it); a failed check never leaves new content in place; bytes
//! equal to the file on disk, with the mode and ids the resource asks for, mean no write and
//! no command. A resource with several templates is one unit: all its files are rendered
//! from one snapshot (by the caller), staged, checked, installed together and followed by
//! one reload; when a check or a rename fails, none of them keeps its new content.
//!
//! Order of [`apply_group`] ([`apply`] is the one-file case): per file, follow symlinks →
//! read current → owner lookup; (every file: same bytes, mode and requested ids: done) →
//! (dry run: check with `{{src}}` on private copies, diff) → directories → stage the changed
//! files → check with `{{src}}` → rename each (on a failure, put back those renamed before)
//! → check without `{{src}}` (put back all on failure) → rotate backups → splay → reload.
//!
//! In a check, `{{src}}`/`{{target}}` name the first file, `{{src:N}}`/`{{target:N}}` the
//! N-th (from 1); the `{{src:N}}` of a file that does not change is its target, which
//! already holds the rendered bytes.
//!
//! One exception to atomicity: a target that refuses rename(2) (EBUSY/EXDEV: a bind-mounted
//! file) is rewritten in place, logged, verified by reading it back, and given its previous
//! content back on any failure (see `in_place`).

mod backup;
mod command;
mod diff;
mod directory;
mod error;
mod in_place;
mod install;
mod member;
mod owner;
mod placeholder;
mod transaction;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::stop::Stop;

pub use command::{CommandError, CommandFailure};
pub use diff::FileSummary;
pub use error::{ApplyError, ApplyErrorKind, Step, TargetState};

pub use placeholder::check_numbered as check_placeholders;

/// For `etcd-util -o REGISTER --check-cmd`, which runs its health check as checks run here.
pub(crate) use command::{human_duration, run as run_command, ShellCommand};
use install::RealTarget;
use member::Member;
use placeholder::FilePaths;

/// How one resource's files are installed: its first (or only) file's target, mode and ids
/// here, the files of its further templates in `grouped`, and what they all share.
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
    /// The files of the resource's further templates, installed together with `target`.
    pub grouped: Vec<FileSpec>,
    /// Create the target's missing directories (mode 0755).
    pub mkdirs: bool,
    pub checkcmd: Option<String>,
    pub reloadcmd: Option<String>,
    /// Pause between install and reload.
    pub splay: Duration,
    /// Limit for each check/reload command.
    pub command_timeout: Duration,
    /// How many replaced versions to keep beside each target (`TARGET.1` …); 0: none.
    pub backups: u32,
}

/// One file a resource installs: where, and with which mode and ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub target: PathBuf,
    pub mode: Option<u32>,
    /// User name or numeric uid.
    pub owner: Option<String>,
    /// Group name or numeric gid.
    pub group: Option<String>,
}

impl InstallSpec {
    /// Every file, in order: `target`, then `grouped`. `{{src:N}}`/`{{target:N}}` number them
    /// from 1.
    pub fn files(&self) -> Vec<FileSpec> {
        let first = FileSpec {
            target: self.target.clone(),
            mode: self.mode,
            owner: self.owner.clone(),
            group: self.group.clone(),
        };
        std::iter::once(first)
            .chain(self.grouped.iter().cloned())
            .collect()
    }
}

/// What applying texts did; `Reload` is what the reload gave ([`apply_group`]), or `()` when
/// it is still to run ([`install_group`]).
#[derive(Debug)]
pub enum Outcome<Reload = ReloadResult> {
    /// Every rendered text equals the bytes on disk: nothing written, no command run.
    Unchanged,
    /// The files that changed are installed (even if the reload failed).
    Installed {
        files: Vec<InstalledFile>,
        reload: Reload,
    },
    /// Dry run: the unified diff of each file that would change; nothing written beside the
    /// targets, no reload run (a `{{src}}` check ran on private copies and passed).
    WouldChange { diff: String },
}

/// A file an install changed.
#[derive(Debug)]
pub struct InstalledFile {
    pub target: PathBuf,
    pub old: Option<FileSummary>,
    pub new: FileSummary,
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
    apply_group(spec, &[content], dry_run, stop)
}

/// Brings every file of `spec` (see [`InstallSpec::files`]) to its text in `contents`, in the
/// same order, as one: see the module doc for the order and guarantees. Callers that must
/// record something between install and reload (the daemon, `--onetime`: the owed reload in
/// `state`) use [`install_group`] and [`reload`] themselves.
pub fn apply_group(
    spec: &InstallSpec,
    contents: &[&str],
    dry_run: bool,
    stop: &Stop,
) -> Result<Outcome, ApplyError> {
    Ok(match install_group(spec, contents, dry_run, stop)? {
        Outcome::Unchanged => Outcome::Unchanged,
        Outcome::Installed { files, .. } => Outcome::Installed {
            files,
            reload: reload(spec, stop),
        },
        Outcome::WouldChange { diff } => Outcome::WouldChange { diff },
    })
}

/// [`apply_group`] up to the reload, which the caller runs ([`reload_now`]) when it sees
/// fit: the daemon waits out the splay as a deadline and reloads on its own threads, so that
/// installing the next resource's files never waits behind this one's reload.
pub fn install_group(
    spec: &InstallSpec,
    contents: &[&str],
    dry_run: bool,
    stop: &Stop,
) -> Result<Outcome<()>, ApplyError> {
    let files = spec.files();
    debug_assert_eq!(files.len(), contents.len(), "one text per file");
    let members = files
        .iter()
        .zip(contents)
        .map(|(file, content)| Member::prepare(&spec.id, file, content))
        .collect::<Result<Vec<_>, _>>()?;
    if !members.iter().any(Member::needs_install) {
        return Ok(Outcome::Unchanged);
    }
    if dry_run {
        check_privately(spec, &members, stop)?;
        return Ok(Outcome::WouldChange {
            diff: dry_run_diff(spec, &members),
        });
    }
    for member in members.iter().filter(|member| member.needs_install()) {
        member.ensure_directory(&spec.id, spec.mkdirs)?;
    }
    transaction::install_all(spec, &members, stop)?;
    let mut installed = Vec::new();
    for member in members.iter().filter(|member| member.needs_install()) {
        let old = member.current_bytes().map(FileSummary::of);
        let new = FileSummary::of(member.content.as_bytes());
        log::info!(target: &spec.id, "changed {}: {} -> {new}{}", member.file.target.display(), summary_text(old.as_ref()), member.attribute_change());
        installed.push(InstalledFile {
            target: member.file.target.clone(),
            old,
            new,
        });
    }
    Ok(Outcome::Installed {
        files: installed,
        reload: (),
    })
}

/// The diff of every file that would change, with attribute changes, and a note when the
/// check needs the installed files and so cannot run in a dry run.
fn dry_run_diff(spec: &InstallSpec, members: &[Member]) -> String {
    let mut diff = String::new();
    for member in members.iter().filter(|member| member.needs_install()) {
        diff.push_str(&diff::unified(
            &member.file.target,
            &spec.id,
            member.current_bytes(),
            member.content,
        ));
        if !member.differences.is_empty() {
            diff.push_str(&format!("# attributes{}\n", member.attribute_change()));
        }
    }
    if spec
        .checkcmd
        .as_deref()
        .is_some_and(|check| !placeholder::names_staged(check))
    {
        diff.push_str(
            "# checkcmd has no {{src}}: it checks the installed file, not run in a dry run\n",
        );
    }
    diff
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
    let files = spec.files();
    let paths: Vec<FilePaths> = files
        .iter()
        .map(|file| FilePaths {
            target: &file.target,
            src: None,
        })
        .collect();
    let command = placeholder::expand(reloadcmd, &paths);
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

/// Dry run: a `{{src}}` check runs on private copies of the new contents, so the diff
/// shown is one a real run would install. Other checks need the installed files and do not
/// run.
fn check_privately(spec: &InstallSpec, members: &[Member], stop: &Stop) -> Result<(), ApplyError> {
    let Some(check) = spec
        .checkcmd
        .as_deref()
        .filter(|check| placeholder::names_staged(check))
    else {
        return Ok(());
    };
    let mut copies = Vec::with_capacity(members.len());
    for member in members {
        let copy = if member.needs_install() {
            let copy = install::copy_privately(&member.target, member.content.as_bytes())
                .map_err(|failure| transaction::stage_error(spec, members, member, failure))?;
            Some(copy)
        } else {
            None
        };
        copies.push(copy);
    }
    let paths: Vec<FilePaths> = members
        .iter()
        .zip(&copies)
        .map(|(member, copy)| FilePaths {
            target: &member.file.target,
            // An unchanged file already holds its new content.
            src: Some(
                copy.as_ref()
                    .map_or(&*member.file.target, |copy| copy.path()),
            ),
        })
        .collect();
    transaction::run_check(spec, check, &paths, stop)
        .map_err(|error| transaction::check_failed(spec, members, error, TargetState::DryRun))
}

fn summary_text(summary: Option<&FileSummary>) -> String {
    summary.map_or_else(|| "(none)".to_string(), FileSummary::to_string)
}
