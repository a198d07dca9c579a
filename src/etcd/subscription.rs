//! A subscription: every change to a key after an index, received one at a time.
//!
//! The caller asks once for "changes to this key after index N" and receives them in order
//! until it drops the subscription, each receive bounded by a deadline; the subscription
//! keeps the index it has reached and resumes from there (v2: the long-poll for the next
//! index; v3: a watch stream from the next revision), so no change is skipped between two
//! receives. Outcomes are neutral: a change, "read again", an error, or "stopped".
//!
//! On v3 the watch stays open from one receive to the next, on the one stream the client's
//! subscriptions share (see [`v3::Follow`]): a change costs no request, and a quiet stream
//! kept alive by etcd's progress notifications needs no read again when the watch timeout
//! passes.

use super::client::{Client, Speaking};
use super::error::Error;
use super::types::{Change, WaitOutcome};
use super::v3;
use std::time::{Duration, Instant};

/// Changes to one key (and, recursive, below it) after an index.
pub struct Subscription {
    client: Client,
    key: String,
    recursive: bool,
    /// The index of the last change received (or the one subscribed after).
    after: u64,
    /// The generation of the client's endpoint list when it was made, just after the read
    /// of `after` (`None` until the first receive when no API was chosen yet): an index
    /// is only worth something on the cluster it was read from, so after a rediscovery
    /// the subscription says "read again" instead of watching other endpoints.
    read_at: Option<u64>,
    /// On v3: its watch on the client's shared stream (joined on the first receive).
    stream: Option<v3::Follow>,
}

/// What one receive gave.
#[derive(Debug)]
pub enum Received {
    /// The next change; the subscription moves past it.
    Change(Change),
    /// Nothing changed before the deadline.
    Quiet,
    /// The changes after the subscription's index cannot be told (gone from etcd's history,
    /// etcd restored below it, several changes in one v3 revision, the endpoints
    /// rediscovered, or the client's watch timeout passed): read again, then subscribe
    /// after the new read's index.
    ReadAgain,
    /// The client was shut down (the generation ended).
    Stopped,
    /// etcd could not be asked or refused ([`Error::is_outage`]: no endpoint answered).
    Failed(Error),
}

impl Subscription {
    pub(super) fn new(client: Client, key: &str, recursive: bool, after: u64) -> Subscription {
        let read_at = client.endpoints_generation();
        Subscription {
            client,
            key: key.to_string(),
            recursive,
            after,
            read_at,
            stream: None,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn recursive(&self) -> bool {
        self.recursive
    }

    /// The index of the last change received, or the one subscribed after.
    pub fn after(&self) -> u64 {
        self.after
    }

    /// The next change, waiting at most the client's watch timeout (v2), after which the
    /// caller reads again (as after a quiet of that length etcd's history may have moved
    /// on); on v3, as long as the watch stream proves alive.
    pub fn recv(&mut self) -> Received {
        match self.wait(None) {
            Received::Quiet => Received::ReadAgain,
            other => other,
        }
    }

    /// The next change, waiting at most `within`.
    pub fn recv_timeout(&mut self, within: Duration) -> Received {
        self.recv_deadline(Instant::now() + within)
    }

    /// The next change, waiting until `deadline` at most.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Received {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Received::Quiet;
        }
        match self.wait(Some(left)) {
            // The bound ended the wait early: the endpoints were rediscovered.
            Received::Quiet if Instant::now() < deadline => Received::ReadAgain,
            other => other,
        }
    }

    fn wait(&mut self, within: Option<Duration>) -> Received {
        let outcome = self.client.speaking().and_then(|speaking| {
            let read_at = *self
                .read_at
                .get_or_insert_with(|| speaking.endpoints_generation());
            match speaking {
                Speaking::V3(client) => self
                    .stream
                    .get_or_insert_with(|| {
                        v3::Follow::new(client, &self.key, self.recursive, self.after, read_at)
                    })
                    .next(within),
                Speaking::V2(client) => {
                    client.wait_after_read(&self.key, self.recursive, self.after, read_at, within)
                }
            }
        });
        match outcome {
            Ok(WaitOutcome::Changed(change)) => {
                self.after = self.after.max(change.index);
                Received::Change(change)
            }
            Ok(WaitOutcome::Expired) => Received::Quiet,
            Ok(WaitOutcome::Resync) => Received::ReadAgain,
            Err(Error::Shutdown) => Received::Stopped,
            Err(e) => Received::Failed(e),
        }
    }
}
