//! Refusals of the v3 gateway and broken watch streams as neutral errors: what etcd said,
//! which request it was, and what the user can change (`Remedy`).

use super::error::{GatewayError, Refusal};
use super::stream::StreamError;
use crate::etcd::error::{Error, ErrorKind, EtcdError, Remedy, TransportError, TransportKind};
use crate::etcd::http;
use std::io;

/// What a refusal names: the endpoint that answered, the key asked about, and who asked.
pub struct Asked<'a> {
    pub endpoint: &'a str,
    pub key: &'a str,
    pub user: Option<&'a str>,
}

/// An answer with HTTP status ≥ 300 as a neutral error, and whether etcd refused the auth
/// token (fetch a new one, retry once).
pub fn from_body(asked: &Asked, status: u16, body: &[u8]) -> (Error, bool) {
    match GatewayError::parse(body) {
        Some(error) => from_gateway(asked, status, &error),
        None if status == 404 => (
            bad_answer(
                asked.endpoint,
                format!(
                    "HTTP 404 {}: does this etcd (3.4 or newer) serve the v3 JSON gateway?",
                    http::excerpt(body)
                ),
            ),
            false,
        ),
        None => (
            bad_answer(
                asked.endpoint,
                format!(
                    "HTTP {status} with a body that is not etcd's: {}",
                    http::excerpt(body)
                ),
            ),
            false,
        ),
    }
}

/// [`from_body`] for a refusal already read.
pub fn from_gateway(asked: &Asked, status: u16, error: &GatewayError) -> (Error, bool) {
    let etcd = |kind: ErrorKind| {
        Error::Etcd(EtcdError {
            kind,
            number: error.code,
            message: error.message.clone(),
            cause: String::new(),
            index: 0,
            endpoint: asked.endpoint.to_string(),
            key: asked.key.to_string(),
        })
    };
    let error = match error.refusal() {
        refusal @ (Refusal::InvalidToken | Refusal::AuthFailed) => {
            let refused = Error::Transport(auth_refusal(asked, status, error));
            return (refused, refusal == Refusal::InvalidToken);
        }
        // Not a token problem: a new token would be refused the same.
        Refusal::PermissionDenied => Error::Transport(auth_refusal(asked, status, error)),
        Refusal::HistoryGone => etcd(ErrorKind::HistoryGone),
        Refusal::LeaseNotFound => etcd(ErrorKind::NotFound),
        Refusal::NoLeader => transport(
            TransportKind::NoLeader,
            asked.endpoint,
            format!("HTTP {status}: {error}"),
        ),
        Refusal::Unavailable => transport(
            TransportKind::Disconnected,
            asked.endpoint,
            format!("HTTP {status}: {error}"),
        ),
        Refusal::AuthNotEnabled | Refusal::Other => etcd(ErrorKind::Other),
    };
    (error, false)
}

fn auth_refusal(asked: &Asked, status: u16, error: &GatewayError) -> TransportError {
    let (detail, remedy) = match asked.user {
        Some(user) => (
            format!(
                "HTTP {status}: etcd refused user {user:?}: {}",
                error.message
            ),
            Remedy::CheckCredentials,
        ),
        None => (
            format!(
                "HTTP {status}: etcd requires authentication ({})",
                error.message
            ),
            Remedy::GiveCredentials,
        ),
    };
    TransportError {
        remedy: Some(remedy),
        ..TransportError::new(TransportKind::Unauthorized, asked.endpoint, detail)
    }
}

/// Whether a read of the body failed because the request's bound passed (ureq reports
/// its own timeout inside the `io::Error`).
fn is_timeout(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::TimedOut
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)))
}

pub fn not_found(key: &str) -> Error {
    Error::Etcd(EtcdError {
        kind: ErrorKind::NotFound,
        number: 0,
        message: "Key not found".to_string(),
        cause: key.to_string(),
        index: 0,
        endpoint: String::new(),
        key: key.to_string(),
    })
}

pub fn transport(kind: TransportKind, endpoint: &str, detail: impl Into<String>) -> Error {
    Error::Transport(TransportError::new(kind, endpoint, detail))
}

pub fn bad_answer(endpoint: &str, detail: impl Into<String>) -> Error {
    transport(TransportKind::BadResponse, endpoint, detail)
}

/// A watch stream that broke: silence past the bound is the bound passing; a stream that
/// is cut or sends what is not a watch message is a failure of that endpoint.
pub fn stream_failure(endpoint: &str, error: StreamError) -> Error {
    match &error {
        StreamError::Read(e) if is_timeout(e) => transport(
            TransportKind::WatchExpired,
            endpoint,
            "watch bound passed with no change",
        ),
        StreamError::Read(_) | StreamError::Truncated { .. } => {
            transport(TransportKind::Disconnected, endpoint, error.to_string())
        }
        _ => bad_answer(endpoint, error.to_string()),
    }
}
