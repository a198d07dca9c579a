//! etcd's own v3 latency: one raw `/v3/watch` stream (the JSON gateway, as reconfig speaks
//! it) held open while PUTs land, no reconfig code on the watching side.

use crate::measure::{ms, Stats};
use crate::scenarios::{signed_ms, Floor, BETWEEN_UPDATES, DEADLINE, UPDATES};
use crate::support::Etcd;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Instant;

const KEY: &str = "/bench/floor";

/// PUT (through the v3 gateway) → the event on an already open watch stream.
pub fn floor(etcd: &Etcd) -> Floor {
    let writer = etcd.kv();
    writer.put(KEY, "0", None).expect("PUT /bench/floor");
    let start = writer.snapshot(KEY, false).expect("snapshot").index;
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let (created_tx, created_rx) = mpsc::channel::<()>();
    let url = format!("{}/v3/watch", etcd.url());
    let thread = std::thread::spawn(move || stream(&url, start + 1, &created_tx, &tx));
    created_rx
        .recv_timeout(DEADLINE)
        .expect("the v3 watch stream was created");
    let (mut from_send, mut from_reply, mut rtt) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=UPDATES {
        std::thread::sleep(BETWEEN_UPDATES);
        let value = i.to_string();
        let sent = Instant::now();
        writer.put(KEY, &value, None).expect("PUT");
        let replied = Instant::now();
        let (seen, got) = rx
            .recv_timeout(DEADLINE)
            .expect("the raw v3 watcher saw the PUT");
        assert_eq!(got, value, "raw v3 watcher out of step");
        from_send.push(ms(seen - sent));
        from_reply.push(signed_ms(seen, replied));
        rtt.push(ms(replied - sent));
    }
    // The stream thread returns after the last event it was told to expect.
    let _ = thread.join();
    Floor {
        watch_from_send: Stats::of(&from_send),
        watch_from_reply: Stats::of(&from_reply),
        put_rtt: Stats::of(&rtt),
    }
}

/// Opens the stream from `revision`, signals `created`, then sends each event's value with
/// the instant its line was read, until [`UPDATES`] events (the floor's PUTs) came.
fn stream(
    url: &str,
    revision: u64,
    created: &mpsc::Sender<()>,
    events: &mpsc::Sender<(Instant, String)>,
) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body =
        json!({"create_request": {"key": b64.encode(KEY), "start_revision": revision.to_string()}});
    let agent = ureq::Agent::new_with_defaults();
    let answer = agent
        .post(url)
        .send(body.to_string())
        .expect("POST /v3/watch");
    let mut lines = BufReader::new(answer.into_body().into_reader()).lines();
    let mut received = 0;
    while received < UPDATES {
        let Some(Ok(line)) = lines.next() else {
            return;
        };
        let at = Instant::now();
        let message: Value = serde_json::from_str(&line).expect("watch message is JSON");
        let result = &message["result"];
        if result["created"] == json!(true) {
            let _ = created.send(());
        }
        for event in result["events"].as_array().into_iter().flatten() {
            let value = event["kv"]["value"].as_str().unwrap_or_default();
            let value = b64.decode(value).expect("value is base64");
            received += 1;
            if events
                .send((at, String::from_utf8_lossy(&value).into_owned()))
                .is_err()
            {
                return;
            }
        }
    }
}
