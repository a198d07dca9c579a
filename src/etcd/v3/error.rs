//! What the v3 gateway says when it refuses a request, and what reconfig does about it.
//!
//! A refused request answers (HTTP 400, 401, 404, 500, 503, ...) with
//! `{"error":"<msg>","message":"<msg>","code":<gRPC code>}`. The gRPC code alone is too
//! coarse (11 is both "compacted" and "future revision", 3 covers a missing key, a bad
//! password and a missing token), so the kind is told by code and message together.

use serde::Deserialize;
use std::fmt;

/// A refusal from the gateway, as its body tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// The gRPC status code.
    pub code: u32,
    /// The gateway repeats the text in `error` and `message`; either one is enough.
    pub message: String,
}

/// gRPC status codes the gateway uses.
const INVALID_ARGUMENT: u32 = 3;
const PERMISSION_DENIED: u32 = 7;
const FAILED_PRECONDITION: u32 = 9;
const NOT_FOUND: u32 = 5;
const OUT_OF_RANGE: u32 = 11;
const UNAVAILABLE: u32 = 14;
const UNAUTHENTICATED: u32 = 16;

/// The whole cancel reason of a watch etcd 3.5 does not permit: no role grants the key,
/// or (as 3.5 cannot tell a watch apart) the token expired.
const WATCH_NOT_PERMITTED: &str = "etcdserver: permission denied";

/// What a refusal means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The auth token is invalid or expired: authenticate again, then retry once.
    InvalidToken,
    /// Auth is on and no token was sent, or the user or password is wrong.
    AuthFailed,
    /// The user is known but no role of theirs grants this key (v2 says 401 for this too).
    PermissionDenied,
    /// Credentials were given but etcd has auth off: requests need no token.
    AuthNotEnabled,
    /// The revision asked for is compacted away, or newer than the store (etcd was
    /// restored from an older backup): the history is gone, read again.
    HistoryGone,
    /// The lease asked for does not exist (it expired).
    LeaseNotFound,
    /// The cluster has no leader at the moment (`leader changed`, `no leader`: an
    /// election); a read asked again a moment later is answered.
    NoLeader,
    /// The member cannot serve now (its gateway lost its own gRPC connection, it is
    /// shutting down): try another endpoint.
    Unavailable,
    /// Anything else: the request itself is wrong.
    Other,
}

impl GatewayError {
    /// The refusal in a body, or `None` when the body is not one (not a JSON object with
    /// a message).
    pub fn parse(body: &[u8]) -> Option<GatewayError> {
        #[derive(Deserialize)]
        struct Both {
            #[serde(default)]
            code: u32,
            #[serde(default)]
            error: String,
            #[serde(default)]
            message: String,
        }
        let both: Both = serde_json::from_slice(body).ok()?;
        let message = if both.message.is_empty() {
            both.error
        } else {
            both.message
        };
        if message.is_empty() {
            return None;
        }
        Some(GatewayError {
            code: both.code,
            message,
        })
    }

    /// The refusal a watch was canceled with, from its `cancel_reason` (`rpc error: code =
    /// Unauthenticated desc = etcdserver: invalid auth token`): etcd refuses a watch with
    /// HTTP 200 and a canceled watch, naming the gRPC code only by name.
    pub fn from_cancel_reason(reason: &str) -> GatewayError {
        let code = match reason
            .split("code = ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        {
            Some("InvalidArgument") => INVALID_ARGUMENT,
            Some("NotFound") => NOT_FOUND,
            Some("FailedPrecondition") => FAILED_PRECONDITION,
            Some("OutOfRange") => OUT_OF_RANGE,
            Some("Unavailable") => UNAVAILABLE,
            Some("Unauthenticated") => UNAUTHENTICATED,
            Some("PermissionDenied") => PERMISSION_DENIED,
            // etcd 3.5 cancels a watch it does not permit with the bare text, no code.
            None if reason == WATCH_NOT_PERMITTED => PERMISSION_DENIED,
            _ => 0,
        };
        let message = reason.split("desc = ").nth(1).unwrap_or(reason);
        GatewayError {
            code,
            message: message.to_string(),
        }
    }

    pub fn refusal(&self) -> Refusal {
        let says = |text: &str| self.message.contains(text);
        match self.code {
            UNAUTHENTICATED => Refusal::InvalidToken,
            PERMISSION_DENIED => Refusal::PermissionDenied,
            OUT_OF_RANGE if says("compacted") || says("future revision") => Refusal::HistoryGone,
            NOT_FOUND if says("lease not found") => Refusal::LeaseNotFound,
            UNAVAILABLE if says("leader") => Refusal::NoLeader,
            UNAVAILABLE => Refusal::Unavailable,
            FAILED_PRECONDITION if says("authentication is not enabled") => Refusal::AuthNotEnabled,
            INVALID_ARGUMENT if says("user name is empty") || says("authentication failed") => {
                Refusal::AuthFailed
            }
            _ => Refusal::Other,
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} (gRPC code {})", self.message, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    fn refusal(body: &str) -> Refusal {
        GatewayError::parse(body.as_bytes())
            .expect("a refusal")
            .refusal()
    }

    #[test]
    fn refusals_observed_on_etcd_3_4_are_told_apart() {
        assert_eq!(refusal(fixtures::ERROR_COMPACTED), Refusal::HistoryGone);
        assert_eq!(
            refusal(fixtures::ERROR_FUTURE_REVISION),
            Refusal::HistoryGone
        );
        assert_eq!(
            refusal(fixtures::ERROR_INVALID_TOKEN),
            Refusal::InvalidToken
        );
        assert_eq!(refusal(fixtures::ERROR_NO_USER), Refusal::AuthFailed);
        assert_eq!(refusal(fixtures::ERROR_BAD_PASSWORD), Refusal::AuthFailed);
        assert_eq!(
            refusal(fixtures::ERROR_PERMISSION_DENIED),
            Refusal::PermissionDenied
        );
        assert_eq!(
            refusal(fixtures::ERROR_LEASE_NOT_FOUND),
            Refusal::LeaseNotFound
        );
        assert_eq!(
            refusal(fixtures::ERROR_AUTH_NOT_ENABLED),
            Refusal::AuthNotEnabled
        );
        assert_eq!(refusal(fixtures::ERROR_NO_KEY), Refusal::Other);
        assert_eq!(refusal(fixtures::ERROR_BAD_JSON), Refusal::Other);
        assert_eq!(refusal(fixtures::ERROR_BAD_BASE64), Refusal::Other);
        assert_eq!(
            refusal(r#"{"error":"connection closed","message":"connection closed","code":14}"#),
            Refusal::Unavailable
        );
        assert_eq!(refusal(fixtures::ERROR_LEADER_CHANGED), Refusal::NoLeader);
    }

    #[test]
    fn a_canceled_watch_is_refused_by_the_code_in_its_reason() {
        let reason = |stream: &str| -> String {
            let message = stream.lines().next().expect("a message");
            let value: serde_json::Value = serde_json::from_str(message).expect("json");
            value["result"]["cancel_reason"]
                .as_str()
                .expect("reason")
                .to_string()
        };
        let bogus = GatewayError::from_cancel_reason(&reason(fixtures::WATCH_BOGUS_TOKEN));
        assert_eq!(bogus.refusal(), Refusal::InvalidToken);
        assert_eq!(
            bogus.to_string(),
            "etcdserver: invalid auth token (gRPC code 16)"
        );
        let none = GatewayError::from_cancel_reason(&reason(fixtures::WATCH_NO_TOKEN));
        assert_eq!(none.refusal(), Refusal::AuthFailed);
        // etcd 3.5.1, a watch with an expired token or on a key no role grants.
        let denied = GatewayError::from_cancel_reason("etcdserver: permission denied");
        assert_eq!(denied.refusal(), Refusal::PermissionDenied);
        let other = GatewayError::from_cancel_reason("gone");
        assert_eq!((other.code, other.message.as_str()), (0, "gone"));
    }

    #[test]
    fn the_message_and_code_name_the_refusal() {
        let error = GatewayError::parse(fixtures::ERROR_COMPACTED.as_bytes()).expect("refusal");
        assert_eq!(
            error.to_string(),
            "etcdserver: mvcc: required revision has been compacted (gRPC code 11)"
        );
    }

    #[test]
    fn a_body_that_is_not_a_refusal_is_none() {
        for body in [
            "404 page not found\n",
            "{}",
            "[1]",
            "",
            fixtures::RANGE_MISSING,
        ] {
            assert_eq!(GatewayError::parse(body.as_bytes()), None, "{body}");
        }
    }
}
