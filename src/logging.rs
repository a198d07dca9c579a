//! Log lines on stderr: `2026-11-25T20:31:07.123Z INFO  [resource-id] message`, or with
//! `--log-format json` one JSON object per line for log pipelines:
//! `{"time":"2026-11-25T20:31:07.123Z","level":"info","resource":"resource-id","message":"..."}`.
//!
//! Resource threads log with `target: <resource id>`, so every line says which resource
//! it is about; lines from the crate's own modules carry no label. `-d` starts at debug
//! level; SIGUSR1 toggles debug for every thread at once through `log::set_max_level`.

use log::{LevelFilter, Record};
use std::io::Write;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// How each log line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: time, level, `[resource]`, message.
    #[default]
    Text,
    /// One JSON object per line: `time`, `level`, `resource` (null when the line is about
    /// no resource) and `message`.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format: use text or json")),
        }
    }
}

pub fn init(debug: bool, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(LevelFilter::Trace)
        // The HTTP and TLS stacks are chatty at debug level and say nothing an operator needs.
        .filter_module("ureq", LevelFilter::Warn)
        .filter_module("ureq_proto", LevelFilter::Warn)
        .filter_module("rustls", LevelFilter::Warn);
    match format {
        LogFormat::Text => builder.format(write_text),
        LogFormat::Json => builder.format(write_json),
    };
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    // A second init (tests) keeps the first logger; that is fine.
    let _ = builder.try_init();
    set_debug(debug);
}

pub fn set_debug(debug: bool) {
    log::set_max_level(if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}

/// Flips between info and debug; returns true when debug is now on.
pub fn toggle_debug() -> bool {
    let debug = log::max_level() < LevelFilter::Debug;
    set_debug(debug);
    debug
}

fn write_text(buf: &mut env_logger::fmt::Formatter, record: &Record) -> std::io::Result<()> {
    let target = record.target();
    if target.starts_with("reconfig") {
        writeln!(
            buf,
            "{} {:<5} {}",
            timestamp(),
            record.level(),
            record.args()
        )
    } else {
        writeln!(
            buf,
            "{} {:<5} [{target}] {}",
            timestamp(),
            record.level(),
            record.args()
        )
    }
}

fn write_json(buf: &mut env_logger::fmt::Formatter, record: &Record) -> std::io::Result<()> {
    writeln!(buf, "{}", json_line(record, &timestamp()))
}

/// One JSON object for `record`. The resource is the log target when a resource thread set
/// it (it then differs from the module the line comes from).
fn json_line(record: &Record, time: &str) -> String {
    let target = record.target();
    let resource = match record.module_path() {
        Some(module) => target != module,
        None => !target.starts_with("reconfig"),
    }
    .then_some(target);
    serde_json::json!({
        "time": time,
        "level": record.level().as_str().to_ascii_lowercase(),
        "resource": resource,
        "message": record.args().to_string(),
    })
    .to_string()
}

/// UTC time with milliseconds, without pulling in a date crate.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_name_the_resource_only_when_the_target_is_one() {
        let about_resource = json_line(
            &Record::builder()
                .args(format_args!("changed \"a\"\nnext line"))
                .level(log::Level::Warn)
                .target("web")
                .module_path(Some("reconfig::watch"))
                .build(),
            "2026-12-02T09:00:00.000Z",
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&about_resource).expect("a JSON object");
        assert_eq!(
            parsed,
            serde_json::json!({"time": "2026-12-02T09:00:00.000Z", "level": "warn",
                "resource": "web", "message": "changed \"a\"\nnext line"})
        );
        assert!(!about_resource.contains('\n'), "one line: {about_resource}");
        let general = json_line(
            &Record::builder()
                .args(format_args!("watching 2 resource(s)"))
                .level(log::Level::Info)
                .target("reconfig::daemon")
                .module_path(Some("reconfig::daemon"))
                .build(),
            "t",
        );
        let parsed: serde_json::Value = serde_json::from_str(&general).expect("JSON");
        assert_eq!(parsed["resource"], serde_json::Value::Null);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
    }
}
