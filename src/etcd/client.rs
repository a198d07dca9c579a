//! The one client the daemon and etcd-util use, whatever API etcd is spoken with.

use super::error::Error;
use super::migrate::Migrator;
use super::options::ClientOptions;
use super::subscription::Subscription;
use super::types::{Event, Found, Member, Snapshot, Version, WaitOutcome};
use super::v2;
use super::v3;
use std::sync::{Arc, OnceLock};
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
    V3(v3::Client),
    Auto(Arc<Auto>),
}

/// Both clients of `--api auto`, and the API chosen once etcd answered.
struct Auto {
    v2: v2::Client,
    v3: v3::Client,
    chosen: OnceLock<Api>,
    announce: bool,
}

/// The client a request goes to.
pub(super) enum Speaking<'a> {
    V2(&'a v2::Client),
    V3(&'a v3::Client),
}

impl Speaking<'_> {
    /// See [`super::http::Http::endpoints_generation`].
    pub(super) fn endpoints_generation(&self) -> u64 {
        match self {
            Speaking::V2(c) => c.endpoints_generation(),
            Speaking::V3(c) => c.endpoints_generation(),
        }
    }
}

impl Auto {
    fn speaking(&self, api: Api) -> Speaking<'_> {
        match api {
            Api::V2 => Speaking::V2(&self.v2),
            _ => Speaking::V3(&self.v3),
        }
    }
}

/// Which API to speak, as `--api` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V2,
    V3,
    /// Ask the cluster (see [`choose`]).
    Auto,
}

impl From<v2::Client> for Client {
    fn from(client: v2::Client) -> Client {
        Client {
            backend: Backend::V2(client),
        }
    }
}

impl From<v3::Client> for Client {
    fn from(client: v3::Client) -> Client {
        Client {
            backend: Backend::V3(client),
        }
    }
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        v2::Client::new(options).map(Client::from)
    }

    /// A client speaking `api`, built from `options()`. With [`Api::Auto`] the API is
    /// chosen on the first request (etcd may be down at start-up): see [`choose`]; the
    /// choice is logged at info level when `announce` (the daemon), else at debug level.
    pub fn connect(
        api: Api,
        announce: bool,
        mut options: impl FnMut() -> ClientOptions,
    ) -> Result<Client, Error> {
        let backend = match api {
            Api::V2 => Backend::V2(v2::Client::new(options())?),
            Api::V3 => Backend::V3(v3::Client::new(options())?),
            Api::Auto => Backend::Auto(Arc::new(Auto {
                v2: v2::Client::new(options())?,
                v3: v3::Client::new(options())?,
                chosen: OnceLock::new(),
                announce,
            })),
        };
        Ok(Client { backend })
    }

    /// The backend to send a request to; for `auto`, chosen by asking etcd the first time.
    pub(super) fn speaking(&self) -> Result<Speaking<'_>, Error> {
        Ok(match &self.backend {
            Backend::V2(c) => Speaking::V2(c),
            Backend::V3(c) => Speaking::V3(c),
            Backend::Auto(auto) => {
                let api = match auto.chosen.get() {
                    Some(api) => *api,
                    None => {
                        let api = choose(&auto.v3, auto.announce)?;
                        *auto.chosen.get_or_init(|| api)
                    }
                };
                auto.speaking(api)
            }
        })
    }

    /// The backend, when known without asking etcd (`auto` before its choice: `None`).
    fn spoken(&self) -> Option<Speaking<'_>> {
        match &self.backend {
            Backend::V2(c) => Some(Speaking::V2(c)),
            Backend::V3(c) => Some(Speaking::V3(c)),
            Backend::Auto(auto) => auto.chosen.get().map(|api| auto.speaking(*api)),
        }
    }

    /// The generation of the endpoint list of the API spoken (see
    /// [`super::http::Http::endpoints_generation`]); `None` while `auto` has not chosen one
    /// (this does not ask etcd).
    pub(super) fn endpoints_generation(&self) -> Option<u64> {
        self.spoken()
            .map(|speaking| speaking.endpoints_generation())
    }

    /// One consistent read of everything at or under `key` (`recursive`), with the index
    /// to watch from.
    pub fn snapshot(&self, key: &str, recursive: bool) -> Result<Snapshot, Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.snapshot(key, recursive),
            Speaking::V3(c) => c.snapshot(key, recursive),
        }
    }

    /// [`Client::snapshot`] at revision `at` (`None`: the current one), so that several keys
    /// read at the first read's revision are one consistent view. `None` on v2, which
    /// cannot read the past.
    pub fn snapshot_at(
        &self,
        key: &str,
        recursive: bool,
        at: Option<u64>,
    ) -> Result<Option<Snapshot>, Error> {
        match self.speaking()? {
            Speaking::V2(_) => Ok(None),
            Speaking::V3(c) => match at {
                Some(revision) => c.snapshot_at(key, recursive, revision).map(Some),
                None => c.snapshot(key, recursive).map(Some),
            },
        }
    }

    /// Waits for a change under `key` after `after_index`, bounded by `within` (`None`:
    /// the client's watch timeout). The daemon receives changes through [`Client::subscribe`].
    pub fn wait_within(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.wait_within(key, recursive, after_index, within),
            Speaking::V3(c) => c.wait_within(key, recursive, after_index, within),
        }
    }

    /// Every change under `key` (`recursive`: and below it) after `after_index`, in order,
    /// until the subscription is dropped: see [`Subscription`].
    pub fn subscribe(&self, key: &str, recursive: bool, after_index: u64) -> Subscription {
        Subscription::new(self.clone(), key, recursive, after_index)
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
        match self.speaking()? {
            Speaking::V2(c) => c.next_event(key, recursive, after_index),
            Speaking::V3(c) => c.next_event(key, recursive, after_index),
        }
    }

    /// What `key` holds: a value, or what is below it.
    pub fn find(&self, key: &str, recursive: bool) -> Result<Found, Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.find(key, recursive),
            Speaking::V3(c) => c.find(key, recursive),
        }
    }

    /// Writes `value` to `key`; with `ttl`, the key expires after that many seconds.
    pub fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), Error> {
        match self.speaking()? {
            Speaking::V2(c) => {
                let options = v2::SetOptions {
                    ttl,
                    ..v2::SetOptions::default()
                };
                c.set(key, Some(value), &options).map(drop)
            }
            Speaking::V3(c) => c.put(key, value, ttl),
        }
    }

    /// Deletes `key`; `recursive`: everything under it too.
    pub fn delete(&self, key: &str, recursive: bool) -> Result<(), Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.delete(key, recursive, false).map(drop),
            Speaking::V3(c) => c.delete(key, recursive),
        }
    }

    /// The endpoint that answered and the versions it reports.
    pub fn version(&self) -> Result<(String, Version), Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.version(),
            Speaking::V3(c) => c.version(),
        }
    }

    /// Whether the member answering is healthy.
    pub fn health(&self) -> Result<(String, bool), Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.health(),
            Speaking::V3(c) => c.health(),
        }
    }

    pub fn members(&self) -> Result<(String, Vec<Member>), Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.members(),
            Speaking::V3(c) => c.members(),
        }
    }

    /// The leader's member id.
    pub fn leader(&self) -> Result<String, Error> {
        match self.speaking()? {
            Speaking::V2(c) => c.leader(),
            Speaking::V3(c) => c.leader(),
        }
    }

    /// Both APIs of the cluster at once, for copying v2 data into v3; only a client built
    /// with [`Api::Auto`] speaks both.
    pub fn migrator(&self) -> Result<Migrator, Error> {
        match &self.backend {
            Backend::Auto(auto) => Ok(Migrator {
                v2: auto.v2.clone(),
                v3: auto.v3.clone(),
            }),
            _ => Err(Error::InvalidArgument(
                "migrating needs a client of both APIs (--api auto)".to_string(),
            )),
        }
    }

    /// Closes every connection, pending watches included; later requests fail with
    /// [`Error::Shutdown`].
    pub fn shutdown(&self) {
        match &self.backend {
            Backend::V2(c) => c.shutdown(),
            Backend::V3(c) => c.shutdown(),
            Backend::Auto(auto) => {
                auto.v2.shutdown();
                auto.v3.shutdown();
            }
        }
    }

    /// After a request that started at `failed_at` found no endpoint answering
    /// ([`Error::is_outage`]): waits until etcd answers again, which every caller learns at
    /// once. Returns false when `stopped` or shut down first.
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        match &self.backend {
            Backend::V2(c) => c.await_recovery(failed_at, stopped),
            // Both probe `GET /version`, which every API serves.
            Backend::V3(c) => c.await_recovery(failed_at, stopped),
            Backend::Auto(auto) => auto.v3.await_recovery(failed_at, stopped),
        }
    }
}

/// `--api auto`: v3 when the cluster does not serve v2, or when v3 holds keys; otherwise
/// (v2 served, v3 empty or not answering) v2, as before v3 support, so a v2 user whose data
/// is not migrated yet keeps it. Logged once with the reason.
fn choose(v3: &v3::Client, announce: bool) -> Result<Api, Error> {
    let (api, why) = if !v3.serves_v2()? {
        (Api::V3, "the cluster does not serve v2")
    } else {
        match v3.has_keys() {
            Ok(true) => (Api::V3, "v3 holds keys"),
            Ok(false) => (Api::V2, "the cluster serves v2 and v3 holds no keys"),
            Err(e) if e.is_outage() => return Err(e),
            // v3 refusing the credentials, or not answering as etcd 3 does.
            Err(_) => (Api::V2, "the cluster serves v2 and v3 did not answer"),
        }
    };
    let name = if api == Api::V2 { "v2" } else { "v3" };
    let level = if announce {
        log::Level::Info
    } else {
        log::Level::Debug
    };
    log::log!(level, "speaking etcd's {name} API (--api auto: {why})");
    Ok(api)
}
