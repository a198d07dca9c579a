//! Guards against installing something worse than what is there (`min_keys`, `max_shrink`,
//! `values`, `--force`), on both APIs against a real etcd: the target stays untouched,
//! `--onetime` exits 2, the log says why with the counts, once, and it clears by itself.

mod support;

use serde_json::json;
use std::time::Duration;
use support::daemon::{count_lines, wait_content, Setup};
use support::{both_apis, stderr, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// `svc` on `/svc` (recursive, [`support::daemon::LIST`]) with `guards` added to its fields.
fn guarded(setup: &Setup, guards: serde_json::Value) -> serde_json::Value {
    let mut resource = setup.list_resource("svc", "/svc");
    let (Some(fields), serde_json::Value::Object(extra)) = (resource.as_object_mut(), guards)
    else {
        panic!("objects");
    };
    fields.extend(extra);
    resource
}

both_apis!(min_keys_refuses_a_thinned_tree_until_it_recovers_or_force);
fn min_keys_refuses_a_thinned_tree_until_it_recovers_or_force(api: Api) {
    let etcd = Etcd::start_on(api);
    for (k, v) in [
        ("a", "10.0.0.1:80"),
        ("b", "10.0.0.2:80"),
        ("c", "10.0.0.3:80"),
    ] {
        etcd.put(&format!("/svc/{k}"), v);
    }
    let setup = Setup::new();
    setup.resource("svc", guarded(&setup, json!({"min_keys": 2})));
    let full = "/svc/a=10.0.0.1:80\n/svc/b=10.0.0.2:80\n/svc/c=10.0.0.3:80\n";
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    assert_eq!(support::read(&setup.out("svc.conf")).as_deref(), Some(full));

    etcd.delete("/svc/b", false);
    etcd.delete("/svc/c", false);
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "[svc] render refused, target left unchanged: the watched key holds 1 leaf, \
             fewer than min_keys 2"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(support::read(&setup.out("svc.conf")).as_deref(), Some(full));
    assert_eq!(count_lines(&setup.out("svc.reloads")), 1, "no reload");

    // --force installs what is there, once.
    let out = setup.onetime(&etcd, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force: rendering although"));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=10.0.0.1:80\n")
    );
    // The next run is guarded again; the data recovering clears the refusal.
    etcd.put("/svc/a", "10.0.0.9:80");
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(2));
    etcd.put("/svc/d", "10.0.0.4:80");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=10.0.0.9:80\n/svc/d=10.0.0.4:80\n")
    );
}

both_apis!(max_shrink_remembers_the_installed_leaves_across_runs_and_renames);
fn max_shrink_remembers_the_installed_leaves_across_runs_and_renames(api: Api) {
    let etcd = Etcd::start_on(api);
    for k in ["a", "b", "c", "d"] {
        etcd.put(&format!("/svc/{k}"), "x");
    }
    let setup = Setup::new();
    setup.resource("svc", guarded(&setup, json!({"max_shrink": "50%"})));
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    let four = "/svc/a=x\n/svc/b=x\n/svc/c=x\n/svc/d=x\n";

    for k in ["b", "c", "d"] {
        etcd.delete(&format!("/svc/{k}"), false);
    }
    // A new process (and the conf.d file renamed): the count comes from the state dir.
    std::fs::rename(
        setup.cfgdir().join("conf.d/svc.json"),
        setup.cfgdir().join("conf.d/renamed.json"),
    )
    .expect("rename");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "the watched key holds 1 leaf, the installed file was rendered from 4: \
             dropping 3 is more than max_shrink 50%"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(support::read(&setup.out("svc.conf")).as_deref(), Some(four));

    // Half of them back is a drop of exactly 50%: allowed, and the new baseline.
    etcd.put("/svc/e", "x");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=x\n/svc/e=x\n")
    );
    etcd.delete("/svc/e", false);
    assert_eq!(
        setup.onetime(&etcd, &[]).status.code(),
        Some(0),
        "2 → 1 is 50%"
    );
}

both_apis!(the_daemon_logs_a_refusal_once_per_change_and_recovers_by_itself);
fn the_daemon_logs_a_refusal_once_per_change_and_recovers_by_itself(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    etcd.put("/svc/b", "2");
    let setup = Setup::new();
    setup.resource("svc", guarded(&setup, json!({"min_keys": 2})));
    let target = setup.out("svc.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/svc/a=1\n/svc/b=2\n", SECS));

    etcd.delete("/svc/b", false);
    let refused = "holds 1 leaf, fewer than min_keys 2";
    assert!(daemon.wait_log(refused, SECS), "{}", daemon.log_text());
    // Another change with the same counts: still refused, not logged again.
    etcd.put("/svc/a", "1b");
    etcd.put("/svc/c", "3");
    assert!(wait_content(&target, "/svc/a=1b\n/svc/c=3\n", SECS));
    assert!(daemon.wait_log("recovered", SECS), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert_eq!(log.matches(refused).count(), 1, "{log}");
    // Emptied: a new state (0 leaves) is logged again, with its count.
    etcd.delete("/svc/a", false);
    etcd.delete("/svc/c", false);
    assert!(
        daemon.wait_log("holds 0 leaves, fewer than min_keys 2", SECS),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        support::read(&target).as_deref(),
        Some("/svc/a=1b\n/svc/c=3\n")
    );
}

both_apis!(a_reload_that_succeeds_while_a_pass_is_refused_does_not_end_the_refusal);
/// A reload owed for a file installed earlier fails while a pass is refused, and then
/// succeeds: its success is not taken for a recovery (the refusal stands until a pass
/// succeeds), so "recovered" is logged once, when the data recovers. Before, the failed
/// reload took the "owed despite a failed pass" mark with it, and the next reload's success
/// logged "recovered" while the refusal stood.
fn a_reload_that_succeeds_while_a_pass_is_refused_does_not_end_the_refusal(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    etcd.put("/svc/b", "2");
    let setup = Setup::new();
    let failing = setup.out("reload-fails");
    std::fs::write(&failing, "").expect("marker");
    let reloads = setup.out("svc.reloads");
    let mut resource = guarded(&setup, json!({"min_keys": 2}));
    resource["reloadcmd"] = json!(format!(
        "test ! -e {} || exit 3; echo reload >> {}",
        failing.display(),
        reloads.display()
    ));
    setup.resource("svc", resource);
    let target = setup.out("svc.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/svc/a=1\n/svc/b=2\n", SECS));
    assert!(daemon.wait_log("status 3", SECS), "{}", daemon.log_text());

    etcd.delete("/svc/b", false);
    let refused = "holds 1 leaf, fewer than min_keys 2";
    assert!(daemon.wait_log(refused, SECS), "{}", daemon.log_text());
    // A reload fails after the refusal, then one succeeds.
    let failures_after_refusal = |log: &str| {
        log.split_once(refused)
            .map_or(0, |(_, after)| after.matches("status 3").count())
    };
    assert!(
        support::eventually(SECS, || failures_after_refusal(&daemon.log_text()) >= 1),
        "{}",
        daemon.log_text()
    );
    std::fs::remove_file(&failing).expect("marker");
    assert!(
        support::eventually(SECS, || count_lines(&reloads) >= 1),
        "{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log_text();
    assert!(!log.contains("recovered"), "the refusal stands: {log}");

    etcd.put("/svc/c", "3");
    assert!(wait_content(&target, "/svc/a=1\n/svc/c=3\n", SECS));
    assert!(daemon.wait_log("recovered", SECS), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert_eq!(log.matches(refused).count(), 1, "{log}");
    assert_eq!(log.matches("recovered").count(), 1, "{log}");
}

const INJECTED: &str = "10.0.0.5:80\n  stats enable";

both_apis!(a_value_that_does_not_match_refuses_the_render_naming_its_key);
fn a_value_that_does_not_match_refuses_the_render_naming_its_key(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    etcd.put("/svc/evil", INJECTED);
    let setup = Setup::new();
    setup.resource(
        "svc",
        guarded(&setup, json!({"values": "^[0-9.]+:[0-9]+$"})),
    );
    std::fs::write(setup.out("svc.conf"), "old\n").expect("old");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "render refused, target left unchanged: the value of /svc/evil does not match \
             values \"^[0-9.]+:[0-9]+$\""
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("old\n")
    );

    // --force renders what is there, once the operator has looked at it.
    let out = setup.onetime(&etcd, &["--notreally", "--force"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        support::stdout(&out).contains("+/svc/evil=10.0.0.5:80\n+  stats enable"),
        "{}",
        support::stdout(&out)
    );

    etcd.put("/svc/evil", "10.0.0.5:80");
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=10.0.0.1:80\n/svc/evil=10.0.0.5:80\n")
    );
}

/// `/svc/a` good and `/svc/evil` = [`INJECTED`], watched by a resource that skips values
/// not like `host:port`.
fn a_good_and_an_injected_value_with_skip(api: Api) -> (Etcd, Setup) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    etcd.put("/svc/evil", INJECTED);
    let setup = Setup::new();
    setup.resource(
        "svc",
        guarded(
            &setup,
            json!({"values": "[0-9.]+:[0-9]+", "on_bad_value": "skip"}),
        ),
    );
    (etcd, setup)
}

both_apis!(on_bad_value_skip_renders_without_the_offending_keys);
fn on_bad_value_skip_renders_without_the_offending_keys(api: Api) {
    let (etcd, setup) = a_good_and_an_injected_value_with_skip(api);
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rendering without /svc/evil: the value does not match values"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=10.0.0.1:80\n")
    );
}

both_apis!(the_daemon_logs_skipped_keys_once_per_set_of_keys);
fn the_daemon_logs_skipped_keys_once_per_set_of_keys(api: Api) {
    let (etcd, setup) = a_good_and_an_injected_value_with_skip(api);
    let target = setup.out("svc.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/svc/a=10.0.0.1:80\n", SECS));
    // One bad registration does not hold back the others' updates, nor repeat its warning.
    etcd.put("/svc/b", "10.0.0.2:80");
    assert!(wait_content(
        &target,
        "/svc/a=10.0.0.1:80\n/svc/b=10.0.0.2:80\n",
        SECS
    ));
    etcd.put("/svc/worse", "x; stats enable");
    assert!(
        daemon.wait_log("rendering without /svc/evil, /svc/worse", SECS),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert_eq!(
        log.matches("rendering without /svc/evil:").count(),
        1,
        "{log}"
    );
}

both_apis!(the_daemon_follows_the_leaf_count_a_forced_onetime_installed);
fn the_daemon_follows_the_leaf_count_a_forced_onetime_installed(api: Api) {
    let etcd = Etcd::start_on(api);
    for k in ["a", "b", "c", "d"] {
        etcd.put(&format!("/svc/{k}"), "x");
    }
    let setup = Setup::new();
    setup.resource("svc", guarded(&setup, json!({"max_shrink": "50%"})));
    let target = setup.out("svc.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(
        &target,
        "/svc/a=x\n/svc/b=x\n/svc/c=x\n/svc/d=x\n",
        SECS
    ));
    // Three leaves gone at once (one by one, each step would be within max_shrink).
    etcd.delete("/svc", true);
    etcd.put("/svc/a", "x");
    assert!(
        daemon.wait_log("rendered from 4: dropping 3", SECS),
        "{}",
        daemon.log_text()
    );
    // The operator accepts the smaller tree with a forced run beside the daemon...
    let out = setup.onetime(&etcd, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(support::read(&target).as_deref(), Some("/svc/a=x\n"));
    // ...and the daemon measures the next change against what that run installed.
    etcd.put("/svc/a", "y");
    assert!(
        wait_content(&target, "/svc/a=y\n", SECS),
        "{}",
        daemon.log_text()
    );
}
