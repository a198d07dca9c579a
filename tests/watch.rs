//! What the daemon's watch loop tells the operator and does between changes: a problem is
//! logged once while it persists (however its text varies) and its end is logged, a failed
//! reload is retried, a missing altkey renders as empty, and SIGHUP with nothing valid left
//! keeps what runs. `--onetime` words its messages for a run that does not retry.

mod support;

use serde_json::json;
use std::time::Duration;
use support::daemon::{count_lines, wait_content, Setup};
use support::{eventually, Etcd};

const SECS: Duration = Duration::from_secs(10);

fn lines_containing(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_check_failing_with_different_output_each_time_is_logged_once_until_it_recovers() {
    let etcd = Etcd::start();
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
