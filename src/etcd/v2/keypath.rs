//! Turning etcd keys into URL paths, one percent-encoded segment at a time.
//!
//! The original Ruby tool put keys into URLs verbatim, so a key with a space broke it. Here
//! every byte outside RFC 3986's unreserved set is percent-encoded, per segment, so keys
//! with spaces, `?`, `#`, `%` or any unicode round-trip.

use std::fmt::Write;

/// The path part of `/v2/keys<key>`, percent-encoded; repeated slashes are squeezed
/// (etcd would answer `//` with a redirect).
pub fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for segment in key.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        for byte in segment.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(byte as char);
            } else {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_segment_and_keeps_slashes() {
        assert_eq!(encode("/a b/c?d#e%f"), "/a%20b/c%3Fd%23e%25f");
        assert_eq!(encode("/ключ/ü"), "/%D0%BA%D0%BB%D1%8E%D1%87/%C3%BC");
        assert_eq!(encode("/"), "/");
        assert_eq!(encode("//a//b/"), "/a/b");
        assert_eq!(encode("/plus+amp&eq="), "/plus%2Bamp%26eq%3D");
    }
}
