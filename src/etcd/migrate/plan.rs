//! What a migration from v2 to v3 does with each key, decided from the two reads alone
//! (no I/O): the v2 tree flattened into leaves with their remaining TTL, then each leaf
//! compared with what v3 holds under the same key.

use crate::etcd::v2::Node;
use crate::etcd::v3::scope::normalize;
use std::collections::BTreeMap;

/// A v2 leaf to copy: its key (spelled as v3 scopes expect), value and, when it or a
/// directory above it expires, the seconds it has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub key: String,
    pub value: String,
    pub ttl: Option<u64>,
}

/// The v2 tree under the migrated key, as one read at one index saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// In key order.
    pub leaves: Vec<Leaf>,
    /// How many directories are at or under the key (the root `/` not counted). v3 has no
    /// directories: they are not copied, the keys under them say they were there.
    pub directories: usize,
    /// Directories with nothing under them: nothing of them reaches v3.
    pub empty_directories: Vec<String>,
}

impl Tree {
    /// Flattens a v2 node read recursively. A key expires with the first directory above
    /// it that expires, so a leaf's TTL is the smallest of its own and its ancestors'.
    pub fn from_node(node: &Node) -> Tree {
        let mut tree = Tree::default();
        tree.collect(node, None);
        tree.leaves.sort_by(|a, b| a.key.cmp(&b.key));
        tree.empty_directories.sort();
        tree
    }

    fn collect(&mut self, node: &Node, inherited: Option<u64>) {
        let ttl = match (remaining(node), inherited) {
            (Some(own), Some(above)) => Some(own.min(above)),
            (own, above) => own.or(above),
        };
        if !node.dir {
            self.leaves.push(Leaf {
                key: normalize(node.key()),
                value: node.value.clone().unwrap_or_default(),
                ttl,
            });
            return;
        }
        if node.key.is_some() {
            self.directories += 1;
            if node.nodes.is_empty() {
                self.empty_directories.push(normalize(node.key()));
            }
        }
        for child in &node.nodes {
            self.collect(child, ttl);
        }
    }
}

/// The seconds a node has left. etcd rounds up and may say 0 or less for a key about to
/// expire: it still exists, so it gets the shortest lease.
fn remaining(node: &Node) -> Option<u64> {
    node.ttl.map(|ttl| u64::try_from(ttl).unwrap_or(0).max(1))
}

/// What happens to one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// v3 does not have the key: put it.
    Copy,
    /// v3 holds the same value: nothing to do (a second run is all of these).
    Unchanged,
    /// v3 holds another value, left as it is (no `--overwrite`).
    Conflict,
    /// v3 holds another value (`v3_value`), replaced (`--overwrite`).
    Overwrite { v3_value: Vec<u8> },
}

/// One leaf and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub leaf: Leaf,
    pub action: Action,
}

impl Step {
    /// Whether the step writes to v3.
    pub fn writes(&self) -> bool {
        matches!(self.action, Action::Copy | Action::Overwrite { .. })
    }
}

/// Each leaf of `tree` against `v3` (key → value, as bytes: a value is the same only when
/// its bytes are). A different value is replaced only when `overwrite`.
pub fn plan(tree: &Tree, v3: &BTreeMap<Vec<u8>, Vec<u8>>, overwrite: bool) -> Vec<Step> {
    tree.leaves
        .iter()
        .map(|leaf| {
            let action = match v3.get(leaf.key.as_bytes()) {
                None => Action::Copy,
                Some(held) if held.as_slice() == leaf.value.as_bytes() => Action::Unchanged,
                Some(held) if overwrite => Action::Overwrite {
                    v3_value: held.clone(),
                },
                Some(_) => Action::Conflict,
            };
            Step {
                leaf: leaf.clone(),
                action,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recursive v2 GET of `/` as etcd 3.4.23 answers it (trimmed to the fields read).
    const ANSWER: &str = r#"{"action":"get","node":{"dir":true,"nodes":[
        {"key":"/app","dir":true,"nodes":[
            {"key":"/app/db","dir":true,"ttl":30,"expiration":"x","nodes":[
                {"key":"/app/db/host","value":"h"},
                {"key":"/app/db/pw","value":"p","ttl":100}]},
            {"key":"/app/empty","dir":true},
            {"key":"/app/ключ с пробелом","value":"ü"}]},
        {"key":"/lease","value":"l","ttl":0}]}}"#;

    fn tree() -> Tree {
        let answer: crate::etcd::v2::Response = serde_json::from_str(ANSWER).expect("answer");
        Tree::from_node(&answer.node)
    }

    fn leaf(key: &str, value: &str, ttl: Option<u64>) -> Leaf {
        Leaf {
            key: key.into(),
            value: value.into(),
            ttl,
        }
    }

    #[test]
    fn leaves_carry_the_nearest_expiry_and_directories_are_counted() {
        let tree = tree();
        assert_eq!(
            tree.leaves,
            [
                leaf("/app/db/host", "h", Some(30)),
                leaf("/app/db/pw", "p", Some(30)),
                leaf("/app/ключ с пробелом", "ü", None),
                leaf("/lease", "l", Some(1)),
            ]
        );
        assert_eq!(tree.directories, 3);
        assert_eq!(tree.empty_directories, ["/app/empty"]);
    }

    #[test]
    fn each_leaf_is_copied_kept_or_in_conflict_by_its_bytes_in_v3() {
        let tree = tree();
        let v3: BTreeMap<Vec<u8>, Vec<u8>> = [
            ("/app/db/host", &b"h"[..]),
            ("/app/db/pw", b"other"),
            ("/app/ключ с пробелом", b"\xc3\xbc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect();
        let actions = |overwrite| -> Vec<Action> {
            plan(&tree, &v3, overwrite)
                .into_iter()
                .map(|s| s.action)
                .collect()
        };
        assert_eq!(
            actions(false),
            [
                Action::Unchanged,
                Action::Conflict,
                Action::Unchanged,
                Action::Copy
            ]
        );
        assert_eq!(
            actions(true)[1],
            Action::Overwrite {
                v3_value: b"other".to_vec()
            }
        );
    }

    #[test]
    fn a_single_key_is_one_leaf_and_no_directory() {
        let node = Node {
            key: Some("/one".into()),
            value: Some("v".into()),
            ..Node::default()
        };
        let tree = Tree::from_node(&node);
        assert_eq!(tree.leaves, [leaf("/one", "v", None)]);
        assert_eq!(tree.directories, 0);
    }
}
