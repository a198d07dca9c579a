use super::*;

fn map(pairs: &[(&str, &str)]) -> Arc<BTreeMap<String, String>> {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

struct Fixture {
    data: Arc<BTreeMap<String, String>>,
    altdata: BTreeMap<String, Arc<BTreeMap<String, String>>>,
    watched: String,
}

impl Fixture {
    fn new() -> Fixture {
        let mut altdata = BTreeMap::new();
        altdata.insert(
            "akey1".to_string(),
            map(&[("/alt1/x", "ax"), ("/alt1/y", "ay")]),
        );
        altdata.insert("akey2".to_string(), map(&[("/alt2", "a2")]));
        Fixture {
            // Inserted out of order on purpose: output must still be sorted.
            data: map(&[
                ("/svc/b", "2"),
                ("/svc/a/x", "1"),
                ("/svc/a/y", "1y"),
                ("/svc/c", "3"),
            ]),
            altdata,
            watched: "/svc".to_string(),
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            data: &self.data,
            altdata: &self.altdata,
            watched: &self.watched,
        }
    }

    fn render(
        &self,
        source: &str,
        pattern: Option<&str>,
        strict: bool,
    ) -> Result<String, TemplateError> {
        Template::from_source("test.tmpl", source.to_string(), pattern, strict)?
            .render(&self.context())
    }

    fn ok(&self, source: &str) -> String {
        self.render(source, None, false)
            .unwrap_or_else(|err| panic!("render of {source:?} failed: {err}"))
    }

    fn err(&self, source: &str) -> TemplateError {
        match self.render(source, None, false) {
            Ok(text) => panic!("render of {source:?} should fail, gave {text:?}"),
            Err(err) => err,
        }
    }
}

#[test]
fn context_has_reconfig_names_and_shortcuts() {
    let f = Fixture::new();
    assert_eq!(f.ok("{{ reconfig.watched }} {{ watched }}"), "/svc /svc");
    assert_eq!(
        f.ok("{{ reconfig.data['/svc/b'] }}{{ data['/svc/c'] }}"),
        "23"
    );
    assert_eq!(
        f.ok("{{ reconfig.altdata.akey2['/alt2'] }} {{ altdata['akey1']['/alt1/y'] }}"),
        "a2 ay"
    );
}

#[test]
fn maps_iterate_in_sorted_key_order_every_way() {
    let f = Fixture::new();
    let sorted = "/svc/a/x /svc/a/y /svc/b /svc/c ";
    assert_eq!(f.ok("{% for k in data %}{{ k }} {% endfor %}"), sorted);
    assert_eq!(
        f.ok("{% for k, v in data|items %}{{ k }} {% endfor %}"),
        sorted
    );
    assert_eq!(
        f.ok("{% for k, v in data|dictsort %}{{ k }} {% endfor %}"),
        sorted
    );
    assert_eq!(
        f.ok("{% for k in data.keys() %}{{ k }} {% endfor %}"),
        sorted
    );
    assert_eq!(
        f.ok("{% for k, v in data.items() %}{{ v }},{% endfor %}"),
        "1,1y,2,3,"
    );
    assert_eq!(f.ok("{{ data|length }}"), "4");
    assert_eq!(f.ok("{{ altdata|list|join(',') }}"), "akey1,akey2");
}

#[test]
fn tojson_compact_and_pretty() {
    let f = Fixture::new();
    assert_eq!(
        f.ok("{{ altdata.akey1|tojson }}"),
        r#"{"/alt1/x": "ax", "/alt1/y": "ay"}"#
    );
    assert_eq!(
        f.ok("{{ altdata.akey1|tojson(indent=2) }}"),
        "{\n  \"/alt1/x\": \"ax\",\n  \"/alt1/y\": \"ay\"\n}"
    );
    assert_eq!(f.ok("{{ data|tojson }}").matches("/svc/").count(), 4);
    assert_eq!(
        f.ok("{{ altdata.akey2|tojson(true) }}|{{ altdata.akey2|tojson(4) }}"),
        "{\n  \"/alt2\": \"a2\"\n}|{\n    \"/alt2\": \"a2\"\n}"
    );
}

/// The fuzz finding of issue 10: MiniJinja wrote the spaces of a huge indent before it
/// charged fuel for them, so the render never ended.
#[test]
fn tojson_refuses_an_absurd_indent() {
    let f = Fixture::new();
    for source in [
        "{{ data|tojson(indent=2049638230412172401.) }}",
        "{{ data|tojson(2049638230412172401) }}",
        "{{ data|tojson(indent=33) }}",
        "{{ data|tojson(indent=-1) }}",
    ] {
        let err = f.err(source);
        assert!(
            err.reason().contains("tojson: indent") && err.reason().contains("0 to 32"),
            "{source}: {err}"
        );
    }
    assert!(f
        .ok("{{ data|tojson(indent=32) }}")
        .contains(&format!("\n{}\"", " ".repeat(32))));
}

#[test]
fn a_render_that_uses_up_its_fuel_stops_naming_the_budget_and_where_to_raise_it() {
    let f = Fixture::new();
    let source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let mut template =
        Template::from_source("loop.tmpl", source.to_string(), None, false).expect("compiles");
    template.set_render_fuel(5_000, "render_fuel in conf.d/loop.json".to_string());
    let err = template.render(&f.context()).expect_err("out of fuel");
    assert_eq!(err.file(), "loop.tmpl");
    assert_eq!(
        err.reason(),
        "render stopped after 5000 fuel units: raise render_fuel in conf.d/loop.json \
         if the template is meant to do that much work"
    );
    let small = Template::from_source("t.tmpl", "{{ data|length }}".to_string(), None, false);
    let mut small = small.expect("compiles");
    small.set_render_fuel(5_000, String::new());
    assert_eq!(small.render(&f.context()).expect("renders"), "4");
}

/// Data made by a single expression is paid for before it is made.
#[test]
fn fuel_bounds_data_made_in_one_expression() {
    let f = Fixture::new();
    let source = "{{ 'x' * 1000000000000 }}";
    let mut template =
        Template::from_source("big.tmpl", source.to_string(), None, false).expect("compiles");
    template.set_render_fuel(1_000_000, "render_fuel in conf.d/big.json".to_string());
    let err = template.render(&f.context()).expect_err("out of fuel");
    assert!(
        err.reason()
            .starts_with("render stopped after 1000000 fuel units"),
        "{err}"
    );
}

#[test]
fn fromjson_filter_and_function() {
    let f = Fixture::new();
    assert_eq!(
        f.ok(r#"{{ ('{"port": 80, "hosts": ["a","b"]}'|fromjson).port }}"#),
        "80"
    );
    assert_eq!(f.ok(r#"{{ fromjson('["a","b"]')|join('+') }}"#), "a+b");
    let err = f.err(r#"{{ '{"port": 80,'|fromjson }}"#);
    assert!(err.reason().contains("fromjson: invalid JSON"), "{err}");
    assert!(
        err.reason().contains(r#"starting with "{\"port\": 80,""#),
        "{err}"
    );
    assert_eq!(err.line(), Some(1));
}

#[test]
fn basename_and_dirname() {
    let f = Fixture::new();
    assert_eq!(
        f.ok("{{ '/a/b/c'|basename }} {{ '/a/b/c'|dirname }}"),
        "c /a/b"
    );
    assert_eq!(
        f.ok("{{ '/a'|dirname }} {{ '/a/b/'|basename }} {{ 'x'|dirname }}"),
        "/ b ."
    );
}

#[test]
fn getv_looks_in_data_then_altdata_and_uses_defaults() {
    let f = Fixture::new();
    assert_eq!(f.ok("{{ getv('/svc/b') }} {{ getv('/alt1/x') }}"), "2 ax");
    assert_eq!(
        f.ok("{{ getv('/nope', 'dflt') }}|{{ getv('/nope', default='kw') }}"),
        "dflt|kw"
    );
    assert_eq!(f.ok("{{ getv('/nope', none) is none }}"), "True");
    let err = f.err("line1\n{{ getv('/x') }}");
    assert!(
        err.reason()
            .contains("key not found in the data of this resource: /x"),
        "{err}"
    );
    assert_eq!(err.line(), Some(2));
}

#[test]
fn ls_lists_direct_children_sorted_and_unique() {
    let f = Fixture::new();
    assert_eq!(f.ok("{{ ls('/svc')|join(',') }}"), "a,b,c");
    assert_eq!(f.ok("{{ ls('/svc/')|join(',') }}"), "a,b,c");
    assert_eq!(f.ok("{{ ls('/svc/a')|join(',') }}"), "x,y");
    assert_eq!(f.ok("{{ ls('/alt1')|join(',') }}"), "x,y");
    assert_eq!(f.ok("{{ ls('/none')|length }}"), "0");
}

#[test]
fn exists_for_leaves_and_directories() {
    let f = Fixture::new();
    assert_eq!(
        f.ok("{{ exists('/svc/b') }} {{ exists('/svc/a') }} {{ exists('/alt2') }} {{ exists('/sv') }} {{ exists('/svc/z') }}"),
        "True True True False False"
    );
}

#[test]
fn getenv_with_and_without_default() {
    let f = Fixture::new();
    std::env::set_var("RECONFIG_TEMPLATE_TEST_VAR", "here");
    assert_eq!(f.ok("{{ getenv('RECONFIG_TEMPLATE_TEST_VAR') }}"), "here");
    assert_eq!(f.ok("[{{ getenv('RECONFIG_TEMPLATE_TEST_UNSET') }}]"), "[]");
    assert_eq!(
        f.ok("{{ getenv('RECONFIG_TEMPLATE_TEST_UNSET', 'd') }}"),
        "d"
    );
}

#[test]
fn split_join_sort_keys_values() {
    let f = Fixture::new();
    assert_eq!(f.ok("{{ 'b,a'|split(',')|sort|join(';') }}"), "a;b");
    assert_eq!(f.ok("{{ 'b,a'.split(',')|join(';') }}"), "b;a");
    assert_eq!(
        f.ok("{{ keys(altdata.akey1)|join(',') }}"),
        "/alt1/x,/alt1/y"
    );
    assert_eq!(f.ok("{{ values(data)|join(',') }}"), "1,1y,2,3");
    let err = f.err("{{ keys('str') }}");
    assert!(err.reason().contains("keys() expects a map"), "{err}");
}

#[test]
fn erb_pattern_maps_blocks_values_comments() {
    let f = Fixture::new();
    let source = "<%# a comment %>\n<% for k, v in data|items %>\nKEY <%= k %> = <%= v %>\n<% endfor %>\nend\n";
    let out = f.render(source, Some("<% %>"), false).unwrap();
    assert_eq!(
        out,
        "KEY /svc/a/x = 1\nKEY /svc/a/y = 1y\nKEY /svc/b = 2\nKEY /svc/c = 3\nend\n"
    );
}

#[test]
fn hash_percent_pattern_and_literal_jinja_passes_through() {
    let f = Fixture::new();
    let source =
        "#% if watched %#\nw=#%= watched %# {{ not_a_tag }} {% raw %} {# x #}\n#% endif %#\n";
    let out = f.render(source, Some("#% %#"), false).unwrap();
    assert_eq!(out, "w=/svc {{ not_a_tag }} {% raw %} {# x #}\n");
}

#[test]
fn whitespace_control_with_custom_pattern() {
    let f = Fixture::new();
    let source = "a\n  <%- if true -%>\n  b\n<%- endif %>\nc\n";
    assert_eq!(f.render(source, Some("<% %>"), false).unwrap(), "abc\n");
}

#[test]
fn indented_block_lines_leave_no_blank_lines_and_final_newline_is_kept() {
    let f = Fixture::new();
    let source = "x {\n    {% for k in ls('/svc') %}\n    {{ k }};\n    {% endfor %}\n}\n";
    assert_eq!(f.ok(source), "x {\n    a;\n    b;\n    c;\n}\n");
    assert_eq!(f.ok("no newline"), "no newline");
    assert_eq!(f.ok("two\n\n"), "two\n\n");
}

#[test]
fn bad_patterns_are_rejected_with_help() {
    for pattern in ["<%", "<% %> x", "", "  ", "%% %%"] {
        let err = Template::from_source("bad.tmpl", "x".into(), Some(pattern), false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("template bad.tmpl: invalid pattern"),
            "{text}"
        );
        assert!(text.contains(&format!("{pattern:?}")), "{text}");
        assert!(text.contains(r#"like "<% %>""#), "{text}");
    }
}

#[test]
fn lenient_prints_empty_for_undefined_strict_fails_naming_it() {
    let f = Fixture::new();
    assert_eq!(
        f.ok("[{{ missing }}][{{ data['/nope'] }}]{% if missing %}x{% endif %}"),
        "[][]"
    );
    let err = f.render("ok\n{{ missing }}\n", None, true).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(
        err.to_string()
            .starts_with("template test.tmpl, line 2: undefined value"),
        "{err}"
    );
    assert!(err.reason().contains("missing"), "{err}");
    let err = f
        .render("{% if missing %}x{% endif %}", None, true)
        .unwrap_err();
    assert!(err.reason().contains("undefined"), "{err}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let err = Template::from_source(
        "/etc/t/broken.tmpl",
        "a\nb\n{% for x in y %}\n".into(),
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(err.file(), "/etc/t/broken.tmpl");
    assert_eq!(err.line(), Some(3));
    let text = err.to_string();
    assert!(
        text.starts_with("template /etc/t/broken.tmpl, line 3: syntax error"),
        "{text}"
    );
    assert!(
        err.excerpt().is_some_and(|e| e.contains("for x in y")),
        "{err:?}"
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = std::env::temp_dir().join(format!("reconfig-template-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("page.html");
    std::fs::write(&path, "<%= '<b>&' %>\n").unwrap();
    let template = Template::load(&path, Some("<% %>"), false).unwrap();
    let f = Fixture::new();
    // Not HTML-escaped even though the name ends in .html.
    assert_eq!(template.render(&f.context()).unwrap(), "<b>&\n");
    let missing = dir.join("missing.tmpl");
    let err = Template::load(&missing, None, false).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(
        err.reason().contains("cannot read the template file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn template_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
}

/// Run with `cargo test --release -- --ignored --nocapture render_speed`.
#[test]
#[ignore]
fn render_speed_of_a_10000_entry_map() {
    let data: Arc<BTreeMap<String, String>> = Arc::new(
        (0..10_000)
            .map(|i| {
                (
                    format!("/svc/key{i:05}"),
                    format!("10.0.{}.{}:8080", i / 256, i % 256),
                )
            })
            .collect(),
    );
    let altdata = BTreeMap::new();
    let ctx = Context {
        data: &data,
        altdata: &altdata,
        watched: "/svc",
    };
    let source = "<% for k, v in data|items %>\nserver <%= k|basename %> <%= v %>;\n<% endfor %>\n";
    let template =
        Template::from_source("bench", source.to_string(), Some("<% %>"), false).unwrap();
    let rounds = 20;
    let start = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes = template.render(&ctx).unwrap().len();
    }
    let per_render = start.elapsed() / rounds;
    println!("10000-entry render: {per_render:?} per render, {bytes} bytes");
    assert!(per_render < std::time::Duration::from_millis(200));
}

#[test]
fn rendering_into_a_sized_output_gives_the_same_text_and_errors() {
    let f = Fixture::new();
    let source = "{% for k, v in data|items %}{{ k|basename }}={{ v }} é\n{% endfor %}";
    let template =
        Template::from_source("t.tmpl", source.to_string(), None, false).expect("compiles");
    let grown = template.render(&f.context()).expect("renders");
    for capacity in [1, 8, grown.len(), 4 * grown.len()] {
        let sized = template
            .render_with_capacity(&f.context(), capacity)
            .expect("renders");
        assert_eq!(sized, grown, "capacity {capacity}");
    }
    let failing =
        Template::from_source("t.tmpl", "a\n{{ getv('/nope') }}".to_string(), None, false)
            .expect("compiles");
    let plain = failing.render(&f.context()).expect_err("missing key");
    let sized = failing
        .render_with_capacity(&f.context(), 64)
        .expect_err("missing key");
    assert_eq!(sized.to_string(), plain.to_string());
}

/// The `template_render` fuzz seeds (`pattern NUL template`), among them the runaway
/// renders of issue 10, each render or fail quickly with the fuzz target's fuel.
#[test]
fn every_template_fuzz_seed_ends_quickly() {
    let f = Fixture::new();
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/template_render");
    let mut runaway = 0;
    for entry in std::fs::read_dir(&seeds).expect("seeds") {
        let path = entry.expect("seed").path();
        let input = std::fs::read_to_string(&path).expect("a UTF-8 seed");
        let (pattern, source) = match input.split_once('\0') {
            Some((pattern, source)) => (Some(pattern), source),
            None => (None, input.as_str()),
        };
        let Ok(mut template) = Template::from_source("seed", source.to_string(), pattern, false)
        else {
            continue;
        };
        template.set_render_fuel(1_000_000, String::new());
        let began = std::time::Instant::now();
        let result = template.render(&f.context());
        let took = began.elapsed();
        assert!(took.as_secs() < 5, "{}: {took:?}", path.display());
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("regression-"))
        {
            assert!(result.is_err(), "{}", path.display());
            runaway += 1;
        }
    }
    assert_eq!(runaway, 2, "the two runaway renders of issue 10");
}
