//! Answers of a real etcd 3.4.23 (Debian bookworm), v3 only (`--enable-v2=false`),
//! captured with curl on 2026-12-02 and pasted unchanged. The requests are in the comments
//! (keys and values decoded).

/// put `/app/db/host` = `10.0.0.3` with `prev_kv` (it held `10.0.0.2`).
pub const PUT_PREV_KV: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"7","raft_term":"2"},"prev_kv":{"key":"L2FwcC9kYi9ob3N0","create_revision":"3","mod_revision":"3","version":"1","value":"MTAuMC4wLjI="}}"#;

/// put `/app` = `root`.
pub const PUT: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"2","raft_term":"2"}}"#;

/// range `/app` (the single key).
pub const RANGE_ONE: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"8","raft_term":"2"},"kvs":[{"key":"L2FwcA==","create_revision":"2","mod_revision":"2","version":"1","value":"cm9vdA=="}],"count":"1"}"#;

/// range `/app/` .. `/app0`, sorted by key: `/app/empty` holds the empty value (no
/// `value` field).
pub const RANGE_PREFIX: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"8","raft_term":"2"},"kvs":[{"key":"L2FwcC9kYi9ob3N0","create_revision":"3","mod_revision":"7","version":"2","value":"MTAuMC4wLjM="},{"key":"L2FwcC9kYi9wb3J0","create_revision":"4","mod_revision":"4","version":"1","value":"NTQzMg=="},{"key":"L2FwcC9lbXB0eQ==","create_revision":"5","mod_revision":"5","version":"1"}],"count":"3"}"#;

/// The same range with `limit` 2: first page.
pub const RANGE_PAGE_1: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"8","raft_term":"2"},"kvs":[{"key":"L2FwcC9kYi9ob3N0","create_revision":"3","mod_revision":"7","version":"2","value":"MTAuMC4wLjM="},{"key":"L2FwcC9kYi9wb3J0","create_revision":"4","mod_revision":"4","version":"1","value":"NTQzMg=="}],"more":true,"count":"3"}"#;

/// Second page: key `/app/db/port\0`, `revision` 8, asked after `/app/zz` was put at
/// revision 9: the header shows the current revision 9, the data is as of 8 (no `/app/zz`).
pub const RANGE_PAGE_2: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"9","raft_term":"2"},"kvs":[{"key":"L2FwcC9lbXB0eQ==","create_revision":"5","mod_revision":"5","version":"1"}],"count":"1"}"#;

/// range `/nope`: nothing matched, so no `kvs` and no `count`.
pub const RANGE_MISSING: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"8","raft_term":"2"}}"#;

/// range `/bin/x`, put as the bytes `ff fe 61 62 e2 82` (not UTF-8).
pub const RANGE_NOT_UTF8: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"8","raft_term":"2"},"kvs":[{"key":"L2Jpbi94","create_revision":"8","mod_revision":"8","version":"1","value":"//5hYuKC"}],"count":"1"}"#;

/// range `/t/a`, put with a lease.
pub const RANGE_LEASED: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"10","raft_term":"2"},"kvs":[{"key":"L3QvYQ==","create_revision":"10","mod_revision":"10","version":"1","value":"eA==","lease":"2655331806435365397"}],"count":"1"}"#;

/// lease grant `{"TTL":60}`.
pub const LEASE_GRANT: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"9","raft_term":"2"},"ID":"2655331806435365397","TTL":"60"}"#;

/// `POST /v3/lease/keepalive {"ID":"3761246991823803143"}` on a live lease (etcd 3.4.23).
pub const LEASE_KEEPALIVE: &str = "{\"result\":{\"header\":{\"cluster_id\":\"3397744812459331135\",\"member_id\":\"2657891847502279730\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"3761246991823803143\",\"TTL\":\"2\"}}\n";
/// The same for a lease that does not exist (expired): HTTP 200, no TTL.
pub const LEASE_KEEPALIVE_GONE: &str = "{\"result\":{\"header\":{\"cluster_id\":\"3397744812459331135\",\"member_id\":\"2657891847502279730\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"12345\"}}\n";

/// deleterange `/d/` .. `/d0` (two keys).
pub const DELETE_PREFIX: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"14","raft_term":"2"},"deleted":"2"}"#;

/// deleterange `/appX` once more: nothing deleted, header only.
pub const DELETE_NOTHING: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"11","raft_term":"2"}}"#;

/// txn: if `/m/a`'s create_revision is 0, put `/m/a` = `v`, else range `/m/a`: first run.
pub const TXN_SUCCEEDED: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"15","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"15"}}}]}"#;

/// The same txn again: the key exists, so the failure branch (range) ran.
pub const TXN_FAILED: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"15","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"15"},"kvs":[{"key":"L20vYQ==","create_revision":"15","mod_revision":"15","version":"1","value":"dg=="}],"count":"1"}}]}"#;

/// auth/authenticate `root` / `pw`.
pub const AUTHENTICATED: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"24","raft_term":"2"},"token":"bUpPcMVQYahvOver.40"}"#;

/// HTTP 400: range at revision 5 after a compaction at 20.
pub const ERROR_COMPACTED: &str = r#"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#;
/// HTTP 400: range at revision 999 when the store is at 9.
pub const ERROR_FUTURE_REVISION: &str = r#"{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}"#;
/// HTTP 401: `Authorization: bogus.1`.
pub const ERROR_INVALID_TOKEN: &str = r#"{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}"#;
/// HTTP 400: auth on, no `Authorization` header.
pub const ERROR_NO_USER: &str = r#"{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}"#;
/// HTTP 400: authenticate with a wrong password.
pub const ERROR_BAD_PASSWORD: &str = r#"{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}"#;
/// A range on a key no role of the authenticated user grants (etcd 3.4.23; code and
/// message as observed, the HTTP status not recorded).
pub const ERROR_PERMISSION_DENIED: &str = r#"{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7}"#;
/// HTTP 404: put with lease 12345, which does not exist.
pub const ERROR_LEASE_NOT_FOUND: &str = r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
/// HTTP 400: put `{}`.
pub const ERROR_NO_KEY: &str = r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#;
/// HTTP 400: put `{"key":"L2Jpbi94", bad}`.
pub const ERROR_BAD_JSON: &str = r#"{"error":"invalid character 'b' looking for beginning of object key string","message":"invalid character 'b' looking for beginning of object key string","code":3}"#;
/// HTTP 400: put `{"key":"!!!"}`.
pub const ERROR_BAD_BASE64: &str = r#"{"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":3}"#;

/// One stream, two watches: `/w/` .. `/w0` (prev_kv, progress_notify) and `/w2`, etcd
/// started with `--experimental-watch-progress-notify-interval=1s`. Then: put /w/a=1,
/// put /w/a=2, put /w2=other, put /w/e="", delete /w/a, txn putting /w/b=B and /w/c=C,
/// two progress notifications.
pub const WATCH_STREAM: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"16","raft_term":"2"},"created":true}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"16","raft_term":"2"},"watch_id":"1","created":true}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"17","raft_term":"2"},"events":[{"kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"17","version":"1","value":"MQ=="}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"18","raft_term":"2"},"events":[{"kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"18","version":"2","value":"Mg=="},"prev_kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"17","version":"1","value":"MQ=="}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"19","raft_term":"2"},"watch_id":"1","events":[{"kv":{"key":"L3cy","create_revision":"19","mod_revision":"19","version":"1","value":"b3RoZXI="}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"20","raft_term":"2"},"events":[{"kv":{"key":"L3cvZQ==","create_revision":"20","mod_revision":"20","version":"1"}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"21","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L3cvYQ==","mod_revision":"21"},"prev_kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"18","version":"2","value":"Mg=="}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"},"events":[{"kv":{"key":"L3cvYg==","create_revision":"22","mod_revision":"22","version":"1","value":"Qg=="}},{"kv":{"key":"L3cvYw==","create_revision":"22","mod_revision":"22","version":"1","value":"Qw=="}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"}}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"}}}"#,
    "\n",
);

/// Watch `/w/` .. `/w0` from `start_revision` 17, in history: every past event in one
/// message.
pub const WATCH_HISTORY: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"},"created":true}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"},"events":[{"kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"17","version":"1","value":"MQ=="}},{"kv":{"key":"L3cvYQ==","create_revision":"17","mod_revision":"18","version":"2","value":"Mg=="}},{"kv":{"key":"L3cvZQ==","create_revision":"20","mod_revision":"20","version":"1"}},{"type":"DELETE","kv":{"key":"L3cvYQ==","mod_revision":"21"}},{"kv":{"key":"L3cvYg==","create_revision":"22","mod_revision":"22","version":"1","value":"Qg=="}},{"kv":{"key":"L3cvYw==","create_revision":"22","mod_revision":"22","version":"1","value":"Qw=="}}]}}"#,
    "\n",
);

/// Watch from `start_revision` 10 after a compaction at 20: created, then canceled.
pub const WATCH_COMPACTED: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"},"created":true}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","raft_term":"2"},"canceled":true,"compact_revision":"20"}}"#,
    "\n",
);

/// Watch `/lease/` .. `/lease0`; `/lease/k` put with a 2 s lease, which then expired: the
/// expiry is a DELETE event.
pub const WATCH_LEASE_EXPIRY: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"22","raft_term":"2"},"created":true}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"23","raft_term":"2"},"events":[{"kv":{"key":"L2xlYXNlL2s=","create_revision":"23","mod_revision":"23","version":"1","value":"dg==","lease":"2655331806435365422"}}]}}"#,
    "\n",
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"24","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L2xlYXNlL2s=","mod_revision":"24"}}]}}"#,
    "\n",
);

/// Watch with auth on and no token (HTTP 200): a watch created and canceled at once.
pub const WATCH_NO_TOKEN: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"24","raft_term":"2"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = InvalidArgument desc = etcdserver: user name is empty"}}"#,
    "\n",
);

/// Watch with `Authorization: bogus.1` (HTTP 200).
pub const WATCH_BOGUS_TOKEN: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"24","raft_term":"2"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}}"#,
    "\n",
);

/// etcd stopped with SIGTERM under an open watch: the last chunk, no trailing newline.
pub const WATCH_SHUTDOWN: &str = concat!(
    r#"{"result":{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"24","raft_term":"2"},"created":true}}"#,
    "\n",
    r#"{"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}}"#,
);

/// Watch body `{"create_request":{"key":"!!"}}`: HTTP 500 with this body (Content-Length).
pub const WATCH_BAD_REQUEST: &str = r#"{"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":2}"#;

/// cluster/member/list `{}` (a one-member cluster).
pub const MEMBER_LIST: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","raft_term":"2"},"members":[{"ID":"15548778401593894105","name":"t1","peerURLs":["http://127.0.0.1:36608"],"clientURLs":["http://127.0.0.1:36607"]}]}"#;

/// maintenance/status `{}`.
pub const STATUS: &str = r#"{"header":{"cluster_id":"14610327080262993120","member_id":"15548778401593894105","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"15548778401593894105","raftIndex":"4","raftTerm":"2","raftAppliedIndex":"4","dbSizeInUse":"16384"}"#;

/// HTTP 503: kv/range on a member of a 3-member cluster whose leader was just killed (the
/// read waited for the election, about 2.5 s, then was refused; asked again, answered).
pub const ERROR_LEADER_CHANGED: &str =
    r#"{"error":"etcdserver: leader changed","message":"etcdserver: leader changed","code":14}"#;

/// HTTP 400: auth/authenticate while auth is off.
pub const ERROR_AUTH_NOT_ENABLED: &str = r#"{"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9}"#;
