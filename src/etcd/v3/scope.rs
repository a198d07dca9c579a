//! Which v3 keys a resource's `key` (and `recursive`) covers, as one key range.
//!
//! v2 keys are a tree: a recursive read of `/app` is `/app` itself (when it holds a value)
//! or every leaf under the directory `/app/`. v3 keys are flat bytes, so the same meaning is
//! "the key itself plus every key that starts with `key/`", and not `/appX` or `/app-x`.
//! That is not one contiguous range: `/app-x` sorts between `/app` and `/app/`. reconfig
//! asks for the one range `[key, prefix_end(key/))` and drops the few keys in between
//! (`key` followed by a byte below `/`): one range and one watch at one revision, where two
//! requests would need two watches and could not share a revision.
//!
//! Keys are spelled as v2 spells them (see [`normalize`]): a v3 key without a leading `/`
//! is out of reach, as it would be for data copied from v2.

/// The keys covered by a resource key, recursive or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The key as [`normalize`] spells it, without the root's `/` (empty for the root).
    key: Vec<u8>,
    recursive: bool,
}

/// A key as v2 would store it, so that one conf.d file names the same key on both APIs:
/// one leading `/`, no empty segments (`app//db/` is `/app/db`), the root is `/`.
pub fn normalize(key: &str) -> String {
    let mut normal = String::with_capacity(key.len() + 1);
    for segment in key.split('/').filter(|segment| !segment.is_empty()) {
        normal.push('/');
        normal.push_str(segment);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    normal
}

impl Scope {
    /// The keys a resource's `key` covers (see [`normalize`]). The root covers every key
    /// that starts with `/`, which is every key a v2 tree could hold.
    pub fn new(key: &str, recursive: bool) -> Scope {
        Scope {
            key: normalize(key).trim_end_matches('/').as_bytes().to_vec(),
            recursive,
        }
    }

    /// The first key of the range to read or watch.
    pub fn start(&self) -> Vec<u8> {
        if self.key.is_empty() {
            return b"/".to_vec();
        }
        self.key.clone()
    }

    /// The end of the range (exclusive), or empty for the single key [`Scope::start`].
    pub fn end(&self) -> Vec<u8> {
        if !self.recursive {
            return Vec::new();
        }
        prefix_end(&self.children_prefix())
    }

    /// Whether a key from the range belongs to the scope (see the module's doc).
    pub fn contains(&self, key: &[u8]) -> bool {
        key == self.start().as_slice() || self.recursive && key.starts_with(&self.children_prefix())
    }

    fn children_prefix(&self) -> Vec<u8> {
        let mut prefix = self.key.clone();
        prefix.push(b'/');
        prefix
    }
}

/// The smallest key greater than every key starting with `prefix`: the last byte that is
/// not `0xff` plus one, the bytes after it dropped (carry). `\0` when there is none (every
/// byte is `0xff`, or no prefix): etcd reads that as "every key from the start on".
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&byte| byte != 0xff) {
        Some(last) => {
            let mut end = prefix[..=last].to_vec();
            end[last] += 1;
            end
        }
        None => vec![0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_with_carry() {
        assert_eq!(prefix_end(b"/bench/"), b"/bench0");
        assert_eq!(prefix_end(b"/app/"), b"/app0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn keys_are_spelled_as_v2_stores_them() {
        assert_eq!(normalize("/app/db"), "/app/db");
        assert_eq!(normalize("app//db/"), "/app/db");
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("///"), "/");
        assert_eq!(Scope::new("app/", true), Scope::new("/app", true));
    }

    #[test]
    fn a_recursive_key_is_itself_and_everything_under_key_slash() {
        let scope = Scope::new("/app/", true);
        assert_eq!(scope.start(), b"/app");
        assert_eq!(scope.end(), b"/app0");
        for inside in [&b"/app"[..], b"/app/", b"/app/db/host", b"/app/\xff"] {
            assert!(scope.contains(inside), "{inside:?}");
        }
        for outside in [
            &b"/ap"[..],
            b"/app-x",
            b"/app.",
            b"/app\0",
            b"/appX",
            b"/app0",
        ] {
            assert!(!scope.contains(outside), "{outside:?}");
        }
    }

    #[test]
    fn a_plain_key_is_only_itself() {
        let scope = Scope::new("/app/db/host", false);
        assert_eq!(scope.start(), b"/app/db/host");
        assert_eq!(scope.end(), b"");
        assert!(scope.contains(b"/app/db/host"));
        assert!(!scope.contains(b"/app/db/host/x"));
    }

    #[test]
    fn the_root_covers_every_key_starting_with_a_slash() {
        for root in ["/", ""] {
            let scope = Scope::new(root, true);
            assert_eq!((scope.start(), scope.end()), (b"/".to_vec(), b"0".to_vec()));
            assert!(scope.contains(b"/"));
            assert!(scope.contains(b"/a/b"));
            assert!(!scope.contains(b"a"));
        }
    }
}
