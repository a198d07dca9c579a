//! The v3 gateway's request and answer bodies (`POST /v3/...`), as serde types.
//!
//! Field names are the gateway's (proto field names; `TTL` and `ID` in capitals). Every
//! answer field has a default, because the gateway leaves out zero values: a range that
//! matched nothing has neither `kvs` nor `count`, a PUT event has no `type`, an empty value
//! has no `value`. Unknown fields are ignored, as the gateway itself does.

use super::wire::{self, is_empty, is_zero};
use serde::{Deserialize, Serialize};

/// `POST /v3/kv/range`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RangeRequest {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    /// Exclusive end; empty = the single key.
    #[serde(with = "wire::bytes", skip_serializing_if = "is_empty")]
    pub range_end: Vec<u8>,
    #[serde(with = "wire::int64", skip_serializing_if = "is_zero")]
    pub limit: i64,
    /// Read the data as of this revision (0 = the newest).
    #[serde(with = "wire::int64", skip_serializing_if = "is_zero")]
    pub revision: u64,
    /// Only count the keys (`count`), without sending them.
    #[serde(skip_serializing_if = "is_zero")]
    pub count_only: bool,
}

/// `POST /v3/kv/put`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PutRequest {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    #[serde(with = "wire::bytes")]
    pub value: Vec<u8>,
    /// The lease that ends the key's life (0 = none).
    #[serde(with = "wire::int64", skip_serializing_if = "is_zero")]
    pub lease: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prev_kv: bool,
}

/// `POST /v3/kv/deleterange`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeleteRangeRequest {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    #[serde(with = "wire::bytes", skip_serializing_if = "is_empty")]
    pub range_end: Vec<u8>,
    #[serde(skip_serializing_if = "is_zero")]
    pub prev_kv: bool,
}

/// `POST /v3/kv/compaction`: forgets the history before `revision` (tests use it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactionRequest {
    #[serde(with = "wire::int64")]
    pub revision: u64,
    /// Answer only once the compaction is done.
    #[serde(skip_serializing_if = "is_zero")]
    pub physical: bool,
}

/// `POST /v3/lease/grant`. The TTL field is `TTL`: a lower-case `ttl` is silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeaseGrantRequest {
    #[serde(rename = "TTL", with = "wire::int64")]
    pub ttl: i64,
}

/// `POST /v3/lease/keepalive` (one request body: one answer, then the stream ends) and
/// `POST /v3/lease/revoke`: the lease named by its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeaseIdRequest {
    #[serde(rename = "ID", with = "wire::int64")]
    pub id: i64,
}

/// `POST /v3/auth/authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthenticateRequest {
    pub name: String,
    pub password: String,
}

/// One watch in the body of `POST /v3/watch`. Several of them, concatenated, open several
/// watches on one stream; etcd numbers them 0, 1, ... in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchRequest {
    pub create_request: WatchCreateRequest,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchCreateRequest {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    #[serde(with = "wire::bytes", skip_serializing_if = "is_empty")]
    pub range_end: Vec<u8>,
    /// The first revision to report (0 = from now on).
    #[serde(with = "wire::int64", skip_serializing_if = "is_zero")]
    pub start_revision: u64,
    /// Have etcd send an empty message now and then, so silence can be told from a dead
    /// stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub progress_notify: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub prev_kv: bool,
}

/// `POST /v3/kv/txn`: if every `compare` holds, run `success`, else `failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TxnRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<Compare>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<RequestOp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<RequestOp>,
}

/// A condition on one key's current state (`key == value`, `create_revision == 0`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compare {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    pub result: CompareResult,
    #[serde(flatten)]
    pub target: CompareTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CompareResult {
    Equal,
}

/// What a [`Compare`] looks at, with the operand. Serialised as the gateway wants it:
/// `"target":"CREATE","create_revision":"0"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "target", rename_all = "UPPERCASE")]
pub enum CompareTarget {
    /// `create_revision` 0 is "the key does not exist".
    Create {
        #[serde(with = "wire::int64")]
        create_revision: u64,
    },
    Mod {
        #[serde(with = "wire::int64")]
        mod_revision: u64,
    },
    Value {
        #[serde(with = "wire::bytes")]
        value: Vec<u8>,
    },
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RequestOp {
    #[serde(rename = "request_range")]
    Range(RangeRequest),
    #[serde(rename = "request_put")]
    Put(PutRequest),
    #[serde(rename = "request_delete_range")]
    DeleteRange(DeleteRangeRequest),
}

/// The header of every answer. Only the revision matters to reconfig; a canceled watch's
/// header has none (0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Header {
    #[serde(with = "wire::int64")]
    pub revision: u64,
}

/// A key and its value at a revision, as range answers and watch events carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    #[serde(with = "wire::bytes")]
    pub key: Vec<u8>,
    #[serde(with = "wire::bytes")]
    pub value: Vec<u8>,
    #[serde(with = "wire::int64")]
    pub create_revision: u64,
    #[serde(with = "wire::int64")]
    pub mod_revision: u64,
    #[serde(with = "wire::int64")]
    pub version: u64,
    #[serde(with = "wire::int64")]
    pub lease: i64,
}

/// The answer to a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RangeResponse {
    pub header: Header,
    pub kvs: Vec<KeyValue>,
    /// More keys are in the range than `limit` let through.
    pub more: bool,
    /// How many keys the whole range holds.
    #[serde(with = "wire::int64")]
    pub count: u64,
}

/// The answer to a put.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PutResponse {
    pub header: Header,
    pub prev_kv: Option<KeyValue>,
}

/// The answer to a delete-range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DeleteRangeResponse {
    pub header: Header,
    /// How many keys were deleted (0 when none matched).
    #[serde(with = "wire::int64")]
    pub deleted: u64,
    pub prev_kvs: Vec<KeyValue>,
}

/// The answer to a lease grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LeaseGrantResponse {
    pub header: Header,
    #[serde(rename = "ID", with = "wire::int64")]
    pub id: i64,
    #[serde(rename = "TTL", with = "wire::int64")]
    pub ttl: i64,
}

/// One message of the keepalive stream: the gateway wraps the answer in `{"result": ...}`,
/// or sends `{"error": ...}` when the stream itself failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveMessage {
    pub result: Option<LeaseKeepAliveResponse>,
    pub error: Option<serde_json::Value>,
}

/// The answer to a keepalive: the lease's TTL from now on; 0 (left out) when the lease no
/// longer exists (it expired or was revoked): etcd answers that with HTTP 200, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveResponse {
    pub header: Header,
    #[serde(rename = "ID", with = "wire::int64")]
    pub id: i64,
    #[serde(rename = "TTL", with = "wire::int64")]
    pub ttl: i64,
}

/// The answer to an authenticate: the token for the `Authorization` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuthenticateResponse {
    pub header: Header,
    pub token: String,
}

/// The answer to a transaction: whether the compares held, and one answer per operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TxnResponse {
    pub header: Header,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

/// One operation's answer in a transaction; exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ResponseOp {
    pub response_range: Option<RangeResponse>,
    pub response_put: Option<PutResponse>,
    pub response_delete_range: Option<DeleteRangeResponse>,
}

/// The answer to a compaction (a header only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CompactionResponse {
    pub header: Header,
}

/// One message of a watch stream: the gateway wraps each in `{"result": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WatchResponse {
    pub header: Header,
    /// Which watch of the stream the message is about (0 is left out; -1 when etcd refused
    /// to create it).
    #[serde(with = "wire::int64")]
    pub watch_id: i64,
    pub created: bool,
    pub canceled: bool,
    /// Set when the watch was canceled because its start revision is compacted away.
    #[serde(with = "wire::int64")]
    pub compact_revision: u64,
    pub cancel_reason: String,
    pub events: Vec<WatchEvent>,
}

/// One change reported by a watch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// After a put: the key with its new value; after a delete: the key and the revision of
    /// the delete (no value).
    pub kv: KeyValue,
    /// The key before the change, when the watch asked for `prev_kv`.
    pub prev_kv: Option<KeyValue>,
}

/// An event's `type`; the gateway leaves out `PUT`, the zero value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EventKind {
    #[default]
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "DELETE")]
    Delete,
}

/// The answer to `POST /v3/cluster/member/list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MemberListResponse {
    pub members: Vec<MemberInfo>,
}

/// One member; v3 numbers members in decimal where v2 shows them in hex.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MemberInfo {
    #[serde(rename = "ID", with = "wire::int64")]
    pub id: u64,
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

/// The answer to `POST /v3/maintenance/status`: the member's view of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    pub header: Header,
    pub version: String,
    /// The leader's member id (0: none known).
    #[serde(with = "wire::int64")]
    pub leader: u64,
}
