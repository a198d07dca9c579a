//! etcd's v2 API over the neutral HTTP layer: the keys API (get/set/delete/watch) with its
//! paths, queries and JSON shapes, its error codes, its events as neutral changes, and the
//! cluster endpoints that `etcd-util --version` shows. Every keys answer carries the store
//! index in `X-Etcd-Index`.

mod auth;
mod error;
mod event;
mod keypath;
mod node;

pub use node::{LeavesAnswer, Member, Node, Response};

use super::error::{Error, ErrorKind, TransportKind};
use super::http::{self, Body, Bound, Http, Idempotent, Method, Request};
use super::options::ClientOptions;
use super::types::{self, Event, Found, Snapshot, Version, WaitOutcome};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A cheap-to-clone handle; clones share connections and the endpoint in use.
#[derive(Clone)]
pub struct Client {
    http: Arc<Http>,
    /// Who requests are sent as, to name in a refusal.
    user: Option<Arc<str>>,
}

/// One `/v2/keys` request.
struct KeysRequest<'a> {
    method: Method,
    key: &'a str,
    query: Vec<(&'static str, String)>,
    form: Vec<(&'static str, String)>,
    /// A watch (a long-poll).
    watch: Option<LongPoll>,
    /// A write that may be sent again, to the next endpoint, after the first one
    /// timed out: it changes nothing when applied twice (a TTL refresh).
    repeatable: bool,
}

/// A long-poll's bound (`None`: the client's watch timeout), and the endpoint list's
/// generation when its index was read: it is not sent to endpoints rediscovered since.
#[derive(Clone, Copy)]
struct LongPoll {
    within: Option<Duration>,
    read_at: u64,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        let user = options
            .credentials
            .as_ref()
            .map(|c| Arc::from(c.user.as_str()));
        let authorizer = options
            .credentials
            .as_ref()
            .map(|c| Arc::new(auth::BasicAuth::new(c)) as Arc<dyn http::Authorizer>);
        Ok(Client {
            http: Arc::new(Http::new(options, authorizer)?),
            user,
        })
    }

    /// The endpoints in the order the next request tries them.
    pub fn endpoints(&self) -> Vec<String> {
        self.http.endpoints()
    }

    /// See [`Http::endpoints_generation`].
    pub fn endpoints_generation(&self) -> u64 {
        self.http.endpoints_generation()
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
        self.keys(KeysRequest::new(Method::Get, key, query))
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
        // A refresh only restarts the TTL: sending it twice is harmless, so a member that
        // does not answer in time is given up for the next one, as for a read.
        self.keys(KeysRequest {
            form,
            repeatable: options.refresh,
            ..KeysRequest::new(Method::Put, key, Vec::new())
        })
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
        self.keys(KeysRequest::new(Method::Delete, key, query))
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
        let poll = LongPoll {
            within,
            read_at: self.endpoints_generation(),
        };
        self.long_poll(key, recursive, wait_index, poll)
    }

    fn long_poll(
        &self,
        key: &str,
        recursive: bool,
        wait_index: Option<u64>,
        poll: LongPoll,
    ) -> Result<Option<Response>, Error> {
        let mut query = vec![("wait", "true".to_string())];
        if recursive {
            query.push(("recursive", "true".to_string()));
        }
        if let Some(index) = wait_index {
            query.push(("waitIndex", index.to_string()));
        }
        let request = KeysRequest {
            watch: Some(poll),
            ..KeysRequest::new(Method::Get, key, query)
        };
        match self.keys_exchange::<Response>(request, wait_index) {
            Ok((mut response, etcd_index)) => {
                response.etcd_index = etcd_index;
                Ok(Some(response))
            }
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
        let request = KeysRequest::new(Method::Get, key, query);
        match self.keys_exchange::<LeavesAnswer>(request, None) {
            Ok((answer, etcd_index)) => Ok(Snapshot {
                data: Some(answer.leaves),
                index: etcd_index,
            }),
            Err(Error::Etcd(e)) if e.kind == ErrorKind::NotFound => Ok(Snapshot {
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

    /// Waits for a change under `key` after `after_index`, bounded by `within` (`None`: the
    /// client's watch timeout); a quiet period gives [`WaitOutcome::Expired`].
    pub fn wait_within(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        let read_at = self.endpoints_generation();
        self.wait_after_read(key, recursive, after_index, read_at, within)
    }

    /// [`Client::wait_within`] after an index read while the endpoint list had generation
    /// `read_at` ([`Client::endpoints_generation`]): once rediscovered since (maybe
    /// another cluster), [`WaitOutcome::Expired`] at once, to read again.
    pub fn wait_after_read(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        read_at: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        let poll = LongPoll { within, read_at };
        match self.long_poll(key, recursive, Some(after_index + 1), poll) {
            Ok(Some(event)) => Ok(WaitOutcome::Changed(event::change(&event))),
            Ok(None) => Ok(WaitOutcome::Expired),
            Err(Error::Etcd(e)) if e.kind == ErrorKind::HistoryGone => {
                log::debug!(
                    "{key}: index {} is out of etcd's event history (error {}); reading again",
                    after_index + 1,
                    e.number
                );
                Ok(WaitOutcome::Resync)
            }
            Err(Error::IndexWentBack { .. }) => Ok(WaitOutcome::Resync),
            Err(e) => Err(e),
        }
    }

    /// The next event under `key` after `after_index`, as etcd-util prints it; `None` when
    /// the watch bound passed first.
    pub fn next_event(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
    ) -> Result<Option<Event>, Error> {
        Ok(self
            .watch(key, recursive, Some(after_index + 1))?
            .map(event::event))
    }

    /// What `key` holds, read in key order: its value, or a directory's leaves
    /// (`recursive`) or children.
    pub fn find(&self, key: &str, recursive: bool) -> Result<Found, Error> {
        let response = self.get_with(
            key,
            &GetOptions {
                recursive,
                sorted: true,
                ..GetOptions::default()
            },
        )?;
        let node = response.node;
        Ok(if !node.dir {
            Found::Value(node.key().to_string(), node.value.unwrap_or_default())
        } else if recursive {
            Found::Leaves(node.leaves())
        } else {
            let child = |n: &Node| types::Child {
                key: n.key().to_string(),
                dir: n.dir,
            };
            Found::Children(node.nodes.iter().map(child).collect())
        })
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

    pub fn members(&self) -> Result<(String, Vec<types::Member>), Error> {
        let (endpoint, members): (String, node::Members) = self.cluster_request("/v2/members")?;
        Ok((
            endpoint,
            members.members.into_iter().map(Into::into).collect(),
        ))
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
        self.http.shutdown();
    }

    /// See [`Http::await_recovery`].
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        self.http.await_recovery(failed_at, stopped)
    }

    fn keys(&self, request: KeysRequest) -> Result<Response, Error> {
        let (mut response, etcd_index) = self.keys_exchange::<Response>(request, None)?;
        response.etcd_index = etcd_index;
        Ok(response)
    }

    /// One `/v2/keys` request with failover, its answer decoded as `T`, with
    /// `X-Etcd-Index`. A watch for `wait_index` is not waited on when etcd's own index
    /// is below it (see [`index_went_back`]).
    fn keys_exchange<T: serde::de::DeserializeOwned>(
        &self,
        request: KeysRequest,
        wait_index: Option<u64>,
    ) -> Result<(T, u64), Error> {
        let key = request.key;
        if !key.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "key {key:?} must start with '/'"
            )));
        }
        let path = format!("/v2/keys{}", keypath::encode(key));
        let writes = matches!(request.method, Method::Put | Method::Delete);
        let once_only = writes && !request.repeatable;
        let http_request = Request {
            method: request.method,
            path: &path,
            query: &request.query,
            body: match request.method {
                Method::Put => Body::Form(&request.form),
                _ => Body::Empty,
            },
            idempotent: if once_only {
                Idempotent::No
            } else {
                Idempotent::Yes
            },
            bound: request
                .watch
                .map_or(Bound::Request, |poll| Bound::Watch(poll.within)),
            tied_to_generation: request.watch.map(|poll| poll.read_at),
        };
        self.http.send(&http_request, |response| {
            let etcd_index = response
                .header("X-Etcd-Index")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let status = response.status();
            if status >= 400 {
                return Err(error::refusal(
                    response,
                    etcd_index,
                    key,
                    self.user.as_deref(),
                ));
            }
            let went_back = |wait: &u64| status < 300 && index_went_back(*wait, etcd_index);
            if let Some(wait_index) = wait_index.filter(went_back) {
                // Do not wait for the event: it may never come. The connection is dropped.
                return Err(Error::IndexWentBack {
                    endpoint: response.endpoint().to_string(),
                    etcd_index,
                    wait_index,
                });
            }
            let endpoint = response.endpoint().to_string();
            let body = response.read_all()?;
            Ok((http::json(&endpoint, status, &body)?, etcd_index))
        })
    }

    fn cluster_request<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(String, T), Error> {
        self.http.send(&Request::get(path), |response| {
            let status = response.status();
            let endpoint = response.endpoint().to_string();
            if status >= 400 {
                return Err(error::refusal(response, 0, "", self.user.as_deref()));
            }
            let body = response.read_all()?;
            Ok((endpoint.clone(), http::json(&endpoint, status, &body)?))
        })
    }
}

impl<'a> KeysRequest<'a> {
    fn new(method: Method, key: &'a str, query: Vec<(&'static str, String)>) -> KeysRequest<'a> {
        KeysRequest {
            method,
            key,
            query,
            form: Vec::new(),
            watch: None,
            repeatable: false,
        }
    }
}

/// Whether a watch's `waitIndex` is ahead of etcd's own index (sent in the headers, before
/// any event): etcd was wiped or restored and that index may never come. etcd sends the
/// store index of the member it runs on, so a member a little behind the one the snapshot
/// came from also shows here; re-reading is harmless then.
fn index_went_back(wait_index: u64, etcd_index: u64) -> bool {
    etcd_index != 0 && etcd_index.saturating_add(1) < wait_index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_for_an_index_etcd_went_below_is_not_waited_on() {
        // Normal: waiting for the index right after etcd's current one.
        assert!(!index_went_back(201, 200));
        assert!(!index_went_back(150, 200));
        // etcd wiped: its index restarted below what the client waits for.
        assert!(index_went_back(201, 3));
        // No header: nothing to compare.
        assert!(!index_went_back(201, 0));
    }
}
