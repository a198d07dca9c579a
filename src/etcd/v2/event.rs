//! v2 watch events in neutral terms: every write action is a put, every removal a delete.

use super::super::types::{Change, Event, Op};
use super::node::Response;

/// The change a watch event reports. Directory events keep what `change::apply_all`
/// needs: making a directory changes no value, deleting one removes everything below it,
/// and anything else (a value-less write, an action v2 does not send on watches) means
/// reading again.
pub fn change(event: &Response) -> Change {
    let node = &event.node;
    let op = match (event.action.as_str(), node.dir, &node.value) {
        ("set" | "create" | "update" | "compareAndSwap", false, Some(value)) => {
            Op::Put(value.clone())
        }
        ("set" | "create" | "update", true, _) => Op::NoValueChange,
        ("delete" | "expire" | "compareAndDelete", _, _) => Op::Delete,
        _ => Op::Unknown,
    };
    Change {
        index: node.modified_index,
        key: node.key().to_string(),
        op,
        store_index: event.etcd_index,
    }
}

/// The event etcd-util prints.
pub fn event(response: Response) -> Event {
    Event {
        change: change(&response),
        dir: response.node.dir,
        prev_value: response.prev_node.and_then(|prev| prev.value),
        action: response.action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_of(body: &str) -> Op {
        let response: Response = serde_json::from_str(body).expect("valid event");
        change(&response).op
    }

    #[test]
    fn actions_become_puts_deletes_or_a_reread() {
        let put = Op::Put("1".to_string());
        for action in ["set", "create", "update", "compareAndSwap"] {
            let body = format!(r#"{{"action":"{action}","node":{{"key":"/a","value":"1"}}}}"#);
            assert_eq!(op_of(&body), put, "{action}");
        }
        for action in ["delete", "expire", "compareAndDelete"] {
            let leaf = format!(r#"{{"action":"{action}","node":{{"key":"/a"}}}}"#);
            let dir = format!(r#"{{"action":"{action}","node":{{"key":"/d","dir":true}}}}"#);
            assert_eq!(op_of(&leaf), Op::Delete, "{action}");
            assert_eq!(op_of(&dir), Op::Delete, "{action} dir");
        }
        for action in ["set", "create", "update"] {
            let dir = format!(r#"{{"action":"{action}","node":{{"key":"/d","dir":true}}}}"#);
            assert_eq!(op_of(&dir), Op::NoValueChange, "{action} dir");
        }
        for unknown in [
            r#"{"action":"compareAndSwap","node":{"key":"/d","dir":true}}"#,
            r#"{"action":"set","node":{"key":"/a"}}"#,
            r#"{"action":"get","node":{"key":"/a","value":"1"}}"#,
        ] {
            assert_eq!(op_of(unknown), Op::Unknown, "{unknown}");
        }
    }
}
