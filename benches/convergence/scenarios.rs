//! The six scenarios of issue 6. Each returns its figures; `main` turns them into the table.

use crate::measure::{median, ms, run_measured, DirWatch, ProcSample, Stats, Usage};
use crate::setup::{self, Spec, BIG, BIG_KEYS, MANY, TREE_LEAVES};
use crate::support::daemon::{count_lines, Daemon, Setup, RECONFIG};
use crate::support::observe::{established_to, watch_streams};
use crate::support::{Api, Etcd};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Updates of the floor.
pub const UPDATES: usize = 200;
/// Longest a target may take to show an update before it counts as missed.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Pause between updates, so watchers are back in their long-poll when the next one lands.
pub const BETWEEN_UPDATES: Duration = Duration::from_millis(10);
pub const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// Rest after a convergence before a footprint is read.
pub const SETTLE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- 1. floor

pub struct Floor {
    /// PUT sent → raw watcher has the event.
    pub watch_from_send: Stats,
    /// PUT reply read → raw watcher has the event (negative: the watcher was first).
    pub watch_from_reply: Stats,
    pub put_rtt: Stats,
}

/// A raw v2 long-poll watcher (the same `reconfig::etcd::v2::Client`, no render) against PUTs.
pub fn floor(etcd: &Etcd) -> Floor {
    let key = "/bench/floor";
    let writer = etcd.client();
    writer
        .set(key, Some("0"), &Default::default())
        .expect("PUT /bench/floor");
    let start = writer.snapshot(key, false).expect("snapshot").index;
    let watcher = etcd.client();
    let (tx, rx) = mpsc::channel::<(Instant, Option<String>)>();
    let thread = {
        let watcher = watcher.clone();
        std::thread::spawn(move || {
            let mut next = start + 1;
            loop {
                match watcher.watch(key, false, Some(next)) {
                    Ok(Some(event)) => {
                        let at = Instant::now();
                        next = event.node.modified_index + 1;
                        if tx.send((at, event.node.value)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let (mut from_send, mut from_reply, mut rtt) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=UPDATES {
        std::thread::sleep(BETWEEN_UPDATES);
        let value = i.to_string();
        let sent = Instant::now();
        writer
            .set(key, Some(&value), &Default::default())
            .expect("PUT");
        let replied = Instant::now();
        let (seen, got) = rx
            .recv_timeout(DEADLINE)
            .expect("the raw watcher saw the PUT");
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "raw watcher out of step"
        );
        from_send.push(ms(seen - sent));
        from_reply.push(signed_ms(seen, replied));
        rtt.push(ms(replied - sent));
    }
    watcher.shutdown();
    let _ = thread.join();
    Floor {
        watch_from_send: Stats::of(&from_send),
        watch_from_reply: Stats::of(&from_reply),
        put_rtt: Stats::of(&rtt),
    }
}

/// `a - b` in milliseconds, negative when `a` came first.
pub fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        ms(a - b)
    } else {
        -ms(b - a)
    }
}

// ---------------------------------------------------------------- 2 + 4. change → file, idle

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    One,
    ManyOwnTrees,
    ManySameTree,
    /// 1 000 resources, 100 on each of 10 keys (issue 11).
    ThousandOnTenKeys,
}

impl Layout {
    pub fn label(self) -> &'static str {
        match self {
            Layout::One => "1 resource",
            Layout::ManyOwnTrees => "100 resources, own trees",
            Layout::ManySameTree => "100 resources, same tree",
            Layout::ThousandOnTenKeys => "1 000 resources on 10 keys",
        }
    }

    /// Resources the daemon runs.
    pub fn resources(self) -> usize {
        match self {
            Layout::One => 1,
            Layout::ManyOwnTrees | Layout::ManySameTree => MANY,
            Layout::ThousandOnTenKeys => BIG,
        }
    }

    /// Updates measured: fewer where each one means 100 renders and 100 reloads, to keep
    /// `make bench` within 10 minutes on 2 cores.
    pub fn updates(self) -> usize {
        match self {
            Layout::One => 200,
            Layout::ManyOwnTrees | Layout::ManySameTree => 100,
            Layout::ThousandOnTenKeys => 40,
        }
    }

    fn specs(self) -> Vec<Spec> {
        let names = setup::names("r", self.resources());
        match self {
            Layout::One => vec![Spec::reloading("r000".into(), setup::shared_tree())],
            Layout::ManyOwnTrees => names
                .into_iter()
                .enumerate()
                .map(|(t, name)| Spec::reloading(name, setup::own_tree(t)))
                .collect(),
            Layout::ManySameTree => names
                .into_iter()
                .map(|name| Spec::reloading(name, setup::shared_tree()))
                .collect(),
            Layout::ThousandOnTenKeys => names
                .into_iter()
                .enumerate()
                .map(|(i, name)| Spec::reloading(name, setup::own_tree(i % BIG_KEYS)))
                .collect(),
        }
    }

    /// The tree update `u` writes to, and the resources that must show it.
    fn update_plan(self, u: usize) -> (String, Vec<String>) {
        match self {
            Layout::One => (setup::shared_tree(), vec!["r000".into()]),
            Layout::ManyOwnTrees => (setup::own_tree(u % MANY), vec![format!("r{:03}", u % MANY)]),
            Layout::ManySameTree => (setup::shared_tree(), setup::names("r", MANY)),
            Layout::ThousandOnTenKeys => {
                let key = u % BIG_KEYS;
                let on_key = setup::names("r", BIG)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % BIG_KEYS == key)
                    .map(|(_, name)| name)
                    .collect();
                (setup::own_tree(key), on_key)
            }
        }
    }
}

pub struct Change {
    pub layout: Layout,
    pub api: Api,
    pub updates: usize,
    /// PUT reply → first / last target holding the new content.
    pub first: Stats,
    pub last: Stats,
    /// PUT reply → the last target's reloadcmd has written its line.
    pub last_reload: Stats,
    /// The same, from the PUT being sent.
    pub first_from_send: Stats,
    pub last_from_send: Stats,
    pub missed: usize,
    pub startup_ms: f64,
    /// At rest after the first convergence (every target written, every reload done).
    pub at_rest: Footprint,
    /// v3: the watch streams etcd serves at rest (its own count; the daemon is its only
    /// watcher then).
    pub watch_streams: Option<u64>,
    pub idle: Idle,
}

/// What a resting daemon holds.
#[derive(Clone, Copy, Default)]
pub struct Footprint {
    pub rss_kb: u64,
    pub threads: u64,
    /// Established TCP connections to etcd's client port.
    pub sockets: u64,
}

impl Footprint {
    pub fn of(pid: i32, etcd: &Etcd) -> Footprint {
        let sample = ProcSample::read(pid);
        Footprint {
            rss_kb: sample.rss_kb,
            threads: sample.threads,
            sockets: established_to(pid, etcd.client_port) as u64,
        }
    }

    pub fn json(&self) -> Value {
        json!({"rss_kb": self.rss_kb, "threads": self.threads, "sockets_to_etcd": self.sockets})
    }
}

pub struct Idle {
    pub at_end: Footprint,
    pub hwm_kb: u64,
    pub cpu_ms: f64,
}

/// Starts the daemon on `layout`, updates one leaf `layout.updates()` times (each time
/// waiting for every target and every reload), then watches it idle.
pub fn change(etcd: &Etcd, layout: Layout) -> Change {
    let api = etcd.api.unwrap_or(Api::V2);
    let specs = layout.specs();
    let setup = setup::config(&specs);
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let began = Instant::now();
    let daemon = setup.daemon(etcd, &[]);
    wait_converged(&setup.out(""), &names, || daemon.log_text());
    let startup_ms = ms(began.elapsed());
    std::thread::sleep(SETTLE);
    let at_rest = Footprint::of(daemon.pid(), etcd);
    let watch_streams = (etcd.api == Some(Api::V3)).then(|| watch_streams(etcd).open());
    let watch = DirWatch::new(&setup.out(""));
    let writer = etcd.kv();
    let mut samples = Samples::default();
    for u in 1..=layout.updates() {
        std::thread::sleep(BETWEEN_UPDATES);
        let (tree, targets) = layout.update_plan(u);
        let key = setup::leaf(&tree, (u * 7) % TREE_LEAVES);
        let value = setup::fresh_value();
        let expect = Expect::new(&setup.out(""), &targets, setup::rendered_line(&key, &value));
        let sent = Instant::now();
        writer.put(&key, &value, None).expect("PUT");
        let replied = Instant::now();
        let seen = expect.wait(&watch, replied + DEADLINE);
        samples.add(&seen, targets.len(), sent, replied);
    }
    let idle = idle(daemon.pid(), etcd);
    let _ = daemon.terminate();
    Change {
        layout,
        api,
        updates: layout.updates(),
        first: Stats::of(&samples.first),
        last: Stats::of(&samples.last),
        last_reload: Stats::of(&samples.last_reload),
        first_from_send: Stats::of(&samples.first_send),
        last_from_send: Stats::of(&samples.last_send),
        missed: samples.missed,
        startup_ms,
        at_rest,
        watch_streams,
        idle,
    }
}

/// When every target of one update showed it: its file, and its reloadcmd's line.
pub struct Seen {
    pub files: Vec<Instant>,
    pub reloads: Vec<Instant>,
}

#[derive(Default)]
pub struct Samples {
    pub first: Vec<f64>,
    pub last: Vec<f64>,
    pub last_reload: Vec<f64>,
    pub first_send: Vec<f64>,
    pub last_send: Vec<f64>,
    pub missed: usize,
}

impl Samples {
    pub fn add(&mut self, seen: &Seen, expected: usize, sent: Instant, replied: Instant) {
        self.missed += expected - seen.files.len().min(expected);
        if seen.reloads.len() == expected {
            if let Some(last) = seen.reloads.iter().max() {
                self.last_reload.push(signed_ms(*last, replied));
            }
        }
        if seen.files.len() < expected || seen.files.is_empty() {
            return;
        }
        let first = *seen.files.iter().min().expect("not empty");
        let last = *seen.files.iter().max().expect("not empty");
        self.first.push(signed_ms(first, replied));
        self.last.push(signed_ms(last, replied));
        self.first_send.push(ms(first - sent));
        self.last_send.push(ms(last - sent));
    }
}

/// What one update must produce in a directory of targets: `line` in each `<t>.conf`, and
/// one more line in each `<t>.conf.reloads` than before the update.
pub struct Expect {
    dir: PathBuf,
    line: String,
    files: HashSet<String>,
    /// Reload marker file → its line count before the update.
    reloads: HashMap<String, usize>,
}

impl Expect {
    /// Call before the PUT: it counts the reload lines already there.
    pub fn new(dir: &Path, targets: &[String], line: String) -> Expect {
        let reloads = targets
            .iter()
            .map(|t| {
                let name = format!("{t}.conf.reloads");
                let count = count_lines(&dir.join(&name));
                (name, count)
            })
            .collect();
        Expect {
            dir: dir.to_path_buf(),
            line,
            files: targets.iter().map(|t| format!("{t}.conf")).collect(),
            reloads,
        }
    }

    /// Waits until every target holds the line and ran its reload, or `deadline`.
    pub fn wait(mut self, watch: &DirWatch, deadline: Instant) -> Seen {
        let mut seen = Seen {
            files: Vec::new(),
            reloads: Vec::new(),
        };
        let mut overflowed = false;
        while (!self.files.is_empty() || !self.reloads.is_empty()) && Instant::now() < deadline {
            let names = watch.next(deadline, &mut overflowed);
            let at = Instant::now();
            let rescan = std::mem::take(&mut overflowed);
            let files: Vec<String> = self
                .files
                .iter()
                .filter(|n| rescan || names.contains(*n))
                .cloned()
                .collect();
            for name in files {
                let text = std::fs::read_to_string(self.dir.join(&name)).unwrap_or_default();
                if text.contains(&self.line) {
                    self.files.remove(&name);
                    seen.files.push(at);
                }
            }
            let reloads: Vec<(String, usize)> = self
                .reloads
                .iter()
                .filter(|(n, _)| rescan || names.contains(*n))
                .map(|(n, c)| (n.clone(), *c))
                .collect();
            for (name, before) in reloads {
                if count_lines(&self.dir.join(&name)) > before {
                    self.reloads.remove(&name);
                    seen.reloads.push(at);
                }
            }
        }
        seen
    }
}

/// Waits until every `<name>.conf` in `dir` and its reload marker exist: the first
/// convergence is over.
pub fn wait_converged(dir: &Path, names: &[String], log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(180);
    for name in names {
        for file in [format!("{name}.conf"), format!("{name}.conf.reloads")] {
            let path = dir.join(file);
            while !path.exists() {
                assert!(
                    Instant::now() < deadline,
                    "{} never appeared; daemon log:\n{}",
                    path.display(),
                    log()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Footprint and CPU over `IDLE_WINDOW`, after a second to settle.
fn idle(pid: i32, etcd: &Etcd) -> Idle {
    std::thread::sleep(SETTLE);
    let before = ProcSample::read(pid);
    std::thread::sleep(IDLE_WINDOW);
    let after = ProcSample::read(pid);
    Idle {
        at_end: Footprint::of(pid, etcd),
        hwm_kb: after.hwm_kb,
        cpu_ms: after.cpu_ms - before.cpu_ms,
    }
}

// ---------------------------------------------------------------- 3. onetime

pub struct Onetime {
    pub resources: usize,
    pub keys: usize,
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub peak_rss_kb: f64,
    pub runs: usize,
}

/// `reconfig --onetime` for every (resources, keys) pair, into empty target dirs.
pub fn onetime(etcd: &Etcd, resources: &[usize], keys: &[usize]) -> Vec<Onetime> {
    let mut results = Vec::new();
    for &t in resources {
        for &n in keys {
            results.push(onetime_case(etcd, t, n));
        }
    }
    results
}

fn onetime_case(etcd: &Etcd, resources: usize, keys: usize) -> Onetime {
    let specs: Vec<Spec> = setup::names("r", resources)
        .into_iter()
        .map(|name| Spec::reloading(name, setup::onetime_tree(keys)))
        .collect();
    let setup = setup::config(&specs);
    let mut args = setup.args(etcd, &[]);
    args.push("--onetime".into());
    let runs = if resources * keys >= 100_000 { 3 } else { 7 };
    let mut usages: Vec<Usage> = Vec::new();
    for _ in 0..runs {
        for spec in &specs {
            let _ = std::fs::remove_file(setup::target(&setup, &spec.name));
        }
        let log = setup.dir.path().join("onetime.log");
        let usage = run_measured(Path::new(RECONFIG), &args, &log);
        assert_eq!(
            usage.exit_code,
            0,
            "reconfig --onetime failed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        usages.push(usage);
    }
    let lines = std::fs::read_to_string(setup::target(&setup, &specs[0].name))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    assert_eq!(
        lines,
        keys + 1,
        "onetime rendered the wrong number of lines"
    );
    let pick = |f: fn(&Usage) -> f64| median(&usages.iter().map(f).collect::<Vec<_>>());
    Onetime {
        resources,
        keys,
        wall_ms: pick(|u| u.wall_ms),
        cpu_ms: pick(|u| u.cpu_ms),
        peak_rss_kb: pick(|u| u.max_rss_kb as f64),
        runs,
    }
}

// ---------------------------------------------------------------- 5. burst

pub struct Burst {
    pub updates: usize,
    pub wait: Option<&'static str>,
    pub renders: f64,
    pub writes: f64,
    pub reloads: f64,
    /// Last PUT's reply → the target holding every final value.
    pub settle_ms: f64,
    pub put_ms: f64,
    /// Every run ended with the right content.
    pub final_right: bool,
    pub runs: usize,
}

const BURST_RUNS: usize = 3;

/// Rapid updates to one tree with and without quiescence.
pub fn bursts(etcd: &Etcd, sizes: &[usize]) -> Vec<Burst> {
    let mut results = Vec::new();
    for wait in [None, Some("100ms")] {
        let spec = Spec {
            name: "burst".into(),
            key: setup::shared_tree(),
            wait,
            reloadcmd: Some(setup::RELOADCMD.to_string()),
        };
        let setup = setup::config(&[spec]);
        let reload_file = setup.out("burst.conf.reloads");
        let daemon = setup.daemon(etcd, &["-d"]);
        wait_converged(&setup.out(""), &["burst".into()], || daemon.log_text());
        std::thread::sleep(Duration::from_millis(300));
        for &updates in sizes {
            let mut runs = Vec::new();
            for _ in 0..BURST_RUNS {
                runs.push(burst_once(etcd, &setup, &daemon, &reload_file, updates));
            }
            results.push(summarise(updates, wait, &runs));
        }
        let _ = daemon.terminate();
    }
    results
}

struct BurstRun {
    renders: usize,
    writes: usize,
    reloads: usize,
    settle_ms: f64,
    put_ms: f64,
    final_right: bool,
}

fn counts(daemon: &Daemon, reload_file: &Path) -> (usize, usize, usize) {
    let log = daemon.log_text();
    (
        log.matches("[burst] rendered ").count(),
        log.matches("[burst] changed ").count(),
        crate::support::daemon::count_lines(reload_file),
    )
}

fn burst_once(
    etcd: &Etcd,
    setup: &Setup,
    daemon: &Daemon,
    reload_file: &Path,
    updates: usize,
) -> BurstRun {
    let before = counts(daemon, reload_file);
    let writer = etcd.client();
    let tree = setup::shared_tree();
    let mut expected = Vec::new();
    let step = TREE_LEAVES / updates.min(TREE_LEAVES);
    let began = Instant::now();
    for i in 0..updates {
        let key = setup::leaf(&tree, (i * step) % TREE_LEAVES);
        let value = setup::fresh_value();
        writer
            .set(&key, Some(&value), &Default::default())
            .expect("PUT");
        expected.push(setup::rendered_line(&key, &value));
    }
    let last_reply = Instant::now();
    let put_ms = ms(last_reply - began);
    let target = setup::target(setup, "burst");
    let holds_all = || {
        let text = std::fs::read_to_string(&target).unwrap_or_default();
        let lines: HashSet<&str> = text.split_inclusive('\n').collect();
        expected.iter().all(|l| lines.contains(l.as_str()))
    };
    let deadline = last_reply + DEADLINE;
    while !holds_all() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(500));
    }
    let settle_ms = ms(last_reply.elapsed());
    // Longer than the largest wait.max (10 × 100 ms): any late render has happened.
    std::thread::sleep(Duration::from_millis(1500));
    let final_right = holds_all();
    let after = counts(daemon, reload_file);
    BurstRun {
        renders: after.0 - before.0,
        writes: after.1 - before.1,
        reloads: after.2 - before.2,
        settle_ms,
        put_ms,
        final_right,
    }
}

fn summarise(updates: usize, wait: Option<&'static str>, runs: &[BurstRun]) -> Burst {
    let pick = |f: fn(&BurstRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Burst {
        updates,
        wait,
        renders: pick(|r| r.renders as f64),
        writes: pick(|r| r.writes as f64),
        reloads: pick(|r| r.reloads as f64),
        settle_ms: pick(|r| r.settle_ms),
        put_ms: pick(|r| r.put_ms),
        final_right: runs.iter().all(|r| r.final_right),
        runs: runs.len(),
    }
}

// ---------------------------------------------------------------- 6. binary

pub struct Binary {
    pub name: &'static str,
    pub path: String,
    pub bytes: u64,
    pub static_linked: bool,
}

pub fn binaries() -> Vec<Binary> {
    [
        ("reconfig", env!("CARGO_BIN_EXE_reconfig")),
        ("etcd-util", env!("CARGO_BIN_EXE_etcd-util")),
    ]
    .into_iter()
    .map(|(name, path)| {
        let bytes = std::fs::read(path).expect("read binary");
        Binary {
            name,
            path: path.to_string(),
            bytes: bytes.len() as u64,
            static_linked: !has_interpreter(&bytes),
        }
    })
    .collect()
}

/// Whether an ELF64 file asks for a dynamic loader (a PT_INTERP program header).
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read_u16 = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return false;
    }
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (size, count) = (read_u16(0x36), read_u16(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        elf.len() >= at + 4
            && u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes")) == PT_INTERP
    })
}

pub fn change_json(c: &Change) -> Value {
    json!({
        "layout": c.layout.label(),
        "api": c.api.flag(),
        "resources": c.layout.resources(),
        "updates": c.updates,
        "first_ms_from_reply": c.first.json(),
        "last_ms_from_reply": c.last.json(),
        "last_reload_ms_from_reply": c.last_reload.json(),
        "first_ms_from_send": c.first_from_send.json(),
        "last_ms_from_send": c.last_from_send.json(),
        "missed": c.missed,
        "startup_ms": c.startup_ms,
        "at_rest_after_start": c.at_rest.json(),
        "watch_streams_open_on_etcd": c.watch_streams,
        "idle": {"footprint": c.idle.at_end.json(), "hwm_kb": c.idle.hwm_kb,
                 "cpu_ms": c.idle.cpu_ms, "window_s": IDLE_WINDOW.as_secs()},
    })
}
