//! What operators see of every resource: `--status-file`, `reconfig status`,
//! `--metrics-file` and `--log-format json`, against a real etcd and real check/reload
//! commands.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::daemon::Setup;
use support::{both_apis, eventually, stderr, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// The status document, when the file exists and parses.
fn document(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The entry of resource `id` in the document at `path`.
fn resource(path: &Path, id: &str) -> Option<Value> {
    document(path)?["resources"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
}

/// Waits until resource `id`'s entry satisfies `check`; returns the last entry seen.
fn wait_resource(path: &Path, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = eventually(SECS, || {
        last = resource(path, id).unwrap_or(Value::Null);
        check(&last)
    });
    assert!(found, "status of {id} never matched; last seen: {last:#}");
    last
}

both_apis!(daemon_status_file_follows_applies_failures_and_recovery);
fn daemon_status_file_follows_applies_failures_and_recovery(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    // A check that rejects any file mentioning "bad".
    let mut checked = setup.list_resource("checked", "/svc");
    checked["checkcmd"] = json!("! grep -q bad {{src}}");
    setup.resource("checked", checked);
    let status = setup.out("status.json");
    let status_arg = status.display().to_string();
    let daemon = setup.daemon(&etcd, &["--status-file", &status_arg]);

    let first = wait_resource(&status, "svc", |r| r["state"] == "ok");
    assert_eq!(first["target"], json!(setup.out("svc.conf")));
    assert_eq!(first["key"], "/svc");
    assert_eq!(first["watch_connected"], true);
    assert_eq!(first["reload_pending"], false);
    assert!(first["changed_at"].is_u64(), "{first:#}");
    assert_eq!(first["reload"]["ok"], true, "{first:#}");
    assert_eq!(first["counters"]["installs"], 1, "{first:#}");
    let checked = wait_resource(&status, "checked", |r| r["state"] == "ok");
    assert_eq!(checked["check"]["ok"], true, "{checked:#}");
    let first_index = first["applied_index"].as_u64().expect("applied_index");

    // A change is applied: a higher index, one more install.
    etcd.put("/svc/b", "10.0.0.2:80");
    let second = wait_resource(&status, "svc", |r| {
        r["applied_index"].as_u64() > Some(first_index) && r["counters"]["installs"] == 2
    });
    assert_eq!(second["state"], "ok");

    // A value the check rejects: that resource shows the error, the other does not.
    etcd.put("/svc/c", "bad");
    let failing = wait_resource(&status, "checked", |r| r["state"] == "error");
    assert_eq!(failing["error"]["kind"], "check", "{failing:#}");
    assert!(
        failing["error"]["text"]
            .as_str()
            .is_some_and(|text| text.contains("check of the new content failed")),
        "{failing:#}"
    );
    assert!(failing["error"]["since"].is_u64());
    assert_eq!(failing["check"]["ok"], false);
    assert!(failing["counters"]["check_failures"].as_u64() >= Some(1));
    wait_resource(&status, "svc", |r| {
        r["state"] == "ok" && r["counters"]["installs"] == 3
    });

    // The data recovers: so does the state (the file on disk was never replaced, so no
    // check ran again: the last check result stays the failed one).
    etcd.delete("/svc/c", false);
    let recovered = wait_resource(&status, "checked", |r| r["state"] == "ok");
    assert_eq!(recovered["error"], Value::Null);

    let (out, _) = daemon.terminate();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Only the document is left: no temp file beside it.
    let names: Vec<String> = std::fs::read_dir(setup.out(""))
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("status"))
        .collect();
    assert_eq!(names, vec!["status.json".to_string()]);
    let doc = document(&status).expect("document");
    assert_eq!(doc["mode"], "daemon");
    assert_eq!(doc["version"], 1);
}

both_apis!(onetime_writes_the_status_at_the_end_with_a_failed_reload_pending);
fn onetime_writes_the_status_at_the_end_with_a_failed_reload_pending(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let mut broken = setup.list_resource("broken", "/svc");
    broken["reloadcmd"] = json!("echo reload service failed >&2; exit 3");
    setup.resource("broken", broken);
    let status = setup.out("status.json");
    let status_arg = status.display().to_string();

    let out = setup.onetime(&etcd, &["--status-file", &status_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let doc = document(&status).expect("status document");
    assert_eq!(doc["mode"], "onetime");
    let svc = resource(&status, "svc").expect("svc");
    assert_eq!(svc["state"], "ok", "{svc:#}");
    assert!(svc["applied_index"].as_u64() > Some(0));
    let broken = resource(&status, "broken").expect("broken");
    assert_eq!(broken["state"], "error", "{broken:#}");
    assert_eq!(broken["error"]["kind"], "reload");
    assert_eq!(broken["reload"]["ok"], false);
    assert!(
        broken["reload"]["error"]
            .as_str()
            .is_some_and(|text| text.contains("exit")),
        "{broken:#}"
    );
    assert_eq!(broken["reload_pending"], true);
    assert_eq!(broken["counters"]["reload_failures"], 1);
    // The target was rewritten by this run; a later run with nothing to install keeps that
    // time, and retries the reload still owed (`--state-dir`), which fails again.
    let changed_at = svc["changed_at"].as_u64().expect("changed_at");
    let again = setup.onetime(&etcd, &["--status-file", &status_arg]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    let svc = resource(&status, "svc").expect("svc");
    assert_eq!(svc["changed_at"].as_u64(), Some(changed_at));
    assert_eq!(svc["counters"]["installs"], 0);
    let broken = resource(&status, "broken").expect("broken");
    assert_eq!(broken["counters"]["installs"], 0, "{broken:#}");
    assert_eq!(broken["counters"]["reload_failures"], 1, "{broken:#}");
    assert_eq!(broken["reload_pending"], true, "{broken:#}");
}

#[test]
fn a_status_file_that_cannot_be_written_stops_the_start_with_its_path() {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let status = setup.out("no-such-dir/status.json");
    let out = setup.onetime(&etcd, &["--status-file", &status.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("--status-file"), "{log}");
    assert!(log.contains("no-such-dir/status.json"), "{log}");
    assert!(!setup.out("svc.conf").exists(), "nothing ran");
}

/// `reconfig status` with `args`.
fn status_command(args: &[&str]) -> std::process::Output {
    let mut all = vec!["status"];
    all.extend(args);
    support::run_bin(support::daemon::RECONFIG, &all, SECS)
}

#[test]
fn reconfig_status_prints_a_table_and_fails_while_a_resource_has_an_error() {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let mut broken = setup.list_resource("broken", "/svc");
    broken["reloadcmd"] = json!("exit 3");
    setup.resource("broken", broken);
    let status = setup.out("status.json");
    let status_arg = status.display().to_string();
    assert_eq!(
        setup
            .onetime(&etcd, &["--status-file", &status_arg])
            .status
            .code(),
        Some(2)
    );

    let out = status_command(&["--status-file", &status_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let table = support::stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("reconfig onetime run, pid "),
        "{table}"
    );
    assert!(
        lines[1].starts_with("RESOURCE") && lines[1].ends_with("ERROR"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("broken    error, reload pending")
            && (lines[2].contains("reload since 0s ago: installed, but reload failed")
                || lines[2].contains("reload since 1s ago: installed, but reload failed")),
        "{table}"
    );
    assert!(lines[3].starts_with("svc       ok"), "{table}");
    assert!(lines[3].contains("s ago"), "{table}");

    let json = status_command(&["--status-file", &status_arg, "--json"]);
    assert_eq!(json.status.code(), Some(2));
    let printed: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(Some(printed), document(&status));

    // A run where everything converges: exit 0.
    setup.resource("broken", setup.list_resource("broken", "/svc"));
    assert_eq!(
        setup
            .onetime(&etcd, &["--status-file", &status_arg])
            .status
            .code(),
        Some(0)
    );
    let out = status_command(&["--status-file", &status_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", support::stdout(&out));
}

#[test]
fn reconfig_status_without_the_file_says_which_file_and_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("status.json");
    let out = status_command(&["--status-file", &missing.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("{} does not exist", missing.display()))
            && message.contains("--status-file"),
        "{message}"
    );
    std::fs::write(&missing, "{\"not\": \"a status\"}").expect("write");
    let out = status_command(&["--status-file", &missing.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a reconfig status document"),
        "{}",
        stderr(&out)
    );
}

/// Parses a Prometheus text-format file strictly enough to catch what node_exporter's
/// textfile collector rejects: every sample's family has `# HELP` and `# TYPE` lines
/// before it, names are valid metric names, label values are quoted with escapes, values
/// are numbers, no series appears twice. Returns (metric, resource label) → value.
fn parse_metrics(text: &str) -> std::collections::BTreeMap<(String, String), f64> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = std::collections::BTreeSet::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut series = std::collections::BTreeSet::new();
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            assert!(valid_name(name), "bad name in {line:?}");
            helped.insert(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "bad name in {line:?}");
            assert!(["counter", "gauge"].contains(&kind), "{line:?}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line:?}");
        } else {
            let (name, rest) = line.split_once('{').expect("a labelled sample");
            assert!(typed.contains(name) && helped.contains(name), "{line:?}");
            let (labels, value) = parse_labels(rest).unwrap_or_else(|| panic!("{line:?}"));
            let value: f64 = value
                .strip_prefix(' ')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{line:?}"));
            assert!(
                series.insert(format!("{name}{labels:?}")),
                "twice: {line:?}"
            );
            let resource = labels.get("resource").expect("resource label").clone();
            samples.insert((name.to_string(), resource), value);
        }
    }
    samples
}

/// `a="x",b="y\"z"} rest` → ({a: x, b: y"z}, " rest").
fn parse_labels(mut text: &str) -> Option<(std::collections::BTreeMap<String, String>, &str)> {
    let mut labels = std::collections::BTreeMap::new();
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (name, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => return None,
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_string(), value);
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

both_apis!(metrics_file_parses_and_its_counters_go_up);
fn metrics_file_parses_and_its_counters_go_up(api: Api) {
    let mut etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let metrics = setup.out("reconfig.prom");
    let metrics_arg = metrics.display().to_string();
    let daemon = setup.daemon(&etcd, &["--metrics-file", &metrics_arg]);
    let sample = |name: &str| {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        parse_metrics(&text)
            .get(&(name.to_string(), "svc".to_string()))
            .copied()
    };
    let wait_sample = |name: &str, check: &dyn Fn(f64) -> bool| {
        assert!(
            eventually(SECS, || sample(name).is_some_and(check)),
            "{name} is {:?}; log:\n{}",
            sample(name),
            daemon.log_text()
        );
    };
    wait_sample("reconfig_installs_total", &|v| v == 1.0);
    let renders = sample("reconfig_renders_total").expect("renders");
    assert!(renders >= 1.0);
    assert_eq!(sample("reconfig_check_failures_total"), Some(0.0));
    assert_eq!(sample("reconfig_reload_failures_total"), Some(0.0));
    assert_eq!(sample("reconfig_watch_reconnects_total"), Some(0.0));
    assert_eq!(sample("reconfig_failing"), Some(0.0));
    let success = sample("reconfig_last_success_timestamp_seconds").expect("last success");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - success).abs() < 60.0, "{success} vs {now}");
    assert!(sample("reconfig_last_reload_success_timestamp_seconds").is_some());

    etcd.put("/svc/b", "10.0.0.2:80");
    wait_sample("reconfig_installs_total", &|v| v == 2.0);
    assert!(sample("reconfig_renders_total") > Some(renders));

    // An outage and a recovery: one reconnect, and the change made after it is installed.
    etcd.kill();
    wait_sample("reconfig_watch_connected", &|v| v == 0.0);
    etcd.restart();
    etcd.put("/svc/c", "10.0.0.3:80");
    wait_sample("reconfig_installs_total", &|v| v == 3.0);
    wait_sample("reconfig_watch_connected", &|v| v == 1.0);
    assert_eq!(sample("reconfig_watch_reconnects_total"), Some(1.0));
}

#[test]
fn json_log_format_writes_one_parsable_object_per_line() {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    // A check whose output spans lines: the message holding it still fits one line.
    let mut rejected = setup.list_resource("rejected", "/svc");
    rejected["checkcmd"] = json!("echo first >&2; echo \"second \\\"quoted\\\"\" >&2; exit 1");
    setup.resource("rejected", rejected);
    let out = setup.onetime(&etcd, &["--log-format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let log = stderr(&out);
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    for line in &lines {
        let keys: Vec<&String> = line.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["level", "message", "resource", "time"], "{line}");
        assert!(
            line["time"]
                .as_str()
                .is_some_and(|t| t.len() == 24 && t.ends_with('Z')),
            "{line}"
        );
    }
    let find = |resource: Value, start: &str| {
        lines
            .iter()
            .find(|l| {
                l["resource"] == resource
                    && l["message"].as_str().is_some_and(|m| m.starts_with(start))
            })
            .unwrap_or_else(|| panic!("no {resource} line starting {start:?} in:\n{log}"))
    };
    assert_eq!(find(json!("svc"), "changed ")["level"], "info");
    let failed = find(json!("rejected"), "cannot install");
    assert_eq!(failed["level"], "error");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("first") && m.contains("second \"quoted\"")),
        "{failed}"
    );
    assert_eq!(
        find(Value::Null, "1 of 2 resources did not converge")["level"],
        "error"
    );

    let bad = setup.onetime(&etcd, &["--log-format", "yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--log-format: \"yaml\" is not a log format: use text or json"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn two_resources_with_one_id_are_two_entries_and_two_series() {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    // Ids need not be unique (targets must be): each resource keeps its own status.
    setup.resource(
        "one",
        setup.list_resource_at("dup", "/svc", &setup.out("one.conf")),
    );
    let mut failing = setup.list_resource_at("dup", "/svc", &setup.out("two.conf"));
    failing["reloadcmd"] = json!("exit 1");
    setup.resource("two", failing);
    let status = setup.out("status.json");
    let metrics = setup.out("reconfig.prom");
    let out = setup.onetime(
        &etcd,
        &[
            "--status-file",
            &status.display().to_string(),
            "--metrics-file",
            &metrics.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let doc = document(&status).expect("document");
    let states: Vec<(&str, &str)> = doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["target"].as_str().expect("target"),
                r["state"].as_str().expect("state"),
            )
        })
        .collect();
    let one = setup.out("one.conf").display().to_string();
    let two = setup.out("two.conf").display().to_string();
    assert_eq!(states, vec![(one.as_str(), "ok"), (two.as_str(), "error")]);
    // parse_metrics rejects a series written twice.
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    parse_metrics(&text);
    assert!(
        text.contains(&format!(
            "reconfig_failing{{resource=\"dup\",target=\"{two}\"}} 1\n"
        )),
        "{text}"
    );
}

#[test]
fn sighup_drops_removed_resources_from_the_status_and_keeps_the_others() {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    setup.resource("kept", setup.list_resource("kept", "/svc"));
    setup.resource("removed", setup.list_resource("removed", "/svc"));
    let status = setup.out("status.json");
    let daemon = setup.daemon(&etcd, &["--status-file", &status.display().to_string()]);
    let kept = wait_resource(&status, "kept", |r| r["state"] == "ok");
    wait_resource(&status, "removed", |r| r["state"] == "ok");

    std::fs::remove_file(setup.cfgdir().join("conf.d/removed.json")).expect("rm");
    daemon.signal(libc::SIGHUP);
    assert!(
        eventually(SECS, || resource(&status, "removed").is_none()),
        "{:#?}",
        document(&status)
    );
    // The kept resource's history stays: same install count, same change time.
    let after = resource(&status, "kept").expect("kept");
    assert_eq!(after["counters"]["installs"], kept["counters"]["installs"]);
    assert_eq!(after["changed_at"], kept["changed_at"]);
}
