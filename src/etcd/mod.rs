//! A synchronous etcd v2 client on ureq + serde_json.
//!
//! `Client` speaks the v2 keys API (get/set/delete/watch) plus the cluster endpoints that
//! `etcd-util --version` shows. Requests go to one endpoint at a time with failover (see
//! [`endpoints`]); every answer carries the store index from `X-Etcd-Index`.
//!
//! The daemon only needs [`Client::snapshot`] and [`Client::wait`]: the small interface a
//! future v3 client can also provide.

mod change;
mod endpoints;
mod error;
mod health;
mod keypath;
mod node;
mod shared;
mod transport;

pub mod v3;

pub use change::Change;
pub use endpoints::{normalize_endpoint, Discover};
pub use error::{Error, ErrorCode, EtcdError, TransportError, TransportKind};
pub use node::{LeavesAnswer, Member, Node, Response, Version};
pub use shared::{Freshness, SharedSnapshot, SnapshotCache};

use endpoints::Endpoints;
use health::Health;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transport::{Method, Transport};

/// The endpoint the original reconfig.rb used, kept as the second default.
pub const DEFAULT_ENDPOINTS: [&str; 2] = ["http://127.0.0.1:2379", "http://127.0.0.1:4001"];

pub struct ClientOptions {
    pub endpoints: Vec<String>,
    /// Rebuilds the endpoint list (SRV) when every endpoint failed, and every
    /// `rediscover_every` when set.
    pub discover: Option<Discover>,
    pub rediscover_every: Option<Duration>,
    pub tls: Option<ureq::tls::TlsConfig>,
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    /// Bound on an ordinary request, answer body included, and on a watch's wait for its
    /// response head (etcd sends it at once; an endpoint that does not is skipped).
    pub request_timeout: Duration,
    /// Bound on one watch long-poll; after it the caller re-reads. It guards against a
    /// half-open connection to a member that died without closing it.
    pub watch_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            endpoints: DEFAULT_ENDPOINTS.iter().map(|e| e.to_string()).collect(),
            discover: None,
            rediscover_every: None,
            tls: None,
            credentials: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            watch_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// Options of a GET.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Include every level below a directory.
    pub recursive: bool,
    /// Have etcd list a directory's children in key order (its default order is unspecified).
    pub sorted: bool,
    /// Read through the leader (linearizable) instead of the member's local state.
    pub quorum: bool,
}

/// Options of a PUT. `Default` is a plain set.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    pub ttl: Option<u64>,
    pub dir: bool,
    pub prev_exist: Option<bool>,
    pub prev_value: Option<String>,
    pub prev_index: Option<u64>,
    /// Refresh the TTL without changing the value or notifying watchers.
    pub refresh: bool,
}

/// The data under a key at one store index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Full key → value of every leaf at or under the key; `None` when the key is missing.
    pub data: Option<BTreeMap<String, String>>,
    /// `X-Etcd-Index` of the answer: watching from `index + 1` misses nothing.
    pub index: u64,
}

/// What one watch long-poll ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Something changed: the event etcd reported.
    Changed(Change),
    /// No event in time, or the index fell out of etcd's history: read again.
    Resync,
}

/// A cheap-to-clone handle; clones share connections and the endpoint in use.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    endpoints: Endpoints,
    /// Whether etcd answers, shared by every clone: ends an outage for all callers at once.
    health: Health,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        let mut list = Vec::new();
        for raw in &options.endpoints {
            let default_scheme = if options.tls.is_some() {
                "https"
            } else {
                "http"
            };
            list.push(normalize_endpoint(raw, default_scheme).map_err(Error::InvalidArgument)?);
        }
        if list.is_empty() && options.discover.is_none() {
            return Err(Error::InvalidArgument("no etcd endpoint given".to_string()));
        }
        let endpoints = Endpoints::new(list, options.discover, options.rediscover_every);
        if endpoints.in_order().is_empty() {
            endpoints.rediscover();
        }
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(
                    &options.tls,
                    options.credentials,
                    options.connect_timeout,
                    options.request_timeout,
                    options.watch_timeout,
                ),
                endpoints,
                health: Health::default(),
            }),
        })
    }

    /// The endpoints in the order the next request tries them.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints.in_order()
    }

    /// GET a key; `recursive` includes every level below a directory.
    pub fn get(&self, key: &str, recursive: bool) -> Result<Response, Error> {
        self.get_with(
            key,
            &GetOptions {
                recursive,
                ..GetOptions::default()
            },
        )
    }

    pub fn get_with(&self, key: &str, options: &GetOptions) -> Result<Response, Error> {
        let mut query = Vec::new();
        if options.recursive {
            query.push(("recursive", "true".to_string()));
        }
        if options.sorted {
            query.push(("sorted", "true".to_string()));
        }
        if options.quorum {
            query.push(("quorum", "true".to_string()));
        }
        self.keys_request(Method::Get, key, query, Vec::new(), None)
    }

    pub fn set(
        &self,
        key: &str,
        value: Option<&str>,
        options: &SetOptions,
    ) -> Result<Response, Error> {
        let mut form = Vec::new();
        if let Some(value) = value {
            form.push(("value", value.to_string()));
        }
        if let Some(ttl) = options.ttl {
            form.push(("ttl", ttl.to_string()));
        }
        if options.dir {
            form.push(("dir", "true".to_string()));
        }
        if let Some(exist) = options.prev_exist {
            form.push(("prevExist", exist.to_string()));
        }
        if let Some(prev) = &options.prev_value {
            form.push(("prevValue", prev.clone()));
        }
        if let Some(index) = options.prev_index {
            form.push(("prevIndex", index.to_string()));
        }
        if options.refresh {
            form.push(("refresh", "true".to_string()));
        }
        self.keys_request(Method::Put, key, Vec::new(), form, None)
    }

    /// DELETE a key; `recursive` deletes a directory and everything under it, `dir` an
    /// empty directory.
    pub fn delete(&self, key: &str, recursive: bool, dir: bool) -> Result<Response, Error> {
        let mut query = Vec::new();
        if recursive {
            query.push(("recursive", "true".to_string()));
        }
        if dir {
            query.push(("dir", "true".to_string()));
        }
        self.keys_request(Method::Delete, key, query, Vec::new(), None)
    }

    /// Long-polls for the first change at or after `wait_index` (the next one when `None`).
    /// `Ok(None)` when the watch bound passed with no event, or when SRV rediscovery changed
    /// the endpoints (the index may be another cluster's): read again, then watch.
    pub fn watch(
        &self,
        key: &str,
        recursive: bool,
        wait_index: Option<u64>,
    ) -> Result<Option<Response>, Error> {
        self.watch_within(key, recursive, wait_index, None)
    }

    /// [`Client::watch`] with its own bound instead of the client's watch timeout.
    pub fn watch_within(
        &self,
        key: &str,
        recursive: bool,
        wait_index: Option<u64>,
        within: Option<Duration>,
    ) -> Result<Option<Response>, Error> {
        let mut query = vec![("wait", "true".to_string())];
        if recursive {
            query.push(("recursive", "true".to_string()));
        }
        if let Some(index) = wait_index {
            query.push(("waitIndex", index.to_string()));
        }
        match self.keys_request(Method::Watch, key, query, Vec::new(), within) {
            Ok(response) => Ok(Some(response)),
            Err(Error::Transport(e)) if e.kind == TransportKind::WatchExpired => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One read of everything under `key`, with the index to watch from.
    pub fn snapshot(&self, key: &str, recursive: bool) -> Result<Snapshot, Error> {
        let mut query = vec![("sorted", "true".to_string())];
        if recursive {
            query.push(("recursive", "true".to_string()));
        }
        match self.keys_exchange::<LeavesAnswer>(Method::Get, key, query, Vec::new(), None) {
            Ok((answer, etcd_index)) => Ok(Snapshot {
                data: Some(answer.leaves),
                index: etcd_index,
            }),
            Err(Error::Etcd(e)) if e.code == ErrorCode::KeyNotFound => Ok(Snapshot {
                data: None,
                index: e.index,
            }),
            Err(e) => Err(e),
        }
    }

    /// Waits for a change under `key` after `after_index`.
    pub fn wait(&self, key: &str, recursive: bool, after_index: u64) -> Result<WaitOutcome, Error> {
        self.wait_within(key, recursive, after_index, None)
    }

    /// [`Client::wait`] bounded by `within` (`None`: the client's watch timeout); a quiet
    /// period gives [`WaitOutcome::Resync`].
    pub fn wait_within(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        match self.watch_within(key, recursive, Some(after_index + 1), within) {
            Ok(Some(event)) => Ok(WaitOutcome::Changed(Change::from_event(event))),
            Ok(None) => Ok(WaitOutcome::Resync),
            Err(e) if e.is_index_cleared() => {
                log::debug!(
                    "{key}: index {} is out of etcd's event history (error 401); reading again",
                    after_index + 1
                );
                Ok(WaitOutcome::Resync)
            }
            Err(Error::IndexWentBack { .. }) => Ok(WaitOutcome::Resync),
            Err(e) => Err(e),
        }
    }

    pub fn version(&self) -> Result<(String, Version), Error> {
        self.cluster_request("/version")
    }

    /// `GET /health`: whether the member answering is healthy.
    pub fn health(&self) -> Result<(String, bool), Error> {
        #[derive(serde::Deserialize)]
        struct Health {
            health: String,
        }
        let (endpoint, health): (String, Health) = self.cluster_request("/health")?;
        Ok((endpoint, health.health == "true"))
    }

    pub fn members(&self) -> Result<(String, Vec<Member>), Error> {
        let (endpoint, members): (String, node::Members) = self.cluster_request("/v2/members")?;
        Ok((endpoint, members.members))
    }

    /// The leader's member id, from `/v2/stats/leader` (answered by the leader only) or,
    /// failing that, from `/v2/stats/self`.
    pub fn leader(&self) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct SelfStats {
            #[serde(rename = "leaderInfo")]
            leader_info: node::LeaderStats,
        }
        match self.cluster_request::<node::LeaderStats>("/v2/stats/leader") {
            Ok((_, stats)) if !stats.leader.is_empty() => Ok(stats.leader),
            _ => {
                let (_, stats): (String, SelfStats) = self.cluster_request("/v2/stats/self")?;
                Ok(stats.leader_info.leader)
            }
        }
    }

    /// Closes every connection, pending watches included; later requests fail with
    /// [`Error::Shutdown`].
    pub fn shutdown(&self) {
        self.inner.transport.shutdown();
        self.inner.health.shut_down();
    }

    /// After a request that started at `failed_at` found no endpoint answering
    /// ([`Error::is_outage`]): waits until etcd answers again, so that every caller learns
    /// it at once instead of after its own backoff. One caller at a time probes (`GET
    /// /version`) every 250 ms. Returns false when `stopped` or shut down first.
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        self.inner
            .health
            .await_recovery(failed_at, || self.version().is_ok(), stopped)
    }

    fn keys_request(
        &self,
        method: Method,
        key: &str,
        query: Vec<(&'static str, String)>,
        form: Vec<(&'static str, String)>,
        timeout: Option<Duration>,
    ) -> Result<Response, Error> {
        let (mut response, etcd_index) =
            self.keys_exchange::<Response>(method, key, query, form, timeout)?;
        response.etcd_index = etcd_index;
        Ok(response)
    }

    /// One `/v2/keys` request with failover, its answer decoded as `T`, with `X-Etcd-Index`.
    fn keys_exchange<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        key: &str,
        query: Vec<(&'static str, String)>,
        form: Vec<(&'static str, String)>,
        timeout: Option<Duration>,
    ) -> Result<(T, u64), Error> {
        if !key.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "key {key:?} must start with '/'"
            )));
        }
        let path = format!("/v2/keys{}", keypath::encode(key));
        self.with_failover(method, |endpoint| {
            let answer = self
                .inner
                .transport
                .send(endpoint, method, &path, &query, &form, timeout)
                .map_err(|e| match e {
                    Error::Etcd(etcd) => Error::Etcd(EtcdError {
                        key: key.to_string(),
                        ..etcd
                    }),
                    other => other,
                })?;
            Ok((answer.json(endpoint)?, answer.etcd_index))
        })
    }

    fn cluster_request<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(String, T), Error> {
        self.with_failover(Method::Get, |endpoint| {
            let answer = self
                .inner
                .transport
                .send(endpoint, Method::Get, path, &[], &[], None)?;
            Ok((endpoint.to_string(), answer.json(endpoint)?))
        })
    }

    /// Tries each endpoint in turn until one answers. Moves on only when retrying cannot
    /// apply a write twice: connection failures always, other failures on reads only.
    ///
    /// A watch is not sent once the endpoint list has been rediscovered during the call:
    /// its index may belong to the cluster the list pointed to before, so the caller gets
    /// a timeout and reads again from the new endpoints.
    fn with_failover<T>(
        &self,
        method: Method,
        mut attempt: impl FnMut(&str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let generation = self.inner.endpoints.generation();
        let mut failures = Vec::new();
        let mut rediscovered = false;
        loop {
            for endpoint in self.inner.endpoints.in_order() {
                if method == Method::Watch && self.inner.endpoints.generation() != generation {
                    return Err(Error::Transport(TransportError {
                        kind: TransportKind::WatchExpired,
                        endpoint,
                        detail: "endpoints rediscovered; reading again before watching".into(),
                    }));
                }
                match attempt(&endpoint) {
                    Ok(value) => {
                        self.inner.endpoints.mark_working(&endpoint);
                        self.inner.health.succeeded();
                        return Ok(value);
                    }
                    Err(answered @ Error::Etcd(_)) => {
                        self.inner.health.succeeded();
                        return Err(answered);
                    }
                    Err(Error::Transport(e)) if transport::may_try_next(method, e.kind) => {
                        log::debug!("{e}; trying the next endpoint");
                        failures.push(e);
                    }
                    Err(other) => return Err(other),
                }
            }
            if rediscovered || !self.inner.endpoints.can_rediscover() {
                break;
            }
            rediscovered = self.inner.endpoints.rediscover();
            if !rediscovered {
                break;
            }
        }
        if failures.len() == 1 {
            return Err(Error::Transport(failures.remove(0)));
        }
        Err(Error::Unavailable(failures))
    }
}
