//! A few threads (one per core) that render for every resource of the daemon.
//!
//! The daemon runs one thread per resource, mostly asleep in a long-poll. One change to a
//! tree that 100 resources render woke 100 threads that rendered at once on 2 cores,
//! fighting over the cores and musl's global allocator lock, so the first file landed as
//! late as nearly all the others (116 ms; the last 288 ms). Renders now queue for this
//! pool: at most one per core runs at a time, files land one after another, and the last
//! sooner. The pool's few threads also get room for deeply recursive templates that the
//! small watch-thread stacks could not afford.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Renders can recurse deeply (macros, includes); the pool's few threads can afford room.
const WORKER_STACK: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    /// `workers` threads (at least one); they end when the pool is dropped.
    pub fn new(workers: usize) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..workers.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("render {n}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(&queue))?;
        }
        Ok(Pool { jobs })
    }

    /// One worker per core this process may run on.
    pub fn per_core() -> std::io::Result<Pool> {
        Pool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `job` on a worker and waits for its result; `None` if it panicked.
    pub fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (result, receive) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            // The caller may have gone; then nobody needs the result.
            let _ = result.send(job());
        });
        self.jobs.send(job).ok()?;
        receive.recv().ok()
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

    #[test]
    fn runs_jobs_with_at_most_one_per_worker_at_once() {
        let pool = Pool::new(2).expect("pool");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (pool, running, most) = (&pool, Arc::clone(&running), Arc::clone(&most));
                scope.spawn(move || {
                    let doubled = pool.run(move || {
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
        let pool = Pool::new(1).expect("pool");
        assert_eq!(pool.run(|| -> u32 { panic!("template bug") }), None);
        assert_eq!(pool.run(|| 7), Some(7));
    }
}
