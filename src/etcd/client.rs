//! The one client the daemon and etcd-util use, whatever API etcd is spoken with.

use super::error::Error;
use super::options::ClientOptions;
use super::types::{Event, Found, Member, Snapshot, Version, WaitOutcome};
use super::v2;
use std::time::{Duration, Instant};

/// A cheap-to-clone handle on etcd; clones share connections and the endpoint in use.
#[derive(Clone)]
pub struct Client {
    backend: Backend,
}

/// The API the client speaks. Each backend runs over the same HTTP layer (`http`).
#[derive(Clone)]
enum Backend {
    V2(v2::Client),
}

impl From<v2::Client> for Client {
    fn from(client: v2::Client) -> Client {
        Client {
            backend: Backend::V2(client),
        }
    }
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        v2::Client::new(options).map(Client::from)
    }

    /// One consistent read of everything at or under `key` (`recursive`), with the index
    /// to watch from.
    pub fn snapshot(&self, key: &str, recursive: bool) -> Result<Snapshot, Error> {
        match &self.backend {
            Backend::V2(c) => c.snapshot(key, recursive),
        }
    }

    /// Waits for a change under `key` after `after_index`, bounded by `within` (`None`:
    /// the client's watch timeout); a quiet period, or an index gone from etcd's history,
    /// gives [`WaitOutcome::Resync`].
    pub fn wait_within(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        match &self.backend {
            Backend::V2(c) => c.wait_within(key, recursive, after_index, within),
        }
    }

    /// The next event under `key` after `after_index`, with what etcd-util prints of it;
    /// `None` when the watch bound passed first. An index gone from etcd's history is an
    /// error ([`Error::is_history_gone`]): read again.
    pub fn next_event(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
    ) -> Result<Option<Event>, Error> {
        match &self.backend {
            Backend::V2(c) => c.next_event(key, recursive, after_index),
        }
    }

    /// What `key` holds: a value, or what is below it.
    pub fn find(&self, key: &str, recursive: bool) -> Result<Found, Error> {
        match &self.backend {
            Backend::V2(c) => c.find(key, recursive),
        }
    }

    /// Writes `value` to `key`; with `ttl`, the key expires after that many seconds.
    pub fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), Error> {
        match &self.backend {
            Backend::V2(c) => {
                let options = v2::SetOptions {
                    ttl,
                    ..v2::SetOptions::default()
                };
                c.set(key, Some(value), &options).map(drop)
            }
        }
    }

    /// Deletes `key`; `recursive`: everything under it too.
    pub fn delete(&self, key: &str, recursive: bool) -> Result<(), Error> {
        match &self.backend {
            Backend::V2(c) => c.delete(key, recursive, false).map(drop),
        }
    }

    /// The endpoint that answered and the versions it reports.
    pub fn version(&self) -> Result<(String, Version), Error> {
        match &self.backend {
            Backend::V2(c) => c.version(),
        }
    }

    /// Whether the member answering is healthy.
    pub fn health(&self) -> Result<(String, bool), Error> {
        match &self.backend {
            Backend::V2(c) => c.health(),
        }
    }

    pub fn members(&self) -> Result<(String, Vec<Member>), Error> {
        match &self.backend {
            Backend::V2(c) => c.members(),
        }
    }

    /// The leader's member id.
    pub fn leader(&self) -> Result<String, Error> {
        match &self.backend {
            Backend::V2(c) => c.leader(),
        }
    }

    /// Closes every connection, pending watches included; later requests fail with
    /// [`Error::Shutdown`].
    pub fn shutdown(&self) {
        match &self.backend {
            Backend::V2(c) => c.shutdown(),
        }
    }

    /// After a request that started at `failed_at` found no endpoint answering
    /// ([`Error::is_outage`]): waits until etcd answers again, which every caller learns at
    /// once. Returns false when `stopped` or shut down first.
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        match &self.backend {
            Backend::V2(c) => c.await_recovery(failed_at, stopped),
        }
    }
}
