//! Exit codes of both binaries, as the README and each `--help` document them. Lower layers
//! return typed outcomes (`daemon::Onetime`, `etcd::Error`, `daemon::LoadError`); only here
//! do they become numbers.

/// Both binaries: success.
pub const OK: i32 = 0;
/// Both binaries: no etcd endpoint answered (refused, timeout, TLS, auth), or the SRV record
/// giving the endpoints could not be resolved.
pub const UNAVAILABLE: i32 = 3;

/// `etcd-util`'s codes; a [`CliError`](super::CliError) carries one of these.
pub mod etcd_util {
    pub use super::{OK, UNAVAILABLE};
    /// etcd refused the operation (e.g. a directory without -r).
    pub const FAILED: i32 = 1;
    /// Bad command line, or a flag's file (TLS, password) that cannot be used.
    pub const USAGE: i32 = 2;
    /// The key does not exist.
    pub const NOT_FOUND: i32 = 4;
    /// MIGRATE: keys in v3 hold values other than v2's and were not overwritten.
    pub const CONFLICTS: i32 = 5;
}

/// `reconfig`'s codes. `OK`: every resource converged (`--onetime`), or the daemon stopped
/// on TERM/INT. `UNAVAILABLE`: `--onetime` read nothing from etcd; either mode: the SRV
/// record giving the endpoints could not be resolved at start-up.
pub mod reconfig {
    pub use super::{OK, UNAVAILABLE};
    /// Bad command line or configuration (an unusable `--state-dir` too): nothing was
    /// started.
    pub const CONFIG: i32 = 1;
    /// `--onetime`: at least one resource did not converge (a guard's refusal or a reload
    /// still owed included), or a resource file was skipped as invalid.
    pub const NOT_CONVERGED: i32 = 2;
    /// `--onetime --notreally`: every resource could be rendered and checked, and at least
    /// one file would change (a drift signal for cron and CI).
    pub const WOULD_CHANGE: i32 = 4;
    /// `--check`: a resource file or a template is invalid (bad JSON, a missing field, a
    /// template syntax error), or conf.d holds no resource file.
    pub const CHECK_INVALID: i32 = 1;
    /// `--check`: every file is valid, but a resource does not render against the live data
    /// (a render error, or its watched key does not exist). `UNAVAILABLE` when etcd could not
    /// be read instead.
    pub const CHECK_RENDER_FAILED: i32 = 2;
}

/// `reconfig status`'s codes.
pub mod status {
    pub use super::OK;
    /// Bad command line, or the status file is missing, unreadable or not a status document.
    pub const UNREADABLE: i32 = 1;
    /// At least one resource's last pass failed.
    pub const FAILING: i32 = 2;
}
