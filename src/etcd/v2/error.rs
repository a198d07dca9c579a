//! v2's error answers: the `errorCode` numbers, mapped to the neutral [`ErrorKind`]s, and
//! how v2 says that credentials are missing or refused.

use super::super::error::{Error, ErrorKind, EtcdError, Remedy, TransportError, TransportKind};
use super::super::http::{excerpt, Response};
use serde::Deserialize;

/// The code etcd's v2 auth answers with: "The request requires user authentication".
const UNAUTHORIZED_CODE: u32 = 110;

/// The error body etcd sends with a 4xx: `{"errorCode":100,"message":...,"cause":...,"index":N}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: u32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: u64,
}

/// The kind of a v2 `errorCode`.
pub fn kind_of(code: u32) -> ErrorKind {
    match code {
        100 => ErrorKind::NotFound,
        101 => ErrorKind::CompareFailed,
        102 => ErrorKind::IsDirectory,
        104 => ErrorKind::NotADirectory,
        105 => ErrorKind::AlreadyExists,
        107 => ErrorKind::ReadOnly,
        108 => ErrorKind::DirectoryNotEmpty,
        // The `waitIndex` is older than etcd's 1000-event history: re-read and watch again.
        401 => ErrorKind::HistoryGone,
        _ => ErrorKind::Other,
    }
}

/// Turns a 4xx/5xx answer into an etcd error (when the body is etcd's error JSON) or a
/// transport error (an auth refusal, a proxy's error page). `etcd_index` is the answer's
/// `X-Etcd-Index`, `user` who the request was sent as.
pub fn refusal(response: Response<'_>, etcd_index: u64, key: &str, user: Option<&str>) -> Error {
    let status = response.status();
    let endpoint = response.endpoint().to_string();
    let body = match response.read_all() {
        Ok(body) => body,
        Err(e) => return e,
    };
    let etcd_body = serde_json::from_slice::<ErrorBody>(&body).ok();
    if is_auth_refusal(status, etcd_body.as_ref()) {
        return Error::Transport(auth_refusal(&endpoint, status, user));
    }
    if let Some(body) = etcd_body {
        return Error::Etcd(EtcdError {
            kind: kind_of(body.error_code),
            number: body.error_code,
            message: body.message,
            cause: body.cause,
            index: if etcd_index > 0 {
                etcd_index
            } else {
                body.index
            },
            endpoint,
            key: key.to_string(),
        });
    }
    let detail = if status == 404 && body.starts_with(b"404 page not found") {
        // `--enable-v2` is etcd's own flag: the server has to be started with it.
        "HTTP 404 \"page not found\": is etcd's v2 API enabled (--enable-v2=true)?".to_string()
    } else {
        format!(
            "HTTP {status} with a body that is not etcd's: {}",
            excerpt(&body)
        )
    };
    Error::Transport(TransportError::new(
        TransportKind::BadResponse,
        &endpoint,
        detail,
    ))
}

fn auth_refusal(endpoint: &str, status: u16, user: Option<&str>) -> TransportError {
    let (detail, remedy) = match user {
        Some(user) => (
            format!(
                "HTTP {status}: etcd refused user {user:?} (wrong password, or no role that \
                 grants this key)"
            ),
            Remedy::CheckCredentials,
        ),
        None => (
            format!("HTTP {status}: etcd requires authentication"),
            Remedy::GiveCredentials,
        ),
    };
    TransportError {
        remedy: Some(remedy),
        ..TransportError::new(TransportKind::Unauthorized, endpoint, detail)
    }
}

/// etcd's v2 auth answers 401 with its own error JSON (errorCode 110), so the status alone
/// decides; a 403 is a refusal only when it is not one of etcd's key errors (102 "Not a
/// file" and 108 "Directory not empty" are 403 too).
fn is_auth_refusal(status: u16, etcd_body: Option<&ErrorBody>) -> bool {
    match (status, etcd_body) {
        (401, _) => true,
        (_, Some(body)) => body.error_code == UNAUTHORIZED_CODE,
        (403, None) => true,
        _ => false,
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
    fn error_codes_map_to_kinds() {
        assert_eq!(kind_of(100), ErrorKind::NotFound);
        assert_eq!(kind_of(401), ErrorKind::HistoryGone);
        assert_eq!(kind_of(999), ErrorKind::Other);
    }
}
