//! What the daemon's watch loop tells the operator and does between changes: a problem is
//! logged once while it persists (however its text varies) and its end is logged, a failed
//! reload is retried, a missing altkey renders as empty, and SIGHUP with nothing valid left
//! keeps what runs. `--onetime` words its messages for a run that does not retry.

mod support;

use serde_json::json;
use std::time::Duration;
use support::daemon::{count_lines, wait_content, Setup};
use support::{both_apis, eventually, stderr, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

fn lines_containing(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

both_apis!(a_check_failing_with_different_output_each_time_is_logged_once_until_it_recovers);
fn a_check_failing_with_different_output_each_time_is_logged_once_until_it_recovers(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/chk/a", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("chk", "/chk");
    // Like nginx -t or haproxy -c: the output names a PID and the staged file, so it is
    // different on every attempt.
    resource["checkcmd"] = json!(format!(
        "echo run >> {runs}; [ -e {ok} ] && exit 0; echo \"pid $$ at $(date +%N) checking {{{{src}}}}\" >&2; exit 1",
        runs = setup.out("checks").display(),
        ok = setup.out("ok").display()
    ));
    setup.resource("chk", resource);
    let target = setup.out("chk.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    // Three attempts: the first and two backoff retries.
    assert!(
        eventually(SECS, || count_lines(&setup.out("checks")) >= 3),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert_eq!(
        lines_containing(&log, "check of the new content failed"),
        1,
        "logged once while it persists:\n{log}"
    );
    assert!(!target.exists());
    std::fs::write(setup.out("ok"), "").expect("ok marker");
    assert!(
        wait_content(&target, "/chk/a=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.wait_log("recovered", SECS), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert_eq!(
        lines_containing(&log, "check of the new content failed"),
        1,
        "{log}"
    );
    assert_eq!(lines_containing(&log, "ERROR"), 1, "{log}");
    assert!(daemon.is_running());
}

both_apis!(a_missing_altkey_renders_as_empty_and_is_warned_about_once);
fn a_missing_altkey_renders_as_empty_and_is_warned_about_once(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/ak/a", "0");
    let setup = Setup::new();
    setup.template(
        "alt.tmpl",
        "{{ reconfig.data|tojson }} {{ reconfig.altdata.m|tojson }}\n",
    );
    setup.resource(
        "ak",
        json!({"key": "/ak", "recursive": true, "source": "alt.tmpl",
        "altkeys": {"m": "/missing"}, "target": setup.out("ak.conf")}),
    );
    let target = setup.out("ak.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    for i in 0..4 {
        if i > 0 {
            etcd.put("/ak/a", &i.to_string());
        }
        assert!(
            wait_content(&target, &format!("{{\"/ak/a\": \"{i}\"}} {{}}\n"), SECS),
            "{}",
            daemon.log_text()
        );
    }
    let log = daemon.log_text();
    assert_eq!(
        lines_containing(&log, "altkey m = /missing does not exist"),
        1,
        "warned once while it persists:\n{log}"
    );
    // Altkeys are read on each render, not watched: the next change shows it.
    etcd.put("/missing/x", "here");
    etcd.put("/ak/a", "4");
    assert!(
        wait_content(
            &target,
            "{\"/ak/a\": \"4\"} {\"/missing/x\": \"here\"}\n",
            SECS
        ),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.is_running());
}

both_apis!(a_reload_that_fails_once_is_retried_and_the_file_is_right);
fn a_reload_that_fails_once_is_retried_and_the_file_is_right(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/rr/a", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("rr", "/rr");
    resource["reloadcmd"] = json!(format!(
        "if [ -e {failed} ]; then echo reload >> {reloads}; else touch {failed}; echo busy >&2; exit 1; fi",
        failed = setup.out("failed-once").display(),
        reloads = setup.out("rr.reloads").display()
    ));
    setup.resource("rr", resource);
    let target = setup.out("rr.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/rr/a=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        eventually(SECS, || count_lines(&setup.out("rr.reloads")) == 1),
        "the failed reload was not retried:\n{}",
        daemon.log_text()
    );
    assert!(daemon.wait_log("recovered", SECS), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert_eq!(lines_containing(&log, "reload failed"), 1, "{log}");
    etcd.put("/rr/a", "2");
    assert!(
        wait_content(&target, "/rr/a=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(eventually(SECS, || count_lines(&setup.out("rr.reloads")) == 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count_lines(&setup.out("rr.reloads")),
        2,
        "one reload per change"
    );
    assert!(daemon.is_running());
}

both_apis!(sighup_with_no_valid_resource_left_keeps_the_running_ones);
fn sighup_with_no_valid_resource_left_keeps_the_running_ones(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/hup/a", "1");
    let setup = Setup::new();
    setup.resource("hup", setup.list_resource("hup", "/hup"));
    let target = setup.out("hup.conf");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/hup/a=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    std::fs::write(setup.cfgdir().join("conf.d/hup.json"), "{ not json").expect("break");
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_log("keeping the resources already running", SECS),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("hup.json"), "names the bad file:\n{log}");
    assert!(log.contains("no valid resource"), "{log}");
    // The old generation still follows etcd.
    etcd.put("/hup/a", "2");
    assert!(
        wait_content(&target, "/hup/a=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.is_running());
}

both_apis!(onetime_does_not_promise_retries_it_will_not_make);
fn onetime_does_not_promise_retries_it_will_not_make(api: Api) {
    let mut etcd = Etcd::start_on(api);
    etcd.put("/once/a", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("once", "/once");
    resource["reloadcmd"] = json!("echo reload refused >&2; exit 1");
    setup.resource("once", resource);
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("reload failed"), "{log}");
    assert!(!log.contains("retry"), "{log}");

    etcd.kill();
    let out = setup.onetime(&etcd, &["--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("etcd unreachable"), "{log}");
    assert!(!log.contains("retry"), "{log}");
    assert!(!log.contains("backoff"), "{log}");
}
