//! `make bench`: reconfig's speed of convergence and footprint against etcd's own latency
//! floor, in one run on one machine (issue 6). Starts its own etcd on loopback, seeds it,
//! runs the six scenarios, prints every figure beside its target and writes
//! `target/bench/results.json`.
//!
//! Figures are medians (or p50/p95/max over the updates of one run); the machine is noisy,
//! so compare figures of the same run. `RECONFIG_BENCH_ONLY=change,onetime,burst` (any
//! subset) skips the other scenarios while working on one; the floor always runs.

#[path = "../../tests/support/mod.rs"]
mod support;

mod measure;
mod report;
mod scenarios;
mod setup;

use report::{Report, Verdict};
use scenarios::Layout;
use std::time::Instant;

const ONETIME_RESOURCES: [usize; 3] = [1, 10, 100];
const ONETIME_KEYS: [usize; 3] = [10, 1_000, 10_000];
const BURST_SIZES: [usize; 2] = [200, 1000];

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == measure::SPAWNER_FLAG) {
        std::process::exit(measure::spawner_main(&args[2..]));
    }
    let started = Instant::now();
    let etcd = support::Etcd::start();
    let mut report = Report::new(&etcd.client());
    step(&started, "seeding etcd");
    let seeded = setup::seed(&etcd, &ONETIME_KEYS);
    report.note("keys_seeded", seeded.into());

    let only = std::env::var("RECONFIG_BENCH_ONLY").unwrap_or_default();
    let wanted = |scenario: &str| only.is_empty() || only.split(',').any(|s| s == scenario);

    step(&started, "1. floor");
    let floor = scenarios::floor(&etcd);
    report.floor(&floor);

    if wanted("change") {
        step(&started, "2+4. change → file, idle");
        let changes: Vec<_> = [Layout::One, Layout::ManyOwnTrees, Layout::ManySameTree]
            .into_iter()
            .map(|layout| {
                step(&started, layout.label());
                scenarios::change(&etcd, layout)
            })
            .collect();
        report.changes(&changes, &floor);
    }
    if wanted("onetime") {
        step(&started, "3. onetime");
        let onetime = scenarios::onetime(&etcd, &ONETIME_RESOURCES, &ONETIME_KEYS);
        report.onetime(&onetime);
    }
    if wanted("burst") {
        step(&started, "5. burst");
        let bursts = scenarios::bursts(&etcd, &BURST_SIZES);
        report.bursts(&bursts);
    }

    report.binaries(&scenarios::binaries());
    let wall = started.elapsed();
    let failed = report.count(Verdict::Missed);
    report.finish(wall);
    if failed > 0 {
        eprintln!("{failed} target(s) missed");
    }
}

fn step(started: &Instant, what: &str) {
    eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
}
