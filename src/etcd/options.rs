//! How to reach etcd: the settings every API's client is built from.

use super::http::Discover;
use std::time::Duration;

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
