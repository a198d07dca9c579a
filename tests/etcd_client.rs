//! The v2 client against a real etcd: requests, typed errors, watches, failover.

mod support;

use reconfig::etcd::v2::{Client, SetOptions};
use reconfig::etcd::{ClientOptions, Error, ErrorKind, Op, Received, WaitOutcome};
use std::time::{Duration, Instant};
use support::{both_apis, free_port, Api, Etcd};

#[test]
fn keys_with_spaces_unicode_and_reserved_characters_round_trip() {
    let etcd = Etcd::start();
    let client = etcd.client();
    for key in [
        "/e/sp ace",
        "/e/q?x=1#frag",
        "/e/100%",
        "/e/ключ/ü",
        "/e/plus+amp&",
    ] {
        client
            .set(key, Some("v a l"), &SetOptions::default())
            .unwrap_or_else(|e| panic!("set {key}: {e}"));
        let got = client.get(key, false).expect("get");
        assert_eq!(got.node.key(), key);
        assert_eq!(got.node.value.as_deref(), Some("v a l"));
    }
    let all = client.get("/e", true).expect("recursive get").node.leaves();
    assert_eq!(all.len(), 5);
    assert!(all.contains_key("/e/ключ/ü"));
}

#[test]
fn typed_errors_carry_etcd_message_cause_and_index() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let missing = client.get("/nope/x", false).expect_err("missing key");
    assert!(missing.is_key_not_found());
    assert_eq!(missing.to_string(), "key not found: /nope/x");

    client
        .set("/d/f", Some("1"), &SetOptions::default())
        .expect("set");
    let not_file = client
        .set("/d", Some("x"), &SetOptions::default())
        .expect_err("dir");
    assert_eq!(not_file.kind(), ErrorKind::IsDirectory);
    let not_dir = client
        .set("/d/f/g", Some("x"), &SetOptions::default())
        .expect_err("under file");
    assert_eq!(not_dir.kind(), ErrorKind::NotADirectory);
    let exists = client
        .set(
            "/d/f",
            Some("2"),
            &SetOptions {
                prev_exist: Some(false),
                ..Default::default()
            },
        )
        .expect_err("exists");
    assert_eq!(exists.kind(), ErrorKind::AlreadyExists);
    let cas = client
        .set(
            "/d/f",
            Some("2"),
            &SetOptions {
                prev_value: Some("wrong".into()),
                ..Default::default()
            },
        )
        .expect_err("compare");
    assert_eq!(cas.kind(), ErrorKind::CompareFailed);
    let not_empty = client.delete("/d", false, true).expect_err("non-empty dir");
    assert_eq!(not_empty.kind(), ErrorKind::DirectoryNotEmpty);
    match not_empty {
        Error::Etcd(e) => {
            assert_eq!(e.number, 108);
            assert_eq!(e.cause, "/d");
            assert!(e.index > 0);
            assert_eq!(e.endpoint, etcd.url());
        }
        other => panic!("expected an etcd error, got {other}"),
    }
    // prevIndex and refresh work as etcd documents them.
    let current = client.get("/d/f", false).expect("get").node.modified_index;
    client
        .set(
            "/d/f",
            Some("3"),
            &SetOptions {
                prev_index: Some(current),
                ..Default::default()
            },
        )
        .expect("CAS by index");
    client
        .set(
            "/d/t",
            Some("x"),
            &SetOptions {
                ttl: Some(60),
                ..Default::default()
            },
        )
        .expect("ttl");
    let refreshed = client
        .set(
            "/d/t",
            None,
            &SetOptions {
                ttl: Some(120),
                refresh: true,
                prev_exist: Some(true),
                ..Default::default()
            },
        )
        .expect("refresh");
    assert_eq!(refreshed.node.value.as_deref(), Some("x"));
    assert!(refreshed.node.ttl.unwrap_or(0) > 60);
}

#[test]
fn snapshot_gives_leaves_and_an_index_to_watch_from() {
    let etcd = Etcd::start();
    let client = etcd.client();
    etcd.put("/app/b", "2");
    etcd.put("/app/a/x", "1");
    let snap = client.snapshot("/app", true).expect("snapshot");
    let data = snap.data.expect("exists");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["/app/a/x", "/app/b"]);
    let missing = client
        .snapshot("/none", true)
        .expect("snapshot of missing key");
    assert_eq!(missing.data, None);
    assert_eq!(missing.index, snap.index);

    // A write after the snapshot is seen by a wait from the snapshot's index, even though
    // it happened before the wait started: nothing is lost between read and watch.
    etcd.put("/app/c", "3");
    match client.wait("/app", true, snap.index).expect("wait") {
        WaitOutcome::Changed(change) => {
            assert_eq!(change.index, snap.index + 1);
            assert_eq!(change.key, "/app/c");
            assert_eq!(change.op, Op::Put("3".to_string()));
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn watch_blocks_until_a_change_and_reports_the_event() {
    let etcd = Etcd::start();
    let client = etcd.client();
    etcd.put("/w/a", "1");
    let start = client.get("/w", true).expect("get").etcd_index;
    let writer = {
        let client = etcd.client();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            client
                .set("/w/sub/b", Some("2"), &SetOptions::default())
                .expect("set");
        })
    };
    let began = Instant::now();
    let event = client
        .watch("/w", true, Some(start + 1))
        .expect("watch")
        .expect("event");
    assert!(began.elapsed() >= Duration::from_millis(250));
    assert_eq!(event.action, "set");
    assert_eq!(event.node.key(), "/w/sub/b");
    assert_eq!(event.node.value.as_deref(), Some("2"));
    writer.join().expect("writer");

    etcd.delete("/w/sub", true);
    let event = client
        .watch("/w", true, Some(event.node.modified_index + 1))
        .expect("watch")
        .expect("event");
    assert_eq!(event.action, "delete");
    assert!(event.node.dir);
    assert!(event.prev_node.is_some());
}

#[test]
fn watch_from_an_index_older_than_history_asks_for_a_resync() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let start = client.snapshot("/hist", true).expect("snapshot").index;
    for i in 0..1005 {
        client
            .set("/other/k", Some(&i.to_string()), &SetOptions::default())
            .expect("set");
    }
    let err = client
        .watch("/hist", true, Some(start + 1))
        .expect_err("cleared");
    assert!(err.is_history_gone(), "got {err}");
    assert_eq!(
        client.wait("/hist", true, start).expect("wait"),
        WaitOutcome::Resync
    );
}

#[test]
fn watch_returns_none_when_its_bound_passes() {
    let etcd = Etcd::start();
    let client = Client::new(ClientOptions {
        endpoints: vec![etcd.url()],
        watch_timeout: Duration::from_millis(400),
        ..ClientOptions::default()
    })
    .expect("client");
    let began = Instant::now();
    assert_eq!(client.watch("/quiet", true, None).expect("watch"), None);
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn failover_moves_to_a_live_endpoint_and_remembers_it() {
    let etcd = Etcd::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let client = Client::new(ClientOptions {
        endpoints: vec![dead.clone(), etcd.url()],
        ..ClientOptions::default()
    })
    .expect("client");
    client
        .set("/f/k", Some("v"), &SetOptions::default())
        .expect("set through failover");
    assert_eq!(client.endpoints()[0], etcd.url());
    assert_eq!(
        client
            .get("/f/k", false)
            .expect("get")
            .node
            .value
            .as_deref(),
        Some("v")
    );
}

#[test]
fn all_endpoints_down_is_one_error_naming_each() {
    let a = format!("http://127.0.0.1:{}", free_port());
    let b = format!("http://127.0.0.1:{}", free_port());
    let client = Client::new(ClientOptions {
        endpoints: vec![a.clone(), b.clone()],
        ..ClientOptions::default()
    })
    .expect("client");
    let began = Instant::now();
    let err = client.get("/k", false).expect_err("down");
    assert!(began.elapsed() < Duration::from_secs(5));
    let text = err.to_string();
    assert!(
        matches!(err, Error::Unavailable(ref v) if v.len() == 2),
        "{text}"
    );
    assert!(
        text.contains(&a) && text.contains(&b) && text.contains("connection refused"),
        "{text}"
    );
}

#[test]
fn cluster_information_for_version() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let (endpoint, version) = client.version().expect("version");
    assert_eq!(endpoint, etcd.url());
    assert!(version.etcdserver.starts_with("3."), "{version:?}");
    let (_, members) = client.members().expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].name, etcd.name);
    let leader = client.leader().expect("leader");
    assert_eq!(leader, members[0].id);
}

#[test]
fn shutdown_interrupts_a_pending_watch() {
    let etcd = Etcd::start();
    let client = etcd.client();
    let watcher = {
        let client = client.clone();
        std::thread::spawn(move || client.watch("/never", true, None))
    };
    std::thread::sleep(Duration::from_millis(200));
    let began = Instant::now();
    client.shutdown();
    let result = watcher.join().expect("watcher thread");
    assert!(began.elapsed() < Duration::from_secs(1));
    assert!(matches!(result, Err(Error::Shutdown)), "{result:?}");
}

#[test]
fn an_event_with_newer_writes_behind_it_is_not_the_newest() {
    let etcd = Etcd::start();
    let client = etcd.client();
    etcd.put("/burst/a", "0");
    let snap = client.snapshot("/burst", true).expect("snapshot");
    etcd.put("/burst/a", "1");
    etcd.put("/elsewhere", "x");
    let WaitOutcome::Changed(first) = client.wait("/burst", true, snap.index).expect("wait") else {
        panic!("expected a change");
    };
    assert_eq!(first.op, Op::Put("1".to_string()));
    assert!(!first.was_newest(), "a write came after it: {first:?}");
    let latest = client.snapshot("/", true).expect("snapshot").index;
    let waiter = std::thread::spawn(move || client.wait("/burst", true, latest));
    std::thread::sleep(std::time::Duration::from_millis(200));
    etcd.put("/burst/a", "2");
    let Ok(WaitOutcome::Changed(last)) = waiter.join().expect("no panic") else {
        panic!("expected a change");
    };
    assert!(last.was_newest(), "nothing after it: {last:?}");
}

both_apis!(a_subscription_receives_every_change_in_order_until_shut_down);
fn a_subscription_receives_every_change_in_order_until_shut_down(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/sub/a", "0");
    let client = etcd.kv();
    let read = client.snapshot("/sub", true).expect("snapshot");
    let mut changes = client.subscribe("/sub", true, read.index);
    // Written before the first receive: the subscription starts from the read's index,
    // not from when it is first asked.
    etcd.put("/sub/a", "1");
    etcd.put("/sub/b", "2");
    etcd.delete("/sub/a", false);
    let mut seen = Vec::new();
    for _ in 0..3 {
        match changes.recv_timeout(Duration::from_secs(5)) {
            Received::Change(change) => seen.push((change.key, change.op)),
            other => panic!("expected a change, got {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("/sub/a".to_string(), Op::Put("1".to_string())),
            ("/sub/b".to_string(), Op::Put("2".to_string())),
            ("/sub/a".to_string(), Op::Delete),
        ]
    );
    let asked = Instant::now();
    assert!(matches!(
        changes.recv_timeout(Duration::from_millis(300)),
        Received::Quiet
    ));
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let stopper = client.clone();
    let shutdown = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stopper.shutdown();
    });
    assert!(matches!(changes.recv(), Received::Stopped));
    shutdown.join().expect("shutdown thread");
}

/// v2's history holds 1000 events: a subscription whose index fell out of it (the daemon's
/// watch was down meanwhile) says "read again", and the read has the change.
#[test]
fn a_subscription_more_than_1000_events_behind_reads_again() {
    let etcd = Etcd::start();
    etcd.put("/hist/a", "1");
    let client = etcd.kv();
    let read = client.snapshot("/hist", true).expect("snapshot");
    let mut changes = client.subscribe("/hist", true, read.index);
    etcd.put("/hist/b", "2");
    let v2 = etcd.client();
    for i in 0..1100 {
        v2.set("/other/n", Some(&i.to_string()), &SetOptions::default())
            .expect("set");
    }
    match changes.recv_timeout(Duration::from_secs(5)) {
        Received::ReadAgain => {}
        other => panic!("expected read again, got {other:?}"),
    }
    let again = client.snapshot("/hist", true).expect("snapshot");
    assert_eq!(
        again.data.expect("data")["/hist/b"],
        "2",
        "the change is in the new read"
    );
}
