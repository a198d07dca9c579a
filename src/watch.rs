//! One resource's pass: snapshot → render → install → reload, and what it keeps between
//! passes (problems logged, a reload still owed, missing altkeys).
//!
//! Every pass renders from one consistent snapshot that holds at least the change it reacts
//! to; the key's watch (`follow`) reports every later change, so nothing is lost. Problems
//! are logged once when they start or change and once when they clear, not on every retry.

use crate::apply::{self, ApplyError, ApplyErrorKind, Outcome, ReloadResult};
use crate::etcd::{self, Freshness, SnapshotCache};
use crate::guard::{Gate, Refusal};
use crate::keys;
use crate::resource::Resource;
use crate::state::{Memory, StateDir};
use crate::status::StatusBoard;
use crate::stop::Stop;
use crate::template::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::mem::Discriminant;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings that apply to every resource.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--notreally`: print diffs, write nothing, run nothing.
    pub dry_run: bool,
    /// Longest pause between retries after an error.
    pub max_backoff: Duration,
    /// How an etcd error is worded in the log: the binary adds the flags that fix it
    /// (`cli::hints`); this layer knows no flag names.
    pub describe_etcd: fn(&etcd::Error) -> String,
    /// Where each pass, install, reload and failure is reported (`--status-file`).
    pub status: StatusBoard,
    /// `--state-dir`: pending reloads and leaf counts outlive the process; `None`: in memory.
    pub state: Option<StateDir>,
    /// `--force`: each resource's first render is admitted whatever its guards say.
    pub force: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            dry_run: false,
            max_backoff: Duration::from_secs(30),
            describe_etcd: |error| error.to_string(),
            status: StatusBoard::default(),
            state: None,
            force: false,
        }
    }
}

/// How a pass ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converged {
    Unchanged,
    Installed,
    /// Dry run: the diff was printed.
    WouldChange,
}

/// Why a pass did not converge. The target is untouched (or restored) in every case.
#[derive(Debug)]
pub enum PassError {
    Etcd(etcd::Error),
    /// The watched key does not exist (never created, deleted or expired).
    Missing,
    Render(String),
    /// A guard refused the render (`min_keys`, `max_shrink`, `values`).
    Refused(Refusal),
    Apply(ApplyError),
    Reload(String),
    Stopped,
    /// A bug in reconfig (a panic) ended the pass.
    Panicked,
}

impl PassError {
    /// Which problem this is, for telling a repeat from a new one; `None` for a stop.
    fn problem(&self) -> Option<Problem> {
        Some(match self {
            PassError::Etcd(e) if e.is_unreachable() => Problem::Unreachable,
            PassError::Etcd(e) => Problem::EtcdAnswer(e.kind()),
            PassError::Missing => Problem::Missing,
            PassError::Render(_) => Problem::Render,
            PassError::Refused(refusal) => Problem::Refused(refusal.fingerprint()),
            PassError::Apply(e) => match e.kind.as_ref() {
                ApplyErrorKind::CheckFailed { .. } => Problem::Check,
                ApplyErrorKind::Io { step, .. } => {
                    Problem::Install(std::mem::discriminant(&*e.kind), Some(*step))
                }
                other => Problem::Install(std::mem::discriminant(other), None),
            },
            PassError::Reload(_) => Problem::Reload,
            PassError::Panicked => Problem::Panicked,
            PassError::Stopped => return None,
        })
    }
}

/// A problem as the log tells problems apart: its kind and the step that failed, without
/// the details that change on every attempt (a checker's PID and the staged file's name in
/// its output, which endpoint refused how). It is logged when it starts or becomes another
/// problem, and not again while it persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// No endpoint answered.
    Unreachable,
    /// etcd answered with an error.
    EtcdAnswer(etcd::ErrorKind),
    Missing,
    Render,
    /// A guard's refusal, told apart by its counts and keys.
    Refused(u64),
    /// Installing failed: how, and for a file-system error, at which step.
    Install(Discriminant<ApplyErrorKind>, Option<apply::Step>),
    Check,
    Reload,
    Panicked,
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassError::Etcd(e) => write!(f, "etcd: {e}"),
            PassError::Missing => f.write_str("watched key does not exist; target left unchanged"),
            PassError::Render(e) => write!(f, "render failed, target left unchanged: {e}"),
            PassError::Refused(r) => write!(
                f,
                "render refused, target left unchanged: {r} (clears by itself when the data recovers)"
            ),
            PassError::Apply(e) => e.fmt(f),
            PassError::Reload(e) => write!(f, "installed, but reload failed: {e}"),
            PassError::Stopped => f.write_str("stopped"),
            PassError::Panicked => f.write_str(
                "a bug in reconfig stopped this pass (see the panic above); please report it",
            ),
        }
    }
}

/// One resource bound to a client: what it keeps between passes. A pass is
/// [`Watcher::prepare`] (snapshot → altdata → render), then [`Watcher::install`] and, when
/// a reload is owed, `apply::reload` told to [`Watcher::reloaded`]; [`Watcher::finish`]
/// logs how it ended. `--onetime` runs them in a row ([`Watcher::converge_once`]); the
/// daemon runs each step on its own pool, the reload after the splay (`schedule`).
pub struct Watcher {
    resource: Arc<Resource>,
    /// Reads shared with the other resources of the generation that watch the same key.
    snapshots: SnapshotCache,
    options: RunOptions,
    /// Kills running commands: SIGTERM only, so SIGHUP never cuts a reload short.
    process: Stop,
    /// Whether a reload is owed, and the leaf count the installed files came from: on disk.
    memory: Memory,
    gate: Gate,
    /// The leaves the text being installed was rendered from, recorded once it is.
    rendered_leaves: u64,
    /// The last pass failed (or the watch of its key did): until a pass succeeds, a
    /// reload's success (one owed for files installed earlier, or one that was still
    /// running when the pass failed) does not mean the resource recovered.
    pass_failed: bool,
    /// The problem last logged, until a pass succeeds.
    problem: Option<Problem>,
    /// Whether a failed pass is retried (the daemon) or not (`--onetime`), for the log.
    retries: bool,
    /// Aliases of the altkeys found missing, warned about once while they stay missing.
    missing_altkeys: BTreeSet<String>,
    last_index: u64,
    /// Length of the last rendered text: the next output is allocated this big at once.
    rendered_len: usize,
}

/// How [`Watcher::install`] ended when it did not fail.
#[derive(Debug)]
pub enum Installed {
    /// Nothing more to do in this pass.
    Done(Converged),
    /// A reload is owed, after the splay: the file changed (`changed`), or it is unchanged
    /// and the last reload failed.
    ReloadOwed { changed: bool },
}

impl Watcher {
    pub fn new(
        resource: Arc<Resource>,
        snapshots: SnapshotCache,
        options: RunOptions,
        process: Stop,
    ) -> Watcher {
        let memory = Memory::load(options.state.as_ref(), resource.target(), resource.id());
        let gate = Gate::new(options.force);
        Watcher {
            resource,
            snapshots,
            options,
            process,
            memory,
            gate,
            rendered_leaves: 0,
            pass_failed: false,
            problem: None,
            retries: true,
            missing_altkeys: BTreeSet::new(),
            last_index: 0,
            rendered_len: 0,
        }
    }

    pub fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }

    /// One pass for `--onetime`; the error is already logged.
    pub fn converge_once(&mut self) -> Result<Converged, PassError> {
        self.retries = false;
        let fresh = Freshness::read_after(self.snapshots.created());
        let result = self.prepare(fresh).and_then(|texts| self.apply(&texts));
        self.finish(&result);
        if let Err(error) = &result {
            if self.owes_reload_despite(error) {
                let result = apply::reload(&self.resource.install, &self.process);
                let result = self.reloaded(result);
                self.finish(&result);
            }
        }
        result
    }

    /// Whether a pass that failed with `error` before installing (etcd, a missing key, a
    /// render, a guard, a check) must still run a reload owed for the files installed
    /// earlier: the service must not keep running an older config than the one on disk.
    /// When it must, the reload's success does not end the pass's problem.
    pub fn owes_reload_despite(&mut self, error: &PassError) -> bool {
        let after_install = matches!(
            error,
            PassError::Reload(_)
                | PassError::Stopped
                | PassError::Panicked
                | PassError::Etcd(etcd::Error::Shutdown)
        );
        if after_install || !self.memory.reload_pending() || self.options.dry_run {
            return false;
        }
        log::info!(target: self.resource.id(), "reloading for {}, installed earlier and not reloaded since", self.resource.target().display());
        true
    }

    /// snapshot → guards → altdata → render: the texts to install, one per file.
    /// `fresh`: how fresh the snapshot must be (any read holding the change the pass reacts
    /// to will do).
    pub fn prepare(&mut self, fresh: Freshness) -> Result<Vec<String>, PassError> {
        let resource = Arc::clone(&self.resource);
        self.memory.refresh();
        let started = Instant::now();
        let snapshots = self.snapshots.clone();
        let mut reader = keys::PassReader::shared(&snapshots, resource.reads());
        let snapshot = keys::read_all(resource.keys.iter().map(String::as_str), |key| {
            reader.read(key, resource.recursive, fresh)
        })
        .map_err(PassError::Etcd)?;
        let index = snapshot.index;
        if index < self.last_index {
            log::warn!(target: resource.id(),
                "etcd's index went back from {} to {index}: etcd was restored or recreated; re-read everything",
                self.last_index);
        }
        self.last_index = index;
        let data = snapshot.data.ok_or(PassError::Missing)?;
        let installed_from = self.memory.rendered_leaves();
        let data = self
            .gate
            .admit(&resource.guards, &data, installed_from, resource.id())
            .map_err(PassError::Refused)?
            .leaves;
        let altdata = self
            .altdata(started, &mut reader)
            .map_err(PassError::Etcd)?;
        let texts = self.render(&data, &altdata).map_err(PassError::Render)?;
        self.rendered_leaves = data.len() as u64;
        self.rendered_len = texts.iter().map(String::len).sum();
        log::debug!(target: resource.id(), "rendered {} bytes from index {index}", self.rendered_len);
        Ok(texts)
    }

    fn render(
        &self,
        data: &Arc<BTreeMap<String, String>>,
        altdata: &BTreeMap<String, Arc<BTreeMap<String, String>>>,
    ) -> Result<Vec<String>, String> {
        // Room for a little growth, so the usual small change needs no reallocation.
        let capacity = self.rendered_len + self.rendered_len / 8;
        let context = Context {
            data,
            altdata,
            watched: &self.resource.key,
        };
        self.resource.render_all(&context, capacity)
    }

    /// Alias → every leaf under the altkey, read after the pass began (on v3 at the keys'
    /// revision). Altkeys are read, and watched only with `watch_altkeys`; a missing one renders as an empty map, with a warning when it goes
    /// missing (not on every render while it stays so).
    fn altdata(
        &mut self,
        pass_started: Instant,
        reader: &mut keys::PassReader,
    ) -> Result<BTreeMap<String, Arc<BTreeMap<String, String>>>, etcd::Error> {
        let resource = Arc::clone(&self.resource);
        let mut altdata = BTreeMap::new();
        for (alias, key) in &resource.altkeys {
            let fresh = Freshness::read_after(pass_started);
            let (data, _) = reader.read(key, true, fresh)?;
            let data = match data {
                Some(data) => {
                    if self.missing_altkeys.remove(alias) {
                        log::info!(target: resource.id(), "altkey {alias} = {key} exists again");
                    }
                    data
                }
                None => {
                    if self.missing_altkeys.insert(alias.clone()) {
                        log::warn!(target: resource.id(), "altkey {alias} = {key} does not exist; rendering it as empty until it does");
                    }
                    Arc::new(BTreeMap::new())
                }
            };
            altdata.insert(alias.clone(), data);
        }
        Ok(altdata)
    }

    /// Installs and reloads in one go (the splay slept here): `--onetime`.
    fn apply(&mut self, texts: &[String]) -> Result<Converged, PassError> {
        match self.install(texts)? {
            Installed::Done(converged) => Ok(converged),
            Installed::ReloadOwed { .. } => {
                let result = apply::reload(&self.resource.install, &self.process);
                self.reloaded(result)
            }
        }
    }

    /// stage → check → rename, without the reload (see [`Installed`]). A reload owed from
    /// an earlier pass (or an earlier process, see `state`) is owed even if the files are
    /// unchanged; once files are installed, the reload they need is recorded before it runs.
    pub fn install(&mut self, texts: &[String]) -> Result<Installed, PassError> {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let outcome = apply::install_group(
            &self.resource.install,
            &texts,
            self.options.dry_run,
            &self.process,
        )
        .map_err(PassError::Apply)?;
        self.pass_failed = false;
        let (id, leaves) = (self.resource.id(), self.rendered_leaves);
        let reloads = self.resource.install.reloadcmd.is_some();
        Ok(match outcome {
            Outcome::Unchanged if self.memory.reload_pending() && !self.options.dry_run => {
                self.memory.set_rendered_leaves(leaves, id);
                log::info!(target: id, "{} is up to date but was not reloaded since it was installed: reloading", self.resource.target().display());
                Installed::ReloadOwed { changed: false }
            }
            Outcome::Unchanged => {
                self.memory.set_rendered_leaves(leaves, id);
                Installed::Done(Converged::Unchanged)
            }
            Outcome::Installed { .. } => {
                self.memory.set_installed(leaves, reloads, id);
                self.options.status.installed(&self.resource);
                if reloads {
                    Installed::ReloadOwed { changed: true }
                } else {
                    Installed::Done(Converged::Installed)
                }
            }
            Outcome::WouldChange { diff } => {
                print_diff(&self.resource, &diff);
                Installed::Done(Converged::WouldChange)
            }
        })
    }

    /// What the owed reload gave; a failed one stays owed.
    pub fn reloaded(&mut self, result: ReloadResult) -> Result<Converged, PassError> {
        self.options.status.reloaded(&self.resource, &result);
        let id = self.resource.id();
        match result {
            ReloadResult::NotConfigured | ReloadResult::Reloaded => {
                self.memory.set_reload_pending(false, id);
                Ok(Converged::Installed)
            }
            ReloadResult::Failed(e) => {
                self.memory.set_reload_pending(true, id);
                Err(PassError::Reload(e.to_string()))
            }
            ReloadResult::Stopped => {
                self.memory.set_reload_pending(true, id);
                Err(PassError::Stopped)
            }
        }
    }

    /// Ends a pass: a success clears the problem logged, a failure is logged when it is a
    /// new problem.
    pub fn finish(&mut self, result: &Result<Converged, PassError>) {
        if self.pass_failed && matches!(result, Ok(_) | Err(PassError::Reload(_))) {
            // A reload since the pass failed: only its own failure is news.
            if let Err(e @ PassError::Reload(_)) = result {
                log::error!(target: self.resource.id(), "{e}");
            }
            return;
        }
        if matches!(
            result,
            Ok(_) | Err(PassError::Apply(_) | PassError::Reload(_))
        ) {
            self.options
                .status
                .rendered(&self.resource, self.last_index, result);
        }
        match result {
            Ok(_) => self.clear_problem(),
            Err(e) => self.report(e),
        }
    }

    /// Logs a problem when it is new or another kind of problem; repeats stay quiet, however
    /// their text varies (see [`Problem`]). An outage is one problem however its symptoms
    /// change (connection closed, then refused, then timed out).
    pub fn report(&mut self, error: &PassError) {
        self.options.status.failed(&self.resource, error);
        let Some(problem) = error.problem() else {
            return;
        };
        if problem != Problem::Reload {
            self.pass_failed = true;
        }
        if self.problem == Some(problem) {
            return;
        }
        match error {
            PassError::Missing => {
                log::warn!(target: self.resource.id(), "{}: {error}", self.resource.keys.join(", "))
            }
            PassError::Etcd(e) if problem == Problem::Unreachable && self.retries => {
                let e = (self.options.describe_etcd)(e);
                log::error!(target: self.resource.id(), "etcd unreachable: {e}; retrying (logged once until it clears)");
            }
            PassError::Etcd(e) if problem == Problem::Unreachable => {
                let e = (self.options.describe_etcd)(e);
                log::error!(target: self.resource.id(), "etcd unreachable: {e}");
            }
            PassError::Etcd(e) => {
                let e = (self.options.describe_etcd)(e);
                log::error!(target: self.resource.id(), "etcd: {e}");
            }
            PassError::Reload(_) if self.retries => {
                log::error!(target: self.resource.id(), "{error}; will retry")
            }
            _ => log::error!(target: self.resource.id(), "{error}"),
        }
        self.problem = Some(problem);
    }

    fn clear_problem(&mut self) {
        if self.problem.take().is_some() {
            log::info!(target: self.resource.id(), "recovered: {} is up to date", self.resource.target().display());
        }
    }
}

/// Dry-run output on stdout, one whole diff at a time so threads do not interleave.
fn print_diff(resource: &Resource, diff: &str) {
    let text = format!(
        "# {} would change {}\n{diff}",
        resource.id(),
        resource.target().display()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
