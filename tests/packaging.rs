//! What the packages ship beside the binaries (issue 14): `--version`, the man pages and
//! shell completions generated from the flag table, and the README's flag tables.

mod support;

use std::process::Output;
use std::time::Duration;
use support::{free_port, run_bin, stdout};

const RECONFIG: &str = env!("CARGO_BIN_EXE_reconfig");
const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");

fn run(bin: &str, args: &[&str]) -> Output {
    run_bin(bin, args, Duration::from_secs(20))
}

/// The commit HEAD is at, as `--version` abbreviates it; `None` outside a git checkout.
fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The four lines both tools print first: version, commit, target, build date.
fn assert_version_lines(tool: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");
    assert_eq!(lines[0], format!("{tool} {}", env!("CARGO_PKG_VERSION")));
    let commit = lines[1].strip_prefix("commit: ").expect(text);
    match git_head() {
        Some(head) => assert_eq!(commit, head, "{text}"),
        None => assert_eq!(commit, "unknown", "{text}"),
    }
    let target = lines[2].strip_prefix("target: ").expect(text);
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains("-linux-"),
        "{text}"
    );
    let date = lines[3].strip_prefix("built: ").expect(text);
    let digits: Vec<&str> = date.split('-').collect();
    assert!(
        digits.len() == 3 && digits[0].len() == 4 && date.len() == 10,
        "built: {date:?} is not YYYY-MM-DD"
    );
}

#[test]
fn version_names_commit_target_and_build_date() {
    let out = run(RECONFIG, &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_version_lines("reconfig", &stdout(&out));
    assert_eq!(stdout(&out).lines().count(), 4);

    // etcd-util prints the same, then asks the cluster (none here: exit 3).
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = run(ETCD_UTIL, &["--version", "--endpoints", &nobody]);
    assert_eq!(out.status.code(), Some(3));
    assert_version_lines("etcd-util", &stdout(&out));
}
