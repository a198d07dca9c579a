//! SRV lookups against a real dnsmasq on 127.0.0.1, one per test.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use support::dns::Dnsmasq;

use reconfig::srv::{domain_record, lookup, SrvTarget};

fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn sorted(mut targets: Vec<SrvTarget>) -> Vec<SrvTarget> {
    targets.sort_by(|a, b| a.host.cmp(&b.host));
    targets
}

fn target(host: &str, port: u16, priority: u16, weight: u16) -> SrvTarget {
    SrvTarget {
        host: host.to_string(),
        port,
        priority,
        weight,
    }
}

fn cluster() -> Dnsmasq {
    Dnsmasq::start(&[
        "_etcd-client._tcp.example.test,etcd-a.example.test,23790,10,60".to_string(),
        "_etcd-client._tcp.example.test,etcd-b.example.test,23791,10,40".to_string(),
        "_etcd-client._tcp.example.test,etcd-c.example.test,23792,20,100".to_string(),
        "_etcd-client-ssl._tcp.example.test,localhost,23793,0,100".to_string(),
    ])
}

#[test]
fn lookup_returns_every_record_with_its_fields() {
    let dns = cluster();
    let found = lookup(&domain_record("example.test", false), Some(dns.addr)).unwrap();
    assert_eq!(
        sorted(found),
        [
            target("etcd-a.example.test", 23790, 10, 60),
            target("etcd-b.example.test", 23791, 10, 40),
            target("etcd-c.example.test", 23792, 20, 100),
        ]
    );
    let found = lookup(&domain_record("example.test.", true), Some(dns.addr)).unwrap();
    assert_eq!(found, [target("localhost", 23793, 0, 100)]);
}

#[test]
fn unknown_name_is_reported_as_nxdomain() {
    let dns = cluster();
    let name = "_etcd-client._tcp.missing.example.test";
    let err = lookup(name, Some(dns.addr)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no SRV record {name} at {} (NXDOMAIN)", dns.addr)
    );
}

#[test]
fn refused_query_is_reported() {
    let dns = cluster();
    let name = "_etcd-client._tcp.elsewhere.test";
    let err = lookup(name, Some(dns.addr)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} refused the SRV query for {name} (REFUSED)", dns.addr)
    );
}

/// Sends one plain SRV query over UDP and returns whether the answer has the TC bit.
fn udp_answer_is_truncated(server: SocketAddr, name: &str) -> bool {
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 33, 0, 1]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&query, server).unwrap();
    let mut buf = [0u8; 65535];
    let len = socket.recv(&mut buf).unwrap();
    assert!(len >= 12);
    buf[2] & 0x02 != 0
}

#[test]
fn truncated_answer_is_fetched_again_over_tcp() {
    let name = "_etcd-client._tcp.big.example.test";
    let records: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "{name},etcd-member-with-a-long-name-{i:02}.big.example.test,{},1,{i}",
                2000 + i
            )
        })
        .collect();
    let dns = Dnsmasq::start(&records);
    assert!(
        udp_answer_is_truncated(dns.addr, name),
        "the test needs a truncated UDP answer"
    );
    let found = sorted(lookup(name, Some(dns.addr)).unwrap());
    assert_eq!(found.len(), 40);
    for (i, target) in found.iter().enumerate() {
        let i = i as u16;
        assert_eq!(
            target.host,
            format!("etcd-member-with-a-long-name-{i:02}.big.example.test")
        );
        assert_eq!(
            (target.port, target.priority, target.weight),
            (2000 + i, 1, i)
        );
    }
}

#[test]
fn closed_port_fails_fast_and_names_the_server() {
    let addr = free_udp_addr();
    let started = Instant::now();
    let err = lookup("_etcd-client._tcp.example.test", Some(addr)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "SRV query for _etcd-client._tcp.example.test to {addr} failed:"
        )),
        "{msg}"
    );
    assert!(msg.contains("refused"), "{msg}");
}

#[test]
fn silent_server_times_out_in_bounded_time() {
    // A socket that receives the queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let err = lookup("_etcd-client._tcp.example.test", Some(addr)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(8),
        "took {elapsed:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no answer from {addr} for SRV _etcd-client._tcp.example.test (2 UDP tries of 2 s each)")
    );
}

#[test]
fn environment_variable_overrides_resolv_conf() {
    let dns = cluster();
    std::env::set_var("RECONFIG_DNS_SERVER", dns.addr.to_string());
    let found = lookup(&domain_record("example.test", true), None);
    std::env::remove_var("RECONFIG_DNS_SERVER");
    assert_eq!(found.unwrap(), [target("localhost", 23793, 0, 100)]);
}
