//! What the daemon and etcd-util get from etcd, whatever API it was read with.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The data under a key at one store index (v2) or revision (v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Full key → value of every leaf at or under the key; `None` when the key is missing.
    pub data: Option<BTreeMap<String, String>>,
    /// The store's index when it was read: watching from `index + 1` misses nothing.
    pub index: u64,
}

/// One change to one key, as a watch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The change's own index: watch from the next one.
    pub index: u64,
    pub key: String,
    pub op: Op,
    /// The store's index when the event was handed out (at least `index`).
    pub store_index: u64,
}

/// What a change did to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The key now holds this value.
    Put(String),
    /// The key, and everything under it, is gone (deleted or expired).
    Delete,
    /// No value changed: a directory was made or had its TTL changed (v2).
    NoValueChange,
    /// A change this client cannot apply to a kept snapshot: read the key again.
    Unknown,
}

impl Op {
    /// What the change did, in one word or two, for the log (the value may be secret).
    pub fn verb(&self) -> &'static str {
        match self {
            Op::Put(_) => "put",
            Op::Delete => "delete",
            Op::NoValueChange => "no value change",
            Op::Unknown => "unknown change",
        }
    }
}

impl Change {
    /// Whether nothing newer had been written to etcd (anywhere) when this event was
    /// handed out. When something had, more changes are likely queued behind it, and one
    /// read takes them all in one pass where applying events would take one pass each.
    pub fn was_newest(&self) -> bool {
        self.store_index <= self.index
    }
}

/// What one wait for a change ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Something changed: the change etcd reported.
    Changed(Change),
    /// The wait's bound passed with no event, or the endpoints were rediscovered (the index
    /// may be another cluster's): the caller knows which from its deadline.
    Expired,
    /// The index fell out of etcd's history, or etcd went back below it: read again.
    Resync,
}

/// A watch event as etcd-util shows it: the change, with what the API tells besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub change: Change,
    /// The API's own name for what happened (v2's action: `set`, `compareAndSwap`, ...).
    pub action: String,
    /// Whether the key is a directory (v2).
    pub dir: bool,
    /// The value before the change, when etcd reports it.
    pub prev_value: Option<String>,
}

/// What a key holds, as etcd-util prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The key holds a value: key → value.
    Value(String, String),
    /// The key is a directory read recursively: every leaf below it, full key → value.
    Leaves(BTreeMap<String, String>),
    /// The key is a directory read alone: its children, in key order.
    Children(Vec<Child>),
}

/// A child of a directory (v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub key: String,
    /// Whether the child is itself a directory.
    pub dir: bool,
}

/// `GET /version`, which every etcd API serves.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Version {
    pub etcdserver: String,
    pub etcdcluster: String,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}
