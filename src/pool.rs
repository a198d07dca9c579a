//! A fixed set of threads taking jobs from one queue: the daemon's passes run on three of
//! them (`schedule`): reads and renders (one thread per core), installs, and reloads.
//!
//! One change to a tree that 100 resources render once woke 100 threads that rendered at
//! once on 2 cores, fighting over the cores and musl's global allocator lock, so the first
//! file landed as late as nearly all the others (116 ms; the last 288 ms). Renders queue
//! for a pool instead: at most one per core runs at a time, files land one after another,
//! and the last sooner. Commands get pools of their own so that a 30 s reload never holds
//! a render thread, and an install never waits behind another resource's reload.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Renders can recurse deeply (macros, includes); the pool's few threads can afford room.
pub const RENDER_STACK: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    /// `workers` threads (at least one) named `name N`, each with `stack` bytes of stack;
    /// they end when the pool is dropped and their queue is empty.
    pub fn new(name: &str, workers: usize, stack: usize) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("{name} {n}"))
                .stack_size(stack)
                .spawn(move || work(&queue))?;
        }
        Ok(Pool { jobs })
    }

    /// Queues `job` without waiting for it; a job that panics is dropped (see [`work`]),
    /// and so is a job queued after every worker died, so a job should hand its results
    /// back through something whose `Drop` speaks for it.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only to take a job, not while running it.
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            return;
        };
        // A panicking job loses its result (its caller gets `None`), not the worker.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Runs `job` on a worker and waits for its result; `None` if it panicked.
    fn run<T: Send + 'static>(pool: &Pool, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (result, receive) = mpsc::sync_channel(1);
        pool.spawn(move || {
            let _ = result.send(job());
        });
        receive.recv().ok()
    }

    #[test]
    fn runs_jobs_with_at_most_one_per_worker_at_once() {
        let pool = Pool::new("test", 2, RENDER_STACK).expect("pool");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (pool, running, most) = (&pool, Arc::clone(&running), Arc::clone(&most));
                scope.spawn(move || {
                    let doubled = run(pool, move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i * 2
                    });
                    assert_eq!(doubled, Some(i * 2));
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_job_gives_none_and_the_worker_lives_on() {
        let pool = Pool::new("test", 1, RENDER_STACK).expect("pool");
        assert_eq!(run(&pool, || -> u32 { panic!("template bug") }), None);
        assert_eq!(run(&pool, || 7), Some(7));
    }
}
