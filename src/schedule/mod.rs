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
//!
//! `min_reload_interval` spaces a resource's reloads: one that would start sooner after
//! the previous one started is deferred to the window's end, never dropped. Passes go on
//! meanwhile, and every file installed in the window is covered by that one reload.

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
    /// Runs then, when `min_reload_interval` after the previous reload started ends; passes
    /// go on meanwhile, and their installs are covered by it.
    Throttled(Instant),
    /// Runs again then, the backoff after a failure, unless a pass owes one sooner.
    Retry(Instant),
    /// Running; `again`: a newer file was installed meanwhile, reload once more after.
    Running {
        again: bool,
    },
}

/// When a reload owed now may run.
#[derive(Debug, Clone, Copy)]
struct ReloadAt {
    /// The splay after the install.
    splay_over: Instant,
    /// `min_reload_interval` after the previous reload started, if it has not passed.
    throttle_over: Option<Instant>,
}

impl ReloadAt {
    /// The owed reload: after the splay, or deferred by the throttle when that ends later.
    fn owed(self) -> Reload {
        match self.throttle_over {
            Some(over) if over > self.splay_over => Reload::Throttled(over),
            _ => Reload::Due(self.splay_over),
        }
    }
}

impl Reload {
    /// After a pass owed a reload: `changed` a newer file, or still owes a failed one.
    fn owed(self, changed: bool, at: ReloadAt) -> Reload {
        match self {
            Reload::Idle | Reload::Retry(_) => at.owed(),
            Reload::Running { again } => Reload::Running {
                again: again || changed,
            },
            owed @ (Reload::Due(_) | Reload::Throttled(_)) => owed,
        }
    }

    /// After the running reload ended.
    fn ended(self, at: ReloadAt) -> Reload {
        match self {
            Reload::Running { again: true } => at.owed(),
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
    /// When its last reload started, for `min_reload_interval`.
    reload_started: Option<Instant>,
    /// How its reload ended, while its watcher was away on a pass.
    reload_outcome: Option<Option<ReloadResult>>,
    /// Its watch failed while its pass was away: reported when the watcher is back,
    /// unless the watch read again first.
    watch_failure: Option<PassError>,
    backoff: Backoff,
}

impl Slot {
    /// When a reload owed `now` may run.
    fn reload_at(&self, now: Instant) -> ReloadAt {
        ReloadAt {
            splay_over: now + self.resource.install.splay,
            throttle_over: self.throttle_over(now),
        }
    }

    /// When `min_reload_interval` after the last reload's start ends, if it is still ahead.
    fn throttle_over(&self, now: Instant) -> Option<Instant> {
        let over = self.reload_started? + self.resource.min_reload_interval?;
        (over > now).then_some(over)
    }

    /// Sets the reload state, logging when the throttle defers a reload.
    fn set_reload(&mut self, reload: Reload, now: Instant) {
        if let (Reload::Throttled(at), false) =
            (reload, matches!(self.reload, Reload::Throttled(_)))
        {
            log::info!(target: self.resource.id(), "reload deferred {:.1} s by min_reload_interval", at.saturating_duration_since(now).as_secs_f64());
        }
        self.reload = reload;
    }

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
    /// `resources[i]` follows the watches `watch_of[i]` of `watches` in all.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        resources: &[Arc<Resource>],
        watch_of: &[Vec<usize>],
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
            .map(|(n, (resource, followed))| {
                for &watch in followed {
                    followers[watch].push(n);
                }
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
                    reload_started: None,
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
                    Reload::Due(_) | Reload::Throttled(_) | Reload::Retry(_) => stopped,
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
                        let owed = slot.reload.owed(changed, slot.reload_at(now));
                        slot.set_reload(owed, now);
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
                let next = slot.reload.ended(slot.reload_at(now));
                slot.set_reload(next, now);
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
            if let Reload::Due(at) | Reload::Throttled(at) | Reload::Retry(at) = slot.reload {
                if at <= now {
                    slot.reload = Reload::Running { again: false };
                    slot.reload_started = Some(now);
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
            let backoff_over = now + slot.backoff.next_pause();
            let at = slot
                .throttle_over(now)
                .map_or(backoff_over, |over| over.max(backoff_over));
            slot.reload = Reload::Retry(at);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A reload owed with `splay_over` and no throttle.
    fn after_splay(splay_over: Instant) -> ReloadAt {
        ReloadAt {
            splay_over,
            throttle_over: None,
        }
    }

    #[test]
    fn an_install_owes_a_reload_after_the_splay_and_holds_passes_until_then() {
        let splay_over = Instant::now() + Duration::from_secs(1);
        let due = Reload::Idle.owed(true, after_splay(splay_over));
        assert_eq!(due, Reload::Due(splay_over));
        assert!(due.holds_passes());
        // A second install in the splay is covered by the same reload.
        assert_eq!(
            due.owed(true, after_splay(splay_over + Duration::from_secs(1))),
            due
        );
    }

    #[test]
    fn a_file_installed_while_its_reload_runs_gets_one_more_reload() {
        let now = Instant::now();
        let running = Reload::Running { again: false };
        assert!(!running.holds_passes());
        let again = running.owed(true, after_splay(now));
        assert_eq!(again, Reload::Running { again: true });
        assert_eq!(again.ended(after_splay(now)), Reload::Due(now));
        // Still owing a failed reload adds none while one runs.
        assert_eq!(running.owed(false, after_splay(now)), running);
        assert_eq!(running.ended(after_splay(now)), Reload::Idle);
    }

    #[test]
    fn a_retry_after_a_failure_does_not_hold_passes_and_an_install_brings_it_forward() {
        let now = Instant::now();
        let retry = Reload::Retry(now + Duration::from_secs(30));
        assert!(!retry.holds_passes());
        assert_eq!(retry.owed(false, after_splay(now)), Reload::Due(now));
    }

    #[test]
    fn a_reload_sooner_than_min_reload_interval_is_deferred_without_holding_passes() {
        let now = Instant::now();
        let window_end = now + Duration::from_secs(10);
        let throttled = ReloadAt {
            splay_over: now,
            throttle_over: Some(window_end),
        };
        let deferred = Reload::Idle.owed(true, throttled);
        assert_eq!(deferred, Reload::Throttled(window_end));
        // Installs in the window go on, and the one deferred reload covers them.
        assert!(!deferred.holds_passes());
        assert_eq!(deferred.owed(true, throttled), deferred);
        // A file installed while a reload runs is reloaded at the window's end.
        let again = Reload::Running { again: true };
        assert_eq!(again.ended(throttled), Reload::Throttled(window_end));
        // A splay ending after the window is the later bound, and holds passes as ever.
        let late_splay = ReloadAt {
            splay_over: window_end + Duration::from_secs(1),
            throttle_over: Some(window_end),
        };
        assert_eq!(
            Reload::Idle.owed(true, late_splay),
            Reload::Due(window_end + Duration::from_secs(1))
        );
    }
}
