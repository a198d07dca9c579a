//! etcd's v3 API over the neutral HTTP layer: the requests `proto` describes, sent as JSON
//! to the gateway, the answers and refusals turned into neutral types and errors. Every
//! call is a POST; reads are marked idempotent (they may go to the next endpoint), writes
//! are not.

use super::auth::{Token, TokenAuth};
use super::error::{GatewayError, Refusal};
use super::follow::neutral;
use super::hub::{Hub, Membership};
use super::proto::{
    AuthenticateRequest, AuthenticateResponse, DeleteRangeRequest, LeaseGrantRequest,
    LeaseGrantResponse, LeaseIdRequest, LeaseKeepAliveMessage, MemberListResponse, PutRequest,
    RangeRequest, RangeResponse, RequestOp, StatusResponse, TxnRequest, TxnResponse,
    WatchCreateRequest,
};
use super::refused::{self, bad_answer, not_found, stream_failure, transport, Asked};
use super::scope::{normalize, Scope};
use super::snapshot::{SnapshotRead, PAGE_SIZE};
use super::stream::{Message, MessageReader};
use super::watch::{open_body, watch_after, KeyChange, Notice};
use crate::etcd::error::{Error, ErrorKind, EtcdError, TransportKind};
use crate::etcd::http::{self, Authorizer, Body, Bound, Http, Idempotent, Method, Request};
use crate::etcd::options::ClientOptions;
use crate::etcd::types::{Child, Event, Found, Member, Op, Snapshot, Version, WaitOutcome};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a snapshot starts over when the revision its pages are pinned to is compacted
/// away between two pages.
const SNAPSHOT_ATTEMPTS: usize = 3;

/// A cheap-to-clone handle; clones share connections, the endpoint in use and the token.
#[derive(Clone)]
pub struct Client {
    http: Arc<Http>,
    auth: Option<Arc<TokenAuth>>,
    /// Set by [`Client::shutdown`], which cuts open watch streams: their end is then the
    /// shutdown, not a failure of etcd.
    shut_down: Arc<AtomicBool>,
    /// The one watch stream every followed key shares.
    hub: Arc<Hub>,
}

/// How one watch request ended.
enum WatchEnd {
    /// The first message with changes in the scope.
    Changes {
        changes: Vec<KeyChange>,
        revision: u64,
    },
    /// The bound passed with no change.
    Expired,
    /// The revision watched from is compacted away, or etcd went back below it.
    HistoryGone,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        let auth = options
            .credentials
            .clone()
            .map(|c| Arc::new(TokenAuth::new(c)));
        let authorizer = auth.clone().map(|a| a as Arc<dyn Authorizer>);
        Ok(Client {
            http: Arc::new(Http::new(options, authorizer)?),
            auth,
            shut_down: Arc::new(AtomicBool::new(false)),
            hub: Arc::default(),
        })
    }

    /// One consistent read of `key` and (`recursive`) every key under `key/`, paged, every
    /// page at the first page's revision.
    pub fn snapshot(&self, key: &str, recursive: bool) -> Result<Snapshot, Error> {
        let scope = Scope::new(key, recursive);
        let mut attempt = 1;
        loop {
            match self.read_scope(&scope, key) {
                Err(e) if e.is_history_gone() && attempt < SNAPSHOT_ATTEMPTS => {
                    log::debug!("{key}: compacted between two pages; reading again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// [`Client::snapshot`] at `revision`, to read several keys at one revision. Fails
    /// when etcd compacted that revision away.
    pub fn snapshot_at(
        &self,
        key: &str,
        recursive: bool,
        revision: u64,
    ) -> Result<Snapshot, Error> {
        let scope = Scope::new(key, recursive);
        self.read(SnapshotRead::at(scope, PAGE_SIZE, revision), key)
    }

    fn read_scope(&self, scope: &Scope, key: &str) -> Result<Snapshot, Error> {
        self.read(SnapshotRead::new(scope.clone(), PAGE_SIZE), key)
    }

    fn read(&self, mut read: SnapshotRead, key: &str) -> Result<Snapshot, Error> {
        let mut endpoint = String::new();
        while let Some(request) = read.next_request() {
            let (answered, page) =
                self.call::<RangeResponse>("/v3/kv/range", &request, Idempotent::Yes, key)?;
            endpoint = answered;
            read.take(page)
                .map_err(|e| bad_answer(&endpoint, e.to_string()))?;
        }
        let data = read
            .finish()
            .ok_or_else(|| bad_answer(&endpoint, "the paged read did not complete"))?;
        Ok(Snapshot {
            data: (!data.leaves.is_empty()).then_some(data.leaves),
            index: data.revision,
        })
    }

    /// Waits for a change under `key` after revision `after_index`, bounded by `within` (`None`: the client's watch timeout). Several
    /// changes in one message (one transaction, or history caught up) give
    /// [`WaitOutcome::Resync`]: they share a revision, so watching on from one of them
    /// would miss the others, and one read takes them all.
    pub fn wait_within(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
        within: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        let scope = Scope::new(key, recursive);
        match self.watch(&scope, key, after_index, within, false)? {
            WatchEnd::Changes { changes, revision } => match first_alone(changes) {
                Some(change) => Ok(WaitOutcome::Changed(neutral(change, revision))),
                None => {
                    log::debug!("{key}: several changes in one revision; reading again");
                    Ok(WaitOutcome::Resync)
                }
            },
            WatchEnd::Expired => Ok(WaitOutcome::Expired),
            WatchEnd::HistoryGone => Ok(WaitOutcome::Resync),
        }
    }

    /// The next change under `key` after `after_index`, as etcd-util prints it (v2's
    /// action names: `set`, `delete`); `None` when the watch bound passed first. A
    /// revision gone from etcd's history is an error ([`Error::is_history_gone`]).
    pub fn next_event(
        &self,
        key: &str,
        recursive: bool,
        after_index: u64,
    ) -> Result<Option<Event>, Error> {
        let scope = Scope::new(key, recursive);
        match self.watch(&scope, key, after_index, None, true)? {
            WatchEnd::Changes { changes, revision } => {
                Ok(changes.into_iter().next().map(|change| {
                    let prev_value = change.prev_value.clone();
                    let change = neutral(change, revision);
                    Event {
                        action: match change.op {
                            Op::Delete => "delete".to_string(),
                            _ => "set".to_string(),
                        },
                        change,
                        dir: false,
                        prev_value,
                    }
                }))
            }
            WatchEnd::Expired => Ok(None),
            WatchEnd::HistoryGone => Err(Error::Etcd(EtcdError {
                kind: ErrorKind::HistoryGone,
                number: 0,
                message: "required revision has been compacted".to_string(),
                cause: String::new(),
                index: after_index,
                endpoint: String::new(),
                key: key.to_string(),
            })),
        }
    }

    /// What `key` holds: its value; with `recursive`, every key under it; without, the
    /// names of the keys one level below (a "directory" is any prefix with keys under it).
    pub fn find(&self, key: &str, recursive: bool) -> Result<Found, Error> {
        let key = normalize(key);
        let leaves = self.snapshot(&key, true)?.data.unwrap_or_default();
        let own = leaves.get(&key).cloned();
        let below = leaves.len() - usize::from(own.is_some());
        match own {
            _ if leaves.is_empty() => Err(not_found(&key)),
            Some(value) if below == 0 || !recursive => Ok(Found::Value(key, value)),
            _ if recursive => Ok(Found::Leaves(leaves)),
            _ => Ok(Found::Children(children(&key, &leaves))),
        }
    }

    /// Writes `value` to `key`; with `ttl`, under a new lease of that many seconds, so the
    /// key is deleted (a DELETE event) when the lease expires.
    pub fn put(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<(), Error> {
        let lease = match ttl {
            Some(ttl) => self.grant_lease(ttl)?,
            None => 0,
        };
        self.put_leased(key, value, lease)
    }

    /// Deletes `key`; with `recursive`, every key under `key/` too (not `keyX`), in one
    /// transaction. Nothing to delete is [`ErrorKind::NotFound`], and only keys under
    /// `key/` without `recursive` is [`ErrorKind::IsDirectory`], as on v2.
    pub fn delete(&self, key: &str, recursive: bool) -> Result<(), Error> {
        let key = normalize(key);
        let scope = Scope::new(&key, recursive);
        let mut deletes = vec![RequestOp::DeleteRange(DeleteRangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })];
        if recursive {
            let under = format!("{}/", key.trim_end_matches('/'));
            deletes.push(RequestOp::DeleteRange(DeleteRangeRequest {
                key: under.into_bytes(),
                range_end: scope.end(),
                prev_kv: false,
            }));
        }
        let txn = TxnRequest {
            success: deletes,
            ..Default::default()
        };
        let (_, answer) = self.call::<TxnResponse>("/v3/kv/txn", &txn, Idempotent::No, &key)?;
        let deleted: u64 = answer
            .responses
            .iter()
            .filter_map(|op| op.response_delete_range.as_ref())
            .map(|d| d.deleted)
            .sum();
        if deleted > 0 {
            return Ok(());
        }
        if !recursive && self.count(&Scope::new(&key, true))? > 0 {
            // Only keys under it: v2 would call it a directory and ask for -r.
            return Err(Error::Etcd(EtcdError {
                kind: ErrorKind::IsDirectory,
                number: 0,
                message: "keys under it, no value at it".to_string(),
                cause: key.clone(),
                index: answer.header.revision,
                endpoint: String::new(),
                key,
            }));
        }
        Err(not_found(&key))
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.count(&Scope::new(&normalize(key), false))? > 0)
    }

    /// How many keys `scope` holds.
    fn count(&self, scope: &Scope) -> Result<u64, Error> {
        let request = RangeRequest {
            key: scope.start(),
            range_end: scope.end(),
            count_only: true,
            ..Default::default()
        };
        let (_, answer) =
            self.call::<RangeResponse>("/v3/kv/range", &request, Idempotent::Yes, "")?;
        Ok(answer.count)
    }

    /// `GET /version`, which every API serves.
    pub fn version(&self) -> Result<(String, Version), Error> {
        self.get_json("/version")
    }

    /// `GET /health`: whether the member answering is healthy.
    pub fn health(&self) -> Result<(String, bool), Error> {
        #[derive(serde::Deserialize)]
        struct Health {
            health: String,
        }
        let (endpoint, health): (String, Health) = self.get_json("/health")?;
        Ok((endpoint, health.health == "true"))
    }

    /// The members, their ids in hex as v2 shows them.
    pub fn members(&self) -> Result<(String, Vec<Member>), Error> {
        let (endpoint, list) = self.call::<MemberListResponse>(
            "/v3/cluster/member/list",
            &serde_json::json!({}),
            Idempotent::Yes,
            "",
        )?;
        let members = list
            .members
            .into_iter()
            .map(|m| Member {
                id: format!("{:x}", m.id),
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
            })
            .collect();
        Ok((endpoint, members))
    }

    /// The leader's member id, in hex.
    pub fn leader(&self) -> Result<String, Error> {
        let (_, status) = self.call::<StatusResponse>(
            "/v3/maintenance/status",
            &serde_json::json!({}),
            Idempotent::Yes,
            "",
        )?;
        Ok(format!("{:x}", status.leader))
    }

    /// Whether the cluster serves the v2 API: `GET /v2/keys/` is not a 404. For `--api
    /// auto`.
    pub fn serves_v2(&self) -> Result<bool, Error> {
        self.serves_v2_at().map(|(_, serves)| serves)
    }

    /// [`Client::serves_v2`], with the endpoint that answered (to name in an error).
    pub fn serves_v2_at(&self) -> Result<(String, bool), Error> {
        self.http.send(&Request::get("/v2/keys/"), |response| {
            Ok((response.endpoint().to_string(), response.status() != 404))
        })
    }

    /// Every key at or under `key/` with its value, as bytes (a comparison with text
    /// made lossy could call two different values equal), read as [`Client::snapshot`]
    /// reads: paged, at one revision.
    pub fn values(&self, key: &str) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
        let scope = Scope::new(key, true);
        let mut read = SnapshotRead::new(scope.clone(), PAGE_SIZE);
        let mut values = BTreeMap::new();
        while let Some(request) = read.next_request() {
            let (endpoint, page) =
                self.call::<RangeResponse>("/v3/kv/range", &request, Idempotent::Yes, key)?;
            for kv in page.kvs.iter().filter(|kv| scope.contains(&kv.key)) {
                values.insert(kv.key.clone(), kv.value.clone());
            }
            read.take(page)
                .map_err(|e| bad_answer(&endpoint, e.to_string()))?;
        }
        Ok(values)
    }

    /// A new lease of `ttl` seconds; its id.
    pub fn grant_lease(&self, ttl: u64) -> Result<i64, Error> {
        let grant = LeaseGrantRequest {
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
        };
        // A grant sent twice leaves one unused lease, which expires by itself.
        let (_, granted) =
            self.call::<LeaseGrantResponse>("/v3/lease/grant", &grant, Idempotent::Yes, "")?;
        Ok(granted.id)
    }

    /// Writes `value` to `key` under `lease` (0: none), so the key goes when the lease does.
    /// A lease that no longer exists is [`ErrorKind::NotFound`].
    pub fn put_leased(&self, key: &str, value: &str, lease: i64) -> Result<(), Error> {
        let key = normalize(key);
        let put = PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            lease,
            prev_kv: false,
        };
        self.call::<serde_json::Value>("/v3/kv/put", &put, Idempotent::No, &key)
            .map(drop)
    }

    /// Renews `lease` for its full TTL; the TTL it has from now on, 0 when it no longer
    /// exists (expired or revoked). A keepalive changes no key: watchers see nothing.
    pub fn keep_alive(&self, lease: i64) -> Result<i64, Error> {
        let request = LeaseIdRequest { id: lease };
        // One request body gets one answer on the keepalive stream, then it ends. Resending
        // it to another member renews the same lease: idempotent.
        let (endpoint, message) = self.call::<LeaseKeepAliveMessage>(
            "/v3/lease/keepalive",
            &request,
            Idempotent::Yes,
            "",
        )?;
        match (message.result, message.error) {
            (Some(answer), _) => Ok(answer.ttl),
            (None, error) => Err(transport(
                TransportKind::Disconnected,
                &endpoint,
                format!(
                    "the lease keepalive stream ended with an error: {}",
                    error.unwrap_or_default()
                ),
            )),
        }
    }

    /// Ends `lease` now, deleting every key attached to it; one that no longer exists is
    /// [`ErrorKind::NotFound`].
    pub fn revoke_lease(&self, lease: i64, key: &str) -> Result<(), Error> {
        let request = LeaseIdRequest { id: lease };
        self.call::<serde_json::Value>("/v3/lease/revoke", &request, Idempotent::Yes, key)
            .map(drop)
    }

    /// Runs one transaction (never resent: it may have been applied); the endpoint that
    /// answered and whether its compares held.
    pub fn txn(&self, txn: &TxnRequest, key: &str) -> Result<(String, bool), Error> {
        let (endpoint, answer) =
            self.call::<TxnResponse>("/v3/kv/txn", txn, Idempotent::No, key)?;
        Ok((endpoint, answer.succeeded))
    }

    /// Whether v3 holds any key.
    pub fn has_keys(&self) -> Result<bool, Error> {
        let count = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        };
        let (_, answer) =
            self.call::<RangeResponse>("/v3/kv/range", &count, Idempotent::Yes, "")?;
        Ok(answer.count > 0)
    }

    /// Closes every connection, pending watches included; later requests fail with
    /// [`Error::Shutdown`].
    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.http.shutdown();
        self.hub.shut_down();
    }

    /// Joins the shared watch stream with a watch of `scope` (named `key`) after `after`,
    /// read while the endpoint list had `generation`.
    pub(super) fn join_watch(
        &self,
        scope: &Scope,
        key: &str,
        after: u64,
        generation: u64,
    ) -> Membership {
        self.hub.join(self, scope, key, after, generation)
    }

    /// See [`Http::own_agent`].
    pub(super) fn own_agent(&self) -> ureq::Agent {
        self.http.own_agent()
    }

    /// See [`Http::await_recovery`].
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        self.http.await_recovery(failed_at, stopped)
    }

    /// Opens a watch of `scope` after `after_index` and reads the stream until the first
    /// change in the scope, the bound, or the end of the watch's history.
    fn watch(
        &self,
        scope: &Scope,
        key: &str,
        after_index: u64,
        within: Option<Duration>,
        prev_kv: bool,
    ) -> Result<WatchEnd, Error> {
        let mut watch = watch_after(scope, after_index);
        watch.prev_kv = prev_kv;
        let ended = self.read_stream(
            None,
            &open_body(&[watch]),
            key,
            self.endpoints_generation(),
            within,
            |notice| match notice {
                Notice::Created { revision, .. } if revision < after_index => {
                    log::debug!(
                        "{key}: etcd is at revision {revision}, below {after_index}: \
                     wiped or restored; reading again"
                    );
                    Some(WatchEnd::HistoryGone)
                }
                Notice::Created { .. } | Notice::Progress { .. } => None,
                Notice::Changes {
                    revision, changes, ..
                } => {
                    let changes: Vec<KeyChange> = changes
                        .into_iter()
                        .filter(|c| scope.contains(c.key.as_bytes()))
                        .collect();
                    (!changes.is_empty()).then_some(WatchEnd::Changes { changes, revision })
                }
                Notice::Canceled {
                    compact_revision, ..
                } => {
                    log::debug!(
                        "{key}: revision {} is compacted (up to {compact_revision}); \
                     reading again",
                        after_index + 1
                    );
                    Some(WatchEnd::HistoryGone)
                }
            },
        );
        match ended {
            Err(Error::Transport(e)) if e.kind == TransportKind::WatchExpired => {
                Ok(WatchEnd::Expired)
            }
            other => other,
        }
    }

    /// Reads one stream opening `watches` (numbered 0, 1, ... by etcd, see [`super::hub`])
    /// over `agent` for as long as `take` accepts its messages; what ended it. `keys` names
    /// the watched keys in errors; their revisions were read while the endpoint list had
    /// `generation` (not sent after a rediscovery since). The stream's bound is the
    /// client's watch timeout, which ends a half-open connection.
    pub(super) fn stream_watches(
        &self,
        agent: &ureq::Agent,
        watches: &[WatchCreateRequest],
        keys: &str,
        generation: u64,
        take: &dyn Fn(Notice) -> bool,
    ) -> Error {
        let body = open_body(watches);
        let ended = self.read_stream(Some(agent), &body, keys, generation, None, |notice| {
            (!take(notice)).then_some(())
        });
        match ended {
            Ok(()) => transport(
                TransportKind::Disconnected,
                "",
                "nobody reads the watch stream any more",
            ),
            Err(error) => error,
        }
    }

    /// See [`Http::endpoints_generation`].
    pub fn endpoints_generation(&self) -> u64 {
        self.http.endpoints_generation()
    }

    /// How long a watch stream may stay silent before it is taken for dead: its progress
    /// notifications and its bound (the watch timeout) end any silence before that.
    pub(super) fn silence_bound(&self) -> Duration {
        self.http.watch_timeout() + self.http.request_timeout()
    }

    /// Sends `body` to `/v3/watch` (watches of `key` read at endpoint list `generation`)
    /// and hands each message of the stream to `on` until it returns `Some`. A watch etcd
    /// canceled without compaction is its refusal (an invalid token is fetched again and
    /// the watch sent once more); a stream that ends or breaks is an error, its bound
    /// passing [`TransportKind::WatchExpired`].
    fn read_stream<T>(
        &self,
        agent: Option<&ureq::Agent>,
        body: &[u8],
        key: &str,
        generation: u64,
        within: Option<Duration>,
        mut on: impl FnMut(Notice) -> Option<T>,
    ) -> Result<T, Error> {
        let request = Request {
            method: Method::Post,
            path: "/v3/watch",
            query: &[],
            body: Body::JsonStream(body),
            idempotent: Idempotent::Yes,
            bound: Bound::Watch(within),
            tied_to_generation: Some(generation),
        };
        let on = std::cell::RefCell::new(&mut on);
        let read = |rejected: &Cell<bool>| {
            self.http.send_on(agent, &request, |response| {
                let endpoint = response.endpoint().to_string();
                let status = response.status();
                if status >= 300 {
                    let body = response.read_all()?;
                    return Err(self.refusal(&endpoint, status, &body, key, rejected));
                }
                let mut messages = MessageReader::new(response.into_reader());
                loop {
                    let message = messages.next_message().map_err(|e| {
                        if self.shut_down.load(Ordering::SeqCst) {
                            return Error::Shutdown;
                        }
                        stream_failure(&endpoint, e)
                    })?;
                    let result = match message {
                        Some(Message::Result(result)) => result,
                        Some(Message::Error(error)) => {
                            return Err(transport(
                                TransportKind::Disconnected,
                                &endpoint,
                                format!("the watch stream ended with an error: {error}"),
                            ))
                        }
                        None => {
                            return Err(transport(
                                TransportKind::Disconnected,
                                &endpoint,
                                "the watch stream ended",
                            ))
                        }
                    };
                    match Notice::of(&result) {
                        Notice::Canceled {
                            compact_revision: 0,
                            reason,
                            ..
                        } => {
                            let error = GatewayError::from_cancel_reason(&reason);
                            return Err(self.refused_as(&endpoint, &error, key, rejected));
                        }
                        notice => {
                            if let Some(end) = (on.borrow_mut())(notice) {
                                return Ok(end);
                            }
                        }
                    }
                }
            })
        };
        self.with_token(read)
    }

    /// One JSON call; the endpoint that answered and its answer.
    fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        idempotent: Idempotent,
        key: &str,
    ) -> Result<(String, T), Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidArgument(format!("{path}: cannot encode: {e}")))?;
        let request = Request {
            method: Method::Post,
            path,
            query: &[],
            body: Body::Json(&body),
            idempotent,
            bound: Bound::Request,
            tied_to_generation: None,
        };
        self.with_token(|rejected| {
            self.http.send(&request, |response| {
                let endpoint = response.endpoint().to_string();
                let status = response.status();
                let body = response.read_all()?;
                if status >= 300 {
                    return Err(self.refusal(&endpoint, status, &body, key, rejected));
                }
                Ok((endpoint.clone(), http::json(&endpoint, status, &body)?))
            })
        })
    }

    /// Runs `attempt` with a token (fetched first when there is none), and once more with
    /// a new one when etcd refused the token as invalid or expired.
    fn with_token<T>(&self, attempt: impl Fn(&Cell<bool>) -> Result<T, Error>) -> Result<T, Error> {
        self.ensure_token()?;
        let rejected = Cell::new(false);
        match attempt(&rejected) {
            Err(_) if rejected.get() => {
                log::debug!("etcd refused the auth token; authenticating again");
                if let Some(auth) = &self.auth {
                    auth.set(Token::Missing);
                }
                self.ensure_token()?;
                attempt(&Cell::new(false))
            }
            other => other,
        }
    }

    fn ensure_token(&self) -> Result<(), Error> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        if auth.current() != Token::Missing {
            return Ok(());
        }
        let request = AuthenticateRequest {
            name: auth.credentials.user.clone(),
            password: auth.credentials.password.clone(),
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode credentials: {e}")))?;
        let http_request = Request {
            method: Method::Post,
            path: "/v3/auth/authenticate",
            query: &[],
            body: Body::Json(&body),
            idempotent: Idempotent::Yes,
            bound: Bound::Request,
            tied_to_generation: None,
        };
        let token = self.http.send(&http_request, |response| {
            let endpoint = response.endpoint().to_string();
            let status = response.status();
            let body = response.read_all()?;
            if status >= 300 {
                return match GatewayError::parse(&body) {
                    Some(e) if e.refusal() == Refusal::AuthNotEnabled => Ok(Token::NotNeeded),
                    _ => Err(self.refusal(&endpoint, status, &body, "", &Cell::new(false))),
                };
            }
            let answer: AuthenticateResponse = http::json(&endpoint, status, &body)?;
            Ok(Token::Valid(answer.token))
        })?;
        auth.set(token);
        Ok(())
    }

    /// A refusal (HTTP status ≥ 300) as a neutral error; notes in `rejected` whether
    /// etcd refused the token (fetch a new one and retry once).
    fn refusal(
        &self,
        endpoint: &str,
        status: u16,
        body: &[u8],
        key: &str,
        rejected: &Cell<bool>,
    ) -> Error {
        let (error, token_refused) = refused::from_body(&self.asked(endpoint, key), status, body);
        rejected.set(token_refused && self.auth.is_some());
        error
    }

    /// [`Client::refusal`] for a refusal already read (a canceled watch).
    fn refused_as(
        &self,
        endpoint: &str,
        error: &GatewayError,
        key: &str,
        rejected: &Cell<bool>,
    ) -> Error {
        let (refusal, token_refused) =
            refused::from_gateway(&self.asked(endpoint, key), 200, error);
        // etcd 3.5 cancels a watch whose token expired as "permission denied", as it does a
        // key no role grants: a new token tells them apart (refused again: the role).
        let maybe_expired = error.refusal() == Refusal::PermissionDenied;
        rejected.set((token_refused || maybe_expired) && self.auth.is_some());
        refusal
    }

    fn asked<'a>(&'a self, endpoint: &'a str, key: &'a str) -> Asked<'a> {
        Asked {
            endpoint,
            key,
            user: self
                .auth
                .as_ref()
                .map(|auth| auth.credentials.user.as_str()),
        }
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<(String, T), Error> {
        self.http.send(&Request::get(path), |response| {
            let endpoint = response.endpoint().to_string();
            let status = response.status();
            let body = response.read_all()?;
            if status >= 300 {
                return Err(bad_answer(
                    &endpoint,
                    format!("HTTP {status}: {}", http::excerpt(&body)),
                ));
            }
            Ok((endpoint.clone(), http::json(&endpoint, status, &body)?))
        })
    }
}

/// The first of the changes one watch message brought, when it is the only change of its
/// revision: the changes after it come again from a watch from its revision + 1, one at a
/// time as on v2, so a burst of writes is followed (and coalesced by `wait`) instead of
/// costing a read each time several are queued. The changes of one transaction share a
/// revision and must be taken together: `None`, read again.
fn first_alone(changes: Vec<KeyChange>) -> Option<KeyChange> {
    let mut changes = changes.into_iter();
    let first = changes.next()?;
    match changes.next() {
        Some(next) if next.mod_revision == first.mod_revision => None,
        _ => Some(first),
    }
}

/// The keys one level below `key`, in key order; a child with keys under it is a
/// directory.
fn children(key: &str, leaves: &BTreeMap<String, String>) -> Vec<Child> {
    let prefix = format!("{}/", key.trim_end_matches('/'));
    let mut children: Vec<Child> = Vec::new();
    for leaf in leaves.keys() {
        let Some(rest) = leaf.strip_prefix(&prefix) else {
            continue;
        };
        let (name, dir) = match rest.split_once('/') {
            Some((name, _)) => (name, true),
            None => (rest, false),
        };
        let child = format!("{prefix}{name}");
        match children.last_mut() {
            Some(last) if last.key == child => last.dir |= dir,
            _ => children.push(Child { key: child, dir }),
        }
    }
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), String::new()))
            .collect()
    }

    #[test]
    fn children_are_one_level_below_and_directories_have_keys_under_them() {
        let tree = leaves(&[
            "/app", "/app/a", "/app/b/x", "/app/b/y", "/app/c", "/app/c/z",
        ]);
        let listed: Vec<(String, bool)> = children("/app", &tree)
            .into_iter()
            .map(|c| (c.key, c.dir))
            .collect();
        assert_eq!(
            listed,
            [
                ("/app/a".to_string(), false),
                ("/app/b".to_string(), true),
                ("/app/c".to_string(), true),
            ]
        );
    }
}
