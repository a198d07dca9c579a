//! The results table (markdown, printed) and `target/bench/results.json`.

use crate::fleet::Fleet;
use crate::measure::Stats;
use crate::scenarios::{Binary, Burst, Change, Floor, Footprint, Layout, Onetime, UPDATES};
use crate::support::Api;
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

/// A figure measured on both APIs in the same run.
struct Compared {
    figure: String,
    v2: String,
    v3: String,
    target: String,
    verdicts: [Verdict; 2],
}

pub struct Report {
    rows: Vec<Row>,
    compared: Vec<Compared>,
    json: Map<String, Value>,
}

fn mb(kb: f64) -> String {
    format!("{:.1} MB", kb / 1024.0)
}

fn stats(s: &Stats) -> String {
    format!("{:.1} / {:.1} / {:.1} ms (n={})", s.p50, s.p95, s.max, s.n)
}

fn footprint(f: &Footprint) -> String {
    format!(
        "{}, {} threads, {} sockets to etcd",
        mb(f.rss_kb as f64),
        f.threads,
        f.sockets
    )
}

fn check(ok: bool) -> Verdict {
    if ok {
        Verdict::Met
    } else {
        Verdict::Missed
    }
}

impl Report {
    pub fn new(client: &reconfig::etcd::Client) -> Report {
        let mut report = Report {
            rows: Vec::new(),
            compared: Vec::new(),
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

    /// Rows of the main table (v2) with this verdict, and the v3 side of the compared ones.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
            + self
                .compared
                .iter()
                .filter(|c| c.verdicts[1] == verdict)
                .count()
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
        self.note("floor", floor_json(f));
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
            self.info(
                format!("2. change → last reload done, {label} (after PUT reply)"),
                stats(&c.last_reload),
            );
            self.row(
                format!("2. updates missed, {label}"),
                format!("{} of {}", c.missed, c.updates),
                "0",
                check(c.missed == 0),
            );
        }
        for c in changes {
            for (figure, value, target, verdict) in change_targets(c, floor) {
                self.row(figure, value, &target, verdict);
            }
        }
        self.idle_rows(changes);
        let list: Vec<Value> = changes.iter().map(crate::scenarios::change_json).collect();
        self.note("change", Value::Array(list));
    }

    fn idle_rows(&mut self, changes: &[Change]) {
        for c in changes {
            let label_layout = c.layout.label();
            self.info(
                format!("4. at rest after the first convergence, {label_layout}"),
                footprint(&c.at_rest),
            );
            for (figure, value, target, verdict) in idle_targets(c) {
                self.row(figure, value, &target, verdict);
            }
            self.info(
                format!("4. peak RSS, start-up, {label_layout}"),
                format!(
                    "{} (start-up {:.0} ms)",
                    mb(c.idle.hwm_kb as f64),
                    c.startup_ms
                ),
            );
        }
    }

    pub fn fleet(&mut self, f: &Fleet, floor: &Floor) {
        for (figure, value, target, verdict) in fleet_rows(f, floor) {
            self.row(figure, value, &target, verdict);
        }
        self.note("fleet", crate::fleet::fleet_json(f));
    }

    /// The scenarios run on both APIs, side by side; `floors` and each pair are (v2, v3).
    pub fn compare(
        &mut self,
        floors: [&Floor; 2],
        changes: [&[Change]; 2],
        fleets: [Option<&Fleet>; 2],
    ) {
        let floor_row = |f: &Floor| stats(&f.watch_from_send);
        self.compared.push(Compared {
            figure: "floor: PUT sent → raw watcher (v2 long-poll, v3 open stream)".into(),
            v2: floor_row(floors[0]),
            v3: floor_row(floors[1]),
            target: String::new(),
            verdicts: [Verdict::Info; 2],
        });
        for layout in [Layout::One, Layout::ManyOwnTrees, Layout::ManySameTree] {
            let pick = |i: usize| changes[i].iter().find(|c| c.layout == layout);
            let (Some(v2), Some(v3)) = (pick(0), pick(1)) else {
                continue;
            };
            let rows = [change_targets(v2, floors[0]), change_targets(v3, floors[1])];
            self.pair(rows);
            self.pair([idle_targets(v2), idle_targets(v3)]);
            let streams = v3.watch_streams.unwrap_or(0);
            self.compared.push(Compared {
                figure: format!("watch streams etcd serves at rest, {}", layout.label()),
                v2: "(long-polls)".into(),
                v3: streams.to_string(),
                target: "v3: one stream per endpoint in use (1)".into(),
                verdicts: [Verdict::Info, check(streams == 1)],
            });
            self.compared.push(Compared {
                figure: format!("sockets to etcd at rest, {}", layout.label()),
                v2: v2.at_rest.sockets.to_string(),
                v3: v3.at_rest.sockets.to_string(),
                target: "v3: the stream + the pooled ones of the reads".into(),
                verdicts: [Verdict::Info; 2],
            });
            self.pair([
                vec![missed_row(v2.layout.label(), v2.missed, v2.updates)],
                vec![missed_row(v3.layout.label(), v3.missed, v3.updates)],
            ]);
        }
        if let [Some(v2), Some(v3)] = fleets {
            self.pair([fleet_rows(v2, floors[0]), fleet_rows(v3, floors[1])]);
        }
        let list: Vec<Value> = changes[1]
            .iter()
            .map(crate::scenarios::change_json)
            .collect();
        let mut v3 = json!({"floor": floor_json(floors[1]), "change": list});
        if let Some(f) = fleets[1] {
            v3["fleet"] = crate::fleet::fleet_json(f);
        }
        self.note("v3", v3);
    }

    /// Rows made the same way from a v2 and a v3 run, joined figure by figure.
    fn pair(&mut self, rows: [Vec<(String, String, String, Verdict)>; 2]) {
        let [v2, v3] = rows;
        for (a, b) in v2.into_iter().zip(v3) {
            let target = if a.2 == b.2 {
                a.2
            } else {
                format!("v2 {}; v3 {}", a.2, b.2)
            };
            self.compared.push(Compared {
                figure: plain_figure(&a.0),
                v2: a.1,
                v3: b.1,
                target,
                verdicts: [a.3, b.3],
            });
        }
    }

    /// The onetime runs on one API.
    pub fn onetime(&mut self, results: &[Onetime], api: Api) {
        for o in results {
            let figure = format!(
                "3. onetime {} × {} keys ({}): wall, CPU, peak RSS",
                o.resources,
                o.keys,
                api.flag()
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
        let name = match api {
            Api::V2 => "onetime",
            Api::V3 => "onetime_v3",
        };
        self.note(name, Value::Array(list));
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
            let mark = mark(r.verdict);
            println!("| {} | {} | {} | {mark} |", r.figure, r.value, r.target);
        }
        if !self.compared.is_empty() {
            println!("\nv3 beside v2 (same machine, same run; each against its own etcd floor)");
            println!("\n| figure | v2 | v3 | target | v2 | v3 |\n|---|---|---|---|---|---|");
            for c in &self.compared {
                println!(
                    "| {} | {} | {} | {} | {} | {} |",
                    c.figure,
                    c.v2,
                    c.v3,
                    c.target,
                    mark(c.verdicts[0]),
                    mark(c.verdicts[1])
                );
            }
        }
        println!(
            "\nwhole run: {:.0} s. Figures are indicative: the machine is shared with other work.",
            wall.as_secs_f64()
        );
        self.note("run_seconds", json!(wall.as_secs_f64()));
        let v3_targets = self
            .compared
            .iter()
            .filter(|c| c.verdicts[1] != Verdict::Info)
            .map(|c| {
                json!({"figure": format!("[v3] {}", c.figure), "value": c.v3, "target": c.target,
                       "met": c.verdicts[1] == Verdict::Met})
            });
        let targets: Vec<Value> = self
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::Info)
            .map(|r| {
                json!({"figure": r.figure, "value": r.value, "target": r.target,
                            "met": r.verdict == Verdict::Met})
            })
            .chain(v3_targets)
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

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "met",
        Verdict::Missed => "**MISSED**",
        Verdict::Info => "",
    }
}

type Line = (String, String, String, Verdict);

fn floor_json(f: &Floor) -> Value {
    json!({"updates": UPDATES, "watch_ms_from_send": f.watch_from_send.json(),
           "watch_ms_from_reply": f.watch_from_reply.json(), "put_rtt_ms": f.put_rtt.json()})
}

fn missed_row(label: &str, missed: usize, updates: usize) -> Line {
    (
        format!("updates missed, {label}"),
        format!("{missed} of {updates}"),
        "0".into(),
        check(missed == 0),
    )
}

/// The latency targets of issues 11 and 12 for one layout.
fn change_targets(c: &Change, floor: &Floor) -> Vec<Line> {
    let label = c.layout.label();
    let last = |limit: f64| {
        (
            format!("TARGET change → last of the files p50, {label} (after PUT reply)"),
            vs_floor(c.last.p50, floor),
            format!("≤ {limit:.0} ms"),
            check(c.last.p50 <= limit),
        )
    };
    match c.layout {
        Layout::One => {
            let budget = floor.watch_from_send.p50 + 1.0;
            let p50 = c.first_from_send.p50;
            vec![(
                "TARGET change → file p50, 1 resource (from PUT sent, like the floor)".into(),
                format!("{p50:.1} ms (floor {:.1} ms)", floor.watch_from_send.p50),
                format!("≤ floor + 1 ms = {budget:.1} ms"),
                check(p50 <= budget),
            )]
        }
        Layout::ManyOwnTrees => vec![last(5.0)],
        Layout::ManySameTree => vec![
            last(50.0),
            (
                format!("TARGET change → last reload done p50, {label} (after PUT reply)"),
                vs_floor(c.last_reload.p50, floor),
                "≤ 250 ms".into(),
                check(c.last_reload.p50 <= 250.0),
            ),
        ],
        Layout::ThousandOnTenKeys => vec![(
            format!("TARGET change → last of the 100 files on that key p50 / p90, {label}"),
            format!("{} / p90 {:.1} ms", vs_floor(c.last.p50, floor), c.last.p90),
            "p50 ≤ 50 ms".into(),
            check(c.last.p50 <= 50.0),
        )],
    }
}

/// Threads the 1 000-resource daemon may hold: 10 watches, a render pool and a command pool
/// of (at most) 2 × cores each, and a handful more (main, signals, scheduler, logging).
fn thread_budget() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    10 + 4 * cores + 6
}

/// Footprint targets after the updates (RSS, idle CPU; threads and sockets for 1 000).
fn idle_targets(c: &Change) -> Vec<Line> {
    let label = c.layout.label();
    let at_end = &c.idle.at_end;
    let limit_mb = match c.layout {
        Layout::One => 4.0,
        Layout::ManyOwnTrees | Layout::ManySameTree => 12.0,
        Layout::ThousandOnTenKeys => 16.0,
    };
    let mut lines = vec![
        (
            format!("TARGET idle RSS, {label} (after the updates)"),
            footprint(at_end),
            format!("≤ {limit_mb:.0} MB"),
            check(at_end.rss_kb as f64 <= limit_mb * 1024.0),
        ),
        (
            format!("TARGET idle CPU over 10 s, {label}"),
            format!("{:.0} ms", c.idle.cpu_ms),
            "0".into(),
            check(c.idle.cpu_ms == 0.0),
        ),
    ];
    if c.layout == Layout::ThousandOnTenKeys {
        let budget = thread_budget();
        lines.push((
            format!("TARGET threads, {label}"),
            at_end.threads.to_string(),
            format!("≤ 10 watches + pools + a handful (≤ {budget} on this machine)"),
            check(at_end.threads <= budget),
        ));
        lines.push((
            format!("TARGET sockets to etcd, {label}"),
            at_end.sockets.to_string(),
            "= watches in use (10)".into(),
            check(at_end.sockets <= 10),
        ));
    }
    lines
}

/// A figure's name without the main table's "TARGET " or scenario number.
fn plain_figure(figure: &str) -> String {
    let figure = figure.trim_start_matches("TARGET ");
    match figure.split_once(". ") {
        Some((number, rest)) if number.chars().all(|c| c.is_ascii_digit()) => rest.to_string(),
        _ => figure.to_string(),
    }
}

/// A latency beside etcd's own (the floor's p50, from PUT sent) measured in the same run.
fn vs_floor(ms: f64, floor: &Floor) -> String {
    let base = floor.watch_from_send.p50;
    if base > 0.0 {
        format!("{ms:.1} ms ({:.0}× floor)", ms / base)
    } else {
        format!("{ms:.1} ms")
    }
}

fn fleet_rows(f: &Fleet, floor: &Floor) -> Vec<Line> {
    let hosts = crate::setup::FLEET;
    vec![
        (
            format!("7. fleet of {hosts} daemons: change → first host's file"),
            stats(&f.first),
            String::new(),
            Verdict::Info,
        ),
        (
            "TARGET fleet: change → last host's file p50 (after PUT reply)".into(),
            format!("{}, p95 {:.1} ms", vs_floor(f.last.p50, floor), f.last.p95),
            "≤ 75 ms".into(),
            check(f.last.p50 <= 75.0),
        ),
        (
            "7. fleet: change → last host's reload done".into(),
            stats(&f.last_reload),
            String::new(),
            Verdict::Info,
        ),
        (
            "TARGET fleet CPU per update (daemons + their commands)".into(),
            format!("{:.1} ms", f.cpu_per_update_ms),
            "≤ 50 ms".into(),
            check(f.cpu_per_update_ms <= 50.0),
        ),
        (
            "7. fleet: etcd's own CPU per update".into(),
            format!("{:.1} ms", f.etcd_cpu_per_update_ms),
            String::new(),
            Verdict::Info,
        ),
        (
            format!("7. fleet at rest, sum of {hosts} daemons"),
            format!(
                "{} (start-up {:.0} ms)",
                footprint(&f.at_rest),
                f.startup_ms
            ),
            String::new(),
            Verdict::Info,
        ),
        missed_row("fleet", f.missed, f.updates),
        (
            "7. fleet processes left after TERM/KILL".into(),
            f.left_after_stop.to_string(),
            "0".into(),
            check(f.left_after_stop == 0),
        ),
    ]
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
