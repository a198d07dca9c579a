//! The per-resource loop: snapshot → render → apply, then wait for the next change.
//!
//! Every pass renders from one fresh snapshot and then watches from the index after that
//! snapshot's, so a change made at any moment after the read (during render, check, splay or
//! reload, or while etcd was unreachable) comes back at once: nothing is lost, and a burst
//! of events costs one pass. Problems are logged once when they start or change and once
//! when they clear, not on every retry.

use crate::apply::{self, ApplyError, ApplyErrorKind, Outcome, ReloadResult};
use crate::etcd::{self, Change, Freshness, Received, SnapshotCache, Subscription};
use crate::pool::Pool;
use crate::resource::{Resource, Wait};
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
    /// Where the daemon renders (one thread per core, shared by every resource); `None`:
    /// on the resource's own thread, as `--onetime` does on its few workers.
    pub render_pool: Option<Arc<Pool>>,
    /// How an etcd error is worded in the log: the binary adds the flags that fix it
    /// (`cli::hints`); this layer knows no flag names.
    pub describe_etcd: fn(&etcd::Error) -> String,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            dry_run: false,
            max_backoff: Duration::from_secs(30),
            render_pool: None,
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
        }
    }
}

/// One resource bound to a client: the state its loop keeps between passes.
pub struct Watcher {
    resource: Arc<Resource>,
    /// Reads shared with the other resources of the generation that watch the same key.
    snapshots: SnapshotCache,
    /// How fresh the next pass's snapshot must be; `None`: read after the pass starts.
    next_fresh: Option<Freshness>,
    options: RunOptions,
    /// Ends this watcher's loop (SIGHUP's new generation, or SIGTERM).
    generation: Stop,
    /// Kills running commands and splays: SIGTERM only, so SIGHUP never cuts a reload short.
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
    /// The changes the last wait reported after the index it watched from, for the next
    /// pass to apply to the kept snapshot instead of reading the tree again.
    changes: Option<(u64, Vec<Change>)>,
}

impl Watcher {
    pub fn new(
        resource: Arc<Resource>,
        snapshots: SnapshotCache,
        options: RunOptions,
        generation: Stop,
        process: Stop,
    ) -> Watcher {
        // The first pass may share any read made since the generation began.
        let first = Freshness::read_after(snapshots.created());
        Watcher {
            resource,
            snapshots,
            next_fresh: Some(first),
            options,
            generation,
            process,
            reload_pending: false,
            problem: None,
            retries: true,
            missing_altkeys: BTreeSet::new(),
            last_index: 0,
            rendered_len: 0,
            changes: None,
        }
    }

    /// One pass for `--onetime`; the error is already logged.
    pub fn converge_once(&mut self) -> Result<Converged, PassError> {
        self.retries = false;
        let (_, result) = self.pass();
        if let Err(e) = &result {
            self.report(e);
        }
        result
    }

    /// The daemon loop; returns when the generation is stopped.
    pub fn run(mut self) {
        let mut backoff = Backoff::new(self.options.max_backoff);
        while !self.generation.is_stopped() {
            let attempted = Instant::now();
            let (index, result) = self.pass();
            let failed = match &result {
                Ok(_) => {
                    self.clear_problem();
                    backoff.reset();
                    false
                }
                Err(PassError::Stopped) => break,
                Err(PassError::Etcd(etcd::Error::Shutdown)) => break,
                Err(PassError::Missing) => {
                    self.report(&PassError::Missing);
                    backoff.reset();
                    false
                }
                Err(e) => {
                    self.report(e);
                    true
                }
            };
            let Some(index) = index else {
                // etcd did not answer: nothing to watch from yet.
                let outage = matches!(&result, Err(PassError::Etcd(e)) if e.is_outage());
                if self.pause(outage, attempted, &mut backoff) {
                    break;
                }
                continue;
            };
            // After a failure, retry after the backoff, or at once when the data changes.
            let within = failed.then(|| backoff.next());
            let attempted = Instant::now();
            let mut changes = self.snapshots.client().subscribe(
                &self.resource.key,
                self.resource.recursive,
                index,
            );
            let received = match within {
                Some(within) => changes.recv_timeout(within),
                None => changes.recv(),
            };
            match received {
                Received::Change(change) => {
                    log::debug!(target: self.resource.id(), "change at index {}: {} {}", change.index, change.op.verb(), change.key);
                    let mut seen = vec![change];
                    if let Some(wait) = self.resource.wait {
                        self.quiesce(wait, &mut changes, &mut seen);
                    }
                    let last = seen.last().map_or(index, |change| change.index);
                    // Any snapshot holding that change will do, even one another
                    // resource on the same key has just read.
                    self.next_fresh = Some(Freshness::including(last, Instant::now()));
                    self.changes = Some((index, seen));
                }
                Received::Quiet | Received::ReadAgain => {}
                Received::Stopped => break,
                Received::Failed(e) => {
                    let outage = e.is_outage();
                    self.report(&PassError::Etcd(e));
                    if self.pause(outage, attempted, &mut backoff) {
                        break;
                    }
                }
            }
        }
        log::debug!(target: self.resource.id(), "watch ended");
    }

    /// Waits before retrying a pass that failed on etcd. After an outage (no endpoint
    /// answered the request made at `attempted`): until etcd answers again, which every
    /// watcher of the client learns at once, whatever the outage's length. Otherwise: the
    /// backoff. Returns true when the generation was stopped.
    fn pause(&self, outage: bool, attempted: Instant, backoff: &mut Backoff) -> bool {
        if outage {
            let generation = &self.generation;
            return !self
                .snapshots
                .client()
                .await_recovery(attempted, || generation.is_stopped());
        }
        self.generation.sleep(backoff.next())
    }

    /// Waits until no change has come for `wait.min`, but no longer than `wait.max` after
    /// the first change, so a burst of updates costs one render. Adds the changes seen to
    /// `seen` (which holds the first).
    fn quiesce(&self, wait: Wait, changes: &mut Subscription, seen: &mut Vec<Change>) {
        let started = Instant::now();
        loop {
            let left = wait.max.saturating_sub(started.elapsed());
            if left.is_zero() || self.generation.is_stopped() {
                return;
            }
            match changes.recv_timeout(wait.min.min(left)) {
                Received::Change(change) => seen.push(change),
                _ => return,
            }
        }
    }

    /// snapshot → altdata → render → apply. Returns the snapshot's index when etcd answered.
    fn pass(&mut self) -> (Option<u64>, Result<Converged, PassError>) {
        let resource = Arc::clone(&self.resource);
        let started = Instant::now();
        let fresh = self
            .next_fresh
            .take()
            .unwrap_or_else(|| Freshness::read_after(started));
        let snapshot = match self.advance_kept(&resource) {
            Some(snapshot) => Ok(snapshot),
            None => self
                .snapshots
                .snapshot(&resource.key, resource.recursive, fresh),
        };
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(e) => return (None, Err(PassError::Etcd(e))),
        };
        let index = snapshot.index;
        if index < self.last_index {
            log::warn!(target: resource.id(),
                "etcd's index went back from {} to {index}: etcd was restored or recreated; re-read everything",
                self.last_index);
        }
        self.last_index = index;
        let Some(data) = snapshot.data else {
            return (Some(index), Err(PassError::Missing));
        };
        let altdata = match self.altdata(started) {
            Ok(altdata) => altdata,
            Err(e) => return (Some(index), Err(PassError::Etcd(e))),
        };
        let text = match self.render(data, altdata) {
            Ok(text) => text,
            Err(e) => return (Some(index), Err(PassError::Render(e))),
        };
        log::debug!(target: resource.id(), "rendered {} bytes from index {index}", text.len());
        self.rendered_len = text.len();
        (Some(index), self.apply(&text))
    }

    /// The kept snapshot with the changes the last wait reported applied, when the cache
    /// can do that (see `SnapshotCache::advance`).
    fn advance_kept(&mut self, resource: &Resource) -> Option<etcd::SharedSnapshot> {
        let (after, changes) = self.changes.take()?;
        let snapshot =
            self.snapshots
                .advance(&resource.key, resource.recursive, after, &changes)?;
        log::debug!(target: resource.id(), "applied {} change(s) to the kept snapshot, now at index {}", changes.len(), snapshot.index);
        Some(snapshot)
    }

    /// Renders on the pool when there is one, else on this thread.
    fn render(
        &self,
        data: Arc<BTreeMap<String, String>>,
        altdata: BTreeMap<String, Arc<BTreeMap<String, String>>>,
    ) -> Result<String, String> {
        let resource = Arc::clone(&self.resource);
        // Room for a little growth, so the usual small change needs no reallocation.
        let capacity = self.rendered_len + self.rendered_len / 8;
        let job = move || {
            let context = Context {
                data: &data,
                altdata: &altdata,
                watched: &resource.key,
            };
            resource
                .template
                .render_with_capacity(&context, capacity)
                .map_err(|e| e.to_string())
        };
        match &self.options.render_pool {
            Some(pool) => pool.run(job).unwrap_or_else(|| {
                Err("the render panicked: a bug in reconfig, please report it".to_string())
            }),
            None => job(),
        }
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

    fn apply(&mut self, text: &str) -> Result<Converged, PassError> {
        let outcome = apply::apply(
            &self.resource.install,
            text,
            self.options.dry_run,
            &self.process,
        )
        .map_err(PassError::Apply)?;
        match outcome {
            Outcome::Unchanged if self.reload_pending => {
                self.finish_reload(apply::reload(&self.resource.install, &self.process))?;
                Ok(Converged::Unchanged)
            }
            Outcome::Unchanged => Ok(Converged::Unchanged),
            Outcome::Installed { reload, .. } => {
                self.finish_reload(reload)?;
                Ok(Converged::Installed)
            }
            Outcome::WouldChange { diff } => {
                print_diff(&self.resource, &diff);
                Ok(Converged::WouldChange)
            }
        }
    }

    fn finish_reload(&mut self, result: ReloadResult) -> Result<(), PassError> {
        match result {
            ReloadResult::NotConfigured | ReloadResult::Reloaded => {
                self.reload_pending = false;
                Ok(())
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

    /// Logs a problem when it is new or another kind of problem; repeats stay quiet, however
    /// their text varies (see [`Problem`]). An outage is one problem however its symptoms
    /// change (connection closed, then refused, then timed out).
    fn report(&mut self, error: &PassError) {
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

/// Capped exponential backoff with ±20 % jitter, so many resources retrying against a
/// recovering etcd do not hit it in lockstep.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST.min(max),
            max,
        }
    }

    fn reset(&mut self) {
        self.next = Backoff::FIRST.min(self.max);
    }

    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // A factor in [0.8, 1.2).
        base.mul_f64(0.8 + fastrand::f64() * 0.4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_bounded_jitter() {
        let mut backoff = Backoff::new(Duration::from_secs(4));
        let waits: Vec<Duration> = (0..6).map(|_| backoff.next()).collect();
        let bases = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0];
        for (wait, base) in waits.iter().zip(bases) {
            let secs = wait.as_secs_f64();
            assert!(
                secs >= base * 0.8 - 1e-9 && secs < base * 1.2,
                "{secs} vs {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next() < Duration::from_millis(600));
    }
}
