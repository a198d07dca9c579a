//! Durations (`"100ms"`, `"1.5s"`, `"1m30s"`) and the `wait` (quiescence) setting.

use std::time::Duration;

use serde_json::Value;

use super::Wait;

const UNITS_HELP: &str = "units: us, ms, s, m, h; e.g. \"500ms\", \"2s\", \"1.5s\", \"1m30s\"";

/// Parses a duration: one or more `<number><unit>` parts, the number possibly fractional.
/// `"0"` is the only number allowed without a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(format!("empty duration; {UNITS_HELP}"));
    }
    let mut seconds = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let (part_seconds, after) = parse_part(rest, s)?;
        seconds += part_seconds;
        rest = after;
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {s:?} is too long"))
}

/// One `<number><unit>` part at the start of `rest`: its length in seconds and what follows.
fn parse_part<'a>(rest: &'a str, whole: &str) -> Result<(f64, &'a str), String> {
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, after_number) = rest.split_at(number_end);
    let unit_end = after_number
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(after_number.len());
    let (unit, after_unit) = after_number.split_at(unit_end);
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid duration {whole:?}: expected a number before {unit:?}; {UNITS_HELP}")
    })?;
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => {
            return Err(format!(
                "invalid duration {whole:?}: {number} has no unit; {UNITS_HELP}"
            ))
        }
        other => {
            return Err(format!(
                "invalid duration {whole:?}: unknown unit {other:?}; {UNITS_HELP}"
            ))
        }
    };
    Ok((value * scale, after_unit))
}

/// Parses a `wait` setting: `"100ms"` (min; max = 10 × min), `"100ms,2s"` (min,max), or
/// `{"min": "100ms", "max": "2s"}` (max optional, again 10 × min). min must not exceed max.
pub fn parse_wait(v: &Value) -> Result<Wait, String> {
    let (min, max) = match v {
        Value::String(text) => wait_from_string(text)?,
        Value::Object(fields) => {
            if let Some(unknown) = fields.keys().find(|name| *name != "min" && *name != "max") {
                return Err(format!("unknown field {unknown:?} in wait (only \"min\" and \"max\")"));
            }
            let min = match fields.get("min") {
                Some(min) => wait_bound(min, "min")?,
                None => return Err("wait needs a \"min\" duration, e.g. {\"min\": \"100ms\", \"max\": \"2s\"}".into()),
            };
            let max = fields.get("max").map(|max| wait_bound(max, "max")).transpose()?;
            (min, max)
        }
        _ => {
            return Err(
                "wait must be a duration string like \"100ms\" or an object like {\"min\": \"100ms\", \"max\": \"2s\"}"
                    .into(),
            )
        }
    };
    let max = max.unwrap_or_else(|| min.saturating_mul(10));
    if min > max {
        return Err(format!(
            "wait min ({min:?}) is longer than max ({max:?}); min is the quiet time awaited, max caps the total delay"
        ));
    }
    Ok(Wait { min, max })
}

fn wait_from_string(text: &str) -> Result<(Duration, Option<Duration>), String> {
    match text.split_once(',') {
        Some((min, max)) => Ok((parse_duration(min)?, Some(parse_duration(max)?))),
        None => Ok((parse_duration(text)?, None)),
    }
}

fn wait_bound(value: &Value, name: &str) -> Result<Duration, String> {
    match value {
        Value::String(text) => parse_duration(text).map_err(|err| format!("wait {name}: {err}")),
        _ => Err(format!(
            "wait {name} must be a duration string like \"100ms\", found {value}"
        )),
    }
}
