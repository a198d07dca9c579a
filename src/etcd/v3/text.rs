//! Keys and values as text, the way the v2 API hands them out.
//!
//! v3 stores bytes; the daemon's data (templates, files) and etcd-util's output are text.
//! v2 could never hand out bytes that are not UTF-8: etcd encodes its JSON answers with Go's
//! `encoding/json`, which replaces each byte of an invalid UTF-8 sequence with U+FFFD. A
//! value written as `ff fe 61 62 e2 82` reads back from v2 as `"\ufffd\ufffdab\ufffd\ufffd"`
//! (observed on etcd 3.4.23). v3 decodes the same way, so one template gives the same file
//! on both APIs: lossy, but identical to v2, instead of refusing a key v2 would have served.
//! (Rust's `String::from_utf8_lossy` replaces a broken sequence with one U+FFFD, not one
//! per byte, and would differ from v2 on `e2 82`.)

use std::borrow::Cow;

/// `bytes` as text: valid UTF-8 as is, each byte of an invalid sequence as U+FFFD.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for _ in chunk.invalid() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    Cow::Owned(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_borrowed_unchanged() {
        assert!(matches!(
            lossy("/ключ/ü".as_bytes()),
            Cow::Borrowed("/ключ/ü")
        ));
    }

    /// The same bytes written through v2 (`value=%FF%FEab%E2%82%C3`) read back from etcd
    /// 3.4.23 as `"\ufffd\ufffdab\ufffd\ufffd\ufffd"`: one U+FFFD per invalid byte.
    #[test]
    fn each_invalid_byte_becomes_one_replacement_character_as_on_v2() {
        assert_eq!(
            lossy(b"\xff\xfeab\xe2\x82\xc3"),
            "\u{fffd}\u{fffd}ab\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(lossy(b"a\xf0\x90\x80b"), "a\u{fffd}\u{fffd}\u{fffd}b");
        assert_eq!(lossy(b"\xc3\xa9\x80"), "é\u{fffd}");
    }
}
