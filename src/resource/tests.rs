use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A throwaway config tree: `<tmp>/conf.d` and `<tmp>/templates`, removed on drop.
struct ConfTree {
    root: PathBuf,
}

static TREE_COUNT: AtomicUsize = AtomicUsize::new(0);

impl ConfTree {
    fn new() -> ConfTree {
        let root = std::env::temp_dir().join(format!(
            "reconfig-resource-test-{}-{}",
            std::process::id(),
            TREE_COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(root.join("conf.d")).unwrap();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::write(root.join("templates/t.tmpl"), "{{ watched }}\n").unwrap();
        ConfTree { root }
    }

    fn conf(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.join("conf.d").join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn template(&self, name: &str, text: &str) {
        std::fs::write(self.root.join("templates").join(name), text).unwrap();
    }

    fn options(&self, prefix: &str) -> LoadOptions {
        LoadOptions {
            confdir: self.root.join("conf.d"),
            templatedir: self.root.join("templates"),
            prefix: prefix.to_string(),
            default_wait: None,
            default_command_timeout: Duration::from_secs(10),
        }
    }

    fn load(&self) -> Loaded {
        load(&self.options("")).unwrap()
    }

    /// Loads a single conf file with the given JSON and returns its one problem.
    fn problem_of(&self, json: &str) -> String {
        let file = self.conf("bad.json", json);
        let loaded = self.load();
        assert!(
            loaded.resources.is_empty(),
            "expected no resources for {json}"
        );
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        assert_eq!(loaded.problems[0].file, file);
        loaded.problems[0].message.clone()
    }

    fn target(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

impl Drop for ConfTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn minimal(tree: &ConfTree, extra: &str) -> String {
    format!(
        r#"{{"key": "/a", "source": "t.tmpl", "target": "{}"{extra}}}"#,
        tree.target("out.conf")
    )
}

fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text:?} should contain {part:?}");
}

#[test]
fn full_resource_is_read_with_all_fields() {
    let tree = ConfTree::new();
    let file = tree.conf(
        "full.json",
        &format!(
            r##"{{"id": "web", "key": "/svc", "recursive": true, "source": "t.tmpl", "target": "{}",
            "pattern": "#% %#", "altkeys": {{"a": "/alt/one"}}, "mode": "0640", "owner": "daemon",
            "group": "adm", "mkdirs": true, "checkcmd": "test -s {{{{src}}}}", "reloadcmd": "echo hi",
            "splay": 1.5, "timeout": "30s", "strict": true, "wait": {{"min": "100ms", "max": "2s"}}}}"##,
            tree.target("out.conf")
        ),
    );
    let loaded = tree.load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let r = &loaded.resources[0];
    assert_eq!(r.id(), "web");
    assert_eq!(r.file, file);
    assert_eq!(r.key, "/svc");
    assert!(r.recursive && r.install.mkdirs && r.strict);
    assert_eq!(r.altkeys.get("a").map(String::as_str), Some("/alt/one"));
    assert_eq!(r.template_path, tree.root.join("templates/t.tmpl"));
    assert_eq!(r.target(), PathBuf::from(tree.target("out.conf")));
    assert_eq!(r.install.mode, Some(0o640));
    assert_eq!(r.install.owner.as_deref(), Some("daemon"));
    assert_eq!(r.install.group.as_deref(), Some("adm"));
    assert_eq!(r.install.checkcmd.as_deref(), Some("test -s {{src}}"));
    assert_eq!(r.install.reloadcmd.as_deref(), Some("echo hi"));
    assert_eq!(r.install.splay, Duration::from_millis(1500));
    assert_eq!(r.install.command_timeout, Duration::from_secs(30));
    assert_eq!(
        r.wait,
        Some(Wait {
            min: Duration::from_millis(100),
            max: Duration::from_secs(2)
        })
    );
}

#[test]
fn defaults_when_fields_are_absent() {
    let tree = ConfTree::new();
    let file = tree.conf("min.json", &minimal(&tree, ""));
    let mut opts = tree.options("");
    let default_wait = Wait {
        min: Duration::from_secs(1),
        max: Duration::from_secs(5),
    };
    opts.default_wait = Some(default_wait);
    opts.default_command_timeout = Duration::from_secs(7);
    let loaded = load(&opts).unwrap();
    let r = &loaded.resources[0];
    assert_eq!(r.id(), file.display().to_string());
    assert!(!r.recursive && !r.install.mkdirs && !r.strict);
    assert!(r.altkeys.is_empty());
    assert_eq!(
        (
            r.install.mode,
            r.install.owner.as_deref(),
            r.install.checkcmd.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(r.install.splay, Duration::ZERO);
    assert_eq!(r.install.command_timeout, Duration::from_secs(7));
    assert_eq!(r.wait, Some(default_wait));
}

#[test]
fn prefix_is_applied_to_key_but_not_altkeys() {
    let tree = ConfTree::new();
    tree.conf(
        "p.json",
        &minimal(&tree, r#", "key": "/a", "altkeys": {"x": "/other"}"#),
    );
    for prefix in ["/pfx", "/pfx/", "pfx", "/pfx//"] {
        let loaded = load(&tree.options(prefix)).unwrap();
        assert_eq!(loaded.resources[0].key, "/pfx/a", "prefix {prefix:?}");
        assert_eq!(loaded.resources[0].altkeys["x"], "/other");
    }
    let loaded = load(&tree.options("")).unwrap();
    assert_eq!(loaded.resources[0].key, "/a");
}

#[test]
fn key_is_squeezed_and_loses_its_trailing_slash() {
    assert_eq!(watched_key("", "//a//b/").unwrap(), "/a/b");
    assert_eq!(watched_key("/p", "/").unwrap(), "/p");
    assert_eq!(watched_key("", "/").unwrap(), "/");
}

#[test]
fn files_load_in_name_order_and_other_extensions_are_ignored() {
    let tree = ConfTree::new();
    let mk = |id: &str, target: &str| {
        format!(
            r#"{{"id": "{id}", "key": "/a", "source": "t.tmpl", "target": "{}"}}"#,
            tree.target(target)
        )
    };
    tree.conf("b.json", &mk("second", "b.conf"));
    tree.conf("a.json", &mk("first", "a.conf"));
    tree.conf("c.json.bak", "not json");
    tree.conf("README", "not json");
    let loaded = tree.load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let ids: Vec<&str> = loaded.resources.iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["first", "second"]);
}

#[test]
fn invalid_json_names_line_and_column() {
    let tree = ConfTree::new();
    let message = tree.problem_of("{\n  \"key\": \"/a\",\n  oops\n}");
    assert_contains(&message, "not valid JSON");
    assert_contains(&message, "line 3 column 3");
}

#[test]
fn not_an_object() {
    let tree = ConfTree::new();
    assert_contains(&tree.problem_of("[1, 2]"), "expected a JSON object");
}

#[test]
fn missing_required_fields_are_named() {
    let tree = ConfTree::new();
    let target = tree.target("x.conf");
    let cases = [
        (
            format!(r#"{{"source": "t.tmpl", "target": "{target}"}}"#),
            "key",
        ),
        (
            format!(r#"{{"key": "/a", "target": "{target}"}}"#),
            "source",
        ),
        (r#"{"key": "/a", "source": "t.tmpl"}"#.to_string(), "target"),
    ];
    for (json, field) in cases {
        assert_contains(
            &tree.problem_of(&json),
            &format!("missing required field \"{field}\""),
        );
    }
}

#[test]
fn keys_lists_several_watched_keys_prefixed_and_key_is_the_first() {
    let tree = ConfTree::new();
    let target = tree.target("k.conf");
    tree.conf(
        "k.json",
        &format!(
            r#"{{"keys": ["/a", "/b//c/"], "source": "t.tmpl", "target": "{target}",
            "altkeys": {{"x": "/other"}}, "watch_altkeys": true}}"#
        ),
    );
    let loaded = load(&tree.options("/p")).unwrap();
    let r = &loaded.resources[0];
    assert_eq!(r.keys, ["/p/a", "/p/b/c"]);
    assert_eq!(r.key, "/p/a");
    assert_eq!(
        r.watched_keys(),
        [("/p/a", false), ("/p/b/c", false), ("/other", true)]
    );
}

#[test]
fn key_and_keys_together_or_a_bad_keys_list_are_errors_naming_the_field() {
    let tree = ConfTree::new();
    let cases = [
        (
            r#", "keys": ["/b"]"#,
            r#"fields "key" and "keys" are both given"#,
        ),
        (r#", "key": null, "keys": []"#, r#"field "keys": is empty"#),
        (
            r#", "key": null, "keys": "/b""#,
            r#"field "keys": expected a list"#,
        ),
        (
            r#", "key": null, "keys": ["/b", 1]"#,
            r#"field "keys": entry 2 must be an etcd key string"#,
        ),
        (
            r#", "key": null, "keys": ["b"]"#,
            r#"field "keys": "b" must start with '/'"#,
        ),
        (
            r#", "key": null, "keys": ["/b", "/b/"]"#,
            r#"field "keys": /b is listed twice"#,
        ),
    ];
    for (extra, expected) in cases {
        assert_contains(&tree.problem_of(&minimal(&tree, extra)), expected);
    }
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let tree = ConfTree::new();
    let cases = [
        (
            r#", "recursive": "false""#,
            r#"field "recursive": expected true or false (without quotes), found the string "false""#,
        ),
        (r#", "mkdirs": 1"#, r#"field "mkdirs""#),
        (
            r#", "altkeys": ["/x"]"#,
            r#"field "altkeys": expected an object"#,
        ),
        (
            r#", "altkeys": {"a": 1}"#,
            r#"field "altkeys": entry "a" must be an etcd key string, found the number 1"#,
        ),
        (
            r#", "altkeys": {"a": "x"}"#,
            r#"field "altkeys": entry "a" is "x"; etcd keys start with '/'"#,
        ),
        (
            r#", "checkcmd": ["test"]"#,
            r#"field "checkcmd": expected a string, found a list"#,
        ),
        (r#", "reloadcmd": """#, r#"field "reloadcmd": is empty"#),
        (r#", "id": 5"#, r#"field "id": expected a string"#),
        (
            r#", "splay": -1"#,
            r#"field "splay": -1 is not a usable number of seconds"#,
        ),
        (r#", "splay": true"#, r#"field "splay": expected seconds"#),
        (
            r#", "timeout": "30""#,
            r#"field "timeout": invalid duration "30": 30 has no unit"#,
        ),
        (
            r#", "timeout": "0s""#,
            r#"field "timeout": must be longer than 0"#,
        ),
        (r#", "strict": "yes""#, r#"field "strict""#),
        (
            r#", "render_fuel": 0"#,
            r#"field "render_fuel": 0 is not a whole number of 1 or more"#,
        ),
        (
            r#", "render_fuel": 1.5"#,
            r#"field "render_fuel": 1.5 is not a whole number"#,
        ),
        (
            r#", "render_fuel": "1000""#,
            r#"field "render_fuel": expected a whole number (without quotes)"#,
        ),
        (
            r#", "backup": 0"#,
            r#"field "backup": 0 is not a whole number of 1 or more"#,
        ),
        (
            r#", "backup": 101"#,
            r#"field "backup": 101 is more than the 100 previous versions"#,
        ),
    ];
    for (extra, expected) in cases {
        assert_contains(&tree.problem_of(&minimal(&tree, extra)), expected);
    }
}

#[test]
fn key_must_start_with_slash() {
    let tree = ConfTree::new();
    let message = tree.problem_of(&minimal(&tree, r#", "key": "svc/a""#));
    assert_eq!(
        message,
        r#"field "key": "svc/a" must start with '/' (e.g. "/svc/a")"#
    );
}

#[test]
fn target_must_be_absolute() {
    let tree = ConfTree::new();
    let message = tree.problem_of(r#"{"key": "/a", "source": "t.tmpl", "target": "out.conf"}"#);
    assert_contains(
        &message,
        r#"field "target": "out.conf" must be an absolute path"#,
    );
}

#[test]
fn missing_template_names_the_path_looked_at() {
    let tree = ConfTree::new();
    let message = tree.problem_of(&minimal(&tree, r#", "source": "nope.tmpl""#));
    let looked_at = tree.root.join("templates/nope.tmpl");
    assert_contains(
        &message,
        &format!("template file {} not found", looked_at.display()),
    );
}

#[test]
fn template_syntax_error_is_reported_with_file_and_line() {
    let tree = ConfTree::new();
    tree.template("broken.tmpl", "ok\n{% for x in data %}\n");
    let message = tree.problem_of(&minimal(&tree, r#", "source": "broken.tmpl""#));
    let path = tree.root.join("templates/broken.tmpl");
    assert_contains(
        &message,
        &format!("template {}, line 2: syntax error", path.display()),
    );
}

#[test]
fn bad_pattern_is_reported() {
    let tree = ConfTree::new();
    let message = tree.problem_of(&minimal(&tree, r#", "pattern": "<%""#));
    assert_contains(&message, r#"invalid pattern "<%""#);
    assert_contains(&message, r#"like "<% %>""#);
}

#[test]
fn modes_must_be_quoted_octal_strings() {
    let tree = ConfTree::new();
    let message = tree.problem_of(&minimal(&tree, r#", "mode": 640"#));
    assert_contains(&message, r#"field "mode": the number 640 is not accepted"#);
    assert_contains(
        &message,
        r#"quote the octal mode as a string, e.g. "mode": "0640""#,
    );
    for bad in ["0890", "rw-r--r--", "17777", ""] {
        let message = tree.problem_of(&minimal(&tree, &format!(r#", "mode": "{bad}""#)));
        assert_contains(&message, r#"field "mode""#);
    }
    tree.conf("bad.json", &minimal(&tree, r#", "mode": "755""#));
    assert_eq!(tree.load().resources[0].install.mode, Some(0o755));
}

#[test]
fn bad_wait_is_reported() {
    let tree = ConfTree::new();
    let cases = [
        (
            r#", "wait": {"min": "2s", "max": "1s"}"#,
            "is longer than max",
        ),
        (r#", "wait": 5"#, "wait must be a duration string"),
        (r#", "wait": {"max": "1s"}"#, "wait needs a \"min\""),
        (
            r#", "wait": {"min": "1s", "maxx": "1s"}"#,
            "unknown field \"maxx\"",
        ),
        (r#", "wait": "fast""#, "invalid duration \"fast\""),
    ];
    for (extra, expected) in cases {
        let message = tree.problem_of(&minimal(&tree, extra));
        assert!(message.starts_with("field \"wait\": "), "{message}");
        assert_contains(&message, expected);
    }
}

#[test]
fn unknown_fields_do_not_stop_loading() {
    let tree = ConfTree::new();
    tree.conf("u.json", &minimal(&tree, r#", "colour": "blue""#));
    let loaded = tree.load();
    assert_eq!(loaded.resources.len(), 1);
    assert!(loaded.problems.is_empty());
}

#[test]
fn duplicate_target_rejects_the_later_file_naming_both() {
    let tree = ConfTree::new();
    let target = tree.target("same.conf");
    tree.conf(
        "a.json",
        &format!(r#"{{"id": "A", "key": "/a", "source": "t.tmpl", "target": "{target}"}}"#),
    );
    // Same file through a `..` detour: caught by the canonical comparison.
    let detour = tree.root.join("conf.d/../same.conf");
    let later = tree.conf(
        "b.json",
        &format!(
            r#"{{"id": "B", "key": "/a", "source": "t.tmpl", "target": "{}"}}"#,
            detour.display()
        ),
    );
    // The same key in another resource with its own target is fine.
    tree.conf(
        "c.json",
        &format!(
            r#"{{"id": "C", "key": "/a", "source": "t.tmpl", "target": "{}"}}"#,
            tree.target("other.conf")
        ),
    );
    let loaded = tree.load();
    let ids: Vec<&str> = loaded.resources.iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["A", "C"]);
    assert_eq!(loaded.problems.len(), 1);
    let problem = &loaded.problems[0];
    assert_eq!(problem.file, later);
    assert_contains(&problem.message, "resource \"A\"");
    assert_contains(
        &problem.message,
        &tree.root.join("conf.d/a.json").display().to_string(),
    );
    assert_contains(
        &problem.to_string(),
        &format!("{}: target", later.display()),
    );
}

#[test]
fn one_bad_file_does_not_hide_the_good_ones() {
    let tree = ConfTree::new();
    tree.conf("a.json", "{");
    tree.conf("b.json", &minimal(&tree, ""));
    let loaded = tree.load();
    assert_eq!(loaded.resources.len(), 1);
    assert_eq!(loaded.problems.len(), 1);
}

#[test]
fn unreadable_confdir_is_the_only_hard_error() {
    let tree = ConfTree::new();
    let mut opts = tree.options("");
    opts.confdir = tree.root.join("missing-conf.d");
    let err = load(&opts).unwrap_err();
    assert_eq!(err.file, opts.confdir);
    assert_contains(&err.message, "cannot read the conf.d directory");
}

#[test]
fn loaded_template_renders() {
    let tree = ConfTree::new();
    tree.conf("a.json", &minimal(&tree, r#", "key": "/w""#));
    let loaded = load(&tree.options("/p")).unwrap();
    let data = Arc::new(BTreeMap::new());
    let altdata = BTreeMap::new();
    let r = &loaded.resources[0];
    let ctx = crate::template::Context {
        data: &data,
        altdata: &altdata,
        watched: &r.key,
    };
    assert_eq!(r.template.render(&ctx).unwrap(), "/p/w\n");
}

#[test]
fn durations() {
    let ok = |s: &str| parse_duration(s).unwrap();
    assert_eq!(ok("100ms"), Duration::from_millis(100));
    assert_eq!(ok("2s"), Duration::from_secs(2));
    assert_eq!(ok("1.5s"), Duration::from_millis(1500));
    assert_eq!(ok("1m"), Duration::from_secs(60));
    assert_eq!(ok("1h"), Duration::from_secs(3600));
    assert_eq!(ok("500us"), Duration::from_micros(500));
    assert_eq!(ok("1m30s"), Duration::from_secs(90));
    assert_eq!(ok("0"), Duration::ZERO);
    for bad in ["", "5", "5x", "s", "-1s", "1..2s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_contains(&parse_duration("5").unwrap_err(), "has no unit");
}

#[test]
fn wait_forms() {
    let wait = |v: serde_json::Value| parse_wait(&v);
    let ms = Duration::from_millis;
    assert_eq!(
        wait(serde_json::json!("100ms")).unwrap(),
        Wait {
            min: ms(100),
            max: ms(1000)
        }
    );
    assert_eq!(
        wait(serde_json::json!("100ms,2s")).unwrap(),
        Wait {
            min: ms(100),
            max: ms(2000)
        }
    );
    assert_eq!(
        wait(serde_json::json!({"min": "1s"})).unwrap(),
        Wait {
            min: ms(1000),
            max: ms(10_000)
        }
    );
    assert!(wait(serde_json::json!("2s,1s")).is_err());
}

#[test]
fn render_fuel_bounds_the_render_and_the_error_says_where_to_raise_it() {
    let tree = ConfTree::new();
    tree.template(
        "loop.tmpl",
        "{% for i in range(100000) %}{{ i }}{% endfor %}",
    );
    let file = tree.conf(
        "loop.json",
        &format!(
            r#"{{"key": "/a", "source": "loop.tmpl", "target": "{}", "render_fuel": 1000}}"#,
            tree.target("out.conf")
        ),
    );
    let loaded = tree.load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let data = Arc::new(BTreeMap::new());
    let ctx = crate::template::Context {
        data: &data,
        altdata: &BTreeMap::new(),
        watched: "/a",
    };
    let err = loaded.resources[0]
        .template
        .render(&ctx)
        .expect_err("out of fuel");
    assert_eq!(
        err.to_string(),
        format!(
            "template {}, line 1: render stopped after 1000 fuel units: raise render_fuel in {} \
             if the template is meant to do that much work",
            tree.root.join("templates/loop.tmpl").display(),
            file.display()
        )
    );
}

/// A resource with `templates` listing `entries` (JSON objects, without the braces).
fn grouped(entries: &[String], extra: &str) -> String {
    let list: Vec<String> = entries.iter().map(|entry| format!("{{{entry}}}")).collect();
    format!(
        r#"{{"id": "g", "key": "/a", "templates": [{}]{extra}}}"#,
        list.join(", ")
    )
}

fn entry(tree: &ConfTree, source: &str, target: &str, extra: &str) -> String {
    format!(
        r#""source": "{source}", "target": "{}"{extra}"#,
        tree.target(target)
    )
}

#[test]
fn templates_list_the_files_in_order_with_the_resource_defaults() {
    let tree = ConfTree::new();
    tree.template("u.tmpl", "u {{ watched }}\n");
    tree.conf(
        "g.json",
        &grouped(
            &[
                entry(&tree, "t.tmpl", "a.conf", ""),
                entry(
                    &tree,
                    "u.tmpl",
                    "b.conf",
                    r#", "mode": "0600", "owner": "daemon""#,
                ),
            ],
            r#", "mode": "0640", "owner": "root", "group": "adm", "checkcmd": "x {{src:2}}""#,
        ),
    );
    let loaded = tree.load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let resource = &loaded.resources[0];
    let file = |target: &str, mode, owner: &str| FileSpec {
        target: PathBuf::from(tree.target(target)),
        mode: Some(mode),
        owner: Some(owner.to_string()),
        group: Some("adm".to_string()),
    };
    assert_eq!(
        resource.install.files(),
        [
            file("a.conf", 0o640, "root"),
            file("b.conf", 0o600, "daemon")
        ]
    );
    assert_eq!(resource.template_path, tree.root.join("templates/t.tmpl"));
    assert_eq!(resource.grouped_templates.len(), 1);
    assert_eq!(
        resource.grouped_templates[0].template_path,
        tree.root.join("templates/u.tmpl")
    );
}

#[test]
fn bad_templates_lists_are_errors_naming_the_entry() {
    let tree = ConfTree::new();
    let a = entry(&tree, "t.tmpl", "a.conf", "");
    let cases = [
        (
            format!(r#"{{"key": "/a", "source": "t.tmpl", "templates": [{{{a}}}]}}"#),
            r#"fields "templates" and "source" are both given"#.to_string(),
        ),
        (
            format!(
                r#"{{"key": "/a", "target": "{}", "templates": [{{{a}}}]}}"#,
                tree.target("b.conf")
            ),
            r#"fields "templates" and "target" are both given"#.to_string(),
        ),
        (
            r#"{"key": "/a", "templates": []}"#.to_string(),
            r#"field "templates": is empty"#.to_string(),
        ),
        (
            r#"{"key": "/a", "templates": {"source": "t.tmpl"}}"#.to_string(),
            r#"field "templates": expected a list"#.to_string(),
        ),
        (
            grouped(&[a.clone(), r#""source": "t.tmpl""#.to_string()], ""),
            r#"field "templates", entry 2: missing required field "target""#.to_string(),
        ),
        (
            grouped(
                &[
                    a.clone(),
                    entry(&tree, "t.tmpl", "b.conf", r#", "traget": 1"#),
                ],
                "",
            ),
            r#"field "templates", entry 2: unknown field "traget""#.to_string(),
        ),
        (
            grouped(&[a.clone(), entry(&tree, "t.tmpl", "a.conf", "")], ""),
            r#"field "templates", entry 2: target"#.to_string(),
        ),
        (
            grouped(&[a.clone(), entry(&tree, "none.tmpl", "b.conf", "")], ""),
            r#"field "templates", entry 2: field "source": template file"#.to_string(),
        ),
        (
            grouped(
                &[a.clone(), entry(&tree, "t.tmpl", "b.conf", "")],
                r#", "checkcmd": "test -s {{src:3}}""#,
            ),
            r#"field "checkcmd": {{src:3}} names file 3, but the resource has 2"#.to_string(),
        ),
        (
            minimal(&tree, r#", "reloadcmd": "cat {{target:2}}""#),
            r#"field "reloadcmd": {{target:2}} names file 2, but the resource has 1"#.to_string(),
        ),
    ];
    for (json, expected) in cases {
        assert_contains(&tree.problem_of(&json), &expected);
    }
}

#[test]
fn a_grouped_target_claimed_by_another_resource_is_refused() {
    let tree = ConfTree::new();
    tree.conf(
        "a.json",
        &format!(
            r#"{{"id": "A", "key": "/a", "source": "t.tmpl", "target": "{}"}}"#,
            tree.target("shared.conf")
        ),
    );
    let later = tree.conf(
        "b.json",
        &grouped(
            &[
                entry(&tree, "t.tmpl", "own.conf", ""),
                entry(&tree, "t.tmpl", "shared.conf", ""),
            ],
            "",
        ),
    );
    let loaded = tree.load();
    let ids: Vec<&str> = loaded.resources.iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["A"]);
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].file, later);
    assert_contains(&loaded.problems[0].message, "resource \"A\"");
}

#[test]
fn guard_fields_are_read_and_bad_ones_name_the_field() {
    let tree = ConfTree::new();
    tree.conf(
        "g.json",
        &minimal(
            &tree,
            r#", "min_keys": 2, "max_shrink": "50%", "values": "[0-9.]+:[0-9]+", "on_bad_value": "skip""#,
        ),
    );
    let loaded = tree.load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let guards = &loaded.resources[0].guards;
    assert_eq!(guards.min_keys, Some(2));
    assert_eq!(guards.max_shrink, Some(crate::guard::Percent(50.0)));
    let rule = guards.values.as_ref().expect("values");
    assert_eq!(rule.on_mismatch, crate::guard::OnBadValue::Skip);
    std::fs::remove_file(tree.root.join("conf.d/g.json")).unwrap();

    for (extra, wanted) in [
        (
            r#", "min_keys": 0"#,
            "field \"min_keys\": 0 is not a whole number of 1 or more",
        ),
        (
            r#", "max_shrink": "50""#,
            "field \"max_shrink\": \"50\" must end with '%'",
        ),
        (r#", "max_shrink": "100%""#, "from 0% to under 100%"),
        (
            r#", "max_shrink": 0.5"#,
            "expected a share of the leaves like \"50%\"",
        ),
        (
            r#", "values": "[0-9""#,
            "field \"values\": \"[0-9\" is not a valid regular expression",
        ),
        (
            r#", "values": "x", "on_bad_value": "drop""#,
            "field \"on_bad_value\": \"drop\" is not \"refuse\" (the default) or \"skip\"",
        ),
        (r#", "on_bad_value": "skip""#, "given without \"values\""),
    ] {
        assert_contains(&tree.problem_of(&minimal(&tree, extra)), wanted);
    }
}
