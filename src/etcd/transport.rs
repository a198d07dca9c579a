//! One HTTP exchange with one endpoint: building the request, bounding it in time, reading
//! the whole answer, and sorting failures into [`TransportKind`]s.

use super::error::{Error, ErrorCode, EtcdError, TransportError, TransportKind};
use super::node::ErrorBody;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use ureq::config::ConfigBuilder;
use ureq::typestate::RequestScope;

/// Answers larger than this are refused rather than buffered (values of 10 MB are fine).
const MAX_ANSWER_BYTES: u64 = 1 << 30;
/// Per-connection read buffer. ureq's default (128 KiB, plus 128 KiB for writing) is zeroed,
/// so touched, on every connection: with one pending watch per resource that made 100
/// resources cost 25 MB of RSS. Bodies larger than the buffer are simply read in pieces.
const INPUT_BUFFER_BYTES: usize = 8 * 1024;
/// Per-connection write buffer: request head and form body (larger bodies go in pieces).
const OUTPUT_BUFFER_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    /// A GET long-poll, bounded by the watch timeout instead of the request timeout.
    Watch,
    Put,
    Delete,
}

/// Whether a failure of this kind may be retried on another endpoint. A write whose
/// request may have reached etcd is not resent: it could be applied twice.
pub fn may_try_next(method: Method, kind: TransportKind) -> bool {
    match kind {
        TransportKind::Connect | TransportKind::Tls => true,
        // The endpoint answered; nothing failed.
        TransportKind::WatchExpired => false,
        TransportKind::Unauthorized => false,
        _ => matches!(method, Method::Get | Method::Watch),
    }
}

pub struct Transport {
    agent: ureq::Agent,
    authorization: Option<String>,
    user: Option<String>,
    /// Whether a client certificate is configured, to explain a TLS refusal.
    sends_client_cert: bool,
    request_timeout: Duration,
    watch_timeout: Duration,
    shut_down: AtomicBool,
}

/// A complete answer: status, the store index and the body.
pub struct Answer {
    pub status: u16,
    pub etcd_index: u64,
    pub body: Vec<u8>,
}

/// How one exchange ended when the endpoint answered.
enum Exchange {
    Answer(Answer),
    /// A watch was not waited on: see [`wait_index_ahead_of`].
    IndexWentBack {
        etcd_index: u64,
        wait_index: u64,
    },
}

/// A watch's `waitIndex` when etcd's own index (sent in the headers, before any event) is
/// below it: etcd was wiped or restored and that index may never come. etcd sends the
/// store index of the member it runs on, so a member a little behind the one the snapshot
/// came from also shows here; re-reading is harmless then.
fn wait_index_ahead_of(method: Method, query: &[(&str, String)], etcd_index: u64) -> Option<u64> {
    if method != Method::Watch || etcd_index == 0 {
        return None;
    }
    let wait_index: u64 = query
        .iter()
        .find(|(name, _)| *name == "waitIndex")
        .and_then(|(_, value)| value.parse().ok())?;
    (etcd_index.saturating_add(1) < wait_index).then_some(wait_index)
}

impl Transport {
    pub fn new(
        tls: &Option<ureq::tls::TlsConfig>,
        credentials: Option<super::Credentials>,
        connect_timeout: Duration,
        request_timeout: Duration,
        watch_timeout: Duration,
    ) -> Transport {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(connect_timeout))
            .max_idle_connections(512)
            .max_idle_connections_per_host(512)
            .input_buffer_size(INPUT_BUFFER_BYTES)
            .output_buffer_size(OUTPUT_BUFFER_BYTES)
            .user_agent(concat!("reconfig/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            config = config.tls_config(tls.clone());
        }
        let sends_client_cert = tls.as_ref().is_some_and(|t| t.client_cert().is_some());
        let user = credentials.as_ref().map(|c| c.user.clone());
        let authorization = credentials.map(|c| {
            format!(
                "Basic {}",
                BASE64.encode(format!("{}:{}", c.user, c.password))
            )
        });
        Transport {
            agent: config.build().into(),
            authorization,
            user,
            sends_client_cert,
            request_timeout,
            watch_timeout,
            shut_down: AtomicBool::new(false),
        }
    }

    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        self.agent.clone().shutdown();
    }

    pub fn send(
        &self,
        endpoint: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        form: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> Result<Answer, Error> {
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(Error::Shutdown);
        }
        let url = format!("{endpoint}{path}");
        let bounds = match method {
            Method::Watch => {
                let whole = timeout.unwrap_or(self.watch_timeout);
                Bounds {
                    head: whole.min(self.request_timeout),
                    whole,
                }
            }
            _ => Bounds::whole(timeout.unwrap_or(self.request_timeout)),
        };
        let result = self.exchange(&url, method, query, form, bounds);
        match result {
            Ok(Exchange::Answer(answer)) => self.check_status(endpoint, answer),
            Ok(Exchange::IndexWentBack {
                etcd_index,
                wait_index,
            }) => Err(Error::IndexWentBack {
                endpoint: endpoint.to_string(),
                etcd_index,
                wait_index,
            }),
            Err(_) if self.shut_down.load(Ordering::SeqCst) => Err(Error::Shutdown),
            Err(e) => {
                let mut failure = classify(endpoint, &e, self.sends_client_cert);
                if method == Method::Watch && failure.kind == TransportKind::Timeout {
                    failure = watch_timeout(failure, &e, bounds);
                }
                Err(Error::Transport(failure))
            }
        }
    }

    fn exchange(
        &self,
        url: &str,
        method: Method,
        query: &[(&str, String)],
        form: &[(&str, String)],
        timeout: Bounds,
    ) -> Result<Exchange, ureq::Error> {
        let query_pairs = query;
        let query = query.iter().map(|(k, v)| (*k, v.as_str()));
        let mut response = match method {
            Method::Get | Method::Watch => self
                .prepare(self.agent.get(url).query_pairs(query), url, timeout)
                .call()?,
            Method::Delete => self
                .prepare(self.agent.delete(url).query_pairs(query), url, timeout)
                .call()?,
            Method::Put => self
                .prepare(self.agent.put(url).query_pairs(query), url, timeout)
                .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))?,
        };
        let status = response.status().as_u16();
        let etcd_index = response
            .headers()
            .get("X-Etcd-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if status < 300 {
            if let Some(wait_index) = wait_index_ahead_of(method, query_pairs, etcd_index) {
                // Do not wait for the event: it may never come. The connection is dropped.
                return Ok(Exchange::IndexWentBack {
                    etcd_index,
                    wait_index,
                });
            }
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()?;
        Ok(Exchange::Answer(Answer {
            status,
            etcd_index,
            body,
        }))
    }

    /// Adds the credentials and bounds the exchange, answer body included (see [`bounded`]).
    fn prepare<B>(
        &self,
        mut request: ureq::RequestBuilder<B>,
        url: &str,
        timeout: Bounds,
    ) -> ureq::RequestBuilder<B> {
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        bounded(request.config(), url, timeout).build()
    }

    /// Turns 4xx/5xx answers into etcd errors (when the body is etcd's error JSON) or
    /// transport errors (an auth refusal, a proxy's error page).
    fn check_status(&self, endpoint: &str, answer: Answer) -> Result<Answer, Error> {
        if answer.status < 400 {
            return Ok(answer);
        }
        let etcd_body = serde_json::from_slice::<ErrorBody>(&answer.body).ok();
        if is_auth_refusal(answer.status, etcd_body.as_ref()) {
            return Err(Error::Transport(TransportError {
                kind: TransportKind::Unauthorized,
                endpoint: endpoint.to_string(),
                detail: self.auth_refusal(answer.status),
            }));
        }
        if let Some(body) = etcd_body {
            return Err(Error::Etcd(EtcdError {
                code: ErrorCode::from_number(body.error_code),
                number: body.error_code,
                message: body.message,
                cause: body.cause,
                index: if answer.etcd_index > 0 {
                    answer.etcd_index
                } else {
                    body.index
                },
                endpoint: endpoint.to_string(),
                key: String::new(),
            }));
        }
        let (kind, detail) = match answer.status {
            404 if answer.body.starts_with(b"404 page not found") => (
                TransportKind::BadResponse,
                "HTTP 404 \"page not found\": is etcd's v2 API enabled (--enable-v2=true)?"
                    .to_string(),
            ),
            status => (
                TransportKind::BadResponse,
                format!(
                    "HTTP {status} with a body that is not etcd's: {}",
                    excerpt(&answer.body)
                ),
            ),
        };
        Err(Error::Transport(TransportError {
            kind,
            endpoint: endpoint.to_string(),
            detail,
        }))
    }

    fn auth_refusal(&self, status: u16) -> String {
        match &self.user {
            Some(user) => format!(
                "HTTP {status}: etcd refused user {user:?} (wrong password, or no role that \
                 grants this key); check --username and --password/--password-file"
            ),
            None => format!(
                "HTTP {status}: etcd requires authentication; pass --username and \
                 --password or --password-file"
            ),
        }
    }
}

/// etcd's v2 auth answers 401 with its own error JSON (errorCode 110, "The request requires
/// user authentication"), so the status alone decides; a 403 is a refusal only when it is not
/// one of etcd's key errors (102 "Not a file" and 108 "Directory not empty" are 403 too).
fn is_auth_refusal(status: u16, etcd_body: Option<&ErrorBody>) -> bool {
    const UNAUTHORIZED_CODE: u32 = 110;
    match (status, etcd_body) {
        (401, _) => true,
        (_, Some(body)) => body.error_code == UNAUTHORIZED_CODE,
        (403, None) => true,
        _ => false,
    }
}

impl Answer {
    /// Decodes the body; anything that is not the expected JSON is a bad response.
    pub fn json<T: serde::de::DeserializeOwned>(&self, endpoint: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Transport(TransportError {
                kind: TransportKind::BadResponse,
                endpoint: endpoint.to_string(),
                detail: format!(
                    "HTTP {} with invalid JSON ({e}): {}",
                    self.status,
                    excerpt(&self.body)
                ),
            })
        })
    }
}

/// How long one exchange may take.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Sending the request and receiving the answer's head.
    head: Duration,
    /// The whole exchange (for an IP address: the answer's body after its head).
    whole: Duration,
}

impl Bounds {
    fn whole(whole: Duration) -> Bounds {
        Bounds { head: whole, whole }
    }
}

/// Bounds one request by `timeout`.
///
/// A global timeout also bounds ureq's name lookup, which it then runs on a new thread per
/// request, pooled connection or not: two thread spawns per pass of every resource. An
/// endpoint given as an IP address needs no lookup, so its phases are bounded instead
/// (sending and the answer's head within `timeout.head`, the body within `timeout.whole`).
fn bounded<B>(
    config: ConfigBuilder<RequestScope<B>>,
    url: &str,
    timeout: Bounds,
) -> ConfigBuilder<RequestScope<B>> {
    if host_is_ip_address(url) {
        config
            .timeout_send_request(Some(timeout.head))
            .timeout_recv_response(Some(timeout.head))
            .timeout_recv_body(Some(timeout.whole))
    } else if timeout.head < timeout.whole {
        config
            .timeout_global(Some(timeout.whole))
            .timeout_recv_response(Some(timeout.head))
    } else {
        config.timeout_global(Some(timeout.whole))
    }
}

/// What a timeout of a watch means. etcd sends a watch's response head at once and holds
/// only the body until an event: a watch whose head did not come within the request timeout
/// went to a dead endpoint (a wedged process, a black-holed proxy) and the client fails
/// over. Any other timeout is the watch bound passing with no event.
fn watch_timeout(failure: TransportError, error: &ureq::Error, bounds: Bounds) -> TransportError {
    use ureq::Timeout;
    let before_head = matches!(
        error,
        ureq::Error::Timeout(Timeout::SendRequest | Timeout::SendBody | Timeout::RecvResponse)
    );
    if before_head && bounds.head < bounds.whole {
        return TransportError {
            detail: format!(
                "no response to a watch within {:?} (etcd answers at once); skipping this endpoint",
                bounds.head
            ),
            ..failure
        };
    }
    TransportError {
        kind: TransportKind::WatchExpired,
        ..failure
    }
}

/// Whether the URL's host is an IPv4 or bracketed IPv6 address.
fn host_is_ip_address(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let host = authority.split(':').next().unwrap_or_default();
    host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The start of a body for an error message, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 120 {
        format!("{one_line:?}…")
    } else {
        format!("{one_line:?}")
    }
}

fn classify(endpoint: &str, error: &ureq::Error, sent_client_cert: bool) -> TransportError {
    use ureq::Timeout;
    let kind = match error {
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => TransportKind::Connect,
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportKind::Connect,
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => TransportKind::Tls,
        ureq::Error::Protocol(_) => TransportKind::BadResponse,
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable => TransportKind::Connect,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportKind::Timeout,
            // rustls reports alerts and certificate failures as InvalidData.
            io::ErrorKind::InvalidData if endpoint.starts_with("https:") => TransportKind::Tls,
            io::ErrorKind::InvalidData => TransportKind::BadResponse,
            _ => TransportKind::Disconnected,
        },
        _ => TransportKind::Other,
    };
    if let Some(reason) = crate::tls::explain(error, sent_client_cert) {
        return TransportError {
            kind: TransportKind::Tls,
            endpoint: endpoint.to_string(),
            detail: reason,
        };
    }
    TransportError {
        kind,
        endpoint: endpoint.to_string(),
        detail: describe(error),
    }
}

fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            "connection refused".to_string()
        }
        ureq::Error::Timeout(kind) => format!("no answer in time ({kind})"),
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_body(code: u32) -> ErrorBody {
        serde_json::from_value(serde_json::json!({"errorCode": code})).unwrap()
    }

    #[test]
    fn auth_refusals_are_told_apart_from_key_errors() {
        assert!(is_auth_refusal(401, Some(&error_body(110))));
        assert!(is_auth_refusal(401, None));
        assert!(is_auth_refusal(403, None));
        assert!(!is_auth_refusal(403, Some(&error_body(102))));
        assert!(!is_auth_refusal(404, Some(&error_body(100))));
    }

    #[test]
    fn a_watch_for_an_index_etcd_went_below_is_not_waited_on() {
        let query = |n: u64| vec![("wait", "true".to_string()), ("waitIndex", n.to_string())];
        // Normal: waiting for the index right after etcd's current one.
        assert_eq!(wait_index_ahead_of(Method::Watch, &query(201), 200), None);
        assert_eq!(wait_index_ahead_of(Method::Watch, &query(150), 200), None);
        // etcd wiped: its index restarted below what the client waits for.
        assert_eq!(
            wait_index_ahead_of(Method::Watch, &query(201), 3),
            Some(201)
        );
        // No header, no waitIndex, or not a watch: nothing to compare.
        assert_eq!(wait_index_ahead_of(Method::Watch, &query(201), 0), None);
        assert_eq!(wait_index_ahead_of(Method::Watch, &[], 3), None);
        assert_eq!(wait_index_ahead_of(Method::Get, &query(201), 3), None);
    }

    #[test]
    fn only_ip_address_hosts_skip_the_name_lookup() {
        assert!(host_is_ip_address(
            "http://127.0.0.1:2379/v2/keys/a?wait=true"
        ));
        assert!(host_is_ip_address("https://[::1]:2379/v2/keys/a"));
        assert!(host_is_ip_address("http://user:pw@10.0.0.1:2379/v2"));
        assert!(!host_is_ip_address("http://localhost:2379/v2/keys/a"));
        assert!(!host_is_ip_address("https://etcd-a.example.test:2379/v2"));
        assert!(!host_is_ip_address("http://127.0.0.1.example:2379/"));
    }

    #[test]
    fn writes_are_not_resent_after_they_may_have_arrived() {
        assert!(may_try_next(Method::Put, TransportKind::Connect));
        assert!(!may_try_next(Method::Put, TransportKind::Timeout));
        assert!(may_try_next(Method::Get, TransportKind::Timeout));
        assert!(!may_try_next(Method::Get, TransportKind::Unauthorized));
    }
}
