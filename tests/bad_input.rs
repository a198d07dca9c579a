//! Bad input from operators and from etcd: every case gives a precise message (the file,
//! field, key or flag and what to do), and nothing else is lost: the good resources beside
//! a bad one still converge, and a target is never replaced by a bad render.

mod support;

use support::daemon::LIST;
use support::stderr;

use serde_json::json;
use std::time::Duration;
use support::daemon::{Setup, RECONFIG};
use support::Etcd;

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");

/// The stderr lines that mention `file`.
fn lines_about(log: &str, file: &str) -> String {
    log.lines()
        .filter(|l| l.contains(file))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_conf(setup: &Setup, name: &str, text: &str) {
    std::fs::write(setup.cfgdir().join("conf.d").join(name), text).expect("conf.d file");
}

/// A good resource that must converge whatever its neighbours contain.
fn good_resource(setup: &Setup) {
    setup.template("list.tmpl", LIST);
    setup.resource(
        "good",
        json!({"id": "good", "key": "/good", "recursive": true, "source": "list.tmpl",
               "target": setup.out("good.conf")}),
    );
}

fn assert_good_converged(setup: &Setup) {
    assert_eq!(
        support::read(&setup.out("good.conf")).as_deref(),
        Some("/good/a=1\n"),
        "the good resource was lost"
    );
}

#[test]
fn conf_d_files_with_errors_are_each_named_with_the_field_and_the_rest_still_run() {
    let etcd = Etcd::start();
    etcd.put("/good/a", "1");
    let setup = Setup::new();
    good_resource(&setup);
    let target = |name: &str| setup.out(name).display().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "invalid.json",
            "{ \"key\": \"/x\", ".to_string(),
            "not valid JSON: EOF while parsing a value at line 1 column 15",
        ),
        ("list.json", "[1, 2]".to_string(), "expected a JSON object"),
        (
            "recursive-string.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("a"), "recursive": "true"}).to_string(),
            "field \"recursive\": expected true or false (without quotes), found the string \"true\"",
        ),
        (
            "mode-number.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("b"), "mode": 644}).to_string(),
            "field \"mode\": the number 644 is not accepted",
        ),
        (
            "mode-bad.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("b2"), "mode": "0999"}).to_string(),
            "field \"mode\": \"0999\" is not an octal file mode",
        ),
        (
            "splay-bad.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("c"), "splay": "soon"}).to_string(),
            "field \"splay\":",
        ),
        (
            "splay-negative.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("c2"), "splay": -1}).to_string(),
            "field \"splay\": -1 is not a usable number of seconds",
        ),
        (
            "timeout-zero.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("c3"), "timeout": 0}).to_string(),
            "field \"timeout\": must be longer than 0",
        ),
        (
            "altkeys-list.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("d"), "altkeys": ["/a"]}).to_string(),
            "field \"altkeys\": expected an object of alias to etcd key",
        ),
        (
            "altkeys-relative.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("d2"), "altkeys": {"s": "shared"}}).to_string(),
            "field \"altkeys\": entry \"s\" is \"shared\"; etcd keys start with '/'",
        ),
        (
            "wait-bad.json",
            json!({"key": "/x", "source": "list.tmpl", "target": target("e"), "wait": {"min": "2s", "max": "1s"}}).to_string(),
            "field \"wait\":",
        ),
        (
            "key-number.json",
            json!({"key": 5, "source": "list.tmpl", "target": target("f")}).to_string(),
            "field \"key\": expected a string, found the number 5",
        ),
        (
            "key-relative.json",
            json!({"key": "x", "source": "list.tmpl", "target": target("g")}).to_string(),
            "field \"key\": \"x\" must start with '/'",
        ),
        (
            "target-relative.json",
            json!({"key": "/x", "source": "list.tmpl", "target": "out/x.conf"}).to_string(),
            "field \"target\": \"out/x.conf\" must be an absolute path",
        ),
        (
            "no-key.json",
            json!({"source": "list.tmpl", "target": target("h")}).to_string(),
            "missing required field \"key\"",
        ),
        (
            "no-source.json",
            json!({"key": "/x", "target": target("i")}).to_string(),
            "missing required field \"source\"",
        ),
        (
            "no-target.json",
            json!({"key": "/x", "source": "list.tmpl"}).to_string(),
            "missing required field \"target\"",
        ),
        (
            "empty-source.json",
            json!({"key": "/x", "source": " ", "target": target("j")}).to_string(),
            "field \"source\": is empty",
        ),
        (
            "missing-template.json",
            json!({"key": "/x", "source": "nope.tmpl", "target": target("k")}).to_string(),
            "field \"source\": template file",
        ),
        (
            // Sorted after good.json: the second claim on good.conf is the one refused.
            "same-target.json",
            json!({"key": "/y", "source": "list.tmpl", "target": target("good.conf")}).to_string(),
            "is already the target of resource \"good\"",
        ),
    ];
    for (name, text, _) in &cases {
        write_conf(&setup, name, text);
    }
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    // The good resource converged; the skipped files make cron's run fail (exit 2).
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "{} resource file(s) were skipped as invalid",
            cases.len()
        )),
        "{log}"
    );
    for (name, _, message) in &cases {
        let about = lines_about(&log, name);
        assert!(
            about.contains(message) && about.contains("skipped"),
            "{name}: expected {message:?} in:\n{about}\n--- whole log:\n{log}"
        );
    }
    assert_good_converged(&setup);
}

#[test]
fn a_field_given_twice_is_warned_about_and_the_last_one_is_used_as_before() {
    let etcd = Etcd::start();
    etcd.put("/good/a", "1");
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    // A file that worked with the original tool (last value wins) keeps working.
    let text = format!(
        "{{\"id\": \"good\", \"key\": \"/good\", \"recursive\": true, \"source\": \"list.tmpl\", \
         \"target\": \"{}\", \"target\": \"{}\", \"altkeys\": {{\"s\": \"/a\", \"s\": \"/b\"}}}}",
        setup.out("first.conf").display(),
        setup.out("good.conf").display()
    );
    write_conf(&setup, "twice.json", &text);
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("twice.json: field \"target\" appears twice; the last one is used"),
        "{log}"
    );
    assert_good_converged(&setup);
    assert!(!setup.out("first.conf").exists());
}

#[test]
fn an_unknown_field_is_warned_about_by_name_and_the_resource_still_runs() {
    let etcd = Etcd::start();
    etcd.put("/good/a", "1");
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    setup.resource(
        "typo",
        json!({"id": "good", "key": "/good", "recursive": true, "source": "list.tmpl",
               "target": setup.out("good.conf"), "relaodcmd": "true"}),
    );
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("typo.json: unknown field \"relaodcmd\" ignored (known fields: id, key"),
        "{log}"
    );
    assert_good_converged(&setup);
}

#[test]
fn template_errors_name_the_template_and_line_and_leave_targets_alone() {
    let etcd = Etcd::start();
    etcd.put("/good/a", "1");
    etcd.put("/data/j", "{not json");
    let setup = Setup::new();
    good_resource(&setup);
    setup.template("syntax.tmpl", "line one\n{% for x in %}\n");
    std::fs::write(
        setup.cfgdir().join("templates/latin1.tmpl"),
        b"caf\xe9 {{ reconfig.watched }}\n",
    )
    .expect("latin-1 template");
    setup.template(
        "render.tmpl",
        "ok\n{{ reconfig.data['/data/j']|fromjson }}\n",
    );
    setup.template("strict.tmpl", "{{ reconfig.data[reconfig.watched] }}\n");
    // From fuzzing: output sizes are bounded (by fuel, paid before the string is made).
    setup.template("repeat.tmpl", "{{ 'x' * 1000000000000 }}\n");
    for (id, source, strict) in [
        ("syntax", "syntax.tmpl", false),
        ("latin1", "latin1.tmpl", false),
        ("render", "render.tmpl", false),
        ("strict", "strict.tmpl", true),
        ("repeat", "repeat.tmpl", false),
    ] {
        setup.resource(
            id,
            json!({"id": id, "key": "/data", "recursive": true, "source": source, "strict": strict,
                   "target": setup.out(&format!("{id}.conf"))}),
        );
        std::fs::write(setup.out(&format!("{id}.conf")), "previous\n").expect("old target");
    }
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    // Three resources fail to render: the run says it did not converge.
    assert_eq!(out.status.code(), Some(2), "{log}");
    let syntax = lines_about(&log, "syntax.json");
    assert!(
        syntax.contains("syntax.tmpl")
            && syntax.contains("line 2")
            && syntax.contains("syntax error"),
        "{log}"
    );
    let latin1 = lines_about(&log, "latin1.json");
    assert!(
        latin1.contains("latin1.tmpl") && latin1.contains("valid UTF-8"),
        "{log}"
    );
    let render = lines_about(&log, "[render]");
    assert!(
        render.contains("render failed, target left unchanged")
            && render.contains("render.tmpl")
            && render.contains("line 2")
            && render.contains("fromjson: invalid JSON"),
        "{log}"
    );
    let strict = lines_about(&log, "[strict]");
    assert!(
        strict.contains("strict.tmpl") && strict.contains("undefined"),
        "{log}"
    );
    let repeat = lines_about(&log, "[repeat]");
    assert!(
        repeat.contains("repeat.tmpl")
            && repeat.contains("render stopped after 10000000 fuel units"),
        "{log}"
    );
    for id in ["syntax", "latin1", "render", "strict", "repeat"] {
        assert_eq!(
            support::read(&setup.out(&format!("{id}.conf"))).as_deref(),
            Some("previous\n"),
            "{id}"
        );
    }
    assert_good_converged(&setup);
}

/// Issue 10, bug 9: a loop driven by etcd data rendered for hours (MiniJinja caps one
/// `range` at 100 000 items, not their product). The default fuel stops it in about a
/// second; the error names the resource, the template, the budget and where to raise it.
#[test]
fn a_render_loop_driven_by_etcd_data_stops_by_fuel_and_leaves_the_target_alone() {
    let etcd = Etcd::start();
    etcd.put("/runaway/count", "90000");
    etcd.put("/good/a", "1");
    let setup = Setup::new();
    good_resource(&setup);
    setup.template(
        "loop.tmpl",
        "{% set n = getv('/runaway/count')|int %}{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}\n",
    );
    setup.resource(
        "loop",
        json!({"id": "loop", "key": "/runaway", "recursive": true, "source": "loop.tmpl",
               "target": setup.out("loop.conf")}),
    );
    std::fs::write(setup.out("loop.conf"), "previous\n").expect("old target");
    let began = std::time::Instant::now();
    let out = setup.onetime(&etcd, &[]);
    let took = began.elapsed();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {log}");
    let conf = setup.cfgdir().join("conf.d/loop.json");
    let expected = format!(
        "render stopped after 10000000 fuel units: raise render_fuel in {} \
         if the template is meant to do that much work",
        conf.display()
    );
    let about = lines_about(&log, "[loop]");
    assert!(
        about.contains("render failed, target left unchanged")
            && about.contains("loop.tmpl")
            && about.contains(&expected),
        "{log}"
    );
    assert_eq!(
        support::read(&setup.out("loop.conf")).as_deref(),
        Some("previous\n")
    );
    assert_good_converged(&setup);
}

/// Issue 10, bug 9, the fuzz finding: `tojson` wrote the spaces of a huge indent before
/// anything could stop it. A bounded indent and a raised `render_fuel` both work.
#[test]
fn tojson_with_an_absurd_indent_fails_fast_and_render_fuel_can_be_raised() {
    let etcd = Etcd::start();
    etcd.put("/j/a", "1");
    let setup = Setup::new();
    setup.template(
        "indent.tmpl",
        "<%= reconfig.data|tojson(indent=2049638230412172401.) %>\n",
    );
    setup.template(
        "many.tmpl",
        "{% for i in range(100000) %}{% for j in range(40) %}{% endfor %}{% endfor %}done\n",
    );
    setup.resource(
        "indent",
        json!({"id": "indent", "key": "/j", "recursive": true, "source": "indent.tmpl",
               "pattern": "<% %>", "target": setup.out("indent.conf")}),
    );
    setup.resource(
        "many",
        json!({"id": "many", "key": "/j", "recursive": true, "source": "many.tmpl",
               "render_fuel": 100_000_000u64, "target": setup.out("many.conf")}),
    );
    std::fs::write(setup.out("indent.conf"), "previous\n").expect("old target");
    let began = std::time::Instant::now();
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(began.elapsed() < Duration::from_secs(10), "{log}");
    let indent = lines_about(&log, "[indent]");
    assert!(
        indent.contains("indent.tmpl")
            && indent.contains("tojson: indent 2049638230412172")
            && indent.contains("is not a number of spaces from 0 to 32"),
        "{log}"
    );
    assert_eq!(
        support::read(&setup.out("indent.conf")).as_deref(),
        Some("previous\n")
    );
    assert_eq!(
        support::read(&setup.out("many.conf")).as_deref(),
        Some("done\n"),
        "more work than the default allows, with render_fuel raised: {log}"
    );
}

#[test]
fn a_huge_template_loads_and_renders() {
    let etcd = Etcd::start();
    etcd.put("/huge/v", "V");
    let setup = Setup::new();
    // 8 MiB of text with an expression every line.
    let line = format!("{}{{{{ reconfig.data['/huge/v'] }}}}\n", "x".repeat(100));
    let lines = 8 * 1024 * 1024 / line.len();
    setup.template("huge.tmpl", &line.repeat(lines));
    setup.resource(
        "huge",
        json!({"key": "/huge", "recursive": true, "source": "huge.tmpl", "target": setup.out("huge.conf")}),
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rendered = support::read(&setup.out("huge.conf")).expect("rendered");
    assert_eq!(rendered.len(), lines * (100 + 2));
    assert!(rendered.starts_with(&format!("{}V\n", "x".repeat(100))));
}

#[test]
fn a_ten_megabyte_value_is_rendered_whole() {
    // etcd refuses requests over 1.5 MiB by default; an operator storing big values
    // raises the limit.
    let etcd = Etcd::start_with(
        None,
        vec!["--max-request-bytes".to_string(), "33554432".to_string()],
    );
    // 10 MB: etcd's v2 form parser refuses request bodies over 10 MiB.
    let value = "0123456789".repeat(1_000_000);
    etcd.put("/big/v", &value);
    etcd.put("/good/a", "1");
    let setup = Setup::new();
    good_resource(&setup);
    setup.resource(
        "big",
        json!({"key": "/big", "recursive": true, "source": "list.tmpl", "target": setup.out("big.conf")}),
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rendered = support::read(&setup.out("big.conf")).expect("rendered");
    assert_eq!(rendered.len(), "/big/v=\n".len() + value.len());
    assert!(rendered == format!("/big/v={value}\n"));
    assert_good_converged(&setup);
}

/// PUTs raw form bytes, so the value can be any bytes, not only UTF-8.
fn put_raw_form(etcd: &Etcd, key_path: &str, form: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .put(&format!("{}/v2/keys{key_path}", etcd.url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .expect("PUT");
    assert!(response.status().is_success(), "{}", response.status());
}

#[test]
fn non_utf8_values_unicode_and_odd_keys_render_without_loss() {
    let etcd = Etcd::start();
    // etcd keeps the bytes; its JSON answer carries U+FFFD for each invalid one.
    put_raw_form(&etcd, "/odd/bytes", "value=%FF%FEok");
    etcd.put("/odd/sp ace", "a b");
    etcd.put("/odd/ünï ✓", "ç");
    etcd.put("/odd/q?h#p%", "x&y=z");
    etcd.put("/odd/_hidden", "h");
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    setup.resource(
        "odd",
        json!({"key": "/odd", "recursive": true, "source": "list.tmpl", "target": setup.out("odd.conf")}),
    );
    let out = setup.onetime(&etcd, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        support::read(&setup.out("odd.conf")).as_deref(),
        Some("/odd/bytes=\u{FFFD}\u{FFFD}ok\n/odd/q?h#p%=x&y=z\n/odd/sp ace=a b\n/odd/ünï ✓=ç\n"),
        "hidden keys (leading _) are not listed by etcd"
    );
}

#[test]
fn a_directory_where_a_leaf_was_expected_and_a_leaf_where_a_directory_was() {
    let etcd = Etcd::start();
    etcd.put("/shape/dir/a", "1");
    etcd.put("/shape/dir/sub/b", "2");
    etcd.put("/shape/leaf", "L");
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    setup.template(
        "value.tmpl",
        "value={{ reconfig.data[reconfig.watched] }}\n",
    );
    // A leaf template pointed at a directory: strict rendering names the missing value.
    setup.resource(
        "leaf-on-dir",
        json!({"key": "/shape/dir", "source": "value.tmpl", "strict": true,
               "target": setup.out("leaf-on-dir.conf")}),
    );
    // A recursive resource on a leaf renders that one leaf.
    setup.resource(
        "dir-on-leaf",
        json!({"key": "/shape/leaf", "recursive": true, "source": "list.tmpl",
               "target": setup.out("dir-on-leaf.conf")}),
    );
    // Not recursive on a directory: its direct values only, not the subdirectory's.
    setup.resource(
        "flat",
        json!({"key": "/shape/dir", "source": "list.tmpl", "target": setup.out("flat.conf")}),
    );
    std::fs::write(setup.out("leaf-on-dir.conf"), "previous\n").expect("old");
    let out = setup.onetime(&etcd, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    let about = lines_about(&log, "leaf-on-dir");
    assert!(
        about.contains("render failed, target left unchanged") && about.contains("value.tmpl"),
        "{log}"
    );
    assert_eq!(
        support::read(&setup.out("leaf-on-dir.conf")).as_deref(),
        Some("previous\n")
    );
    assert_eq!(
        support::read(&setup.out("dir-on-leaf.conf")).as_deref(),
        Some("/shape/leaf=L\n")
    );
    assert_eq!(
        support::read(&setup.out("flat.conf")).as_deref(),
        Some("/shape/dir/a=1\n")
    );
}

/// One invalid command line: the exit code and the words the message must contain.
struct BadFlag {
    args: Vec<String>,
    code: i32,
    message: String,
}

fn bad(args: &[&str], code: i32, message: &str) -> BadFlag {
    BadFlag {
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        message: message.to_string(),
    }
}

fn check_bad_flags(binary: &str, cases: &[BadFlag]) {
    let mut failures = Vec::new();
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = support::run_bin(binary, &args, Duration::from_secs(20));
        let text = stderr(&out);
        if out.status.code() != Some(case.code) || !text.contains(&case.message) {
            failures.push(format!(
                "{:?}: exit {:?}, expected {} with {:?}; stderr: {text}",
                case.args,
                out.status.code(),
                case.code,
                case.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Invalid values of the connection flags both binaries share, as `(args, message)`.
fn connection_cases(missing: &str) -> Vec<(Vec<String>, String)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cases = vec![
        (
            s(&["--endpoints", ","]),
            "--endpoints: give at least one URL".to_string(),
        ),
        (
            s(&["--endpoints", "ftp://127.0.0.1:1"]),
            "--endpoints:".to_string(),
        ),
        // Issue 10: this said `has port ""`.
        (
            s(&["--endpoints", "http://"]),
            "--endpoints: endpoint \"http://\" has no host; give scheme://host:port".to_string(),
        ),
        (
            s(&["--endpoints", "http://127.0.0.1:1", "--host", "h"]),
            "--endpoints cannot be combined with --host/--port".to_string(),
        ),
        (
            s(&[
                "--endpoints",
                "http://127.0.0.1:1",
                "--srv-domain",
                "example.test",
            ]),
            "--srv/--srv-domain cannot be combined with --endpoints".to_string(),
        ),
        (
            s(&["--host", ""]),
            "--host: \"\" is not a host name or address".to_string(),
        ),
        (
            s(&["--host", "a b"]),
            "--host: \"a b\" is not a host name or address".to_string(),
        ),
        (
            s(&["--host", "http://x"]),
            "is not a host name or address".to_string(),
        ),
        // A forgotten value swallows the next flag: refused, not used as a host.
        (
            s(&["--host", "--debug"]),
            "--host: \"--debug\" is not a host name".to_string(),
        ),
        (
            s(&["--endpoints", "--debug"]),
            "--endpoints: endpoint \"--debug\" has no usable host".to_string(),
        ),
        (
            s(&["--endpoints", "http://:2379"]),
            "has no usable host".to_string(),
        ),
        (
            s(&["--endpoints", "http://127.0.0.1:0"]),
            "has port \"0\"; use a port number 1-65535".to_string(),
        ),
        (
            s(&["--endpoints", "127.0.0.1:99999"]),
            "has port \"99999\"".to_string(),
        ),
        (s(&["--srv", ""]), "--srv".to_string()),
        (s(&["--srv-domain", ""]), "--srv-domain".to_string()),
        (s(&["--ssl_cafile", missing]), missing.to_string()),
        (s(&["--ssl-cafile", ""]), "--ssl_cafile".to_string()),
        (
            s(&["--ssl_cert", missing, "--ssl_key", missing]),
            missing.to_string(),
        ),
        (s(&["--ssl_key", missing]), "--ssl_key".to_string()),
        (s(&["--username", ""]), "--username".to_string()),
        (
            s(&["--password", "p"]),
            "--password needs --username".to_string(),
        ),
        (
            s(&[
                "--username",
                "u",
                "--password",
                "p",
                "--password-file",
                missing,
            ]),
            "--password and --password-file: give only one".to_string(),
        ),
        (
            s(&["--username", "u", "--password-file", missing]),
            format!("--password-file {missing}: cannot read"),
        ),
    ];
    for port in ["0", "65536", "-1", "http", ""] {
        cases.push((
            s(&["--port", port]),
            format!("--port: {port:?} is not a port number (1-65535)"),
        ));
    }
    for flag in ["--timeout", "--watch-timeout"] {
        for value in ["0", "-1", "abc", "NaN", "inf", "1e300", ""] {
            cases.push((
                s(&[flag, value]),
                format!("{flag}: {value:?} is not a positive number of seconds"),
            ));
        }
    }
    for flag in [
        "--endpoints",
        "--host",
        "--port",
        "--srv",
        "--srv-domain",
        "--ssl_cafile",
        "--ssl_cert",
        "--ssl_key",
        "--ssl_passphrase",
        "--username",
        "--password",
        "--password-file",
        "--timeout",
        "--watch-timeout",
    ] {
        cases.push((s(&[flag]), format!("{flag} needs a value")));
    }
    cases
}

#[test]
fn every_invalid_flag_value_of_reconfig_is_refused_with_the_flag_named() {
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    setup.resource(
        "r",
        json!({"key": "/r", "source": "list.tmpl", "target": setup.out("r.conf")}),
    );
    let cfgdir = setup.cfgdir().display().to_string();
    let missing = setup.out("no-such-file").display().to_string();
    // Exit 1 for every bad command line; nothing starts, nothing is written.
    let mut cases: Vec<BadFlag> = connection_cases(&missing)
        .into_iter()
        .map(|(args, message)| {
            // The flag under test comes last, so a missing value is missing.
            let mut all = vec!["--onetime".to_string(), "-c".to_string(), cfgdir.clone()];
            all.extend(args);
            BadFlag {
                args: all,
                code: 1,
                message,
            }
        })
        .collect();
    let with_cfg = |extra: &[&str], message: &str| {
        let mut args = extra.to_vec();
        args.extend([
            "--onetime",
            "--endpoints",
            "http://127.0.0.1:1",
            "-c",
            &cfgdir,
        ]);
        bad(&args, 1, message)
    };
    // Runs that get as far as loading conf.d keep their state in the test's temp dir.
    let state_dir = setup.state_dir().display().to_string();
    cases.extend([
        with_cfg(
            &["--prefix", "prod"],
            "--prefix: \"prod\" must begin with '/'",
        ),
        with_cfg(&["--prefix", ""], "--prefix: \"\" must begin with '/'"),
        with_cfg(&["--wait", "soon"], "--wait: \"soon\""),
        with_cfg(&["--wait", "2s,1s"], "--wait: \"2s,1s\""),
        with_cfg(&["--wait", ""], "--wait: \"\""),
        with_cfg(
            &["--command-timeout", "0"],
            "--command-timeout: \"0\" is not a positive number of seconds",
        ),
        with_cfg(
            &["--command-timeout", "1e300"],
            "--command-timeout: \"1e300\" is not a positive number of seconds",
        ),
        with_cfg(
            &["--command-timeout", "x"],
            "--command-timeout: \"x\" is not a positive number of seconds",
        ),
        with_cfg(&["--bogus"], "invalid option '--bogus'"),
        with_cfg(&["-x"], "invalid option '-x'"),
        with_cfg(&["stray"], "unexpected argument \"stray\""),
        with_cfg(&["--onetime=yes"], "--onetime"),
        bad(&["--cfgdir"], 1, "--cfgdir needs a value"),
        bad(&["--confdir"], 1, "--confdir needs a value"),
        bad(&["--templatedir"], 1, "--templatedir needs a value"),
        bad(&["--prefix"], 1, "--prefix needs a value"),
        bad(&["--wait"], 1, "--wait needs a value"),
        bad(&["--command-timeout"], 1, "--command-timeout needs a value"),
        bad(
            &[
                "--onetime",
                "--state-dir",
                &state_dir,
                "--endpoints",
                "http://127.0.0.1:1",
                "-c",
                &missing,
            ],
            1,
            "cannot read the conf.d directory: No such file or directory (os error 2) (check --cfgdir and permissions)",
        ),
        // Issue 10: a bad --confdir said "check --cfgdir".
        bad(
            &[
                "--onetime",
                "--state-dir",
                &state_dir,
                "--endpoints",
                "http://127.0.0.1:1",
                "-c",
                &cfgdir,
                "--confdir",
                &missing,
            ],
            1,
            "(check --confdir and permissions)",
        ),
        bad(
            &[
                "--onetime",
                "--state-dir",
                &state_dir,
                "--endpoints",
                "http://127.0.0.1:1",
                "-c",
                &cfgdir,
                "--templatedir",
                &missing,
            ],
            1,
            "no valid resource",
        ),
    ]);
    check_bad_flags(RECONFIG, &cases);
    assert!(!setup.out("r.conf").exists());
}

/// Issue 10: a bad connection flag was reported after every resource's "bound:" line, as
/// if the resources had started. The flags are checked first; conf.d is not even read.
#[test]
fn a_bad_connection_flag_is_reported_before_any_resource_is_loaded() {
    let setup = Setup::new();
    setup.template("list.tmpl", LIST);
    for name in ["a", "b"] {
        setup.resource(
            name,
            json!({"key": "/r", "source": "list.tmpl", "target": setup.out(name)}),
        );
    }
    let cfgdir = setup.cfgdir().display().to_string();
    let missing = setup.out("no-such-ca.pem").display().to_string();
    for flags in [
        vec!["--ssl_cafile", missing.as_str()],
        vec!["--endpoints", "http://127.0.0.1:1", "--host", "h"],
    ] {
        let mut args = vec!["--onetime", "-c", cfgdir.as_str()];
        args.extend_from_slice(&flags);
        let out = support::run_bin(RECONFIG, &args, Duration::from_secs(20));
        let log = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {log}");
        assert!(!log.contains("bound:"), "{flags:?}: {log}");
        assert_eq!(log.lines().count(), 1, "{flags:?}: one error: {log}");
    }
}

#[test]
fn every_invalid_flag_value_of_etcd_util_is_refused_with_the_flag_named() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-such-file").display().to_string();
    // Exit 2 for every bad command line.
    let mut cases: Vec<BadFlag> = connection_cases(&missing)
        .into_iter()
        .map(|(args, message)| {
            let mut all = vec!["-k".to_string(), "/a".to_string()];
            all.extend(args);
            BadFlag {
                args: all,
                code: 2,
                message,
            }
        })
        .collect();
    let e = "http://127.0.0.1:1";
    cases.extend([
        bad(
            &["--endpoints", e, "-o", "fetch", "-k", "/a"],
            2,
            "--operation: unknown operation \"fetch\"; use GET, SET, DEL, WATCH or",
        ),
        bad(
            &["--endpoints", e, "-o", "", "-k", "/a"],
            2,
            "--operation: unknown operation \"\"",
        ),
        bad(&["--endpoints", e], 2, "--key is required"),
        bad(
            &["--endpoints", e, "-k", "a"],
            2,
            "--key: \"a\" must start with '/'",
        ),
        bad(
            &["--endpoints", e, "-k", ""],
            2,
            "--key: \"\" must start with '/'",
        ),
        bad(
            &["--endpoints", e, "-o", "set", "-k", "/a"],
            2,
            "SET needs a value: -v VALUE",
        ),
        bad(
            &["--endpoints", e, "-k", "/a", "-v", "x"],
            2,
            "-v/--value is only for SET",
        ),
        bad(
            &["--endpoints", e, "-k", "/a", "-t", "5"],
            2,
            "-t/--ttl is only for SET",
        ),
        bad(
            &[
                "--endpoints",
                e,
                "-o",
                "set",
                "-k",
                "/a",
                "-v",
                "x",
                "-t",
                "0",
            ],
            2,
            "--ttl: \"0\" is not a positive whole number of seconds",
        ),
        bad(
            &[
                "--endpoints",
                e,
                "-o",
                "set",
                "-k",
                "/a",
                "-v",
                "x",
                "-t",
                "-5",
            ],
            2,
            "--ttl: \"-5\" is not a positive whole number of seconds",
        ),
        bad(
            &[
                "--endpoints",
                e,
                "-o",
                "set",
                "-k",
                "/a",
                "-v",
                "x",
                "-t",
                "1.5",
            ],
            2,
            "--ttl: \"1.5\" is not a positive whole number of seconds",
        ),
        bad(
            &[
                "--endpoints",
                e,
                "-o",
                "set",
                "-k",
                "/a",
                "-v",
                "x",
                "-t",
                "99999999999999999999",
            ],
            2,
            "--ttl: \"99999999999999999999\"",
        ),
        bad(
            &["--endpoints", e, "-k", "/a", "--bogus"],
            2,
            "invalid option '--bogus'",
        ),
        bad(
            &["--endpoints", e, "-k", "/a", "stray"],
            2,
            "unexpected argument \"stray\"; give the key with -k",
        ),
        bad(&["-o"], 2, "--operation needs a value"),
        bad(&["-k"], 2, "--key needs a value"),
        bad(&["-k", "/a", "-v"], 2, "--value needs a value"),
        bad(&["-k", "/a", "-t"], 2, "--ttl needs a value"),
    ]);
    check_bad_flags(ETCD_UTIL, &cases);
}
