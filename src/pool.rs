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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Renders can recurse deeply (macros, includes); the pool's few threads can afford room.
pub const RENDER_STACK: usize = 8 * 1024 * 1024;

/// Up to `workers` threads taking jobs from one queue. Threads start as jobs need them (a
/// job queued while none is idle), not all at once: a daemon with one resource never runs
/// more than one pass at a time on a pool, so it holds one thread per pool, not the most
/// the machine could use.
#[derive(Debug)]
pub struct Pool {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Receiver<Job>>,
    counts: Mutex<Counts>,
    name: String,
    most: usize,
    stack: usize,
}

#[derive(Debug, Default)]
struct Counts {
    /// Threads started.
    workers: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Jobs queued and not taken yet.
    queued: usize,
}

impl Pool {
    /// A pool of up to `workers` threads (at least one) named `name N`, each with `stack`
    /// bytes of stack; the first starts now (an error here is the caller's), the others
    /// when jobs wait. They end when the pool is dropped and their queue is empty.
    pub fn new(name: &str, workers: usize, stack: usize) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            counts: Mutex::new(Counts::default()),
            name: name.to_string(),
            most: workers.max(1),
            stack,
        });
        start_worker(&shared, &mut lock(&shared.counts))?;
        Ok(Pool { jobs, shared })
    }

    /// Queues `job` without waiting for it, starting a thread for it when none is idle and
    /// the pool has room; a job that panics is dropped (see [`work`]), and so is a job
    /// queued after every worker died, so a job should hand its results back through
    /// something whose `Drop` speaks for it.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let mut counts = lock(&self.shared.counts);
        if self.jobs.send(Box::new(job)).is_err() {
            return;
        }
        counts.queued += 1;
        if counts.queued > counts.idle && counts.workers < self.shared.most {
            if let Err(e) = start_worker(&self.shared, &mut counts) {
                // The job waits for a thread already started.
                log::warn!(
                    "cannot start another {} thread ({e}); the job waits for a running one",
                    self.shared.name
                );
            }
        }
    }

    /// Threads started so far.
    #[cfg(test)]
    fn workers(&self) -> usize {
        lock(&self.shared.counts).workers
    }
}

fn start_worker(shared: &Arc<Shared>, counts: &mut Counts) -> std::io::Result<()> {
    let worker = Arc::clone(shared);
    std::thread::Builder::new()
        .name(format!("{} {}", shared.name, counts.workers))
        .stack_size(shared.stack)
        .spawn(move || work(&worker))?;
    counts.workers += 1;
    Ok(())
}

fn work(shared: &Shared) {
    loop {
        lock(&shared.counts).idle += 1;
        // Hold the lock only to take a job, not while running it.
        let next = lock(&shared.queue).recv();
        {
            let mut counts = lock(&shared.counts);
            counts.idle -= 1;
            if next.is_ok() {
                counts.queued = counts.queued.saturating_sub(1);
            }
        }
        let Ok(job) = next else {
            return;
        };
        // A panicking job loses its result (its caller gets `None`), not the worker.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

/// A panic while holding a pool's lock leaves plain counts behind; go on with them.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    fn threads_start_only_as_jobs_wait_for_one() {
        let pool = Pool::new("test", 4, RENDER_STACK).expect("pool");
        // Each job queued once the worker is back waiting (a job hands its result over
        // just before its worker is idle again).
        let idle_again = |pool: &Pool| {
            while lock(&pool.shared.counts).idle == 0 {
                std::thread::yield_now();
            }
        };
        for i in 0..20 {
            idle_again(&pool);
            assert_eq!(run(&pool, move || i + 1), Some(i + 1));
        }
        assert_eq!(pool.workers(), 1, "one job at a time needs one thread");
        idle_again(&pool);
        let release = Arc::new(std::sync::Barrier::new(4));
        let (done, finished) = mpsc::channel();
        for _ in 0..3 {
            let (release, done) = (Arc::clone(&release), done.clone());
            pool.spawn(move || {
                release.wait();
                let _ = done.send(());
            });
        }
        // Three jobs that wait for each other run at once: three threads.
        release.wait();
        for _ in 0..3 {
            finished.recv().expect("job done");
        }
        assert_eq!(pool.workers(), 3);
    }

    #[test]
    fn a_panicking_job_gives_none_and_the_worker_lives_on() {
        let pool = Pool::new("test", 1, RENDER_STACK).expect("pool");
        assert_eq!(run(&pool, || -> u32 { panic!("template bug") }), None);
        assert_eq!(run(&pool, || 7), Some(7));
    }
}
