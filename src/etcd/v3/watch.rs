//! The v3 watch: the request body that opens watches on one stream, and what each message
//! of the stream means for the watcher.

use super::proto::{EventKind, WatchCreateRequest, WatchEvent, WatchRequest, WatchResponse};
use super::scope::Scope;
use super::text::lossy;

/// The body of `POST /v3/watch` opening one watch per request, in order: etcd numbers them
/// 0, 1, ... and tags every later message with that number (`watch_id`).
pub fn open_body(watches: &[WatchCreateRequest]) -> Vec<u8> {
    let mut body = Vec::new();
    for watch in watches {
        let request = WatchRequest {
            create_request: watch.clone(),
        };
        // Serialising plain structs of bytes, integers and flags into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &request);
    }
    body
}

/// A watch of `scope` reporting every change after `revision`, with progress
/// notifications so that a silent stream can be told from a dead one.
pub fn watch_after(scope: &Scope, revision: u64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: scope.start(),
        range_end: scope.end(),
        start_revision: revision + 1,
        progress_notify: true,
        prev_kv: false,
    }
}

/// What one watch message tells the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The watch is in place; it reports changes after `revision` unless it was asked to
    /// start earlier.
    Created { watch_id: i64, revision: u64 },
    /// Changes, in order; the store was at `revision` when they were sent.
    Changes {
        watch_id: i64,
        revision: u64,
        changes: Vec<KeyChange>,
    },
    /// Nothing changed up to `revision`: the stream is alive.
    Progress { watch_id: i64, revision: u64 },
    /// The watch is over. With `compact_revision`, the changes it should report are
    /// compacted away: read again and watch from the new revision. Otherwise etcd refused
    /// it (`reason`, e.g. an invalid auth token).
    Canceled {
        watch_id: i64,
        compact_revision: u64,
        reason: String,
    },
}

/// One key's change, keys and values as text (see [`super::text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    /// The new value; `None` for a delete (including a lease's expiry).
    pub value: Option<String>,
    /// The value before, when the watch asked for it (`prev_kv`) and the key had one.
    pub prev_value: Option<String>,
    /// The revision of the change.
    pub mod_revision: u64,
}

impl Notice {
    pub fn of(message: &WatchResponse) -> Notice {
        let watch_id = message.watch_id;
        let revision = message.header.revision;
        if message.canceled {
            return Notice::Canceled {
                watch_id,
                compact_revision: message.compact_revision,
                reason: message.cancel_reason.clone(),
            };
        }
        if message.created {
            return Notice::Created { watch_id, revision };
        }
        if message.events.is_empty() {
            return Notice::Progress { watch_id, revision };
        }
        Notice::Changes {
            watch_id,
            revision,
            changes: message.events.iter().map(KeyChange::of).collect(),
        }
    }
}

impl KeyChange {
    pub fn of(event: &WatchEvent) -> KeyChange {
        KeyChange {
            key: lossy(&event.kv.key).into_owned(),
            value: match event.kind {
                EventKind::Put => Some(lossy(&event.kv.value).into_owned()),
                EventKind::Delete => None,
            },
            prev_value: event
                .prev_kv
                .as_ref()
                .map(|prev| lossy(&prev.value).into_owned()),
            mod_revision: event.kv.mod_revision,
        }
    }
}
