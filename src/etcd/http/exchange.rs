//! One exchange with ureq: bounding it in time and sorting its failures into
//! [`TransportKind`]s.

use super::super::error::{Remedy, TransportError, TransportKind};
use crate::tls::TlsFix;
use std::io;
use std::time::Duration;
use ureq::config::ConfigBuilder;
use ureq::typestate::RequestScope;

/// How long one exchange may take.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Sending the request and receiving the answer's head.
    pub head: Duration,
    /// The whole exchange (for an IP address: the answer's body after its head).
    pub whole: Duration,
}

impl Bounds {
    pub fn whole(whole: Duration) -> Bounds {
        Bounds { head: whole, whole }
    }
}

/// Bounds one request by `timeout`.
///
/// A global timeout also bounds ureq's name lookup, which it then runs on a new thread per
/// request, pooled connection or not: two thread spawns per pass of every resource. An
/// endpoint given as an IP address needs no lookup, so its phases are bounded instead
/// (sending and the answer's head within `timeout.head`, the body within `timeout.whole`).
pub fn bounded<B>(
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
pub fn watch_timeout(
    failure: TransportError,
    error: &ureq::Error,
    bounds: Bounds,
) -> TransportError {
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

pub fn classify(endpoint: &str, error: &ureq::Error, sent_client_cert: bool) -> TransportError {
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
    if let Some(explained) = crate::tls::explain(error, sent_client_cert) {
        return TransportError {
            remedy: explained.fix.map(|fix| match fix {
                TlsFix::TrustServerCa => Remedy::TrustServerCa,
                TlsFix::GiveClientCert => Remedy::GiveClientCert,
                TlsFix::CheckClientCert => Remedy::CheckClientCert,
            }),
            ..TransportError::new(TransportKind::Tls, endpoint, explained.reason)
        };
    }
    TransportError::new(kind, endpoint, describe(error))
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
}
