//! A real 3-member etcd cluster on loopback: failover across every endpoint, for both
//! binaries, when the member in use dies, and a read through the election after the leader
//! dies.

mod support;

use support::stderr;

use serde_json::json;
use std::process::Output;
use std::time::Duration;
use support::daemon::{wait_content, Setup};
use support::{both_apis, eventually, run_bin, Api, Etcd};

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const SECS: Duration = Duration::from_secs(15);

fn urls(members: &[Etcd]) -> String {
    members.iter().map(Etcd::url).collect::<Vec<_>>().join(",")
}

/// etcd-util on `endpoints`, speaking `api`.
fn util(api: Api, endpoints: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "--api",
        api.flag(),
        "--endpoints",
        endpoints,
        "--timeout",
        "2",
    ];
    all.extend_from_slice(args);
    run_bin(ETCD_UTIL, &all, Duration::from_secs(30))
}

/// Writes through `endpoints`, retrying while the cluster elects a new leader.
fn set_eventually(api: Api, endpoints: &str, key: &str, value: &str) {
    let mut last = String::new();
    let done = eventually(SECS, || {
        let out = util(api, endpoints, &["-o", "set", "-k", key, "-v", value]);
        last = stderr(&out);
        out.status.success()
    });
    assert!(
        done,
        "SET {key}={value} through {endpoints} kept failing: {last}"
    );
}

both_apis!(daemon_keeps_converging_when_its_member_dies);
fn daemon_keeps_converging_when_its_member_dies(api: Api) {
    let mut members = Etcd::cluster_on(api, 3);
    let all = urls(&members);
    set_eventually(api, &all, "/c/v", "one");
    let setup = Setup::new();
    setup.template("v.tmpl", "value={{ reconfig.data[reconfig.watched] }}\n");
    setup.resource(
        "v",
        json!({"id": "v", "key": "/c/v", "source": "v.tmpl", "target": setup.out("v.conf")}),
    );
    let target = setup.out("v.conf");
    // The fixture passes the first member's URL; the other two follow it in the list.
    let others = urls(&members[1..]);
    let daemon = setup.daemon(&members[0], &["--endpoints", &others, "--timeout", "2"]);
    assert!(
        wait_content(&target, "value=one\n", SECS),
        "{}",
        daemon.log_text()
    );

    members[0].kill();
    set_eventually(api, &others, "/c/v", "two");
    assert!(
        wait_content(&target, "value=two\n", SECS),
        "{}",
        daemon.log_text()
    );
    // Still converging on the surviving member, not just once.
    set_eventually(api, &others, "/c/v", "three");
    assert!(
        wait_content(&target, "value=three\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(etcd_util_fails_over_and_shows_every_member);
fn etcd_util_fails_over_and_shows_every_member(api: Api) {
    let mut members = Etcd::cluster_on(api, 3);
    let all = urls(&members);
    set_eventually(api, &all, "/u/v", "x");
    let cluster = util(api, &all, &["--version"]);
    assert_eq!(cluster.status.code(), Some(0), "{}", stderr(&cluster));
    let text = String::from_utf8_lossy(&cluster.stdout).into_owned();
    for member in &members {
        assert!(text.contains(&member.url()), "{text}");
    }
    assert!(text.contains("(leader)"), "{text}");

    members[0].kill();
    // A v3 read needs a leader: once the two left have one (a write goes through), the
    // read fails over past the dead first endpoint.
    set_eventually(api, &all, "/u/v", "x");
    let get = util(api, &all, &["-k", "/u/v"]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(String::from_utf8_lossy(&get.stdout).contains("\"x\""));

    // With every member down, the error lists each endpoint tried.
    members[1].kill();
    members[2].kill();
    let down = util(api, &all, &["-k", "/u/v"]);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    for member in &members {
        assert!(stderr(&down).contains(&member.url()), "{}", stderr(&down));
    }
}

both_apis!(etcd_util_reads_through_the_election_after_the_leader_dies);
/// A read sent to a surviving member right after the leader died meets the election. On v3
/// the member holds it until a new leader is elected, then refuses it ("leader changed");
/// etcd-util asks again a moment later, as etcdctl does, and prints the value instead of
/// failing. On v2 the member answers a read by itself.
fn etcd_util_reads_through_the_election_after_the_leader_dies(api: Api) {
    let mut members = Etcd::cluster_on(api, 3);
    set_eventually(api, &urls(&members), "/e/v", "x");
    let kv = members[0].kv();
    let leader = kv.leader().expect("the leader's id");
    let (_, listed) = kv.members().expect("the members");
    let leader_url = listed
        .iter()
        .find(|m| m.id == leader)
        .and_then(|m| m.client_urls.first().cloned())
        .expect("the leader's client URL");
    let dead = members
        .iter()
        .position(|m| m.url() == leader_url)
        .expect("the leader among the members");
    members[dead].kill();
    let survivor = members[(dead + 1) % members.len()].url();

    // The request timeout (10 s by default) outlasts the member holding the read.
    let get = run_bin(
        ETCD_UTIL,
        &["--api", api.flag(), "--endpoints", &survivor, "-k", "/e/v"],
        Duration::from_secs(30),
    );
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(String::from_utf8_lossy(&get.stdout).contains("\"x\""));
}
