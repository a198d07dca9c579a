//! `reconfig --check`: the report of [`crate::validate`] on stdout, one line per resource
//! file, and the exit code CI acts on.

use super::exit::reconfig as exit;
use crate::etcd::Client;
use crate::resource::{self, LoadOptions};
use crate::validate;

/// Loads and renders every resource; prints `ok` or `error` per file; returns the exit code:
/// [`exit::CHECK_INVALID`] when a resource file or template is invalid, else
/// [`exit::CHECK_RENDER_FAILED`] when a resource does not render against the live data,
/// else [`exit::UNAVAILABLE`] when etcd could not be read, else [`exit::OK`].
pub fn run(
    options: &LoadOptions,
    client: &Client,
    describe_etcd: fn(&crate::etcd::Error) -> String,
) -> i32 {
    let loaded = match resource::load(options) {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("error  {e}");
            return exit::CHECK_INVALID;
        }
    };
    for problem in &loaded.problems {
        println!("error  {problem}");
    }
    if loaded.problems.is_empty() && loaded.resources.is_empty() {
        println!(
            "error  {}: no resource file (*.json) to check",
            options.confdir.display()
        );
        return exit::CHECK_INVALID;
    }
    let mut render_failed = 0;
    let mut unreachable = 0;
    for resource in &loaded.resources {
        let file = resource.file.display();
        match validate::render(resource, client) {
            Ok(rendered) => println!(
                "ok     {file}: \"{}\" renders {} bytes for {} from {} at index {}",
                resource.id(),
                rendered.bytes,
                resource.target().display(),
                resource.keys.join(", "),
                rendered.index
            ),
            Err(validate::RenderProblem::Etcd(e)) => {
                let unavailable = e.is_unreachable();
                println!(
                    "error  {file}: \"{}\": etcd: {}",
                    resource.id(),
                    describe_etcd(&e)
                );
                if unavailable {
                    unreachable += 1;
                } else {
                    render_failed += 1;
                }
            }
            Err(problem) => {
                println!("error  {file}: \"{}\": {problem}", resource.id());
                render_failed += 1;
            }
        }
    }
    let files = loaded.problems.len() + loaded.resources.len();
    let valid = loaded.resources.len() - render_failed - unreachable;
    println!(
        "{valid} of {files} resource file(s) valid; nothing was written and no command was run"
    );
    if !loaded.problems.is_empty() {
        exit::CHECK_INVALID
    } else if render_failed > 0 {
        exit::CHECK_RENDER_FAILED
    } else if unreachable > 0 {
        exit::UNAVAILABLE
    } else {
        exit::OK
    }
}
