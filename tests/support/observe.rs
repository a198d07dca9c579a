//! What a test observes of a running daemon and of etcd from outside: the daemon's threads
//! and TCP connections (from /proc), etcd's own count of v3 watch streams (its /metrics).

use super::Etcd;
use std::collections::BTreeSet;

/// Threads of process `pid`.
pub fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |tasks| tasks.count())
}

/// TCP connections of process `pid` to `port` on the loopback, in any state (one etcd has
/// closed still counts while the process holds it).
pub fn connections_to(pid: i32, port: u16) -> usize {
    tcp_to(pid, port, |_| true)
}

/// Established TCP connections of process `pid` to `port` on the loopback.
pub fn established_to(pid: i32, port: u16) -> usize {
    const ESTABLISHED: &str = "01";
    tcp_to(pid, port, |state| state == ESTABLISHED)
}

/// The socket inodes among `pid`'s open fds, looked up in the kernel's TCP tables of its
/// network namespace: those to `port` whose state (hex, as the tables give it) `counts`.
fn tcp_to(pid: i32, port: u16, counts: impl Fn(&str) -> bool) -> usize {
    let sockets: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|link| {
                    let link = link.to_string_lossy().into_owned();
                    let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
                    Some(inode.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let remote = format!(":{port:04X}");
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                    let f: Vec<&str> = line.split_whitespace().collect();
                    f.len() > 9 && f[2].ends_with(&remote) && counts(f[3]) && sockets.contains(f[9])
                })
                .count()
        })
        .sum()
}

/// What etcd's `/metrics` says of its v3 watch streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streams {
    /// `Watch` calls started (the gateway starts one per `POST /v3/watch`).
    pub started: u64,
    /// `Watch` calls ended, whatever their code.
    pub handled: u64,
    /// `etcd_debugging_mvcc_watch_stream_total`: streams the store serves now.
    pub gauge: u64,
    /// `etcd_debugging_mvcc_watcher_total`: watches on them.
    pub watchers: u64,
}

impl Streams {
    pub fn open(&self) -> u64 {
        self.started.saturating_sub(self.handled)
    }
}

impl std::fmt::Display for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} open watch stream(s) ({} started, {} ended; store: {} stream(s), {} watcher(s))",
            self.open(),
            self.started,
            self.handled,
            self.gauge,
            self.watchers
        )
    }
}

fn metric_value(line: &str) -> u64 {
    line.rsplit(' ')
        .next()
        .and_then(|n| n.parse::<f64>().ok())
        .map(|n| n as u64)
        .unwrap_or_else(|| panic!("no number at the end of {line:?}"))
}

/// etcd's own count of v3 watch streams (etcd 3.4.23 prints every line read here).
pub fn watch_streams(etcd: &Etcd) -> Streams {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let metrics = agent
        .get(&format!("{}/metrics", etcd.url()))
        .call()
        .expect("GET /metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics body");
    let watch_call = |line: &str, counter: &str| {
        line.starts_with(counter)
            && line.contains(r#"grpc_method="Watch""#)
            && line.contains(r#"grpc_service="etcdserverpb.Watch""#)
    };
    let mut streams = Streams::default();
    let (mut saw_started, mut saw_handled) = (false, false);
    for line in metrics.lines() {
        if watch_call(line, "grpc_server_started_total{") {
            streams.started += metric_value(line);
            saw_started = true;
        } else if watch_call(line, "grpc_server_handled_total{") {
            streams.handled += metric_value(line);
            saw_handled = true;
        } else if line.starts_with("etcd_debugging_mvcc_watch_stream_total ") {
            streams.gauge = metric_value(line);
        } else if line.starts_with("etcd_debugging_mvcc_watcher_total ") {
            streams.watchers = metric_value(line);
        }
    }
    assert!(
        saw_started && saw_handled,
        "no Watch counters in etcd's /metrics"
    );
    streams
}
