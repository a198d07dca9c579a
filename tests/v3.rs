//! What only v3 has, on a v3-only etcd (`--enable-v2=false`, as etcd 3.5 and newer run by
//! default): `--api auto` choosing v3, key prefixes, lease expiry, paged reads, compaction,
//! token auth. Behaviour both APIs share is tested once for both (`both_apis!` in the other
//! test files), not here.

mod support;

use serde_json::json;
use std::process::Output;
use std::time::Duration;
use support::daemon::{wait_content, Setup};
use support::observe::watch_streams;
use support::v3::{assert_quiet, b64, gateway, puts, receive, receive_across_an_outage};
use support::{run_bin, stderr, Etcd};

const UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const SECS: Duration = Duration::from_secs(10);

fn util(etcd: &Etcd, args: &[&str]) -> Output {
    let url = etcd.url();
    let mut all = vec!["--endpoints", url.as_str()];
    all.extend_from_slice(args);
    run_bin(UTIL, &all, Duration::from_secs(20))
}

fn put(etcd: &Etcd, key: &str, value: &str) {
    etcd.v3_client()
        .put(key, value, None)
        .unwrap_or_else(|e| panic!("v3 put {key}: {e}"));
}

#[test]
fn the_daemon_converges_a_file_from_v3_data_and_follows_a_put_and_a_delete() {
    let etcd = Etcd::start_v3();
    put(&etcd, "/svc/b", "10.0.0.2:80");
    put(&etcd, "/svc/a", "10.0.0.1:80");
    // Not under /svc/: a recursive /svc is the key itself plus every key under /svc/.
    put(&etcd, "/svcX", "not mine");
    put(&etcd, "/svc-x/y", "not mine");
    let setup = Setup::new();
    setup.resource("svc", setup.list_resource("svc", "/svc"));
    let target = setup.out("svc.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/svc/a=10.0.0.1:80\n/svc/b=10.0.0.2:80\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains("speaking etcd's v3 API (--api auto: the cluster does not serve v2)"),
        "{}",
        daemon.log_text()
    );
    put(&etcd, "/svc/c", "10.0.0.3:80");
    assert!(
        wait_content(
            &target,
            "/svc/a=10.0.0.1:80\n/svc/b=10.0.0.2:80\n/svc/c=10.0.0.3:80\n",
            SECS
        ),
        "{}",
        daemon.log_text()
    );
    etcd.v3_client().delete("/svc/a", false).expect("delete");
    assert!(
        wait_content(&target, "/svc/b=10.0.0.2:80\n/svc/c=10.0.0.3:80\n", SECS),
        "{}",
        daemon.log_text()
    );
    let (out, _) = daemon.terminate();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_key_whose_lease_expires_leaves_the_file() {
    let etcd = Etcd::start_v3();
    put(&etcd, "/lease/a", "stays");
    etcd.v3_client()
        .put("/lease/b", "goes", Some(2))
        .expect("put with a lease");
    let setup = Setup::new();
    setup.resource("lease", setup.list_resource("lease", "/lease"));
    let target = setup.out("lease.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/lease/a=stays\n/lease/b=goes\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(
        wait_content(&target, "/lease/a=stays\n", SECS),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn onetime_reads_a_tree_larger_than_one_page() {
    let etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    for i in 0..1200 {
        client
            .put(&format!("/big/k{i:04}"), &format!("v{i}"), None)
            .expect("put");
    }
    let setup = Setup::new();
    setup.template(
        "count.tmpl",
        "{{ reconfig.data | length }} {{ reconfig.data['/big/k1199'] }}\n",
    );
    setup.resource(
        "big",
        json!({"key": "/big", "recursive": true, "source": "count.tmpl",
               "target": setup.out("big.conf")}),
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("big.conf")).as_deref(),
        Some("1200 v1199\n")
    );
}

#[test]
fn api_v2_on_a_v3_only_etcd_says_to_enable_v2_or_use_v3() {
    let etcd = Etcd::start_v3();
    let out = util(&etcd, &["--api", "v2", "-k", "/a"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("--enable-v2"), "{}", stderr(&out));
    let bad = util(&etcd, &["--api", "v4", "-k", "/a"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--api: \"v4\" is not one of v2, v3, auto"),
        "{}",
        stderr(&bad)
    );
}

/// The watch bound (`--watch-timeout`) passing on a quiet stream is not an outage: the
/// daemon reads again without logging that etcd is unreachable.
#[test]
fn a_quiet_watch_reaching_its_bound_is_not_an_outage() {
    let etcd = Etcd::start_v3();
    put(&etcd, "/quiet/a", "1");
    let setup = Setup::new();
    setup.resource("quiet", setup.list_resource("quiet", "/quiet"));
    let daemon = setup.daemon(&etcd, &["--watch-timeout", "1"]);
    assert!(wait_content(&setup.out("quiet.conf"), "/quiet/a=1\n", SECS));
    std::thread::sleep(Duration::from_millis(2500));
    put(&etcd, "/quiet/b", "2");
    assert!(wait_content(
        &setup.out("quiet.conf"),
        "/quiet/a=1\n/quiet/b=2\n",
        SECS
    ));
    let log = daemon.log_text();
    assert!(!log.contains("unreachable"), "{log}");
}

/// A watch whose start revision etcd compacted away (the daemon was behind) is not waited
/// on forever: it reads again, and the new read has every change.
#[test]
fn a_watch_from_a_compacted_revision_reads_again() {
    let etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    client.put("/c/a", "1", None).expect("put");
    let before = client.snapshot("/c", true).expect("snapshot");
    client.put("/c/a", "2", None).expect("put");
    client.put("/c/b", "3", None).expect("put");
    let compact = format!(r#"{{"revision":"{}","physical":true}}"#, before.index + 2);
    gateway(&etcd, "/v3/kv/compaction", &compact, None);
    let began = std::time::Instant::now();
    let outcome = client
        .wait_within("/c", true, before.index, Some(Duration::from_secs(8)))
        .expect("wait");
    assert_eq!(outcome, reconfig::etcd::WaitOutcome::Resync);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let after = client.snapshot("/c", true).expect("snapshot");
    let data = after.data.expect("data");
    assert_eq!((data["/c/a"].as_str(), data["/c/b"].as_str()), ("2", "3"));
}

/// With auth on, the daemon authenticates, and when its token expires (etcd's
/// `--auth-token-ttl`) its open watch stream goes on, and the next request it makes (a
/// read, refused the expired token) fetches a new token first.
#[test]
fn the_daemon_follows_changes_with_v3_auth_across_token_expiry() {
    let etcd = Etcd::start_with(
        None,
        vec![
            "--enable-v2=false".into(),
            "--auth-token-ttl".into(),
            "2".into(),
        ],
    );
    gateway(
        &etcd,
        "/v3/auth/user/add",
        r#"{"name":"root","password":"pw"}"#,
        None,
    );
    gateway(
        &etcd,
        "/v3/auth/user/grant",
        r#"{"user":"root","role":"root"}"#,
        None,
    );
    gateway(&etcd, "/v3/auth/enable", "{}", None);
    let token_answer = gateway(
        &etcd,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
        None,
    );
    let token: serde_json::Value = serde_json::from_str(&token_answer).expect("token json");
    let token = token["token"].as_str().expect("a token").to_string();
    let put_as_root = |key: &str, value: &str| {
        let token_answer = gateway(
            &etcd,
            "/v3/auth/authenticate",
            r#"{"name":"root","password":"pw"}"#,
            None,
        );
        let fresh: serde_json::Value = serde_json::from_str(&token_answer).expect("token json");
        let body = json!({"key": b64(key), "value": b64(value)}).to_string();
        let answer = gateway(&etcd, "/v3/kv/put", &body, fresh["token"].as_str());
        assert!(answer.contains("revision"), "{answer}");
    };
    put_as_root("/auth/a", "1");
    let setup = Setup::new();
    setup.resource("auth", setup.list_resource("auth", "/auth"));
    let target = setup.out("auth.conf");
    let daemon = setup.daemon(&etcd, &["--username", "root", "--password", "pw", "-d"]);
    assert!(
        wait_content(&target, "/auth/a=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    // Long past the token's life (unused since the watch began): the next request the
    // daemon makes needs a new token.
    std::thread::sleep(Duration::from_secs(4));
    let stale = gateway(
        &etcd,
        "/v3/kv/range",
        &json!({"key": b64("/auth/a")}).to_string(),
        Some(&token),
    );
    assert!(stale.contains("invalid auth token"), "{stale}");
    // The open stream reports this one: it needs no new token.
    put_as_root("/auth/b", "2");
    assert!(
        wait_content(&target, "/auth/a=1\n/auth/b=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    // Two keys in one transaction share a revision: the daemon reads them in one read,
    // which is refused the old token.
    let token_answer = gateway(
        &etcd,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
        None,
    );
    let fresh: serde_json::Value = serde_json::from_str(&token_answer).expect("token json");
    let put =
        |key: &str, value: &str| json!({"request_put": {"key": b64(key), "value": b64(value)}});
    let txn = json!({"success": [put("/auth/c", "3"), put("/auth/d", "4")]}).to_string();
    let answer = gateway(&etcd, "/v3/kv/txn", &txn, fresh["token"].as_str());
    assert!(answer.contains("succeeded"), "{answer}");
    assert!(
        wait_content(
            &target,
            "/auth/a=1\n/auth/b=2\n/auth/c=3\n/auth/d=4\n",
            SECS
        ),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("authenticating again"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

/// A v3 subscription keeps ONE watch stream open and reads every later change from it: a
/// burst of 200 writes (several per stream message) arrives complete and in order, and
/// etcd saw one watch stream opened, not one per change.
#[test]
fn a_burst_of_200_changes_arrives_in_order_over_one_watch_stream() {
    let etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    client.put("/burst/n", "start", None).expect("put");
    let read = client.snapshot("/burst", true).expect("snapshot");
    let streams_before = watch_streams(&etcd).started;
    let mut changes = client.subscribe("/burst", true, read.index);
    let writer = etcd.v3_client();
    for n in 0..200 {
        writer
            .put("/burst/n", &n.to_string(), None)
            .expect("burst put");
    }
    assert_eq!(receive(&mut changes, 200), puts("/burst/n", 0..200));
    assert_quiet(&mut changes);
    assert_eq!(watch_streams(&etcd).started - streams_before, 1);
}

/// etcd killed and restarted under an open watch stream: the subscription reports the
/// outage at most once (the stream, opened again at once, found etcd down) and then watches
/// again from the revision after the last change it handed out, so the changes written
/// before the kill and after the restart all arrive, none twice, without a read again.
#[test]
fn a_watch_stream_cut_by_an_etcd_restart_resumes_without_loss_or_duplicates() {
    let mut etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    client.put("/cut/n", "start", None).expect("put");
    let read = client.snapshot("/cut", true).expect("snapshot");
    let mut changes = client.subscribe("/cut", true, read.index);
    for n in 0..100 {
        client.put("/cut/n", &n.to_string(), None).expect("put");
    }
    // Half of them taken before the kill; the rest were on the stream or in etcd only.
    assert_eq!(receive(&mut changes, 50), puts("/cut/n", 0..50));
    etcd.restart();
    let client = etcd.v3_client();
    for n in 100..150 {
        client.put("/cut/n", &n.to_string(), None).expect("put");
    }
    assert_eq!(
        receive_across_an_outage(&mut changes, 100),
        puts("/cut/n", 50..150)
    );
    assert_quiet(&mut changes);
}

/// A live stream broken while etcd compacts the history it would resume from: the
/// subscription says "read again" (after reporting the outage at most once; it does not
/// wait on a canceled watch), and the read has the latest value.
#[test]
fn a_watch_stream_resuming_into_compacted_history_reads_again() {
    let mut etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    client.put("/gone/a", "0", None).expect("put");
    let read = client.snapshot("/gone", true).expect("snapshot");
    let mut changes = client.subscribe("/gone", true, read.index);
    client.put("/gone/a", "1", None).expect("put");
    assert_eq!(receive(&mut changes, 1), puts("/gone/a", 1..2));
    etcd.restart();
    let writer = etcd.v3_client();
    writer.put("/gone/a", "2", None).expect("put");
    writer.put("/gone/a", "3", None).expect("put");
    let latest = writer.snapshot("/gone", true).expect("snapshot").index;
    let compact = format!(r#"{{"revision":"{latest}","physical":true}}"#);
    gateway(&etcd, "/v3/kv/compaction", &compact, None);
    let began = std::time::Instant::now();
    let mut received = changes.recv_timeout(SECS);
    if matches!(&received, reconfig::etcd::Received::Failed(e) if e.is_outage()) {
        received = changes.recv_timeout(SECS);
    }
    match received {
        reconfig::etcd::Received::ReadAgain => {}
        other => panic!("expected read again, got {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let again = client.snapshot("/gone", true).expect("snapshot");
    assert_eq!(again.data.expect("data")["/gone/a"], "3");
}

/// The daemon follows a burst of 200 writes to its key over the watch stream it already
/// holds: the file ends with the last value and etcd saw no further watch stream opened
/// (one per change before).
#[test]
fn the_daemon_follows_a_burst_of_200_writes_without_opening_another_watch_stream() {
    let etcd = Etcd::start_v3();
    put(&etcd, "/many/n", "start");
    let setup = Setup::new();
    setup.resource("many", setup.list_resource("many", "/many"));
    let target = setup.out("many.conf");
    let daemon = setup.daemon(&etcd, &[]);
    assert!(
        wait_content(&target, "/many/n=start\n", SECS),
        "{}",
        daemon.log_text()
    );
    // The daemon's stream is open once it reported the read and the pass wrote the file;
    // a first write through it proves it.
    put(&etcd, "/many/n", "first");
    assert!(wait_content(&target, "/many/n=first\n", SECS));
    let streams_before = watch_streams(&etcd).started;
    let writer = etcd.v3_client();
    for n in 0..200 {
        writer
            .put("/many/n", &n.to_string(), None)
            .expect("burst put");
    }
    assert!(
        wait_content(&target, "/many/n=199\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert_eq!(watch_streams(&etcd).started, streams_before);
}
