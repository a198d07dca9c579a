//! Errors of the etcd client in terms every etcd API shares: what went wrong ([`ErrorKind`])
//! and where, kept apart from how each API numbers its errors (see `v2::error`), so callers
//! can tell "the key is missing" from "etcd is unreachable" without knowing the API.

use std::fmt;

/// What went wrong, for callers deciding what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No endpoint answered: refused, cut off, timed out, TLS failed.
    Unreachable,
    /// etcd refused the credentials, or they grant no access to the key.
    Refused,
    /// What answered was not what etcd sends (not JSON, truncated, a proxy's page).
    BadAnswer,
    /// A watch's bound passed with no event: not a failure, read again.
    WatchExpired,
    NotFound,
    /// A write that needed the key to be absent found it.
    AlreadyExists,
    /// A write conditional on the current value or index found another.
    CompareFailed,
    /// The key is a directory where a value was expected (v2).
    IsDirectory,
    /// A parent of the key holds a value (v2).
    NotADirectory,
    /// A directory to delete has children (v2).
    DirectoryNotEmpty,
    /// The key cannot be written (v2's root).
    ReadOnly,
    /// The index asked for is no longer in etcd's history, or etcd went back below it
    /// (wiped, restored): read again and watch from the new index.
    HistoryGone,
    /// etcd answered with an error none of the above names.
    Other,
    /// The client was shut down.
    Shutdown,
    /// A caller error caught before any request.
    InvalidArgument,
}

/// An error etcd itself answered a request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdError {
    pub kind: ErrorKind,
    /// The API's own number for the error (v2's `errorCode`), for display.
    pub number: u32,
    pub message: String,
    pub cause: String,
    /// The store index when etcd answered.
    pub index: u64,
    pub endpoint: String,
    /// The key the request was about (etcd's `cause` may name only a missing parent).
    pub key: String,
}

/// Why a request did not get an answer from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Nothing was sent: refused, unresolvable, connect timeout, TLS handshake.
    Connect,
    /// The request went out but no complete answer came back in time.
    Timeout,
    /// A watch's bound passed with no event; the endpoint answered. Not a failure: the
    /// caller reads again.
    WatchExpired,
    /// The connection closed before the answer was complete.
    Disconnected,
    /// The member answered that the cluster has no leader at the moment (an election).
    NoLeader,
    /// TLS failed: certificate, name, or client certificate.
    Tls,
    /// The answer was not what etcd sends: not JSON, truncated JSON, an HTML error page.
    BadResponse,
    /// Credentials missing or refused.
    Unauthorized,
    Other,
}

/// What the user can change to get past a failure. The front end words it in its own
/// terms (its flag names); this layer only says what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The server's certificate is from a CA not trusted: give the CA.
    TrustServerCa,
    /// The server wants a client certificate and none was given.
    GiveClientCert,
    /// The server refused the client certificate given.
    CheckClientCert,
    /// etcd wants credentials and none were given.
    GiveCredentials,
    /// etcd refused the credentials given.
    CheckCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub endpoint: String,
    pub detail: String,
    pub remedy: Option<Remedy>,
}

impl TransportError {
    pub fn new(kind: TransportKind, endpoint: &str, detail: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            endpoint: endpoint.to_string(),
            detail: detail.into(),
            remedy: None,
        }
    }

    fn error_kind(&self) -> ErrorKind {
        match self.kind {
            TransportKind::Unauthorized => ErrorKind::Refused,
            TransportKind::WatchExpired => ErrorKind::WatchExpired,
            TransportKind::BadResponse => ErrorKind::BadAnswer,
            TransportKind::Connect
            | TransportKind::Timeout
            | TransportKind::Disconnected
            | TransportKind::NoLeader
            | TransportKind::Tls
            | TransportKind::Other => ErrorKind::Unreachable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Etcd(EtcdError),
    Transport(TransportError),
    /// Every endpoint failed; one entry per endpoint tried, in order.
    Unavailable(Vec<TransportError>),
    /// The client was shut down (the process is stopping or reloading).
    Shutdown,
    /// A caller error caught before any request, e.g. a key not starting with `/`.
    InvalidArgument(String),
    /// A watch asked for an index etcd has not reached and, its own index being lower,
    /// may never reach: etcd was wiped or restored from a backup. Read again.
    IndexWentBack {
        endpoint: String,
        etcd_index: u64,
        wait_index: u64,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Etcd(e) => e.kind,
            Error::Transport(e) => e.error_kind(),
            Error::Unavailable(_) => ErrorKind::Unreachable,
            Error::Shutdown => ErrorKind::Shutdown,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::IndexWentBack { .. } => ErrorKind::HistoryGone,
        }
    }

    pub fn is_key_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Whether the index watched from is gone from etcd's history: read again.
    pub fn is_history_gone(&self) -> bool {
        self.kind() == ErrorKind::HistoryGone
    }

    /// Whether etcd gave no answer to act on: no endpoint answered, TLS failed, the
    /// credentials were refused, or what answered was not etcd. The one definition of
    /// "etcd unreachable", for the daemon's log and both binaries' exit codes.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unreachable | ErrorKind::Refused | ErrorKind::BadAnswer
        ) && matches!(self, Error::Transport(_) | Error::Unavailable(_))
    }

    /// Whether no endpoint answered at all (refused, cut off, silent): etcd is down or out
    /// of reach, as opposed to answering with an error or refusing the credentials. Such
    /// an outage ends for every caller at once (`Client::await_recovery`).
    pub fn is_outage(&self) -> bool {
        let silent = |e: &TransportError| {
            matches!(
                e.kind,
                TransportKind::Connect | TransportKind::Timeout | TransportKind::Disconnected
            )
        };
        match self {
            Error::Transport(e) => silent(e),
            Error::Unavailable(errors) => !errors.is_empty() && errors.iter().all(silent),
            _ => false,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "cannot connect",
            TransportKind::Timeout => "timed out",
            TransportKind::WatchExpired => "watch ended with no event",
            TransportKind::Disconnected => "connection closed",
            TransportKind::NoLeader => "no leader",
            TransportKind::Tls => "TLS failed",
            TransportKind::BadResponse => "bad response",
            TransportKind::Unauthorized => "unauthorized",
            TransportKind::Other => "request failed",
        })
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.endpoint, self.kind, self.detail)
    }
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::NotFound => write!(f, "key not found: {}", self.key),
            ErrorKind::AlreadyExists => write!(f, "key already exists: {}", self.key),
            ErrorKind::IsDirectory => write!(
                f,
                "{} is a directory (etcd error {} \"{}\")",
                self.cause, self.number, self.message
            ),
            ErrorKind::NotADirectory => write!(
                f,
                "not a directory: {} (etcd error {}: a parent of the key is a value)",
                self.cause, self.number
            ),
            ErrorKind::DirectoryNotEmpty => write!(f, "directory not empty: {}", self.cause),
            _ => write!(
                f,
                "etcd error {} from {}: {} ({})",
                self.number, self.endpoint, self.message, self.cause
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Etcd(e) => e.fmt(f),
            Error::Transport(e) => e.fmt(f),
            Error::Unavailable(errors) => {
                f.write_str("no etcd endpoint answered (")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    e.fmt(f)?;
                }
                f.write_str(")")
            }
            Error::Shutdown => f.write_str("etcd client shut down"),
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::IndexWentBack {
                endpoint,
                etcd_index,
                wait_index,
            } => write!(
                f,
                "{endpoint}: etcd's index {etcd_index} is below the index {wait_index} being \
                 waited for: etcd was wiped or restored from a backup; read the key again"
            ),
        }
    }
}

impl std::error::Error for Error {}
