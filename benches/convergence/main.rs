//! `make bench`: reconfig's speed of convergence and footprint against etcd's own latency
//! floor, in one run on one machine (issues 6, 11 and 12). Starts its own etcds on loopback
//! (a v2-enabled one, then a v3-only one), seeds them, runs the scenarios, prints every
//! figure beside its target and writes `target/bench/results.json`.
//!
//! The daemons are measured from outside only (their files, their reload commands' lines,
//! /proc), so the bench holds for any inner shape of the daemon.
//!
//! Figures are medians (or p50/p95/max over the updates of one run); the machine is noisy,
//! so compare figures of the same run. `RECONFIG_BENCH_ONLY=change,thousand,fleet,onetime,
//! burst,v3` (any subset) skips the other scenarios while working on one; the floor always
//! runs.

#[path = "../../tests/support/mod.rs"]
mod support;

mod fleet;
mod floor_v3;
mod measure;
mod report;
mod scenarios;
mod setup;

use report::{Report, Verdict};
use scenarios::Layout;
use std::time::Instant;
use support::{Api, Etcd};

const ONETIME_RESOURCES: [usize; 3] = [1, 10, 100];
const ONETIME_KEYS: [usize; 3] = [10, 1_000, 10_000];
/// The onetime cases run again on v3: the ones with a target.
const V3_ONETIME_RESOURCES: [usize; 2] = [1, 100];
const V3_ONETIME_KEYS: [usize; 2] = [10, 10_000];
const BURST_SIZES: [usize; 2] = [200, 1000];

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == measure::SPAWNER_FLAG) {
        std::process::exit(measure::spawner_main(&args[2..]));
    }
    let started = Instant::now();
    let only = std::env::var("RECONFIG_BENCH_ONLY").unwrap_or_default();
    let wanted = |scenario: &str| only.is_empty() || only.split(',').any(|s| s == scenario);

    let etcd = Etcd::start_on(Api::V2);
    let mut report = Report::new(&etcd.kv());
    step(&started, "seeding etcd (v2)");
    let seeded = setup::seed(&etcd, &setup::all_trees(&ONETIME_KEYS));
    report.note("keys_seeded", seeded.into());

    step(&started, "1. floor (v2)");
    let floor = scenarios::floor(&etcd);
    report.floor(&floor);

    let mut layouts = Vec::new();
    if wanted("change") {
        layouts.extend([Layout::One, Layout::ManyOwnTrees, Layout::ManySameTree]);
    }
    if wanted("thousand") {
        layouts.push(Layout::ThousandOnTenKeys);
    }
    let changes = run_changes(&started, &etcd, &layouts);
    if !changes.is_empty() {
        report.changes(&changes, &floor);
    }
    let fleet = wanted("fleet").then(|| {
        step(&started, "7. fleet (v2)");
        fleet::fleet(&etcd)
    });
    if let Some(fleet) = &fleet {
        report.fleet(fleet, &floor);
    }
    if wanted("onetime") {
        step(&started, "3. onetime");
        let onetime = scenarios::onetime(&etcd, &ONETIME_RESOURCES, &ONETIME_KEYS);
        report.onetime(&onetime, Api::V2);
    }
    if wanted("burst") {
        step(&started, "5. burst");
        let bursts = scenarios::bursts(&etcd, &BURST_SIZES);
        report.bursts(&bursts);
    }
    drop(etcd);

    if wanted("v3") {
        let etcd = Etcd::start_on(Api::V3);
        step(&started, "seeding etcd (v3 only)");
        setup::seed(&etcd, &setup::compared_trees_v3(&layouts));
        step(&started, "1. floor (v3)");
        let floor_v3 = floor_v3::floor(&etcd);
        let compared: Vec<Layout> = layouts
            .iter()
            .copied()
            .filter(|l| matches!(l, Layout::One | Layout::ManyOwnTrees | Layout::ManySameTree))
            .collect();
        let changes_v3 = run_changes(&started, &etcd, &compared);
        let fleet_v3 = fleet.is_some().then(|| {
            step(&started, "7. fleet (v3)");
            fleet::fleet(&etcd)
        });
        if wanted("onetime") {
            step(&started, "3. onetime (v3)");
            setup::seed(&etcd, &setup::onetime_trees(&V3_ONETIME_KEYS));
            let onetime = scenarios::onetime(&etcd, &V3_ONETIME_RESOURCES, &V3_ONETIME_KEYS);
            report.onetime(&onetime, Api::V3);
        }
        report.compare(
            [&floor, &floor_v3],
            [&changes, &changes_v3],
            [fleet.as_ref(), fleet_v3.as_ref()],
        );
    }

    report.binaries(&scenarios::binaries());
    let wall = started.elapsed();
    let failed = report.count(Verdict::Missed);
    report.finish(wall);
    if failed > 0 {
        eprintln!("{failed} target(s) missed");
    }
}

fn run_changes(started: &Instant, etcd: &Etcd, layouts: &[Layout]) -> Vec<scenarios::Change> {
    let api = etcd.api.map_or("auto", Api::flag);
    layouts
        .iter()
        .map(|&layout| {
            step(
                started,
                &format!(
                    "2+4. change → file, idle: {} ({api}, {} updates)",
                    layout.label(),
                    layout.updates()
                ),
            );
            scenarios::change(etcd, layout)
        })
        .collect()
}

fn step(started: &Instant, what: &str) {
    eprintln!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
}
