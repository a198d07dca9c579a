//! One watch per distinct (key, recursive), shared by every resource that renders it.
//!
//! A watch reads its key once (through the generation's `SnapshotCache`, so the resources'
//! passes can share that read), subscribes to the changes after the read's index and tells
//! the scheduler of each one; the scheduler fans it out to the resources that follow the
//! key. 100 resources on one key hold one long-poll (v2) or watch stream (v3), not 100.
//!
//! Nothing is lost: the resources' passes read snapshots holding at least the index last
//! reported, and every change after the watch's read is reported in order. When the changes
//! cannot be told (history gone, etcd restored, the watch timeout passed) or etcd could not
//! be asked, the watch reads again and reports the new index, which makes every resource
//! of the key pass again.

use crate::backoff::Backoff;
use crate::etcd::{self, Change, Freshness, Received, SnapshotCache};
use crate::stop::Stop;
use std::slice;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// What a watch tells the scheduler.
#[derive(Debug)]
pub enum Report {
    /// The key was read at `index` (`change` is `None`), or `change` came at `index`.
    Changed {
        watch: usize,
        index: u64,
        change: Option<Change>,
    },
    /// The key could not be read or followed; the watch retries by itself.
    Failed { watch: usize, error: etcd::Error },
}

/// One key to follow.
pub struct Watch {
    /// Its number among the generation's watches, in every report.
    pub id: usize,
    pub key: String,
    pub recursive: bool,
}

impl Watch {
    /// Follows the key until the generation stops (its client is shut down) or nobody
    /// listens. `reports` gets each change as `into` makes it a message.
    pub fn run<M>(
        self,
        snapshots: &SnapshotCache,
        generation: &Stop,
        max_backoff: Duration,
        reports: &Sender<M>,
        into: impl Fn(Report) -> M,
    ) {
        let send = |report: Report| reports.send(into(report)).is_ok();
        let mut backoff = Backoff::new(max_backoff);
        let mut fresh = Freshness::read_after(snapshots.created());
        while !generation.is_stopped() {
            let attempted = Instant::now();
            let index = match snapshots.snapshot(&self.key, self.recursive, fresh) {
                Ok(read) => read.index,
                Err(etcd::Error::Shutdown) => return,
                Err(error) => {
                    let outage = error.is_outage();
                    if !send(self.failed(error))
                        || pause(snapshots, generation, outage, attempted, &mut backoff)
                    {
                        return;
                    }
                    fresh = Freshness::now();
                    continue;
                }
            };
            backoff.reset();
            if !send(self.changed(index, None)) {
                return;
            }
            let mut changes = snapshots
                .client()
                .subscribe(&self.key, self.recursive, index);
            loop {
                let asked = Instant::now();
                let after = changes.after();
                match changes.recv() {
                    Received::Change(change) => {
                        // Keeps the shared read current, so that the resources' passes
                        // need not read the tree again (when the cache still holds it).
                        let advanced = snapshots.advance(
                            &self.key,
                            self.recursive,
                            after,
                            slice::from_ref(&change),
                        );
                        if advanced.is_some() {
                            log::debug!(
                                "{}: applied the change at index {} to the kept snapshot",
                                self.key,
                                change.index
                            );
                        }
                        if !send(self.changed(change.index, Some(change))) {
                            return;
                        }
                    }
                    Received::Quiet | Received::ReadAgain => break,
                    Received::Stopped => return,
                    Received::Failed(error) => {
                        let outage = error.is_outage();
                        if !send(self.failed(error))
                            || pause(snapshots, generation, outage, asked, &mut backoff)
                        {
                            return;
                        }
                        break;
                    }
                }
            }
            fresh = Freshness::now();
        }
    }

    fn changed(&self, index: u64, change: Option<Change>) -> Report {
        Report::Changed {
            watch: self.id,
            index,
            change,
        }
    }

    fn failed(&self, error: etcd::Error) -> Report {
        Report::Failed {
            watch: self.id,
            error,
        }
    }
}

/// Waits before reading again after etcd failed. After an outage (no endpoint answered the
/// request made at `attempted`): until etcd answers again, which every user of the client
/// learns at once. Otherwise: the backoff. Returns true when the generation was stopped.
fn pause(
    snapshots: &SnapshotCache,
    generation: &Stop,
    outage: bool,
    attempted: Instant,
    backoff: &mut Backoff,
) -> bool {
    if outage {
        return !snapshots
            .client()
            .await_recovery(attempted, || generation.is_stopped());
    }
    generation.sleep(backoff.next_pause())
}
