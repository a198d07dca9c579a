//! The daemon's shape: one watch per key shared by its resources, passes on pools, commands
//! that do not hold up other resources' files, changes during a pass applied after it.

mod support;

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use support::daemon::{count_lines, wait_content, Setup};
use support::observe::{connections_to, threads};
use support::{both_apis, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

both_apis!(a_hundred_resources_on_one_key_share_one_watch_and_a_few_threads);
fn a_hundred_resources_on_one_key_share_one_watch_and_a_few_threads(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/many/a", "1");
    let setup = Setup::new();
    let names: Vec<String> = (0..100).map(|n| format!("r{n:03}")).collect();
    for name in &names {
        setup.resource(name, setup.list_resource(name, "/many"));
    }
    let daemon = setup.daemon(&etcd, &[]);
    let all_are = |content: &str| {
        names
            .iter()
            .all(|name| wait_content(&setup.out(&format!("{name}.conf")), content, SECS))
    };
    assert!(all_are("/many/a=1\n"), "{}", daemon.log_text());
    etcd.put("/many/b", "2");
    assert!(all_are("/many/a=1\n/many/b=2\n"), "{}", daemon.log_text());
    let reloaded = || {
        names
            .iter()
            .all(|name| count_lines(&setup.out(&format!("{name}.reloads"))) == 2)
    };
    assert!(support::eventually(SECS, reloaded), "{}", daemon.log_text());
    // Idle: one long-poll (v2) or watch stream (v3) for the key, not one per resource; and
    // a watch thread, a scheduler and the pools, not a thread per resource. On v3 the
    // stream has a connection of its own (closing it alone is how a replaced stream ends
    // at once), beside the pooled one the key's read used.
    let port = etcd.client_port;
    let connections = match api {
        Api::V2 => 1,
        Api::V3 => 2,
    };
    let (mut seen_threads, mut seen_connections) = (0, 0);
    let settled = support::eventually(SECS, || {
        seen_threads = threads(daemon.pid());
        seen_connections = connections_to(daemon.pid(), port);
        seen_threads <= 16 && seen_connections == connections
    });
    assert!(
        settled,
        "{seen_threads} threads, {seen_connections} connections to etcd"
    );
}

/// A reload command that marks its start in `out/<name>.started`, then sleeps.
fn slow_reload(setup: &Setup, name: &str, seconds: u32) -> String {
    format!(
        "touch {started}; sleep {seconds}; echo reload >> {log}",
        started = setup.out(&format!("{name}.started")).display(),
        log = setup.out(&format!("{name}.reloads")).display()
    )
}

/// How long `/NAME/v = VALUE` takes to reach `NAME.conf` (a list resource of that name).
fn time_to_file(
    etcd: &Etcd,
    setup: &Setup,
    daemon: &support::daemon::Daemon,
    name: &str,
    value: &str,
) -> Duration {
    let changed = Instant::now();
    etcd.put(&format!("/{name}/v"), value);
    assert!(
        wait_content(
            &setup.out(&format!("{name}.conf")),
            &format!("/{name}/v={value}\n"),
            SECS
        ),
        "{}",
        daemon.log_text()
    );
    changed.elapsed()
}

fn wait_exists(path: &Path) -> bool {
    support::eventually(SECS, || path.exists())
}

both_apis!(a_long_reload_does_not_delay_another_resources_file);
fn a_long_reload_does_not_delay_another_resources_file(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/fast/v", "1");
    let setup = Setup::new();
    setup.resource("fast", setup.list_resource("fast", "/fast"));
    let daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&setup.out("fast.conf"), "/fast/v=1\n", SECS));
    // Three resources on another key whose reloads take 5 s each, running now.
    for name in ["slow1", "slow2", "slow3"] {
        let mut resource = setup.list_resource(name, "/slow");
        resource["reloadcmd"] = json!(slow_reload(&setup, name, 5));
        setup.resource(name, resource);
    }
    drop(daemon);
    etcd.put("/slow/v", "1");
    let daemon = setup.daemon(&etcd, &[]);
    for name in ["slow1", "slow2", "slow3"] {
        assert!(
            wait_exists(&setup.out(&format!("{name}.started"))),
            "{}",
            daemon.log_text()
        );
    }
    let took = time_to_file(&etcd, &setup, &daemon, "fast", "2");
    assert!(
        took < Duration::from_secs(3),
        "the file took {took:?}, as long as the other resources' reloads"
    );
    assert_eq!(
        count_lines(&setup.out("slow1.reloads")),
        0,
        "still reloading"
    );
}

both_apis!(a_change_during_a_running_reload_is_applied_after_it);
fn a_change_during_a_running_reload_is_applied_after_it(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/busy/v", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("busy", "/busy");
    resource["reloadcmd"] = json!(slow_reload(&setup, "busy", 2));
    setup.resource("busy", resource);
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_exists(&setup.out("busy.started")),
        "{}",
        daemon.log_text()
    );
    // The first pass is in its reload: the change waits for it, and is not lost.
    etcd.put("/busy/v", "2");
    assert!(
        wait_content(&setup.out("busy.conf"), "/busy/v=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        support::eventually(SECS, || count_lines(&setup.out("busy.reloads")) == 2),
        "{}",
        daemon.log_text()
    );
}

both_apis!(sighup_during_a_reload_lets_it_finish_and_the_new_generation_follows);
fn sighup_during_a_reload_lets_it_finish_and_the_new_generation_follows(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/hup/v", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("hup", "/hup");
    resource["reloadcmd"] = json!(slow_reload(&setup, "hup", 2));
    setup.resource("hup", resource);
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_exists(&setup.out("hup.started")),
        "{}",
        daemon.log_text()
    );
    daemon.signal(libc::SIGHUP);
    // The reload that was running when SIGHUP came is not killed: it ends and logs.
    assert!(
        support::eventually(SECS, || count_lines(&setup.out("hup.reloads")) == 1),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon.wait_log("now watching 1 resource(s)", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/hup/v", "2");
    assert!(
        wait_content(&setup.out("hup.conf"), "/hup/v=2\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(an_install_does_not_wait_for_its_reload_queued_behind_slow_ones);
fn an_install_does_not_wait_for_its_reload_queued_behind_slow_ones(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/slow/v", "1");
    let setup = Setup::new();
    // More slow reloads than the daemon runs at once.
    let slow: Vec<String> = (1..=6).map(|n| format!("slow{n}")).collect();
    for name in &slow {
        let mut resource = setup.list_resource(name, "/slow");
        resource["reloadcmd"] = json!(slow_reload(&setup, name, 4));
        setup.resource(name, resource);
    }
    setup.resource("fast", setup.list_resource("fast", "/fast"));
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        support::eventually(SECS, || slow
            .iter()
            .filter(|name| setup.out(&format!("{name}.started")).exists())
            .count()
            >= 4),
        "{}",
        daemon.log_text()
    );
    // The fast resource's first file: its reload waits behind the slow ones.
    etcd.put("/fast/v", "1");
    assert!(
        wait_content(&setup.out("fast.conf"), "/fast/v=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    let took = time_to_file(&etcd, &setup, &daemon, "fast", "2");
    assert!(
        took < Duration::from_secs(2),
        "the file took {took:?}, waiting for the reloads queued before its own"
    );
    assert_eq!(count_lines(&setup.out("fast.reloads")), 0, "still queued");
    // Both installs are reloaded in the end.
    assert!(
        support::eventually(Duration::from_secs(30), || count_lines(
            &setup.out("fast.reloads")
        ) == 2),
        "{}",
        daemon.log_text()
    );
}

both_apis!(a_reload_failing_again_and_again_does_not_hold_up_the_next_change);
fn a_reload_failing_again_and_again_does_not_hold_up_the_next_change(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/fails/v", "1");
    let setup = Setup::new();
    let mut resource = setup.list_resource("fails", "/fails");
    let attempts = setup.out("fails.attempts");
    resource["reloadcmd"] = json!(format!("echo x >> {}; exit 1", attempts.display()));
    setup.resource("fails", resource);
    let daemon = setup.daemon(&etcd, &[]);
    // Four failures: the next retry is 4 s (± 20 %) away.
    assert!(
        support::eventually(SECS, || count_lines(&attempts) >= 4),
        "{}",
        daemon.log_text()
    );
    let took = time_to_file(&etcd, &setup, &daemon, "fails", "2");
    assert!(
        took < Duration::from_secs(2),
        "the change waited {took:?} for the failed reload's retry"
    );
}

/// Seconds since the epoch on each line of a marker file that `date +%s.%N` appended to.
fn timestamps(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

both_apis!(reloads_closer_than_min_reload_interval_are_deferred_to_one_at_the_windows_end);
fn reloads_closer_than_min_reload_interval_are_deferred_to_one_at_the_windows_end(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/paced/v", "0");
    let setup = Setup::new();
    let mut resource = setup.list_resource("paced", "/paced");
    let reloads = setup.out("paced.reloads");
    let installs = setup.out("paced.installs");
    // A checkcmd without {{src}} runs right after each install.
    resource["checkcmd"] = json!(format!("date +%s.%N >> {}", installs.display()));
    resource["reloadcmd"] = json!(format!("date +%s.%N >> {}", reloads.display()));
    resource["min_reload_interval"] = json!("2s");
    setup.resource("paced", resource);
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        support::eventually(SECS, || count_lines(&reloads) == 1),
        "{}",
        daemon.log_text()
    );
    for value in ["1", "2", "3"] {
        etcd.put("/paced/v", value);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        wait_content(&setup.out("paced.conf"), "/paced/v=3\n", SECS),
        "{}",
        daemon.log_text()
    );
    // The last reload comes at the latest 2 s after the first; wait past that, and past
    // the window a further reload would have to respect.
    assert!(
        support::eventually(SECS, || timestamps(&reloads).last()
            >= timestamps(&installs).last()),
        "no reload after the last install\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let reloaded = timestamps(&reloads);
    let installed = timestamps(&installs);
    assert!(
        (2..=3).contains(&reloaded.len()),
        "the first reload and at most 2 for the 3 changes, got {reloaded:?}\n{}",
        daemon.log_text()
    );
    assert!(
        reloaded.last() >= installed.last(),
        "{reloaded:?} {installed:?}"
    );
    for pair in reloaded.windows(2) {
        // Each timestamp is taken by the reload command a few milliseconds after reconfig
        // started it; the starts themselves are at least 2 s apart.
        assert!(
            pair[1] - pair[0] >= 1.9,
            "reloads {reloaded:?} closer than min_reload_interval\n{}",
            daemon.log_text()
        );
    }
    assert!(
        daemon.log_text().contains("deferred"),
        "{}",
        daemon.log_text()
    );
}
