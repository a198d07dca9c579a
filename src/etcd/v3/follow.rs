//! Following a key over the client's shared watch stream.
//!
//! A watch stream carries every later change of its range, several per message included,
//! so a subscription keeps its watch open and reads each change from it instead of opening
//! a watch (a request, a watch on etcd) per change. The watch is one of the client's shared
//! stream ([`super::hub`]), which keeps the stream alive, opens it again from the last
//! revision routed + 1 when it must, and hands each message over a channel: a receive can
//! then end at any deadline, and the watch stays open between receives. A change that comes
//! twice (the stream opened again) is dropped by its revision.
//!
//! What the hub cannot mend ends the watch and is the caller's: a failure (the caller backs
//! off and reads again). History compacted away, etcd below the revision (wiped,
//! restored), several changes in one revision (a transaction) or the endpoints
//! rediscovered (SRV) say "read again".

use super::client::Client;
use super::hub::{Item, Membership};
use super::refused::transport;
use super::scope::Scope;
use super::watch::{KeyChange, Notice};
use crate::etcd::error::{Error, TransportKind};
use crate::etcd::types::{Change, Op, WaitOutcome};
use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// Every change under a key after a revision, read from the shared watch stream.
pub struct Follow {
    client: Client,
    key: String,
    scope: Scope,
    /// The revision of the last change handed out (or the one followed after).
    after: u64,
    /// The client's endpoint list generation at the read of `after`: rediscovered
    /// endpoints since may be another cluster's (see [`super::hub`]).
    generation: u64,
    /// Changes read from the stream, not handed out yet.
    queued: VecDeque<Change>,
    /// Its watch on the shared stream, joined on the first receive; dropped (left) when
    /// the watch is over.
    watch: Option<Membership>,
}

impl Follow {
    /// Follows `key` after revision `after`, read while the client's endpoint list had
    /// generation `read_at`.
    pub fn new(client: &Client, key: &str, recursive: bool, after: u64, read_at: u64) -> Follow {
        Follow {
            client: client.clone(),
            key: key.to_string(),
            scope: Scope::new(key, recursive),
            after,
            generation: read_at,
            queued: VecDeque::new(),
            watch: None,
        }
    }

    /// The next change, waiting at most `within` (`None`: as long as it takes; the shared
    /// stream is kept alive). [`WaitOutcome::Resync`]: read again.
    pub fn next(&mut self, within: Option<Duration>) -> Result<WaitOutcome, Error> {
        let deadline = within.map(|within| Instant::now() + within);
        loop {
            if let Some(change) = self.queued.pop_front() {
                self.after = change.index;
                return Ok(WaitOutcome::Changed(change));
            }
            let watch = self.watch.get_or_insert_with(|| {
                self.client
                    .join_watch(&self.scope, &self.key, self.after, self.generation)
            });
            let received = match deadline {
                Some(deadline) => watch
                    .items
                    .recv_timeout(deadline.saturating_duration_since(Instant::now())),
                None => watch
                    .items
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(Item::Notice(notice)) => {
                    if let Some(outcome) = self.take(notice) {
                        self.watch = None;
                        return Ok(outcome);
                    }
                }
                Ok(Item::Ended(error)) => {
                    self.watch = None;
                    return Err(error);
                }
                Ok(Item::Rediscovered) => {
                    log::debug!("{}: endpoints rediscovered; reading again", self.key);
                    self.watch = None;
                    return Ok(WaitOutcome::Resync);
                }
                Err(RecvTimeoutError::Timeout) => return Ok(WaitOutcome::Expired),
                Err(RecvTimeoutError::Disconnected) => {
                    // The hub forgot the watch without a word: only a panic does that.
                    self.watch = None;
                    return Err(transport(
                        TransportKind::Disconnected,
                        "",
                        format!("{}: the shared watch stream stopped", self.key),
                    ));
                }
            }
        }
    }

    /// Takes one message in; `Some` when it ends the stream's use (read again).
    fn take(&mut self, notice: Notice) -> Option<WaitOutcome> {
        match notice {
            Notice::Created { revision, .. } if revision < self.after => {
                log::debug!(
                    "{}: etcd is at revision {revision}, below {}: wiped or restored; reading \
                     again",
                    self.key,
                    self.after
                );
                Some(WaitOutcome::Resync)
            }
            Notice::Created { .. } | Notice::Progress { .. } => None,
            Notice::Canceled {
                compact_revision, ..
            } => {
                log::debug!(
                    "{}: revision {} is compacted (up to {compact_revision}); reading again",
                    self.key,
                    self.after + 1
                );
                Some(WaitOutcome::Resync)
            }
            Notice::Changes {
                revision, changes, ..
            } => {
                let last = self.queued.back().map_or(self.after, |c| c.index);
                let changes: Vec<KeyChange> = changes
                    .into_iter()
                    .filter(|c| c.mod_revision > last && self.scope.contains(c.key.as_bytes()))
                    .collect();
                let shared = changes
                    .windows(2)
                    .any(|pair| pair[0].mod_revision == pair[1].mod_revision);
                if shared {
                    // One transaction: its changes must be taken together, which one read
                    // does.
                    log::debug!(
                        "{}: several changes in one revision; reading again",
                        self.key
                    );
                    return Some(WaitOutcome::Resync);
                }
                self.queued
                    .extend(changes.into_iter().map(|c| neutral(c, revision)));
                None
            }
        }
    }
}

/// A change from a watch in neutral terms; `revision` is the store's when it was sent.
pub(super) fn neutral(change: KeyChange, revision: u64) -> Change {
    Change {
        index: change.mod_revision,
        key: change.key,
        op: change.value.map_or(Op::Delete, Op::Put),
        store_index: revision.max(change.mod_revision),
    }
}
