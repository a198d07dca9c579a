//! The daemon's pools, shared by every generation.

use crate::pool::{Pool, RENDER_STACK};

/// The daemon's threads that run passes, shared by every generation.
pub struct Pools {
    /// Reads and renders: one thread per core.
    pub render: Pool,
    /// Check commands and installs, never behind a reload.
    pub install: Pool,
    /// Reload commands (their splay is a deadline here, not a sleeping thread).
    pub reload: Pool,
}

/// Threads of the install and reload pools, whatever the cores: their work waits on fsync
/// and commands more than on a core, and a few slow commands do not hold up the rest.
const COMMAND_WORKERS: usize = 4;
/// Installs and reloads run no template: a small stack does.
const COMMAND_STACK: usize = 256 * 1024;

impl Pools {
    pub fn start() -> std::io::Result<Pools> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Pools {
            render: Pool::new("render", cores, RENDER_STACK)?,
            install: Pool::new("install", COMMAND_WORKERS, COMMAND_STACK)?,
            reload: Pool::new("reload", COMMAND_WORKERS, COMMAND_STACK)?,
        })
    }
}
