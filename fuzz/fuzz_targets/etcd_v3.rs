//! etcd v3 gateway answers and watch streams: any bytes given to the answer types, the
//! refusal parser and the paged snapshot, and read as a watch stream twice, whole and a
//! few bytes per read, which must give the same messages (or both fail). Any panic is a
//! finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::etcd::v3::error::GatewayError;
use reconfig::etcd::v3::proto::{
    AuthenticateResponse, DeleteRangeResponse, LeaseGrantResponse, MemberListResponse, PutResponse,
    RangeResponse, StatusResponse, TxnResponse,
};
use reconfig::etcd::v3::scope::Scope;
use reconfig::etcd::v3::snapshot::SnapshotRead;
use reconfig::etcd::v3::stream::{Message, MessageReader};
use reconfig::etcd::v3::watch::Notice;
use std::io::Read;

/// Hands out at most `step` bytes per read.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Every message until the end or the first error (as text).
fn messages(source: impl Read) -> (Vec<Message>, Option<String>) {
    let mut reader = MessageReader::with_limit(source, 4096);
    let mut messages = Vec::new();
    loop {
        match reader.next_message() {
            Ok(Some(message)) => {
                if let Message::Result(result) = &message {
                    let _ = Notice::of(result);
                    let refusal = GatewayError::from_cancel_reason(&result.cancel_reason);
                    let _ = (refusal.refusal(), refusal.to_string());
                }
                if let Message::Error(error) = &message {
                    let _ = (error.refusal(), error.to_string());
                }
                messages.push(message);
            }
            Ok(None) => return (messages, None),
            Err(err) => return (messages, Some(err.to_string())),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    if let Ok(range) = serde_json::from_slice::<RangeResponse>(input) {
        for recursive in [false, true] {
            let mut read = SnapshotRead::new(Scope::new("/app", recursive), 2);
            if read.take(range.clone()).is_ok() {
                let _ = read.next_request();
                let _ = read.finish();
            }
        }
    }
    let _ = serde_json::from_slice::<PutResponse>(input);
    let _ = serde_json::from_slice::<DeleteRangeResponse>(input);
    let _ = serde_json::from_slice::<TxnResponse>(input);
    let _ = serde_json::from_slice::<LeaseGrantResponse>(input);
    let _ = serde_json::from_slice::<AuthenticateResponse>(input);
    let _ = serde_json::from_slice::<MemberListResponse>(input);
    let _ = serde_json::from_slice::<StatusResponse>(input);
    if let Some(refusal) = GatewayError::parse(input) {
        let _ = (refusal.refusal(), refusal.to_string());
    }
    let whole = messages(input);
    let step = 1 + input.first().map_or(0, |byte| usize::from(*byte % 7));
    let trickled = messages(Trickle { bytes: input, step });
    assert_eq!(whole, trickled);
});
