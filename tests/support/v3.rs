//! What the v3 tests do besides the library: talk to etcd's gateway as etcdctl would, and
//! take a subscription's changes.

use super::Etcd;
use reconfig::etcd::{Op, Received, Subscription};
use std::time::Duration;

/// How long one change may take to arrive.
const CHANGE_WITHIN: Duration = Duration::from_secs(10);
/// How long a subscription must stay silent to count as quiet.
const QUIET: Duration = Duration::from_millis(300);

/// `POST` of a JSON body to etcd's v3 gateway, as etcdctl would send it (with an auth
/// token when given); the answer's body, whatever its status.
pub fn gateway(etcd: &Etcd, path: &str, body: &str, token: Option<&str>) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(&format!("{}{path}", etcd.url()));
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    request
        .send(body)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Bytes as the gateway spells them: base64.
pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// (key, value) of puts of `0`, `1`, ... to `key`, for comparing with [`receive`].
pub fn puts(key: &str, values: std::ops::Range<usize>) -> Vec<(String, String)> {
    values.map(|n| (key.to_string(), n.to_string())).collect()
}

/// Receives `count` puts, each within 10 s; (key, value) of each.
pub fn receive(changes: &mut Subscription, count: usize) -> Vec<(String, String)> {
    receive_puts(changes, count, 0)
}

/// Like [`receive`], across an etcd restart: the subscription may report the outage once
/// (its shared stream, opened again at once, found etcd down), and then goes on from the
/// last change it handed out.
pub fn receive_across_an_outage(changes: &mut Subscription, count: usize) -> Vec<(String, String)> {
    receive_puts(changes, count, 1)
}

/// Nothing more arrives within 300 ms.
pub fn assert_quiet(changes: &mut Subscription) {
    match changes.recv_timeout(QUIET) {
        Received::Quiet => {}
        other => panic!("{}: expected quiet, got {other:?}", changes.key()),
    }
}

/// `count` puts, with at most `outages` reports of an outage among them.
fn receive_puts(
    changes: &mut Subscription,
    count: usize,
    mut outages: usize,
) -> Vec<(String, String)> {
    let mut received = Vec::new();
    while received.len() < count {
        let n = received.len();
        match changes.recv_timeout(CHANGE_WITHIN) {
            Received::Change(change) => match change.op {
                Op::Put(value) => received.push((change.key, value)),
                other => panic!(
                    "{}: change {n}: expected a put, got {other:?}",
                    changes.key()
                ),
            },
            Received::Failed(error) if error.is_outage() && outages > 0 => outages -= 1,
            other => panic!(
                "{}: change {n}: expected a change, got {other:?}",
                changes.key()
            ),
        }
    }
    received
}
