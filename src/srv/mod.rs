//! DNS SRV discovery of etcd endpoints (RFC 2782).
//!
//! `wire` builds the query and reads answers with the `simple-dns` crate; `exchange` does
//! the socket I/O (UDP, TCP on truncation); `resolver` finds the servers to ask; `order`
//! sorts the targets as RFC 2782 says.

mod error;
mod exchange;
mod order;
mod resolver;
pub mod wire;

pub use error::{Failure, SrvError};
pub use order::{order, order_randomly};
pub use resolver::DNS_SERVER_ENV;

use error::Problem;
use std::net::SocketAddr;

/// One SRV record: where to connect, and its RFC 2782 priority and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Target host name, without the trailing dot.
    pub host: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// `_etcd-client._tcp.DOMAIN`, or `_etcd-client-ssl._tcp.DOMAIN` when `tls`.
pub fn domain_record(domain: &str, tls: bool) -> String {
    let service = if tls {
        "_etcd-client-ssl"
    } else {
        "_etcd-client"
    };
    format!("{service}._tcp.{}", domain.trim_end_matches('.'))
}

/// Looks up the SRV records of `name` (answer order, see [`order`]).
///
/// Asks `resolver` when given. Otherwise asks the server in the environment variable
/// `RECONFIG_DNS_SERVER` (`ip:port` or `ip`) when it is set, else each `nameserver` of
/// /etc/resolv.conf in turn until one answers. Queries go over UDP (2 tries, 2 s each) and are
/// repeated over TCP when the answer is truncated.
pub fn lookup(name: &str, resolver: Option<SocketAddr>) -> Result<Vec<SrvTarget>, SrvError> {
    let record = name.trim_end_matches('.').to_string();
    let fail = |problem| SrvError {
        record: record.clone(),
        problem,
    };
    let id = fastrand::u16(..);
    let query = wire::build_query(id, &record).map_err(|why| fail(Problem::BadName(why)))?;
    let servers = match resolver {
        Some(server) => vec![server],
        None => resolver::default_servers().map_err(|why| fail(Problem::NoServer(why)))?,
    };
    let mut failures = Vec::new();
    // Each server is asked from a socket of its own, so one id serves them all.
    for server in servers {
        let result = exchange::query_server(server, &query, id, &record);
        match result {
            Ok(targets) => return Ok(targets),
            Err(failure) => {
                let definitive = failure.is_definitive();
                failures.push((server, failure));
                if definitive {
                    break;
                }
            }
        }
    }
    Err(fail(Problem::Servers(failures)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_record_names() {
        assert_eq!(
            domain_record("example.com", false),
            "_etcd-client._tcp.example.com"
        );
        assert_eq!(
            domain_record("example.com.", true),
            "_etcd-client-ssl._tcp.example.com"
        );
    }

    #[test]
    fn bad_names_are_rejected_before_any_query() {
        let server = SocketAddr::from(([127, 0, 0, 1], 9));
        let err = lookup("_etcd._tcp..example", Some(server)).expect_err("bad name");
        assert_eq!(
            err.to_string(),
            "invalid SRV record name \"_etcd._tcp..example\": each dot-separated label must have 1 to 63 characters"
        );
    }
}
