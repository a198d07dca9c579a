//! Reading everything in a scope at one revision, page by page.
//!
//! A 100 000-key tree in one range answer would be one huge body; pages of `limit` keys,
//! each starting just after the greatest key of the one before (that key + `\0`, same
//! range end), keep every answer small. etcd answers a range in key order (its index is a
//! B-tree) and cuts it at `limit`, so a page holds the smallest keys left. Asking it to
//! sort by key as well costs without changing the answer: etcd 3.4 then reads the whole
//! rest of the range for every page, sorts it and cuts it (a 1 000-key page of a
//! 10 000-key tree: 45 ms instead of 28), and the greatest key of a page is taken without
//! trusting the order anyway. All pages after the first read at the
//! first page's revision, so together they are one consistent view even when writes land
//! between two pages. (A range pinned to a revision still answers with the *current*
//! revision in its header, so the snapshot's revision is the first page's.)
//!
//! [`SnapshotRead`] only decides what to ask next and collects the answers: the I/O is the
//! caller's.

use super::proto::{RangeRequest, RangeResponse};
use super::scope::Scope;
use super::text::lossy;
use std::collections::BTreeMap;
use std::fmt;

/// Keys per page: small answers (about 120 bytes a key), few round trips.
pub const PAGE_SIZE: i64 = 1000;

/// A snapshot read in progress.
#[derive(Debug)]
pub struct SnapshotRead {
    scope: Scope,
    page_size: i64,
    /// The first page's revision; 0 until it came.
    revision: u64,
    /// Where the next page starts; `None` once the last page came.
    next_key: Option<Vec<u8>>,
    leaves: BTreeMap<String, String>,
}

/// The data in a scope at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeData {
    /// Full key → value; empty when nothing is in the scope.
    pub leaves: BTreeMap<String, String>,
    /// Watching from `revision + 1` misses nothing.
    pub revision: u64,
}

/// A page that cannot be part of a consistent, terminating read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagingError {
    /// The answer has no revision in its header.
    NoRevision,
    /// `more` is set but the page is empty or does not advance past the previous page:
    /// asking again would loop.
    Stuck,
}

impl fmt::Display for PagingError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            PagingError::NoRevision => f.write_str("the range answer has no header revision"),
            PagingError::Stuck => {
                f.write_str("the range answer says more keys follow but gives no further key")
            }
        }
    }
}

impl std::error::Error for PagingError {}

impl SnapshotRead {
    pub fn new(scope: Scope, page_size: i64) -> SnapshotRead {
        SnapshotRead {
            next_key: Some(scope.start()),
            scope,
            page_size,
            revision: 0,
            leaves: BTreeMap::new(),
        }
    }

    /// A read at `revision` instead of the first page's: several scopes read at one
    /// revision are one consistent view together.
    pub fn at(scope: Scope, page_size: i64, revision: u64) -> SnapshotRead {
        SnapshotRead {
            revision,
            ..SnapshotRead::new(scope, page_size)
        }
    }

    /// The range to ask for next, or `None` when the read is complete.
    pub fn next_request(&self) -> Option<RangeRequest> {
        let key = self.next_key.clone()?;
        Some(RangeRequest {
            key,
            range_end: self.scope.end(),
            limit: self.page_size,
            revision: self.revision,
            count_only: false,
        })
    }

    /// Takes the answer to [`SnapshotRead::next_request`].
    pub fn take(&mut self, page: RangeResponse) -> Result<(), PagingError> {
        if self.revision == 0 {
            if page.header.revision == 0 {
                return Err(PagingError::NoRevision);
            }
            self.revision = page.header.revision;
        }
        let start = self.next_key.take().unwrap_or_default();
        let greatest = page.kvs.iter().map(|kv| &kv.key).max().cloned();
        for kv in page.kvs {
            if self.scope.contains(&kv.key) {
                self.leaves
                    .insert(lossy(&kv.key).into_owned(), lossy(&kv.value).into_owned());
            }
        }
        if page.more {
            let mut next = greatest
                .filter(|greatest| *greatest >= start)
                .ok_or(PagingError::Stuck)?;
            next.push(0);
            self.next_key = Some(next);
        }
        Ok(())
    }

    /// The data, once [`SnapshotRead::next_request`] is `None`.
    pub fn finish(self) -> Option<ScopeData> {
        if self.next_key.is_some() {
            return None;
        }
        Some(ScopeData {
            leaves: self.leaves,
            revision: self.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    fn answer(json: &str) -> RangeResponse {
        serde_json::from_str(json).expect("a real range answer")
    }

    fn leaves(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A page whose keys came out of order still continues after its greatest key.
    #[test]
    fn the_next_page_starts_after_the_greatest_key_whatever_the_order() {
        let mut read = SnapshotRead::new(Scope::new("/app", true), 2);
        let mut page = answer(fixtures::RANGE_PAGE_1);
        page.kvs.reverse();
        read.take(page).expect("page 1");
        let second = read.next_request().expect("a second page");
        assert_eq!(second.key, b"/app/db/port\0");
    }

    /// The two pages etcd gave for `/app/` with limit 2, a put of `/app/zz` (revision 9)
    /// landing between them: the second page, pinned at 8, does not show it.
    #[test]
    fn pages_continue_after_the_last_key_pinned_at_the_first_revision() {
        let mut read = SnapshotRead::new(Scope::new("/app", true), 2);
        let first = read.next_request().expect("a first page");
        assert_eq!(
            serde_json::to_string(&first).expect("json"),
            r#"{"key":"L2FwcA==","range_end":"L2FwcDA=","limit":"2"}"#
        );
        read.take(answer(fixtures::RANGE_PAGE_1)).expect("page 1");
        let second = read.next_request().expect("a second page");
        assert_eq!(second.key, b"/app/db/port\0");
        assert_eq!(
            (second.range_end.as_slice(), second.revision),
            (&b"/app0"[..], 8)
        );
        read.take(answer(fixtures::RANGE_PAGE_2)).expect("page 2");
        assert_eq!(read.next_request(), None);
        assert_eq!(
            read.finish(),
            Some(ScopeData {
                leaves: leaves(&[
                    ("/app/db/host", "10.0.0.3"),
                    ("/app/db/port", "5432"),
                    ("/app/empty", ""),
                ]),
                revision: 8,
            })
        );
    }

    #[test]
    fn one_page_holds_everything_and_a_missing_key_is_empty() {
        let mut read = SnapshotRead::new(Scope::new("/app", true), PAGE_SIZE);
        read.take(answer(fixtures::RANGE_PREFIX)).expect("one page");
        let data = read.finish().expect("complete");
        assert_eq!((data.leaves.len(), data.revision), (3, 8));

        let mut read = SnapshotRead::new(Scope::new("/app", false), PAGE_SIZE);
        read.take(answer(fixtures::RANGE_ONE)).expect("one page");
        let data = read.finish().expect("complete");
        assert_eq!(data.leaves, leaves(&[("/app", "root")]));

        let mut read = SnapshotRead::new(Scope::new("/nope", false), PAGE_SIZE);
        let request = read.next_request().expect("a request");
        assert_eq!(request.range_end, b"");
        read.take(answer(fixtures::RANGE_MISSING))
            .expect("one page");
        assert_eq!(
            read.finish(),
            Some(ScopeData {
                leaves: BTreeMap::new(),
                revision: 8
            })
        );
    }

    #[test]
    fn values_that_are_not_utf8_read_as_on_v2() {
        let mut read = SnapshotRead::new(Scope::new("/bin/x", false), PAGE_SIZE);
        read.take(answer(fixtures::RANGE_NOT_UTF8))
            .expect("one page");
        let data = read.finish().expect("complete");
        assert_eq!(
            data.leaves,
            leaves(&[("/bin/x", "\u{fffd}\u{fffd}ab\u{fffd}\u{fffd}")])
        );
    }

    #[test]
    fn keys_between_the_key_and_its_children_are_left_out() {
        let mut read = SnapshotRead::new(Scope::new("/app", true), PAGE_SIZE);
        let page = RangeResponse {
            kvs: [&b"/app"[..], b"/app-x", b"/app.conf", b"/app/a"]
                .iter()
                .map(|key| super::super::proto::KeyValue {
                    key: key.to_vec(),
                    value: b"v".to_vec(),
                    ..Default::default()
                })
                .collect(),
            ..answer(fixtures::RANGE_MISSING)
        };
        read.take(page).expect("one page");
        let data = read.finish().expect("complete");
        assert_eq!(data.leaves, leaves(&[("/app", "v"), ("/app/a", "v")]));
    }

    #[test]
    fn a_page_that_would_loop_or_has_no_revision_is_an_error() {
        let mut read = SnapshotRead::new(Scope::new("/app", true), 2);
        let endless = RangeResponse {
            more: true,
            ..answer(fixtures::RANGE_MISSING)
        };
        assert_eq!(read.take(endless), Err(PagingError::Stuck));

        let mut read = SnapshotRead::new(Scope::new("/app", true), 2);
        assert_eq!(
            read.take(RangeResponse::default()),
            Err(PagingError::NoRevision)
        );
    }
}
