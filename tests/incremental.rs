//! A change is applied to the snapshot the daemon kept instead of reading the whole tree
//! again (`etcd::change`). After every kind of event etcd sends, the rendered file must be
//! exactly what a fresh read renders, and the plain events must have taken that path.

mod support;

use reconfig::etcd::v2::SetOptions;
use reconfig::etcd::Client;
use std::time::Duration;
use support::daemon::{Daemon, Setup};
use support::{both_apis, eventually, Api, Etcd};

const SECS: Duration = Duration::from_secs(10);

/// What [`support::daemon::LIST`] renders from a fresh recursive read of `key`.
fn fresh_render(client: &Client, key: &str) -> Option<String> {
    let data = client.snapshot(key, true).expect("snapshot").data?;
    Some(data.iter().map(|(k, v)| format!("{k}={v}\n")).collect())
}

/// Waits until the daemon's file equals a fresh render (a missing key leaves it as it was).
fn converges(setup: &Setup, client: &Client, daemon: &Daemon, step: &str) {
    let target = setup.out("inc.conf");
    let mut last = (None, None);
    let same = eventually(SECS, || {
        let Some(want) = fresh_render(client, "/inc") else {
            return true;
        };
        last = (support::read(&target), Some(want));
        last.0 == last.1
    });
    assert!(
        same,
        "after {step}: file {:?}, fresh read renders {:?}\n{}",
        last.0,
        last.1,
        daemon.log_text()
    );
}

fn raw(etcd: &Etcd, method: &str, path_and_query: &str, form: &[(&str, &str)]) {
    let url = format!("{}/v2/keys{path_and_query}", etcd.url());
    let result = match method {
        "POST" => ureq::post(&url).send_form(form.iter().copied()),
        "DELETE" => ureq::delete(&url).call(),
        _ => unreachable!("{method}"),
    };
    result.unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
}

both_apis!(every_kind_of_event_renders_what_a_fresh_read_renders);
fn every_kind_of_event_renders_what_a_fresh_read_renders(api: Api) {
    let etcd = Etcd::start_on(api);
    for (key, value) in [
        ("/inc/a", "1"),
        ("/inc/d/x", "2"),
        ("/inc/d/y", "3"),
        ("/inc/z", "4"),
    ] {
        etcd.put(key, value);
    }
    let client = etcd.kv();
    let setup = Setup::new();
    setup.resource("inc", setup.list_resource("inc", "/inc"));
    let daemon = setup.daemon(&etcd, &["--debug"]);
    converges(&setup, &client, &daemon, "start-up");

    let put = |key: &str, value: &str| client.put(key, value, None).expect("put");
    put("/inc/a", "2");
    converges(&setup, &client, &daemon, "set");
    if api == Api::V2 {
        v2_only_events(&etcd, &setup, &client, &daemon);
    }
    client.delete("/inc/z", false).expect("delete");
    converges(&setup, &client, &daemon, "delete");
    put("/inc/_hidden", "h");
    put("/inc/d/deeper/k", "v");
    converges(&setup, &client, &daemon, "hidden key, nested create");
    client.delete("/inc/d", true).expect("delete dir");
    converges(&setup, &client, &daemon, "recursive delete of a directory");
    client
        .put("/inc/t", "soon gone", Some(1))
        .expect("put with ttl");
    converges(&setup, &client, &daemon, "set with TTL");
    assert!(
        eventually(SECS, || fresh_render(&client, "/inc")
            .is_some_and(|r| !r.contains("/inc/t="))),
        "the TTL key expired"
    );
    converges(&setup, &client, &daemon, "expire");
    // The watched key itself goes and comes back: read again, not applied.
    client.delete("/inc", true).expect("delete watched key");
    put("/inc/back", "again");
    converges(
        &setup,
        &client,
        &daemon,
        "watched key deleted and recreated",
    );

    // v2's own events add to those applied; a v3 recursive delete is one transaction
    // (several deletes in one revision), read again. v3 applies 4 here when no two puts
    // coalesce: the bound leaves room for that.
    let expected = match api {
        Api::V2 => 8,
        Api::V3 => 3,
    };
    let applied = daemon.log_text().matches("to the kept snapshot").count();
    assert!(
        applied >= expected,
        "only {applied} change(s) applied to the kept snapshot:\n{}",
        daemon.log_text()
    );
}

/// The events only v2 has: create and update (prevExist), compareAndSwap,
/// compareAndDelete, in-order create, an empty directory.
fn v2_only_events(etcd: &Etcd, setup: &Setup, client: &Client, daemon: &Daemon) {
    let v2 = etcd.client();
    let set = |key: &str, value: &str, options: SetOptions| {
        v2.set(key, Some(value), &options).expect("set");
    };
    let create = SetOptions {
        prev_exist: Some(false),
        ..SetOptions::default()
    };
    set("/inc/new", "n", create);
    converges(setup, client, daemon, "create");
    let update = SetOptions {
        prev_exist: Some(true),
        ..SetOptions::default()
    };
    set("/inc/a", "3", update);
    converges(setup, client, daemon, "update");
    let swap = SetOptions {
        prev_value: Some("3".to_string()),
        ..SetOptions::default()
    };
    set("/inc/a", "4", swap);
    converges(setup, client, daemon, "compareAndSwap");
    raw(etcd, "DELETE", "/inc/new?prevValue=n", &[]);
    converges(setup, client, daemon, "compareAndDelete");
    raw(etcd, "POST", "/inc/queue", &[("value", "first")]);
    converges(setup, client, daemon, "in-order create");
    v2.set(
        "/inc/empty",
        None,
        &SetOptions {
            dir: true,
            ..SetOptions::default()
        },
    )
    .expect("mkdir");
    converges(setup, client, daemon, "mkdir");
}
