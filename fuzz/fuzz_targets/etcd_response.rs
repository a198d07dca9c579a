//! etcd v2 answers and watch events: any bytes given to the client's response types
//! (`serde_json::from_slice::<reconfig::etcd::Response>` and the cluster answers), then
//! flattened into key → value maps the way a snapshot is. Any panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::etcd::{Member, Response, Version};

fuzz_target!(|input: &[u8]| {
    if let Ok(response) = serde_json::from_slice::<Response>(input) {
        let leaves = response.node.leaves();
        if !response.node.dir {
            assert_eq!(leaves.len(), 1);
        }
        if let Some(prev) = &response.prev_node {
            let _ = prev.leaves();
        }
        let _ = response.node.key();
    }
    let _ = serde_json::from_slice::<Vec<Member>>(input);
    let _ = serde_json::from_slice::<Version>(input);
});
