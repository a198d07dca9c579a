//! Applying watched changes to the leaves of an earlier snapshot.
//!
//! A watch from a snapshot's index + 1 reports every later change under the key, one event
//! at a time and in order. So the snapshot's leaves plus those events, applied in order,
//! are exactly the leaves a new read would give at the last event's index: for one small
//! change, no need to have etcd serialise (and reconfig parse) the whole tree again.
//!
//! Only the events whose effect on the leaves is plain are applied: a leaf written or
//! deleted strictly below the watched key, or a directory below it deleted. Anything else
//! (the watched key itself or an ancestor changed, a hidden `_name`, an [`Op::Unknown`]) is
//! [`Unapplicable`], and the caller reads again.

use super::types::{Change, Op};
use std::collections::BTreeMap;

/// A change whose effect on the leaves is not plain; read the tree again instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unapplicable;

enum Effect<'a> {
    Write(&'a str),
    /// A directory was created or had its TTL changed: no leaf changes.
    Nothing,
    Remove,
}

/// Applies `changes` (consecutive events under `watched`, in order) to `leaves`, the leaves
/// of a recursive read of `watched`. Leaves `leaves` untouched when any change is
/// [`Unapplicable`].
pub fn apply_all(
    leaves: &mut BTreeMap<String, String>,
    watched: &str,
    changes: &[Change],
) -> Result<(), Unapplicable> {
    let effects = changes
        .iter()
        .map(|change| effect(watched, change).map(|effect| (change, effect)))
        .collect::<Result<Vec<_>, _>>()?;
    for (change, effect) in effects {
        match effect {
            Effect::Write(value) => {
                leaves.insert(change.key.clone(), value.to_string());
            }
            Effect::Nothing => {}
            Effect::Remove => remove_at_or_below(leaves, &change.key),
        }
    }
    Ok(())
}

fn effect<'a>(watched: &str, change: &'a Change) -> Result<Effect<'a>, Unapplicable> {
    let below = change
        .key
        .strip_prefix(watched.trim_end_matches('/'))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .ok_or(Unapplicable)?;
    // A recursive read leaves hidden nodes out; so does a watch, but do not rely on it.
    if below.split('/').any(|segment| segment.starts_with('_')) {
        return Err(Unapplicable);
    }
    match &change.op {
        Op::Put(value) => Ok(Effect::Write(value)),
        Op::NoValueChange => Ok(Effect::Nothing),
        Op::Delete => Ok(Effect::Remove),
        Op::Unknown => Err(Unapplicable),
    }
}

/// Removes `key` and every leaf below it (a deleted or expired directory).
fn remove_at_or_below(leaves: &mut BTreeMap<String, String>, key: &str) {
    leaves.remove(key);
    let below = format!("{key}/");
    let doomed: Vec<String> = leaves
        .range::<str, _>((
            std::ops::Bound::Included(below.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(leaf, _)| leaf.starts_with(&below))
        .map(|(leaf, _)| leaf.clone())
        .collect();
    for leaf in doomed {
        leaves.remove(&leaf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change as `v2::event` makes it from a v2 event with this action.
    fn change(index: u64, action: &str, key: &str, value: Option<&str>, dir: bool) -> Change {
        let op = match (action, dir, value) {
            ("set" | "create" | "update" | "compareAndSwap", false, Some(value)) => {
                Op::Put(value.to_string())
            }
            ("set" | "create" | "update", true, _) => Op::NoValueChange,
            ("delete" | "expire" | "compareAndDelete", _, _) => Op::Delete,
            _ => Op::Unknown,
        };
        Change {
            index,
            key: key.to_string(),
            op,
            store_index: index,
        }
    }

    fn leaves(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn writes_and_deletes_below_the_watched_key_apply_in_order() {
        let mut data = leaves(&[
            ("/svc/a", "1"),
            ("/svc/d/x", "2"),
            ("/svc/d/y", "3"),
            ("/svc/dz", "4"),
        ]);
        let changes = [
            change(10, "set", "/svc/a", Some("1b"), false),
            change(11, "create", "/svc/n/1", Some("new"), false),
            change(12, "delete", "/svc/d", None, true),
            change(13, "compareAndSwap", "/svc/n/1", Some("newer"), false),
            change(14, "expire", "/svc/a", None, false),
            change(15, "set", "/svc/e", None, true),
            change(16, "update", "/svc/dz", Some(""), false),
        ];
        apply_all(&mut data, "/svc", &changes).expect("all plain");
        assert_eq!(data, leaves(&[("/svc/dz", ""), ("/svc/n/1", "newer")]));
    }

    #[test]
    fn the_watched_key_an_ancestor_a_hidden_key_or_an_unknown_action_means_read_again() {
        let before = leaves(&[("/svc/a", "1")]);
        for unplain in [
            change(10, "delete", "/svc", None, true),
            change(10, "delete", "/", None, true),
            change(10, "set", "/svcx/a", Some("1"), false),
            change(10, "set", "/svc/_hidden", Some("1"), false),
            change(10, "set", "/svc/d/_h/x", Some("1"), false),
            change(10, "get", "/svc/a", Some("1"), false),
            change(10, "compareAndSwap", "/svc/d", None, true),
            change(10, "set", "/svc/a", None, false),
        ] {
            let mut data = before.clone();
            let good = change(9, "set", "/svc/b", Some("2"), false);
            assert_eq!(
                apply_all(&mut data, "/svc", &[good, unplain.clone()]),
                Err(Unapplicable),
                "{unplain:?}"
            );
            assert_eq!(data, before, "untouched after {unplain:?}");
        }
    }

    #[test]
    fn a_watched_key_with_a_trailing_slash_or_the_root() {
        let mut data = leaves(&[("/svc/a", "1")]);
        apply_all(
            &mut data,
            "/svc/",
            &[change(3, "set", "/svc/b", Some("2"), false)],
        )
        .expect("plain");
        apply_all(
            &mut data,
            "/",
            &[change(4, "delete", "/svc/a", None, false)],
        )
        .expect("plain");
        assert_eq!(data, leaves(&[("/svc/b", "2")]));
    }
}
