//! The daemon's scheduler: one thread holding every resource's deadlines (quiescence,
//! backoff, splay) and sending its passes to the pools.
//!
//! A resource is in one place at a time: its [`Watcher`] sits in its slot here, or travels
//! with its pass — read and render on the render pool, check and install on the install
//! pool — and comes back with the outcome ([`Step`]). So one resource never runs two passes
//! at once, while the pools run many resources' passes. A change that arrives while a
//! resource's pass runs makes it due again: it passes once more afterwards, with a
//! snapshot holding that change.
//!
//! A reload owed after an install runs after the splay on the reload pool, without the
//! watcher: once the splay is over, a resource's next install does not wait for its reload,
//! nor for other resources' reloads queued before it. A file installed while its reload
//! runs gets one more reload after it; a failed reload is retried after the backoff.

mod jobs;
mod pools;

pub use pools::Pools;

use crate::apply::ReloadResult;
use crate::backoff::Backoff;
use crate::etcd::{self, Freshness, SnapshotCache};
use crate::follow::Report;
use crate::resource::Resource;
use crate::stop::Stop;
use crate::watch::{Converged, PassError, RunOptions, Watcher};
use jobs::{render_step, Handoff, ReloadJob};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

/// What the scheduler hears.
pub enum Notice {
    Watch(Report),
    /// A step of a resource's pass ended; its watcher comes back with it.
    Stepped {
        slot: usize,
        watcher: Box<Watcher>,
        step: Step,
    },
    /// A resource's reload ended; `None`: it panicked.
    Reloaded {
        slot: usize,
        result: Option<ReloadResult>,
    },
    /// The generation ends: no new pass starts; reloads already owed still run (unless
    /// SIGTERM stopped the process); the scheduler returns once every pass is back.
    End,
}

/// How a step of a pass ended.
pub enum Step {
    Done(Result<Converged, PassError>),
    /// A reload is owed ([`Installed::ReloadOwed`]).
    ReloadOwed {
        changed: bool,
    },
}

/// Where a resource's reload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    Idle,
    /// Runs then, the splay after the install; the next pass waits for it.
    Due(Instant),
    /// Runs again then, the backoff after a failure, unless a pass owes one sooner.
    Retry(Instant),
    /// Running; `again`: a newer file was installed meanwhile, reload once more after.
    Running {
        again: bool,
    },
}

impl Reload {
    /// After a pass owed a reload: `changed` a newer file, or still owes a failed one.
    /// `splay_over` is when a reload owed now may run.
    fn owed(self, changed: bool, splay_over: Instant) -> Reload {
        match self {
            Reload::Idle | Reload::Retry(_) => Reload::Due(splay_over),
            Reload::Running { again } => Reload::Running {
                again: again || changed,
            },
            due @ Reload::Due(_) => due,
        }
    }

    /// After the running reload ended.
    fn ended(self, splay_over: Instant) -> Reload {
        match self {
            Reload::Running { again: true } => Reload::Due(splay_over),
            _ => Reload::Idle,
        }
    }

    /// Whether the next pass waits: the splay is a pause between install and reload, and
    /// a change in it is installed after the reload, as each install gets its own reload.
    fn holds_passes(self) -> bool {
        matches!(self, Reload::Due(_))
    }
}

/// One resource's place in the scheduler.
struct Slot {
    /// `None` while its pass runs.
    watcher: Option<Box<Watcher>>,
    resource: Arc<Resource>,
    /// The index the next pass's snapshot must hold; `None` until its watch has read.
    includes: Option<u64>,
    /// A change (or a read) asks for a pass at this instant (quiescence included).
    change_due: Option<Instant>,
    /// The first change of the burst being coalesced.
    burst_started: Option<Instant>,
    /// A failed pass is retried then.
    retry_due: Option<Instant>,
    reload: Reload,
    /// How its reload ended, while its watcher was away on a pass.
    reload_outcome: Option<Option<ReloadResult>>,
    /// Its watch failed while its pass was away: reported when the watcher is back,
    /// unless the watch read again first.
    watch_failure: Option<PassError>,
    backoff: Backoff,
}

impl Slot {
    fn pass_due(&self) -> Option<Instant> {
        self.includes?;
        match (self.change_due, self.retry_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pub struct Scheduler {
    slots: Vec<Slot>,
    /// Slots by the watch they follow.
    followers: Vec<Vec<usize>>,
    notices: Receiver<Notice>,
    /// Handed to each pass, to come back with.
    reply: Sender<Notice>,
    pools: Arc<Pools>,
    /// SIGTERM: owed reloads are dropped.
    process: Stop,
    ended: bool,
}

impl Scheduler {
    /// `resources[i]` follows watch `watch_of[i]` of `watches` in all.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        resources: &[Arc<Resource>],
        watch_of: &[usize],
        watches: usize,
        snapshots: &SnapshotCache,
        options: &RunOptions,
        process: &Stop,
        pools: Arc<Pools>,
        (reply, notices): (Sender<Notice>, Receiver<Notice>),
    ) -> Scheduler {
        let mut followers = vec![Vec::new(); watches];
        let slots = resources
            .iter()
            .zip(watch_of)
            .enumerate()
            .map(|(n, (resource, &watch))| {
                followers[watch].push(n);
                Slot {
                    watcher: Some(Box::new(Watcher::new(
                        Arc::clone(resource),
                        snapshots.clone(),
                        options.clone(),
                        process.clone(),
                    ))),
                    resource: Arc::clone(resource),
                    includes: None,
                    change_due: None,
                    burst_started: None,
                    retry_due: None,
                    reload: Reload::Idle,
                    reload_outcome: None,
                    watch_failure: None,
                    backoff: Backoff::new(options.max_backoff),
                }
            })
            .collect();
        Scheduler {
            slots,
            followers,
            notices,
            reply,
            pools,
            process: process.clone(),
            ended: false,
        }
    }

    /// Runs until the generation ends and every pass came back.
    pub fn run(mut self) {
        loop {
            let now = Instant::now();
            let next = self.dispatch(now);
            if self.ended && self.idle() {
                return;
            }
            let notice = match next {
                Some(at) => self.notices.recv_timeout(at.saturating_duration_since(now)),
                None => self
                    .notices
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match notice {
                Ok(notice) => self.hear(notice),
                Err(RecvTimeoutError::Timeout) => {}
                // Cannot happen while the scheduler holds `reply`.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn idle(&self) -> bool {
        let stopped = self.process.is_stopped();
        self.slots.iter().all(|slot| {
            slot.watcher.is_some()
                && match slot.reload {
                    Reload::Idle => true,
                    Reload::Due(_) | Reload::Retry(_) => stopped,
                    Reload::Running { .. } => false,
                }
        })
    }

    fn hear(&mut self, notice: Notice) {
        let now = Instant::now();
        match notice {
            Notice::Watch(Report::Changed {
                watch,
                index,
                change,
            }) => {
                for &n in &self.followers[watch] {
                    let slot = &mut self.slots[n];
                    if change.is_none() {
                        slot.watch_failure = None;
                    }
                    if let Some(change) = &change {
                        log::debug!(target: slot.resource.id(), "change at index {index}: {} {}", change.op.verb(), change.key);
                    }
                    slot.includes = Some(slot.includes.map_or(index, |had| had.max(index)));
                    let wait = slot.resource.wait.filter(|_| change.is_some());
                    slot.change_due = Some(match wait {
                        // Until no change came for `min`, but no longer than `max`
                        // after the first: a burst costs one pass.
                        Some(wait) => {
                            let first = *slot.burst_started.get_or_insert(now);
                            (now + wait.min).min(first + wait.max)
                        }
                        None => now,
                    });
                }
            }
            Notice::Watch(Report::Failed { watch, error }) => {
                for &n in &self.followers[watch] {
                    let slot = &mut self.slots[n];
                    match &mut slot.watcher {
                        Some(watcher) => watcher.report(&PassError::Etcd(error.clone())),
                        None => slot.watch_failure = Some(PassError::Etcd(error.clone())),
                    }
                }
            }
            Notice::Stepped {
                slot: n,
                mut watcher,
                step,
            } => {
                let slot = &mut self.slots[n];
                match step {
                    Step::ReloadOwed { changed } => {
                        let splay_over = now + slot.resource.install.splay;
                        slot.reload = slot.reload.owed(changed, splay_over);
                    }
                    Step::Done(result) => {
                        // While a reload is owed, it tells whether the pass converged.
                        if result.is_err() || slot.reload == Reload::Idle {
                            watcher.finish(&result);
                        }
                        match &result {
                            // Retried when the data changes, not on a backoff.
                            Ok(_) | Err(PassError::Missing | PassError::Refused(_)) => {
                                slot.backoff.reset()
                            }
                            Err(PassError::Stopped)
                            | Err(PassError::Etcd(etcd::Error::Shutdown)) => {}
                            // Retried after the backoff, or at once when the data changes.
                            Err(_) => slot.retry_due = Some(now + slot.backoff.next_pause()),
                        }
                    }
                }
                if let Some(outcome) = slot.reload_outcome.take() {
                    reloaded(slot, &mut watcher, outcome, now);
                }
                if let Some(failure) = slot.watch_failure.take() {
                    watcher.report(&failure);
                }
                slot.watcher = Some(watcher);
            }
            Notice::Reloaded { slot: n, result } => {
                let slot = &mut self.slots[n];
                slot.reload = slot.reload.ended(now + slot.resource.install.splay);
                match slot.watcher.take() {
                    Some(mut watcher) => {
                        reloaded(slot, &mut watcher, result, now);
                        slot.watcher = Some(watcher);
                    }
                    None => slot.reload_outcome = Some(result),
                }
            }
            Notice::End => self.ended = true,
        }
    }

    /// Starts every step that is due; returns when the next one will be.
    fn dispatch(&mut self, now: Instant) -> Option<Instant> {
        if self.process.is_stopped() {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut wake_at = |at: Instant| next = Some(next.map_or(at, |next: Instant| next.min(at)));
        for n in 0..self.slots.len() {
            let slot = &mut self.slots[n];
            if let Reload::Due(at) | Reload::Retry(at) = slot.reload {
                if at <= now {
                    slot.reload = Reload::Running { again: false };
                    let reload = ReloadJob {
                        slot: n,
                        resource: Arc::clone(&slot.resource),
                        process: self.process.clone(),
                        reply: Some(self.reply.clone()),
                    };
                    self.pools.reload.spawn(move || reload.run());
                } else {
                    wake_at(at);
                }
            }
            if self.ended || slot.watcher.is_none() || slot.reload.holds_passes() {
                continue;
            }
            let Some(at) = slot.pass_due() else { continue };
            if at > now {
                wake_at(at);
                continue;
            }
            let Some(watcher) = slot.watcher.take() else {
                continue;
            };
            let handoff = Handoff {
                slot: n,
                watcher: Some(watcher),
                reply: self.reply.clone(),
            };
            let fresh = match slot.includes {
                Some(index) => Freshness::including(index, now),
                None => Freshness::read_after(now),
            };
            slot.change_due = None;
            slot.retry_due = None;
            slot.burst_started = None;
            let pools = Arc::clone(&self.pools);
            self.pools
                .render
                .spawn(move || render_step(handoff, fresh, &pools));
        }
        next
    }
}

/// Tells `watcher` how its reload ended (`None`: it panicked); a failed one is retried
/// after the backoff, unless another is due anyway.
fn reloaded(slot: &mut Slot, watcher: &mut Watcher, result: Option<ReloadResult>, now: Instant) {
    let result = match result {
        Some(result) => watcher.reloaded(result),
        None => Err(PassError::Panicked),
    };
    watcher.finish(&result);
    match result {
        Ok(_) => slot.backoff.reset(),
        Err(PassError::Stopped) => {}
        Err(_) if slot.reload == Reload::Idle => {
            slot.reload = Reload::Retry(now + slot.backoff.next_pause());
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_install_owes_a_reload_after_the_splay_and_holds_passes_until_then() {
        let splay_over = Instant::now() + Duration::from_secs(1);
        let due = Reload::Idle.owed(true, splay_over);
        assert_eq!(due, Reload::Due(splay_over));
        assert!(due.holds_passes());
        // A second install in the splay is covered by the same reload.
        assert_eq!(due.owed(true, splay_over + Duration::from_secs(1)), due);
    }

    #[test]
    fn a_file_installed_while_its_reload_runs_gets_one_more_reload() {
        let now = Instant::now();
        let running = Reload::Running { again: false };
        assert!(!running.holds_passes());
        let again = running.owed(true, now);
        assert_eq!(again, Reload::Running { again: true });
        assert_eq!(again.ended(now), Reload::Due(now));
        // Still owing a failed reload adds none while one runs.
        assert_eq!(running.owed(false, now), running);
        assert_eq!(running.ended(now), Reload::Idle);
    }

    #[test]
    fn a_retry_after_a_failure_does_not_hold_passes_and_an_install_brings_it_forward() {
        let now = Instant::now();
        let retry = Reload::Retry(now + Duration::from_secs(30));
        assert!(!retry.holds_passes());
        assert_eq!(retry.owed(false, now), Reload::Due(now));
    }
}
