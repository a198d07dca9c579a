//! Endpoints found by DNS SRV (`--srv`, `--srv-domain`) through a real dnsmasq on loopback:
//! RFC 2782 order with a dead first target, the TLS record, lookup errors, and a daemon
//! following a record that changes, both periodically and when every target failed; and
//! a subscription that does not carry its index over to rediscovered endpoints.
//!
//! SRV targets are host names resolved by the system resolver, so every target here is
//! `localhost` with its own port.

mod support;

use support::stderr;

use reconfig::etcd::{Client, ClientOptions, Op, Received};
use reconfig::srv::DNS_SERVER_ENV;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::certs::{Certs, TlsFiles};
use support::daemon::{wait_content, Setup, RECONFIG};
use support::dns::{srv, Dnsmasq};
use support::{both_apis, free_port, wait_output, Api, Etcd};

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const RECORD: &str = "_etcd-client._tcp.example.test";
const SECS: Duration = Duration::from_secs(15);

/// `bin` speaking `api`, resolving with `dns`.
fn command(api: Api, bin: &str, dns: &Dnsmasq, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .env(DNS_SERVER_ENV, dns.env_value())
        .args(["--api", api.flag()])
        .args(args)
        .stdin(Stdio::null());
    command
}

fn run(api: Api, bin: &str, dns: &Dnsmasq, args: &[&str]) -> Output {
    let child = command(api, bin, dns, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_output(child, Duration::from_secs(30))
}

/// A daemon started with the DNS server in its environment; killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(api: Api, dns: &Dnsmasq, cfgdir: &Path, args: &[&str]) -> Daemon {
        let log = cfgdir.join("daemon.log");
        let cfg = cfgdir.display().to_string();
        let state = cfgdir.join("state").display().to_string();
        let mut all = vec!["--cfgdir", cfg.as_str(), "--state-dir", state.as_str()];
        all.extend_from_slice(args);
        let child = command(api, RECONFIG, dns, &all)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn reconfig");
        Daemon { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An etcd whose `/who` names it.
fn etcd_named(api: Api, name: &str) -> Etcd {
    let etcd = Etcd::start_on(api);
    etcd.put("/who", name);
    etcd
}

fn value_setup() -> Setup {
    let setup = Setup::new();
    setup.template("v.tmpl", "who={{ reconfig.data[reconfig.watched] }}\n");
    setup.resource(
        "v",
        json!({"id": "v", "key": "/who", "source": "v.tmpl", "target": setup.out("v.conf")}),
    );
    setup
}

both_apis!(targets_are_tried_by_priority_then_weight_past_a_dead_first_target);
fn targets_are_tried_by_priority_then_weight_past_a_dead_first_target(api: Api) {
    let (a, b, c) = (
        etcd_named(api, "a"),
        etcd_named(api, "b"),
        etcd_named(api, "c"),
    );
    let dead = free_port();
    let dns = Dnsmasq::start(&[
        srv(RECORD, "localhost", dead, 1, 100),
        srv(RECORD, "localhost", a.client_port, 2, 60),
        srv(RECORD, "localhost", b.client_port, 2, 40),
        srv(RECORD, "localhost", c.client_port, 3, 100),
    ]);
    let mut seen = Vec::new();
    for _ in 0..24 {
        let out = run(api, ETCD_UTIL, &dns, &["--srv", RECORD, "-k", "/who"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        seen.push(answer["/who"].as_str().unwrap_or_default().to_string());
    }
    // Priority 3 is only for when both priority-2 targets fail; the weights 60/40 share
    // the load between a and b (both missing from 24 picks: p < 1e-5).
    assert!(!seen.iter().any(|w| w == "c"), "{seen:?}");
    assert!(seen.iter().any(|w| w == "a"), "{seen:?}");
    assert!(seen.iter().any(|w| w == "b"), "{seen:?}");

    // With a and b down, the next priority takes over.
    drop((a, b));
    let out = run(api, ETCD_UTIL, &dns, &["--srv", RECORD, "-k", "/who"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"c\""));
}

both_apis!(srv_domain_with_ssl_uses_the_ssl_record);
fn srv_domain_with_ssl_uses_the_ssl_record(api: Api) {
    let certs = Certs::generate();
    let etcd = Etcd::start_with_on(api, Some(&certs.server_tls()), Vec::new());
    let dns = Dnsmasq::start(&[
        srv(RECORD, "localhost", free_port(), 0, 100),
        srv(
            "_etcd-client-ssl._tcp.example.test",
            "localhost",
            etcd.client_port,
            0,
            100,
        ),
    ]);
    let tls = certs.flags(&TlsFiles::CLIENT);
    let mut args: Vec<&str> = vec!["--srv-domain", "example.test", "-s"];
    args.extend(tls.iter().map(String::as_str));
    let set = run(
        api,
        ETCD_UTIL,
        &dns,
        &[&args[..], &["-o", "set", "-k", "/k", "-v", "tls"]].concat(),
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));

    let setup = Setup::new();
    setup.template("v.tmpl", "{{ reconfig.data[reconfig.watched] }}\n");
    setup.resource(
        "v",
        json!({"id": "v", "key": "/k", "source": "v.tmpl", "target": setup.out("v.conf")}),
    );
    let cfg = setup.cfgdir().display().to_string();
    let state = setup.state_dir().display().to_string();
    let once = run(
        api,
        RECONFIG,
        &dns,
        &[
            &["--cfgdir", cfg.as_str(), "--state-dir", &state, "--onetime"],
            &args[..],
        ]
        .concat(),
    );
    assert_eq!(once.status.code(), Some(0), "{}", stderr(&once));
    assert_eq!(
        support::read(&setup.out("v.conf")).as_deref(),
        Some("tls\n")
    );
}

both_apis!(a_missing_record_is_reported_naming_record_and_server);
fn a_missing_record_is_reported_naming_record_and_server(api: Api) {
    let dns = Dnsmasq::start(&[srv(RECORD, "localhost", free_port(), 0, 0)]);
    let expected = format!(
        "no SRV record _etcd-client._tcp.missing.example.test at {} (NXDOMAIN)",
        dns.addr
    );
    let out = run(
        api,
        ETCD_UTIL,
        &dns,
        &["--srv-domain", "missing.example.test", "-k", "/x"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    let setup = value_setup();
    let cfg = setup.cfgdir().display().to_string();
    let once = run(
        api,
        RECONFIG,
        &dns,
        &[
            "--cfgdir",
            &cfg,
            "--onetime",
            "--srv-domain",
            "missing.example.test",
        ],
    );
    assert_eq!(once.status.code(), Some(3), "{}", stderr(&once));
    assert!(stderr(&once).contains(&expected), "{}", stderr(&once));
    let daemon = run(
        api,
        RECONFIG,
        &dns,
        &["--cfgdir", &cfg, "--srv-domain", "missing.example.test"],
    );
    assert_eq!(daemon.status.code(), Some(3), "{}", stderr(&daemon));
}

both_apis!(the_daemon_follows_a_record_that_changes_at_the_next_refresh);
fn the_daemon_follows_a_record_that_changes_at_the_next_refresh(api: Api) {
    let (a, b) = (etcd_named(api, "a"), etcd_named(api, "b"));
    let mut dns = Dnsmasq::start(&[srv(RECORD, "localhost", a.client_port, 0, 0)]);
    let setup = value_setup();
    let target = setup.out("v.conf");
    let daemon = Daemon::start(
        api,
        &dns,
        setup.cfgdir(),
        &[
            "--srv",
            RECORD,
            "--srv-refresh",
            "1",
            "--watch-timeout",
            "1",
        ],
    );
    assert!(
        wait_content(&target, "who=a\n", SECS),
        "{}",
        daemon.log_text()
    );

    // Both etcds stay up: only the periodic re-resolution can move the daemon to b.
    dns.replace(&[srv(RECORD, "localhost", b.client_port, 0, 0)]);
    assert!(
        wait_content(&target, "who=b\n", SECS),
        "{}",
        daemon.log_text()
    );
    b.put("/who", "b2");
    assert!(
        wait_content(&target, "who=b2\n", SECS),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains(&format!(
        "etcd endpoints discovered: {}",
        b.url().replace("127.0.0.1", "localhost")
    )));
}

both_apis!(the_daemon_resolves_again_when_every_target_failed);
fn the_daemon_resolves_again_when_every_target_failed(api: Api) {
    let mut a = etcd_named(api, "a");
    // a's store index runs ahead of b's: a watch sent to b with a's index would wait for
    // changes b has not had yet, so the daemon must read again after moving.
    for i in 0..5 {
        a.put("/padding", &i.to_string());
    }
    let b = etcd_named(api, "b");
    let mut dns = Dnsmasq::start(&[srv(RECORD, "localhost", a.client_port, 0, 0)]);
    let setup = value_setup();
    let target = setup.out("v.conf");
    // The default refresh (60 s) is far off: only the failure can trigger re-resolution.
    let daemon = Daemon::start(api, &dns, setup.cfgdir(), &["--srv", RECORD]);
    assert!(
        wait_content(&target, "who=a\n", SECS),
        "{}",
        daemon.log_text()
    );

    dns.replace(&[srv(RECORD, "localhost", b.client_port, 0, 0)]);
    a.kill();
    assert!(
        wait_content(&target, "who=b\n", SECS),
        "{}",
        daemon.log_text()
    );
    b.put("/who", "b2");
    assert!(
        wait_content(&target, "who=b2\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(a_subscription_reads_again_rather_than_carry_its_index_to_rediscovered_endpoints);
/// An index is only worth something on the cluster it was read from. A subscription made
/// after a read on `a` whose endpoints are rediscovered (to `b`, further on in its own
/// history) before it receives must say "read again", not watch `b` from `a`'s index, where
/// `b`'s own earlier puts would come as changes. Another request rediscovers here, so the
/// outcome does not hang on which thread gets there first (the daemon test above does).
fn a_subscription_reads_again_rather_than_carry_its_index_to_rediscovered_endpoints(api: Api) {
    let (a, b) = (etcd_named(api, "a"), etcd_named(api, "b"));
    for i in 0..3 {
        b.put("/who", &format!("b{i}"));
    }
    let discovered = Arc::new(Mutex::new(vec![a.url()]));
    let client = Client::connect(api.library(), false, || {
        let discovered = Arc::clone(&discovered);
        ClientOptions {
            endpoints: Vec::new(),
            discover: Some(Box::new(move || {
                Ok(discovered.lock().map_err(|e| e.to_string())?.clone())
            })),
            // Every request looks again.
            rediscover_every: Some(Duration::ZERO),
            ..ClientOptions::default()
        }
    })
    .expect("client");

    let read = client.snapshot("/who", false).expect("read on a");
    assert_eq!(
        read.data.and_then(|d| d.get("/who").cloned()).as_deref(),
        Some("a")
    );
    let mut changes = client.subscribe("/who", false, read.index);
    *discovered.lock().expect("list") = vec![b.url()];
    client
        .snapshot("/elsewhere", false)
        .expect("a read that rediscovers b");
    match changes.recv_timeout(SECS) {
        Received::ReadAgain => {}
        other => panic!("expected \"read again\" after the rediscovery, got {other:?}"),
    }
    drop(changes);

    // Reading again follows b from b's own index.
    let read = client.snapshot("/who", false).expect("read on b");
    assert_eq!(
        read.data.and_then(|d| d.get("/who").cloned()).as_deref(),
        Some("b2")
    );
    let mut changes = client.subscribe("/who", false, read.index);
    b.put("/who", "b3");
    match changes.recv_timeout(SECS) {
        Received::Change(change) => assert_eq!(change.op, Op::Put("b3".to_string())),
        other => panic!("expected b's put of b3, got {other:?}"),
    }
}
