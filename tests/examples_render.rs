//! The shipped examples (conf-example/ + templates-example/) load with the real loader and
//! render the expected text from conf-example/seed.txt; the haproxy and nginx renders pass
//! their own config checkers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reconfig::resource::{self, LoadOptions, Resource};
use reconfig::template::Context;

type DataMap = BTreeMap<String, String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_examples() -> Vec<Resource> {
    let opts = LoadOptions {
        confdir: root().join("conf-example/conf.d"),
        confdir_flag: "--confdir",
        templatedir: root().join("templates-example"),
        prefix: String::new(),
        default_wait: None,
    };
    let loaded = resource::load(&opts).expect("conf-example/conf.d is readable");
    assert!(
        loaded.problems.is_empty(),
        "example problems: {:?}",
        loaded.problems
    );
    loaded.resources
}

/// conf-example/seed.txt: one `KEY VALUE` per line, the value is the rest of the line.
fn seed() -> DataMap {
    let text = std::fs::read_to_string(root().join("conf-example/seed.txt")).unwrap();
    text.lines()
        .map(|line| {
            let (key, value) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("seed line without a value: {line:?}"));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// The leaves etcd would return for `key`: the key itself, and with `recursive` every key below.
fn leaves(seed: &DataMap, key: &str, recursive: bool) -> DataMap {
    let below = format!("{}/", key.trim_end_matches('/'));
    seed.iter()
        .filter(|(k, _)| *k == key || (recursive && k.starts_with(&below)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn render_with(resource: &Resource, data: DataMap, seed: &DataMap) -> String {
    let data = Arc::new(data);
    let altdata: BTreeMap<String, Arc<DataMap>> = resource
        .altkeys
        .iter()
        .map(|(alias, key)| (alias.clone(), Arc::new(leaves(seed, key, true))))
        .collect();
    let ctx = Context {
        data: &data,
        altdata: &altdata,
        watched: &resource.key,
    };
    resource
        .template
        .render(&ctx)
        .unwrap_or_else(|err| panic!("{}: {err}", resource.id))
}

fn render(resource: &Resource, seed: &DataMap) -> String {
    render_with(
        resource,
        leaves(seed, &resource.key, resource.recursive),
        seed,
    )
}

fn find<'a>(resources: &'a [Resource], id: &str) -> &'a Resource {
    resources
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no example resource {id}"))
}

#[test]
fn all_examples_load_with_targets_under_tmp() {
    let resources = load_examples();
    let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "haproxy",
            "nginx",
            "test1",
            "test2",
            "test3_altpattern",
            "test4_altkey"
        ]
    );
    for r in &resources {
        assert!(r.target.starts_with("/tmp/reconfig-example/"), "{}", r.id);
        assert!(r.mkdirs, "{} should create its target directory", r.id);
    }
}

#[test]
fn test1_recursive_tree() {
    let resources = load_examples();
    let out = render(find(&resources, "test1"), &seed());
    assert_eq!(
        out,
        "KEY /test1/123 has VALUE hello\n\
         KEY /test1/456 has VALUE helloworld\n\
         KEY /test1/999 has VALUE helloworld\n\
         KEY /test1/sub/abc has VALUE nested value\n"
    );
}

#[test]
fn test2_single_leaf() {
    let resources = load_examples();
    let out = render(find(&resources, "test2"), &seed());
    assert_eq!(
        out,
        "The key /test2 has the value \"hello\".\nOptional: not set\n"
    );
}

#[test]
fn test3_alternate_pattern_and_its_commands() {
    let resources = load_examples();
    let test3 = find(&resources, "test3_altpattern");
    let out = render(test3, &seed());
    assert_eq!(
        out,
        "Using alternate pattern, Key /test3/alpha => 10.0.0.1\n\
         Using alternate pattern, Key /test3/beta => 10.0.0.2\n\
         Literal text passes through: {{ not_a_tag }} <%= not_a_tag %>\n"
    );
    let staged = Staged::new("test3.conf", &out);
    assert!(run_check(test3, &staged.path).status.success());
    let reload = Command::new("sh")
        .arg("-c")
        .arg(test3.reloadcmd.as_deref().unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&reload.stdout), "reloaded test3\n");
    // The check is real: an empty render is refused.
    let empty = Staged::new("test3-empty.conf", "");
    assert!(!run_check(test3, &empty.path).status.success());
}

#[test]
fn test4_altkeys() {
    let resources = load_examples();
    let out = render(find(&resources, "test4_altkey"), &seed());
    let expected = r#"This config uses 'altkeys' too. Using altkeys param, you can pull in values from other etcd keys into your config as well.
(The keys in altkeys are not watched for changes but rather fetched as-is whenever the main key changes)

The main key we watched for was "/test4".

Data based on main key (This key was being watched for changes):
KEY=/test4 VAL=watched leaf

Data based on altkeys section (These are not watched but instead fetched from etcd whenever main key changes)
Altkey=akey1 - This points to a hash:
{
  "/altkey1/host": "db.example.com",
  "/altkey1/port": "5432"
}

Altkey=akey2 - This points to a hash:
{
  "/altkey2": "plain alt value"
}

"#;
    assert_eq!(out, expected);
}

#[test]
fn haproxy_render_passes_haproxy_check() {
    require_binary("haproxy", "-v");
    let resources = load_examples();
    let haproxy = find(&resources, "haproxy");
    let seed = seed();
    let out = render(haproxy, &seed);
    for (name, port) in [("web1", 8081), ("web2", 8082), ("web3", 8083)] {
        let line = format!("    server {name} 127.0.0.1:{port} check\n");
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    let staged = Staged::new("haproxy.cfg", &out);
    assert_checker_accepts(
        Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&staged.path),
        &out,
    );
    assert_checker_accepts(&mut shell_check(haproxy, &staged.path), &out);

    // The check catches a bad value, so a broken render would never be installed.
    let mut bad = leaves(&seed, &haproxy.key, true);
    bad.insert(
        "/example/haproxy/backends/web9".into(),
        "no-port-here:x".into(),
    );
    let bad_staged = Staged::new("haproxy-bad.cfg", &render_with(haproxy, bad, &seed));
    assert!(!run_check(haproxy, &bad_staged.path).status.success());
}

#[test]
fn nginx_render_passes_nginx_check() {
    require_binary("nginx", "-v");
    let resources = load_examples();
    let nginx = find(&resources, "nginx");
    let out = render(nginx, &seed());
    assert!(
        out.contains("        server 127.0.0.1:9001;  # app1\n"),
        "{out}"
    );
    assert!(
        out.contains("        server 127.0.0.1:9002;  # app2\n"),
        "{out}"
    );
    // The config keeps pid, logs and temp files in the target's directory, which reconfig
    // creates (mkdirs) before the check.
    std::fs::create_dir_all(nginx.target.parent().unwrap()).unwrap();
    let staged = Staged::new("nginx.conf", &out);
    assert_checker_accepts(
        Command::new("nginx").arg("-t").arg("-c").arg(&staged.path),
        &out,
    );
    assert_checker_accepts(&mut shell_check(nginx, &staged.path), &out);

    // An upstream without servers is refused by the check.
    let empty = Staged::new(
        "nginx-empty.conf",
        &render_with(nginx, DataMap::new(), &seed()),
    );
    assert!(!run_check(nginx, &empty.path).status.success());
}

/// Fails (never skips) when a checker binary is missing: these tests are the proof that the
/// shipped examples produce configs the real daemons accept.
fn require_binary(name: &str, version_flag: &str) {
    if let Err(err) = Command::new(name).arg(version_flag).output() {
        panic!(
            "cannot run {name} ({err}): install haproxy and nginx-light \
             (apt-get install haproxy nginx-light) to validate the example renders"
        );
    }
}

/// The resource's checkcmd as reconfig runs it: through `sh -c`, `{{src}}` = the staged file.
fn shell_check(resource: &Resource, staged: &Path) -> Command {
    let checkcmd = resource
        .checkcmd
        .as_deref()
        .expect("example has a checkcmd");
    let quoted = format!("'{}'", staged.display());
    let mut command = Command::new("sh");
    command.arg("-c").arg(checkcmd.replace("{{src}}", &quoted));
    command
}

fn run_check(resource: &Resource, staged: &Path) -> std::process::Output {
    shell_check(resource, staged).output().unwrap()
}

fn assert_checker_accepts(command: &mut Command, rendered: &str) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} rejected the render:\n{}{}\n--- render ---\n{rendered}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A rendered file staged in a private temp directory, removed on drop.
struct Staged {
    dir: PathBuf,
    path: PathBuf,
}

static STAGED_COUNT: AtomicUsize = AtomicUsize::new(0);

impl Staged {
    fn new(name: &str, text: &str) -> Staged {
        let dir = std::env::temp_dir().join(format!(
            "reconfig-examples-test-{}-{}",
            std::process::id(),
            STAGED_COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Staged { dir, path }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
