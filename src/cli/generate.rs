//! `reconfig --generate NAME` (not in `--help`: a packaging tool): prints one of the files
//! that `make install`, `make deb` and `make dist` ship beside the binaries, made from the
//! flag table, so the man pages and completions always match `--help`.

use super::{completion, etcd_util, man, manual, reconfig};

/// Every file `--generate` makes, by its installed name.
pub const ARTIFACTS: &[&str] = &[
    "reconfig.1",
    "etcd-util.1",
    "reconfig.d.5",
    "reconfig.bash",
    "etcd-util.bash",
    "_reconfig",
    "_etcd-util",
];

/// The content of `name`, one of [`ARTIFACTS`].
pub fn artifact(name: &str) -> Option<String> {
    Some(match name {
        "reconfig.1" => man::command_page(&reconfig::COMMAND, manual::RECONFIG_EXTRA),
        "etcd-util.1" => man::command_page(&etcd_util::COMMAND, manual::ETCD_UTIL_EXTRA),
        "reconfig.d.5" => man::page(&manual::RECONFIG_D),
        "reconfig.bash" => completion::bash(&reconfig::COMMAND),
        "etcd-util.bash" => completion::bash(&etcd_util::COMMAND),
        "_reconfig" => completion::zsh(&reconfig::COMMAND),
        "_etcd-util" => completion::zsh(&etcd_util::COMMAND),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_artifact_is_made() {
        for name in ARTIFACTS {
            assert!(
                artifact(name).is_some_and(|text| !text.is_empty()),
                "{name}"
            );
        }
        assert!(artifact("reconfig.8").is_none());
    }
}
