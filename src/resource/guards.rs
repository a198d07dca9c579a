//! The guard fields of a conf.d file: `min_keys`, `max_shrink`, `values`, `on_bad_value`.

use serde_json::Value;

use super::fields::{describe, Fields};
use crate::guard::{Guards, OnBadValue, Percent, ValueRule};

pub(super) fn parse(fields: &Fields) -> Result<Guards, String> {
    let max_shrink = match fields.get("max_shrink") {
        None => None,
        Some(Value::String(text)) => {
            Some(percent(text).map_err(|e| format!("field \"max_shrink\": {text:?} {e}"))?)
        }
        Some(other) => {
            return Err(format!(
                "field \"max_shrink\": expected a share of the leaves like \"50%\", found {}",
                describe(other)
            ))
        }
    };
    let on_mismatch = match fields.string("on_bad_value")? {
        None | Some("refuse") => OnBadValue::Refuse,
        Some("skip") => OnBadValue::Skip,
        Some(other) => {
            return Err(format!(
                "field \"on_bad_value\": {other:?} is not \"refuse\" (the default) or \"skip\""
            ))
        }
    };
    let values =
        match fields.string("values")? {
            Some(pattern) => Some(ValueRule::new(pattern, on_mismatch).map_err(|e| {
                format!("field \"values\": {pattern:?} is not a valid regular expression: {e}")
            })?),
            None if fields.get("on_bad_value").is_some() => return Err(
                "field \"on_bad_value\": given without \"values\", the pattern values must match"
                    .to_string(),
            ),
            None => None,
        };
    Ok(Guards {
        min_keys: fields.positive_integer("min_keys")?,
        max_shrink,
        values,
    })
}

/// "50%" → 50; from 0 to under 100 (100% would allow any drop: no guard).
fn percent(text: &str) -> Result<Percent, &'static str> {
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or("must end with '%', like \"50%\"")?;
    match number.trim().parse::<f64>() {
        Ok(share) if (0.0..100.0).contains(&share) => Ok(Percent(share)),
        _ => Err("must be a percentage from 0% to under 100%, like \"50%\""),
    }
}
