//! A pass's data when a resource watches several keys (`"keys"`): every key is read, and
//! the template's `data` is the union of their leaves.
//!
//! A pass that reads more than one key (several keys, or altkeys) reads them, on v3, at one
//! revision: the first read's, so the keys are one consistent view together. v2 cannot
//! read the past: there each key is its own read (through the generation's shared reads in
//! the daemon), each holding at least the index the pass was asked for, so every change
//! that made the pass due is in the data, but the keys are not read at one single index.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::etcd::{Client, Error, Freshness, SnapshotCache};

/// Full key → value of every leaf at or under one key.
pub type Leaves = Arc<BTreeMap<String, String>>;

/// Reads the keys of one pass; see the module's doc.
pub struct PassReader<'a> {
    client: &'a Client,
    /// The daemon's shared reads; `None`: read each key from etcd.
    shared: Option<&'a SnapshotCache>,
    pin: Pin,
}

/// Where a pass's reads stand on reading at one revision.
#[derive(Debug, Clone, Copy)]
enum Pin {
    /// One key, or v2: each read on its own.
    Off,
    /// The first read fixes the revision.
    First,
    At(u64),
}

impl<'a> PassReader<'a> {
    /// The daemon's reader for a pass reading `reads` keys (keys and altkeys).
    pub fn shared(snapshots: &'a SnapshotCache, reads: usize) -> PassReader<'a> {
        PassReader {
            client: snapshots.client(),
            shared: Some(snapshots),
            pin: Pin::new(reads),
        }
    }

    /// A reader reading every key from etcd, for `reconfig --check`.
    pub fn direct(client: &'a Client, reads: usize) -> PassReader<'a> {
        PassReader {
            client,
            shared: None,
            pin: Pin::new(reads),
        }
    }

    /// The leaves at or under `key` (`None`: missing) and the read's index. `fresh` applies
    /// to a shared read; a read at one revision is a new read of this pass, fresher still.
    pub fn read(
        &mut self,
        key: &str,
        recursive: bool,
        fresh: Freshness,
    ) -> Result<(Option<Leaves>, u64), Error> {
        let at = match self.pin {
            Pin::Off => None,
            Pin::First => Some(None),
            Pin::At(revision) => Some(Some(revision)),
        };
        if let Some(at) = at {
            match self.client.snapshot_at(key, recursive, at)? {
                Some(read) => {
                    self.pin = Pin::At(read.index);
                    return Ok((read.data.map(Arc::new), read.index));
                }
                None => self.pin = Pin::Off,
            }
        }
        match self.shared {
            Some(snapshots) => {
                let read = snapshots.snapshot(key, recursive, fresh)?;
                Ok((read.data, read.index))
            }
            None => {
                let read = self.client.snapshot(key, recursive)?;
                Ok((read.data.map(Arc::new), read.index))
            }
        }
    }
}

impl Pin {
    fn new(reads: usize) -> Pin {
        if reads > 1 {
            Pin::First
        } else {
            Pin::Off
        }
    }
}

/// The union of the keys' leaves.
pub struct Union {
    /// `None` when none of the keys exists.
    pub data: Option<Leaves>,
    /// The lowest index of the reads: every key's data holds every change up to it.
    pub index: u64,
}

/// Reads every key of `keys` with `read` ((leaves or `None` when missing, index)) and
/// joins them. One key's read is used as it is, without a copy.
pub fn read_all<'k, E>(
    keys: impl IntoIterator<Item = &'k str>,
    mut read: impl FnMut(&str) -> Result<(Option<Leaves>, u64), E>,
) -> Result<Union, E> {
    let mut union: Option<Union> = None;
    for key in keys {
        let (data, index) = read(key)?;
        union = Some(match union {
            None => Union { data, index },
            Some(had) => Union {
                data: join(had.data, data),
                index: had.index.min(index),
            },
        });
    }
    Ok(union.unwrap_or(Union {
        data: None,
        index: 0,
    }))
}

fn join(a: Option<Leaves>, b: Option<Leaves>) -> Option<Leaves> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let mut joined = Arc::unwrap_or_clone(a);
            joined.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Arc::new(joined))
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(pairs: &[(&str, &str)]) -> Option<Leaves> {
        Some(Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    #[test]
    fn the_union_holds_every_existing_keys_leaves_and_the_lowest_index() {
        let reads = BTreeMap::from([
            ("/a", (leaves(&[("/a/1", "x")]), 7)),
            ("/b", (None, 9)),
            ("/c", (leaves(&[("/c/1", "y")]), 5)),
        ]);
        let union =
            read_all(["/a", "/b", "/c"], |key| Ok::<_, ()>(reads[key].clone())).expect("no error");
        assert_eq!(union.data, leaves(&[("/a/1", "x"), ("/c/1", "y")]));
        assert_eq!(union.index, 5);
        let none = read_all(["/b"], |key| Ok::<_, ()>(reads[key].clone())).expect("no error");
        assert_eq!(none.data, None);
    }
}
