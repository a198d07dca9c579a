//! What `--version` prints first in both binaries: the version, then the git commit, the
//! target and the build date that build.rs recorded.

/// `NAME VERSION` on the first line (what scripts parse), then one `field: value` line each.
pub fn describe(tool: &str) -> String {
    format!(
        "{tool} {}\ncommit: {}\ntarget: {}\nbuilt: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("RECONFIG_BUILD_COMMIT"),
        env!("RECONFIG_BUILD_TARGET"),
        env!("RECONFIG_BUILD_DATE"),
    )
}
