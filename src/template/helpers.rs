//! Functions and filters added to every template.
//!
//! | name | kind | what it does |
//! |---|---|---|
//! | `getv(key, default)` | function | value of a full key in `data`, then in each `altdata` map; error when missing and no default |
//! | `exists(key)` | function | a leaf `key`, or a directory with leaves under it, is in the data |
//! | `ls(dir)` | function | sorted unique names of the direct children of `dir` |
//! | `getenv(name, default='')` | function | an environment variable of the reconfig process |
//! | `fromjson` | filter + function | parse a JSON string into a value |
//! | `basename` / `dirname` | filters | last segment / everything before it, of a key |
//! | `keys(map)` / `values(map)` | functions | a map's keys / values, in key order |
//! | `tojson(indent=N)` | filter | MiniJinja's, with an indent of at most [`MAX_JSON_INDENT`] |
//!
//! `split`, `join`, `sort`, `dictsort`, `items` are MiniJinja built-ins; string and
//! map methods (`'a,b'.split(',')`, `data.keys()`) come from pycompat.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use minijinja::value::{ArgType, Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State};

use super::data::DataMap;

type Leaves = BTreeMap<String, String>;

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function("getv", getv);
    env.add_function("exists", exists);
    env.add_function("ls", ls);
    env.add_function("getenv", getenv);
    env.add_function("fromjson", fromjson);
    env.add_filter("fromjson", fromjson);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_function("keys", keys);
    env.add_function("values", values);
    env.add_filter("tojson", tojson);
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// The data maps of this render: `reconfig.data` first, then each `reconfig.altdata` map in
/// alias order. Looked up through `reconfig` so a template's own `data` variable cannot hide them.
fn data_maps(state: &State) -> Vec<Arc<Leaves>> {
    let Some(reconfig) = state.lookup("reconfig") else {
        return Vec::new();
    };
    let mut maps = Vec::new();
    if let Some(data) = reconfig
        .get_attr("data")
        .ok()
        .and_then(|data| data.downcast_object::<DataMap>())
    {
        maps.push(Arc::clone(&data.0));
    }
    if let Ok(altdata) = reconfig.get_attr("altdata") {
        if let Ok(aliases) = altdata.try_iter() {
            for alias in aliases {
                if let Some(map) = altdata
                    .get_item(&alias)
                    .ok()
                    .and_then(|map| map.downcast_object::<DataMap>())
                {
                    maps.push(Arc::clone(&map.0));
                }
            }
        }
    }
    maps
}

/// `getv(key)` / `getv(key, default)` / `getv(key, default=...)`.
fn getv(state: &State, key: &str, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let default = default_argument(rest.into_values())?;
    let found = data_maps(state)
        .iter()
        .find_map(|map| map.get(key).map(|value| Value::from(value.as_str())));
    match (found, default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(invalid(format!(
            "key not found in the data of this resource: {key} \
             (give a default to allow a missing key: getv('{key}', ''))"
        ))),
    }
}

/// The default of `getv`, given positionally or as `default=`. An explicit `none` counts as
/// given, which is why this reads raw values instead of an `Option` parameter.
fn default_argument(rest: Vec<Value>) -> Result<Option<Value>, Error> {
    let mut default = None;
    for value in rest {
        if value.is_kwargs() {
            let kwargs = Kwargs::from_value(Some(&value))?;
            if kwargs.has("default") {
                default = Some(kwargs.get::<Value>("default")?);
            }
            kwargs.assert_all_used()?;
        } else if default.is_some() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "getv takes a key and at most one default",
            ));
        } else {
            default = Some(value);
        }
    }
    Ok(default)
}

fn exists(state: &State, key: &str) -> bool {
    let dir_prefix = directory_prefix(key);
    data_maps(state).iter().any(|map| {
        map.contains_key(key)
            || map
                .range::<str, _>(from(&dir_prefix))
                .next()
                .is_some_and(|(found, _)| found.starts_with(&dir_prefix))
    })
}

/// Sorted unique names of the direct children of `dir`, across data and altdata:
/// for keys `/svc/a/x` and `/svc/b`, `ls('/svc')` is `['a', 'b']`.
fn ls(state: &State, dir: &str) -> Vec<String> {
    let dir_prefix = directory_prefix(dir);
    let mut names = BTreeSet::new();
    for map in data_maps(state) {
        for (key, _) in map.range::<str, _>(from(&dir_prefix)) {
            let Some(below) = key.strip_prefix(&dir_prefix) else {
                break;
            };
            if let Some(name) = below.split('/').next().filter(|name| !name.is_empty()) {
                names.insert(name.to_string());
            }
        }
    }
    names.into_iter().collect()
}

/// The range of keys from `start` on, for `BTreeMap::range` with `&str` bounds.
fn from(start: &str) -> (Bound<&str>, Bound<&str>) {
    (Bound::Included(start), Bound::Unbounded)
}

/// `dir` with exactly one trailing slash: the common start of every key below it.
fn directory_prefix(dir: &str) -> String {
    format!("{}/", dir.trim_end_matches('/'))
}

fn getenv(name: &str, default: Option<String>) -> String {
    std::env::var(name).unwrap_or_else(|_| default.unwrap_or_default())
}

fn fromjson(text: &str) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|parsed| Value::from(minijinja::value::Serde(&parsed)))
        .map_err(|err| {
            invalid(format!(
                "fromjson: invalid JSON ({err}) in the value starting with {:?}",
                start_of(text)
            ))
        })
}

/// The first characters of `text`, enough to recognise it in an error message.
fn start_of(text: &str) -> String {
    const SHOWN: usize = 40;
    let mut start: String = text.chars().take(SHOWN).collect();
    if text.chars().nth(SHOWN).is_some() {
        start.push('…');
    }
    start
}

/// `/a/b/c` → `c`; a trailing slash is ignored (`/a/b/` → `b`). A `Value` made from the
/// slice, not a `String`: short names then need no allocation (this runs once per line).
fn basename(key: &str) -> Value {
    let trimmed = key.trim_end_matches('/');
    Value::from(trimmed.rsplit('/').next().unwrap_or(trimmed))
}

/// `/a/b/c` → `/a/b`; `/a` → `/`; a name without a slash → `.` (like POSIX dirname).
fn dirname(key: &str) -> Value {
    let trimmed = key.trim_end_matches('/');
    Value::from(match trimmed.rfind('/') {
        Some(0) => "/",
        Some(cut) => &trimmed[..cut],
        None if key.starts_with('/') => "/",
        None => ".",
    })
}

/// The widest `tojson` indent. MiniJinja writes `indent × depth` spaces per line before it
/// charges fuel for the text, so `tojson(indent=2049638230412172401)` ran for ever.
pub(super) const MAX_JSON_INDENT: usize = 32;

/// MiniJinja's `tojson` (`indent` positional or keyword, `true` for 2) with the indent bounded.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    if let Some(width) = indent.as_ref().filter(|v| v.kind() != ValueKind::Bool) {
        let too_wide = usize::try_from(width.clone()).map_or(true, |n| n > MAX_JSON_INDENT);
        if too_wide {
            return Err(invalid(format!(
                "tojson: indent {width} is not a number of spaces from 0 to {MAX_JSON_INDENT}"
            )));
        }
    }
    minijinja::filters::tojson(value, indent, kwargs)
}

fn keys(map: &Value) -> Result<Value, Error> {
    expect_map(map, "keys")?;
    Ok(Value::from(map.try_iter()?.collect::<Vec<_>>()))
}

fn values(map: &Value) -> Result<Value, Error> {
    expect_map(map, "values")?;
    let values = map
        .try_iter()?
        .map(|key| map.get_item(&key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::from(values))
}

fn expect_map(value: &Value, function: &str) -> Result<(), Error> {
    if value.kind() == ValueKind::Map {
        Ok(())
    } else {
        Err(invalid(format!(
            "{function}() expects a map (like data or altdata.ALIAS), got {}",
            value.kind()
        )))
    }
}
