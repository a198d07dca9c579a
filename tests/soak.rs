//! The soak run (`make soak`, not part of `make test`): the real daemon on 50 resources
//! against a real etcd for SOAK_SECONDS (default 1800) of random updates, deletes, TTL
//! expiries and etcd restarts.
//!
//! Every SOAK_CHECK_EVERY seconds (default 60) writes pause, TTL'd keys are left to expire,
//! and every target must converge to what etcd's data renders: a checkpoint that does not
//! converge is a lost update. The daemon's RSS and open file descriptors are sampled at
//! every checkpoint; the summary (also written to SOAK_REPORT when set) gives the first
//! and last samples, the writes made and the installs and reloads the daemon did.
//!
//! RECONFIG_BIN picks the binary (the Makefile passes the release build).

mod support;

use support::daemon::LIST;

use reconfig::etcd::v2::{Client, SetOptions};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::daemon::Setup;
use support::Etcd;

const RESOURCES: usize = 50;
const KEYS_PER_RESOURCE: usize = 10;
const MAX_TTL_SECS: u64 = 4;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kb: u64,
    fds: usize,
    threads: u64,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    Sample {
        rss_kb: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    }
}

fn resource_key(r: usize) -> String {
    format!("/soak/r{r:02}")
}

fn expected(data: &BTreeMap<String, String>, r: usize) -> String {
    let prefix = format!("{}/", resource_key(r));
    data.iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

#[derive(Default)]
struct Counts {
    sets: u64,
    ttl_sets: u64,
    deletes: u64,
    failed: u64,
    restarts: u64,
    checkpoints: u64,
    converged: u64,
}

/// One random write; `n` makes every value unique.
fn random_write(client: &Client, rng: &mut Rng, n: u64, counts: &mut Counts) {
    let r = rng.below(RESOURCES as u64) as usize;
    let key = format!(
        "{}/k{}",
        resource_key(r),
        rng.below(KEYS_PER_RESOURCE as u64)
    );
    let roll = rng.below(100);
    let result = if roll < 60 {
        counts.sets += 1;
        client.set(&key, Some(&format!("v{n}")), &SetOptions::default())
    } else if roll < 80 {
        counts.ttl_sets += 1;
        let options = SetOptions {
            ttl: Some(1 + rng.below(MAX_TTL_SECS)),
            ..SetOptions::default()
        };
        client.set(&key, Some(&format!("t{n}")), &options)
    } else {
        counts.deletes += 1;
        match client.delete(&key, false, false) {
            Err(e) if e.is_key_not_found() => return,
            other => other,
        }
    };
    if result.is_err() {
        counts.failed += 1;
    }
}

fn checkpoint(etcd: &Etcd, setup: &Setup, counts: &mut Counts) -> Duration {
    // Every TTL'd key written so far expires (TTL + etcd's 0.5 s tick) before the check.
    std::thread::sleep(Duration::from_secs(MAX_TTL_SECS + 1));
    let client = etcd.client();
    let data = client
        .snapshot("/soak", true)
        .expect("snapshot")
        .data
        .unwrap_or_default();
    let started = Instant::now();
    counts.checkpoints += 1;
    let all = support::eventually(Duration::from_secs(60), || {
        (0..RESOURCES).all(|r| {
            support::read(&setup.out(&format!("r{r:02}.conf"))).as_deref()
                == Some(expected(&data, r).as_str())
        })
    });
    if all {
        counts.converged += 1;
    } else {
        for r in 0..RESOURCES {
            let path = setup.out(&format!("r{r:02}.conf"));
            let want = expected(&data, r);
            if support::read(&path).as_deref() != Some(want.as_str()) {
                eprintln!("NOT CONVERGED r{r:02}: want {want:?}");
            }
        }
    }
    started.elapsed()
}

fn spawn_daemon(setup: &Setup, etcd: &Etcd) -> Child {
    let binary =
        std::env::var("RECONFIG_BIN").unwrap_or_else(|_| support::daemon::RECONFIG.to_string());
    Command::new(binary)
        .args(setup.args(etcd, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(setup.cfgdir().join("daemon.log")).expect("log"))
        .spawn()
        .expect("spawn reconfig")
}

fn count_log(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
#[ignore = "30-minute soak: run with `make soak`"]
fn soak() {
    let duration = env_secs("SOAK_SECONDS", 1800);
    let check_every = env_secs("SOAK_CHECK_EVERY", 60);
    let restart_every = env_secs("SOAK_RESTART_EVERY", 300);
    let rate = std::env::var("SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25u64);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("soak: {duration:?}, {rate} writes/s, seed {seed}");
    let mut rng = Rng(seed);
    let mut etcd = Etcd::start();
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    for r in 0..RESOURCES {
        // The anchor keeps every directory present: deletes never remove the watched key.
        etcd.put(&format!("{}/anchor", resource_key(r)), "a");
        setup.resource(
            &format!("r{r:02}"),
            json!({
                "id": format!("r{r:02}"),
                "key": resource_key(r),
                "recursive": true,
                "source": "list.tmpl",
                "target": setup.out(&format!("r{r:02}.conf")),
                "reloadcmd": format!("echo r >> {}", setup.out(&format!("r{r:02}.reloads")).display()),
            }),
        );
    }
    let mut daemon = spawn_daemon(&setup, &etcd);
    let pid = daemon.id();
    let mut counts = Counts::default();
    checkpoint(&etcd, &setup, &mut counts);
    let first = sample(pid);
    let mut samples = vec![first];
    let mut worst_convergence = Duration::ZERO;
    let began = Instant::now();
    let mut next_check = began + check_every;
    let mut next_restart = began + restart_every;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut n = 0u64;
    let client = etcd.client();
    while began.elapsed() < duration {
        if Instant::now() >= next_restart {
            // An outage of 3 s, then the same data back.
            etcd.kill();
            std::thread::sleep(Duration::from_secs(3));
            etcd.restart();
            counts.restarts += 1;
            next_restart += restart_every;
        }
        if Instant::now() >= next_check {
            worst_convergence = worst_convergence.max(checkpoint(&etcd, &setup, &mut counts));
            samples.push(sample(pid));
            let s = samples[samples.len() - 1];
            eprintln!(
                "soak {:>5}s: {} writes, checkpoints {}/{}, rss {} kB, fds {}, threads {}",
                began.elapsed().as_secs(),
                n,
                counts.converged,
                counts.checkpoints,
                s.rss_kb,
                s.fds,
                s.threads
            );
            next_check = Instant::now() + check_every;
        }
        n += 1;
        random_write(&client, &mut rng, n, &mut counts);
        std::thread::sleep(interval);
    }
    worst_convergence = worst_convergence.max(checkpoint(&etcd, &setup, &mut counts));
    let last = sample(pid);
    samples.push(last);
    let alive = matches!(daemon.try_wait(), Ok(None));
    let _ = daemon.kill();
    let _ = daemon.wait();
    let log = setup.cfgdir().join("daemon.log");
    let installs = count_log(&log, "] changed ");
    let reloads: usize = (0..RESOURCES)
        .map(|r| support::daemon::count_lines(&setup.out(&format!("r{r:02}.reloads"))))
        .sum();
    let max_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    let report = format!(
        "soak: {} s, {} resources, seed {seed}\n\
         writes made: {} ({} sets, {} TTL sets, {} deletes), {} refused while etcd was down\n\
         etcd restarts: {}\n\
         checkpoints converged: {}/{} (slowest {:.1} s)\n\
         installs: {installs}, reloads: {reloads}\n\
         daemon alive at the end: {alive}\n\
         RSS kB start {} end {} max {max_rss}; open fds start {} end {} max {max_fds}; threads start {} end {}\n",
        began.elapsed().as_secs(),
        RESOURCES,
        counts.sets + counts.ttl_sets + counts.deletes,
        counts.sets,
        counts.ttl_sets,
        counts.deletes,
        counts.failed,
        counts.restarts,
        counts.converged,
        counts.checkpoints,
        worst_convergence.as_secs_f64(),
        first.rss_kb,
        last.rss_kb,
        first.fds,
        last.fds,
        first.threads,
        last.threads,
    );
    eprint!("{report}");
    if let Ok(path) = std::env::var("SOAK_REPORT") {
        std::fs::write(path, &report).expect("write report");
    }
    assert!(alive, "the daemon died; log in {}", log.display());
    assert_eq!(counts.converged, counts.checkpoints, "lost updates");
    assert!(
        last.fds <= first.fds + 10,
        "open fds grew: {} → {}",
        first.fds,
        last.fds
    );
}
