//! A reconfig config dir in a temp dir, and the real `reconfig` binary run against it.

use super::procs::Tree;
use super::{eventually, wait_output, Etcd};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

pub const RECONFIG: &str = env!("CARGO_BIN_EXE_reconfig");

/// How long a dropped [`Daemon`] gets to stop on SIGTERM (reconfig stops within a second,
/// plus a second for its running commands to take SIGTERM) before it gets SIGKILL.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A template listing every leaf as `key=value`, one per line.
pub const LIST: &str = "{% for k, v in reconfig.data|items %}{{ k }}={{ v }}\n{% endfor %}";

/// `cfgdir/conf.d`, `cfgdir/templates` and an `out/` dir for targets and markers.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("conf.d")).expect("conf.d");
        std::fs::create_dir_all(dir.path().join("templates")).expect("templates");
        std::fs::create_dir_all(dir.path().join("out")).expect("out");
        Setup { dir }
    }

    pub fn cfgdir(&self) -> &Path {
        self.dir.path()
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }

    pub fn template(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("templates").join(name), text).expect("template");
    }

    /// A recursive resource `name` on `key` rendering [`LIST`] into `out/<name>.conf`, with a
    /// reload command that appends a line to `out/<name>.reloads`.
    pub fn list_resource(&self, name: &str, key: &str) -> serde_json::Value {
        self.list_resource_at(name, key, &self.out(&format!("{name}.conf")))
    }

    /// [`Setup::list_resource`] with another target.
    pub fn list_resource_at(&self, name: &str, key: &str, target: &Path) -> serde_json::Value {
        self.template("list.tmpl", LIST);
        serde_json::json!({
            "id": name,
            "key": key,
            "recursive": true,
            "source": "list.tmpl",
            "target": target,
            "reloadcmd": format!("echo reload >> {}", self.out(&format!("{name}.reloads")).display()),
        })
    }

    /// Writes `conf.d/<name>.json`.
    pub fn resource(&self, name: &str, json: serde_json::Value) {
        std::fs::write(
            self.dir.path().join("conf.d").join(format!("{name}.json")),
            serde_json::to_string_pretty(&json).expect("json"),
        )
        .expect("resource file");
    }

    /// `--state-dir`'s value for every run of this setup: a run never writes to the
    /// machine's `/var/lib/reconfig`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn args<'a>(&'a self, etcd: &'a Etcd, extra: &[&'a str]) -> Vec<String> {
        let mut args = vec![
            "--endpoints".to_string(),
            etcd.url(),
            "--cfgdir".to_string(),
            self.cfgdir().display().to_string(),
            "--state-dir".to_string(),
            self.state_dir().display().to_string(),
        ];
        args.extend(etcd.api_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `reconfig --onetime` to completion; whatever its commands left running is killed.
    pub fn onetime(&self, etcd: &Etcd, extra: &[&str]) -> Output {
        let mut args = self.args(etcd, extra);
        args.push("--onetime".to_string());
        let tree = Tree::new();
        let child = tree
            .command(RECONFIG)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reconfig");
        wait_output(child, Duration::from_secs(60))
    }

    /// Starts the daemon; its stderr goes to `out/daemon.log`.
    pub fn daemon(&self, etcd: &Etcd, extra: &[&str]) -> Daemon {
        let log = self.dir.path().join("daemon.log");
        let tree = Tree::new();
        let child = tree
            .command(RECONFIG)
            .args(self.args(etcd, extra))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn reconfig");
        Daemon {
            child: Some(child),
            log,
            _tree: tree,
        }
    }
}

/// The running daemon. Dropping it stops it as an operator would (SIGTERM, which also stops
/// its running commands; SIGKILL if it does not exit in time), and then the `_tree` field,
/// dropped last, kills any process the daemon or its commands left behind.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
    _tree: Tree,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Sends `signal` to the daemon (not to PID 0, our own group, once it was reaped).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the PID of a child this fixture started and has not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `text`.
    pub fn wait_log(&self, text: &str, within: Duration) -> bool {
        eventually(within, || self.log_text().contains(text))
    }

    /// Sends SIGTERM and waits for the exit; returns the output and how long it took.
    pub fn terminate(mut self) -> (Output, Duration) {
        let started = std::time::Instant::now();
        self.signal(libc::SIGTERM);
        let child = self.child.take().expect("running");
        let out = wait_output(child, Duration::from_secs(10));
        (out, started.elapsed())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_WITHIN;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Waits until `path` holds exactly `content`.
pub fn wait_content(path: &Path, content: &str, within: Duration) -> bool {
    eventually(within, || {
        std::fs::read_to_string(path).ok().as_deref() == Some(content)
    })
}

/// Lines of a marker file that commands append to (e.g. one line per reload).
pub fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}
