//! HTTP to etcd, for any of its APIs: endpoints, failover and rediscovery, timeouts, TLS,
//! the authorization header, whether etcd answers at all, and reading an answer whole or
//! as a stream. It knows nothing of what the requests mean: the protocol on top (`v2`)
//! builds them, reads the headers and bodies, and decides which answers are errors.

mod endpoints;
mod exchange;
mod health;

pub use endpoints::{normalize_endpoint, Discover};

use super::error::{Error, TransportError, TransportKind};
use super::options::ClientOptions;
use endpoints::Endpoints;
use exchange::Bounds;
use health::Health;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers larger than this are refused rather than buffered (values of 10 MB are fine).
const MAX_ANSWER_BYTES: u64 = 1 << 30;
/// Per-connection read buffer. ureq's default (128 KiB, plus 128 KiB for writing) is zeroed,
/// so touched, on every connection: with one pending watch per resource that made 100
/// resources cost 25 MB of RSS. Bodies larger than the buffer are simply read in pieces.
const INPUT_BUFFER_BYTES: usize = 8 * 1024;
/// Per-connection write buffer: request head and form body (larger bodies go in pieces).
const OUTPUT_BUFFER_BYTES: usize = 8 * 1024;
/// How long a read keeps asking while every member it asked says the cluster has no leader:
/// an election takes about two election timeouts (1 s each by default) once the members
/// notice the leader is gone. A longer wait is an unavailable cluster, for the caller.
const ELECTION_WAIT: Duration = Duration::from_secs(5);
/// The pauses between rounds while electing: the first, then doubling up to the most.
const ELECTION_PAUSE_FIRST: Duration = Duration::from_millis(100);
const ELECTION_PAUSE_MOST: Duration = Duration::from_millis(800);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Delete,
    Post,
}

/// Whether a request may be sent again after it may have reached etcd: a read may, a write
/// may not (it could be applied twice). Given by the protocol, which knows; every v3 call
/// is a POST, reads included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Yes,
    No,
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// An ordinary request: the client's request timeout, answer included.
    Request,
    /// A watch: its response head within the request timeout (etcd sends it at once), its
    /// answer within this bound (`None`: the client's watch timeout). The bound passing is
    /// [`TransportKind::WatchExpired`], not a failure.
    Watch(Option<Duration>),
}

pub enum Body<'a> {
    Empty,
    /// `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, String)]),
    /// `application/json`.
    Json(&'a [u8]),
    /// `application/json` that the server reads while it answers (several messages of a
    /// stream, such as etcd's watch requests), sent with `Connection: close`. Go's HTTP/1
    /// server, etcd's, discards whatever of a request body its handler has not read yet
    /// when the handler first flushes its answer, unless the connection is to close after
    /// the answer; etcd's gateway reads the messages after the first one while the first
    /// one's answer is on its way, so without it the rest may never reach etcd.
    JsonStream(&'a [u8]),
}

pub struct Request<'a> {
    pub method: Method,
    /// Already percent-encoded.
    pub path: &'a str,
    pub query: &'a [(&'a str, String)],
    pub body: Body<'a>,
    pub idempotent: Idempotent,
    pub bound: Bound,
    /// The request continues from an index read earlier (a watch) while the endpoint list
    /// had this generation ([`Http::endpoints_generation`]): it is not sent once the list
    /// was rediscovered since, as that index may be another cluster's; the caller gets
    /// [`TransportKind::WatchExpired`] and reads again.
    pub tied_to_generation: Option<u64>,
}

impl Request<'_> {
    /// A GET of `path` with no query: an ordinary read.
    pub fn get(path: &str) -> Request<'_> {
        Request {
            method: Method::Get,
            path,
            query: &[],
            body: Body::Empty,
            idempotent: Idempotent::Yes,
            bound: Bound::Request,
            tied_to_generation: None,
        }
    }
}

/// Supplies the `Authorization` header of every request. The protocol owns it (and keeps
/// its own `Arc` to it): v2 sends fixed Basic credentials; v3 a token it fetches, and
/// fetches again when etcd refuses it, behind the same `header()`.
pub trait Authorizer: Send + Sync {
    fn header(&self) -> Option<String>;
}

/// The connection to one cluster: the endpoints and one HTTP agent, shared by every
/// request. Cheap to share behind an `Arc`.
pub struct Http {
    agent: ureq::Agent,
    /// The agent's configuration, for a stream that needs an agent of its own.
    config: ureq::config::Config,
    authorizer: Option<Arc<dyn Authorizer>>,
    /// Whether a client certificate is configured, to explain a TLS refusal.
    sends_client_cert: bool,
    request_timeout: Duration,
    watch_timeout: Duration,
    shut_down: AtomicBool,
    endpoints: Endpoints,
    /// Whether etcd answers, shared by every caller: ends an outage for all at once.
    health: Health,
}

/// An answer's head, with its body still to read. Dropping it unread closes the connection.
pub struct Response<'h> {
    http: &'h Http,
    endpoint: &'h str,
    bound: Bound,
    bounds: Bounds,
    answer: ureq::http::Response<ureq::Body>,
}

impl Http {
    /// Checks and normalises the endpoints (discovering them when none is given), and
    /// builds the agent.
    pub fn new(
        options: ClientOptions,
        authorizer: Option<Arc<dyn Authorizer>>,
    ) -> Result<Http, Error> {
        let default_scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let list = options
            .endpoints
            .iter()
            .map(|raw| normalize_endpoint(raw, default_scheme).map_err(Error::InvalidArgument))
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() && options.discover.is_none() {
            return Err(Error::InvalidArgument("no etcd endpoint given".to_string()));
        }
        let endpoints = Endpoints::new(list, options.discover, options.rediscover_every);
        if endpoints.in_order().is_empty() {
            endpoints.rediscover();
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(options.connect_timeout))
            .max_idle_connections(512)
            .max_idle_connections_per_host(512)
            .input_buffer_size(INPUT_BUFFER_BYTES)
            .output_buffer_size(OUTPUT_BUFFER_BYTES)
            .user_agent(concat!("reconfig/", env!("CARGO_PKG_VERSION")));
        let sends_client_cert = options
            .tls
            .as_ref()
            .is_some_and(|t| t.client_cert().is_some());
        if let Some(tls) = options.tls {
            config = config.tls_config(tls);
        }
        let config = config.build();
        Ok(Http {
            agent: config.clone().into(),
            config,
            authorizer,
            sends_client_cert,
            request_timeout: options.request_timeout,
            watch_timeout: options.watch_timeout,
            shut_down: AtomicBool::new(false),
            endpoints,
            health: Health::default(),
        })
    }

    /// The endpoints in the order the next request tries them.
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.in_order()
    }

    /// Counts the rediscoveries that replaced the endpoint list: an index read before one
    /// may be another cluster's.
    pub fn endpoints_generation(&self) -> u64 {
        self.endpoints.generation()
    }

    /// The bound on an ordinary request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The bound on a watch with no bound of its own.
    pub fn watch_timeout(&self) -> Duration {
        self.watch_timeout
    }

    /// Closes every connection, pending watches included; later requests fail with
    /// [`Error::Shutdown`].
    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.agent.clone().shutdown();
        self.health.shut_down();
    }

    /// An agent of its own (the same TLS, timeouts and buffers, no shared connections):
    /// shutting it down closes only what it opened, which is the one way to cut a stream
    /// that another thread is reading. [`Http::shutdown`] does not reach it: its owner
    /// shuts it down.
    pub fn own_agent(&self) -> ureq::Agent {
        ureq::Agent::new_with_config(self.config.clone())
    }

    /// After a request that started at `failed_at` found no endpoint answering
    /// ([`Error::is_outage`]): waits until etcd answers again, so that every caller learns
    /// it at once instead of after its own backoff. One caller at a time probes (`GET
    /// /version`, which every API serves) every 250 ms. Returns false when `stopped` or
    /// shut down first.
    pub fn await_recovery(&self, failed_at: Instant, stopped: impl Fn() -> bool) -> bool {
        let probe = || {
            self.send(&Request::get("/version"), |response| {
                let status = response.status();
                let body = response.read_all()?;
                Ok(status < 300 && !body.is_empty())
            })
            .unwrap_or(false)
        };
        self.health.await_recovery(failed_at, probe, stopped)
    }

    /// Sends `request` to each endpoint in turn until one answers, and hands the answer to
    /// `read`, which turns it into the caller's result. Moves on to the next endpoint only
    /// when retrying cannot apply a write twice: after connection failures always, after
    /// other failures only for [`Idempotent::Yes`] requests. `read` ends the failover with
    /// [`Error::Etcd`] (etcd answered: no other endpoint would answer otherwise) or a
    /// transport error (the next endpoint is tried when allowed).
    pub fn send<T>(
        &self,
        request: &Request,
        read: impl FnMut(Response<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.send_on(None, request, read)
    }

    /// [`Http::send`] over `agent` (see [`Http::own_agent`]); `None`: the shared one.
    /// While every member asked says the cluster has no leader, an [`Idempotent::Yes`]
    /// request is sent again after a pause, for [`ELECTION_WAIT`] at most.
    pub fn send_on<T>(
        &self,
        agent: Option<&ureq::Agent>,
        request: &Request,
        mut read: impl FnMut(Response<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let agent = agent.unwrap_or(&self.agent);
        let started = Instant::now();
        let mut failures = Vec::new();
        let mut rediscovered = false;
        let mut pause = ELECTION_PAUSE_FIRST;
        loop {
            for endpoint in self.endpoints.in_order() {
                let moved = request
                    .tied_to_generation
                    .is_some_and(|read_at| self.endpoints.generation() != read_at);
                if moved {
                    return Err(Error::Transport(TransportError::new(
                        TransportKind::WatchExpired,
                        &endpoint,
                        "endpoints rediscovered; reading again before watching",
                    )));
                }
                match self.exchange(agent, &endpoint, request).and_then(&mut read) {
                    Ok(value) => {
                        self.endpoints.mark_working(&endpoint);
                        self.health.succeeded();
                        return Ok(value);
                    }
                    Err(answered @ Error::Etcd(_)) => {
                        self.health.succeeded();
                        return Err(answered);
                    }
                    Err(Error::Transport(e)) if may_try_next(request.idempotent, e.kind) => {
                        log::debug!("{e}; trying the next endpoint");
                        failures.push(e);
                    }
                    Err(other) => return Err(other),
                }
            }
            if !rediscovered && self.endpoints.can_rediscover() {
                rediscovered = self.endpoints.rediscover();
                if rediscovered {
                    continue;
                }
            }
            // An election: a read asked again a moment later is answered (etcdctl's client
            // retries it too). A write is not sent again: it may have been applied.
            let electing = request.idempotent == Idempotent::Yes
                && failures.iter().any(|e| e.kind == TransportKind::NoLeader);
            if !electing || started.elapsed() + pause > ELECTION_WAIT {
                break;
            }
            log::debug!("the cluster has no leader; asking again in {pause:?}");
            if !self.sleep_unless_shut_down(pause) {
                return Err(Error::Shutdown);
            }
            pause = (pause * 2).min(ELECTION_PAUSE_MOST);
            failures.clear();
        }
        if failures.len() == 1 {
            return Err(Error::Transport(failures.remove(0)));
        }
        Err(Error::Unavailable(failures))
    }

    /// Sleeps `pause`, or less when the client is shut down meanwhile: false then.
    fn sleep_unless_shut_down(&self, pause: Duration) -> bool {
        const STEP: Duration = Duration::from_millis(50);
        let until = Instant::now() + pause;
        loop {
            if self.shut_down.load(Ordering::SeqCst) {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(STEP));
        }
    }

    /// Sends one request to one endpoint and waits for the answer's head.
    fn exchange<'h>(
        &'h self,
        agent: &ureq::Agent,
        endpoint: &'h str,
        request: &Request,
    ) -> Result<Response<'h>, Error> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(Error::Shutdown);
        }
        let url = format!("{endpoint}{}", request.path);
        let bounds = match request.bound {
            Bound::Watch(within) => {
                let whole = within.unwrap_or(self.watch_timeout);
                Bounds {
                    head: whole.min(self.request_timeout),
                    whole,
                }
            }
            Bound::Request => Bounds::whole(self.request_timeout),
        };
        let query = request.query.iter().map(|(k, v)| (*k, v.as_str()));
        let auth = self.authorizer.as_ref().and_then(|a| a.header());
        let sent = match (request.method, &request.body) {
            (Method::Get, _) => self
                .prepare(agent.get(&url).query_pairs(query), &url, auth, bounds)
                .call(),
            (Method::Delete, _) => self
                .prepare(agent.delete(&url).query_pairs(query), &url, auth, bounds)
                .call(),
            (method, body) => {
                let builder = match method {
                    Method::Put => agent.put(&url),
                    _ => agent.post(&url),
                };
                let builder = self.prepare(builder.query_pairs(query), &url, auth, bounds);
                match body {
                    Body::Empty => builder.send_empty(),
                    Body::Form(form) => {
                        builder.send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
                    }
                    Body::Json(json) => builder.content_type("application/json").send(*json),
                    Body::JsonStream(json) => builder
                        .content_type("application/json")
                        .header("Connection", "close")
                        .send(*json),
                }
            }
        };
        match sent {
            Ok(answer) => Ok(Response {
                http: self,
                endpoint,
                bound: request.bound,
                bounds,
                answer,
            }),
            Err(e) => Err(self.failure(endpoint, &e, request.bound, bounds)),
        }
    }

    /// Adds the authorization and bounds the exchange, answer body included.
    fn prepare<B>(
        &self,
        mut request: ureq::RequestBuilder<B>,
        url: &str,
        auth: Option<String>,
        bounds: Bounds,
    ) -> ureq::RequestBuilder<B> {
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        exchange::bounded(request.config(), url, bounds).build()
    }

    fn failure(&self, endpoint: &str, error: &ureq::Error, bound: Bound, bounds: Bounds) -> Error {
        if self.shut_down.load(Ordering::SeqCst) {
            return Error::Shutdown;
        }
        let mut failure = exchange::classify(endpoint, error, self.sends_client_cert);
        if matches!(bound, Bound::Watch(_)) && failure.kind == TransportKind::Timeout {
            failure = exchange::watch_timeout(failure, error, bounds);
        }
        Error::Transport(failure)
    }
}

/// Whether a failure of this kind may be retried on another endpoint. A write whose
/// request may have reached etcd is not resent: it could be applied twice.
fn may_try_next(idempotent: Idempotent, kind: TransportKind) -> bool {
    match kind {
        TransportKind::Connect | TransportKind::Tls => true,
        // The endpoint answered; nothing failed.
        TransportKind::WatchExpired => false,
        TransportKind::Unauthorized => false,
        _ => idempotent == Idempotent::Yes,
    }
}

impl Response<'_> {
    pub fn endpoint(&self) -> &str {
        self.endpoint
    }

    pub fn status(&self) -> u16 {
        self.answer.status().as_u16()
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.answer.headers().get(name)?.to_str().ok()
    }

    /// The whole body, within the request's bound.
    pub fn read_all(self) -> Result<Vec<u8>, Error> {
        let Response {
            http,
            endpoint,
            bound,
            bounds,
            mut answer,
        } = self;
        answer
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| http.failure(endpoint, &e, bound, bounds))
    }

    /// The body as a stream, for answers that never end (a v3 watch), read within the
    /// request's bound.
    pub fn into_reader(self) -> impl Read {
        self.answer.into_body().into_reader()
    }
}

/// Decodes an answer's body; anything that is not the expected JSON is a bad response.
pub fn json<T: serde::de::DeserializeOwned>(
    endpoint: &str,
    status: u16,
    body: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| {
        Error::Transport(TransportError::new(
            TransportKind::BadResponse,
            endpoint,
            format!("HTTP {status} with invalid JSON ({e}): {}", excerpt(body)),
        ))
    })
}

/// The start of a body for an error message, on one line.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 120 {
        format!("{one_line:?}…")
    } else {
        format!("{one_line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_not_resent_after_they_may_have_arrived() {
        assert!(may_try_next(Idempotent::No, TransportKind::Connect));
        assert!(!may_try_next(Idempotent::No, TransportKind::Timeout));
        assert!(may_try_next(Idempotent::Yes, TransportKind::Timeout));
        assert!(!may_try_next(Idempotent::Yes, TransportKind::Unauthorized));
    }

    #[test]
    fn a_watch_is_not_sent_once_the_endpoints_were_rediscovered_after_its_read() {
        // Nothing listens on either endpoint: a watch that was sent fails to connect.
        let discovered = Arc::new(std::sync::Mutex::new(vec!["http://127.0.0.1:1"]));
        let source = Arc::clone(&discovered);
        let options = ClientOptions {
            endpoints: Vec::new(),
            discover: Some(Box::new(move || {
                let list = source.lock().map_err(|e| e.to_string())?;
                Ok(list.iter().map(|e| e.to_string()).collect())
            })),
            rediscover_every: Some(Duration::ZERO),
            ..ClientOptions::default()
        };
        let http = Http::new(options, None).expect("an Http");
        let read_at = http.endpoints_generation();
        *discovered.lock().expect("the list") = vec!["http://127.0.0.2:1"];
        // Another request rediscovers, between the read and the watch.
        assert_eq!(http.endpoints(), ["http://127.0.0.2:1"]);
        let watch = Request {
            bound: Bound::Watch(None),
            tied_to_generation: Some(read_at),
            ..Request::get("/v2/keys/k")
        };
        match http.send(&watch, |_| Ok(())) {
            Err(Error::Transport(e)) if e.kind == TransportKind::WatchExpired => {}
            other => panic!("expected the watch to expire unsent, got {other:?}"),
        }
    }
}
