//! JSON objects that name a field twice. JSON parsers (serde_json, and Ruby's in the
//! original tool) keep the last value silently, so a conf.d file with two `"target"`s
//! installs to whichever came last. The file is still loaded that way (refusing it would
//! stop managing a file that worked before), but the operator is told which field.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// The first repeated field in `text` (already known to be valid JSON), as a message like
/// `field "target" appears twice` or `field "altkeys": "s" appears twice`.
pub(super) fn find(text: &str) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match deserializer.deserialize_any(Walker { path: Vec::new() }) {
        Ok(()) => None,
        Err(error) => Some(strip_position(&error.to_string())),
    }
}

/// serde_json appends " at line L column C" to custom errors; the message is ours.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Visits any JSON value; in objects, checks the keys and recurses into the values.
struct Walker {
    /// The enclosing field names, outermost first.
    path: Vec<String>,
}

impl<'de> de::DeserializeSeed<'de> for Walker {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walker {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walker {
                path: self.path.clone(),
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(repeated(&self.path, &key)));
            }
            let mut path = self.path.clone();
            path.push(key);
            map.next_value_seed(Walker { path })?;
        }
        Ok(())
    }
}

fn repeated(path: &[String], key: &str) -> String {
    match path.split_first() {
        None => {
            format!("field \"{key}\" appears twice; the last one is used; remove the other")
        }
        Some((field, inner)) => {
            let mut inner: Vec<&str> = inner.iter().map(String::as_str).collect();
            inner.push(key);
            format!(
                "field \"{field}\": \"{}\" appears twice; the last one is used; remove the other",
                inner.join(".")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn repeated_fields_are_found_at_any_depth() {
        assert_eq!(find(r#"{"a": 1, "b": [1, {"c": 2}]}"#), None);
        assert_eq!(
            find(r#"{"target": "/a", "key": "/k", "target": "/b"}"#).as_deref(),
            Some("field \"target\" appears twice; the last one is used; remove the other")
        );
        assert_eq!(
            find(r#"{"altkeys": {"s": "/a", "s": "/b"}}"#).as_deref(),
            Some("field \"altkeys\": \"s\" appears twice; the last one is used; remove the other")
        );
        assert_eq!(
            find(r#"{"wait": {"x": {"m": 1, "m": 2}}}"#).as_deref(),
            Some("field \"wait\": \"x.m\" appears twice; the last one is used; remove the other")
        );
    }
}
