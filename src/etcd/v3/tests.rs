//! The bodies against real etcd 3.4.23 answers (see `fixtures`), and the requests against
//! what the gateway was sent when those answers were captured.

use super::fixtures;
use super::proto::*;
use super::scope::Scope;
use super::stream::{Message, MessageReader, StreamError};
use super::watch::{open_body, watch_after, KeyChange, Notice};
use std::io::{self, Read};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serialisable")
}

#[test]
fn requests_are_spelled_as_the_gateway_expects() {
    let put = PutRequest {
        key: b"/t/a".to_vec(),
        value: b"x".to_vec(),
        lease: 2655331806435365397,
        prev_kv: false,
    };
    assert_eq!(
        json(&put),
        r#"{"key":"L3QvYQ==","value":"eA==","lease":"2655331806435365397"}"#
    );
    let empty = PutRequest {
        key: b"/app/empty".to_vec(),
        ..Default::default()
    };
    assert_eq!(json(&empty), r#"{"key":"L2FwcC9lbXB0eQ==","value":""}"#);
    let delete = DeleteRangeRequest {
        key: b"/d/".to_vec(),
        range_end: b"/d0".to_vec(),
        prev_kv: false,
    };
    assert_eq!(json(&delete), r#"{"key":"L2Qv","range_end":"L2Qw"}"#);
    assert_eq!(json(&LeaseGrantRequest { ttl: 60 }), r#"{"TTL":"60"}"#);
    let compaction = CompactionRequest {
        revision: 20,
        physical: true,
    };
    assert_eq!(json(&compaction), r#"{"revision":"20","physical":true}"#);
    let authenticate = AuthenticateRequest {
        name: "root".into(),
        password: "pw".into(),
    };
    assert_eq!(json(&authenticate), r#"{"name":"root","password":"pw"}"#);
}

#[test]
fn a_watch_body_concatenates_one_create_request_per_watch() {
    let body = open_body(&[
        watch_after(&Scope::new("/w", true), 16),
        watch_after(&Scope::new("/w2", false), 16),
    ]);
    assert_eq!(
        String::from_utf8(body).expect("json is UTF-8"),
        concat!(
            r#"{"create_request":{"key":"L3c=","range_end":"L3cw","start_revision":"17","progress_notify":true}}"#,
            r#"{"create_request":{"key":"L3cy","start_revision":"17","progress_notify":true}}"#
        )
    );
}

#[test]
fn answers_decode_with_omitted_zero_fields() {
    let range: RangeResponse = serde_json::from_str(fixtures::RANGE_PREFIX).expect("range");
    assert_eq!(
        (range.header.revision, range.count, range.more),
        (8, 3, false)
    );
    let keys: Vec<&[u8]> = range.kvs.iter().map(|kv| kv.key.as_slice()).collect();
    assert_eq!(keys, [&b"/app/db/host"[..], b"/app/db/port", b"/app/empty"]);
    assert_eq!(range.kvs[0].value, b"10.0.0.3");
    assert_eq!(range.kvs[2].value, b"", "an empty value has no field");
    assert_eq!(
        (range.kvs[0].create_revision, range.kvs[0].mod_revision),
        (3, 7)
    );

    let missing: RangeResponse = serde_json::from_str(fixtures::RANGE_MISSING).expect("range");
    assert_eq!(
        (missing.kvs.len(), missing.count, missing.header.revision),
        (0, 0, 8)
    );

    let page: RangeResponse = serde_json::from_str(fixtures::RANGE_PAGE_1).expect("range");
    assert!(page.more);

    let leased: RangeResponse = serde_json::from_str(fixtures::RANGE_LEASED).expect("range");
    assert_eq!(leased.kvs[0].lease, 2655331806435365397);

    let put: PutResponse = serde_json::from_str(fixtures::PUT).expect("put");
    assert_eq!((put.header.revision, put.prev_kv), (2, None));
    let put: PutResponse = serde_json::from_str(fixtures::PUT_PREV_KV).expect("put");
    assert_eq!(put.prev_kv.expect("prev_kv").value, b"10.0.0.2");

    let deleted: DeleteRangeResponse =
        serde_json::from_str(fixtures::DELETE_PREFIX).expect("delete");
    assert_eq!((deleted.deleted, deleted.header.revision), (2, 14));
    let deleted: DeleteRangeResponse =
        serde_json::from_str(fixtures::DELETE_NOTHING).expect("delete");
    assert_eq!(deleted.deleted, 0);

    let lease: LeaseGrantResponse = serde_json::from_str(fixtures::LEASE_GRANT).expect("lease");
    assert_eq!((lease.id, lease.ttl), (2655331806435365397, 60));

    let alive: LeaseKeepAliveMessage =
        serde_json::from_str(fixtures::LEASE_KEEPALIVE).expect("keepalive");
    let alive = alive.result.expect("a result");
    assert_eq!((alive.id, alive.ttl), (3761246991823803143, 2));
    // An expired lease is no error: the answer has no TTL, which is 0.
    let gone: LeaseKeepAliveMessage =
        serde_json::from_str(fixtures::LEASE_KEEPALIVE_GONE).expect("keepalive");
    assert_eq!(gone.result.expect("a result").ttl, 0);
    assert_eq!(json(&LeaseIdRequest { id: 12345 }), r#"{"ID":"12345"}"#);

    let members: MemberListResponse = serde_json::from_str(fixtures::MEMBER_LIST).expect("members");
    assert_eq!(members.members[0].id, 15548778401593894105);
    assert_eq!(members.members[0].client_urls, ["http://127.0.0.1:36607"]);
    let status: StatusResponse = serde_json::from_str(fixtures::STATUS).expect("status");
    assert_eq!(
        (status.leader, status.version.as_str()),
        (15548778401593894105, "3.4.23")
    );

    let auth: AuthenticateResponse = serde_json::from_str(fixtures::AUTHENTICATED).expect("auth");
    assert_eq!(auth.token, "bUpPcMVQYahvOver.40");
}

#[test]
fn integers_may_also_come_as_json_numbers() {
    let range: RangeResponse =
        serde_json::from_str(r#"{"header":{"revision":12},"count":0}"#).expect("range");
    assert_eq!(range.header.revision, 12);
}

/// Bad input names the field and what is wrong with it.
#[test]
fn bad_base64_or_a_revision_that_is_no_number_is_a_clear_error() {
    let cases = [
        (
            r#"{"header":{"revision":"8"},"kvs":[{"key":"!!!"}]}"#,
            "not valid base64",
        ),
        (
            r#"{"header":{"revision":"eight"}}"#,
            r#""eight" is not an integer"#,
        ),
        (
            r#"{"header":{"revision":"-3"}}"#,
            r#""-3" is not an integer in range"#,
        ),
        (r#"{"header":{"revision":-3}}"#, "-3 is out of range"),
        (r#"{"header":{"revision":true}}"#, "expected an integer"),
        (r#"{"kvs":{}}"#, "expected a sequence"),
    ];
    for (body, expected) in cases {
        let err = serde_json::from_str::<RangeResponse>(body).expect_err(body);
        assert!(err.to_string().contains(expected), "{body}: {err}");
    }
}

/// A source that hands out at most `step` bytes per read, and an error once at `fail_at`.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
    fail_at: Option<usize>,
}

impl Trickle {
    fn new(bytes: &str, step: usize) -> Trickle {
        Trickle {
            bytes: bytes.as_bytes().to_vec(),
            at: 0,
            step,
            fail_at: None,
        }
    }
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.fail_at.is_some_and(|fail_at| self.at >= fail_at) {
            self.fail_at = None;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
        }
        let end = (self.at + self.step.min(out.len())).min(self.bytes.len());
        let chunk = &self.bytes[self.at..end];
        out[..chunk.len()].copy_from_slice(chunk);
        self.at = end;
        Ok(chunk.len())
    }
}

fn notices(stream: impl Read) -> Result<Vec<Notice>, StreamError> {
    let mut reader = MessageReader::new(stream);
    let mut notices = Vec::new();
    while let Some(message) = reader.next_message()? {
        match message {
            Message::Result(result) => notices.push(Notice::of(&result)),
            Message::Error(error) => panic!("unexpected stream error {error}"),
        }
    }
    Ok(notices)
}

fn put(key: &str, value: &str, mod_revision: u64) -> KeyChange {
    KeyChange {
        key: key.into(),
        value: Some(value.into()),
        prev_value: None,
        mod_revision,
    }
}

fn delete(key: &str, mod_revision: u64) -> KeyChange {
    KeyChange {
        key: key.into(),
        value: None,
        prev_value: None,
        mod_revision,
    }
}

/// What the watch with `prev_kv` also tells.
fn after(change: KeyChange, prev_value: &str) -> KeyChange {
    KeyChange {
        prev_value: Some(prev_value.into()),
        ..change
    }
}

#[test]
fn a_real_watch_stream_gives_created_changes_and_progress_per_watch() {
    let expected = vec![
        Notice::Created {
            watch_id: 0,
            revision: 16,
        },
        Notice::Created {
            watch_id: 1,
            revision: 16,
        },
        Notice::Changes {
            watch_id: 0,
            revision: 17,
            changes: vec![put("/w/a", "1", 17)],
        },
        Notice::Changes {
            watch_id: 0,
            revision: 18,
            changes: vec![after(put("/w/a", "2", 18), "1")],
        },
        Notice::Changes {
            watch_id: 1,
            revision: 19,
            changes: vec![put("/w2", "other", 19)],
        },
        Notice::Changes {
            watch_id: 0,
            revision: 20,
            changes: vec![put("/w/e", "", 20)],
        },
        Notice::Changes {
            watch_id: 0,
            revision: 21,
            changes: vec![after(delete("/w/a", 21), "2")],
        },
        Notice::Changes {
            watch_id: 0,
            revision: 22,
            changes: vec![put("/w/b", "B", 22), put("/w/c", "C", 22)],
        },
        Notice::Progress {
            watch_id: 0,
            revision: 22,
        },
        Notice::Progress {
            watch_id: 0,
            revision: 22,
        },
    ];
    assert_eq!(
        notices(fixtures::WATCH_STREAM.as_bytes()).expect("stream"),
        expected
    );
    // Chunks need not line up with messages: one byte per read gives the same.
    let trickle = Trickle::new(fixtures::WATCH_STREAM, 1);
    assert_eq!(notices(trickle).expect("stream"), expected);
    // Nor need messages be separated by newlines.
    let joined = fixtures::WATCH_STREAM.replace('\n', "");
    assert_eq!(notices(joined.as_bytes()).expect("stream"), expected);
}

#[test]
fn history_compaction_lease_expiry_and_refused_watches() {
    let history = notices(fixtures::WATCH_HISTORY.as_bytes()).expect("stream");
    let Notice::Changes {
        changes, revision, ..
    } = &history[1]
    else {
        panic!("{history:?}")
    };
    assert_eq!((changes.len(), *revision), (6, 22));
    assert_eq!(changes[3], delete("/w/a", 21));

    let compacted = notices(fixtures::WATCH_COMPACTED.as_bytes()).expect("stream");
    assert_eq!(
        compacted[1],
        Notice::Canceled {
            watch_id: 0,
            compact_revision: 20,
            reason: String::new()
        }
    );

    let expiry = notices(fixtures::WATCH_LEASE_EXPIRY.as_bytes()).expect("stream");
    assert_eq!(
        expiry[2],
        Notice::Changes {
            watch_id: 0,
            revision: 24,
            changes: vec![delete("/lease/k", 24)]
        }
    );

    let refused = notices(fixtures::WATCH_BOGUS_TOKEN.as_bytes()).expect("stream");
    assert_eq!(
        refused,
        [Notice::Canceled {
            watch_id: -1,
            compact_revision: 0,
            reason: "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"
                .into()
        }]
    );
    let refused = notices(fixtures::WATCH_NO_TOKEN.as_bytes()).expect("stream");
    assert!(
        matches!(&refused[0], Notice::Canceled { reason, .. } if reason.contains("user name is empty"))
    );
}

#[test]
fn stream_level_errors_of_both_shapes_are_messages() {
    let mut reader = MessageReader::new(fixtures::WATCH_SHUTDOWN.as_bytes());
    assert!(matches!(
        reader.next_message(),
        Ok(Some(Message::Result(_)))
    ));
    let Ok(Some(Message::Error(error))) = reader.next_message() else {
        panic!("the shutdown error")
    };
    assert_eq!(
        (error.code, error.message.as_str()),
        (14, "transport is closing")
    );
    assert!(matches!(reader.next_message(), Ok(None)));

    let mut reader = MessageReader::new(fixtures::WATCH_BAD_REQUEST.as_bytes());
    let Ok(Some(Message::Error(error))) = reader.next_message() else {
        panic!("the request error")
    };
    assert_eq!(
        (error.code, error.message.as_str()),
        (2, "illegal base64 data at input byte 0")
    );
}

fn stream_error(stream: &str) -> String {
    let mut reader = MessageReader::with_limit(stream.as_bytes(), 200);
    loop {
        match reader.next_message() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error in {stream:?}"),
            Err(err) => return err.to_string(),
        }
    }
}

#[test]
fn garbage_truncation_and_oversize_are_errors_naming_the_byte() {
    let created = fixtures::WATCH_COMPACTED.lines().next().expect("a line");
    let cases = [
        (
            "<html>",
            "byte 0 of the watch stream is '<', not the start of a JSON object",
        ),
        (
            &format!("{created}\n\n]"),
            "byte 143 of the watch stream is ']', not the start of a JSON object",
        ),
        (
            &format!("{created}\n{{\"result\":{{\"header\""),
            "the watch stream ended inside the message at byte 142 (19 bytes of it)",
        ),
        (
            &format!(
                "{{\"result\":{{\"cancel_reason\":\"{}\"}}}}",
                "x".repeat(300)
            ),
            "the watch message at byte 0 is larger than 200 bytes",
        ),
        (
            &format!("{{\"result\":{{\"cancel_reason\":\"{}", "x".repeat(300)),
            "the watch message at byte 0 is larger than 200 bytes",
        ),
        (
            r#"{"hello":1}"#,
            r#"the watch message at byte 0 is not a valid etcd v3 watch message: neither "result" nor "error" in it"#,
        ),
        (
            r#" {"result":{"events":[{"kv":{"key":"@@"}}]}}"#,
            "the watch message at byte 1 is not a valid etcd v3 watch message: not valid base64",
        ),
        (
            r#"{"result":{"header":{"revision":"x1"}}}"#,
            r#"is not a valid etcd v3 watch message: "x1" is not an integer in range"#,
        ),
        (
            r#"{]"#,
            "the watch message at byte 0 is not a valid etcd v3 watch message",
        ),
    ];
    for (stream, expected) in cases {
        let error = stream_error(stream);
        assert!(error.contains(expected), "{stream:?}: {error}");
    }
}

#[test]
fn braces_and_quotes_inside_strings_do_not_end_a_message() {
    let stream = r#"{"result":{"cancel_reason":"a } \" { ] \\"}}{"result":{"created":true}}"#;
    let mut reader = MessageReader::new(stream.as_bytes());
    let Ok(Some(Message::Result(first))) = reader.next_message() else {
        panic!("first message")
    };
    assert_eq!(first.cancel_reason, r#"a } " { ] \"#);
    assert!(matches!(reader.next_message(), Ok(Some(Message::Result(m))) if m.created));
}

/// A read timeout (silence on the stream) in the middle of a message loses nothing: the
/// next call carries on where the last one stopped.
#[test]
fn a_read_error_can_be_retried_without_losing_bytes() {
    let mut source = Trickle::new(fixtures::WATCH_LEASE_EXPIRY, 7);
    source.fail_at = Some(150);
    let mut reader = MessageReader::new(source);
    assert!(matches!(reader.next_message(), Ok(Some(_))));
    let Err(StreamError::Read(err)) = reader.next_message() else {
        panic!("a read error")
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    let mut rest = Vec::new();
    while let Some(Message::Result(result)) = reader.next_message().expect("resumed") {
        rest.push(Notice::of(&result));
    }
    assert_eq!(rest.len(), 2);
    assert_eq!(
        rest[1],
        Notice::Changes {
            watch_id: 0,
            revision: 24,
            changes: vec![delete("/lease/k", 24)]
        }
    );
}
