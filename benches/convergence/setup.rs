//! The data in etcd and the reconfig config dirs the scenarios run against.

use crate::scenarios::Layout;
use crate::support::daemon::Setup;
use crate::support::Etcd;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Leaves per tree in the change, idle and burst scenarios.
pub const TREE_LEAVES: usize = 1000;
/// Resources in the "many" variants.
pub const MANY: usize = 100;
/// Resources in the largest layout, spread over [`BIG_KEYS`] keys.
pub const BIG: usize = 1000;
pub const BIG_KEYS: usize = 10;
/// Daemons in the fleet, and leaves in the tree they all watch.
pub const FLEET: usize = 100;

/// The tree the single resource, the burst and the "same tree" variant watch.
pub fn shared_tree() -> String {
    "/bench/svc".to_string()
}

/// The tree of resource `t` in the "own trees" variant.
pub fn own_tree(t: usize) -> String {
    format!("/bench/tree{t:03}/svc")
}

/// The tree every daemon of the fleet watches.
pub fn fleet_tree() -> String {
    "/bench/fleet/svc".to_string()
}

/// The tree the onetime scenario reads for `n` keys.
pub fn onetime_tree(n: usize) -> String {
    if n == TREE_LEAVES {
        shared_tree()
    } else {
        format!("/bench/n{n}/svc")
    }
}

pub fn leaf(tree: &str, i: usize) -> String {
    format!("{tree}/{i:05}")
}

/// A value no earlier update of this run has written: an update that rewrites a leaf's
/// current value renders identical text, which reconfig rightly does not install.
pub fn fresh_value() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.{}.{}.{}:80", 100 + n / 65536, n / 256 % 256, n % 256)
}

pub fn address(i: usize) -> String {
    format!("10.0.{}.{}:80", i / 256 % 256, i % 256)
}

/// The line the templates render for one leaf (an haproxy backend server).
pub fn rendered_line(key: &str, value: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    format!("server {name} {value} check\n")
}

/// The trees the scenarios run on both APIs read: the shared tree and the fleet's.
pub fn compared_trees() -> Vec<(String, usize)> {
    vec![(shared_tree(), TREE_LEAVES), (fleet_tree(), FLEET)]
}

/// The trees of the v3 run: the compared ones, and the own trees when the scenario of 100
/// resources on their own trees runs (the one where one shared stream replaces 100).
pub fn compared_trees_v3(layouts: &[Layout]) -> Vec<(String, usize)> {
    let mut trees = compared_trees();
    if layouts.contains(&Layout::ManyOwnTrees) {
        trees.extend(own_trees());
    }
    trees
}

/// Every tree of the v2 run: the compared ones, the own trees (whose first [`BIG_KEYS`]
/// also carry the 1 000 resources) and the onetime ones.
pub fn all_trees(onetime_sizes: &[usize]) -> Vec<(String, usize)> {
    let mut trees = compared_trees();
    trees.extend(own_trees());
    trees.extend(onetime_trees(onetime_sizes));
    trees
}

/// The "own trees" variant's trees, one per resource.
fn own_trees() -> impl Iterator<Item = (String, usize)> {
    (0..MANY).map(|t| (own_tree(t), TREE_LEAVES))
}

/// The onetime scenario's trees of these sizes, but the shared tree (seeded already).
pub fn onetime_trees(sizes: &[usize]) -> Vec<(String, usize)> {
    sizes
        .iter()
        .filter(|&&n| n != TREE_LEAVES)
        .map(|&n| (onetime_tree(n), n))
        .collect()
}

/// Writes `trees` through the API under test, with parallel PUTs (etcd batches concurrent
/// writes into one fsync). Returns the number of keys written.
pub fn seed(etcd: &Etcd, trees: &[(String, usize)]) -> usize {
    let keys: Vec<(String, String)> = trees
        .iter()
        .flat_map(|(tree, n)| (0..*n).map(move |i| (leaf(tree, i), address(i))))
        .collect();
    let workers = 16;
    let client = etcd.kv();
    std::thread::scope(|scope| {
        for w in 0..workers {
            let client = client.clone();
            let keys = &keys;
            scope.spawn(move || {
                for (key, value) in keys.iter().skip(w).step_by(workers) {
                    client
                        .put(key, value, None)
                        .unwrap_or_else(|e| panic!("seeding {key}: {e}"));
                }
            });
        }
    });
    keys.len()
}

/// One resource to write into a config dir.
pub struct Spec {
    pub name: String,
    pub key: String,
    pub wait: Option<&'static str>,
    pub reloadcmd: Option<String>,
}

/// What every bench resource runs after an install: a real resource always reloads its
/// service, and that fork competes with the renders still to come. Beside the target, so the
/// setup's temp dir holds it.
pub const RELOADCMD: &str = "echo reload >> {{target}}.reloads";

impl Spec {
    /// A resource on `key` with no quiescence and the [`RELOADCMD`] every real one has.
    pub fn reloading(name: String, key: String) -> Spec {
        Spec {
            name,
            key,
            wait: None,
            reloadcmd: Some(RELOADCMD.to_string()),
        }
    }
}

/// A config dir where each resource has its own template and renders into
/// `out/<name>.conf`. The templates differ in their first line, so no two resources render
/// the same text: each render is real work, as with different services' configs.
pub fn config(specs: &[Spec]) -> Setup {
    let setup = Setup::new();
    write_resources(&setup, specs, &setup.out(""));
    setup
}

/// [`config`] rendering into `out_dir/<name>.conf` instead: the fleet's hosts, each with its
/// own config dir, write into one directory the bench watches.
pub fn config_into(specs: &[Spec], out_dir: &Path) -> Setup {
    let setup = Setup::new();
    write_resources(&setup, specs, out_dir);
    setup
}

fn write_resources(setup: &Setup, specs: &[Spec], out_dir: &Path) {
    for spec in specs {
        let template = format!("{}.tmpl", spec.name);
        setup.template(
            &template,
            &format!(
                "# {} generated by reconfig\n{{% for k, v in data|items %}}server {{{{ k|basename }}}} {{{{ v }}}} check\n{{% endfor %}}",
                spec.name
            ),
        );
        let mut resource = json!({
            "id": spec.name,
            "key": spec.key,
            "recursive": true,
            "source": template,
            "target": out_dir.join(format!("{}.conf", spec.name)),
        });
        if let Some(wait) = spec.wait {
            resource["wait"] = json!(wait);
        }
        if let Some(reload) = &spec.reloadcmd {
            resource["reloadcmd"] = json!(reload);
        }
        setup.resource(&spec.name, resource);
    }
}

pub fn target(setup: &Setup, name: &str) -> PathBuf {
    setup.out(&format!("{name}.conf"))
}

pub fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:03}")).collect()
}
