//! `etcd-util -o REGISTER` as a backend runs it under a supervisor, against a real etcd on
//! both APIs: the key is there while it runs, renewals wake no watcher, TERM/INT delete it
//! at once, kill -9 leaves it to expire, an etcd outage longer than the TTL is survived,
//! and a health check decides whether the key exists. TTLs are 2 s to keep this fast.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};
use support::procs::Tree;
use support::{both_apis, eventually, stdout, wait_output, Api, Etcd};

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const KEY: &str = "/services/web/10.0.0.5";
const VALUE: &str = "10.0.0.5:80";
const TTL: Duration = Duration::from_secs(2);
/// etcd expires keys and leases on a 500 ms tick; a loaded machine adds to that.
const EXPIRY_SLACK: Duration = Duration::from_secs(2);

/// A running `etcd-util -o REGISTER`, its stderr in a file. Dropping it sends TERM, then
/// KILL by PID; its [`Tree`] then kills whatever it left behind (a health check).
struct Registrar {
    child: Option<Child>,
    log: PathBuf,
    _tree: Tree,
}

impl Registrar {
    /// Registers [`KEY`] = [`VALUE`] with a TTL of [`TTL`] on `etcd`, with `extra` flags.
    fn start(etcd: &Etcd, dir: &Path, extra: &[&str]) -> Registrar {
        Registrar::start_at(&etcd.url(), etcd.api_args(), TTL, dir, extra)
    }

    /// [`Registrar::start`] on `endpoints` with `api_args`, and a TTL of `ttl`.
    fn start_at(
        endpoints: &str,
        api_args: Vec<String>,
        ttl: Duration,
        dir: &Path,
        extra: &[&str],
    ) -> Registrar {
        let log = dir.join("register.log");
        let tree = Tree::new();
        let ttl = ttl.as_secs().to_string();
        let child = tree
            .command(ETCD_UTIL)
            .args(["--endpoints", endpoints])
            .args(api_args)
            .args(["-o", "REGISTER", "-k", KEY, "-v", VALUE, "-t", &ttl])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn etcd-util");
        Registrar {
            child: Some(child),
            log,
            _tree: tree,
        }
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the PID of a child this fixture started and has not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Sends `signal` and waits for the exit: the output and how long it took.
    fn stop_with(mut self, signal: i32) -> (Output, Duration) {
        let started = Instant::now();
        self.signal(signal);
        let child = self.child.take().expect("running");
        (
            wait_output(child, Duration::from_secs(10)),
            started.elapsed(),
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many log lines contain `text`.
    fn log_lines(&self, text: &str) -> usize {
        self.log_text().lines().filter(|l| l.contains(text)).count()
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The value of `key`, read through the API under test; `None` when it is missing.
fn value_of(etcd: &Etcd, key: &str) -> Option<String> {
    match etcd.kv().find(key, false) {
        Ok(reconfig::etcd::Found::Value(_, value)) => Some(value),
        Ok(other) => panic!("{key} is not a single value: {other:?}"),
        Err(e) if e.is_key_not_found() => None,
        Err(e) => panic!("GET {key}: {e}"),
    }
}

fn registered(etcd: &Etcd) -> bool {
    value_of(etcd, KEY).as_deref() == Some(VALUE)
}

/// `etcd-util -o WATCH -r` on the key's directory: it prints the first change and exits.
fn watch(etcd: &Etcd, tree: &Tree) -> Child {
    tree.command(ETCD_UTIL)
        .args(["--endpoints", &etcd.url()])
        .args(etcd.api_args())
        .args(["-o", "WATCH", "-r", "-k", "/services/web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn etcd-util -o WATCH")
}

both_apis!(renewals_keep_the_key_past_its_ttl_waking_no_watcher_and_term_deletes_it);
fn renewals_keep_the_key_past_its_ttl_waking_no_watcher_and_term_deletes_it(api: Api) {
    let etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    let registrar = Registrar::start(&etcd, dir.path(), &[]);
    assert!(
        eventually(Duration::from_secs(5), || registered(&etcd)),
        "{KEY} never appeared; log:\n{}",
        registrar.log_text()
    );
    let tree = Tree::new();
    let mut watcher = watch(&etcd, &tree);
    // Three TTLs: about nine renewals. A renewal that rewrote the key would end the watch.
    std::thread::sleep(TTL * 3);
    assert!(
        registered(&etcd),
        "{KEY} expired although renewed; log:\n{}",
        registrar.log_text()
    );
    assert!(
        matches!(watcher.try_wait(), Ok(None)),
        "a renewal woke the watcher: {}",
        stdout(&wait_output(watcher, Duration::from_secs(1)))
    );
    // One line when registered, none per renewal.
    assert_eq!(
        registrar.log_text().lines().count(),
        1,
        "{}",
        registrar.log_text()
    );

    let log = registrar.log.clone();
    let (out, took) = registrar.stop_with(libc::SIGTERM);
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(took < Duration::from_secs(3), "TERM took {took:?}");
    assert!(value_of(&etcd, KEY).is_none(), "{KEY} survived TERM");
    // The watcher learns of the delete at once, not when a TTL runs out.
    let event = wait_output(watcher, Duration::from_secs(2));
    let printed: serde_json::Value = serde_json::from_slice(&event.stdout).expect("event json");
    assert_eq!(
        (printed["action"].as_str(), printed["key"].as_str()),
        (Some("delete"), Some(KEY)),
        "{printed}"
    );
    assert!(
        log.contains(&format!("stopping on signal 15: deleted {KEY}")),
        "{log}"
    );
}

both_apis!(killed_with_sigkill_the_key_expires_within_its_ttl);
fn killed_with_sigkill_the_key_expires_within_its_ttl(api: Api) {
    let etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    let registrar = Registrar::start(&etcd, dir.path(), &[]);
    assert!(eventually(Duration::from_secs(5), || registered(&etcd)));
    let (_, _) = registrar.stop_with(libc::SIGKILL);
    let killed = Instant::now();
    assert!(
        registered(&etcd),
        "the key must outlive a kill -9 for a while"
    );
    assert!(
        eventually(TTL + EXPIRY_SLACK, || value_of(&etcd, KEY).is_none()),
        "{KEY} still there {:?} after kill -9",
        killed.elapsed()
    );
}

both_apis!(unreachable_etcd_is_retried_and_an_outage_longer_than_the_ttl_is_survived);
fn unreachable_etcd_is_retried_and_an_outage_longer_than_the_ttl_is_survived(api: Api) {
    let mut etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    etcd.kill();
    // etcd down at start: a daemon keeps trying, and says so once.
    let registrar = Registrar::start(&etcd, dir.path(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    let unreachable = "etcd does not answer";
    assert_eq!(
        registrar.log_lines(unreachable),
        1,
        "{}",
        registrar.log_text()
    );
    etcd.restart();
    // The key can be there before the registrar knows: a write that etcd, slow after a
    // restart, applied after the registrar's bound had passed. Its next write says so.
    assert!(
        eventually(Duration::from_secs(5), || registered(&etcd)
            && registrar.log_lines("etcd answers again") == 1),
        "{KEY} not written once etcd answered; log:\n{}",
        registrar.log_text()
    );

    // Down for longer than the TTL, then back: the key is back within seconds, and stays.
    // The next renewal (a third of the TTL away) finds etcd gone and says so, once.
    etcd.kill();
    let down = Instant::now();
    assert!(
        eventually(TTL * 2, || registrar.log_lines(unreachable) == 2),
        "the outage was not logged within {:?}; log:\n{}",
        TTL * 2,
        registrar.log_text()
    );
    std::thread::sleep((TTL * 2).saturating_sub(down.elapsed()));
    etcd.restart();
    let back = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || registered(&etcd)),
        "{KEY} not back after the outage; log:\n{}",
        registrar.log_text()
    );
    std::thread::sleep(TTL + EXPIRY_SLACK);
    assert!(
        registered(&etcd),
        "{KEY} gone {:?} after etcd came back; log:\n{}",
        back.elapsed(),
        registrar.log_text()
    );
    // One line per outage, not per retry (a retry each second would log 6+ here).
    assert_eq!(
        registrar.log_lines(unreachable),
        2,
        "{}",
        registrar.log_text()
    );
    assert_eq!(
        registrar.log_lines("etcd answers again"),
        2,
        "{}",
        registrar.log_text()
    );
}

both_apis!(the_key_exists_only_while_the_health_check_passes);
fn the_key_exists_only_while_the_health_check_passes(api: Api) {
    let etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    let healthy = dir.path().join("healthy");
    let check = format!(
        "test -e {} || {{ echo backend down >&2; exit 1; }}",
        healthy.display()
    );
    let registrar = Registrar::start(
        &etcd,
        dir.path(),
        &["--check-cmd", &check, "--check-interval", "200ms"],
    );
    // Failing from the start: never written.
    assert!(
        eventually(Duration::from_secs(5), || registrar
            .log_text()
            .contains("not registered until the health check passes")),
        "{}",
        registrar.log_text()
    );
    assert!(value_of(&etcd, KEY).is_none());

    std::fs::write(&healthy, "").expect("marker");
    assert!(
        eventually(Duration::from_secs(3), || registered(&etcd)),
        "{}",
        registrar.log_text()
    );
    std::fs::remove_file(&healthy).expect("marker");
    // Deleted at once, not left to expire.
    assert!(
        eventually(Duration::from_secs(1), || value_of(&etcd, KEY).is_none()),
        "{}",
        registrar.log_text()
    );
    assert!(
        registrar.log_text().contains("the health check failed")
            && registrar.log_text().contains("backend down"),
        "{}",
        registrar.log_text()
    );
    // Still failing: the key stays away past its TTL.
    std::thread::sleep(TTL);
    assert!(value_of(&etcd, KEY).is_none());

    std::fs::write(&healthy, "").expect("marker");
    assert!(
        eventually(Duration::from_secs(3), || registered(&etcd)),
        "{}",
        registrar.log_text()
    );
    // Once after the failures at start, once after the failure just now.
    assert_eq!(
        registrar.log_lines("health check passes again"),
        2,
        "{}",
        registrar.log_text()
    );
    let (out, _) = registrar.stop_with(libc::SIGINT);
    assert_eq!(out.status.code(), Some(0));
    assert!(value_of(&etcd, KEY).is_none(), "{KEY} survived INT");
}

both_apis!(a_hung_health_check_is_killed_on_its_timeout_and_on_exit);
fn a_hung_health_check_is_killed_on_its_timeout_and_on_exit(api: Api) {
    let etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    // The check starts a sleep that never ends; its pid shows whether it was killed.
    let pid_file = dir.path().join("check.pid");
    let check = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
    let registrar = Registrar::start(
        &etcd,
        dir.path(),
        &["--check-cmd", &check, "--check-interval", "1"],
    );
    assert!(
        eventually(Duration::from_secs(6), || registrar
            .log_text()
            .contains("timed out after 1s")),
        "{}",
        registrar.log_text()
    );
    assert!(value_of(&etcd, KEY).is_none());
    let (out, took) = registrar.stop_with(libc::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
    assert!(took < Duration::from_secs(4), "TERM took {took:?}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // SAFETY: signal 0 only asks whether the process exists (a zombie until init reaps it).
    let gone = || unsafe { libc::kill(pid, 0) } != 0;
    assert!(
        eventually(Duration::from_secs(2), gone),
        "the check's sleep {pid} outlived etcd-util"
    );
}

#[test]
fn register_flags_are_checked_before_anything_runs() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["-o", "REGISTER", "-k", KEY, "-v", VALUE],
            "REGISTER needs a value and a time to live",
        ),
        (
            &["-k", KEY, "--check-cmd", "true"],
            "--check-cmd and --check-interval are only for -o REGISTER",
        ),
        (
            &[
                "-o",
                "REGISTER",
                "-k",
                KEY,
                "-v",
                VALUE,
                "-t",
                "2",
                "--check-interval",
                "5s",
            ],
            "--check-interval needs --check-cmd",
        ),
        (
            &["register", "-k", KEY],
            "choose the operation with -o, e.g. -o REGISTER",
        ),
    ];
    for (args, expected) in cases {
        let out = support::run_bin(ETCD_UTIL, args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            support::stderr(&out).contains(expected),
            "{args:?}: {}",
            support::stderr(&out)
        );
    }
}

both_apis!(a_key_deleted_behind_its_back_is_written_again);
fn a_key_deleted_behind_its_back_is_written_again(api: Api) {
    let etcd = Etcd::start_on(api);
    let dir = tempfile::tempdir().expect("temp dir");
    let registrar = Registrar::start(&etcd, dir.path(), &[]);
    assert!(eventually(Duration::from_secs(5), || registered(&etcd)));
    // An operator cleaning up the prefix (on v3 the lease lives on: only the key goes).
    etcd.delete("/services", true);
    assert!(
        eventually(TTL, || registered(&etcd)),
        "{KEY} not written again; log:\n{}",
        registrar.log_text()
    );
    assert!(
        registrar.log_text().contains("someone deleted it"),
        "{}",
        registrar.log_text()
    );
}

/// v2 only: v3 has no directories, a key and keys under it coexist.
#[test]
fn registering_onto_a_v2_directory_says_what_to_do_and_exits_1() {
    let etcd = Etcd::start_on(Api::V2);
    etcd.put("/services/web/10.0.0.5/weight", "1");
    let url = etcd.url();
    let args = [
        "--endpoints",
        &url,
        "--api",
        "v2",
        "-o",
        "REGISTER",
        "-k",
        KEY,
        "-v",
        VALUE,
        "-t",
        "2",
    ];
    let out = support::run_bin(ETCD_UTIL, &args, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains(&format!(
            "cannot register {KEY}: {KEY} is a directory: REGISTER writes a value to a single \
             key; register a key under it"
        )),
        "{}",
        support::stderr(&out)
    );
}

both_apis!(a_member_that_hangs_is_given_up_for_the_next_before_the_key_expires);
fn a_member_that_hangs_is_given_up_for_the_next_before_the_key_expires(api: Api) {
    let members = Etcd::cluster_on(api, 3);
    let leader = members[0].kv().leader().expect("leader");
    let (_, listed) = members[0].kv().members().expect("members");
    let is_follower = |m: &&Etcd| {
        listed
            .iter()
            .any(|l| l.id != leader && l.client_urls.contains(&m.url()))
    };
    // A follower hangs, not the leader: an election would only add to the test's time.
    let hung = members.iter().find(is_follower).expect("a follower");
    let others: Vec<&Etcd> = members.iter().filter(|m| m.url() != hung.url()).collect();
    let endpoints = [hung.url(), others[0].url(), others[1].url()].join(",");
    let dir = tempfile::tempdir().expect("temp dir");
    // A TTL of 3 s: renewed every second, each request bounded by that second.
    let ttl = Duration::from_secs(3);
    let registrar = Registrar::start_at(&endpoints, others[0].api_args(), ttl, dir.path(), &[]);
    let registered_on = |m: &Etcd| value_of(m, KEY).as_deref() == Some(VALUE);
    assert!(eventually(Duration::from_secs(5), || registered_on(
        others[0]
    )));

    let pid = hung.pid().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on the PID of an etcd this test started; SIGCONT below.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let deadline = Instant::now() + ttl * 3;
    let mut missing = None;
    while Instant::now() < deadline && missing.is_none() {
        if !registered_on(others[1]) {
            missing = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(
        missing.is_none(),
        "{KEY} expired while one member of three hung; log:\n{}",
        registrar.log_text()
    );
}
