//! The fleet (issue 11): 100 daemons, one resource each on the same 100-key tree with a
//! reloadcmd, standing for 100 frontends on one etcd. Measured from outside: the targets'
//! directory and /proc.

use crate::measure::{ms, DirWatch, ProcSample, Stats};
use crate::scenarios::{
    wait_converged, Expect, Footprint, Samples, BETWEEN_UPDATES, DEADLINE, SETTLE,
};
use crate::setup::{self, Spec, FLEET};
use crate::support::daemon::{Daemon, Setup};
use crate::support::{Api, Etcd};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Updates measured (each one: 100 renders, 100 reloads, and on v2 100 new long-polls).
pub const FLEET_UPDATES: usize = 50;

pub struct Fleet {
    pub api: Api,
    pub updates: usize,
    /// PUT reply → first / last host's file holding the new content.
    pub first: Stats,
    pub last: Stats,
    /// PUT reply → the last host's reloadcmd has written its line.
    pub last_reload: Stats,
    pub missed: usize,
    pub startup_ms: f64,
    /// CPU of the 100 daemons and their reaped commands per update (utime + stime +
    /// cutime + cstime over the updates, divided by their number).
    pub cpu_per_update_ms: f64,
    pub etcd_cpu_per_update_ms: f64,
    /// Sums over the 100 daemons at rest after the first convergence.
    pub at_rest: Footprint,
    /// Processes of the fleet (daemons and their commands) still alive after the stop.
    pub left_after_stop: usize,
}

/// Starts the fleet, updates the tree `FLEET_UPDATES` times, stops every host.
pub fn fleet(etcd: &Etcd) -> Fleet {
    let out = Setup::new();
    let out_dir = out.out("");
    let hosts: Vec<Setup> = setup::names("h", FLEET)
        .into_iter()
        .map(|name| setup::config_into(&[Spec::reloading(name, setup::fleet_tree())], &out_dir))
        .collect();
    let names = setup::names("h", FLEET);
    let began = Instant::now();
    let daemons: Vec<Daemon> = hosts.iter().map(|h| h.daemon(etcd, &[])).collect();
    let pids: Vec<i32> = daemons.iter().map(Daemon::pid).collect();
    let logs = || {
        daemons
            .iter()
            .map(|d| d.log_text())
            .collect::<Vec<_>>()
            .join("\n")
    };
    wait_converged(&out_dir, &names, logs);
    let startup_ms = ms(began.elapsed());
    std::thread::sleep(SETTLE);
    let at_rest =
        pids.iter()
            .map(|&pid| Footprint::of(pid, etcd))
            .fold(Footprint::default(), |sum, f| Footprint {
                rss_kb: sum.rss_kb + f.rss_kb,
                threads: sum.threads + f.threads,
                sockets: sum.sockets + f.sockets,
            });

    let watch = DirWatch::new(&out_dir);
    let writer = etcd.kv();
    let etcd_pid = etcd.pid().expect("etcd runs") as i32;
    let (fleet_before, etcd_before) = (fleet_cpu(&pids), ProcSample::read(etcd_pid).cpu_ms);
    let mut samples = Samples::default();
    for u in 1..=FLEET_UPDATES {
        std::thread::sleep(BETWEEN_UPDATES);
        let key = setup::leaf(&setup::fleet_tree(), (u * 7) % FLEET);
        let value = setup::fresh_value();
        let expect = Expect::new(&out_dir, &names, setup::rendered_line(&key, &value));
        let sent = Instant::now();
        writer.put(&key, &value, None).expect("PUT");
        let replied = Instant::now();
        let seen = expect.wait(&watch, replied + DEADLINE);
        samples.add(&seen, FLEET, sent, replied);
    }
    // The last reloads' shells are reaped (their CPU lands in cutime) within this pause.
    std::thread::sleep(Duration::from_millis(300));
    let fleet_cpu_ms = fleet_cpu(&pids) - fleet_before;
    let etcd_cpu_ms = ProcSample::read(etcd_pid).cpu_ms - etcd_before;
    let left_after_stop = stop(daemons);
    Fleet {
        api: etcd.api.unwrap_or(Api::V2),
        updates: FLEET_UPDATES,
        first: Stats::of(&samples.first),
        last: Stats::of(&samples.last),
        last_reload: Stats::of(&samples.last_reload),
        missed: samples.missed,
        startup_ms,
        cpu_per_update_ms: fleet_cpu_ms / FLEET_UPDATES as f64,
        etcd_cpu_per_update_ms: etcd_cpu_ms / FLEET_UPDATES as f64,
        at_rest,
        left_after_stop,
    }
}

/// What the daemons and the commands they reaped have cost so far.
fn fleet_cpu(pids: &[i32]) -> f64 {
    pids.iter()
        .map(|&pid| {
            let s = ProcSample::read(pid);
            s.cpu_ms + s.children_cpu_ms
        })
        .sum()
}

/// SIGTERM to every host at once, then each one dropped: the fixture waits for its exit,
/// SIGKILLs it by PID if it is late, then kills by PID whatever it left running. Returns how
/// many processes of the fleet are alive afterwards (0 expected).
fn stop(daemons: Vec<Daemon>) -> usize {
    for daemon in &daemons {
        daemon.signal(libc::SIGTERM);
    }
    drop(daemons);
    processes_of_this_bench()
}

/// Live processes that inherited this bench's fixture marker (`RECONFIG_TEST_TREE=<pid>-n`):
/// daemons and commands of this run, wherever they were re-parented.
pub fn processes_of_this_bench() -> usize {
    let marker = format!("RECONFIG_TEST_TREE={}-", std::process::id());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    env.split(|&b| b == 0)
                        .any(|v| v.starts_with(marker.as_bytes()))
                })
                .unwrap_or(false)
        })
        .count()
}

pub fn fleet_json(f: &Fleet) -> Value {
    json!({
        "api": f.api.flag(),
        "hosts": FLEET,
        "updates": f.updates,
        "first_ms_from_reply": f.first.json(),
        "last_ms_from_reply": f.last.json(),
        "last_reload_ms_from_reply": f.last_reload.json(),
        "missed": f.missed,
        "startup_ms": f.startup_ms,
        "fleet_cpu_per_update_ms": f.cpu_per_update_ms,
        "etcd_cpu_per_update_ms": f.etcd_cpu_per_update_ms,
        "at_rest_sum": f.at_rest.json(),
        "processes_left_after_stop": f.left_after_stop,
    })
}
