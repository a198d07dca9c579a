//! What changed: the dry-run unified diff and the short summary logged for each install.

use std::fmt;
use std::path::Path;

use similar::TextDiff;

/// Length and checksum of a file's content, for "changed <target>: 120/… -> 131/…" log lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    pub len: u64,
    /// FNV-1a 64 over the content's 8-byte words, 16 hex digits: a fingerprint to tell
    /// versions apart in logs, not a security hash.
    pub checksum: String,
}

impl FileSummary {
    pub fn of(bytes: &[u8]) -> FileSummary {
        FileSummary {
            len: bytes.len() as u64,
            checksum: format!("{:016x}", fingerprint(bytes)),
        }
    }
}

impl fmt::Display for FileSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.len, self.checksum)
    }
}

/// FNV-1a's step taken a word at a time (then the tail bytes): 8 times fewer dependent
/// multiplications than byte-wise FNV-1a, which took 3 % of the CPU time of 100 resources
/// installing at once.
fn fingerprint(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |hash: u64, part: u64| (hash ^ part).wrapping_mul(PRIME);
    let mut words = bytes.chunks_exact(8);
    let hash = words.by_ref().fold(OFFSET_BASIS, |hash, word| {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        step(hash, u64::from_le_bytes(le))
    });
    let hash = words
        .remainder()
        .iter()
        .fold(hash, |hash, &byte| step(hash, u64::from(byte)));
    step(hash, bytes.len() as u64)
}

/// Unified diff from the current file (`None`: it does not exist, shown as /dev/null) to the
/// rendered text. Non-UTF-8 bytes of the current file are shown as U+FFFD.
pub(crate) fn unified(target: &Path, id: &str, current: Option<&[u8]>, rendered: &str) -> String {
    let old_text = current.map(String::from_utf8_lossy).unwrap_or_default();
    let old_header = match current {
        Some(_) => format!("{} (current)", target.display()),
        None => "/dev/null".to_string(),
    };
    let new_header = format!("{} (rendered by {id})", target.display());
    let diff = TextDiff::from_lines(old_text.as_ref(), rendered)
        .unified_diff()
        .context_radius(3)
        .header(&old_header, &new_header)
        .to_string();
    if diff.is_empty() {
        format!("--- {old_header}\n+++ {new_header}\n(the files differ only in bytes that are not valid UTF-8)\n")
    } else {
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_length_and_16_hex_digits() {
        let text = FileSummary::of(b"server a 10.0.0.1:80\n").to_string();
        let (len, checksum) = text.split_once('/').expect("len/checksum");
        assert_eq!(len, "21");
        assert_eq!(checksum.len(), 16);
        assert!(
            checksum.bytes().all(|b| b.is_ascii_hexdigit()),
            "{checksum}"
        );
    }

    #[test]
    fn fingerprints_tell_close_contents_apart() {
        let contents: [&[u8]; 7] = [
            b"",
            b"\0",
            b"a",
            b"b",
            b"server a 10.0.0.1:80\n",
            b"server a 10.0.0.2:80\n",
            b"server a 10.0.0.1:80\n\0",
        ];
        let prints: std::collections::BTreeSet<u64> =
            contents.iter().map(|c| fingerprint(c)).collect();
        assert_eq!(prints.len(), contents.len());
        assert_eq!(fingerprint(b"same"), fingerprint(b"same"));
    }

    #[test]
    fn diff_of_changed_file_has_headers_and_hunk() {
        let diff = unified(
            Path::new("/etc/a.conf"),
            "web",
            Some(b"one\ntwo\n"),
            "one\nthree\n",
        );
        assert_eq!(
            diff,
            "--- /etc/a.conf (current)\n+++ /etc/a.conf (rendered by web)\n@@ -1,2 +1,2 @@\n one\n-two\n+three\n"
        );
    }

    #[test]
    fn new_file_diffs_against_dev_null() {
        let diff = unified(Path::new("/etc/a.conf"), "web", None, "x\n");
        assert!(
            diff.starts_with(
                "--- /dev/null\n+++ /etc/a.conf (rendered by web)\n@@ -0,0 +1 @@\n+x\n"
            ),
            "{diff}"
        );
    }

    #[test]
    fn difference_only_in_invalid_utf8_is_still_explained() {
        let diff = unified(Path::new("/a"), "r", Some(b"\xff\n"), "\u{fffd}\n");
        assert!(diff.contains("not valid UTF-8"), "{diff}");
    }
}
