//! conf.d parsing: the input (split at the first NUL into two files, to reach the
//! duplicate-target check) is written as conf.d JSON files and loaded with
//! `reconfig::resource::load`. Any panic is a finding; rejected files must come back as
//! problems that name the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::resource::{load, LoadOptions};
use std::path::PathBuf;
use std::sync::OnceLock;

/// A private cfgdir with two templates: `$RECONFIG_FUZZ_SCRATCH` (scripts/fuzz.sh puts it
/// on /dev/shm for speed and removes it afterwards), else a directory in the temp dir.
fn cfgdir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("RECONFIG_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("reconfig-fuzz-confd-{}", std::process::id()))
            });
        std::fs::create_dir_all(dir.join("conf.d")).expect("conf.d");
        std::fs::create_dir_all(dir.join("templates")).expect("templates");
        std::fs::write(
            dir.join("templates/t.tmpl"),
            "{% for k, v in reconfig.data|items %}{{ k }}={{ v }}\n{% endfor %}",
        )
        .expect("template");
        std::fs::write(dir.join("templates/p.tmpl"), "<%= reconfig.watched %>\n")
            .expect("template");
        dir
    })
}

fuzz_target!(|input: &[u8]| {
    let dir = cfgdir();
    let confd = dir.join("conf.d");
    let (first, second) = match input.iter().position(|&b| b == 0) {
        Some(at) => (&input[..at], Some(&input[at + 1..])),
        None => (input, None),
    };
    std::fs::write(confd.join("a.json"), first).expect("write a.json");
    let second_path = confd.join("b.json");
    match second {
        Some(bytes) => std::fs::write(&second_path, bytes).expect("write b.json"),
        None => {
            let _ = std::fs::remove_file(&second_path);
        }
    }
    let options = LoadOptions {
        confdir: confd.clone(),
        confdir_flag: "--confdir",
        templatedir: dir.join("templates"),
        prefix: String::new(),
        default_wait: None,
    };
    let loaded = load(&options).expect("conf.d itself is readable");
    let files = if second.is_some() { 2 } else { 1 };
    assert_eq!(loaded.resources.len() + loaded.problems.len(), files);
    for problem in &loaded.problems {
        assert!(!problem.message.is_empty());
        assert!(problem.to_string().contains(".json"), "{problem}");
    }
    for resource in &loaded.resources {
        assert!(resource.key.starts_with('/'), "{}", resource.key);
        assert!(resource.target.is_absolute());
    }
});
