//! Why an SRV lookup failed, worded for people: every message names the record and the
//! DNS server asked.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why an SRV lookup failed. The message names the record and the server(s) asked.
#[derive(Debug)]
pub struct SrvError {
    pub(super) record: String,
    pub(super) problem: Problem,
}

#[derive(Debug)]
pub(super) enum Problem {
    BadName(String),
    NoServer(String),
    Servers(Vec<(SocketAddr, Failure)>),
}

/// What went wrong with one server (public for the `dns_answer` fuzz target).
#[derive(Debug)]
pub enum Failure {
    NxDomain,
    NoRecords,
    Refused,
    ServFail,
    Rcode(u16),
    Timeout(String),
    Io(io::Error),
    Malformed(String),
}

impl Failure {
    /// The name has no SRV records: asking another server of the same resolver list is pointless.
    pub(super) fn is_definitive(&self) -> bool {
        matches!(self, Failure::NxDomain | Failure::NoRecords)
    }

    pub(super) fn describe(&self, record: &str, server: SocketAddr) -> String {
        match self {
            Failure::NxDomain => format!("no SRV record {record} at {server} (NXDOMAIN)"),
            Failure::NoRecords => format!("no SRV records for {record} at {server}"),
            Failure::Refused => format!("{server} refused the SRV query for {record} (REFUSED)"),
            Failure::ServFail => {
                format!("{server} could not answer the SRV query for {record} (SERVFAIL)")
            }
            Failure::Rcode(code) => {
                format!("{server} answered the SRV query for {record} with error code {code}")
            }
            Failure::Timeout(how) => format!("no answer from {server} for SRV {record} ({how})"),
            Failure::Io(err) => format!("SRV query for {record} to {server} failed: {err}"),
            Failure::Malformed(why) => {
                format!("bad DNS answer from {server} for SRV {record}: {why}")
            }
        }
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        Failure::Io(err)
    }
}

impl fmt::Display for SrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::BadName(why) => {
                write!(f, "invalid SRV record name \"{}\": {why}", self.record)
            }
            Problem::NoServer(why) => write!(f, "cannot look up SRV {}: {why}", self.record),
            Problem::Servers(failures) => {
                let messages: Vec<String> = failures
                    .iter()
                    .map(|(server, failure)| failure.describe(&self.record, *server))
                    .collect();
                write!(f, "{}", messages.join("; "))
            }
        }
    }
}

impl std::error::Error for SrvError {}
