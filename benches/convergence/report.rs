//! The results table (markdown, printed) and `target/bench/results.json`.

use crate::measure::Stats;
use crate::scenarios::{Binary, Burst, Change, Floor, Layout, Onetime, UPDATES};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure without a target.
    Info,
}

struct Row {
    figure: String,
    value: String,
    target: String,
    verdict: Verdict,
}

pub struct Report {
    rows: Vec<Row>,
    json: Map<String, Value>,
}

fn mb(kb: f64) -> String {
    format!("{:.1} MB", kb / 1024.0)
}

fn stats(s: &Stats) -> String {
    format!("{:.1} / {:.1} / {:.1} ms", s.p50, s.p95, s.max)
}

fn check(ok: bool) -> Verdict {
    if ok {
        Verdict::Met
    } else {
        Verdict::Missed
    }
}

impl Report {
    pub fn new(client: &reconfig::etcd::v2::Client) -> Report {
        let mut report = Report {
            rows: Vec::new(),
            json: Map::new(),
        };
        let etcd_version = client
            .version()
            .map(|(_, v)| v.etcdserver)
            .unwrap_or_else(|e| format!("unknown ({e})"));
        report.note("machine", machine(&etcd_version));
        report
    }

    pub fn note(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_string(), value);
    }

    fn row(&mut self, figure: impl Into<String>, value: String, target: &str, verdict: Verdict) {
        self.rows.push(Row {
            figure: figure.into(),
            value,
            target: target.to_string(),
            verdict,
        });
    }

    fn info(&mut self, figure: impl Into<String>, value: String) {
        self.row(figure, value, "", Verdict::Info);
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    pub fn floor(&mut self, f: &Floor) {
        self.info(
            "1. floor: PUT sent → raw v2 watcher has it, p50/p95/max",
            stats(&f.watch_from_send),
        );
        self.info(
            "1. floor: PUT reply → raw v2 watcher has it (negative: before the reply)",
            stats(&f.watch_from_reply),
        );
        self.info("1. PUT round trip", stats(&f.put_rtt));
        self.note(
            "floor",
            json!({"updates": UPDATES, "watch_ms_from_send": f.watch_from_send.json(),
                   "watch_ms_from_reply": f.watch_from_reply.json(), "put_rtt_ms": f.put_rtt.json()}),
        );
    }

    pub fn changes(&mut self, changes: &[Change], floor: &Floor) {
        for c in changes {
            let label = c.layout.label();
            self.info(
                format!("2. change → first file, {label} (after PUT reply)"),
                stats(&c.first),
            );
            if c.layout != Layout::One {
                self.info(
                    format!("2. change → last file, {label} (after PUT reply)"),
                    stats(&c.last),
                );
            }
            self.row(
                format!("2. updates missed, {label}"),
                format!("{} of {UPDATES}", c.missed),
                "0",
                check(c.missed == 0),
            );
        }
        self.change_targets(changes, floor);
        self.idle_rows(changes);
        let list: Vec<Value> = changes.iter().map(crate::scenarios::change_json).collect();
        self.note("change", Value::Array(list));
    }

    fn change_targets(&mut self, changes: &[Change], floor: &Floor) {
        let budget = floor.watch_from_send.p50 + 2.0;
        if let Some(one) = changes.iter().find(|c| c.layout == Layout::One) {
            let p50 = one.first_from_send.p50;
            self.row(
                "TARGET change → file p50, 1 resource (from PUT sent, like the floor)",
                format!("{p50:.1} ms (floor {:.1} ms)", floor.watch_from_send.p50),
                &format!("≤ floor + 2 ms = {budget:.1} ms"),
                check(p50 <= budget),
            );
        }
        for c in changes.iter().filter(|c| c.layout != Layout::One) {
            self.row(
                format!(
                    "TARGET change → last of 100 files p50, {}",
                    c.layout.label()
                ),
                format!("{:.1} ms", c.last.p50),
                "≤ 50 ms",
                check(c.last.p50 <= 50.0),
            );
        }
    }

    fn idle_rows(&mut self, changes: &[Change]) {
        for c in changes {
            let (limit_mb, label) = match c.layout {
                Layout::One => (4.0, "≤ 4 MB"),
                _ => (12.0, "≤ 12 MB"),
            };
            let label_layout = c.layout.label();
            self.row(
                format!("TARGET idle RSS, {label_layout} (after {UPDATES} updates)"),
                format!("{} ({} threads)", mb(c.idle.rss_kb as f64), c.idle.threads),
                label,
                check(c.idle.rss_kb as f64 <= limit_mb * 1024.0),
            );
            self.row(
                format!("TARGET idle CPU over 10 s, {label_layout}"),
                format!("{:.0} ms", c.idle.cpu_ms),
                "0",
                check(c.idle.cpu_ms == 0.0),
            );
            self.info(
                format!("4. RSS after start-up / peak, {label_layout}"),
                format!(
                    "{} / {} (start-up {:.0} ms)",
                    mb(c.rss_after_start_kb as f64),
                    mb(c.idle.hwm_kb as f64),
                    c.startup_ms
                ),
            );
        }
    }

    pub fn onetime(&mut self, results: &[Onetime]) {
        for o in results {
            let figure = format!(
                "3. onetime {} × {} keys: wall, CPU, peak RSS",
                o.resources, o.keys
            );
            let value = format!(
                "{:.1} ms, {:.1} ms, {}",
                o.wall_ms,
                o.cpu_ms,
                mb(o.peak_rss_kb)
            );
            let target = match (o.resources, o.keys) {
                (100, 10_000) => Some((1000.0, 40.0, "≤ 1 s, ≤ 40 MB")),
                (1, 10) => Some((5.0, 5.0, "≤ 5 ms, ≤ 5 MB")),
                _ => None,
            };
            match target {
                Some((wall, rss, text)) => {
                    let ok = o.wall_ms <= wall && o.peak_rss_kb <= rss * 1024.0;
                    self.row(format!("TARGET {figure}"), value, text, check(ok));
                }
                None => self.info(figure, value),
            }
        }
        let list: Vec<Value> = results
            .iter()
            .map(|o| {
                json!({"resources": o.resources, "keys": o.keys, "wall_ms": o.wall_ms,
                       "cpu_ms": o.cpu_ms, "peak_rss_kb": o.peak_rss_kb, "runs": o.runs})
            })
            .collect();
        self.note("onetime", Value::Array(list));
    }

    pub fn bursts(&mut self, results: &[Burst]) {
        for b in results {
            let wait = b.wait.unwrap_or("no wait");
            let figure = format!(
                "5. burst {} updates, {wait}: renders / writes / reloads, last PUT → final content",
                b.updates
            );
            let value = format!(
                "{:.0} / {:.0} / {:.0}, {:.1} ms (PUTs took {:.0} ms)",
                b.renders, b.writes, b.reloads, b.settle_ms, b.put_ms
            );
            if b.updates == 200 && b.wait.is_some() {
                self.row(
                    format!("TARGET {figure}"),
                    value,
                    "≤ 3 reloads",
                    check(b.reloads <= 3.0),
                );
            } else {
                self.info(figure, value);
            }
            self.row(
                format!("5. final content right, burst {} {wait}", b.updates),
                format!("{}", b.final_right),
                "always",
                check(b.final_right),
            );
        }
        let list: Vec<Value> = results
            .iter()
            .map(|b| {
                json!({"updates": b.updates, "wait": b.wait, "renders": b.renders, "writes": b.writes,
                       "reloads": b.reloads, "last_put_to_final_ms": b.settle_ms, "puts_ms": b.put_ms,
                       "final_content_right": b.final_right, "runs": b.runs})
            })
            .collect();
        self.note("burst", Value::Array(list));
    }

    pub fn binaries(&mut self, binaries: &[Binary]) {
        for b in binaries {
            let kind = if b.static_linked {
                "static"
            } else {
                "dynamic (glibc): no musl target installed"
            };
            self.info(
                format!("6. binary {} ({kind})", b.name),
                format!("{:.2} MB ({} bytes)", b.bytes as f64 / 1_048_576.0, b.bytes),
            );
        }
        let list: Vec<Value> = binaries
            .iter()
            .map(|b| json!({"name": b.name, "path": b.path, "bytes": b.bytes, "static": b.static_linked}))
            .collect();
        self.note("binaries", Value::Array(list));
    }

    /// Prints the table and writes the JSON file.
    pub fn finish(mut self, wall: Duration) {
        let machine = self.json.get("machine").cloned().unwrap_or_default();
        println!("\nreconfig bench — {}", machine_line(&machine));
        println!("\n| figure | value | target | |\n|---|---|---|---|");
        for r in &self.rows {
            let mark = match r.verdict {
                Verdict::Met => "met",
                Verdict::Missed => "**MISSED**",
                Verdict::Info => "",
            };
            println!("| {} | {} | {} | {mark} |", r.figure, r.value, r.target);
        }
        println!("\nwhole run: {:.0} s", wall.as_secs_f64());
        self.note("run_seconds", json!(wall.as_secs_f64()));
        let targets: Vec<Value> = self
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::Info)
            .map(|r| {
                json!({"figure": r.figure, "value": r.value, "target": r.target,
                            "met": r.verdict == Verdict::Met})
            })
            .collect();
        self.note("targets", Value::Array(targets));
        let path = results_path();
        let written =
            std::fs::create_dir_all(path.parent().expect("has a parent")).and_then(|_| {
                std::fs::write(
                    &path,
                    serde_json::to_string_pretty(&Value::Object(self.json)).expect("json"),
                )
            });
        match written {
            Ok(()) => println!("results: {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
    }
}

fn results_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench").join("results.json")
}

fn machine(etcd_version: &str) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_gb": (mem_kb as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "kernel": kernel.trim(),
        "etcd": etcd_version,
        "binary": env!("CARGO_BIN_EXE_reconfig"),
    })
}

fn machine_line(m: &Value) -> String {
    format!(
        "{}, {} cores, {} GB, Linux {}, etcd {}",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gb"],
        m["kernel"].as_str().unwrap_or("?"),
        m["etcd"].as_str().unwrap_or("?")
    )
}
