//! Snapshots shared between the resources that watch the same key.
//!
//! When 100 resources render the same tree, one change wakes 100 watchers; each needs a
//! snapshot that holds the change. Reading the tree once and handing the same map to all
//! of them saves etcd 99 reads (and reconfig 99 parses and 99 copies of the data).
//!
//! A cached snapshot is only handed out when it is as fresh as a read of one's own would
//! be: it was read after the caller's reference instant, or its index already includes the
//! change the caller is reacting to. At most one read per key is in flight; callers that
//! need the same key wait for it instead of sending their own.
//!
//! After a change, [`SnapshotCache::advance`] applies the watch's events to the kept read
//! instead of reading the whole tree again (see `change`). Reads are kept between changes
//! up to a budget of leaves, so a daemon with a few resources converges at once while one
//! with hundreds of large trees stays small; beyond the budget, changes mean a new read.

use super::change;
use super::client::Client;
use super::error::Error;
use super::types::{Change, Snapshot};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

/// The data under a key at one store index, shareable between threads without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSnapshot {
    /// Full key → value of every leaf at or under the key; `None` when the key is missing.
    pub data: Option<Arc<BTreeMap<String, String>>>,
    /// The store's index when it was read: watching from `index + 1` misses nothing.
    pub index: u64,
}

/// How fresh a snapshot must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// A read that started at or after this instant will do.
    pub read_after: Instant,
    /// So will any snapshot whose index is at least this (it holds that change).
    pub includes_index: Option<u64>,
}

impl Freshness {
    /// A read started now or later: what a pass without a known change needs.
    pub fn now() -> Freshness {
        Freshness::read_after(Instant::now())
    }

    pub fn read_after(at: Instant) -> Freshness {
        Freshness {
            read_after: at,
            includes_index: None,
        }
    }

    /// After a watch reported the change at `index` (at `seen`).
    pub fn including(index: u64, seen: Instant) -> Freshness {
        Freshness {
            read_after: seen,
            includes_index: Some(index),
        }
    }

    fn accepts(&self, read: &Read) -> bool {
        read.started >= self.read_after
            || self.includes_index.is_some_and(|index| read.index >= index)
    }
}

/// A cheap-to-clone handle over one client; clones share the cache.
#[derive(Clone)]
pub struct SnapshotCache {
    client: Client,
    created: Instant,
    /// Keep every read for the cache's life, not only while a caller still holds it.
    keep: bool,
    shared: Arc<Shared>,
}

struct Shared {
    entries: Mutex<HashMap<(String, bool), Entry>>,
    done: Condvar,
    /// Reads in flight, over all keys; at most `max_reads` at once.
    reads: Mutex<usize>,
    read_ended: Condvar,
    max_reads: usize,
    /// Leaves of the reads held strongly between changes, over all keys.
    kept_leaves: AtomicUsize,
}

/// Leaves the daemon keeps between changes so that a change can be applied to them: about
/// 0.5 MB. One resource's tree of 1 000 keys fits; 100 of them do not (idle RSS matters more
/// there than the 1-2 ms a read costs).
const KEPT_LEAVES_BUDGET: usize = 5_000;

/// How many reads may run at once: one per core, at least 2. At start-up every resource
/// reads its tree at the same moment; 100 trees of 1 000 keys read and parsed together made
/// a heap of 30 MB that the allocator kept in pieces afterwards (idle RSS 13+ MB instead of
/// 11). Reading a few at a time costs nothing that matters: etcd answers them one after
/// another anyway.
fn max_reads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

#[derive(Default)]
struct Entry {
    /// The latest-started successful read.
    latest: Option<Read>,
    /// The latest-started failed read, so waiters of a failed read do not each retry it.
    failed: Option<(Instant, Error)>,
    reading: bool,
}

struct Read {
    started: Instant,
    index: u64,
    data: Held,
}

/// The data of a read, held by the cache strongly or only while callers use it.
enum Held {
    Missing,
    Kept(Arc<BTreeMap<String, String>>),
    WhileUsed(Weak<BTreeMap<String, String>>),
}

impl Read {
    fn new(started: Instant, snapshot: &SharedSnapshot, keep: bool) -> Read {
        let data = match &snapshot.data {
            None => Held::Missing,
            Some(data) if keep => Held::Kept(Arc::clone(data)),
            Some(data) => Held::WhileUsed(Arc::downgrade(data)),
        };
        Read {
            started,
            index: snapshot.index,
            data,
        }
    }

    /// Leaves this read holds strongly.
    fn kept_leaves(&self) -> usize {
        match &self.data {
            Held::Kept(data) => data.len(),
            Held::Missing | Held::WhileUsed(_) => 0,
        }
    }

    /// The snapshot again; `None` once every caller has dropped data held weakly.
    fn snapshot(&self) -> Option<SharedSnapshot> {
        let data = match &self.data {
            Held::Missing => None,
            Held::Kept(data) => Some(Arc::clone(data)),
            Held::WhileUsed(data) => Some(data.upgrade()?),
        };
        Some(SharedSnapshot {
            data,
            index: self.index,
        })
    }
}

impl SnapshotCache {
    /// A cache that holds a read only while some caller still uses it: an idle daemon
    /// keeps no tree in memory, and the resources woken by one change share its read.
    pub fn new(client: Client) -> SnapshotCache {
        SnapshotCache::with_retention(client, false)
    }

    /// A cache that keeps every read for its own life: for `--onetime`, where resources on
    /// the same key render one after another.
    pub fn keeping(client: Client) -> SnapshotCache {
        SnapshotCache::with_retention(client, true)
    }

    fn with_retention(client: Client, keep: bool) -> SnapshotCache {
        SnapshotCache {
            client,
            created: Instant::now(),
            keep,
            shared: Arc::new(Shared {
                entries: Mutex::new(HashMap::new()),
                done: Condvar::new(),
                reads: Mutex::new(0),
                read_ended: Condvar::new(),
                max_reads: max_reads(),
                kept_leaves: AtomicUsize::new(0),
            }),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// When the cache was made: any read since then is fresh enough for a first pass.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// A snapshot of `key` at least as fresh as `fresh` asks: from the cache, from a read
    /// another thread has in flight, or read now.
    pub fn snapshot(
        &self,
        key: &str,
        recursive: bool,
        fresh: Freshness,
    ) -> Result<SharedSnapshot, Error> {
        let id = (key.to_string(), recursive);
        let mut entries = self.lock();
        loop {
            let entry = entries.entry(id.clone()).or_default();
            let cached = entry.latest.as_ref().filter(|read| fresh.accepts(read));
            if let Some(snapshot) = cached.and_then(Read::snapshot) {
                return Ok(snapshot);
            }
            if let Some((_, error)) = entry
                .failed
                .as_ref()
                .filter(|(started, _)| *started >= fresh.read_after)
            {
                return Err(error.clone());
            }
            if !entry.reading {
                entry.reading = true;
                break;
            }
            entries = self
                .shared
                .done
                .wait(entries)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        drop(entries);
        let reading = ReadingGuard {
            cache: self,
            id: Some(id),
        };
        let _permit = self.read_permit();
        let started = Instant::now();
        let result = self.client.snapshot(key, recursive).map(share);
        reading.finish(started, &result);
        result
    }

    /// The snapshot of `key` after `changes`, the events a watch from `after_index` + 1
    /// reported (all of them, in order), made by applying them to the kept read. `None`
    /// when that cannot be done, and the caller reads with `Freshness::including(last
    /// change)`: the watch was not recursive, newer writes were queued behind the last
    /// change (a burst: one read then takes them all), the kept read is gone or older than
    /// `after_index`, or a change is not plain (see `change`).
    pub fn advance(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        changes: &[Change],
    ) -> Option<SharedSnapshot> {
        let last = changes
            .last()
            .filter(|last| recursive && last.was_newest())?;
        let last = last.index;
        let mut entries = self.lock();
        let entry = entries.get_mut(&(key.to_string(), true))?;
        let read = entry.latest.as_ref()?;
        if read.index >= last {
            return read.snapshot();
        }
        if read.index < after_index {
            return None;
        }
        let mut data = match &read.data {
            Held::Kept(data) => Arc::clone(data),
            Held::WhileUsed(data) => data.upgrade()?,
            Held::Missing => return None,
        };
        let started = read.started;
        // The changes the kept read already holds are those at or before its index.
        let newer = changes
            .iter()
            .position(|change| change.index > read.index)
            .unwrap_or(changes.len());
        // Release the cache's own reference, so that the usual single user updates the
        // map in place instead of copying it. Should a change not apply, the read is
        // dropped: the caller's new read replaces it anyway.
        self.release(entry);
        change::apply_all(Arc::make_mut(&mut data), key, &changes[newer..]).ok()?;
        let snapshot = SharedSnapshot {
            data: Some(data),
            index: last,
        };
        // It holds what a read at `last` would, but it is no fresher than the read it
        // started from for callers that need a read made after some instant.
        self.store(entry, started, &snapshot);
        Some(snapshot)
    }

    /// Makes `snapshot` the entry's latest read, held strongly while the budget allows.
    fn store(&self, entry: &mut Entry, started: Instant, snapshot: &SharedSnapshot) {
        self.release(entry);
        let leaves = snapshot.data.as_ref().map_or(0, |data| data.len());
        let kept = &self.shared.kept_leaves;
        let keep = self.keep
            || kept
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                    (now + leaves <= KEPT_LEAVES_BUDGET).then_some(now + leaves)
                })
                .is_ok();
        entry.latest = Some(Read::new(started, snapshot, keep));
    }

    /// Drops the entry's latest read, giving back its share of the budget.
    fn release(&self, entry: &mut Entry) {
        if let Some(read) = entry.latest.take() {
            if !self.keep {
                self.shared
                    .kept_leaves
                    .fetch_sub(read.kept_leaves(), Ordering::SeqCst);
            }
        }
    }

    /// Waits until fewer than `max_reads` reads run; the read counts until the permit drops.
    fn read_permit(&self) -> ReadPermit<'_> {
        let shared = &self.shared;
        let mut reads = shared.reads.lock().unwrap_or_else(PoisonError::into_inner);
        while *reads >= shared.max_reads {
            reads = shared
                .read_ended
                .wait(reads)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *reads += 1;
        ReadPermit(shared)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, bool), Entry>> {
        // Entries are updated in single assignments, so a panicking holder leaves them whole.
        self.shared
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct ReadPermit<'a>(&'a Shared);

impl Drop for ReadPermit<'_> {
    fn drop(&mut self) {
        *self.0.reads.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.read_ended.notify_one();
    }
}

/// Marks a key's read as in flight; ends it (and wakes the waiters) even on a panic.
struct ReadingGuard<'a> {
    cache: &'a SnapshotCache,
    id: Option<(String, bool)>,
}

impl ReadingGuard<'_> {
    fn finish(mut self, started: Instant, result: &Result<SharedSnapshot, Error>) {
        let Some(id) = self.id.take() else { return };
        let mut entries = self.cache.lock();
        let entry = entries.entry(id).or_default();
        entry.reading = false;
        match result {
            Ok(snapshot) => {
                if entry.latest.as_ref().is_none_or(|r| r.started <= started) {
                    self.cache.store(entry, started, snapshot);
                }
            }
            Err(error) => entry.failed = Some((started, error.clone())),
        }
        drop(entries);
        self.cache.shared.done.notify_all();
    }
}

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if let Some(entry) = self.cache.lock().get_mut(&id) {
                entry.reading = false;
            }
            self.cache.shared.done.notify_all();
        }
    }
}

fn share(snapshot: Snapshot) -> SharedSnapshot {
    SharedSnapshot {
        data: snapshot.data.map(Arc::new),
        index: snapshot.index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::options::ClientOptions;
    use std::time::Duration;

    fn read(started: Instant, index: u64) -> Read {
        Read {
            started,
            index,
            data: Held::Missing,
        }
    }

    #[test]
    fn data_held_while_used_is_gone_once_the_last_caller_drops_it() {
        let snapshot = SharedSnapshot {
            data: Some(Arc::new(BTreeMap::from([(
                "/k".to_string(),
                "v".to_string(),
            )]))),
            index: 7,
        };
        let weak = Read::new(Instant::now(), &snapshot, false);
        assert_eq!(weak.snapshot().as_ref(), Some(&snapshot));
        let kept = Read::new(Instant::now(), &snapshot.clone(), true);
        drop(snapshot);
        assert_eq!(
            weak.snapshot().map(|s| s.index),
            Some(7),
            "kept by the other read"
        );
        drop(kept);
        assert_eq!(weak.snapshot(), None);
    }

    #[test]
    fn a_read_started_after_the_reference_is_fresh_enough() {
        let reference = Instant::now();
        let later = reference + Duration::from_millis(1);
        assert!(Freshness::read_after(reference).accepts(&read(reference, 1)));
        assert!(Freshness::read_after(reference).accepts(&read(later, 1)));
        let earlier = Freshness::read_after(later);
        assert!(!earlier.accepts(&read(reference, 1_000)));
    }

    #[test]
    fn an_older_read_counts_only_when_it_holds_the_change() {
        let read_at = Instant::now();
        let seen = read_at + Duration::from_millis(5);
        assert!(Freshness::including(41, seen).accepts(&read(read_at, 41)));
        assert!(Freshness::including(41, seen).accepts(&read(read_at, 50)));
        assert!(!Freshness::including(42, seen).accepts(&read(read_at, 41)));
    }

    #[test]
    fn no_more_reads_at_once_than_the_limit() {
        let client = Client::new(ClientOptions {
            endpoints: vec!["http://127.0.0.1:1".to_string()],
            ..ClientOptions::default()
        })
        .expect("client");
        let cache = SnapshotCache::new(client);
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 * cache.shared.max_reads {
                scope.spawn(|| {
                    let _permit = cache.read_permit();
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.into_inner(), cache.shared.max_reads);
    }

    #[test]
    fn callers_waiting_on_a_failed_read_get_its_error_instead_of_hanging() {
        let client = Client::new(ClientOptions {
            endpoints: vec!["http://127.0.0.1:1".to_string()],
            connect_timeout: Duration::from_millis(200),
            ..ClientOptions::default()
        })
        .expect("client");
        let cache = SnapshotCache::new(client);
        let fresh = Freshness::read_after(cache.created());
        std::thread::scope(|scope| {
            let callers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| cache.snapshot("/k", true, fresh)))
                .collect();
            for caller in callers {
                let result = caller.join().expect("no panic");
                assert!(result.is_err(), "{result:?}");
            }
        });
    }
}
