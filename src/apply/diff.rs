//! What changed: the dry-run unified diff and the short summary logged for each install.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use similar::TextDiff;

/// Length and checksum of a file's content, for "changed <target>: 120/… -> 131/…" log lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    pub len: u64,
    /// The first 16 hex digits of the content's SHA-256: what `sha256sum <target>` starts
    /// with, so an operator can tell which version a file on disk is.
    pub checksum: String,
}

/// Hex digits of the SHA-256 kept in a summary: plenty to tell versions apart.
const CHECKSUM_DIGITS: usize = 16;

impl FileSummary {
    pub fn of(bytes: &[u8]) -> FileSummary {
        let digest = Sha256::digest(bytes);
        let mut checksum = String::with_capacity(CHECKSUM_DIGITS);
        for byte in &digest[..CHECKSUM_DIGITS / 2] {
            checksum.push_str(&format!("{byte:02x}"));
        }
        FileSummary {
            len: bytes.len() as u64,
            checksum,
        }
    }
}

impl fmt::Display for FileSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.len, self.checksum)
    }
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
    fn checksum_is_the_start_of_the_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(FileSummary::of(b"abc").checksum, "ba7816bf8f01cfea");
        // sha256("") = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
        assert_eq!(FileSummary::of(b"").to_string(), "0/e3b0c44298fc1c14");
    }

    #[test]
    fn checksums_of_close_contents_share_no_long_run() {
        let a = FileSummary::of(b"server a 10.0.0.1:80\n").checksum;
        let b = FileSummary::of(b"server a 10.0.0.2:80\n").checksum;
        // The word-wise FNV gave a26f780350beee8f / 8a6f780350beee8f for close files.
        let same = a.bytes().zip(b.bytes()).filter(|(x, y)| x == y).count();
        assert!(same < 8, "{a} / {b}");
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
