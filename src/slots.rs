//! A counting semaphore that bounds how many threads do CPU-bound work at once.
//!
//! The daemon runs one thread per resource, so one change to a tree that 100 resources
//! render wakes 100 threads at once. Rendering all of them at the same time on 2 cores only
//! makes them fight over the cores and the allocator's lock (musl's is global): every file
//! lands as late as the last one. One render per core at a time lets the files land one
//! after another, and the last one sooner.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// `count` slots; at least one, so that `take` can always return.
    pub fn new(count: usize) -> Slots {
        Slots {
            free: Mutex::new(count.max(1)),
            freed: Condvar::new(),
        }
    }

    /// One slot per core this process may run on.
    pub fn per_core() -> Slots {
        Slots::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Waits for a free slot; it is given back when the returned guard is dropped.
    pub fn take(&self) -> Slot<'_> {
        let mut free = self.lock();
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // The count is changed in single statements: a panicking holder leaves it whole.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A taken slot, given back on drop (also on a panic of its holder).
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.lock() += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn never_more_holders_than_slots() {
        let slots = Slots::new(2);
        let holding = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let _slot = slots.take();
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    holding.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(*slots.lock(), 2, "every slot given back");
    }

    #[test]
    fn zero_slots_means_one() {
        let slots = Slots::new(0);
        drop(slots.take());
        drop(slots.take());
    }
}
