//! The daemon's install and commands under faults: SIGKILL during applies, a read-only or
//! full file system, a directory where the target was, commands that hang, fork hanging
//! children or print megabytes, and a burst of 1000 updates. The target is always a whole
//! old or new file, errors say what to do, and the daemon recovers by itself once fixed.

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::daemon::{count_lines, wait_content, Daemon, Setup};
use support::Etcd;

const CONVERGE: Duration = Duration::from_secs(30);

fn assert_alive(daemon: &mut Daemon) {
    assert!(daemon.is_running(), "daemon died:\n{}", daemon.log_text());
}

/// Names in `dir` that look like reconfig's temp files (`.<name>.reconfig-<pid>-<n>.tmp`).
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".reconfig-") && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A small tmpfs mounted for one test; unmounted on drop, also when the test panics.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).expect("mount point");
        run_mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            &path,
        );
        Tmpfs { path }
    }

    fn remount(&self, option: &str) {
        run_mount(&["-o", &format!("remount,{option}")], &self.path);
    }
}

fn run_mount(args: &[&str], path: &Path) {
    let status = Command::new("mount")
        .args(args)
        .arg(path)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} {} failed", path.display());
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The content rendered for `value` by the big template of the SIGKILL test (~110 KB, so
/// a kill has a fair chance to land while it is written).
fn big_content(value: &str) -> String {
    let mut text = String::new();
    for i in 0..4000 {
        text.push_str(&format!("line {i} {value}\n"));
    }
    text.push_str("END\n");
    text
}

#[test]
fn sigkill_at_random_points_never_leaves_a_partial_file_or_temp_files_after_restart() {
    let etcd = Etcd::start();
    etcd.put("/kill/v", "v0");
    let setup = Setup::new();
    setup.template(
        "big.tmpl",
        "{% for i in range(4000) %}line {{ i }} {{ reconfig.data['/kill/v'] }}\n{% endfor %}END\n",
    );
    let target = setup.out("kill.conf");
    setup.resource(
        "kill",
        json!({
            "id": "kill", "key": "/kill/v", "source": "big.tmpl", "target": target,
            "checkcmd": "test -s {{src}}",
            "reloadcmd": format!("echo reload >> {}", setup.out("kill.reloads").display()),
        }),
    );
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut saw_old, mut saw_new, mut saw_temp) = (0, 0, 0);
    let rounds = 30;
    for round in 1..=rounds {
        let old = big_content(&format!("v{}", round - 1));
        let daemon = setup.daemon(&etcd, &[]);
        assert!(
            wait_content(&target, &old, CONVERGE),
            "round {round}: {}",
            daemon.log_text()
        );
        // The restart cleaned up whatever the previous kill left.
        assert_eq!(temp_files(&setup.out("")), Vec::<String>::new());
        let new_value = format!("v{round}");
        etcd.put("/kill/v", &new_value);
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis((seed >> 33) % 60));
        daemon.signal(libc::SIGKILL);
        drop(daemon);
        let content = std::fs::read_to_string(&target).expect("target exists");
        if content == old {
            saw_old += 1;
        } else if content == big_content(&new_value) {
            saw_new += 1;
        } else {
            panic!(
                "round {round}: partial target ({} bytes): ...{:?}",
                content.len(),
                &content[content.len().saturating_sub(40)..]
            );
        }
        if !temp_files(&setup.out("")).is_empty() {
            saw_temp += 1;
        }
        if content == old {
            // The next round starts from the new value either way.
            let daemon = setup.daemon(&etcd, &[]);
            assert!(wait_content(&target, &big_content(&new_value), CONVERGE));
            daemon.signal(libc::SIGKILL);
        }
    }
    eprintln!(
        "{rounds} kills: old content {saw_old}, new content {saw_new}, temp file left {saw_temp}"
    );
    let last = setup.daemon(&etcd, &[]);
    assert!(wait_content(
        &target,
        &big_content(&format!("v{rounds}")),
        CONVERGE
    ));
    assert_eq!(temp_files(&setup.out("")), Vec::<String>::new());
    drop(last);
}

/// The shared shape of the file-system fault tests: converge on v1, break, write v2,
/// expect `message` in the log and the old file, fix, expect v2 with no further change.
fn break_and_recover(
    setup: &Setup,
    etcd: &Etcd,
    target: &Path,
    v2: &str,
    message: &str,
    break_it: impl FnOnce(),
    fix_it: impl FnOnce(),
) {
    let mut daemon = setup.daemon(etcd, &[]);
    let v1_content = "/fs/v=v1\n";
    assert!(
        wait_content(target, v1_content, CONVERGE),
        "{}",
        daemon.log_text()
    );
    break_it();
    etcd.put("/fs/v", v2);
    assert!(daemon.wait_log(message, CONVERGE), "{}", daemon.log_text());
    let reloads = count_lines(&setup.out("fs.reloads"));
    assert_alive(&mut daemon);
    fix_it();
    assert!(
        wait_content(target, &format!("/fs/v={v2}\n"), CONVERGE),
        "not retried after the fix:\n{}",
        daemon.log_text()
    );
    assert!(daemon.wait_log("recovered", CONVERGE));
    assert!(support::eventually(CONVERGE, || count_lines(
        &setup.out("fs.reloads")
    ) == reloads + 1));
    assert_eq!(
        temp_files(target.parent().expect("dir")),
        Vec::<String>::new()
    );
    assert_alive(&mut daemon);
}

#[test]
fn a_read_only_target_directory_keeps_the_file_and_recovers_when_writable() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a read-only file system");
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/fs/v", "v1");
    let setup = Setup::new();
    let mount = Tmpfs::mount(setup.out("ro"), "1m");
    let target = mount.path.join("fs.conf");
    setup.resource("fs", setup.list_resource_at("fs", "/fs", &target));
    break_and_recover(
        &setup,
        &etcd,
        &target,
        "v2",
        "The file system is mounted read-only; remount it read-write",
        || mount.remount("ro"),
        || mount.remount("rw"),
    );
}

#[test]
fn a_full_disk_keeps_the_file_and_recovers_when_space_is_freed() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/fs/v", "v1");
    let setup = Setup::new();
    let mount = Tmpfs::mount(setup.out("full"), "64k");
    let target = mount.path.join("fs.conf");
    setup.resource("fs", setup.list_resource_at("fs", "/fs", &target));
    let filler = mount.path.join("filler");
    let big = "x".repeat(32 * 1024);
    break_and_recover(
        &setup,
        &etcd,
        &target,
        &big,
        "Free space on that file system",
        || {
            // Fill the file system to the last byte.
            let mut data = vec![b'f'; 4096];
            use std::io::Write;
            let mut file = std::fs::File::create(&filler).expect("filler");
            while file.write_all(&data).is_ok() {}
            data.truncate(1);
            while file.write_all(&data).is_ok() {}
        },
        || std::fs::remove_file(&filler).expect("free space"),
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("target").len(),
        "/fs/v=\n".len() + big.len()
    );
}

#[test]
fn a_directory_in_place_of_the_target_is_left_alone_and_the_file_returns_when_it_goes() {
    let etcd = Etcd::start();
    etcd.put("/fs/v", "v1");
    let setup = Setup::new();
    let target = setup.out("fs.conf");
    setup.resource("fs", setup.list_resource_at("fs", "/fs", &target));
    let keep = target.join("operator-data");
    break_and_recover(
        &setup,
        &etcd,
        &target,
        "v2",
        "is a directory",
        || {
            std::fs::remove_file(&target).expect("remove target");
            std::fs::create_dir(&target).expect("dir in its place");
            std::fs::write(&keep, "mine").expect("file in the dir");
        },
        || {
            assert_eq!(std::fs::read_to_string(&keep).expect("untouched"), "mine");
            std::fs::remove_dir_all(&target).expect("remove the dir");
        },
    );
}

fn pid_alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by its new parent) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    let mut pid = 0;
    assert!(support::eventually(CONVERGE, || {
        pid = support::read(path)
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    }));
    pid
}

#[test]
fn a_hanging_check_is_killed_at_the_timeout_and_the_daemon_carries_on() {
    let etcd = Etcd::start();
    etcd.put("/hc/v", "v1");
    let setup = Setup::new();
    let target = setup.out("hc.conf");
    let hang = setup.out("hang");
    std::fs::write(&hang, "").expect("hang marker");
    let mut resource = setup.list_resource_at("hc", "/hc", &target);
    resource["timeout"] = json!("1s");
    resource["checkcmd"] = json!(format!("if [ -e {} ]; then sleep 1000; fi", hang.display()));
    setup.resource("hc", resource);
    std::fs::write(&target, "before\n").expect("old");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(
        daemon.wait_log("timed out after 1s", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert_eq!(support::read(&target).as_deref(), Some("before\n"));
    assert!(!setup.out("hc.reloads").exists());
    assert_alive(&mut daemon);
    std::fs::remove_file(&hang).expect("unhang");
    assert!(
        wait_content(&target, "/hc/v=v1\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(support::eventually(CONVERGE, || count_lines(
        &setup.out("hc.reloads")
    ) == 1));
}

#[test]
fn a_reload_forking_a_hanging_child_is_killed_with_its_process_group() {
    let etcd = Etcd::start();
    etcd.put("/hr/v", "v1");
    let setup = Setup::new();
    let target = setup.out("hr.conf");
    let child_pid = setup.out("child.pid");
    let mut resource = setup.list_resource_at("hr", "/hr", &target);
    resource["timeout"] = json!("1s");
    resource["reloadcmd"] = json!(format!(
        "sleep 1000 & echo $! > {}; wait",
        child_pid.display()
    ));
    setup.resource("hr", resource);
    let mut daemon = setup.daemon(&etcd, &[]);
    let pid = read_pid(&child_pid);
    assert!(
        daemon.wait_log("timed out after 1s", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert!(
        support::eventually(CONVERGE, || !pid_alive(pid)),
        "the forked child {pid} survived the timeout"
    );
    // The file is installed; the failed reload is retried (and times out again).
    assert_eq!(support::read(&target).as_deref(), Some("/hr/v=v1\n"));
    assert_alive(&mut daemon);
    etcd.put("/hr/v", "v2");
    assert!(
        wait_content(&target, "/hr/v=v2\n", CONVERGE),
        "{}",
        daemon.log_text()
    );
    assert_alive(&mut daemon);
}

/// The fixture's promise (issue 10, bug 7): a test leaves no process behind. Here the check
/// hangs in a session of its own and ignores SIGTERM, out of reach of the daemon's own
/// clean-up: dropping the daemon must still kill it.
#[test]
fn a_dropped_daemon_leaves_not_even_an_escaped_command_running() {
    let etcd = Etcd::start();
    etcd.put("/esc/v", "v1");
    let setup = Setup::new();
    let pidfile = setup.out("escaped.pid");
    let mut resource = setup.list_resource("esc", "/esc");
    resource["timeout"] = json!("60s");
    resource["checkcmd"] = json!(format!(
        "setsid sh -c \"trap '' TERM; echo \\$\\$ > {}; exec sleep 1000\" & wait",
        pidfile.display()
    ));
    setup.resource("esc", resource);
    let daemon = setup.daemon(&etcd, &[]);
    let escaped = read_pid(&pidfile);
    assert!(pid_alive(escaped), "{}", daemon.log_text());
    drop(daemon);
    assert!(
        support::eventually(Duration::from_secs(5), || !pid_alive(escaped)),
        "the check's process {escaped} outlived its daemon"
    );
}

#[test]
fn megabytes_of_command_output_are_truncated_in_the_log() {
    let etcd = Etcd::start();
    etcd.put("/mb/v", "v1");
    let setup = Setup::new();
    let target = setup.out("mb.conf");
    let mut resource = setup.list_resource_at("mb", "/mb", &target);
    resource["checkcmd"] =
        json!("test -s {{src}}; head -c 5000000 /dev/zero | tr '\\0' o >&2; exit 1");
    setup.resource("mb", resource);
    std::fs::write(&target, "before\n").expect("old");
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(
        daemon.wait_log("bytes truncated", CONVERGE),
        "{}",
        daemon.log_text()
    );
    // Checked before the install ({{src}}): the target was never touched.
    assert_eq!(support::read(&target).as_deref(), Some("before\n"));
    // A persisting failure is logged once, truncated: far less than the 5 MB printed,
    // however many retries the backoff makes meanwhile (0.5 s, 1 s, 2 s ...).
    std::thread::sleep(Duration::from_secs(4));
    let size = std::fs::metadata(&daemon.log).expect("log").len();
    assert!(size < 100 * 1024, "log is {size} bytes");
    assert_eq!(
        daemon.log_text().matches("bytes truncated").count(),
        1,
        "logged once"
    );
    assert_alive(&mut daemon);
}

#[test]
fn a_burst_of_1000_updates_with_wait_costs_one_install_and_ends_in_the_right_content() {
    let etcd = Etcd::start();
    etcd.put("/burst/n", "0");
    let setup = Setup::new();
    let target = setup.out("burst.conf");
    let mut resource = setup.list_resource_at("burst", "/burst", &target);
    // A quiet second ends the burst; 20 s bounds it.
    resource["wait"] = json!({"min": "1s", "max": "20s"});
    setup.resource("burst", resource);
    let mut daemon = setup.daemon(&etcd, &[]);
    assert!(wait_content(&target, "/burst/n=0\n", CONVERGE));
    let client = etcd.client();
    let began = Instant::now();
    for i in 1..=1000 {
        let key = format!("/burst/k{}", i % 10);
        client
            .set(&key, Some(&i.to_string()), &Default::default())
            .expect("set");
    }
    let writing = began.elapsed();
    assert!(
        writing < Duration::from_secs(15),
        "writes too slow for this test: {writing:?}"
    );
    let want: String = std::iter::once("/burst/k0=1000\n".to_string())
        .chain((1..10).map(|k| format!("/burst/k{k}={}\n", 990 + k)))
        .chain(std::iter::once("/burst/n=0\n".to_string()))
        .collect();
    assert!(
        wait_content(&target, &want, CONVERGE),
        "{}",
        daemon.log_text()
    );
    let converged = began.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log_text();
    let installs = log.lines().filter(|l| l.contains("] changed ")).count();
    let reloads = count_lines(&setup.out("burst.reloads"));
    eprintln!(
        "burst: 1000 updates written in {writing:?}, converged after {converged:?}: \
         {installs} installs, {reloads} reloads"
    );
    // Every install was followed by exactly one reload. The start-up install, then one for
    // the whole burst; one more only if etcd stalled a write for over a second.
    assert_eq!(installs, reloads, "{log}");
    assert!((2..=3).contains(&installs), "{installs} installs:\n{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_alive(&mut daemon);
}
