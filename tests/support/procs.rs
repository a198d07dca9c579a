//! Every process a fixture started, found again however it was re-parented, and killed.
//!
//! reconfig runs each check and reload command in a session of its own, and once the daemon
//! is gone they belong to init: neither the parent links nor the process group lead from such
//! a command (or the `sleep` it forked) back to its test. The environment does, because every
//! process inherits it. So each fixture process gets its own `RECONFIG_TEST_TREE` value, and
//! dropping the [`Tree`] kills, by PID, every process whose environment holds that value:
//! nothing another test or anyone else on the machine started. A command that clears its
//! environment on purpose escapes this; no test does that.
//!
//! `make test` marks the whole run the same way (`RECONFIG_TEST_RUN`) and fails when a
//! process of it is still alive afterwards: scripts/leak-check.sh.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const VARIABLE: &str = "RECONFIG_TEST_TREE";
/// How long [`Tree::kill_all`] keeps finding and killing processes of the tree.
const KILL_WITHIN: Duration = Duration::from_secs(5);

/// The processes started from [`Tree::command`] and all their descendants; killed on drop.
pub struct Tree {
    value: String,
}

impl Tree {
    pub fn new() -> Tree {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Tree {
            value: format!("{}-{n}", std::process::id()),
        }
    }

    /// A command whose process, and everything it starts, belongs to this tree.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env(VARIABLE, &self.value);
        command
    }

    /// The live processes of the tree (zombies have no environment left and do not count).
    pub fn pids(&self) -> Vec<libc::pid_t> {
        let entry = format!("{VARIABLE}={}", self.value);
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|v| v == entry.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// SIGKILLs the tree's processes, scanning again until none is left, since a shell may
    /// fork between a scan and its kill (bounded by [`KILL_WITHIN`]).
    pub fn kill_all(&self) {
        let deadline = Instant::now() + KILL_WITHIN;
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) on a PID that holds this tree's marker: a process this
                // fixture started, or one of its descendants.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.kill_all();
    }
}
