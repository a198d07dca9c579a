//! Several watched keys per resource (`"keys"`), and altkeys watched with `watch_altkeys`.

mod support;

use reconfig::etcd::Freshness;
use reconfig::keys::PassReader;
use serde_json::json;
use std::time::Duration;
use support::daemon::{wait_content, Setup};
use support::{both_apis, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// A resource listing the leaves of `keys` into `out/<name>.conf`.
fn several_keys(setup: &Setup, name: &str, keys: &[&str]) -> serde_json::Value {
    let mut resource = setup.list_resource(name, keys[0]);
    resource["key"] = serde_json::Value::Null;
    resource["keys"] = json!(keys);
    resource
}

both_apis!(a_change_under_the_second_key_is_rendered_with_both_keys_leaves);
fn a_change_under_the_second_key_is_rendered_with_both_keys_leaves(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/first/x", "1");
    etcd.put("/second/y", "1");
    let setup = Setup::new();
    setup.resource("both", several_keys(&setup, "both", &["/first", "/second"]));
    let daemon = setup.daemon(&etcd, &[]);
    let out = setup.out("both.conf");
    assert!(
        wait_content(&out, "/first/x=1\n/second/y=1\n", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/second/y", "2");
    assert!(
        wait_content(&out, "/first/x=1\n/second/y=2\n", SECS),
        "{}",
        daemon.log_text()
    );
    etcd.put("/first/x", "2");
    assert!(
        wait_content(&out, "/first/x=2\n/second/y=2\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(an_altkey_change_is_rendered_at_once_only_with_watch_altkeys);
fn an_altkey_change_is_rendered_at_once_only_with_watch_altkeys(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/main/k", "m1");
    etcd.put("/alt/k", "a1");
    let setup = Setup::new();
    setup.template(
        "alt.tmpl",
        "{{ data['/main/k'] }} {{ altdata.other['/alt/k'] }}\n",
    );
    for (name, watch_altkeys) in [("watching", true), ("reading", false)] {
        let mut resource = setup.list_resource(name, "/main");
        resource["source"] = json!("alt.tmpl");
        resource["altkeys"] = json!({"other": "/alt"});
        resource["watch_altkeys"] = json!(watch_altkeys);
        setup.resource(name, resource);
    }
    let daemon = setup.daemon(&etcd, &[]);
    for name in ["watching", "reading"] {
        let out = setup.out(&format!("{name}.conf"));
        assert!(wait_content(&out, "m1 a1\n", SECS), "{}", daemon.log_text());
    }
    etcd.put("/alt/k", "a2");
    assert!(
        wait_content(&setup.out("watching.conf"), "m1 a2\n", SECS),
        "{}",
        daemon.log_text()
    );
    // The same change has had the time to reach the other resource, were it watched.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_to_string(setup.out("reading.conf"))
            .ok()
            .as_deref(),
        Some("m1 a1\n"),
        "an altkey without watch_altkeys is read, not watched"
    );
    etcd.put("/main/k", "m2");
    assert!(
        wait_content(&setup.out("reading.conf"), "m2 a2\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(min_keys_counts_the_leaves_of_every_key);
fn min_keys_counts_the_leaves_of_every_key(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/first/a", "1");
    etcd.put("/first/b", "1");
    etcd.put("/second/c", "1");
    let setup = Setup::new();
    let mut resource = several_keys(&setup, "counted", &["/first", "/second"]);
    resource["min_keys"] = json!(3);
    setup.resource("counted", resource);
    let out = setup.out("counted.conf");
    let run = setup.onetime(&etcd, &[]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let full = "/first/a=1\n/first/b=1\n/second/c=1\n";
    assert_eq!(std::fs::read_to_string(&out).ok().as_deref(), Some(full));
    // Two leaves left in all: fewer than min_keys, although /first alone never had 3.
    etcd.delete("/second/c", false);
    etcd.put("/first/b", "2");
    let run = setup.onetime(&etcd, &[]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert_eq!(std::fs::read_to_string(&out).ok().as_deref(), Some(full));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("fewer than min_keys 3"),
        "{run:?}"
    );
}

both_apis!(a_pass_reads_its_keys_at_one_revision_on_v3_and_each_fresh_on_v2);
fn a_pass_reads_its_keys_at_one_revision_on_v3_and_each_fresh_on_v2(api: Api) {
    let etcd = Etcd::start_on(api);
    etcd.put("/first/x", "1");
    etcd.put("/second/y", "1");
    let client = etcd.kv();
    let mut reader = PassReader::direct(&client, 2);
    let (first, at) = reader
        .read("/first", true, Freshness::now())
        .expect("read /first");
    assert_eq!(
        first.map(|leaves| leaves["/first/x"].clone()).as_deref(),
        Some("1")
    );
    // A write landing between two reads of the pass.
    etcd.put("/second/y", "2");
    let (second, index) = reader
        .read("/second", true, Freshness::now())
        .expect("read /second");
    let value = second.map(|leaves| leaves["/second/y"].clone());
    match api {
        Api::V3 => {
            assert_eq!(
                value.as_deref(),
                Some("1"),
                "read at the first read's revision"
            );
            assert_eq!(index, at);
        }
        Api::V2 => assert_eq!(value.as_deref(), Some("2"), "v2 cannot read the past"),
    }
}
