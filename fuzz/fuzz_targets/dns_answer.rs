//! DNS answers to an SRV query: any bytes given to `srv::wire::parse_reply`, as a datagram
//! from the network would be. It must never panic, and every target it accepts must be a
//! plain host name that fits in a URL. Any panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::srv::wire::{parse_reply, Reply};

const RECORD: &str = "_etcd-client._tcp.ex.test";

fuzz_target!(|input: &[u8]| {
    // The first two bytes are the id the answer claims, so ours whenever it matches.
    let id = match input {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    if let Ok(Reply::Records(targets)) = parse_reply(input, id, RECORD) {
        assert!(!targets.is_empty());
        for target in targets {
            assert!(!target.host.is_empty());
            assert!(target
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
        }
    }
});
