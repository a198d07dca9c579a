//! Typed access to the fields of one conf.d JSON object, with errors that name the field.
//!
//! A JSON `null` counts as an absent field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::duration::parse_duration;

pub(super) struct Fields<'a> {
    object: &'a Map<String, Value>,
}

/// "expected X, found Y" for a field of the wrong type.
fn wrong_type(name: &str, expected: &str, found: &Value) -> String {
    format!(
        "field \"{name}\": expected {expected}, found {}",
        describe(found)
    )
}

/// A short description of a JSON value for error messages.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

impl<'a> Fields<'a> {
    pub(super) fn new(object: &'a Map<String, Value>) -> Fields<'a> {
        Fields { object }
    }

    /// The field's value, `None` when absent or null.
    pub(super) fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    pub(super) fn names(&self) -> impl Iterator<Item = &'a str> {
        self.object.keys().map(String::as_str)
    }

    /// An optional non-empty string.
    pub(super) fn string(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(format!(
                "field \"{name}\": is empty; give a value or remove the field"
            )),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    pub(super) fn required_string(&self, name: &str) -> Result<&'a str, String> {
        self.string(name)?
            .ok_or_else(|| format!("missing required field \"{name}\""))
    }

    pub(super) fn bool(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong_type(name, "true or false (without quotes)", other)),
        }
    }

    /// An object whose values are all strings.
    pub(super) fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        let object = match self.get(name) {
            None => return Ok(BTreeMap::new()),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(wrong_type(
                    name,
                    "an object of alias to etcd key, like {\"alias\": \"/key\"}",
                    other,
                ))
            }
        };
        object
            .iter()
            .map(|(alias, value)| match value {
                Value::String(key) => Ok((alias.clone(), key.clone())),
                other => Err(format!(
                    "field \"{name}\": entry \"{alias}\" must be an etcd key string, found {}",
                    describe(other)
                )),
            })
            .collect()
    }

    /// A duration given as seconds (a number, may be fractional) or a string like "1.5s".
    pub(super) fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let seconds = n.as_f64().unwrap_or(f64::NAN);
                Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
                    format!("field \"{name}\": {n} is not a usable number of seconds (must be 0 or more)")
                })
            }
            Some(Value::String(text)) => parse_duration(text)
                .map(Some)
                .map_err(|err| format!("field \"{name}\": {err}")),
            Some(other) => Err(wrong_type(
                name,
                "seconds as a number or a duration string like \"2s\"",
                other,
            )),
        }
    }

    /// A whole number of 1 or more.
    pub(super) fn positive_integer(&self, name: &str) -> Result<Option<u64>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    format!("field \"{name}\": {n} is not a whole number of 1 or more")
                })
            }
            Some(other) => Err(wrong_type(name, "a whole number (without quotes)", other)),
        }
    }

    /// A file mode: a string of octal digits such as "0640".
    pub(super) fn mode(&self, name: &str) -> Result<Option<u32>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => parse_mode(text)
                .map(Some)
                .map_err(|err| format!("field \"{name}\": {err}")),
            Some(Value::Number(n)) => Err(format!(
                "field \"{name}\": the number {n} is not accepted (JSON numbers are decimal); \
                 quote the octal mode as a string, e.g. \"mode\": \"0{n}\""
            )),
            Some(other) => Err(wrong_type(
                name,
                "an octal mode string like \"0640\"",
                other,
            )),
        }
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let octal = !digits.is_empty()
        && digits.len() <= 5
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if octal && mode <= 0o7777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode; use up to four octal digits like \"0640\" or \"0755\""
        )),
    }
}
