//! etcd, as the daemon and etcd-util see it: a [`Client`] giving snapshots, changes and
//! key operations in protocol-neutral [`types`](Snapshot), whatever API it speaks.
//!
//! Layers, each using only the one below: `client` (the front door: one enum of
//! backends) → `v2` (the v2 keys API: paths, JSON, error codes, events as [`Change`]s) →
//! `http` (endpoints, failover, timeouts, TLS, auth header, health, whole or streamed
//! bodies). `shared` (the snapshot cache) and `change` (applying changes to a kept
//! snapshot) work on the neutral types only.

mod change;
mod client;
mod error;
pub mod http;
mod lease;
pub mod migrate;
mod options;
mod shared;
mod subscription;
mod types;
pub mod v2;
pub mod v3;

pub use client::{Api, Client};
pub use error::{Error, ErrorKind, EtcdError, Remedy, TransportError, TransportKind};
pub use http::{normalize_endpoint, Discover};
pub use lease::{Lease, Renewal};
pub use options::{ClientOptions, Credentials, DEFAULT_ENDPOINTS};
pub use shared::{Freshness, SharedSnapshot, SnapshotCache};
pub use subscription::{Received, Subscription};
pub use types::{Change, Child, Event, Found, Member, Op, Snapshot, Version, WaitOutcome};
