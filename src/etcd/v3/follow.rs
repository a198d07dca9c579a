//! Following a key over ONE long-lived v3 watch stream.
//!
//! A watch stream carries every later change of its range, several per message included,
//! so the subscription keeps it open and reads each change from it instead of opening a
//! stream (a request, a watch on etcd) per change. The stream is read by a thread of its
//! own, which hands each message over a channel: a receive can then end at any deadline
//! (ureq bounds a body as a whole, not each read), and the stream stays open between
//! receives.
//!
//! The stream asks for progress notifications, which prove a quiet stream alive. A stream
//! that breaks (etcd restarted, a member died), whose bound passes (the client's watch
//! timeout: a half-open connection ends there), or that is silent beyond that bound plus
//! the request timeout is opened again from the last revision handed out + 1, on the first
//! endpoint that answers: no change is lost, and one that comes again (a failover inside
//! the reader) is dropped by its revision; a reopened stream that ends before bringing
//! anything, or a refusal, is a failure the caller backs off from. History compacted away, etcd below the revision
//! (wiped, restored), several changes in one revision (a transaction) or the endpoints
//! rediscovered (SRV) say "read again".

use super::client::Client;
use super::refused::transport;
use super::scope::Scope;
use super::watch::{KeyChange, Notice};
use crate::etcd::error::{Error, TransportKind};
use crate::etcd::types::{Change, Op, WaitOutcome};
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// What the reader thread hands over.
enum Item {
    Notice(Notice),
    /// The stream is over (the reader thread ends): why.
    Ended(Error),
}

/// One open stream: its messages, and what it brought.
struct Stream {
    items: Receiver<Item>,
    /// Whether etcd created the watch on it.
    created: bool,
    /// Whether it brought anything after that (a change or a progress notification).
    delivered: bool,
    /// Whether it replaces a stream that ended: one that ends too before delivering
    /// anything is a failure (backed off by the caller), not reopened in a loop.
    resumed: bool,
}

/// Every change under a key after a revision, read from one watch stream.
pub struct Follow {
    client: Client,
    key: String,
    scope: Scope,
    /// The revision of the last change handed out (or the one followed after).
    after: u64,
    /// Changes read from the stream, not handed out yet.
    queued: VecDeque<Change>,
    stream: Option<Stream>,
    /// Whether the next stream replaces one that ended.
    resume: bool,
    /// The client's endpoint list when following began: a stream is not reopened on
    /// endpoints rediscovered since (another cluster, maybe): read again.
    endpoints: u64,
}

impl Follow {
    pub fn new(client: &Client, key: &str, recursive: bool, after: u64) -> Follow {
        Follow {
            client: client.clone(),
            key: key.to_string(),
            scope: Scope::new(key, recursive),
            after,
            queued: VecDeque::new(),
            stream: None,
            resume: false,
            endpoints: client.endpoints_generation(),
        }
    }

    /// The next change, waiting at most `within` (`None`: as long as the stream proves
    /// alive, reopening it as needed). [`WaitOutcome::Resync`]: read again.
    pub fn next(&mut self, within: Option<Duration>) -> Result<WaitOutcome, Error> {
        let deadline = within.map(|within| Instant::now() + within);
        loop {
            if let Some(change) = self.queued.pop_front() {
                self.after = change.index;
                return Ok(WaitOutcome::Changed(change));
            }
            let silence = self.client.silence_bound();
            let wait = deadline.map_or(silence, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(silence)
            });
            let stream = self.stream.get_or_insert_with(|| Stream {
                items: open(&self.client, &self.scope, &self.key, self.after),
                created: false,
                delivered: false,
                resumed: std::mem::take(&mut self.resume),
            });
            match stream.items.recv_timeout(wait) {
                Ok(Item::Notice(notice)) => {
                    if let Some(outcome) = self.take(notice) {
                        self.stream = None;
                        return Ok(outcome);
                    }
                }
                Ok(Item::Ended(Error::Shutdown)) => return Err(Error::Shutdown),
                Ok(Item::Ended(_)) if self.client.endpoints_generation() != self.endpoints => {
                    log::debug!("{}: endpoints rediscovered; reading again", self.key);
                    self.stream = None;
                    return Ok(WaitOutcome::Resync);
                }
                Ok(Item::Ended(error)) => {
                    let worked = stream.created && (stream.delivered || !stream.resumed);
                    self.stream = None;
                    let reopen = is_bound(&error) || (worked && is_cut(&error));
                    if !reopen {
                        return Err(error);
                    }
                    self.resume = true;
                    log::debug!(
                        "{}: the watch stream ended ({error}); watching again after revision {}",
                        self.key,
                        self.after
                    );
                }
                Err(RecvTimeoutError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Ok(WaitOutcome::Expired)
                }
                Err(RecvTimeoutError::Timeout) => {
                    log::debug!(
                        "{}: the watch stream was silent for {silence:?}; watching again after \
                         revision {}",
                        self.key,
                        self.after
                    );
                    self.stream = None;
                    self.resume = true;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The reader thread is gone without a word: only a panic does that.
                    self.stream = None;
                    return Err(transport(
                        TransportKind::Disconnected,
                        "",
                        format!("{}: the watch stream's reader stopped", self.key),
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
            Notice::Created { .. } => {
                if let Some(stream) = &mut self.stream {
                    stream.created = true;
                }
                None
            }
            Notice::Progress { .. } => {
                self.delivered();
                None
            }
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
                self.delivered();
                self.queued
                    .extend(changes.into_iter().map(|c| neutral(c, revision)));
                None
            }
        }
    }

    fn delivered(&mut self) {
        if let Some(stream) = &mut self.stream {
            stream.delivered = true;
        }
    }
}

/// Opens a watch stream of `scope` after `after` on a thread reading it.
fn open(client: &Client, scope: &Scope, key: &str, after: u64) -> Receiver<Item> {
    let (sender, items) = mpsc::channel();
    let client = client.clone();
    let scope = scope.clone();
    let key = key.to_string();
    let spawned = thread::Builder::new().name("v3-watch".to_string()).spawn({
        let sender = sender.clone();
        move || {
            let ended = client.stream_watch(&scope, &key, after, &|notice| {
                sender.send(Item::Notice(notice)).is_ok()
            });
            let _ = sender.send(Item::Ended(ended));
        }
    });
    if let Err(e) = spawned {
        let _ = sender.send(Item::Ended(transport(
            TransportKind::Disconnected,
            "",
            format!("cannot start a thread to read the watch stream: {e}"),
        )));
    }
    items
}

/// Whether the stream ended because its bound passed (not a failure: open it again).
fn is_bound(error: &Error) -> bool {
    matches!(error, Error::Transport(e) if e.kind == TransportKind::WatchExpired)
}

/// Whether the stream was cut (etcd stopped, a member died, a connection broke): open it
/// again. Anything else (a refusal, an answer that is not a watch stream) is a failure.
fn is_cut(error: &Error) -> bool {
    matches!(error, Error::Transport(e) if e.kind == TransportKind::Disconnected)
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
