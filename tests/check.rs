//! `reconfig --check` as a config repository's CI runs it: every resource parsed and
//! rendered against a real etcd, errors with file, line and reason, and nothing written or
//! run (the resources' check and reload commands would leave marker files).

mod support;

use serde_json::json;
use std::process::Output;
use std::time::Duration;
use support::daemon::{Setup, RECONFIG};
use support::{both_apis, stderr, stdout, Api, Etcd};

fn check(setup: &Setup, etcd: &Etcd) -> Output {
    let args = setup.args(etcd, &["--check"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    support::run_bin(RECONFIG, &args, Duration::from_secs(30))
}

/// A resource whose check and reload commands would each leave a marker file.
fn resource(setup: &Setup, name: &str, source: &str, extra: serde_json::Value) {
    let mut json = json!({
        "id": name,
        "key": "/svc",
        "recursive": true,
        "source": source,
        "target": setup.out(&format!("{name}.conf")),
        "checkcmd": format!("touch {}", setup.out(&format!("{name}.checked")).display()),
        "reloadcmd": format!("touch {}", setup.out(&format!("{name}.reloaded")).display()),
    });
    if let (Some(json), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        json.extend(extra.clone());
    }
    setup.resource(name, json);
}

/// The files reconfig would have written or its commands would have left.
fn written(setup: &Setup) -> Vec<String> {
    std::fs::read_dir(setup.out(""))
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

both_apis!(check_reports_each_bad_file_with_its_line_and_never_writes_or_runs);
fn check_reports_each_bad_file_with_its_line_and_never_writes_or_runs(api: Api) {
    let mut etcd = Etcd::start_on(api);
    etcd.put("/svc/a", "10.0.0.1:80");
    let setup = Setup::new();
    setup.template(
        "good.tmpl",
        "{% for k, v in data|items %}{{ k }}={{ v }}\n{% endfor %}",
    );
    resource(&setup, "good", "good.tmpl", json!({}));
    setup.template("syntax.tmpl", "first line\n{% for x in %}\n{% endfor %}\n");
    resource(&setup, "syntax", "syntax.tmpl", json!({}));
    setup.template("strict.tmpl", "a\nb\n{{ no_such_value }}\n");
    resource(&setup, "strict", "strict.tmpl", json!({"strict": true}));
    std::fs::write(
        setup.cfgdir().join("conf.d/broken.json"),
        "{\n  \"key\": \"/svc\",\n  \"source\": \n}\n",
    )
    .expect("broken resource file");

    let out = check(&setup, &etcd);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}\n{}", stderr(&out));
    let line_of = |needle: &str| {
        report
            .lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{report}"))
            .to_string()
    };
    let broken = line_of("broken.json");
    assert!(
        broken.starts_with("error  ")
            && broken.contains("not valid JSON")
            && broken.contains("line 4"),
        "{broken}"
    );
    let syntax = line_of("syntax.json");
    assert!(
        syntax.starts_with("error  ") && syntax.contains("syntax.tmpl, line 2: syntax error"),
        "{syntax}"
    );
    let strict = line_of("strict.json");
    assert!(
        strict.starts_with("error  ") && strict.contains("strict.tmpl, line 3: undefined value"),
        "{strict}"
    );
    let good = line_of("good.json");
    assert!(
        good.starts_with("ok     ") && good.contains("renders 19 bytes"),
        "{good}"
    );
    assert!(report.contains("1 of 4 resource file(s) valid"), "{report}");
    assert_eq!(
        written(&setup),
        Vec::<String>::new(),
        "nothing written, nothing run"
    );

    // Only the render against the live data fails: exit 2.
    std::fs::remove_file(setup.cfgdir().join("conf.d/broken.json")).expect("rm");
    std::fs::remove_file(setup.cfgdir().join("conf.d/syntax.json")).expect("rm");
    let out = check(&setup, &etcd);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // A watched key that does not exist cannot render either.
    std::fs::remove_file(setup.cfgdir().join("conf.d/strict.json")).expect("rm");
    resource(&setup, "absent", "good.tmpl", json!({"key": "/absent"}));
    let out = check(&setup, &etcd);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("watched key /absent does not exist"),
        "{}",
        stdout(&out)
    );

    // All valid: exit 0, and still nothing written or run.
    etcd.put("/absent/x", "1");
    let out = check(&setup, &etcd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("2 of 2 resource file(s) valid"));
    assert_eq!(written(&setup), Vec::<String>::new());

    // etcd down: exit 3, the resource files themselves being fine.
    etcd.kill();
    let out = check(&setup, &etcd);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert_eq!(written(&setup), Vec::<String>::new());
}
