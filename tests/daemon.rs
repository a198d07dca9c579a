//! The `reconfig` binary as operators run it: --onetime, --notreally and the daemon,
//! against a real etcd, asserting the files, commands and exit codes they would check.

mod support;

use support::stderr;

use serde_json::json;
use std::time::{Duration, Instant};
use support::daemon::{count_lines, wait_content, Setup};
use support::{both_apis, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

both_apis!(onetime_renders_every_resource_and_exits_zero);
fn onetime_renders_every_resource_and_exits_zero(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/b", "10.0.0.2:80");
    etcd.put("/svc/a", "10.0.0.1:80");
    etcd.put("/leaf", "just me");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    setup.template(
        "leaf.tmpl",
        "<%= reconfig.watched %> is <%= reconfig.data[reconfig.watched] %>\n",
    );
    setup.resource(
        "leaf",
        json!({"key": "/leaf", "source": "leaf.tmpl", "pattern": "<% %>",
        "target": setup.out("leaf.conf")}),
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=10.0.0.1:80\n/svc/b=10.0.0.2:80\n")
    );
    assert_eq!(
        support::read(&setup.out("leaf.conf")).as_deref(),
        Some("/leaf is just me\n")
    );
    assert_eq!(count_lines(&setup.out("svc.reloads")), 1);
    // The log says what was bound and what changed, with the resource id on every line.
    let log = stderr(&out);
    assert!(log.contains("[svc] bound: key /svc (recursive)"), "{log}");
    assert!(log.contains("[svc] changed"), "{log}");
}

both_apis!(onetime_again_with_the_same_data_writes_nothing_and_reloads_nothing);
fn onetime_again_with_the_same_data_writes_nothing_and_reloads_nothing(api: Api) {
    let etcd = Etcd::start_on(api);
    for i in (0..50).rev() {
        etcd.put(&format!("/many/k{i:02}"), &format!("v{i}"));
    }
    let setup = Setup::new();
    setup.resource("many", setup.list_resource("many", "/many"));
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    let target = setup.out("many.conf");
    let before = std::fs::metadata(&target).expect("target");
    std::thread::sleep(Duration::from_millis(20));
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = std::fs::metadata(&target).expect("target");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(
        count_lines(&setup.out("many.reloads")),
        1,
        "no second reload"
    );
}

both_apis!(onetime_with_a_missing_key_fails_and_leaves_the_target_alone);
fn onetime_with_a_missing_key_fails_and_leaves_the_target_alone(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/present/a", "1");
    let setup = Setup::new();
    setup.resource("present", setup.list_resource("present", "/present"));
    setup.resource("absent", setup.list_resource("absent", "/absent"));
    std::fs::write(setup.out("absent.conf"), "old content\n").expect("old");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/absent: watched key does not exist"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        support::read(&setup.out("absent.conf")).as_deref(),
        Some("old content\n")
    );
    assert_eq!(
        support::read(&setup.out("present.conf")).as_deref(),
        Some("/present/a=1\n")
    );
}

#[test]
fn onetime_with_etcd_down_exits_three() {
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let port = support::free_port();
    let out = support::run_bin(
        support::daemon::RECONFIG,
        &[
            "--onetime",
            "--endpoints",
            &format!("http://127.0.0.1:{port}"),
            "-c",
            &setup.cfgdir().display().to_string(),
            "--state-dir",
            &setup.state_dir().display().to_string(),
        ],
        SECS,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
    assert!(!setup.out("svc.conf").exists());
}

both_apis!(notreally_prints_a_diff_and_touches_nothing);
fn notreally_prints_a_diff_and_touches_nothing(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "new");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    std::fs::write(setup.out("svc.conf"), "/svc/a=old\n").expect("old");
    let out = setup.onetime(&etcd, &["--notreally"]);
    // A drift signal for cron and CI: 4 when some file would change.
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dry run: 1 of 1 resources would change"),
        "{}",
        stderr(&out)
    );
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("# svc would change"), "{diff}");
    assert!(diff.contains("-/svc/a=old\n+/svc/a=new\n"), "{diff}");
    assert_eq!(
        support::read(&setup.out("svc.conf")).as_deref(),
        Some("/svc/a=old\n")
    );
    assert!(!setup.out("svc.reloads").exists(), "no command ran");
    // No drift: 0.
    std::fs::write(setup.out("svc.conf"), "/svc/a=new\n").expect("converged");
    let out = setup.onetime(&etcd, &["--notreally"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(support::stdout(&out), "");
}

both_apis!(notreally_runs_src_checks_on_a_copy_and_a_rejected_change_fails);
fn notreally_runs_src_checks_on_a_copy_and_a_rejected_change_fails(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/dry/a", "good");
    etcd.put("/dry2/a", "BAD");
    let setup = Setup::new();
    for name in ["dry", "dry2"] {
        let mut resource = setup.list_resource(name, &format!("/{name}"));
        resource["checkcmd"] = json!("! grep -q BAD \"{{src}}\"");
        setup.resource(name, resource);
        std::fs::write(setup.out(&format!("{name}.conf")), "old\n").expect("old");
    }
    let out = setup.onetime(&etcd, &["--notreally"]);
    // A change its check would reject is a failure (2), not a diff.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let diff = support::stdout(&out);
    assert!(diff.contains("# dry would change"), "{diff}");
    assert!(diff.contains("+/dry/a=good"), "{diff}");
    assert!(
        !diff.contains("dry2"),
        "a rejected change shows no diff: {diff}"
    );
    let log = stderr(&out);
    assert!(
        log.contains(&format!(
            "[dry2] dry run: the change to {} would be rejected",
            setup.out("dry2.conf").display()
        )),
        "{log}"
    );
    for name in ["dry", "dry2"] {
        assert_eq!(
            support::read(&setup.out(&format!("{name}.conf"))).as_deref(),
            Some("old\n")
        );
        assert!(
            !setup.out(&format!("{name}.reloads")).exists(),
            "reload ran"
        );
    }
    assert_eq!(staged_files(&setup.out("")), Vec::<String>::new());
}

both_apis!(prefix_applies_to_key_not_altkeys_and_must_begin_with_slash);
fn prefix_applies_to_key_not_altkeys_and_must_begin_with_slash(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/prod/app/a", "1");
    etcd.put("/shared/x", "2");
    let setup = Setup::new();
    setup.template(
        "alt.tmpl",
        "{{ reconfig.watched }} {{ reconfig.data|tojson }} {{ reconfig.altdata.s|tojson }}\n",
    );
    setup.resource(
        "alt",
        json!({"key": "/app", "recursive": true, "source": "alt.tmpl",
        "altkeys": {"s": "/shared"}, "target": setup.out("alt.conf")}),
    );
    let out = setup.onetime(&etcd, &["--prefix", "/prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("alt.conf")).as_deref(),
        Some("/prod/app {\"/prod/app/a\": \"1\"} {\"/shared/x\": \"2\"}\n")
    );
    let bad = setup.onetime(&etcd, &["--prefix", "prod"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--prefix: \"prod\" must begin with '/'"),
        "{}",
        stderr(&bad)
    );
}

both_apis!(bad_resource_files_are_reported_and_the_good_ones_still_run);
fn bad_resource_files_are_reported_and_the_good_ones_still_run(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "1");
    let setup = Setup::new();
    setup.resource("good", setup.list_resource("good", "/svc"));
    std::fs::write(setup.cfgdir().join("conf.d/broken.json"), "{ not json").expect("broken");
    setup.resource("strbool", json!({"key": "/svc", "recursive": "false", "source": "list.tmpl", "target": setup.out("x.conf")}));
    let out = setup.onetime(&etcd, &[]);
    // The good resource converged, but cron must notice the broken files.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.contains("2 resource file(s) were skipped as invalid"),
        "{log}"
    );
    assert!(log.contains("broken.json"), "{log}");
    assert!(
        log.contains("strbool.json") && log.contains("recursive"),
        "{log}"
    );
    assert_eq!(
        support::read(&setup.out("good.conf")).as_deref(),
        Some("/svc/a=1\n")
    );

    let empty = Setup::new();
    std::fs::write(empty.cfgdir().join("conf.d/broken.json"), "[]").expect("broken");
    let out = empty.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no valid resource"),
        "{}",
        stderr(&out)
    );
}

both_apis!(check_with_src_failing_leaves_the_old_file_and_skips_the_reload);
fn check_with_src_failing_leaves_the_old_file_and_skips_the_reload(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/chk/a", "BAD");
    let setup = Setup::new();
    let mut resource = setup.list_resource("chk", "/chk");
    resource["checkcmd"] = json!("! grep -q BAD {{src}}");
    setup.resource("chk", resource);
    std::fs::write(setup.out("chk.conf"), "known good\n").expect("old");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The resource is named once, by the line's label.
    let failure = format!(
        "ERROR [chk] cannot install {}: the check of the new content failed: command `! grep -q BAD {}",
        setup.out("chk.conf").display(),
        setup.out(".chk.conf.reconfig-").display()
    );
    assert!(stderr(&out).contains(&failure), "{}", stderr(&out));
    assert!(!stderr(&out).contains("resource chk"), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("chk.conf")).as_deref(),
        Some("known good\n")
    );
    assert!(!setup.out("chk.reloads").exists());
    let leftovers: Vec<_> = std::fs::read_dir(setup.out(""))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("reconfig"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    etcd.put("/chk/a", "GOOD");
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    assert_eq!(
        support::read(&setup.out("chk.conf")).as_deref(),
        Some("/chk/a=GOOD\n")
    );
    assert_eq!(count_lines(&setup.out("chk.reloads")), 1);
}

both_apis!(check_against_the_target_failing_restores_the_previous_content);
fn check_against_the_target_failing_restores_the_previous_content(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/chk2/a", "BAD");
    let setup = Setup::new();
    let target = setup.out("chk2.conf");
    let mut resource = setup.list_resource("chk2", "/chk2");
    resource["checkcmd"] = json!(format!("! grep -q BAD {}", target.display()));
    setup.resource("chk2", resource);
    std::fs::write(&target, "known good\n").expect("old");
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(support::read(&target).as_deref(), Some("known good\n"));
    assert!(!setup.out("chk2.reloads").exists());
}

both_apis!(a_symlinked_target_keeps_its_link);
fn a_symlinked_target_keeps_its_link(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/ln/a", "1");
    let setup = Setup::new();
    let real_dir = setup.out("real");
    std::fs::create_dir_all(&real_dir).expect("real dir");
    std::fs::write(real_dir.join("file.conf"), "old\n").expect("old");
    std::os::unix::fs::symlink(real_dir.join("file.conf"), setup.out("ln.conf")).expect("symlink");
    setup.resource("ln", setup.list_resource("ln", "/ln"));
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(setup.out("ln.conf"))
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        support::read(&real_dir.join("file.conf")).as_deref(),
        Some("/ln/a=1\n")
    );
}

both_apis!(daemon_follows_changes_deletes_and_recreation);
fn daemon_follows_changes_deletes_and_recreation(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/d/a", "1");
    let setup = Setup::new();
    setup.resource("d", setup.list_resource("d", "/d"));
    let target = setup.out("d.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/d/a=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/d/b", "2");
    assert!(
        wait_content(&target, "/d/a=1\n/d/b=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    // The watched tree disappears: the target stays as it was, with a warning.
    etcd.delete("/d", true);
    assert!(
        daemon.wait_log("watched key does not exist", SECS),
        "{}",
        daemon.log_text()
    );
    assert_eq!(support::read(&target).as_deref(), Some("/d/a=1\n/d/b=2\n"));
    // ... and its re-creation is rendered.
    etcd.put("/d/c", "3");
    assert!(
        wait_content(&target, "/d/c=3\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.wait_log("recovered", SECS), "{}", daemon.log_text());
}

both_apis!(back_to_back_writes_all_arrive);
fn back_to_back_writes_all_arrive(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/b2b/n", "0");
    let setup = Setup::new();
    setup.resource("b2b", setup.list_resource("b2b", "/b2b"));
    let target = setup.out("b2b.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/b2b/n=0\n", SECS));
    let client = etcd.kv();
    for i in 1..=50 {
        client.put("/b2b/n", &i.to_string(), None).expect("set");
    }
    assert!(
        wait_content(&target, "/b2b/n=50\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(a_write_during_the_reload_delay_is_not_lost);
fn a_write_during_the_reload_delay_is_not_lost(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/splay/v", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("splay", "/splay");
    resource["splay"] = json!(1.5);
    setup.resource("splay", resource);
    let target = setup.out("splay.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/splay/v=1\n", SECS));
    // The daemon is now waiting out the splay before its first reload; write meanwhile.
    etcd.put("/splay/v", "2");
    assert!(
        wait_content(&target, "/splay/v=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        support::eventually(SECS, || count_lines(&setup.out("splay.reloads")) == 2),
        "{}",
        daemon.log_text()
    );
}

both_apis!(a_write_during_the_startup_pass_is_not_lost);
fn a_write_during_the_startup_pass_is_not_lost(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/boot/v", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("boot", "/boot");
    // A slow check holds the first pass open; the write lands while it runs.
    let started = setup.out("check-started");
    resource["checkcmd"] = json!(format!("touch {}; sleep 1", started.display()));
    setup.resource("boot", resource);
    let target = setup.out("boot.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(support::eventually(SECS, || started.exists()));
    etcd.put("/boot/v", "2");
    assert!(
        wait_content(&target, "/boot/v=2\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(a_key_recreated_during_an_error_pause_is_rendered);
fn a_key_recreated_during_an_error_pause_is_rendered(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/pause/v", "BAD");
    let setup = Setup::new();
    let mut resource = setup.list_resource("pause", "/pause");
    resource["checkcmd"] = json!("! grep -q BAD {{src}}");
    setup.resource("pause", resource);
    let target = setup.out("pause.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(daemon.wait_log("check", SECS), "{}", daemon.log_text());
    etcd.delete("/pause", true);
    etcd.put("/pause/v", "GOOD");
    assert!(
        wait_content(&target, "/pause/v=GOOD\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(sigterm_during_a_long_poll_stops_within_a_second);
fn sigterm_during_a_long_poll_stops_within_a_second(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/term/a", "1");
    let setup = Setup::new();
    setup.resource("term", setup.list_resource("term", "/term"));
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("term.conf"), "/term/a=1\n", SECS));
    std::thread::sleep(Duration::from_millis(300));
    let (out, took) = daemon.terminate();
    assert_eq!(out.status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

both_apis!(sigterm_during_a_splay_stops_within_a_second);
fn sigterm_during_a_splay_stops_within_a_second(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/ts/a", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("ts", "/ts");
    resource["splay"] = json!(30);
    setup.resource("ts", resource);
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("ts.conf"), "/ts/a=1\n", SECS));
    let (out, took) = daemon.terminate();
    assert_eq!(out.status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

both_apis!(sighup_picks_up_an_added_resource_and_drops_a_removed_one);
fn sighup_picks_up_an_added_resource_and_drops_a_removed_one(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/one/a", "1");
    etcd.put("/two/a", "2");
    let setup = Setup::new();
    setup.resource("one", setup.list_resource("one", "/one"));
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("one.conf"), "/one/a=1\n", SECS));
    setup.resource("two", setup.list_resource("two", "/two"));
    std::fs::remove_file(setup.cfgdir().join("conf.d/one.json")).expect("remove");
    daemon.signal(libc::SIGHUP);
    assert!(
        wait_content(&setup.out("two.conf"), "/two/a=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/one/a", "changed");
    etcd.put("/two/a", "changed");
    assert!(wait_content(
        &setup.out("two.conf"),
        "/two/a=changed\n",
        SECS
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        support::read(&setup.out("one.conf")).as_deref(),
        Some("/one/a=1\n"),
        "removed resource still watched"
    );
    assert!(daemon.is_running());
}

both_apis!(sigusr1_toggles_debug_logging);
fn sigusr1_toggles_debug_logging(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/dbg/a", "1");
    let setup = Setup::new();
    setup.resource("dbg", setup.list_resource("dbg", "/dbg"));
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("dbg.conf"), "/dbg/a=1\n", SECS));
    etcd.put("/dbg/a", "2");
    assert!(wait_content(&setup.out("dbg.conf"), "/dbg/a=2\n", SECS));
    assert!(!daemon.log_text().contains("DEBUG"), "debug off by default");
    daemon.signal(libc::SIGUSR1);
    assert!(daemon.wait_log("debug logging on", SECS));
    etcd.put("/dbg/a", "3");
    assert!(
        daemon.wait_log("DEBUG [dbg] change at index", SECS),
        "{}",
        daemon.log_text()
    );
    // The pass of "3" ends with its reload (the first render reloaded too): only then can no
    // line of it be logged after the second SIGUSR1.
    let reloads = setup.out("dbg.reloads");
    assert!(support::eventually(SECS, || count_lines(&reloads) == 3));

    daemon.signal(libc::SIGUSR1);
    assert!(daemon.wait_log("debug logging off", SECS));
    etcd.put("/dbg/a", "4");
    assert!(wait_content(&setup.out("dbg.conf"), "/dbg/a=4\n", SECS));
    assert!(support::eventually(SECS, || count_lines(&reloads) == 4));
    let log = daemon.log_text();
    let (_, after_off) = log.split_once("debug logging off").expect("logged above");
    assert!(
        !after_off.contains("DEBUG"),
        "debug lines after the second SIGUSR1:\n{log}"
    );
}

both_apis!(the_same_key_may_feed_several_resources);
fn the_same_key_may_feed_several_resources(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/pool/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.resource("haproxy", setup.list_resource("haproxy", "/pool"));
    setup.resource("nginx", setup.list_resource("nginx", "/pool"));
    let daemon = setup.daemon(&etcd, &[]);
    etcd.put("/pool/b", "10.0.0.2:80");
    let want = "/pool/a=10.0.0.1:80\n/pool/b=10.0.0.2:80\n";
    assert!(
        wait_content(&setup.out("haproxy.conf"), want, SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        wait_content(&setup.out("nginx.conf"), want, SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(wait_coalesces_a_burst_into_few_reloads);
fn wait_coalesces_a_burst_into_few_reloads(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/burst/n", "0");
    let setup = Setup::new();
    let mut resource = setup.list_resource("burst", "/burst");
    resource["wait"] = json!({"min": "300ms", "max": "5s"});
    setup.resource("burst", resource);
    let target = setup.out("burst.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/burst/n=0\n", SECS));
    let client = etcd.kv();
    let began = Instant::now();
    for i in 1..=100 {
        client.put("/burst/n", &i.to_string(), None).expect("set");
    }
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "writes too slow for this test"
    );
    assert!(
        wait_content(&target, "/burst/n=100\n", SECS),
        "{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let reloads = count_lines(&setup.out("burst.reloads"));
    assert!(reloads <= 3, "{reloads} reloads for one burst");
}

/// Names of reconfig's temp files in `dir`.
fn staged_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".reconfig-"))
                .collect()
        })
        .unwrap_or_default()
}

both_apis!(onetime_beside_a_running_daemon_leaves_its_staged_file_alone);
fn onetime_beside_a_running_daemon_leaves_its_staged_file_alone(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/cron/a", "1");
    let setup = Setup::new();
    let target = setup.out("cron.conf");
    let mut resource = setup.list_resource("cron", "/cron");
    resource["checkcmd"] = json!("sleep 3; cat {{src}}");
    setup.resource("cron", resource);
    // Already converged: the daemon's first pass runs no check.
    std::fs::write(&target, "/cron/a=1\n").expect("old");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        daemon.wait_log("watching 1 resource", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/cron/a", "2");
    // The daemon's check runs on its staged file for 3 s; cron's --onetime starts meanwhile.
    assert!(
        support::eventually(SECS, || !staged_files(&setup.out("")).is_empty()),
        "{}",
        daemon.log_text()
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("removed"),
        "onetime removed the daemon's staged file: {}",
        stderr(&out)
    );
    assert!(
        daemon.wait_log("check ok", SECS),
        "the daemon's check failed: {}",
        daemon.log_text()
    );
    assert!(!daemon
        .log_text()
        .contains("check of the new content failed"));
    assert_eq!(support::read(&target).as_deref(), Some("/cron/a=2\n"));
}

both_apis!(quoted_placeholders_work_for_a_target_dir_with_a_space_and_a_quote);
fn quoted_placeholders_work_for_a_target_dir_with_a_space_and_a_quote(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/q/a", "1");
    let setup = Setup::new();
    let dir = setup.out("my app's dir");
    std::fs::create_dir(&dir).expect("dir");
    let target = dir.join("q.conf");
    let mut resource = setup.list_resource_at("q", "/q", &target);
    // As confd users write it, and single-quoted.
    resource["checkcmd"] = json!("test -s \"{{src}}\" && grep -q /q/a '{{src}}'");
    resource["reloadcmd"] = json!(format!(
        "cp \"{{{{target}}}}\" {}",
        setup.out("reloaded").display()
    ));
    setup.resource("q", resource);
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(support::read(&target).as_deref(), Some("/q/a=1\n"));
    assert_eq!(
        support::read(&setup.out("reloaded")).as_deref(),
        Some("/q/a=1\n")
    );
    // A failing check shows the command as run, with the real paths.
    etcd.put("/q/a", "2");
    let mut resource = setup.list_resource_at("q", "/q", &target);
    resource["checkcmd"] = json!("grep -q /q/a=1 \"{{src}}\"");
    setup.resource("q", resource);
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let staged = dir.join(".q.conf.reconfig-");
    assert!(
        stderr(&out).contains(&format!("command `grep -q /q/a=1 \"{}", staged.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(support::read(&target).as_deref(), Some("/q/a=1\n"));
}
