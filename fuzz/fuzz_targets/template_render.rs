//! The conf.d `pattern` → delimiter mapping and rendering: the input is
//! `pattern NUL template` (no NUL: standard delimiters). A template that compiles is
//! rendered twice against fixed data, including unicode and odd keys; both renders must
//! agree (output depends only on the data). Any panic is a finding, and so is a timeout:
//! every render is bounded by fuel (seeds `regression-*` are the runaway renders of issue 10).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::template::{Context, Template};
use std::collections::BTreeMap;
use std::sync::Arc;

const RENDER_FUEL: u64 = 1_000_000;

fn data() -> Arc<BTreeMap<String, String>> {
    let mut data = BTreeMap::new();
    for (k, v) in [
        ("/svc/a", "10.0.0.1:80"),
        ("/svc/b", "{\"host\": \"10.0.0.2\", \"port\": 80}"),
        ("/svc/sp ace", "x y"),
        ("/svc/ünï/ç", "✓"),
        ("/svc/empty", ""),
        ("/svc/list", "[1, 2, 3]"),
    ] {
        data.insert(k.to_string(), v.to_string());
    }
    Arc::new(data)
}

fuzz_target!(|input: &[u8]| {
    let (pattern, source) = match input.iter().position(|&b| b == 0) {
        Some(at) => (Some(&input[..at]), &input[at + 1..]),
        None => (None, input),
    };
    let pattern = match pattern.map(std::str::from_utf8) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return,
        None => None,
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    for strict in [false, true] {
        let Ok(mut template) =
            Template::from_source("fuzz.tmpl", source.to_string(), pattern, strict)
        else {
            continue;
        };
        // A tenth of the daemon's default: four renders of a runaway template then stay
        // well inside libFuzzer's 10 s timeout in the instrumented build.
        template.set_render_fuel(RENDER_FUEL, "render_fuel".to_string());
        let data = data();
        let mut altdata = BTreeMap::new();
        altdata.insert("alt".to_string(), Arc::clone(&data));
        let context = Context {
            data: &data,
            altdata: &altdata,
            watched: "/svc",
        };
        let first = template.render(&context);
        let second = template.render(&context);
        match (first, second) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "render is not deterministic"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("renders disagree: {a:?} vs {b:?}"),
        }
    }
});
