//! etcd v2 answers and watch events: any bytes given to the client's response types
//! (`serde_json::from_slice::<reconfig::etcd::v2::Response>` and the cluster answers), then
//! flattened into key → value maps. The snapshot's direct reader (`LeavesAnswer`) must
//! give the same leaves as the node tree whenever both accept the input. Any panic is a
//! finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::etcd::v2::{LeavesAnswer, Member, Response};
use reconfig::etcd::Version;

fuzz_target!(|input: &[u8]| {
    let direct = serde_json::from_slice::<LeavesAnswer>(input);
    if let Ok(response) = serde_json::from_slice::<Response>(input) {
        let leaves = response.node.leaves();
        if let Ok(direct) = &direct {
            assert_eq!(direct.leaves, leaves);
        }
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
