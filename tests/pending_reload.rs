//! A reload that failed, or that a kill cut short, is owed until it succeeds: recorded in
//! the state dir before it runs, retried by the next `--onetime` and by a restarted daemon
//! even though the file on disk is already up to date (issue 13); a state dir that cannot
//! be used stops the start.

mod support;

use serde_json::json;
use std::time::Duration;
use support::daemon::{count_lines, wait_content, Setup};
use support::{both_apis, stderr, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// `svc` whose reload appends a line to `out/svc.reloads` and then runs `then`.
fn reloading(setup: &Setup, then: &str) -> serde_json::Value {
    let mut resource = setup.list_resource("svc", "/svc");
    resource["reloadcmd"] = json!(format!(
        "echo reload >> {}; {then}",
        setup.out("svc.reloads").display()
    ));
    resource
}

both_apis!(a_failed_reload_is_retried_by_the_next_onetime_though_the_file_is_current);
fn a_failed_reload_is_retried_by_the_next_onetime_though_the_file_is_current(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    let reloads = setup.out("svc.reloads");
    setup.resource("svc", reloading(&setup, "exit 3"));
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("installed, but reload failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=1\n")
    );
    assert_eq!(count_lines(&reloads), 1);

    // Still failing: still owed, exit 2 again.
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(count_lines(&reloads), 2);

    // The reload fixed: the next run reloads the unchanged file, once; a dry run does not.
    setup.resource("svc", reloading(&setup, "true"));
    let out = setup.onetime(&etcd, &["--notreally"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&reloads), 2, "a dry run runs no reload");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is up to date but was not reloaded since it was installed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count_lines(&reloads), 3);
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    assert_eq!(count_lines(&reloads), 3, "owed no more");
}

both_apis!(a_daemon_killed_during_its_reload_reloads_after_a_restart);
fn a_daemon_killed_during_its_reload_reloads_after_a_restart(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    let reloads = setup.out("svc.reloads");
    setup.resource("svc", reloading(&setup, "sleep 5"));
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("svc.conf"), "/svc/a=1\n", SECS));
    assert!(support::eventually(SECS, || count_lines(&reloads) == 1));
    daemon.signal(libc::SIGKILL);
    assert!(support::eventually(SECS, || !daemon.is_running()));
    drop(daemon);

    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        support::eventually(SECS, || count_lines(&reloads) == 2),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains("is up to date but was not reloaded"),
        "{}",
        daemon.log_text()
    );
}

both_apis!(an_owed_reload_runs_even_when_the_new_data_is_refused);
fn an_owed_reload_runs_even_when_the_new_data_is_refused(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    etcd.put("/svc/b", "2");
    let setup = Setup::new();
    let reloads = setup.out("svc.reloads");
    let with_guard = |then| {
        let mut resource = reloading(&setup, then);
        resource["min_keys"] = json!(2);
        resource
    };
    setup.resource("svc", with_guard("exit 3"));
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(2));
    etcd.delete("/svc/b", false);
    setup.resource("svc", with_guard("true"));
    // The new data is refused, but the file installed earlier still gets its reload.
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fewer than min_keys 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count_lines(&reloads), 2, "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=1\n/svc/b=2\n")
    );
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(2));
    assert_eq!(count_lines(&reloads), 2, "owed no more");
}

#[test]
fn an_unusable_state_dir_stops_the_start_naming_it_and_the_flag() {
    let etcd = Etcd::start();
    let setup = Setup::new();
    setup.resource("svc", reloading(&setup, "true"));
    let file = setup.out("a-file");
    std::fs::write(&file, "").expect("file");
    let state_dir = file.join("state");
    let state_arg = state_dir.display().to_string();
    for extra in [vec!["--onetime"], vec![]] {
        let mut args = setup.args(&etcd, &["--state-dir", &state_arg]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::run_bin(support::daemon::RECONFIG, &args, SECS);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let log = stderr(&out);
        assert!(
            log.contains(&format!(
                "state directory {state_arg}: cannot create or write it"
            )) && log.contains("pass --state-dir DIR"),
            "{log}"
        );
        assert!(!log.contains("bound:"), "{log}");
    }
}
