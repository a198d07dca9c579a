//! The steps of a pass as pool jobs, and what brings the resource's watcher (or its
//! reload's outcome) back to the scheduler however a job ends.

use super::{Notice, Pools, Step};
use crate::apply::{self, ReloadResult};
use crate::etcd::Freshness;
use crate::resource::Resource;
use crate::stop::Stop;
use crate::watch::{Installed, PassError, Watcher};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// Read and render on the render pool; the install goes on to the install pool.
pub(super) fn render_step(mut handoff: Handoff, fresh: Freshness, pools: &Arc<Pools>) {
    match handoff.watcher().prepare(fresh) {
        Ok(texts) => pools.install.spawn(move || install_step(handoff, &texts)),
        Err(e) => {
            // A reload owed for files installed earlier runs even though this pass failed.
            let watcher = handoff.watcher();
            if watcher.owes_reload_despite(&e) {
                watcher.report(&e);
                handoff.finish(Step::ReloadOwed { changed: false });
            } else {
                handoff.finish(Step::Done(Err(e)));
            }
        }
    }
}

fn install_step(mut handoff: Handoff, texts: &[String]) {
    let step = match handoff.watcher().install(texts) {
        Ok(Installed::Done(converged)) => Step::Done(Ok(converged)),
        Ok(Installed::ReloadOwed { changed }) => Step::ReloadOwed { changed },
        Err(e) => Step::Done(Err(e)),
    };
    handoff.finish(step);
}

/// A resource's reload on the reload pool; its outcome goes back to the scheduler however
/// it ends, a panic included.
pub(super) struct ReloadJob {
    pub(super) slot: usize,
    pub(super) resource: Arc<Resource>,
    pub(super) process: Stop,
    pub(super) reply: Option<Sender<Notice>>,
}

impl ReloadJob {
    pub(super) fn run(mut self) {
        let result = apply::reload_now(&self.resource.install, &self.process);
        self.send(Some(result));
    }

    fn send(&mut self, result: Option<ReloadResult>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Notice::Reloaded {
                slot: self.slot,
                result,
            });
        }
    }
}

impl Drop for ReloadJob {
    fn drop(&mut self) {
        self.send(None);
    }
}

/// A resource's watcher on its way through the pools. However its pass ends — even by a
/// panic, or a pool that could not take the job — the watcher goes back to the scheduler.
pub(super) struct Handoff {
    pub(super) slot: usize,
    pub(super) watcher: Option<Box<Watcher>>,
    pub(super) reply: Sender<Notice>,
}

impl Handoff {
    fn watcher(&mut self) -> &mut Watcher {
        self.watcher
            .as_mut()
            .expect("a handoff holds its watcher until it is finished")
    }

    fn finish(mut self, step: Step) {
        self.send(step);
    }

    fn send(&mut self, step: Step) {
        if let Some(watcher) = self.watcher.take() {
            // The scheduler is gone only when the generation ended without it: nothing
            // is left to tell.
            let _ = self.reply.send(Notice::Stepped {
                slot: self.slot,
                watcher,
                step,
            });
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.send(Step::Done(Err(PassError::Panicked)));
    }
}
