//! reconfig keeps config files on a host converged to data in etcd.
//!
//! See ARCHITECTURE.md for the map of modules and the data flow.

pub mod apply;
pub mod atomic_file;
pub mod backoff;
pub mod cli;
pub mod daemon;
pub mod etcd;
pub mod follow;
pub mod guard;
pub mod keys;
pub mod logging;
pub mod pool;
pub mod register;
pub mod resource;
pub mod schedule;
pub mod srv;
pub mod state;
pub mod status;
pub mod stop;
pub mod template;
pub mod tls;
pub mod validate;
pub mod watch;
