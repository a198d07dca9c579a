//! The JSON shapes etcd's v2 keys API answers with, and their flattening into key → value maps.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

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

/// A `/v2/keys` answer read straight into the leaves of its node, as [`Node::leaves`]
/// would give them, without building the node tree first: for a 10 000-key read that is
/// 10 000 `Node`s (and their index, TTL and expiration fields) never allocated.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeavesAnswer {
    pub leaves: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for LeavesAnswer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnswerVisitor)
    }
}

/// The fields of an answer and of a node this reader looks at; the others are skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Node,
    Key,
    Value,
    Dir,
    Nodes,
    #[serde(other)]
    Other,
}

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = LeavesAnswer;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an etcd answer with a node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeavesAnswer, A::Error> {
        let mut leaves = None;
        while let Some(field) = map.next_key::<Field>()? {
            if let Field::Node = field {
                let mut pairs = Vec::new();
                map.next_value_seed(NodeSeed(&mut pairs))?;
                leaves = Some(pairs);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let pairs = leaves.ok_or_else(|| de::Error::missing_field("node"))?;
        // Nearly sorted when etcd was asked for `sorted=true`: built in linear time.
        Ok(LeavesAnswer {
            leaves: pairs.into_iter().collect(),
        })
    }
}

/// One node: a leaf adds itself, a directory its leaves.
struct NodeSeed<'a>(&'a mut Vec<(String, String)>);

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an etcd node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut key, mut value, mut dir) = (None, None, false);
        // Children are added as they are read; `dir` may come after `nodes`.
        let children_start = self.0.len();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Key => key = map.next_value::<Option<String>>()?,
                Field::Value => value = map.next_value::<Option<String>>()?,
                Field::Dir => dir = map.next_value()?,
                Field::Nodes => map.next_value_seed(NodesSeed(&mut *self.0))?,
                Field::Node | Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !dir {
            // Like `Node::leaves`: a node not marked `dir` is a leaf, whatever it lists.
            self.0.truncate(children_start);
            let key = key.unwrap_or_else(|| "/".to_string());
            self.0.push((key, value.unwrap_or_default()));
        }
        Ok(())
    }
}

/// A directory's `nodes` list.
struct NodesSeed<'a>(&'a mut Vec<(String, String)>);

impl<'de> DeserializeSeed<'de> for NodesSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for NodesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of etcd nodes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NodeSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

/// One entry of `GET /v2/members`, as v2 spells it.
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

impl From<Member> for super::super::types::Member {
    fn from(member: Member) -> Self {
        super::super::types::Member {
            id: member.id,
            name: member.name,
            peer_urls: member.peer_urls,
            client_urls: member.client_urls,
        }
    }
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

    /// The answers the other tests use, plus escapes, nulls, unknown fields and (found by
    /// fuzzing) a node with children but not marked `dir`.
    const ANSWERS: [&str; 5] = [
        r#"{"action":"get","node":{"key":"/app","dir":true,"nodes":[
            {"key":"/app/web","dir":true,"nodes":[{"key":"/app/web/a","value":"1","modifiedIndex":7,"createdIndex":7}],"modifiedIndex":7,"createdIndex":7},
            {"key":"/app/db","dir":true,"nodes":[{"key":"/app/db/port","value":"5432","modifiedIndex":6,"createdIndex":6},{"key":"/app/db/host","value":"","modifiedIndex":5,"createdIndex":5}],"modifiedIndex":4,"createdIndex":4},
            {"key":"/app/empty","dir":true,"modifiedIndex":8,"createdIndex":8}],"modifiedIndex":4,"createdIndex":4}}"#,
        r#"{"action":"get","node":{"dir":true}}"#,
        r#"{"action":"get","node":{"key":"/k","value":"v","ttl":5,"expiration":"2026-11-25T19:27:24Z"},"extra":{"a":[1,2]}}"#,
        r#"{"node":{"nodes":[{"value":"\u00e9\n\"q\"","key":"/d/caf\u00e9"},{"key":"/d/n","value":null}],"dir":true,"key":"/d"},"action":"get"}"#,
        r#"{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/d","diz":true,"nodes":[{"key":"/a/d/x","value":"1"}]}]}}"#,
    ];

    #[test]
    fn leaves_read_directly_equal_the_node_trees_leaves() {
        for body in ANSWERS {
            let tree: Response = serde_json::from_str(body).expect("valid etcd answer");
            let direct: LeavesAnswer = serde_json::from_str(body).expect("valid etcd answer");
            assert_eq!(direct.leaves, tree.node.leaves(), "{body}");
        }
        let escaped: LeavesAnswer = serde_json::from_str(ANSWERS[3]).expect("valid");
        assert_eq!(
            escaped.leaves.get("/d/café").map(String::as_str),
            Some("é\n\"q\"")
        );
    }

    #[test]
    fn an_answer_without_a_node_or_with_a_bad_one_is_an_error() {
        for body in [
            r#"{"action":"get"}"#,
            r#"{"action":"get","node":[]}"#,
            r#"{"action":"get","node":{"key":"/k","nodes":{"a":1}}}"#,
            r#"{"action":"get","node":{"key":1}}"#,
            r#"{"action":"get","node":{"key":"/e","dir":true,"nodes":null}}"#,
        ] {
            assert!(
                serde_json::from_str::<LeavesAnswer>(body).is_err(),
                "{body}"
            );
        }
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
