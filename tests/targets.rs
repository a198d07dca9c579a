//! How targets are put in place beyond a plain file: bind-mounted targets, backups of the
//! previous versions, and several targets installed as one group. The real `reconfig`
//! binary against a real etcd, real mounts and real commands.

mod support;

use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

const SECS: Duration = Duration::from_secs(10);
use support::daemon::{count_lines, Setup, RECONFIG};
use support::procs::Tree;
use support::{both_apis, stderr, stdout, wait_output, Api, Etcd};

/// Runs `reconfig --onetime` in a private mount namespace where `source` is bind-mounted on
/// `target`, as Docker mounts /etc/hosts into a container. The shell prints
/// "still a mount point" when `target` is a mount point after reconfig ran. `None` when this
/// host does not allow a mount namespace (not root, or in a restricted container).
fn onetime_with_bind_mount(
    setup: &Setup,
    etcd: &Etcd,
    source: &Path,
    target: &Path,
) -> Option<Output> {
    let tree = Tree::new();
    let allowed = tree
        .command("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !allowed {
        eprintln!("skipped: `unshare --mount` is not permitted here (needs root, or a container that allows mount namespaces)");
        return None;
    }
    let script = r#"
        source=$1 target=$2; shift 2
        mount --bind "$source" "$target" || exit 99
        "$@"; rc=$?
        if awk -v t="$target" '$5 == t { found = 1 } END { exit !found }' /proc/self/mountinfo
        then echo "still a mount point"; fi
        exit $rc
    "#;
    let mut args = setup.args(etcd, &[]);
    args.push("--onetime".to_string());
    let child = tree
        .command("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(source)
        .arg(target)
        .arg(RECONFIG)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    Some(wait_output(child, Duration::from_secs(60)))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("file").permissions().mode() & 0o7777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

both_apis!(a_bind_mounted_target_is_rewritten_in_place_and_stays_mounted);
fn a_bind_mounted_target_is_rewritten_in_place_and_stays_mounted(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/hosts/web", "10.0.0.5");
    let setup = Setup::new();
    // `hosts` is the container's view; `hosts.host` the host's file mounted onto it.
    let target = setup.out("hosts");
    let mounted = setup.out("hosts.host");
    std::fs::write(&target, "the file under the mount point\n").expect("target");
    std::fs::write(&mounted, "127.0.0.1 localhost\n").expect("mounted");
    let mut resource = setup.list_resource_at("hosts", "/hosts", &target);
    resource["mode"] = json!("0640");
    resource["checkcmd"] = json!("grep -q 10.0.0.5 {{src}}");
    setup.resource("hosts", resource);
    let Some(out) = onetime_with_bind_mount(&setup, &etcd, &mounted, &target) else {
        return;
    };
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(stdout(&out), "still a mount point\n", "{log}");
    // The write went through the mount into the host's file, with the mode asked for.
    assert_eq!(
        support::read(&mounted).as_deref(),
        Some("/hosts/web=10.0.0.5\n")
    );
    assert_eq!(mode_of(&mounted), 0o640);
    assert_eq!(
        support::read(&target).as_deref(),
        Some("the file under the mount point\n")
    );
    assert!(log.contains("check ok: `grep -q 10.0.0.5 "), "{log}");
    assert_eq!(
        log.matches("rewriting it in place instead").count(),
        1,
        "{log}"
    );
    assert_eq!(count_lines(&setup.out("hosts.reloads")), 1);
    assert_eq!(
        names_in(&setup.out("")),
        ["hosts", "hosts.host", "hosts.reloads"],
        "no temp file left"
    );
}

both_apis!(a_bind_mounted_target_gets_its_content_back_when_the_installed_check_fails);
fn a_bind_mounted_target_gets_its_content_back_when_the_installed_check_fails(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/hosts/web", "10.0.0.5");
    let setup = Setup::new();
    let target = setup.out("hosts");
    let mounted = setup.out("hosts.host");
    std::fs::write(&target, "").expect("target");
    std::fs::write(&mounted, "127.0.0.1 localhost\n").expect("mounted");
    std::fs::set_permissions(&mounted, PermissionsExt::from_mode(0o644)).expect("chmod");
    let mut resource = setup.list_resource_at("hosts", "/hosts", &target);
    resource["mode"] = json!("0600");
    // Runs on the installed file: it fails, so the previous content must come back.
    resource["checkcmd"] = json!("grep -q localhost {{target}}");
    setup.resource("hosts", resource);
    let Some(out) = onetime_with_bind_mount(&setup, &etcd, &mounted, &target) else {
        return;
    };
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert_eq!(stdout(&out), "still a mount point\n", "{log}");
    assert!(log.contains("was restored"), "{log}");
    assert_eq!(
        support::read(&mounted).as_deref(),
        Some("127.0.0.1 localhost\n")
    );
    assert_eq!(mode_of(&mounted), 0o644);
    assert_eq!(std::fs::metadata(&mounted).expect("mounted").uid(), 0);
    assert_eq!(count_lines(&setup.out("hosts.reloads")), 0);
}

both_apis!(backups_keep_the_last_n_replaced_versions_with_their_mode_and_owner);
fn backups_keep_the_last_n_replaced_versions_with_their_mode_and_owner(api: Api) {
    let etcd = Etcd::start_on(api);
    let setup = Setup::new();
    let target = setup.out("app.conf");
    let backup = |n: u32| setup.out(&format!("app.conf.{n}"));
    // The hand-written file reconfig takes over: secret mode, another owner.
    std::fs::write(&target, "hand-written\n").expect("target");
    std::fs::set_permissions(&target, PermissionsExt::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&target, Some(4242), Some(4343)).expect("chown");
    let mut resource = setup.list_resource_at("app", "/app", &target);
    resource["backup"] = json!(2);
    resource["mode"] = json!("0644");
    resource["owner"] = json!("root");
    resource["group"] = json!("root");
    resource["checkcmd"] = json!("! grep -q bad {{target}}");
    setup.resource("app", resource);
    let run = |value: &str| {
        etcd.put("/app/v", value);
        setup.onetime(&etcd, &[])
    };

    let out = run("one");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(support::read(&backup(1)).as_deref(), Some("hand-written\n"));
    let kept = std::fs::metadata(backup(1)).expect("backup");
    assert_eq!(
        (kept.mode() & 0o7777, kept.uid(), kept.gid()),
        (0o600, 4242, 4343)
    );
    assert_eq!(mode_of(&target), 0o644);

    // Same data: nothing replaced, nothing rotated.
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    assert!(!backup(2).exists());

    assert_eq!(run("two").status.code(), Some(0));
    assert_eq!(run("three").status.code(), Some(0));
    assert_eq!(support::read(&target).as_deref(), Some("/app/v=three\n"));
    assert_eq!(support::read(&backup(1)).as_deref(), Some("/app/v=two\n"));
    assert_eq!(support::read(&backup(2)).as_deref(), Some("/app/v=one\n"));
    assert_eq!(mode_of(&backup(1)), 0o644);

    // A version the check rejects is rolled back: not a replacement, no rotation.
    let out = run("bad");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(support::read(&target).as_deref(), Some("/app/v=three\n"));
    assert_eq!(support::read(&backup(1)).as_deref(), Some("/app/v=two\n"));
    assert_eq!(support::read(&backup(2)).as_deref(), Some("/app/v=one\n"));
    assert_eq!(
        names_in(&setup.out("")),
        ["app.conf", "app.conf.1", "app.conf.2", "app.reloads"],
        "at most 2 backups, no temp file left"
    );
    assert_eq!(count_lines(&setup.out("app.reloads")), 3);
}

/// A resource rendering `/app` into two files: `upstream.conf` lists the servers, `site.conf`
/// names the upstream file and the site name (strict: a missing `/app/name` fails its render).
/// The check names both staged files, the reload appends to `app.reloads`.
fn grouped_resource(setup: &Setup, checkcmd: &str) -> serde_json::Value {
    setup.template(
        "upstream.tmpl",
        "{% for k, v in reconfig.data|items %}{% if k.startswith('/app/servers/') %}server {{ v }}\n{% endif %}{% endfor %}",
    );
    setup.template("site.tmpl", "site {{ reconfig.data['/app/name'] }}\n");
    json!({
        "id": "app",
        "key": "/app",
        "recursive": true,
        "strict": true,
        "mode": "0640",
        "templates": [
            {"source": "upstream.tmpl", "target": setup.out("upstream.conf")},
            {"source": "site.tmpl", "target": setup.out("site.conf"), "mode": "0600"},
        ],
        "checkcmd": checkcmd,
        "reloadcmd": format!("echo reload >> {}", setup.out("app.reloads").display()),
    })
}

both_apis!(grouped_targets_are_checked_and_installed_together_with_one_reload);
fn grouped_targets_are_checked_and_installed_together_with_one_reload(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/servers/a", "10.0.0.1:80");
    etcd.put("/app/name", "shop");
    let setup = Setup::new();
    // The check sees both staged files, each by its number.
    let check = format!(
        "cat {{{{src:1}}}} {{{{src:2}}}} > {}; grep -q server {{{{src}}}}",
        setup.out("checked").display()
    );
    setup.resource("app", grouped_resource(&setup, &check));
    let (upstream, site) = (setup.out("upstream.conf"), setup.out("site.conf"));

    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(
        support::read(&upstream).as_deref(),
        Some("server 10.0.0.1:80\n")
    );
    assert_eq!(support::read(&site).as_deref(), Some("site shop\n"));
    assert_eq!(
        support::read(&setup.out("checked")).as_deref(),
        Some("server 10.0.0.1:80\nsite shop\n")
    );
    assert_eq!((mode_of(&upstream), mode_of(&site)), (0o640, 0o600));
    assert_eq!(count_lines(&setup.out("app.reloads")), 1, "{log}");

    // Nothing changed: no write, no check, no reload.
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&setup.out("app.reloads")), 1);

    // One file changes: it alone is rewritten; the check still sees both (the unchanged one
    // is its installed file); one reload.
    let site_inode = std::fs::metadata(&site).expect("site").ino();
    etcd.put("/app/servers/b", "10.0.0.2:80");
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(
        support::read(&upstream).as_deref(),
        Some("server 10.0.0.1:80\nserver 10.0.0.2:80\n")
    );
    assert_eq!(std::fs::metadata(&site).expect("site").ino(), site_inode);
    assert_eq!(
        support::read(&setup.out("checked")).as_deref(),
        Some("server 10.0.0.1:80\nserver 10.0.0.2:80\nsite shop\n")
    );
    assert_eq!(log.matches("changed ").count(), 1, "{log}");
    assert_eq!(count_lines(&setup.out("app.reloads")), 2);
}

both_apis!(a_failed_render_or_check_of_one_grouped_file_installs_none);
fn a_failed_render_or_check_of_one_grouped_file_installs_none(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/servers/a", "10.0.0.1:80");
    etcd.put("/app/name", "shop");
    let setup = Setup::new();
    setup.resource("app", grouped_resource(&setup, "! grep -q bad {{src:2}}"));
    let (upstream, site) = (setup.out("upstream.conf"), setup.out("site.conf"));
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    let installed = (support::read(&upstream), support::read(&site));

    // upstream.conf would change, but site.conf cannot render: neither is installed.
    etcd.put("/app/servers/b", "10.0.0.2:80");
    etcd.delete("/app/name", false);
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("render failed"), "{log}");
    assert!(log.contains("site.tmpl"), "names the template: {log}");
    assert_eq!((support::read(&upstream), support::read(&site)), installed);

    // Both render, the check rejects site.conf: neither is installed.
    etcd.put("/app/name", "bad");
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("the check of the new content failed"), "{log}");
    assert_eq!((support::read(&upstream), support::read(&site)), installed);
    assert_eq!(count_lines(&setup.out("app.reloads")), 1);
    assert_eq!(
        names_in(&setup.out("")),
        ["app.reloads", "site.conf", "upstream.conf"],
        "no temp file left"
    );
}

both_apis!(a_failed_check_of_the_installed_group_puts_every_file_back);
fn a_failed_check_of_the_installed_group_puts_every_file_back(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/servers/a", "10.0.0.1:80");
    etcd.put("/app/name", "shop");
    let setup = Setup::new();
    // No {{src}}: it checks the installed files, after both were renamed into place.
    setup.resource(
        "app",
        grouped_resource(&setup, "! grep -q bad {{target:1}} {{target:2}}"),
    );
    let (upstream, site) = (setup.out("upstream.conf"), setup.out("site.conf"));
    assert_eq!(setup.onetime(&etcd, &[]).status.code(), Some(0));
    let installed = (support::read(&upstream), support::read(&site));

    etcd.put("/app/servers/b", "10.0.0.2:80");
    etcd.put("/app/name", "bad");
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("was restored"), "{log}");
    assert!(log.contains("site.conf"), "names the other file: {log}");
    assert_eq!((support::read(&upstream), support::read(&site)), installed);
    assert_eq!((mode_of(&upstream), mode_of(&site)), (0o640, 0o600));
    assert_eq!(count_lines(&setup.out("app.reloads")), 1);
}

both_apis!(a_dry_run_of_a_group_shows_every_changed_file);
fn a_dry_run_of_a_group_shows_every_changed_file(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/servers/a", "10.0.0.1:80");
    etcd.put("/app/name", "shop");
    let setup = Setup::new();
    setup.resource("app", grouped_resource(&setup, "grep -q shop {{src:2}}"));
    let out = setup.onetime(&etcd, &["--notreally"]);
    let diff = stdout(&out);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(diff.contains("+server 10.0.0.1:80\n"), "{diff}");
    assert!(diff.contains("+site shop\n"), "{diff}");
    assert_eq!(names_in(&setup.out("")), Vec::<String>::new());
}

both_apis!(the_daemon_installs_a_changed_group_with_one_reload_and_keeps_backups);
fn the_daemon_installs_a_changed_group_with_one_reload_and_keeps_backups(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/app/servers/a", "10.0.0.1:80");
    etcd.put("/app/name", "shop");
    let setup = Setup::new();
    let mut resource = grouped_resource(&setup, "grep -q server {{src:1}}");
    resource["backup"] = json!(1);
    setup.resource("app", resource);
    let (upstream, site) = (setup.out("upstream.conf"), setup.out("site.conf"));
    let reloads = setup.out("app.reloads");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        support::eventually(SECS, || count_lines(&reloads) == 1),
        "{}",
        daemon.log_text()
    );
    assert_eq!(support::read(&site).as_deref(), Some("site shop\n"));

    // A change renders both files from one snapshot; only the changed one is installed.
    etcd.put("/app/servers/a", "10.0.0.9:80");
    assert!(
        support::daemon::wait_content(&upstream, "server 10.0.0.9:80\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        support::eventually(SECS, || count_lines(&reloads) == 2),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        support::read(&setup.out("upstream.conf.1")).as_deref(),
        Some("server 10.0.0.1:80\n")
    );
    assert!(
        !setup.out("site.conf.1").exists(),
        "site.conf did not change"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("upstream.conf (template") && log.contains("site.conf (template"),
        "the bound line names both files: {log}"
    );
    drop(daemon);
    assert_eq!(count_lines(&reloads), 2, "one reload per change");
}
