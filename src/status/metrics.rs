//! The status document in Prometheus text format, for node_exporter's textfile collector
//! (`--metrics-file /var/lib/node_exporter/textfile/reconfig.prom`).

use super::document::{Counters, Document, ResourceStatus, State};
use std::fmt::Write;

type Counter = fn(&Counters) -> u64;
type Gauge = fn(&ResourceStatus) -> Option<u64>;

const COUNTERS: &[(&str, &str, Counter)] = &[
    ("reconfig_renders_total", "Templates rendered.", |c| {
        c.renders
    }),
    (
        "reconfig_installs_total",
        "Targets rewritten with new content.",
        |c| c.installs,
    ),
    (
        "reconfig_check_failures_total",
        "Check commands that rejected a new content.",
        |c| c.check_failures,
    ),
    (
        "reconfig_reload_failures_total",
        "Reload commands that failed.",
        |c| c.reload_failures,
    ),
    (
        "reconfig_watch_reconnects_total",
        "Times etcd answered again after a failed read or watch.",
        |c| c.watch_reconnects,
    ),
];

const GAUGES: &[(&str, &str, Gauge)] = &[
    (
        "reconfig_last_success_timestamp_seconds",
        "When a pass last ended with the target up to date.",
        |r| r.applied_at,
    ),
    (
        "reconfig_last_change_timestamp_seconds",
        "When the target was last rewritten.",
        |r| r.changed_at,
    ),
    (
        "reconfig_last_reload_success_timestamp_seconds",
        "When the reload command last succeeded.",
        |r| r.reloaded_at,
    ),
    (
        "reconfig_applied_index",
        "The etcd index or revision the target was last converged to.",
        |r| r.applied_index,
    ),
    (
        "reconfig_failing",
        "1 while the resource's last pass failed.",
        |r| Some(u64::from(r.state == State::Error)),
    ),
    (
        "reconfig_reload_pending",
        "1 while a new target waits for a successful reload.",
        |r| Some(u64::from(r.reload_pending)),
    ),
    (
        "reconfig_watch_connected",
        "1 while the last read of etcd succeeded.",
        |r| Some(u64::from(r.watch_connected)),
    ),
];

/// Every metric of every resource, labelled `resource="<id>",target="<path>"` (ids need not
/// be unique; targets are, so every series is).
pub fn render(document: &Document) -> String {
    let mut out = String::new();
    for (name, help, value) in COUNTERS {
        family(&mut out, name, help, "counter", document, |r| {
            Some(value(&r.counters))
        });
    }
    for (name, help, value) in GAUGES {
        family(&mut out, name, help, "gauge", document, value);
    }
    out
}

fn family(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    document: &Document,
    value: impl Fn(&ResourceStatus) -> Option<u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for resource in &document.resources {
        if let Some(value) = value(resource) {
            let _ = writeln!(
                out,
                "{name}{{resource=\"{}\",target=\"{}\"}} {value}",
                label(&resource.id),
                label(&resource.target)
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::document::Mode;
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn families_have_help_type_and_one_sample_per_resource() {
        let resource = ResourceStatus {
            id: "web".to_string(),
            target: "/etc/web.conf".to_string(),
            key: "/web".to_string(),
            state: State::Error,
            applied_index: None,
            applied_at: Some(1_700_000_000),
            changed_at: None,
            error: None,
            check: None,
            reload: None,
            reloaded_at: None,
            watch_connected: true,
            reload_pending: false,
            counters: Counters {
                renders: 3,
                ..Counters::default()
            },
        };
        let document = Document {
            version: 1,
            pid: 1,
            mode: Mode::Daemon,
            written_at: 0,
            resources: vec![resource],
        };
        let text = render(&document);
        assert!(text.contains(
            "# HELP reconfig_renders_total Templates rendered.\n\
             # TYPE reconfig_renders_total counter\n\
             reconfig_renders_total{resource=\"web\",target=\"/etc/web.conf\"} 3\n"
        ));
        assert!(
            text.contains("reconfig_last_success_timestamp_seconds{resource=\"web\",target=\"/etc/web.conf\"} 1700000000\n")
        );
        assert!(text.contains("reconfig_failing{resource=\"web\",target=\"/etc/web.conf\"} 1\n"));
        // Never set: no sample rather than a made-up 0.
        assert!(!text.contains("reconfig_last_change_timestamp_seconds{"));
    }
}
