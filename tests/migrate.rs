//! `etcd-util -o MIGRATE`: a v2 tree copied into v3 on a real etcd serving both APIs
//! (`Etcd::start` runs with `--enable-v2=true` and serves v3 too), then read back through
//! the v3 API and rendered by `reconfig --api v3` as it was by `--api v2`.

mod support;

use reconfig::etcd::v2::SetOptions;
use reconfig::etcd::Found;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;
use support::daemon::Setup;
use support::{eventually, run_bin, stderr, stdout, Etcd};

const UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");

fn util(etcd: &Etcd, args: &[&str]) -> Output {
    let url = etcd.url();
    let mut all = vec!["--endpoints", url.as_str()];
    all.extend_from_slice(args);
    run_bin(UTIL, &all, Duration::from_secs(30))
}

fn migrate(etcd: &Etcd, extra: &[&str]) -> Output {
    let mut args = vec!["-o", "migrate"];
    args.extend_from_slice(extra);
    util(etcd, &args)
}

/// The last line of stdout: the counts.
fn summary(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_string()
}

/// Everything v3 holds at or under `key`, read through the v3 API.
fn v3_tree(etcd: &Etcd, key: &str) -> BTreeMap<String, String> {
    match etcd.v3_client().find(key, true) {
        Ok(Found::Leaves(leaves)) => leaves,
        Ok(Found::Value(key, value)) => BTreeMap::from([(key, value)]),
        Err(e) if e.is_key_not_found() => BTreeMap::new(),
        other => panic!("v3 read of {key}: {other:?}"),
    }
}

fn v2_set_dir(etcd: &Etcd, key: &str) {
    let dir = SetOptions {
        dir: true,
        ..SetOptions::default()
    };
    etcd.client().set(key, None, &dir).expect("mkdir");
}

fn v2_set_ttl(etcd: &Etcd, key: &str, value: &str, ttl: u64) {
    let options = SetOptions {
        ttl: Some(ttl),
        ..SetOptions::default()
    };
    etcd.client()
        .set(key, Some(value), &options)
        .expect("set ttl");
}

#[test]
fn a_v2_tree_is_copied_with_its_ttl_as_a_lease_and_a_second_run_changes_nothing() {
    let etcd = Etcd::start();
    etcd.put("/app/db/host", "db.example");
    etcd.put("/app/db/port", "5432");
    etcd.put("/app/ключ с пробелом/ü", "wert mit ä");
    etcd.put("/top", "");
    v2_set_dir(&etcd, "/app/empty");
    const TTL: u64 = 6;
    v2_set_ttl(&etcd, "/app/session", "token", TTL);

    let dry = migrate(&etcd, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(text.contains("would copy /app/db/host\n"), "{text}");
    assert!(
        text.contains("would copy /app/ключ с пробелом/ü\n"),
        "{text}"
    );
    assert!(
        text.contains("would copy /app/session (lease of "),
        "{text}"
    );
    assert!(
        summary(&dry).contains(
            "nothing written: 5 to copy, 0 to overwrite, 0 unchanged, \
         0 conflicts, 1 with TTL, 4 directories (1 empty)"
        ),
        "{text}"
    );
    assert!(
        summary(&dry).starts_with("dry run of / from v2 index "),
        "{text}"
    );
    assert!(
        v3_tree(&etcd, "/").is_empty(),
        "a dry run wrote to v3: {:?}",
        v3_tree(&etcd, "/")
    );

    let run = migrate(&etcd, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let text = stdout(&run);
    assert!(text.contains("copy /app/db/port\n"), "{text}");
    assert!(
        text.contains("empty directory /app/empty: not copied (v3 has no directories)\n"),
        "{text}"
    );
    assert!(
        summary(&run).contains(
            "in 1 transaction(s): 5 copied, 0 overwritten, 0 unchanged, 0 conflicts, \
             1 with TTL, 4 directories (1 empty)"
        ),
        "{text}"
    );
    let expected: BTreeMap<String, String> = [
        ("/app/db/host", "db.example"),
        ("/app/db/port", "5432"),
        ("/app/session", "token"),
        ("/app/ключ с пробелом/ü", "wert mit ä"),
        ("/top", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(v3_tree(&etcd, "/"), expected);

    let again = migrate(&etcd, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        stdout(&again).lines().count(),
        2,
        "only the empty directory and the counts: {}",
        stdout(&again)
    );
    assert!(
        summary(&again).contains(
            ": nothing to copy, v3 already holds it: 0 copied, 0 overwritten, 5 unchanged, \
             0 conflicts, 0 with TTL"
        ),
        "{}",
        stdout(&again)
    );

    // The lease ends the key in v3 as the TTL ends it in v2 (etcd checks leases every
    // 500 ms).
    assert!(
        eventually(Duration::from_secs(TTL + 5), || !v3_tree(&etcd, "/app")
            .contains_key("/app/session")),
        "the migrated TTL key outlived its TTL in v3"
    );
    assert_eq!(v3_tree(&etcd, "/").len(), 4);
}

#[test]
fn a_different_value_in_v3_is_a_conflict_left_alone_until_overwrite() {
    let etcd = Etcd::start();
    etcd.put("/c/differs", "from v2");
    etcd.put("/c/same", "x");
    etcd.put("/c/new", "n");
    let v3 = etcd.v3_client();
    v3.put("/c/differs", "set in v3", None).expect("v3 put");
    v3.put("/c/same", "x", None).expect("v3 put");

    let run = migrate(&etcd, &["-k", "/c"]);
    assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
    assert!(
        stdout(&run).contains("conflict /c/differs: v3 holds a different value; left as it is"),
        "{}",
        stdout(&run)
    );
    assert!(stderr(&run).contains("--overwrite"), "{}", stderr(&run));
    assert!(
        summary(&run).contains("1 copied, 0 overwritten, 1 unchanged, 1 conflicts"),
        "{}",
        stdout(&run)
    );
    let tree = v3_tree(&etcd, "/c");
    assert_eq!(tree["/c/differs"], "set in v3");
    assert_eq!(tree["/c/new"], "n");

    let forced = migrate(&etcd, &["-k", "/c", "--overwrite"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(stdout(&forced).contains("overwrite /c/differs\n"));
    assert!(
        summary(&forced).contains("0 copied, 1 overwritten, 2 unchanged, 0 conflicts"),
        "{}",
        stdout(&forced)
    );
    assert_eq!(v3_tree(&etcd, "/c")["/c/differs"], "from v2");
}

#[test]
fn three_hundred_keys_go_in_three_transactions_of_at_most_128() {
    let etcd = Etcd::start();
    for n in 0..300 {
        etcd.put(&format!("/many/k{n:03}"), &format!("v{n}"));
    }
    let run = migrate(&etcd, &["-k", "/many"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        summary(&run).contains("in 3 transaction(s): 300 copied"),
        "{}",
        summary(&run)
    );
    let tree = v3_tree(&etcd, "/many");
    assert_eq!(tree.len(), 300);
    assert_eq!(tree["/many/k299"], "v299");
}

/// The bridge: the file rendered from the migrated tree over v3 is the one v2 rendered,
/// so `--onetime --notreally --api v3` says nothing would change.
#[test]
fn reconfig_renders_the_same_file_over_v3_after_migrating() {
    let etcd = Etcd::start();
    etcd.put("/svc/web/a", "10.0.0.1:80");
    etcd.put("/svc/web/b", "10.0.0.2:80");
    etcd.put("/svc/db/host", "db with space");
    etcd.put("/svc/ünï", "☃");
    v2_set_dir(&etcd, "/svc/empty");
    let setup = Setup::new();
    setup.template(
        "svc.tmpl",
        "{% for k, v in reconfig.data|items %}{{ k }}={{ v }}\n{% endfor %}\
         web: {{ ls('/svc/web')|join(',') }}\nhost: {{ getv('/svc/db/host') }}\n",
    );
    let target = setup.out("svc.conf");
    setup.resource(
        "svc",
        json!({"key": "/svc", "recursive": true, "source": "svc.tmpl", "target": target}),
    );
    let v2 = setup.onetime(&etcd, &["--api", "v2"]);
    assert_eq!(v2.status.code(), Some(0), "{}", stderr(&v2));
    let from_v2 = support::read(&target).expect("rendered from v2");
    assert!(from_v2.contains("/svc/ünï=☃\n"), "{from_v2}");

    let run = migrate(&etcd, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let check = setup.onetime(&etcd, &["--notreally", "--api", "v3"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "v3 would change the file: {}",
        stderr(&check)
    );
    std::fs::remove_file(&target).expect("remove");
    let v3 = setup.onetime(&etcd, &["--api", "v3"]);
    assert_eq!(v3.status.code(), Some(0), "{}", stderr(&v3));
    assert_eq!(support::read(&target).as_deref(), Some(from_v2.as_str()));
}

#[test]
fn a_cluster_without_v2_is_named_and_told_to_migrate_before_upgrading() {
    let etcd = Etcd::start_v3();
    let run = migrate(&etcd, &["--api", "v3"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let text = stderr(&run);
    assert!(text.contains(&etcd.url()), "{text}");
    assert!(text.contains("does not serve etcd's v2 API"), "{text}");
    assert!(
        text.contains("migrate before upgrading etcd to 3.6"),
        "{text}"
    );
    assert_eq!(stdout(&run), "");
}

#[test]
fn a_missing_key_and_stray_flags_are_refused() {
    let etcd = Etcd::start();
    let missing = migrate(&etcd, &["-k", "/nothing/here"]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("/nothing/here: no such key in v2"),
        "{}",
        stderr(&missing)
    );
    let stray = util(&etcd, &["-k", "/a", "--dry-run"]);
    assert_eq!(stray.status.code(), Some(2));
    assert!(stderr(&stray).contains("only for -o MIGRATE"));
}
