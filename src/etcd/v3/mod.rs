//! The etcd v3 API over its JSON gateway (`POST /v3/...`). The protocol is pure code:
//! request and answer bodies, key ranges, paging, the watch stream's framing and meaning,
//! with no I/O (the ureq-proto style), so every part is tested on real answers without a
//! server. [`Client`] (`client`, `auth`, `refused`) sends them over the neutral HTTP layer.
//!
//! - [`wire`]: base64 bytes and string-encoded 64-bit integers.
//! - [`proto`]: the bodies, as serde types.
//! - [`scope`]: a resource key (recursive or not) as a key range.
//! - [`text`]: keys and values as text, the way v2 hands them out.
//! - [`snapshot`]: a paged read at one revision.
//! - [`stream`]: splitting a watch stream into messages; [`watch`]: what they mean;
//!   `follow`: every later change of a subscription; `hub`: the one stream a client's
//!   subscriptions share.
//! - [`error`]: the gateway's refusals; [`txn`]: batches of guarded puts.

mod auth;
mod client;
pub mod error;
mod follow;
mod hub;
pub mod proto;
mod refused;
pub mod scope;
pub mod snapshot;
pub mod stream;
pub mod text;
pub mod txn;
pub mod watch;
mod wire;

pub use client::Client;
pub use follow::Follow;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
