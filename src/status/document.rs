//! The status document: what `--status-file` holds and `reconfig status` reads. Times are
//! Unix seconds (UTC), so scripts and the metrics need no date parsing.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bumped when a field changes meaning or disappears (added fields keep the version).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub version: u32,
    /// The reconfig process that wrote it.
    pub pid: u32,
    pub mode: Mode,
    pub written_at: u64,
    /// Sorted by id.
    pub resources: Vec<ResourceStatus>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Daemon,
    Onetime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceStatus {
    pub id: String,
    pub target: String,
    /// The watched key (prefix applied).
    pub key: String,
    pub state: State,
    /// The etcd index (v2) or revision (v3) of the data the target was last converged to.
    pub applied_index: Option<u64>,
    /// When a pass last ended converged (target installed or already up to date).
    pub applied_at: Option<u64>,
    /// When the target was last rewritten (kept across restarts while the target is the same).
    pub changed_at: Option<u64>,
    /// The problem the last pass ended with; `None` once a pass succeeds.
    pub error: Option<LastError>,
    /// The last run of the check command (`None`: none configured or none run yet).
    pub check: Option<CommandResult>,
    /// The last run of the reload command.
    pub reload: Option<CommandResult>,
    /// When the reload command last succeeded.
    pub reloaded_at: Option<u64>,
    /// Whether the last read of etcd (snapshot or watch) succeeded.
    pub watch_connected: bool,
    /// A new file is installed but its reload failed or was interrupted: it is retried.
    pub reload_pending: bool,
    pub counters: Counters,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No pass has ended yet.
    Starting,
    /// The last pass converged.
    Ok,
    /// The last pass failed; see `error`.
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastError {
    /// etcd, missing, refused (a guard: min_keys, max_shrink, values), render, install,
    /// check, reload or internal (a bug in reconfig ended the pass).
    pub kind: String,
    pub text: String,
    /// When this kind of problem started (it may have been retried since).
    pub since: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandResult {
    pub ok: bool,
    pub at: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts since the process started (Prometheus counters: they reset on restart).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    pub renders: u64,
    pub installs: u64,
    pub check_failures: u64,
    pub reload_failures: u64,
    pub watch_reconnects: u64,
}

impl Document {
    /// Whether any resource's last pass failed.
    pub fn has_errors(&self) -> bool {
        self.resources.iter().any(|r| r.state == State::Error)
    }
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
