//! `--check-cmd`: the local health check that decides whether the key should exist, run
//! on a thread of its own so that a slow check never delays a renewal.

use crate::apply::{run_command, ShellCommand};
use crate::stop::Stop;
use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A health check: `sh -c command` every `interval`, failed when it runs past `timeout`.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// What one run of the check found: `Err` says how it failed, with its output.
pub type CheckOutcome = Result<(), String>;

impl HealthCheck {
    /// Runs the check now, then every interval, sending each outcome, until `stop`. The
    /// check runs in a process group of its own, killed (TERM, then KILL) when it overruns
    /// its timeout or when `stop` is raised, so nothing it started outlives the program.
    pub fn spawn<T: From<CheckOutcome> + Send + 'static>(
        &self,
        stop: Stop,
        outcomes: Sender<T>,
    ) -> std::io::Result<JoinHandle<()>> {
        let check = self.clone();
        let shell = ShellCommand {
            script: check.command.clone().into(),
            display: check.command.clone(),
            env: Vec::new(),
        };
        thread::Builder::new()
            .name("health-check".to_string())
            .spawn(move || loop {
                let outcome = run_command(&shell, check.timeout, &stop)
                    .map(drop)
                    .map_err(|e| e.to_string());
                // Once stopping, the outcome is the kill: nobody needs it.
                if stop.is_stopped() || outcomes.send(T::from(outcome)).is_err() {
                    return;
                }
                if stop.sleep(check.interval) {
                    return;
                }
            })
    }
}
