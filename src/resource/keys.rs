//! The watched keys of a resource: `"key"` (one) or `"keys"` (several, confd's convention).

use serde_json::Value;

use super::fields::{describe, Fields};
use super::watched_key;

/// Every watched key, prefix applied, in the order given; the first is `reconfig.watched`.
pub(super) fn parse(prefix: &str, fields: &Fields) -> Result<Vec<String>, String> {
    match (fields.string("key")?, fields.get("keys")) {
        (Some(_), Some(_)) => Err(
            "fields \"key\" and \"keys\" are both given; use \"key\" for one key or \"keys\" for several, not both"
                .to_string(),
        ),
        (Some(key), None) => Ok(vec![watched_key(prefix, key)?]),
        (None, Some(Value::Array(list))) if !list.is_empty() => list_of_keys(prefix, list),
        (None, Some(Value::Array(_))) => {
            Err("field \"keys\": is empty; list at least one etcd key".to_string())
        }
        (None, Some(other)) => Err(format!(
            "field \"keys\": expected a list of etcd keys like [\"/a\", \"/b\"], found {}",
            describe(other)
        )),
        (None, None) => Err("missing required field \"key\" (or \"keys\" for several)".to_string()),
    }
}

fn list_of_keys(prefix: &str, list: &[Value]) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::with_capacity(list.len());
    for (n, entry) in list.iter().enumerate() {
        let Value::String(key) = entry else {
            return Err(format!(
                "field \"keys\": entry {} must be an etcd key string, found {}",
                n + 1,
                describe(entry)
            ));
        };
        let key = watched_key(prefix, key).map_err(|e| e.replacen("\"key\"", "\"keys\"", 1))?;
        if keys.contains(&key) {
            return Err(format!(
                "field \"keys\": {key} is listed twice; remove the other"
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}
