//! On v3 a client (and its clones) holds ONE `/v3/watch` stream to etcd, carrying the watch of
//! every subscription made through it (events routed by `watch_id`), instead of one stream
//! per subscription; the daemon then holds one stream however many distinct keys it
//! watches. What a subscription receives does not change: every change to its key in
//! order, exactly once, and "read again" when its own history is compacted away or a
//! transaction changes several of its keys at once, while the other keys on the stream go
//! on.
//!
//! Open streams are counted by etcd itself (`/metrics`): the gRPC server's started `Watch`
//! calls less the handled (ended) ones.

mod support;

use reconfig::etcd::{Client, ClientOptions, Received, Subscription};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::cutting_proxy::CuttingProxy;
use support::daemon::{wait_content, Daemon, Setup};
use support::observe::{connections_to, watch_streams, Streams};
use support::v3::{assert_quiet, b64, gateway, puts, receive};
use support::{eventually, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// Waits (`within` at most) until etcd has exactly `wanted` watch streams open; what it saw
/// last.
fn open_streams_become(etcd: &Etcd, wanted: u64, within: Duration) -> (bool, Streams) {
    let mut seen = Streams::default();
    let reached = eventually(within, || {
        seen = watch_streams(etcd);
        seen.open() == wanted
    });
    (reached, seen)
}

/// The most connections a daemon following several keys keeps to etcd: its watch stream,
/// which has a connection of its own, and the pooled ones its reads used, of which it runs
/// as many at once as it has cores (2 at least).
fn most_connections() -> usize {
    1 + std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Waits until etcd has one watch stream open and the daemon at most [`most_connections`]
/// to it; the last (streams, connections) seen.
fn one_stream_and_few_connections(
    etcd: &Etcd,
    pid: i32,
    within: Duration,
) -> (bool, Streams, usize) {
    let mut seen = (Streams::default(), 0);
    let settled = eventually(within, || {
        seen = (watch_streams(etcd), connections_to(pid, etcd.client_port));
        seen.0.open() == 1 && seen.1 <= most_connections()
    });
    (settled, seen.0, seen.1)
}

fn put(client: &Client, key: &str, value: &str) {
    client
        .put(key, value, None)
        .unwrap_or_else(|e| panic!("v3 put {key}: {e}"));
}

/// The current revision of etcd's store.
fn revision(client: &Client) -> u64 {
    client.snapshot("/", true).expect("snapshot").index
}

/// The daemon's step after "read again" on /a: drop `a`, read /a, subscribe after the
/// read (quiet at first). Then /b's puts from `b_from` up to 50 and one put to /a (`a_put`):
/// `b` has received all 50 of /b's puts exactly once and in order, the new /a subscription
/// just its put. The read's data, for the caller to check.
fn read_a_again_then_both_go_on(
    client: &Client,
    writer: &Client,
    a: Subscription,
    b: &mut Subscription,
    b_from: usize,
    a_put: (&str, &str),
) -> BTreeMap<String, String> {
    drop(a);
    let again = client.snapshot("/a", true).expect("snapshot /a");
    let mut a = client.subscribe("/a", true, again.index);
    assert_quiet(&mut a);
    for n in b_from..50 {
        put(writer, "/b/n", &n.to_string());
    }
    put(writer, a_put.0, a_put.1);
    assert_eq!(receive(b, 50), puts("/b/n", 0..50));
    assert_quiet(b);
    assert_eq!(
        receive(&mut a, 1),
        vec![(a_put.0.to_string(), a_put.1.to_string())]
    );
    assert_quiet(&mut a);
    again.data.expect("data")
}

/// Three subscriptions of one client, on three keys, joining at different moments (two of
/// them while the first has 50 changes waiting on the stream): each receives exactly its
/// own 100 changes, in order, and etcd then serves ONE watch stream, not one per
/// subscription.
#[test]
fn three_subscriptions_on_different_keys_share_one_open_watch_stream() {
    let etcd = Etcd::start_v3();
    let writer = etcd.v3_client();
    for key in ["/a/n", "/b/n", "/c/n"] {
        put(&writer, key, "start");
    }
    let client = etcd.v3_client();
    let after = revision(&client);
    let mut a = client.subscribe("/a", true, after);
    let mut b = client.clone().subscribe("/b", true, after);
    let mut c = client.subscribe("/c", true, after);
    // /a watches first; /b and /c join once the first half is written.
    assert_quiet(&mut a);
    for n in 0..50 {
        for key in ["/a/n", "/b/n", "/c/n"] {
            put(&writer, key, &n.to_string());
        }
    }
    assert_eq!(receive(&mut b, 10), puts("/b/n", 0..10));
    assert_eq!(receive(&mut c, 10), puts("/c/n", 0..10));
    for n in 50..100 {
        for key in ["/a/n", "/b/n", "/c/n"] {
            put(&writer, key, &n.to_string());
        }
    }
    assert_eq!(receive(&mut a, 100), puts("/a/n", 0..100));
    assert_eq!(receive(&mut b, 90), puts("/b/n", 10..100));
    assert_eq!(receive(&mut c, 90), puts("/c/n", 10..100));
    for changes in [&mut a, &mut b, &mut c] {
        assert_quiet(changes);
    }
    let (one, seen) = open_streams_become(&etcd, 1, SECS);
    assert!(one, "three subscriptions of one client: {seen}");
}

/// A daemon following `keys` distinct keys: resource `r<n>` on key `<prefix><n>`.
struct DistinctKeys {
    setup: Setup,
    daemon: Daemon,
    prefix: &'static str,
    keys: usize,
}

impl DistinctKeys {
    /// Starts the daemon with `<prefix><n>/v` = 1 in etcd; returns once every file holds
    /// it and has followed a put of 2 to every key.
    fn start(etcd: &Etcd, prefix: &'static str, keys: usize) -> DistinctKeys {
        let writer = etcd.v3_client();
        let setup = Setup::new();
        for n in 0..keys {
            put(&writer, &format!("{prefix}{n}/v"), "1");
            let name = format!("r{n}");
            setup.resource(&name, setup.list_resource(&name, &format!("{prefix}{n}")));
        }
        let daemon = setup.daemon(etcd, &[]);
        let started = DistinctKeys {
            setup,
            daemon,
            prefix,
            keys,
        };
        started.every_file_holds("1");
        started.every_file_follows(&writer, "2");
        started
    }

    /// Puts `value` to every key and waits until every file holds it.
    fn every_file_follows(&self, writer: &Client, value: &str) {
        for n in 0..self.keys {
            put(writer, &format!("{}{n}/v", self.prefix), value);
        }
        self.every_file_holds(value);
    }

    fn every_file_holds(&self, value: &str) {
        for n in 0..self.keys {
            let target = self.setup.out(&format!("r{n}.conf"));
            assert!(
                wait_content(&target, &format!("{}{n}/v={value}\n", self.prefix), SECS),
                "r{n}: {}",
                self.daemon.log_text()
            );
        }
    }
}

/// Ten resources on ten different keys: every file is written and follows a put on its
/// key, and the daemon then holds one watch stream and a few connections to etcd (the
/// stream and the pooled ones of its reads; one per key before).
#[test]
fn a_daemon_with_ten_distinct_keys_holds_one_watch_stream() {
    let etcd = Etcd::start_on(Api::V3);
    let ten = DistinctKeys::start(&etcd, "/k", 10);
    let (settled, streams, connections) =
        one_stream_and_few_connections(&etcd, ten.daemon.pid(), SECS);
    assert!(
        settled,
        "ten watched keys: {streams}; {connections} connection(s) from the daemon to etcd"
    );
}

/// A key as long as a fleet's, say
/// `/services/<service>/<environment>/<region>/<group>/backends/<n>`.
const KEY_OF_A_FLEET: &str =
    "/services/checkout-frontend/production/eu-west-1/autoscaled-web/backends/";

/// etcd's HTTP server drops what its handler has not read of a request body once the
/// handler starts answering, unless the connection is to close after the answer; its
/// gateway reads a watch request's messages after the first one while the first one's
/// answer is on its way. With 8 Go processors (etcd's default on an 8-core host) it lost
/// the end of many a many-watch request here, and the keys whose watches were lost were
/// never followed. A daemon following 100 keys there, started and then sent SIGHUP twice,
/// gets every watch to etcd the first time: every file follows its key, and no watch had to
/// be sent again.
#[test]
fn every_watch_of_a_daemon_with_many_keys_reaches_etcd_the_first_time() {
    let etcd = Etcd::start_v3_with_env(&[("GOMAXPROCS", "8")]);
    let fleet = DistinctKeys::start(&etcd, KEY_OF_A_FLEET, 100);
    let writer = etcd.v3_client();
    let generation_started = format!("now watching {} resource(s)", fleet.keys);
    // Each SIGHUP reads every key again and sends every watch anew.
    for round in 1..=2 {
        fleet.daemon.signal(libc::SIGHUP);
        let generations = || fleet.daemon.log_text().matches(&generation_started).count();
        assert!(
            eventually(SECS, || generations() == round),
            "{}",
            fleet.daemon.log_text()
        );
        fleet.every_file_follows(&writer, &(round + 2).to_string());
    }
    let log = fleet.daemon.log_text();
    assert!(!log.contains("watches sent for"), "{log}");
}

/// A stream that loses the end of its request on the way to etcd (here a proxy drops it)
/// is sent again a moment after etcd confirmed the watches it got: the key whose watch
/// was lost receives its change within seconds, not after the watch timeout (5 min).
#[test]
fn a_watch_lost_on_the_way_to_etcd_is_sent_again() {
    let etcd = Etcd::start_v3();
    let proxy = CuttingProxy::start(etcd.client_port);
    let writer = etcd.v3_client();
    put(&writer, "/a/n", "start");
    put(&writer, "/b/n", "start");
    let client = Client::connect(reconfig::etcd::Api::V3, false, || ClientOptions {
        endpoints: vec![proxy.url()],
        ..ClientOptions::default()
    })
    .expect("v3 client through the proxy");
    let after = revision(&client);
    let mut a = client.subscribe("/a", true, after);
    let mut b = client.clone().subscribe("/b", true, after);
    // /a watches alone, then /a and /b on one stream, which the proxy cuts to /a.
    assert_quiet(&mut a);
    assert_quiet(&mut b);
    put(&writer, "/b/n", "0");
    put(&writer, "/a/n", "0");
    assert_eq!(receive(&mut b, 1), puts("/b/n", 0..1));
    assert_eq!(receive(&mut a, 1), puts("/a/n", 0..1));
    assert_eq!(proxy.cuts(), 1, "the proxy cut one watch request");
}

/// A subscription joining after an index that etcd then compacted away reads again
/// (within 5 s), while another subscription of the same client, receiving on the same
/// stream, gets every one of 50 puts written before, during and after that exactly once
/// and in order; the key read again is followed anew after its read.
#[test]
fn a_compacted_watch_reads_again_while_the_other_keys_on_the_stream_go_on() {
    let etcd = Etcd::start_v3();
    let writer = etcd.v3_client();
    put(&writer, "/b/n", "start");
    let client = etcd.v3_client();
    let mut b = client.subscribe("/b", true, revision(&client));
    put(&writer, "/b/n", "open");
    assert_eq!(
        receive(&mut b, 1),
        vec![("/b/n".to_string(), "open".to_string())]
    );

    put(&writer, "/a/k", "1");
    let a_read = client.snapshot("/a", true).expect("snapshot /a").index;
    for value in ["2", "3", "4"] {
        put(&writer, "/a/k", value);
    }
    for n in 0..20 {
        put(&writer, "/b/n", &n.to_string());
    }
    let latest = revision(&writer);
    let compacted = gateway(
        &etcd,
        "/v3/kv/compaction",
        &format!(r#"{{"revision":"{latest}","physical":true}}"#),
        None,
    );
    assert!(compacted.contains("header"), "{compacted}");
    let mut a = client.subscribe("/a", true, a_read);
    for n in 20..35 {
        put(&writer, "/b/n", &n.to_string());
    }
    let began = Instant::now();
    match a.recv_timeout(SECS) {
        Received::ReadAgain => {}
        other => panic!("/a after compacted revision {a_read}: expected read again, got {other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "read again after {:?}",
        began.elapsed()
    );
    let again = read_a_again_then_both_go_on(&client, &writer, a, &mut b, 35, ("/a/k", "5"));
    assert_eq!(again["/a/k"], "4");
}

/// A transaction putting two keys under /a at one revision makes /a's subscription read
/// again; /b's subscription on the same client gets each of its changes, before and after
/// the transaction, exactly once and in order.
#[test]
fn a_transaction_on_one_key_reads_that_key_again_and_the_others_go_on() {
    let etcd = Etcd::start_v3();
    let writer = etcd.v3_client();
    put(&writer, "/a/x", "0");
    put(&writer, "/b/n", "start");
    let client = etcd.v3_client();
    let after = revision(&client);
    let mut a = client.subscribe("/a", true, after);
    let mut b = client.subscribe("/b", true, after);
    put(&writer, "/a/x", "1");
    put(&writer, "/b/n", "open");
    assert_eq!(
        receive(&mut a, 1),
        vec![("/a/x".to_string(), "1".to_string())]
    );
    assert_eq!(
        receive(&mut b, 1),
        vec![("/b/n".to_string(), "open".to_string())]
    );

    for n in 0..20 {
        put(&writer, "/b/n", &n.to_string());
    }
    let request_put =
        |key: &str, value: &str| json!({"request_put": {"key": b64(key), "value": b64(value)}});
    let txn = json!({"success": [request_put("/a/x", "2"), request_put("/a/y", "2")]});
    let answer = gateway(&etcd, "/v3/kv/txn", &txn.to_string(), None);
    assert!(answer.contains("succeeded"), "{answer}");
    for n in 20..40 {
        put(&writer, "/b/n", &n.to_string());
    }
    match a.recv_timeout(SECS) {
        Received::ReadAgain => {}
        other => panic!("/a after a two-key transaction: expected read again, got {other:?}"),
    }
    let data = read_a_again_then_both_go_on(&client, &writer, a, &mut b, 40, ("/a/x", "3"));
    assert_eq!((data["/a/x"].as_str(), data["/a/y"].as_str()), ("2", "2"));
}

/// SIGHUP starts a new generation with a new client: once it follows its three keys, the
/// old generation's stream is closed within 3 s (not left until `--watch-timeout`, 300 s
/// by default): one stream open, at most two connections.
#[test]
fn after_sighup_only_the_new_generations_watch_stream_stays_open() {
    let etcd = Etcd::start_on(Api::V3);
    let writer = etcd.v3_client();
    let setup = Setup::new();
    let keys = ["/x", "/y", "/z"];
    for (n, key) in keys.iter().enumerate() {
        put(&writer, &format!("{key}/v"), "1");
        let name = format!("r{n}");
        setup.resource(&name, setup.list_resource(&name, key));
    }
    let daemon = setup.daemon(&etcd, &[]);
    let follows = |value: &str| {
        for (n, key) in keys.iter().enumerate() {
            put(&writer, &format!("{key}/v"), value);
            let target = setup.out(&format!("r{n}.conf"));
            assert!(
                wait_content(&target, &format!("{key}/v={value}\n"), SECS),
                "r{n}: {}",
                daemon.log_text()
            );
        }
    };
    follows("2");
    daemon.signal(libc::SIGHUP);
    assert!(
        daemon.wait_log("now watching 3 resource(s)", SECS),
        "{}",
        daemon.log_text()
    );
    follows("3");
    let (settled, streams, connections) =
        one_stream_and_few_connections(&etcd, daemon.pid(), Duration::from_secs(3));
    assert!(
        settled,
        "3 s after the new generation followed: {streams}; {connections} connection(s) from \
         the daemon to etcd"
    );
}

/// A subscription dropped while another goes on leaves the stream at once (the stream is
/// opened again without its watch, and the old one closed), and the last one dropped
/// closes it: etcd serves no watch nobody reads. Before, a dropped subscription's stream
/// stayed open until its next message or the watch timeout.
#[test]
fn a_dropped_subscription_leaves_the_stream_at_once_and_the_last_one_closes_it() {
    let etcd = Etcd::start_v3();
    let client = etcd.v3_client();
    put(&client, "/a/n", "0");
    put(&client, "/b/n", "0");
    let index = revision(&client);
    let mut a = client.subscribe("/a", true, index);
    let mut b = client.subscribe("/b", true, index);
    put(&client, "/a/n", "1");
    put(&client, "/b/n", "1");
    assert_eq!(receive(&mut a, 1), puts("/a/n", 1..2));
    assert_eq!(receive(&mut b, 1), puts("/b/n", 1..2));
    let watching = |watchers: u64| {
        let mut seen = Streams::default();
        let reached = eventually(Duration::from_secs(2), || {
            seen = watch_streams(&etcd);
            seen.open() == watchers.min(1) && seen.watchers == watchers
        });
        (reached, seen)
    };
    let (two, seen) = watching(2);
    assert!(two, "two subscriptions: {seen}");
    drop(a);
    let (one, seen) = watching(1);
    assert!(
        one,
        "within 2 s of dropping one of two subscriptions: {seen}"
    );
    put(&client, "/b/n", "2");
    assert_eq!(receive(&mut b, 1), puts("/b/n", 2..3));
    drop(b);
    let (none, seen) = watching(0);
    assert!(none, "within 2 s of dropping the last subscription: {seen}");
}

/// The member serving the shared stream of a 3-member cluster dies: the stream is opened
/// again on the next member, from each key's last revision + 1, without a failure or a read
/// again; the changes of two keys written before and after the death all arrive, none
/// twice.
#[test]
fn a_member_dying_under_the_shared_stream_moves_it_to_the_next_member_without_loss() {
    let mut members = Etcd::cluster_on(Api::V3, 3);
    let endpoints: Vec<String> = members.iter().map(Etcd::url).collect();
    let client = reconfig::etcd::Client::connect(reconfig::etcd::Api::V3, false, || {
        reconfig::etcd::ClientOptions {
            endpoints: endpoints.clone(),
            ..reconfig::etcd::ClientOptions::default()
        }
    })
    .expect("v3 client on the cluster");
    // Writes go through the members that stay.
    let writer = members[1].v3_client();
    put(&writer, "/a/n", "start");
    put(&writer, "/b/n", "start");
    let index = revision(&writer);
    let mut a = client.subscribe("/a", true, index);
    let mut b = client.subscribe("/b", true, index);
    for n in 0..20 {
        put(&writer, "/a/n", &n.to_string());
        put(&writer, "/b/n", &n.to_string());
    }
    assert_eq!(receive(&mut a, 10), puts("/a/n", 0..10));
    assert_eq!(receive(&mut b, 10), puts("/b/n", 0..10));
    // The client's first endpoint served the stream.
    members[0].kill();
    // The cluster may be electing a new leader: each write retried until it is applied,
    // but not once more when a failed attempt was applied after all (a change twice).
    let holds = |key: &str, value: &str| {
        writer
            .snapshot(key, false)
            .ok()
            .and_then(|read| read.data)
            .is_some_and(|data| data.get(key).is_some_and(|v| v == value))
    };
    let put_eventually = |key: &str, value: &str| {
        let mut last = String::new();
        let applied = eventually(SECS, || {
            holds(key, value)
                || match writer.put(key, value, None) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e.to_string();
                        false
                    }
                }
        });
        assert!(applied, "put {key}={value} kept failing: {last}");
    };
    for n in 20..40 {
        put_eventually("/a/n", &n.to_string());
        put_eventually("/b/n", &n.to_string());
    }
    assert_eq!(receive(&mut a, 30), puts("/a/n", 10..40));
    assert_eq!(receive(&mut b, 30), puts("/b/n", 10..40));
    assert_quiet(&mut a);
    assert_quiet(&mut b);
}
