//! Errors of the etcd client: etcd's own `errorCode`s, typed, kept apart from transport
//! failures, so callers can tell "the key is missing" from "etcd is unreachable".

use std::fmt;

/// etcd's `errorCode` values that callers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    KeyNotFound,
    CompareFailed,
    NotAFile,
    NotADirectory,
    KeyExists,
    RootReadOnly,
    DirectoryNotEmpty,
    /// The `waitIndex` is older than etcd's 1000-event history: re-read and watch again.
    EventIndexCleared,
    Other(u32),
}

impl ErrorCode {
    pub fn from_number(code: u32) -> ErrorCode {
        match code {
            100 => ErrorCode::KeyNotFound,
            101 => ErrorCode::CompareFailed,
            102 => ErrorCode::NotAFile,
            104 => ErrorCode::NotADirectory,
            105 => ErrorCode::KeyExists,
            107 => ErrorCode::RootReadOnly,
            108 => ErrorCode::DirectoryNotEmpty,
            401 => ErrorCode::EventIndexCleared,
            other => ErrorCode::Other(other),
        }
    }
}

/// An error etcd itself reported for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdError {
    pub code: ErrorCode,
    pub number: u32,
    pub message: String,
    pub cause: String,
    /// `X-Etcd-Index` (or the body's `index`) when etcd answered.
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
    /// TLS failed: certificate, name, or client certificate.
    Tls,
    /// The answer was not what etcd sends: not JSON, truncated JSON, an HTML error page.
    BadResponse,
    /// HTTP 401/403: credentials missing or refused.
    Unauthorized,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub kind: TransportKind,
    pub endpoint: String,
    pub detail: String,
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
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Etcd(e) => Some(e.code),
            _ => None,
        }
    }

    pub fn is_key_not_found(&self) -> bool {
        self.code() == Some(ErrorCode::KeyNotFound)
    }

    pub fn is_index_cleared(&self) -> bool {
        self.code() == Some(ErrorCode::EventIndexCleared)
    }

    /// Whether no endpoint answered at all (refused, cut off, silent): etcd is down or out
    /// of reach, as opposed to answering with an error or refusing the credentials.
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
        match self.code {
            ErrorCode::KeyNotFound => write!(f, "key not found: {}", self.key),
            ErrorCode::KeyExists => write!(f, "key already exists: {}", self.key),
            ErrorCode::NotAFile => write!(
                f,
                "{} is a directory (etcd error 102 \"{}\"); use -r to act on the whole tree",
                self.cause, self.message
            ),
            ErrorCode::NotADirectory => write!(
                f,
                "not a directory: {} (etcd error 104: a parent of the key is a value)",
                self.cause
            ),
            ErrorCode::DirectoryNotEmpty => write!(
                f,
                "directory not empty: {} (use -r to delete it with everything under it)",
                self.cause
            ),
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
                f.write_str("); check that etcd runs and --endpoints/--host/--port/--srv")
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
