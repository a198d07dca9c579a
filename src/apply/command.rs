//! Running check and reload commands safely.
//!
//! A command runs as `sh -c COMMAND` in its own process group, with
//! stdin from /dev/null and stdout/stderr read by two threads that keep a bounded head and tail
//! of each stream. It is given a deadline; on timeout or on a stop request the whole process
//! group gets SIGTERM, then SIGKILL about a second later, so forked children die too.
//!
//! The shell is not reaped until we are done signalling its group: while it is an unreaped
//! zombie its pid (and so the group id) cannot be reused by an unrelated process.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::stop::Stop;

/// Bytes kept from the start of each output stream.
const HEAD_BYTES: usize = 32 * 1024;
/// Bytes kept from the end of each output stream (head + tail = 64 KiB per stream).
const TAIL_BYTES: usize = 32 * 1024;
/// The longest pause between checks of a running command for exit, timeout and stop.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a process group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// How long a shell that got SIGKILL may take to die before we stop waiting for it.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long we wait for the output pipes to close once the shell is gone. A process that left
/// the group (a daemon started by a reload command) may hold them open for its whole life; its
/// reader threads are then left to drain it in the background (bounded memory) instead of
/// blocking us.
const READER_GRACE: Duration = Duration::from_millis(500);

/// A check or reload command after placeholder substitution.
#[derive(Debug)]
pub(crate) struct ShellCommand {
    /// The text `sh -c` runs.
    pub script: OsString,
    /// The command as messages show it, with the real paths.
    pub display: String,
    /// Variables set for it (the paths its placeholders refer to).
    pub env: Vec<(String, OsString)>,
}

/// Why a check or reload command failed, with what it printed.
#[derive(Debug)]
pub struct CommandError {
    /// The command as run by `sh -c`, with its placeholders shown as the real paths.
    pub command: String,
    pub failure: CommandFailure,
    /// Captured stderr, at most 64 KiB (head and tail, with a truncation note).
    pub stderr: String,
    /// Captured stdout, same limits; shown when stderr is empty (many checkers print there).
    pub stdout: String,
}

#[derive(Debug)]
pub enum CommandFailure {
    /// `sh` could not be started.
    Spawn(io::Error),
    /// Exited with a non-zero status.
    Exit(i32),
    /// Killed by a signal it did not get from us.
    Signal(i32),
    /// Ran past its timeout; its process group was killed.
    TimedOut(Duration),
    /// reconfig is shutting down; its process group was killed.
    Stopped,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandFailure::Spawn(error) => write!(f, "could not be started: {error}"),
            CommandFailure::Exit(code) => write!(f, "exited with status {code}"),
            CommandFailure::Signal(signal) => write!(f, "was killed by signal {signal}"),
            CommandFailure::TimedOut(limit) => {
                write!(
                    f,
                    "timed out after {} and was killed",
                    human_duration(*limit)
                )
            }
            CommandFailure::Stopped => write!(f, "was killed because reconfig is stopping"),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command `{}` {}", self.command, self.failure)?;
        let output = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        if !output.is_empty() {
            write!(f, "; its output:\n{output}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CommandError {}

/// Formats whole seconds as "30s", anything else as "1.5s" / "250ms".
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// Runs `command` with `sh -c`; returns how long it took when it exits with status 0.
pub(crate) fn run(
    command: &ShellCommand,
    timeout: Duration,
    stop: &Stop,
) -> Result<Duration, CommandError> {
    let started = Instant::now();
    let display = &command.display;
    let fail = |failure, stdout: &Capture, stderr: &Capture| CommandError {
        command: display.clone(),
        failure,
        stdout: stdout.text(),
        stderr: stderr.text(),
    };
    let mut child = match spawn_shell(command) {
        Ok(child) => child,
        Err(error) => {
            let empty = Capture::default();
            return Err(fail(CommandFailure::Spawn(error), &empty, &empty));
        }
    };
    let stdout = Arc::new(Mutex::new(Capture::default()));
    let stderr = Arc::new(Mutex::new(Capture::default()));
    let readers = match start_readers(&mut child, &stdout, &stderr) {
        Ok(readers) => readers,
        Err(error) => {
            terminate_group(&child);
            let _ = child.wait();
            let empty = Capture::default();
            return Err(fail(CommandFailure::Spawn(error), &empty, &empty));
        }
    };
    let ending = supervise(&child, started + timeout, stop);
    // Reaping only now keeps the group id reserved for as long as we might signal it.
    let status = match ending {
        Ending::Exited => child.wait(),
        Ending::TimedOut | Ending::Stopped => reap_killed(&mut child, display),
    };
    wait_for_readers(readers);
    let stdout = lock(&stdout);
    let stderr = lock(&stderr);
    match (ending, status) {
        (Ending::Exited, Ok(status)) if status.success() => Ok(started.elapsed()),
        (Ending::Exited, Ok(status)) => Err(fail(exit_failure(status), &stdout, &stderr)),
        (Ending::Exited, Err(error)) => Err(fail(CommandFailure::Spawn(error), &stdout, &stderr)),
        (Ending::TimedOut, _) => Err(fail(CommandFailure::TimedOut(timeout), &stdout, &stderr)),
        (Ending::Stopped, _) => Err(fail(CommandFailure::Stopped, &stdout, &stderr)),
    }
}

fn spawn_shell(command: &ShellCommand) -> io::Result<Child> {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(&command.script)
        .envs(command.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that TERM can kill the command and everything it started
    // (`signal_group`), while a signal sent to reconfig's group (SIGHUP to reload conf.d,
    // a terminal's ^C) does not reach it. Unlike a `pre_exec` hook (setsid), this lets std
    // spawn with posix_spawn instead of fork, which matters with 100 reloads at once.
    shell.process_group(0);
    shell.spawn()
}

fn exit_failure(status: ExitStatus) -> CommandFailure {
    match (status.code(), status.signal()) {
        (Some(code), _) => CommandFailure::Exit(code),
        (None, Some(signal)) => CommandFailure::Signal(signal),
        (None, None) => CommandFailure::Exit(-1),
    }
}

enum Ending {
    Exited,
    TimedOut,
    Stopped,
}

/// Waits (without reaping) until the shell exits, the deadline passes or a stop is requested;
/// in the last two cases its process group is killed.
fn supervise(child: &Child, deadline: Instant, stop: &Stop) -> Ending {
    // Most checks and reloads take milliseconds: poll fast first, then back off, so a
    // quick command does not cost a whole poll interval of latency.
    let mut interval = Duration::from_millis(1);
    loop {
        if has_exited(child) {
            return Ending::Exited;
        }
        let now = Instant::now();
        if now >= deadline {
            terminate_group(child);
            return Ending::TimedOut;
        }
        if stop.sleep(interval.min(deadline - now)) {
            terminate_group(child);
            return Ending::Stopped;
        }
        interval = (interval * 2).min(POLL_INTERVAL);
    }
}

/// True once the child has exited; it stays an unreaped zombie (`WNOWAIT`).
fn has_exited(child: &Child) -> bool {
    // SAFETY: siginfo_t is plain data; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: valid pointer to a local siginfo_t; the pid is our own unreaped child.
    let rc = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, flags) };
    // An error (ECHILD) means there is nothing left to wait for.
    // SAFETY: si_pid is valid to read for SIGCHLD-style siginfo filled by waitid.
    rc != 0 || unsafe { info.si_pid() } != 0
}

/// SIGTERM to the child's process group, up to [`TERM_GRACE`] for the shell to exit, then
/// SIGKILL to the group so that children ignoring SIGTERM die as well.
///
/// The short polls here use a plain sleep on purpose: a stop request must not cut the grace.
fn terminate_group(child: &Child) {
    let group = child.id() as libc::pid_t;
    signal_group(group, libc::SIGTERM);
    let deadline = Instant::now() + TERM_GRACE;
    while !has_exited(child) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    signal_group(group, libc::SIGKILL);
}

/// Reaps a shell that was sent SIGKILL. A process stuck in the kernel (a hung NFS mount) can
/// outlive SIGKILL; rather than block the resource for ever it is left behind after a while.
fn reap_killed(child: &mut Child, command: &str) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + KILL_WAIT;
    while !has_exited(child) {
        if Instant::now() >= deadline {
            log::warn!(
                "`{command}` (pid {}) did not die after SIGKILL; leaving it behind",
                child.id()
            );
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait()
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
    // ESRCH (group already gone) is the only expected error and needs no handling.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// The first [`HEAD_BYTES`] and last [`TAIL_BYTES`] of a stream, and how long it was.
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = HEAD_BYTES.saturating_sub(self.head.len()).min(bytes.len());
        let (head, rest) = bytes.split_at(room);
        self.head.extend_from_slice(head);
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
    }

    fn text(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            text.push_str(&format!("\n… ({} bytes truncated) …\n", self.total - kept));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

fn lock(capture: &Mutex<Capture>) -> std::sync::MutexGuard<'_, Capture> {
    capture.lock().unwrap_or_else(PoisonError::into_inner)
}

fn start_readers(
    child: &mut Child,
    stdout: &Arc<Mutex<Capture>>,
    stderr: &Arc<Mutex<Capture>>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let mut readers = Vec::with_capacity(2);
    if let Some(pipe) = child.stdout.take() {
        readers.push(spawn_reader(pipe, Arc::clone(stdout))?);
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(spawn_reader(pipe, Arc::clone(stderr))?);
    }
    Ok(readers)
}

/// Drains `pipe` to its end, keeping a bounded capture, so the command never blocks on a full
/// pipe however much it prints.
fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<Capture>>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("command-output".to_string())
        .spawn(move || {
            let mut buffer = [0u8; 8192];
            loop {
                match pipe.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => lock(&sink).push(&buffer[..n]),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        })
}

/// Joins the readers that finish within [`READER_GRACE`]; the others are detached.
fn wait_for_readers(readers: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + READER_GRACE;
    while readers.iter().any(|reader| !reader.is_finished()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    for reader in readers.into_iter().filter(|reader| reader.is_finished()) {
        let _ = reader.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(command: &str, timeout: Duration) -> Result<Duration, CommandError> {
        let command = ShellCommand {
            script: OsString::from(command),
            display: command.to_string(),
            env: Vec::new(),
        };
        run(&command, timeout, &Stop::new())
    }

    #[test]
    fn success_and_exit_status_with_stderr() {
        assert!(sh("true", Duration::from_secs(5)).is_ok());
        let error = sh("echo broken config >&2; exit 3", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(error.failure, CommandFailure::Exit(3)));
        assert_eq!(error.stderr, "broken config\n");
        let text = error.to_string();
        assert!(text.contains("exited with status 3"), "{text}");
        assert!(text.contains("broken config"), "{text}");
    }

    #[test]
    fn stdout_shown_when_stderr_is_empty() {
        let error = sh(
            "echo syntax error on line 4; exit 1",
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(error.to_string().contains("syntax error on line 4"));
    }

    #[test]
    fn killed_by_signal_is_reported() {
        let error = sh("kill -9 $$", Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(error.failure, CommandFailure::Signal(9)),
            "{error}"
        );
    }

    #[test]
    fn stdin_is_null() {
        // `cat` would hang forever on an inherited terminal or pipe.
        assert!(sh("cat", Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn capture_keeps_head_and_tail_and_counts_the_rest() {
        let mut capture = Capture::default();
        capture.push(b"start");
        capture.push(&vec![b'x'; 100_000]);
        capture.push(b"end");
        let text = capture.text();
        assert!(text.starts_with("startxxx"));
        assert!(text.ends_with("xxxend"));
        let dropped = 100_008 - HEAD_BYTES - TAIL_BYTES;
        assert!(
            text.contains(&format!("({dropped} bytes truncated)")),
            "{}",
            &text[..100]
        );
        assert!(text.len() < HEAD_BYTES + TAIL_BYTES + 100);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(30)), "30s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }
}
