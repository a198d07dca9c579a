//! apply against real files in temp dirs and real `sh` commands.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reconfig::apply::{
    apply, apply_group, reload, remove_stale_temp_files, ApplyErrorKind, CommandFailure, FileSpec,
    FileSummary, InstallSpec, InstalledFile, Outcome, ReloadResult, Step, TargetState,
};
use reconfig::stop::Stop;

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("reconfig-apply-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Sorted names in the directory (temp files included).
    fn names(&self) -> Vec<String> {
        names_in(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn spec(dir: &TempDir, name: &str) -> InstallSpec {
    InstallSpec {
        id: "test-resource".to_string(),
        target: dir.join(name),
        mode: None,
        owner: None,
        group: None,
        mkdirs: false,
        checkcmd: None,
        reloadcmd: None,
        splay: Duration::ZERO,
        command_timeout: Duration::from_secs(30),
        grouped: Vec::new(),
        backups: 0,
    }
}

fn run(spec: &InstallSpec, content: &str) -> Outcome {
    apply(spec, content, false, &Stop::new()).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn touch_command(marker: &Path) -> String {
    format!("touch '{}'", marker.display())
}

fn process_is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the ")" that ends the command name; zombies are dead.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// SIGKILL is delivered asynchronously: allow the kernel a moment to finish the process off.
fn dies_soon(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while process_is_running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no pid written to {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn unchanged_content_writes_nothing_and_runs_nothing() {
    let dir = TempDir::new("unchanged");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    spec.checkcmd = Some(touch_command(&marker));
    spec.reloadcmd = Some(touch_command(&marker));
    fs::write(&spec.target, "same\n").unwrap();
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&spec.target)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let before = fs::metadata(&spec.target).unwrap();

    assert!(matches!(run(&spec, "same\n"), Outcome::Unchanged));

    let after = fs::metadata(&spec.target).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.modified().unwrap(), long_ago);
    assert!(!marker.exists(), "a command ran for unchanged content");
    assert_eq!(dir.names(), ["a.conf"]);
}

#[test]
fn changed_content_is_installed_with_summaries_and_no_leftovers() {
    let dir = TempDir::new("changed");
    let spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    let old_inode = fs::metadata(&spec.target).unwrap().ino();

    match run(&spec, "new content\n") {
        Outcome::Installed { files, reload } => {
            assert_eq!(files.len(), 1);
            let InstalledFile { target, old, new } = &files[0];
            assert_eq!(target, &spec.target);
            assert_eq!(*old, Some(FileSummary::of(b"old\n")));
            assert_eq!(new.len, 12);
            assert_eq!(*new, FileSummary::of(b"new content\n"));
            assert!(matches!(reload, ReloadResult::NotConfigured));
        }
        other => panic!("expected Installed, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "new content\n");
    assert_ne!(
        fs::metadata(&spec.target).unwrap().ino(),
        old_inode,
        "not replaced by rename"
    );
    assert_eq!(dir.names(), ["a.conf"]);
}

/// Changes the process umask, so it also covers mkdirs; every assertion in this file is
/// umask-independent, so tests running at the same time are not affected.
#[test]
fn new_file_and_new_dirs_get_fixed_modes_regardless_of_umask() {
    let dir = TempDir::new("umask");
    let mut spec = spec(&dir, "sub/deeper/a.conf");
    spec.mkdirs = true;
    // SAFETY: umask has no preconditions.
    let previous = unsafe { libc::umask(0o077) };
    let result = apply(&spec, "x\n", false, &Stop::new());
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    assert!(matches!(result.unwrap(), Outcome::Installed { .. }));
    assert_eq!(mode_of(&spec.target), 0o644);
    assert_eq!(mode_of(&dir.join("sub")), 0o755);
    assert_eq!(mode_of(&dir.join("sub/deeper")), 0o755);
}

#[test]
fn existing_mode_and_owner_are_preserved() {
    let dir = TempDir::new("preserve");
    let spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o640)).unwrap();
    let (uid, gid) = if is_root() {
        (1, 65534)
    } else {
        (unsafe { libc::geteuid() }, unsafe { libc::getegid() })
    };
    std::os::unix::fs::chown(&spec.target, Some(uid), Some(gid)).unwrap();

    run(&spec, "new\n");

    let meta = fs::metadata(&spec.target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
}

#[test]
fn spec_mode_overrides_existing_mode() {
    let dir = TempDir::new("mode");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o644)).unwrap();
    spec.mode = Some(0o600);
    run(&spec, "secret\n");
    assert_eq!(mode_of(&spec.target), 0o600);
}

#[test]
fn owner_and_group_by_name() {
    let dir = TempDir::new("owner");
    let mut spec = spec(&dir, "a.conf");
    spec.owner = Some("daemon".to_string());
    spec.group = Some("nogroup".to_string());
    let result = apply(&spec, "x\n", false, &Stop::new());
    if is_root() {
        assert!(matches!(result.unwrap(), Outcome::Installed { .. }));
        let meta = fs::metadata(&spec.target).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (1, 65534),
            "daemon/nogroup on Debian-like systems"
        );
    } else {
        // Giving a file away needs root: a requested owner must not be silently skipped.
        let error = result.unwrap_err();
        assert!(
            matches!(
                *error.kind,
                ApplyErrorKind::Io {
                    step: Step::ChownTemp,
                    ..
                }
            ),
            "{error}"
        );
        assert!(!spec.target.exists());
    }
    assert_eq!(dir.names().len(), usize::from(is_root()));
}

#[test]
fn numeric_owner_and_group_are_accepted() {
    if !is_root() {
        return; // chown to arbitrary ids needs root; covered by the name test otherwise.
    }
    let dir = TempDir::new("numeric");
    let mut spec = spec(&dir, "a.conf");
    spec.owner = Some("4242".to_string());
    spec.group = Some("4343".to_string());
    run(&spec, "x\n");
    let meta = fs::metadata(&spec.target).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
}

#[test]
fn unknown_owner_is_a_clear_error_and_nothing_changes() {
    let dir = TempDir::new("unknown-owner");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    spec.owner = Some("no-such-user-for-reconfig".to_string());
    let error = apply(&spec, "new\n", false, &Stop::new()).unwrap_err();
    // The resource is the log line's label, not part of the text.
    assert_eq!(error.id, "test-resource");
    let text = error.to_string();
    assert!(
        text.contains("\"owner\": no user named \"no-such-user-for-reconfig\""),
        "{text}"
    );
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old\n");
    assert_eq!(dir.names(), ["a.conf"]);

    spec.owner = None;
    spec.group = Some("no-such-group-for-reconfig".to_string());
    let text = apply(&spec, "new\n", false, &Stop::new())
        .unwrap_err()
        .to_string();
    assert!(text.contains("\"group\": no group named"), "{text}");
}

#[test]
fn dry_run_returns_a_diff_and_writes_nothing() {
    let dir = TempDir::new("dry");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    spec.checkcmd = Some(touch_command(&marker));
    spec.reloadcmd = Some(touch_command(&marker));
    fs::write(&spec.target, "a\nb\nc\n").unwrap();

    let Outcome::WouldChange { diff } = apply(&spec, "a\nB\nc\n", true, &Stop::new()).unwrap()
    else {
        panic!("expected WouldChange");
    };
    let target = spec.target.display();
    assert_eq!(
        diff,
        format!(
            "--- {target} (current)\n+++ {target} (rendered by test-resource)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\
             # checkcmd has no {{{{src}}}}: it checks the installed file, not run in a dry run\n"
        )
    );
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "a\nb\nc\n");
    assert!(!marker.exists());
    assert_eq!(dir.names(), ["a.conf"]);

    let new_spec = InstallSpec {
        target: dir.join("new.conf"),
        ..spec.clone()
    };
    let Outcome::WouldChange { diff } = apply(&new_spec, "x\n", true, &Stop::new()).unwrap() else {
        panic!("expected WouldChange");
    };
    assert!(diff.starts_with("--- /dev/null\n"), "{diff}");
    assert!(!new_spec.target.exists());
    assert!(matches!(
        apply(&spec, "a\nb\nc\n", true, &Stop::new()).unwrap(),
        Outcome::Unchanged
    ));
}

#[test]
fn missing_directory_is_an_error_unless_mkdirs() {
    let dir = TempDir::new("mkdirs");
    let mut spec = spec(&dir, "missing/a.conf");
    let error = apply(&spec, "x\n", false, &Stop::new()).unwrap_err();
    assert!(matches!(
        *error.kind,
        ApplyErrorKind::DirectoryMissing { .. }
    ));
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "directory {} of target does not exist; create it or set \"mkdirs\": true",
            dir.join("missing").display()
        )),
        "{text}"
    );
    assert!(!dir.join("missing").exists());

    spec.mkdirs = true;
    assert!(matches!(run(&spec, "x\n"), Outcome::Installed { .. }));
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "x\n");
}

#[test]
fn symlinked_target_stays_a_link_and_its_pointee_changes() {
    let dir = TempDir::new("symlink");
    fs::create_dir(dir.join("real")).unwrap();
    fs::create_dir(dir.join("etc")).unwrap();
    fs::write(dir.join("real/a.conf"), "old\n").unwrap();
    fs::set_permissions(dir.join("real/a.conf"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("../real/a.conf", dir.join("etc/a.conf")).unwrap();
    let spec = spec(&dir, "etc/a.conf");

    run(&spec, "new\n");

    assert!(fs::symlink_metadata(&spec.target)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(&spec.target).unwrap(),
        Path::new("../real/a.conf")
    );
    assert_eq!(
        fs::read_to_string(dir.join("real/a.conf")).unwrap(),
        "new\n"
    );
    assert_eq!(mode_of(&dir.join("real/a.conf")), 0o640);
    assert_eq!(names_in(&dir.join("real")), ["a.conf"]);
    assert_eq!(names_in(&dir.join("etc")), ["a.conf"]);
}

#[test]
fn dangling_symlink_creates_its_pointee() {
    let dir = TempDir::new("dangling");
    std::os::unix::fs::symlink("pointee.conf", dir.join("a.conf")).unwrap();
    run(&spec(&dir, "a.conf"), "x\n");
    assert!(fs::symlink_metadata(dir.join("a.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(dir.join("pointee.conf")).unwrap(), "x\n");
}

#[test]
fn src_check_runs_on_the_staged_file_before_install() {
    let dir = TempDir::new("src-ok");
    let seen = dir.join("seen");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    // The staged file holds the new content while the target still holds the old one.
    spec.checkcmd = Some(format!(
        "cp {{{{src}}}} '{}' && grep -q old {{{{target}}}}",
        seen.display()
    ));
    run(&spec, "new\n");
    assert_eq!(fs::read_to_string(&seen).unwrap(), "new\n");
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "new\n");
}

#[test]
fn failed_src_check_leaves_target_byte_identical_and_no_temp_file() {
    let dir = TempDir::new("src-fail");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "good\n").unwrap();
    let inode = fs::metadata(&spec.target).unwrap().ino();
    spec.checkcmd =
        Some("grep -q good {{src}} || { echo 'line 1: not good' >&2; exit 4; }".to_string());
    spec.reloadcmd = Some(touch_command(&marker));

    let error = apply(&spec, "bad\n", false, &Stop::new()).unwrap_err();

    let ApplyErrorKind::CheckFailed {
        error: command,
        target_state,
    } = &*error.kind
    else {
        panic!("expected CheckFailed, got {error}");
    };
    assert!(matches!(command.failure, CommandFailure::Exit(4)));
    assert!(matches!(target_state, TargetState::Untouched));
    let text = error.to_string();
    assert!(
        text.contains("exited with status 4") && text.contains("line 1: not good"),
        "{text}"
    );
    assert!(text.contains("was left unchanged"), "{text}");
    assert_eq!(fs::read(&spec.target).unwrap(), b"good\n");
    assert_eq!(fs::metadata(&spec.target).unwrap().ino(), inode);
    assert_eq!(
        dir.names(),
        ["a.conf"],
        "temp file left behind or reload ran"
    );
}

#[test]
fn failed_post_install_check_restores_previous_content_mode_and_owner() {
    let dir = TempDir::new("post-fail");
    let seen = dir.join("seen");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old good\n").unwrap();
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&spec.target, Some(1), Some(4)).unwrap();
    }
    let before = fs::metadata(&spec.target).unwrap();
    spec.mode = Some(0o600);
    spec.checkcmd = Some(format!(
        "cp {{{{target}}}} '{}'; grep -q good {{{{target}}}}",
        seen.display()
    ));
    spec.reloadcmd = Some(touch_command(&marker));

    let error = apply(&spec, "new bad\n", false, &Stop::new()).unwrap_err();

    assert!(matches!(
        *error.kind,
        ApplyErrorKind::CheckFailed {
            target_state: TargetState::Restored,
            ..
        }
    ));
    assert!(error.to_string().contains("was restored"), "{error}");
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        "new bad\n",
        "check did not see the installed file"
    );
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old good\n");
    let after = fs::metadata(&spec.target).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert!(!marker.exists(), "reload ran after a failed check");
    assert_eq!(dir.names(), ["a.conf", "seen"]);
}

#[test]
fn failed_post_install_check_removes_a_brand_new_file() {
    let dir = TempDir::new("post-fail-new");
    let mut spec = spec(&dir, "a.conf");
    spec.checkcmd = Some("test \"$(cat {{target}})\" = good".to_string());
    let error = apply(&spec, "bad", false, &Stop::new()).unwrap_err();
    assert!(matches!(
        *error.kind,
        ApplyErrorKind::CheckFailed {
            target_state: TargetState::RemovedNewFile,
            ..
        }
    ));
    assert!(dir.names().is_empty());
    assert!(matches!(run(&spec, "good"), Outcome::Installed { .. }));
}

#[test]
fn reload_runs_after_install_and_not_when_unchanged() {
    let dir = TempDir::new("reload");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    spec.checkcmd = Some("true".to_string());
    spec.reloadcmd = Some(format!("cat {{{{target}}}} >> '{}'", marker.display()));

    let Outcome::Installed { reload, .. } = run(&spec, "v1\n") else {
        panic!("expected Installed")
    };
    assert!(matches!(reload, ReloadResult::Reloaded));
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "v1\n",
        "reload did not see the new file"
    );

    assert!(matches!(run(&spec, "v1\n"), Outcome::Unchanged));
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "v1\n",
        "reload ran for unchanged content"
    );
}

#[test]
fn reload_failure_is_reported_but_file_stays_installed() {
    let dir = TempDir::new("reload-fail");
    let mut spec = spec(&dir, "a.conf");
    spec.reloadcmd = Some("echo 'service not running' >&2; exit 2".to_string());

    let Outcome::Installed { reload, .. } = run(&spec, "new\n") else {
        panic!("expected Installed")
    };
    let ReloadResult::Failed(error) = reload else {
        panic!("expected a failed reload, got {reload:?}")
    };
    assert!(matches!(error.failure, CommandFailure::Exit(2)));
    assert_eq!(error.stderr, "service not running\n");
    assert!(error.to_string().contains("exited with status 2"));
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "new\n");

    // A later retry can succeed.
    spec.reloadcmd = Some("true".to_string());
    assert!(matches!(reload_now(&spec), ReloadResult::Reloaded));
}

fn reload_now(spec: &InstallSpec) -> ReloadResult {
    reload(spec, &Stop::new())
}

#[test]
fn reload_without_command_is_not_configured() {
    let dir = TempDir::new("no-reload");
    assert!(matches!(
        reload_now(&spec(&dir, "a.conf")),
        ReloadResult::NotConfigured
    ));
}

fn timed_reload(dir: &TempDir, command: String, timeout: Duration) -> (ReloadResult, Duration) {
    let mut spec = spec(dir, "a.conf");
    spec.reloadcmd = Some(command);
    spec.command_timeout = timeout;
    let started = Instant::now();
    let result = reload_now(&spec);
    (result, started.elapsed())
}

#[test]
fn timeout_kills_a_hanging_command() {
    let dir = TempDir::new("timeout");
    let (result, took) = timed_reload(&dir, "sleep 1000".to_string(), Duration::from_secs(1));
    let ReloadResult::Failed(error) = result else {
        panic!("expected Failed, got {result:?}")
    };
    assert!(matches!(error.failure, CommandFailure::TimedOut(_)));
    assert!(error.to_string().contains("timed out after 1s"), "{error}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn timeout_kills_forked_children_too() {
    let dir = TempDir::new("timeout-child");
    let pidfile = dir.join("pid");
    let command = format!("sleep 1000 & echo $! > '{}'; wait", pidfile.display());
    let (result, took) = timed_reload(&dir, command, Duration::from_secs(1));
    assert!(
        matches!(result, ReloadResult::Failed(ref e) if matches!(e.failure, CommandFailure::TimedOut(_)))
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let child = read_pid(&pidfile);
    assert!(
        dies_soon(child),
        "forked child {child} survived the timeout"
    );
}

#[test]
fn timeout_kills_children_that_ignore_sigterm() {
    let dir = TempDir::new("timeout-term");
    let pidfile = dir.join("pid");
    let command = format!(
        "trap '' TERM; sleep 1000 & echo $! > '{}'; wait; wait",
        pidfile.display()
    );
    let (result, took) = timed_reload(&dir, command, Duration::from_millis(500));
    assert!(
        matches!(result, ReloadResult::Failed(ref e) if matches!(e.failure, CommandFailure::TimedOut(_)))
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(dies_soon(read_pid(&pidfile)));
}

#[test]
fn a_daemon_keeping_the_output_pipes_open_does_not_block() {
    let dir = TempDir::new("daemon");
    let pidfile = dir.join("pid");
    // The daemon leaves the process group and keeps stdout/stderr open for 30 s.
    let command = format!(
        "setsid sh -c 'echo $$ > \"{}\"; exec sleep 30' & echo started",
        pidfile.display()
    );
    let (result, took) = timed_reload(&dir, command, Duration::from_secs(10));
    let daemon = read_pid(&pidfile);
    // SAFETY: kill(2) on the pid of the sleep this test started.
    unsafe { libc::kill(daemon as libc::pid_t, libc::SIGKILL) };
    assert!(matches!(result, ReloadResult::Reloaded), "{result:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn megabytes_of_output_are_truncated() {
    let dir = TempDir::new("output");
    let command = "head -c 5000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | tr '\\0' e >&2; exit 1";
    let (result, took) = timed_reload(&dir, command.to_string(), Duration::from_secs(30));
    let ReloadResult::Failed(error) = result else {
        panic!("expected Failed, got {result:?}")
    };
    assert!(matches!(error.failure, CommandFailure::Exit(1)));
    assert!(
        error.stderr.len() <= 64 * 1024 + 100,
        "{}",
        error.stderr.len()
    );
    assert!(
        error.stdout.len() <= 64 * 1024 + 100,
        "{}",
        error.stdout.len()
    );
    assert!(error
        .stderr
        .contains(&format!("({} bytes truncated)", 3_000_000 - 64 * 1024)));
    assert!(error
        .stdout
        .contains(&format!("({} bytes truncated)", 5_000_000 - 64 * 1024)));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn stop_during_splay_returns_promptly_with_the_file_installed() {
    let dir = TempDir::new("splay");
    let marker = dir.join("marker");
    let mut spec = spec(&dir, "a.conf");
    spec.splay = Duration::from_secs(60);
    spec.reloadcmd = Some(touch_command(&marker));
    let stop = Stop::new();
    let stopper = stop.clone();
    let started = Instant::now();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stopper.stop();
    });

    let outcome = apply(&spec, "new\n", false, &stop).unwrap();

    handle.join().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Installed {
                reload: ReloadResult::Stopped,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "new\n");
    assert!(!marker.exists());
}

#[test]
fn stop_kills_a_running_reload_command() {
    let dir = TempDir::new("stop-cmd");
    let pidfile = dir.join("pid");
    let mut spec = spec(&dir, "a.conf");
    spec.reloadcmd = Some(format!(
        "sleep 1000 & echo $! > '{}'; wait",
        pidfile.display()
    ));
    let stop = Stop::new();
    let stopper = stop.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stopper.stop();
    });
    let started = Instant::now();
    let result = reload(&spec, &stop);
    handle.join().unwrap();
    assert!(matches!(result, ReloadResult::Stopped), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(dies_soon(read_pid(&pidfile)));
}

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn stale_temp_files_of_dead_processes_are_removed_and_live_ones_kept() {
    let dir = TempDir::new("stale");
    let own = format!(".a.conf.reconfig-{}-7.tmp", std::process::id());
    let dead = format!(".a.conf.reconfig-{}-0.tmp", dead_pid());
    // pid 1 is alive (a daemon's staged file, say), whoever owns it.
    let live = ".a.conf.reconfig-1-12.tmp";
    for name in [
        ".a.conf.reconfig-4194305-0.tmp",
        dead.as_str(),
        live,
        own.as_str(),
        ".b.conf.reconfig-4194305-1.tmp",
        "a.conf",
        ".a.conf.reconfig-4194305-1.tmp.keep",
    ] {
        fs::write(dir.join(name), "x").unwrap();
    }
    assert_eq!(remove_stale_temp_files(&dir.join("a.conf")), 2);
    let mut expected = vec![
        ".a.conf.reconfig-1-12.tmp",
        ".a.conf.reconfig-4194305-1.tmp.keep",
        ".b.conf.reconfig-4194305-1.tmp",
        own.as_str(),
        "a.conf",
    ];
    expected.sort();
    assert_eq!(dir.names(), expected);
    assert_eq!(remove_stale_temp_files(&dir.join("missing-dir/a.conf")), 0);
}

#[test]
fn directory_target_is_a_clear_error_and_untouched() {
    let dir = TempDir::new("dir-target");
    fs::create_dir(dir.join("a.conf")).unwrap();
    fs::write(dir.join("a.conf/inside"), "keep").unwrap();
    let error = apply(&spec(&dir, "a.conf"), "x\n", false, &Stop::new()).unwrap_err();
    assert!(matches!(
        *error.kind,
        ApplyErrorKind::NotARegularFile { .. }
    ));
    assert!(
        error
            .to_string()
            .contains("is a directory, not a regular file"),
        "{error}"
    );
    assert_eq!(names_in(&dir.join("a.conf")), ["inside"]);
    assert_eq!(dir.names(), ["a.conf"]);
}

#[test]
fn parent_that_is_a_file_is_a_clear_error() {
    let dir = TempDir::new("parent-file");
    fs::write(dir.join("plain"), "keep").unwrap();
    let error = apply(&spec(&dir, "plain/a.conf"), "x\n", false, &Stop::new()).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("A component of the path is not a directory"),
        "{text}"
    );
    assert_eq!(fs::read_to_string(dir.join("plain")).unwrap(), "keep");
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// Runs `body` on a thread inside a private mount namespace where `dir` is a read-only bind
/// mount. The namespace (and the mount) disappear with the thread.
fn with_read_only_bind<T: Send>(dir: &Path, body: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let root = c_path(Path::new("/"));
                let dir = c_path(dir);
                let none = std::ptr::null();
                // SAFETY: plain syscalls with valid NUL-terminated paths; they affect only this
                // thread's new mount namespace.
                unsafe {
                    assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
                    assert_eq!(
                        libc::mount(
                            none,
                            root.as_ptr(),
                            none,
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null()
                        ),
                        0
                    );
                    assert_eq!(
                        libc::mount(
                            dir.as_ptr(),
                            dir.as_ptr(),
                            none,
                            libc::MS_BIND,
                            std::ptr::null()
                        ),
                        0
                    );
                    let read_only = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
                    assert_eq!(
                        libc::mount(none, dir.as_ptr(), none, read_only, std::ptr::null()),
                        0
                    );
                }
                body()
            })
            .join()
            .unwrap()
    })
}

/// As root: a read-only mount (permissions do not stop root). Otherwise: a 0555 directory.
#[test]
fn unwritable_directory_is_a_clear_error_and_target_untouched() {
    let dir = TempDir::new("readonly");
    let conf_dir = dir.join("etc");
    fs::create_dir(&conf_dir).unwrap();
    let mut spec = spec(&dir, "etc/a.conf");
    spec.reloadcmd = Some(touch_command(&dir.join("marker")));
    fs::write(&spec.target, "old\n").unwrap();

    let error = if is_root() {
        with_read_only_bind(&conf_dir, || {
            apply(&spec, "new\n", false, &Stop::new()).unwrap_err()
        })
    } else {
        fs::set_permissions(&conf_dir, fs::Permissions::from_mode(0o555)).unwrap();
        let error = apply(&spec, "new\n", false, &Stop::new()).unwrap_err();
        fs::set_permissions(&conf_dir, fs::Permissions::from_mode(0o755)).unwrap();
        error
    };

    assert!(
        matches!(
            *error.kind,
            ApplyErrorKind::Io {
                step: Step::CreateTemp,
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    let expected = if is_root() {
        "mounted read-only"
    } else {
        "may write the target's directory"
    };
    assert!(text.contains(expected), "{text}");
    assert_eq!(error.id, "test-resource");
    assert!(text.contains("was left unchanged"), "{text}");
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old\n");
    assert_eq!(names_in(&conf_dir), ["a.conf"]);
    assert!(!dir.join("marker").exists());
}

#[test]
fn a_mode_or_owner_the_file_lacks_is_installed_even_with_the_same_content() {
    let dir = TempDir::new("attrs-only");
    let mut spec = spec(&dir, "a.conf");
    spec.reloadcmd = Some(format!("echo reload >> {}", dir.join("reloads").display()));
    fs::write(&spec.target, "same\n").unwrap();
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o644)).unwrap();
    spec.mode = Some(0o600);
    assert!(matches!(run(&spec, "same\n"), Outcome::Installed { .. }));
    assert_eq!(mode_of(&spec.target), 0o600);
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "same\n");
    assert_eq!(fs::read_to_string(dir.join("reloads")).unwrap(), "reload\n");
    // Now it holds: nothing to do, no reload.
    assert!(matches!(run(&spec, "same\n"), Outcome::Unchanged));
    assert_eq!(fs::read_to_string(dir.join("reloads")).unwrap(), "reload\n");

    if is_root() {
        spec.owner = Some("1".to_string());
        assert!(matches!(run(&spec, "same\n"), Outcome::Installed { .. }));
        assert_eq!(fs::metadata(&spec.target).unwrap().uid(), 1);
        assert!(matches!(run(&spec, "same\n"), Outcome::Unchanged));
    }
    // A dry run shows the attribute change even with no line changed.
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o640)).unwrap();
    let Outcome::WouldChange { diff } = apply(&spec, "same\n", true, &Stop::new()).unwrap() else {
        panic!("expected a dry-run change");
    };
    assert!(diff.contains("mode 0640 -> 0600"), "{diff}");
}

#[test]
fn without_a_requested_mode_a_hand_changed_mode_is_left_alone() {
    let dir = TempDir::new("attrs-free");
    let spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "same\n").unwrap();
    fs::set_permissions(&spec.target, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(run(&spec, "same\n"), Outcome::Unchanged));
    assert_eq!(mode_of(&spec.target), 0o640);
}

/// A target in a directory whose name holds a space and both quotes.
fn awkward_target(dir: &TempDir) -> InstallSpec {
    let awkward = dir.join("my app's \"conf\"");
    fs::create_dir(&awkward).unwrap();
    let mut spec = spec(dir, "unused");
    spec.target = awkward.join("a $b.conf");
    spec
}

#[test]
fn bare_single_and_double_quoted_placeholders_all_reach_the_files() {
    let dir = TempDir::new("quoted");
    let seen = dir.join("seen");
    for (check, reload) in [
        ("cat {{src}} >> ", "cat {{target}} >> "),
        ("cat '{{src}}' >> ", "cat '{{target}}' >> "),
        ("cat \"{{src}}\" >> ", "cat \"{{target}}\" >> "),
        (
            "test -s \"{{src}}\" && cat \"{{src}}\" >> ",
            "cp \"{{target}}\" ",
        ),
    ] {
        let _ = fs::remove_file(&seen);
        let case = TempDir::new("quoted-case");
        let mut spec = awkward_target(&case);
        spec.checkcmd = Some(format!("{check}'{}'", seen.display()));
        spec.reloadcmd = Some(format!("{reload}'{}.reload'", seen.display()));
        let outcome = run(&spec, "new\n");
        assert!(
            matches!(
                outcome,
                Outcome::Installed {
                    reload: ReloadResult::Reloaded,
                    ..
                }
            ),
            "{check}: {outcome:?}"
        );
        assert_eq!(
            fs::read_to_string(&spec.target).unwrap(),
            "new\n",
            "{check}"
        );
        assert_eq!(fs::read_to_string(&seen).unwrap(), "new\n", "{check}");
        let reloaded = fs::read_to_string(format!("{}.reload", seen.display())).unwrap();
        assert_eq!(reloaded, "new\n", "{reload}");
        fs::remove_file(format!("{}.reload", seen.display())).unwrap();
    }
}

#[test]
fn a_failed_check_shows_the_command_with_the_real_paths() {
    let dir = TempDir::new("shown");
    let mut spec = awkward_target(&dir);
    spec.checkcmd = Some("grep -q good \"{{src}}\" && test -s {{target}}".to_string());
    fs::write(&spec.target, "old\n").unwrap();
    let error = apply(&spec, "bad\n", false, &Stop::new()).unwrap_err();
    let text = error.to_string();
    let target_dir = spec.target.parent().unwrap().display().to_string();
    let staged = format!(
        "{}/.a \\$b.conf.reconfig-{}-0.tmp",
        target_dir.replace('"', "\\\""),
        std::process::id()
    );
    let target = format!(
        "'{}'",
        spec.target.display().to_string().replace('\'', "'\\''")
    );
    assert!(
        text.contains(&format!(
            "command `grep -q good \"{staged}\" && test -s {target}` exited with status 1"
        )),
        "{text}"
    );
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old\n");
}

#[test]
fn the_change_summary_checksum_is_what_sha256sum_prints() {
    let dir = TempDir::new("sha");
    let spec = spec(&dir, "a.conf");
    let Outcome::Installed { files, .. } = run(&spec, "server a 10.0.0.1:80\n") else {
        panic!("not installed");
    };
    let new = &files[0].new;
    let output = std::process::Command::new("sha256sum")
        .arg(&spec.target)
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&output.stdout);
    assert!(sum.starts_with(&new.checksum), "{sum} vs {new}");
    assert_eq!(new.to_string(), format!("21/{}", &sum[..16]));
}

#[test]
fn dry_run_checks_a_private_copy_with_src_and_never_reloads() {
    let dir = TempDir::new("dry-check");
    let seen = TempDir::new("dry-check-seen");
    let marker = seen.join("reloaded");
    let mut spec = spec(&dir, "a.conf");
    fs::write(&spec.target, "old\n").unwrap();
    spec.checkcmd = Some(format!(
        "printf %s {{{{src}}}} > '{path}'; cat {{{{src}}}} > '{content}'; grep -q good {{{{src}}}}",
        path = seen.join("path").display(),
        content = seen.join("content").display(),
    ));
    spec.reloadcmd = Some(touch_command(&marker));

    let Outcome::WouldChange { diff } = apply(&spec, "good\n", true, &Stop::new()).unwrap() else {
        panic!("expected WouldChange");
    };
    assert!(diff.contains("-old\n+good\n"), "{diff}");
    assert_eq!(fs::read_to_string(seen.join("content")).unwrap(), "good\n");
    // The copy was private and is gone; nothing was written beside the target.
    let copy = PathBuf::from(fs::read_to_string(seen.join("path")).unwrap());
    assert_eq!(copy.file_name().unwrap(), "a.conf");
    assert!(!copy.parent().unwrap().exists(), "{}", copy.display());
    assert_eq!(dir.names(), ["a.conf"]);
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old\n");
    assert!(!marker.exists(), "reload ran in a dry run");

    // A change its check would reject is a failure, not a diff.
    let error = apply(&spec, "bad\n", true, &Stop::new()).unwrap_err();
    let ApplyErrorKind::CheckFailed { target_state, .. } = &*error.kind else {
        panic!("expected CheckFailed, got {error}");
    };
    assert!(matches!(target_state, TargetState::DryRun));
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "dry run: the change to {} would be rejected: the check of the new content failed: command `printf %s ",
            spec.target.display()
        )),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(dir.names(), ["a.conf"]);
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old\n");
    assert!(!marker.exists());
}

/// Clears the immutable flag it set, before the test's `TempDir` is removed.
struct Immutable(PathBuf);

impl Immutable {
    /// `None` when the file system or the process cannot set the flag.
    fn set(path: &Path) -> Option<Immutable> {
        let set = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        set.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_failed_rename_in_a_group_puts_back_the_files_renamed_before_it() {
    let dir = TempDir::new("group-rename");
    let mut spec = spec(&dir, "a.conf");
    let second = dir.join("b.conf");
    spec.grouped = vec![FileSpec {
        target: second.clone(),
        mode: None,
        owner: None,
        group: None,
    }];
    let marker = dir.join("reloaded");
    spec.reloadcmd = Some(touch_command(&marker));
    fs::write(&spec.target, "old a\n").unwrap();
    fs::write(&second, "old b\n").unwrap();
    // rename(2) over an immutable file fails with EPERM, even for root.
    let Some(_immutable) = Immutable::set(&second) else {
        eprintln!("skipped: chattr +i is not possible here");
        return;
    };
    let error = apply_group(&spec, &["new a\n", "new b\n"], false, &Stop::new()).unwrap_err();
    assert!(
        matches!(
            error.kind.as_ref(),
            ApplyErrorKind::Io {
                step: Step::Rename,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.target, second);
    assert_eq!(error.together_with, [spec.target.clone()]);
    assert_eq!(fs::read_to_string(&spec.target).unwrap(), "old a\n");
    assert_eq!(fs::read_to_string(&second).unwrap(), "old b\n");
    assert!(!marker.exists(), "no reload");
    assert_eq!(dir.names(), ["a.conf", "b.conf"], "no temp file left");
}
