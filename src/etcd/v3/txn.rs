//! Transactions of guarded puts, for copying data in without overwriting a concurrent write.
//!
//! etcd refuses a transaction with more than `--max-txn-ops` (default 128) operations, so
//! puts go in batches of at most [`MAX_TXN_OPS`]; each batch applies all its puts or none.

use super::proto::{Compare, CompareResult, CompareTarget, PutRequest, RequestOp, TxnRequest};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// What must still hold for a put to go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The key does not exist (its `create_revision` is 0).
    Absent,
    /// The key holds exactly this value.
    Holds(Vec<u8>),
}

/// A put that only happens when its guard holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedPut {
    pub put: PutRequest,
    pub guard: Guard,
}

/// Transactions doing `puts`, at most [`MAX_TXN_OPS`] each. A transaction whose guards do
/// not all hold does nothing and answers `succeeded` false: read again and retry.
pub fn batches(puts: &[GuardedPut]) -> Vec<TxnRequest> {
    puts.chunks(MAX_TXN_OPS)
        .map(|batch| TxnRequest {
            compare: batch.iter().map(compare).collect(),
            success: batch
                .iter()
                .map(|guarded| RequestOp::Put(guarded.put.clone()))
                .collect(),
            failure: Vec::new(),
        })
        .collect()
}

fn compare(guarded: &GuardedPut) -> Compare {
    Compare {
        key: guarded.put.key.clone(),
        result: CompareResult::Equal,
        target: match &guarded.guard {
            Guard::Absent => CompareTarget::Create { create_revision: 0 },
            Guard::Holds(value) => CompareTarget::Value {
                value: value.clone(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::super::proto::TxnResponse;
    use super::*;

    fn put(key: &str, value: &str, guard: Guard) -> GuardedPut {
        GuardedPut {
            put: PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                ..Default::default()
            },
            guard,
        }
    }

    /// The body is the one sent to etcd 3.4.23 for [`fixtures::TXN_SUCCEEDED`], less the
    /// failure branch.
    #[test]
    fn a_guarded_put_is_a_compare_and_a_put() {
        let txns = batches(&[put("/m/a", "v", Guard::Absent)]);
        assert_eq!(
            serde_json::to_string(&txns).expect("json"),
            r#"[{"compare":[{"key":"L20vYQ==","result":"EQUAL","target":"CREATE","create_revision":"0"}],"success":[{"request_put":{"key":"L20vYQ==","value":"dg=="}}]}]"#
        );
        let txns = batches(&[put("/m/a", "w", Guard::Holds(b"v".to_vec()))]);
        let json = serde_json::to_string(&txns[0].compare).expect("json");
        assert_eq!(
            json,
            r#"[{"key":"L20vYQ==","result":"EQUAL","target":"VALUE","value":"dg=="}]"#
        );
    }

    #[test]
    fn batches_hold_at_most_128_puts() {
        let puts: Vec<GuardedPut> = (0..300)
            .map(|n| put(&format!("/k/{n}"), "v", Guard::Absent))
            .collect();
        let sizes: Vec<(usize, usize)> = batches(&puts)
            .iter()
            .map(|txn| (txn.compare.len(), txn.success.len()))
            .collect();
        assert_eq!(sizes, [(128, 128), (128, 128), (44, 44)]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn txn_answers_tell_whether_the_guards_held() {
        let done: TxnResponse = serde_json::from_str(fixtures::TXN_SUCCEEDED).expect("json");
        assert!(done.succeeded);
        assert_eq!(done.header.revision, 15);
        assert!(done.responses[0].response_put.is_some());
        let refused: TxnResponse = serde_json::from_str(fixtures::TXN_FAILED).expect("json");
        assert!(!refused.succeeded);
        let range = refused.responses[0].response_range.as_ref().expect("range");
        assert_eq!(range.kvs[0].value, b"v");
    }
}
