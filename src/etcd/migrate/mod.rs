//! Copying a v2 tree into v3 (`etcd-util -o MIGRATE`): the bridge from a v2 cluster to
//! etcd 3.6, which no longer serves v2. It speaks both APIs to one cluster at once.
//!
//! One recursive v2 GET (at one store index, through the leader) gives the tree; one
//! paged v3 read at one revision gives what v3 already holds under the same key; [`plan`]
//! decides each key. The writes are guarded puts in transactions of at most 128 (`v3::txn`):
//! a new key is put only while still absent, an overwritten one only while it still holds
//! the value read, so a write made to v3 during the migration is never lost. A key with a
//! TTL is put under a lease of its remaining TTL, one lease per distinct TTL.

mod plan;

pub use plan::{Action, Leaf, Step, Tree};

use super::error::Error;
use super::v2::{self, GetOptions};
use super::v3::proto::PutRequest;
use super::v3::txn::{batches, Guard, GuardedPut};
use super::v3::{self};
use std::collections::BTreeMap;
use std::fmt;

/// Both clients of one cluster (see [`crate::etcd::Client::migrator`]).
pub struct Migrator {
    pub(super) v2: v2::Client,
    pub(super) v3: v3::Client,
}

/// How to migrate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Decide and report, write nothing.
    pub dry_run: bool,
    /// Replace a v3 value that differs from v2's instead of reporting a conflict.
    pub overwrite: bool,
}

/// What a migration did (or, on a dry run, would do).
#[derive(Debug, Clone)]
pub struct Report {
    /// The v2 store index the tree was read at.
    pub index: u64,
    /// Every leaf, in key order, and what happened to it.
    pub steps: Vec<Step>,
    pub directories: usize,
    pub empty_directories: Vec<String>,
    /// Transactions sent (0 on a dry run or when nothing was to be written).
    pub transactions: usize,
}

impl Report {
    fn count(&self, matches: impl Fn(&Step) -> bool) -> usize {
        self.steps.iter().filter(|s| matches(s)).count()
    }

    pub fn copied(&self) -> usize {
        self.count(|s| s.action == Action::Copy)
    }

    pub fn overwritten(&self) -> usize {
        self.count(|s| matches!(s.action, Action::Overwrite { .. }))
    }

    pub fn unchanged(&self) -> usize {
        self.count(|s| s.action == Action::Unchanged)
    }

    pub fn conflicts(&self) -> usize {
        self.count(|s| s.action == Action::Conflict)
    }

    /// Keys written (or to be written) under a lease.
    pub fn with_ttl(&self) -> usize {
        self.count(|s| s.writes() && s.leaf.ttl.is_some())
    }
}

/// Why a migration stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateError {
    Etcd(Error),
    /// `GET /v2/keys/` is a 404: etcd 3.6 or newer, or started without `--enable-v2`.
    V2NotServed {
        endpoint: String,
    },
    /// A transaction's guards did not hold: the key was written in v3 after it was read.
    /// That transaction wrote nothing; `written` keys went in before it.
    Raced {
        endpoint: String,
        key: String,
        written: usize,
    },
}

impl From<Error> for MigrateError {
    fn from(e: Error) -> MigrateError {
        MigrateError::Etcd(e)
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Etcd(e) => e.fmt(f),
            MigrateError::V2NotServed { endpoint } => write!(
                f,
                "{endpoint} does not serve etcd's v2 API, so there is no v2 data to migrate \
                 (etcd 3.6 and newer dropped v2, and 3.4/3.5 serve it only with \
                 --enable-v2=true): migrate before upgrading etcd to 3.6, on a 3.4 or 3.5 \
                 cluster serving both APIs"
            ),
            MigrateError::Raced {
                endpoint,
                key,
                written,
            } => write!(
                f,
                "{endpoint}: a key of the transaction starting at {key} was written in v3 \
                 during the migration, so that transaction wrote nothing ({written} keys \
                 were copied before it); run the migration again: it copies what is \
                 missing and reports what differs"
            ),
        }
    }
}

impl std::error::Error for MigrateError {}

impl Migrator {
    /// Copies the v2 tree at or under `key` into v3; see the module's doc.
    pub fn run(&self, key: &str, options: Options) -> Result<Report, MigrateError> {
        let (endpoint, serves_v2) = self.v3.serves_v2_at()?;
        if !serves_v2 {
            return Err(MigrateError::V2NotServed { endpoint });
        }
        let read = GetOptions {
            recursive: true,
            sorted: true,
            quorum: true,
        };
        let answer = self.v2.get_with(key, &read)?;
        let tree = Tree::from_node(&answer.node);
        log::debug!(
            "{key}: {} v2 keys at index {}",
            tree.leaves.len(),
            answer.etcd_index
        );
        let held = self.v3.values(key)?;
        let steps = plan::plan(&tree, &held, options.overwrite);
        let mut report = Report {
            index: answer.etcd_index,
            steps,
            directories: tree.directories,
            empty_directories: tree.empty_directories,
            transactions: 0,
        };
        if !options.dry_run {
            report.transactions = self.write(&report.steps)?;
        }
        Ok(report)
    }

    /// Puts every step that writes, in guarded transactions; how many were sent.
    fn write(&self, steps: &[Step]) -> Result<usize, MigrateError> {
        let writes: Vec<&Step> = steps.iter().filter(|s| s.writes()).collect();
        let leases = self.leases(&writes)?;
        let puts: Vec<GuardedPut> = writes
            .iter()
            .map(|step| guarded_put(step, &leases))
            .collect();
        let transactions = batches(&puts);
        let mut written = 0;
        for (txn, batch) in transactions.iter().zip(puts.chunks(v3::txn::MAX_TXN_OPS)) {
            let first = batch
                .first()
                .map(|p| String::from_utf8_lossy(&p.put.key).into_owned())
                .unwrap_or_default();
            let (endpoint, succeeded) = self.v3.txn(txn, &first)?;
            if !succeeded {
                return Err(MigrateError::Raced {
                    endpoint,
                    key: first,
                    written,
                });
            }
            written += batch.len();
        }
        Ok(transactions.len())
    }

    /// One lease per distinct remaining TTL among the keys to write: TTL → lease id.
    fn leases(&self, writes: &[&Step]) -> Result<BTreeMap<u64, i64>, Error> {
        let mut leases = BTreeMap::new();
        for ttl in writes.iter().filter_map(|s| s.leaf.ttl) {
            if let std::collections::btree_map::Entry::Vacant(slot) = leases.entry(ttl) {
                slot.insert(self.v3.grant_lease(ttl)?);
            }
        }
        Ok(leases)
    }
}

/// The put of a step that writes: guarded by the key being absent (a copy) or still
/// holding the value read (an overwrite).
fn guarded_put(step: &Step, leases: &BTreeMap<u64, i64>) -> GuardedPut {
    let guard = match &step.action {
        Action::Overwrite { v3_value } => Guard::Holds(v3_value.clone()),
        _ => Guard::Absent,
    };
    GuardedPut {
        put: PutRequest {
            key: step.leaf.key.as_bytes().to_vec(),
            value: step.leaf.value.as_bytes().to_vec(),
            lease: step
                .leaf
                .ttl
                .and_then(|ttl| leases.get(&ttl).copied())
                .unwrap_or(0),
            prev_kv: false,
        },
        guard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, ttl: Option<u64>, action: Action) -> Step {
        Step {
            leaf: Leaf {
                key: key.into(),
                value: "v2".into(),
                ttl,
            },
            action,
        }
    }

    #[test]
    fn a_copy_needs_the_key_absent_and_an_overwrite_the_value_read() {
        let leases = BTreeMap::from([(30, 7)]);
        let copy = guarded_put(&step("/a", Some(30), Action::Copy), &leases);
        assert_eq!(copy.guard, Guard::Absent);
        assert_eq!(
            (copy.put.key, copy.put.value),
            (b"/a".to_vec(), b"v2".to_vec())
        );
        assert_eq!(copy.put.lease, 7);
        let overwrite = Action::Overwrite {
            v3_value: b"v3".to_vec(),
        };
        let replace = guarded_put(&step("/b", None, overwrite), &leases);
        assert_eq!(replace.guard, Guard::Holds(b"v3".to_vec()));
        assert_eq!(replace.put.lease, 0);
    }
}
