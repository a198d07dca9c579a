//! Keys that live only as long as their owner keeps them alive (`etcd-util -o REGISTER`):
//! written with a time to live, renewed without waking watchers, deleted on purpose or by
//! expiry. v2 gives the key itself a TTL and renews it with `refresh=true`; v3 attaches
//! the key to a lease and renews the lease.

use super::client::{Client, Speaking};
use super::error::Error;
use super::v2;

/// What keeps a key written by [`Client::put_with_lease`] alive; renew it with
/// [`Client::renew`], end it with [`Client::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// v2: the key's own TTL.
    KeyTtl,
    /// v3: the lease of this id, which the key is attached to.
    Id(i64),
}

/// What a renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The key lives for another full TTL.
    Renewed,
    /// The key (v2) or the lease (v3) is gone: it expired, or someone deleted it. Write
    /// it again.
    Expired,
}

impl Client {
    /// Writes `value` to `key`, to live `ttl` seconds unless renewed.
    pub fn put_with_lease(&self, key: &str, value: &str, ttl: u64) -> Result<Lease, Error> {
        match self.speaking()? {
            Speaking::V2(c) => {
                let options = v2::SetOptions {
                    ttl: Some(ttl),
                    ..v2::SetOptions::default()
                };
                c.set(key, Some(value), &options)?;
                Ok(Lease::KeyTtl)
            }
            Speaking::V3(c) => {
                let lease = c.grant_lease(ttl)?;
                // Should the put fail, the unused lease expires by itself.
                c.put_leased(key, value, lease)?;
                Ok(Lease::Id(lease))
            }
        }
    }

    /// Gives `key` another `ttl` seconds without changing its value, so no watcher is
    /// woken: v2 `refresh=true` (which fails on a missing key instead of creating an empty
    /// one), v3 a lease keepalive, then a read of the key. [`Renewal::Expired`] when the key
    /// is gone (v3: with its lease, or deleted from under a live lease, which then lapses).
    pub fn renew(&self, key: &str, lease: Lease, ttl: u64) -> Result<Renewal, Error> {
        match (self.speaking()?, lease) {
            (Speaking::V2(c), _) => {
                let options = v2::SetOptions {
                    ttl: Some(ttl),
                    prev_exist: Some(true),
                    refresh: true,
                    ..v2::SetOptions::default()
                };
                match c.set(key, None, &options) {
                    Ok(_) => Ok(Renewal::Renewed),
                    Err(e) if e.is_key_not_found() => Ok(Renewal::Expired),
                    Err(e) => Err(e),
                }
            }
            // A live lease does not mean a live key: someone may have deleted it, which v2's
            // refresh of a missing key reports. A read wakes no watcher either.
            (Speaking::V3(c), Lease::Id(id)) => match c.keep_alive(id)? {
                0 => Ok(Renewal::Expired),
                _ if !c.exists(key)? => Ok(Renewal::Expired),
                _ => Ok(Renewal::Renewed),
            },
            // A lease from another API than the one spoken (cannot happen: `--api auto`
            // chooses once): write the key again.
            (Speaking::V3(_), Lease::KeyTtl) => Ok(Renewal::Expired),
        }
    }

    /// Deletes `key` now (v3: revokes its lease, which deletes it); a key or lease already
    /// gone is no error.
    pub fn release(&self, key: &str, lease: Lease) -> Result<(), Error> {
        let ended = match (self.speaking()?, lease) {
            (Speaking::V2(c), _) => c.delete(key, false, false).map(drop),
            (Speaking::V3(c), Lease::Id(id)) => c.revoke_lease(id, key),
            (Speaking::V3(c), Lease::KeyTtl) => c.delete(key, false),
        };
        match ended {
            Err(e) if e.is_key_not_found() => Ok(()),
            other => other,
        }
    }
}
