//! The JSON shapes etcd's v2 keys API answers with, and their flattening into key → value maps.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One node of the v2 key space: a leaf (with `value`) or a directory (with `nodes`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Absent only on the root directory.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub dir: bool,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub modified_index: u64,
    #[serde(default)]
    pub created_index: u64,
    #[serde(default)]
    pub ttl: Option<i64>,
    #[serde(default)]
    pub expiration: Option<String>,
}

impl Node {
    /// The node's key; the root directory has none and is `/`.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("/")
    }

    /// Every leaf at or below this node as full key → value. A directory with no leaves
    /// gives an empty map.
    pub fn leaves(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        self.collect_leaves(&mut out);
        out
    }

    /// [`Node::leaves`], moving the keys and values out instead of copying them. Fastest
    /// when etcd listed the children sorted (`sorted=true`): the map is then built from
    /// nearly ordered pairs in linear time instead of one tree search per leaf.
    pub fn into_leaves(self) -> BTreeMap<String, String> {
        let mut out = Vec::new();
        self.move_leaves(&mut out);
        out.into_iter().collect()
    }

    fn move_leaves(self, out: &mut Vec<(String, String)>) {
        if self.dir {
            for child in self.nodes {
                child.move_leaves(out);
            }
        } else {
            let key = self.key.unwrap_or_else(|| "/".to_string());
            out.push((key, self.value.unwrap_or_default()));
        }
    }

    fn collect_leaves(&self, out: &mut BTreeMap<String, String>) {
        if self.dir {
            for child in &self.nodes {
                child.collect_leaves(out);
            }
        } else {
            out.insert(
                self.key().to_string(),
                self.value.clone().unwrap_or_default(),
            );
        }
    }
}

/// A successful answer of `/v2/keys`, with the store index from the `X-Etcd-Index` header.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub action: String,
    pub node: Node,
    #[serde(default)]
    pub prev_node: Option<Node>,
    /// `X-Etcd-Index`: the store index when etcd answered. On a watch it is the index when
    /// the watch started, not the event's: use `node.modified_index` for events.
    #[serde(skip)]
    pub etcd_index: u64,
}

/// The error body etcd sends with a 4xx: `{"errorCode":100,"message":...,"cause":...,"index":N}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: u32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub index: u64,
}

/// `GET /version`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Version {
    pub etcdserver: String,
    pub etcdcluster: String,
}

/// One entry of `GET /v2/members`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Members {
    #[serde(default)]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LeaderStats {
    #[serde(default)]
    pub leader: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_answer_flattens_to_sorted_leaves() {
        let body = r#"{"action":"get","node":{"key":"/app","dir":true,"nodes":[
            {"key":"/app/web","dir":true,"nodes":[{"key":"/app/web/a","value":"1","modifiedIndex":7,"createdIndex":7}],"modifiedIndex":7,"createdIndex":7},
            {"key":"/app/db","dir":true,"nodes":[{"key":"/app/db/port","value":"5432","modifiedIndex":6,"createdIndex":6},{"key":"/app/db/host","value":"","modifiedIndex":5,"createdIndex":5}],"modifiedIndex":4,"createdIndex":4},
            {"key":"/app/empty","dir":true,"modifiedIndex":8,"createdIndex":8}],"modifiedIndex":4,"createdIndex":4}}"#;
        let response: Response = serde_json::from_str(body).expect("valid etcd answer");
        let leaves: Vec<(String, String)> = response.node.leaves().into_iter().collect();
        assert_eq!(
            leaves,
            [
                ("/app/db/host".to_string(), String::new()),
                ("/app/db/port".to_string(), "5432".to_string()),
                ("/app/web/a".to_string(), "1".to_string()),
            ]
        );
    }

    #[test]
    fn moving_the_leaves_out_gives_the_same_map() {
        let body = r#"{"action":"get","node":{"key":"/a","dir":true,"nodes":[
            {"key":"/a/d","dir":true,"nodes":[{"key":"/a/d/x","value":"1"}]},
            {"key":"/a/y","value":"2"},{"key":"/a/e","dir":true}]}}"#;
        let response: Response = serde_json::from_str(body).expect("valid etcd answer");
        let copied = response.node.leaves();
        assert_eq!(response.node.into_leaves(), copied);
        assert_eq!(copied.len(), 2);
    }

    #[test]
    fn root_without_key_is_slash() {
        let body = r#"{"action":"get","node":{"dir":true}}"#;
        let response: Response = serde_json::from_str(body).expect("valid etcd answer");
        assert_eq!(response.node.key(), "/");
        assert!(response.node.leaves().is_empty());
    }

    #[test]
    fn watch_event_carries_prev_node() {
        let body = r#"{"action":"expire","node":{"key":"/t/k0","modifiedIndex":1159,"createdIndex":1158},"prevNode":{"key":"/t/k0","value":"x","expiration":"2026-11-25T19:27:24.316928906Z","modifiedIndex":1158,"createdIndex":1158}}"#;
        let response: Response = serde_json::from_str(body).expect("valid event");
        assert_eq!(response.action, "expire");
        assert_eq!(response.node.modified_index, 1159);
        let prev = response.prev_node.expect("prevNode present");
        assert_eq!(prev.value.as_deref(), Some("x"));
    }
}
