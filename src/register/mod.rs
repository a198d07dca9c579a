//! `etcd-util -o REGISTER`: a backend announces itself in etcd for as long as it runs.
//!
//! The key is written with a time to live and renewed every third of it without waking
//! watchers (v2 `refresh=true`, v3 lease keepalive), so the reconfig daemons that follow the
//! key are woken only when a backend comes or goes. When a renewal finds the key gone (etcd
//! was down longer than the TTL), the key is written again. TERM or INT deletes it at once;
//! a backend that dies without deleting it drops out when its TTL runs out.
//!
//! With a health check ([`HealthCheck`]) the key exists only while the check passes.
//!
//! The log has one line per change of state (registered, expired, etcd unreachable, etcd
//! back, check failed, check passes, stopped), never one per renewal.

mod check;

pub use check::HealthCheck;

use crate::apply::human_duration;
use crate::etcd::{Client, Error, Lease, Renewal};
use crate::stop::Stop;
use check::CheckOutcome;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// The longest wait before trying again after etcd did not answer or refused: a key that
/// expired during an outage is back within this of etcd answering again.
const RETRY_AT_MOST: Duration = Duration::from_secs(1);

/// What to register.
#[derive(Debug, Clone)]
pub struct Registration {
    pub key: String,
    pub value: String,
    /// Seconds the key lives without renewal.
    pub ttl: u64,
    pub check: Option<HealthCheck>,
}

/// Why registering ended other than by TERM/INT.
#[derive(Debug)]
pub enum RegisterError {
    /// etcd refused the first write (credentials, a key it will not take): retrying would
    /// not help. An unreachable etcd is not an error: it is retried until it answers.
    Refused(Error),
    /// The signal handlers or the check thread could not be set up.
    Setup(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Refused(e) => e.fmt(f),
            RegisterError::Setup(what) => f.write_str(what),
        }
    }
}

/// What wakes the loop besides its renewal timer.
enum Wake {
    Signal(i32),
    Check(CheckOutcome),
}

impl From<CheckOutcome> for Wake {
    fn from(outcome: CheckOutcome) -> Wake {
        Wake::Check(outcome)
    }
}

/// Keeps the key registered until TERM or INT, then deletes it. Returns early only when
/// etcd refuses the very first write.
pub fn run(client: &Client, registration: &Registration) -> Result<(), RegisterError> {
    let (wake, woken) = mpsc::channel();
    let signals = forward_signals(wake.clone())?;
    let stop = Stop::new();
    let checks =
        match &registration.check {
            Some(check) => Some(check.spawn(stop.clone(), wake).map_err(|e| {
                RegisterError::Setup(format!("cannot start the health check: {e}"))
            })?),
            None => None,
        };
    let mut keeper = Keeper::new(client, registration);
    let ended = keeper.serve(&woken);
    // A running check is killed (TERM, then KILL a second later) while the key is
    // deleted, which must not wait for it; joined after, so that nothing it started
    // outlives etcd-util.
    stop.stop();
    signals.close();
    let stopped = ended.map(|signal| keeper.stop(signal));
    if let Some(checks) = checks {
        let _ = checks.join();
    }
    stopped
}

/// Sends TERM and INT to the loop as they arrive.
fn forward_signals(wake: Sender<Wake>) -> Result<signal_hook::iterator::Handle, RegisterError> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| RegisterError::Setup(format!("cannot install signal handlers: {e}")))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            for signal in signals.forever() {
                if wake.send(Wake::Signal(signal)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| RegisterError::Setup(format!("cannot start the signal thread: {e}")))?;
    Ok(handle)
}

/// Why the key is not registered right now, as last logged: a lasting trouble is logged
/// once, when it starts, and its end once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    /// No endpoint answered.
    Unreachable,
    /// etcd answered with a refusal.
    Refused,
}

/// The key's state and what the next timer tick does with it.
struct Keeper<'a> {
    client: &'a Client,
    registration: &'a Registration,
    /// Set while the key is written and renewed.
    lease: Option<Lease>,
    /// The health check's last outcome (passed); `None` before its first, or without one.
    check_passed: Option<bool>,
    /// Whether the key was ever written: before that, a refusal ends the program.
    written_once: bool,
    trouble: Option<Trouble>,
    /// When to write or renew next; `None` while the key is not wanted (the health check
    /// fails, or has not passed yet).
    due: Option<Instant>,
}

impl<'a> Keeper<'a> {
    fn new(client: &'a Client, registration: &'a Registration) -> Keeper<'a> {
        Keeper {
            client,
            registration,
            lease: None,
            check_passed: None,
            written_once: false,
            trouble: None,
            // With a health check, nothing is written before it passed once.
            due: registration.check.is_none().then(Instant::now),
        }
    }

    /// Every third of the TTL: two renewals may fail before the key expires.
    fn renew_every(&self) -> Duration {
        Duration::from_secs(self.registration.ttl) / 3
    }

    /// Writes, renews and follows the health check until a signal; the signal.
    fn serve(&mut self, woken: &Receiver<Wake>) -> Result<i32, RegisterError> {
        loop {
            let wake = match self.due {
                Some(due) => {
                    match woken.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(wake) => Some(wake),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return Err(threads_gone()),
                    }
                }
                None => Some(woken.recv().map_err(|_| threads_gone())?),
            };
            match wake {
                None => self.tick()?,
                Some(Wake::Signal(signal)) => return Ok(signal),
                Some(Wake::Check(outcome)) => self.checked(outcome),
            }
        }
    }

    /// The timer: write the key when it is not there, else renew it.
    fn tick(&mut self) -> Result<(), RegisterError> {
        let key = &self.registration.key;
        let done = match self.lease {
            None => self.write(),
            Some(lease) => match self.client.renew(key, lease, self.registration.ttl) {
                Ok(Renewal::Renewed) => {
                    log::debug!("renewed {key}");
                    Ok(())
                }
                Ok(Renewal::Expired) => {
                    log::warn!(
                        "{key} had expired (etcd was out of reach for longer than its TTL, or \
                         someone deleted it); writing it again"
                    );
                    self.lease = None;
                    self.write()
                }
                Err(e) => Err(e),
            },
        };
        match done {
            Ok(()) => {
                if self.trouble.take().is_some() {
                    log::info!("etcd answers again: {key} is registered");
                }
                self.due = Some(Instant::now() + self.renew_every());
                Ok(())
            }
            Err(e) if !self.written_once && !e.is_outage() => Err(RegisterError::Refused(e)),
            Err(e) => {
                self.troubled(&e);
                self.due = Some(Instant::now() + self.renew_every().min(RETRY_AT_MOST));
                Ok(())
            }
        }
    }

    /// Writes the key with a fresh TTL (v3: a new lease).
    fn write(&mut self) -> Result<(), Error> {
        let Registration {
            key, value, ttl, ..
        } = self.registration;
        self.lease = Some(self.client.put_with_lease(key, value, *ttl)?);
        if !self.written_once {
            log::info!(
                "registered {key} = {value:?} with a TTL of {ttl}s, renewed every {}",
                human_duration(self.renew_every())
            );
        }
        self.written_once = true;
        Ok(())
    }

    /// Logs a failure to write or renew when it is a new kind of trouble.
    fn troubled(&mut self, error: &Error) {
        let key = &self.registration.key;
        let trouble = if error.is_outage() {
            Trouble::Unreachable
        } else {
            Trouble::Refused
        };
        if self.trouble == Some(trouble) {
            log::debug!("{key}: still failing: {error}");
            return;
        }
        self.trouble = Some(trouble);
        let retry = human_duration(self.renew_every().min(RETRY_AT_MOST));
        match trouble {
            Trouble::Unreachable => log::warn!(
                "cannot keep {key} registered: etcd does not answer ({error}); retrying \
                 every {retry} until it does"
            ),
            Trouble::Refused => {
                log::warn!("cannot keep {key} registered: {error}; retrying every {retry}")
            }
        }
    }

    /// A health check's outcome: deletes the key when the check starts failing, writes it
    /// when it passes again.
    fn checked(&mut self, outcome: CheckOutcome) {
        let key = &self.registration.key;
        let before = self.check_passed.replace(outcome.is_ok());
        if before == Some(outcome.is_ok()) {
            return;
        }
        match outcome {
            Ok(()) => {
                if before.is_some() {
                    log::info!("health check passes again: registering {key}");
                }
                self.due = Some(Instant::now());
            }
            Err(failure) => {
                self.due = None;
                match self.release() {
                    Ok(Released::Deleted) => {
                        log::warn!("deleted {key}: the health check failed: {failure}")
                    }
                    Ok(Released::NotWritten) => log::warn!(
                        "{key} is not registered until the health check passes; it failed: \
                         {failure}"
                    ),
                    Err(e) => log::warn!(
                        "{key} is to be deleted, but etcd did not take the delete ({e}): it \
                         expires within {}s; the health check failed: {failure}",
                        self.registration.ttl
                    ),
                }
            }
        }
    }

    /// Deletes the key (v3: revokes its lease), if written. `Err` when etcd did not take
    /// the delete: the key then goes when its TTL runs out.
    fn release(&mut self) -> Result<Released, Error> {
        match self.lease.take() {
            Some(lease) => self
                .client
                .release(&self.registration.key, lease)
                .map(|()| Released::Deleted),
            None => Ok(Released::NotWritten),
        }
    }

    /// The end of a registration on a signal, in one line.
    fn stop(&mut self, signal: i32) {
        let key = &self.registration.key;
        match self.release() {
            Ok(Released::Deleted) => log::info!("stopping on signal {signal}: deleted {key}"),
            Ok(Released::NotWritten) => {
                log::info!("stopping on signal {signal}: {key} was not registered")
            }
            Err(e) => log::warn!(
                "stopping on signal {signal}: could not delete {key} ({e}); it expires within \
                 {}s",
                self.registration.ttl
            ),
        }
    }
}

/// What [`Keeper::release`] did.
enum Released {
    Deleted,
    /// The key was not written (or not since its last delete): nothing to delete.
    NotWritten,
}

fn threads_gone() -> RegisterError {
    RegisterError::Setup("the signal and health check threads ended".to_string())
}
