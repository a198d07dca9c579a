//! The daemon under etcd faults: outages, a wiped etcd, history overrun, a cluster member
//! dying mid-watch, and endpoints that hang or answer garbage (FAKE servers from
//! `support::fake_http`, named as such). Each test checks what an operator would: the
//! target equals what etcd's latest data renders, reloads ran as often as the content
//! changed, the process is alive, and the log says what happened once.

mod support;

use support::stderr;

use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::daemon::{count_lines, wait_content, Daemon, Setup, RECONFIG};
use support::fake_http::{Behaviour, FakeServer};
use support::{both_apis, Api, Etcd};

/// Generous bound for "eventually" on 2 shared cores; a 5 s outage plus a capped backoff
/// retry fits well inside.
const CONVERGE: Duration = Duration::from_secs(30);

/// A check command that marks `started` and then blocks until `go` exists: the test
/// does its damage while the daemon is inside a pass, after the snapshot. It gives up once
/// the test's temp dir is gone, so it cannot outlive the test even when nothing kills it.
fn gated_check(setup: &Setup) -> String {
    format!(
        "touch {started}; while [ ! -e {go} ]; do [ -d {out} ] || exit 1; sleep 0.05; done",
        started = setup.out("check-started").display(),
        go = setup.out("go").display(),
        out = setup.out("").display()
    )
}

fn open_gate(setup: &Setup) {
    std::fs::write(setup.out("go"), "").expect("go");
}

/// A PUT that waits out a leader election (the killed member may have been the leader).
fn put_retrying(member: &Etcd, key: &str, value: &str) {
    let client = member.kv();
    let mut last = None;
    let done = support::eventually(CONVERGE, || match client.put(key, value, None) {
        Ok(_) => true,
        Err(e) => {
            last = Some(e);
            false
        }
    });
    assert!(done, "PUT {key}: {last:?}");
}

fn lines_containing(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

fn assert_alive(daemon: &mut Daemon) {
    assert!(daemon.is_running(), "daemon died:\n{}", daemon.log_text());
}

both_apis!(etcd_down_for_five_seconds_is_logged_once_and_changes_after_restart_converge);
fn etcd_down_for_five_seconds_is_logged_once_and_changes_after_restart_converge(api: Api) {
    let mut etcd = Etcd::start_on(api);
    etcd.put("/out/a", "1");
    let setup = Setup::new();
    setup.resource("out", setup.list_resource("out", "/out"));
    let target = setup.out("out.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/out/a=1\n", CONVERGE));

    etcd.kill();
    std::thread::sleep(Duration::from_secs(5));
    // The outage: the target stays, the daemon lives, and the log says so once, however
    // many retries the backoff made.
    assert_eq!(support::read(&target).as_deref(), Some("/out/a=1\n"));
    assert_alive(&mut daemon);
    let during = daemon.log_text();
    assert_eq!(
        lines_containing(&during, "ERROR"),
        1,
        "one error line per outage:\n{during}"
    );
    assert!(during.contains("etcd unreachable"), "{during}");
    assert!(
        during.contains(&etcd.url()),
        "names the endpoint:\n{during}"
    );

    // Restarted on the same data; a write lands before the daemon's next retry.
    etcd.restart();
    etcd.put("/out/b", "2");
    assert!(
        wait_content(&target, "/out/a=1\n/out/b=2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon.wait_log("recovered", CONVERGE),
        "{}",
        daemon.log_text()
    );
    // ... and a write after the reconnection.
    etcd.put("/out/c", "3");
    assert!(
        wait_content(&target, "/out/a=1\n/out/b=2\n/out/c=3\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(support::eventually(CONVERGE, || count_lines(
        &setup.out("out.reloads")
    ) == 3));
    assert_eq!(
        lines_containing(&daemon.log_text(), "etcd unreachable"),
        1,
        "{}",
        daemon.log_text()
    );
    assert_alive(&mut daemon);
}

both_apis!(changes_made_while_the_daemons_only_endpoint_is_down_arrive_after_it_returns);
fn changes_made_while_the_daemons_only_endpoint_is_down_arrive_after_it_returns(api: Api) {
    let mut members = Etcd::cluster_on(api, 3);
    members[0].put("/dur/a", "1");
    let setup = Setup::new();
    setup.resource("dur", setup.list_resource("dur", "/dur"));
    let target = setup.out("dur.conf");
    // The daemon knows only member 0.
    let mut daemon = setup.daemon(&members[0], &[]);
    assert!(wait_content(&target, "/dur/a=1\n", CONVERGE));

    members[0].kill();
    // The other two keep quorum: these writes happen during the daemon's outage.
    put_retrying(&members[1], "/dur/b", "2");
    members[2].delete("/dur/a", false);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(support::read(&target).as_deref(), Some("/dur/a=1\n"));
    members[0].restart();
    // No further change: the re-read after reconnecting must pick them up.
    assert!(
        wait_content(&target, "/dur/b=2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(support::eventually(CONVERGE, || count_lines(
        &setup.out("dur.reloads")
    ) == 2));
    assert_alive(&mut daemon);
}

both_apis!(a_cluster_member_killed_mid_watch_fails_over_and_converges);
fn a_cluster_member_killed_mid_watch_fails_over_and_converges(api: Api) {
    let mut members = Etcd::cluster_on(api, 3);
    members[0].put("/fo/a", "1");
    let setup = Setup::new();
    setup.resource("fo", setup.list_resource("fo", "/fo"));
    let target = setup.out("fo.conf");
    // Endpoints: member 0 (answers first, so the long-poll sits on it), then 1 and 2.
    let others = format!("{},{}", members[1].url(), members[2].url());
    let mut daemon = setup.daemon(&members[0], &["--endpoints", &others]);
    assert!(
        wait_content(&target, "/fo/a=1\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    members[0].kill();
    put_retrying(&members[1], "/fo/b", "2");
    assert!(
        wait_content(&target, "/fo/a=1\n/fo/b=2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    members[2].put("/fo/c", "3");
    assert!(
        wait_content(&target, "/fo/a=1\n/fo/b=2\n/fo/c=3\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(support::eventually(CONVERGE, || count_lines(
        &setup.out("fo.reloads")
    ) == 3));
    assert_alive(&mut daemon);
}

both_apis!(a_wiped_etcd_whose_index_went_back_is_read_again);
fn a_wiped_etcd_whose_index_went_back_is_read_again(api: Api) {
    let mut etcd = Etcd::start_on(api);
    // Push the index well above where a fresh etcd starts.
    let client = etcd.kv();
    for i in 0..200 {
        client.put("/noise/n", &i.to_string(), None).expect("set");
    }
    etcd.put("/wipe/a", "old");
    let setup = Setup::new();
    let mut resource = setup.list_resource("wipe", "/wipe");
    resource["checkcmd"] = json!(gated_check(&setup));
    setup.resource("wipe", resource);
    let target = setup.out("wipe.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    // The daemon has read index ~200 and is inside its check: wipe etcd under it, so its
    // next watch asks a fresh etcd (index ~1) for index ~200.
    assert!(support::eventually(CONVERGE, || setup
        .out("check-started")
        .exists()));
    etcd.wipe_and_restart();
    open_gate(&setup);
    assert!(wait_content(&target, "/wipe/a=old\n", CONVERGE));
    etcd.put("/wipe/a", "fresh");
    assert!(
        wait_content(&target, "/wipe/a=fresh\n", CONVERGE),
        "the daemon kept waiting on a future index:\n{}",
        daemon.log_text()
    );
    assert!(
        daemon.log_text().contains("index went back"),
        "{}",
        daemon.log_text()
    );
    assert_alive(&mut daemon);
}

both_apis!(a_wiped_and_recreated_etcd_is_followed_after_the_outage);
fn a_wiped_and_recreated_etcd_is_followed_after_the_outage(api: Api) {
    let mut etcd = Etcd::start_on(api);
    let client = etcd.kv();
    for i in 0..100 {
        client.put("/wr/n", &i.to_string(), None).expect("set");
    }
    let setup = Setup::new();
    setup.resource("wr", setup.list_resource("wr", "/wr"));
    let target = setup.out("wr.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/wr/n=99\n", CONVERGE));
    etcd.wipe_and_restart();
    // Recreated from scratch by the operator: a lower index, different data.
    etcd.put("/wr/m", "restored");
    assert!(
        wait_content(&target, "/wr/m=restored\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    etcd.put("/wr/m", "later");
    assert!(
        wait_content(&target, "/wr/m=later\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert_alive(&mut daemon);
}

/// v2 only: v2's 1000-event history. The v3 counterpart, a watch from a compacted
/// revision, is in tests/v3.rs.
#[test]
fn more_than_1000_events_between_two_watches_resync_and_lose_nothing() {
    let etcd = Etcd::start();
    etcd.put("/hist/a", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("hist", "/hist");
    resource["checkcmd"] = json!(gated_check(&setup));
    setup.resource("hist", resource);
    let target = setup.out("hist.conf");
    let mut daemon = setup.daemon(&etcd, &["--debug"]);
    assert!(support::eventually(CONVERGE, || setup
        .out("check-started")
        .exists()));
    // While the first pass is held: the watched change, then 1100 unrelated events, so
    // the daemon's waitIndex falls out of etcd's 1000-event history (error 401).
    etcd.put("/hist/b", "2");
    let client = etcd.client();
    for i in 0..1100 {
        client
            .set("/other/n", Some(&i.to_string()), &Default::default())
            .expect("set");
    }
    open_gate(&setup);
    assert!(
        wait_content(&target, "/hist/a=1\n/hist/b=2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    // The key's watch is not held by the pass: it saw the change at once, before the
    // history moved on, and the resource passed again after the held pass. (A subscription
    // that does fall behind reads again: tests/etcd_client.rs,
    // a_subscription_more_than_1000_events_behind_reads_again.)
    let log = daemon.log_text();
    assert!(!log.contains("ERROR"), "{log}");
    assert_alive(&mut daemon);
}

/// --onetime against one fake endpoint alone: a bounded wait and a message that names the
/// endpoint and the fault.
fn onetime_against(fake: &FakeServer, expect_in_message: &str) {
    let setup = Setup::new();
    setup.resource("f", setup.list_resource("f", "/svc"));
    let started = Instant::now();
    let cfgdir = setup.cfgdir().display().to_string();
    let state_dir = setup.state_dir().display().to_string();
    let out = support::run_bin(
        RECONFIG,
        &[
            "--onetime",
            "--timeout",
            "1",
            "--endpoints",
            &fake.url(),
            "-c",
            &cfgdir,
            "--state-dir",
            &state_dir,
        ],
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let log = stderr(&out);
    assert!(log.contains(&fake.url()), "{log}");
    assert!(log.contains(expect_in_message), "{log}");
    assert!(!setup.out("f.conf").exists());
}

/// The daemon with a fake endpoint listed first and the real etcd second converges and
/// follows a change.
fn daemon_fails_over_from(fake: &FakeServer) {
    let etcd = Etcd::start();
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    setup.resource("f", setup.list_resource("f", "/svc"));
    let target = setup.out("f.conf");
    let endpoints = format!("{},{}", fake.url(), etcd.url());
    let mut daemon = FakeFirstDaemon::start(&setup, &endpoints);
    assert!(
        wait_content(&target, "/svc/a=1\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    etcd.put("/svc/b", "2");
    assert!(
        wait_content(&target, "/svc/a=1\n/svc/b=2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(fake.requests() >= 1, "the fake endpoint was tried first");
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "daemon died:\n{}",
        daemon.log_text()
    );
}

/// The daemon with an endpoint list of the test's choosing (the shared fixture always
/// puts the real etcd first).
struct FakeFirstDaemon {
    child: Child,
    log: PathBuf,
}

impl FakeFirstDaemon {
    fn start(setup: &Setup, endpoints: &str) -> FakeFirstDaemon {
        let log = setup.cfgdir().join("daemon.log");
        let child = Command::new(RECONFIG)
            .args(["--timeout", "1", "--endpoints", endpoints, "-c"])
            .arg(setup.cfgdir())
            .arg("--state-dir")
            .arg(setup.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn reconfig");
        FakeFirstDaemon { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FakeFirstDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_hung_endpoint_fake_times_out_with_a_clear_error_and_fails_over() {
    let hung = FakeServer::start(Behaviour::Hang);
    onetime_against(&hung, "no answer in time");
    daemon_fails_over_from(&hung);
}

#[test]
fn truncated_json_from_a_fake_endpoint_is_a_clear_error_and_fails_over() {
    let truncated = FakeServer::start(Behaviour::truncated_json());
    onetime_against(&truncated, "invalid JSON");
    daemon_fails_over_from(&truncated);
}

#[test]
fn a_body_shorter_than_promised_from_a_fake_endpoint_fails_over() {
    let short = FakeServer::start(Behaviour::short_body());
    onetime_against(&short, "connection closed");
    daemon_fails_over_from(&short);
}

#[test]
fn json_of_the_wrong_shape_from_a_fake_endpoint_fails_over() {
    let wrong = FakeServer::start(Behaviour::wrong_json());
    onetime_against(&wrong, "invalid JSON");
    daemon_fails_over_from(&wrong);
}

#[test]
fn an_html_error_page_from_a_fake_proxy_is_a_clear_error_and_fails_over() {
    let page = FakeServer::start(Behaviour::html_error_page());
    onetime_against(&page, "HTTP 502 with a body that is not etcd's");
    daemon_fails_over_from(&page);
}

#[test]
fn a_hung_endpoint_fake_met_on_failover_after_a_restart_does_not_stall_the_watch() {
    // FAKE: a real etcd always sends a watch's response headers at once; only a fake can
    // accept the connection and then never answer (a wedged process, a black-holed proxy).
    let hung = FakeServer::start(Behaviour::Hang);
    let mut etcd = Etcd::start();
    etcd.put("/bh/a", "1");
    let setup = Setup::new();
    setup.resource("bh", setup.list_resource("bh", "/bh"));
    let target = setup.out("bh.conf");
    // `--timeout 1`: the daemon gives up on the hung endpoint at start-up after 1 s and
    // settles on etcd.
    let endpoints = format!("{},{}", hung.url(), etcd.url());
    let mut daemon = FakeFirstDaemon::start(&setup, &endpoints);
    assert!(
        wait_content(&target, "/bh/a=1\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    // The restart cuts the watch on etcd: the failover sends the next watch to the hung
    // endpoint, which must be given up on after the request timeout, not the 300 s watch
    // bound.
    etcd.restart();
    etcd.put("/bh/b", "2");
    let written = Instant::now();
    assert!(
        wait_content(&target, "/bh/a=1\n/bh/b=2\n", Duration::from_secs(8)),
        "not converged {:?} after the write; the watch is stuck on the hung endpoint:\n{}",
        written.elapsed(),
        daemon.log_text()
    );
    assert!(
        matches!(daemon.child.try_wait(), Ok(None)),
        "daemon died:\n{}",
        daemon.log_text()
    );
}

both_apis!(every_watch_follows_within_seconds_of_etcd_returning_after_a_long_outage);
fn every_watch_follows_within_seconds_of_etcd_returning_after_a_long_outage(api: Api) {
    let mut etcd = Etcd::start_on(api);
    etcd.put("/ra/x", "1");
    etcd.put("/rb/x", "1");
    let setup = Setup::new();
    // Two resources on the same key and one on another.
    for (name, key) in [("a1", "/ra"), ("a2", "/ra"), ("b", "/rb")] {
        setup.resource(name, setup.list_resource(name, key));
    }
    let mut daemon = setup.daemon(&etcd, &[]);
    for (name, want) in [("a1", "/ra/x=1\n"), ("a2", "/ra/x=1\n"), ("b", "/rb/x=1\n")] {
        assert!(
            wait_content(&setup.out(&format!("{name}.conf")), want, CONVERGE),
            "{}",
            daemon.log_text()
        );
    }
    // 10 s down: a per-watch exponential backoff (0.5, 1, 2, 4, 8 s...) would next retry
    // several seconds after etcd is back.
    etcd.kill();
    std::thread::sleep(Duration::from_secs(10));
    etcd.restart();
    etcd.put("/ra/x", "2");
    etcd.put("/rb/x", "2");
    let written = Instant::now();
    for (name, want) in [("a1", "/ra/x=2\n"), ("a2", "/ra/x=2\n"), ("b", "/rb/x=2\n")] {
        assert!(
            wait_content(
                &setup.out(&format!("{name}.conf")),
                want,
                Duration::from_secs(2).saturating_sub(written.elapsed())
            ),
            "{name} not converged {:?} after etcd came back:\n{}",
            written.elapsed(),
            daemon.log_text()
        );
    }
    assert_alive(&mut daemon);
}
