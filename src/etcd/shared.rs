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

use super::{Client, Error, Snapshot};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The data under a key at one store index, shareable between threads without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSnapshot {
    /// Full key → value of every leaf at or under the key; `None` when the key is missing.
    pub data: Option<Arc<BTreeMap<String, String>>>,
    /// `X-Etcd-Index` of the read: watching from `index + 1` misses nothing.
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
            || self
                .includes_index
                .is_some_and(|index| read.snapshot.index >= index)
    }
}

/// A cheap-to-clone handle over one client; clones share the cache.
#[derive(Clone)]
pub struct SnapshotCache {
    client: Client,
    created: Instant,
    shared: Arc<Shared>,
}

struct Shared {
    entries: Mutex<HashMap<(String, bool), Entry>>,
    done: Condvar,
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
    snapshot: SharedSnapshot,
}

impl SnapshotCache {
    pub fn new(client: Client) -> SnapshotCache {
        SnapshotCache {
            client,
            created: Instant::now(),
            shared: Arc::new(Shared {
                entries: Mutex::new(HashMap::new()),
                done: Condvar::new(),
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
            if let Some(read) = entry.latest.as_ref().filter(|read| fresh.accepts(read)) {
                return Ok(read.snapshot.clone());
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
        let started = Instant::now();
        let result = self.client.snapshot(key, recursive).map(share);
        reading.finish(started, &result);
        result
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, bool), Entry>> {
        // Entries are updated in single assignments, so a panicking holder leaves them whole.
        self.shared
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
                    entry.latest = Some(Read {
                        started,
                        snapshot: snapshot.clone(),
                    });
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
