//! Whether etcd answers, shared by every caller of one client, so that an outage ends for
//! all of them at once.
//!
//! When no endpoint answers, every watcher would otherwise retry on its own growing backoff
//! and the last of them would follow etcd up to a whole backoff step after it came back.
//! Instead, callers wait here: one of them probes etcd cheaply every [`PROBE_EVERY`] while
//! the others sleep on a condition variable, and the first request that succeeds (the probe
//! or anyone's) wakes them all.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Pause between two probes during an outage: the most a recovery goes unnoticed.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How often a waiter looks at its stop signal (the client's shutdown wakes it at once).
const STOP_CHECK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Health {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// When the latest successful request ended.
    last_success: Option<Instant>,
    /// Whether a caller is probing now.
    probing: bool,
    shut_down: bool,
}

impl Health {
    /// Records a request that got an answer and wakes every waiter.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        state.last_success = Some(Instant::now());
        drop(state);
        self.changed.notify_all();
    }

    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.changed.notify_all();
    }

    /// Waits until a request that ended after `failed_at` succeeded; meanwhile one caller
    /// at a time runs `probe` every [`PROBE_EVERY`] (true when etcd answered). Returns
    /// false when `stopped` or the client shut down first.
    pub fn await_recovery(
        &self,
        failed_at: Instant,
        probe: impl Fn() -> bool,
        stopped: impl Fn() -> bool,
    ) -> bool {
        let mut state = self.lock();
        loop {
            if state.last_success.is_some_and(|at| at > failed_at) {
                return true;
            }
            if state.shut_down || stopped() {
                return false;
            }
            if state.probing {
                state = self.wait(state, STOP_CHECK);
                continue;
            }
            state.probing = true;
            drop(state);
            let answered = probe();
            state = self.lock();
            state.probing = false;
            if answered {
                state.last_success = Some(Instant::now());
                self.changed.notify_all();
                return true;
            }
            // Another waiter may probe next; this one sleeps out the interval.
            self.changed.notify_all();
            let until = Instant::now() + PROBE_EVERY;
            while Instant::now() < until
                && !state.shut_down
                && !stopped()
                && state.last_success.is_none_or(|at| at <= failed_at)
            {
                let left = until.saturating_duration_since(Instant::now());
                state = self.wait(state, left.min(STOP_CHECK));
            }
        }
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>, at_most: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(state, at_most)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single assignment: a panicking holder leaves the state whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[test]
    fn one_probe_at_a_time_and_its_success_wakes_every_waiter() {
        let health = Health::default();
        let failed_at = Instant::now();
        let up = AtomicBool::new(false);
        let probing = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let probe = || {
            let now = probing.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            probing.fetch_sub(1, Ordering::SeqCst);
            up.load(Ordering::SeqCst)
        };
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| health.await_recovery(failed_at, probe, || false)))
                .collect();
            std::thread::sleep(Duration::from_millis(600));
            let back = Instant::now();
            up.store(true, Ordering::SeqCst);
            for waiter in waiters {
                assert!(waiter.join().expect("no panic"));
            }
            assert!(back.elapsed() < PROBE_EVERY * 3, "{:?}", back.elapsed());
        });
        assert_eq!(most.into_inner(), 1);
    }

    #[test]
    fn a_success_after_the_failure_returns_at_once_and_shutdown_ends_the_wait() {
        let health = Health::default();
        let failed_at = Instant::now();
        health.succeeded();
        assert!(health.await_recovery(failed_at, || panic!("no probe needed"), || false));
        let later = Instant::now();
        health.shut_down();
        assert!(!health.await_recovery(later, || false, || false));
    }
}
