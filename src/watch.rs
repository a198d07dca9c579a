//! One resource's pass: snapshot → render → install → reload, and what it keeps between
//! passes (problems logged, a reload still owed, missing altkeys).
//!
//! Every pass renders from one consistent snapshot that holds at least the change it reacts
//! to; the key's watch (`follow`) reports every later change, so nothing is lost. Problems
//! are logged once when they start or change and once when they clear, not on every retry.

use crate::apply::{self, ApplyError, ApplyErrorKind, Outcome, ReloadResult};
use crate::etcd::{self, Freshness, SnapshotCache};
use crate::resource::Resource;
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
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            dry_run: false,
            max_backoff: Duration::from_secs(30),
            describe_etcd: |error| error.to_string(),
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
    reload_pending: bool,
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
        Watcher {
            resource,
            snapshots,
            options,
            process,
            reload_pending: false,
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
        let result = self.prepare(fresh).and_then(|text| self.apply(&text));
        self.finish(&result);
        result
    }

    /// snapshot → altdata → render: the text to install. `fresh`: how fresh the snapshot
    /// must be (any read holding the change the pass reacts to will do).
    pub fn prepare(&mut self, fresh: Freshness) -> Result<String, PassError> {
        let resource = Arc::clone(&self.resource);
        let started = Instant::now();
        let snapshot = self
            .snapshots
            .snapshot(&resource.key, resource.recursive, fresh)
            .map_err(PassError::Etcd)?;
        let index = snapshot.index;
        if index < self.last_index {
            log::warn!(target: resource.id(),
                "etcd's index went back from {} to {index}: etcd was restored or recreated; re-read everything",
                self.last_index);
        }
        self.last_index = index;
        let data = snapshot.data.ok_or(PassError::Missing)?;
        let altdata = self.altdata(started).map_err(PassError::Etcd)?;
        let text = self.render(&data, &altdata).map_err(PassError::Render)?;
        log::debug!(target: resource.id(), "rendered {} bytes from index {index}", text.len());
        self.rendered_len = text.len();
        Ok(text)
    }

    fn render(
        &self,
        data: &Arc<BTreeMap<String, String>>,
        altdata: &BTreeMap<String, Arc<BTreeMap<String, String>>>,
    ) -> Result<String, String> {
        // Room for a little growth, so the usual small change needs no reallocation.
        let capacity = self.rendered_len + self.rendered_len / 8;
        let context = Context {
            data,
            altdata,
            watched: &self.resource.key,
        };
        self.resource
            .template
            .render_with_capacity(&context, capacity)
            .map_err(|e| e.to_string())
    }

    /// Alias → every leaf under the altkey, read after the pass began. Altkeys are read,
    /// not watched; a missing one renders as an empty map, with a warning when it goes
    /// missing (not on every render while it stays so).
    fn altdata(
        &mut self,
        pass_started: Instant,
    ) -> Result<BTreeMap<String, Arc<BTreeMap<String, String>>>, etcd::Error> {
        let resource = Arc::clone(&self.resource);
        let mut altdata = BTreeMap::new();
        for (alias, key) in &resource.altkeys {
            let fresh = Freshness::read_after(pass_started);
            let snapshot = self.snapshots.snapshot(key, true, fresh)?;
            let data = match snapshot.data {
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
    fn apply(&mut self, text: &str) -> Result<Converged, PassError> {
        match self.install(text)? {
            Installed::Done(converged) => Ok(converged),
            Installed::ReloadOwed { .. } => {
                let result = apply::reload(&self.resource.install, &self.process);
                self.reloaded(result)
            }
        }
    }

    /// stage → check → rename, without the reload (see [`Installed`]).
    pub fn install(&mut self, text: &str) -> Result<Installed, PassError> {
        let outcome = apply::install(
            &self.resource.install,
            text,
            self.options.dry_run,
            &self.process,
        )
        .map_err(PassError::Apply)?;
        Ok(match outcome {
            Outcome::Unchanged if self.reload_pending => Installed::ReloadOwed { changed: false },
            Outcome::Unchanged => Installed::Done(Converged::Unchanged),
            Outcome::Installed { .. } if self.resource.install.reloadcmd.is_some() => {
                self.reload_pending = true;
                Installed::ReloadOwed { changed: true }
            }
            Outcome::Installed { .. } => Installed::Done(Converged::Installed),
            Outcome::WouldChange { diff } => {
                print_diff(&self.resource, &diff);
                Installed::Done(Converged::WouldChange)
            }
        })
    }

    /// What the owed reload gave; a failed one stays owed.
    pub fn reloaded(&mut self, result: ReloadResult) -> Result<Converged, PassError> {
        match result {
            ReloadResult::NotConfigured | ReloadResult::Reloaded => {
                self.reload_pending = false;
                Ok(Converged::Installed)
            }
            ReloadResult::Failed(e) => {
                self.reload_pending = true;
                Err(PassError::Reload(e.to_string()))
            }
            ReloadResult::Stopped => {
                self.reload_pending = true;
                Err(PassError::Stopped)
            }
        }
    }

    /// Ends a pass: a success clears the problem logged, a failure is logged when it is a
    /// new problem.
    pub fn finish(&mut self, result: &Result<Converged, PassError>) {
        match result {
            Ok(_) => self.clear_problem(),
            Err(e) => self.report(e),
        }
    }

    /// Logs a problem when it is new or another kind of problem; repeats stay quiet, however
    /// their text varies (see [`Problem`]). An outage is one problem however its symptoms
    /// change (connection closed, then refused, then timed out).
    pub fn report(&mut self, error: &PassError) {
        let Some(problem) = error.problem() else {
            return;
        };
        if self.problem == Some(problem) {
            return;
        }
        match error {
            PassError::Missing => {
                log::warn!(target: self.resource.id(), "{}: {error}", self.resource.key)
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
