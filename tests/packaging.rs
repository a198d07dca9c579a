//! What the packages ship beside the binaries (issue 14): `--version`, the man pages and
//! shell completions generated from the flag table, and the README's flag tables.

mod support;

use std::process::Output;
use std::time::Duration;
use support::{free_port, run_bin, stdout};

const RECONFIG: &str = env!("CARGO_BIN_EXE_reconfig");
const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");

fn run(bin: &str, args: &[&str]) -> Output {
    run_bin(bin, args, Duration::from_secs(20))
}

/// The commit HEAD is at, as `--version` abbreviates it; `None` outside a git checkout.
fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The four lines both tools print first: version, commit, target, build date.
fn assert_version_lines(tool: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");
    assert_eq!(lines[0], format!("{tool} {}", env!("CARGO_PKG_VERSION")));
    let commit = lines[1].strip_prefix("commit: ").expect(text);
    match git_head() {
        Some(head) => assert_eq!(commit, head, "{text}"),
        None => assert_eq!(commit, "unknown", "{text}"),
    }
    let target = lines[2].strip_prefix("target: ").expect(text);
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains("-linux-"),
        "{text}"
    );
    let date = lines[3].strip_prefix("built: ").expect(text);
    let digits: Vec<&str> = date.split('-').collect();
    assert!(
        digits.len() == 3 && digits[0].len() == 4 && date.len() == 10,
        "built: {date:?} is not YYYY-MM-DD"
    );
}

#[test]
fn version_names_commit_target_and_build_date() {
    let out = run(RECONFIG, &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_version_lines("reconfig", &stdout(&out));
    assert_eq!(stdout(&out).lines().count(), 4);

    // etcd-util prints the same, then asks the cluster (none here: exit 3).
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = run(ETCD_UTIL, &["--version", "--endpoints", &nobody]);
    assert_eq!(out.status.code(), Some(3));
    assert_version_lines("etcd-util", &stdout(&out));
}

/// `reconfig --generate NAME`: a man page or completion, as the packages ship it.
fn generated(name: &str) -> String {
    let out = run(RECONFIG, &["--generate", name]);
    assert_eq!(out.status.code(), Some(0), "--generate {name}");
    stdout(&out)
}

/// The flags `--help` prints, by group ("" for the command's own, "Connection"): the
/// spellings at the start of each flag line, and those named "(also --x)".
fn help_flags(bin: &str) -> Vec<(String, String)> {
    let out = run(bin, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let mut group = String::new();
    let mut flags = Vec::new();
    for line in stdout(&out).lines() {
        if let Some(title) = line.strip_suffix(':').filter(|t| !t.starts_with(' ')) {
            group = title.to_string();
            continue;
        }
        let trimmed = line.trim_start();
        let flag_group = group.is_empty() || group == "Connection";
        if !flag_group || !trimmed.starts_with('-') || line.len() == trimmed.len() {
            continue;
        }
        for word in trimmed.split_whitespace() {
            let word = word.trim_end_matches(',');
            if !word.starts_with('-') {
                break;
            }
            flags.push((group.clone(), word.to_string()));
        }
    }
    let text = stdout(&out);
    for also in text.split("(also ").skip(1) {
        let names = also.split(')').next().unwrap_or("");
        for name in names.split(", ") {
            flags.push(("also".to_string(), name.trim().to_string()));
        }
    }
    assert!(flags.len() > 10, "no flags found in {bin} --help:\n{text}");
    flags
}

/// Whether `flag` occurs in `text` as a whole word (not as the start of a longer flag).
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + flag.len()..].chars().next();
        let part_of_name =
            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
        !part_of_name(before) && !part_of_name(after)
    })
}

/// The man page's source with roff's escapes and fonts taken out.
fn man_text(page: &str) -> String {
    generated(page)
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
}

#[test]
fn every_flag_in_help_is_in_the_man_page() {
    for (bin, page) in [(RECONFIG, "reconfig.1"), (ETCD_UTIL, "etcd-util.1")] {
        let man = man_text(page);
        for (_, flag) in help_flags(bin) {
            assert!(
                mentions(&man, &flag),
                "{page} lacks {flag}, which --help lists"
            );
        }
    }
}

/// The table rows (lines starting with `|`) between a heading and the next one of its level.
fn readme_table(readme: &str, heading: &str) -> String {
    let level = heading.split(' ').next().unwrap_or("#");
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let body = &readme[start + heading.len() + 2..];
    let end = body.find(&format!("\n{level} ")).unwrap_or(body.len());
    body[..end]
        .lines()
        .filter(|line| line.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_flag_in_help_is_in_a_readme_flag_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let connection = readme_table(&readme, "### Connection flags (both tools)");
    for (bin, section) in [(RECONFIG, "## reconfig"), (ETCD_UTIL, "## etcd-util")] {
        let own = readme_table(&readme, section);
        for (group, flag) in help_flags(bin) {
            let (table, name) = match group.as_str() {
                "" => (&own, section),
                "Connection" => (&connection, "### Connection flags"),
                _ => continue, // another spelling: README says once that both work
            };
            assert!(
                mentions(table, &flag),
                "README.md's table under {name:?} lacks {flag}, which {bin} --help lists"
            );
        }
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = tempfile::tempdir().expect("temp dir");
    for page in ["reconfig.1", "etcd-util.1", "reconfig.d.5"] {
        let path = dir.path().join(page);
        std::fs::write(&path, generated(page)).expect("write page");
        let path = path.to_str().expect("utf-8 path");
        let groff = tool("groff", &["-ww", "-man", "-Tutf8", path], "groff-base");
        assert!(
            groff.status.success() && groff.stderr.is_empty(),
            "groff {page}: {}",
            support::stderr(&groff)
        );
        assert!(groff.stdout.len() > 1000, "groff {page}: too short");
        let lint = tool("mandoc", &["-T", "lint", "-W", "all", path], "mandoc");
        let said = format!("{}{}", stdout(&lint), support::stderr(&lint));
        assert!(
            lint.status.success() && said.is_empty(),
            "mandoc -T lint {page}:\n{said}"
        );
    }
}

/// Runs a tool the packaging tests need; `make deps` installs it (Debian `package`).
fn tool(name: &str, args: &[&str], package: &str) -> Output {
    std::process::Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {name} ({e}): install Debian's {package} (make deps does)")
        })
}

#[test]
fn every_flag_of_the_table_is_one_the_parser_takes() {
    use reconfig::cli::{etcd_util, reconfig as daemon, CliError};
    type Parse = fn(Vec<std::ffi::OsString>) -> Option<CliError>;
    let commands: [(&reconfig::cli::flags::Command, Parse); 2] = [
        (&daemon::COMMAND, |args| daemon::parse(args).err()),
        (&etcd_util::COMMAND, |args| etcd_util::parse(args).err()),
    ];
    for (command, parse) in commands {
        for flag in command.flags() {
            for spelling in flag.spellings() {
                let args = vec![spelling.clone().into(), "/x".into()];
                if let Some(error) = parse(args) {
                    assert!(
                        !error.message.contains("invalid option"),
                        "{}: {spelling} is in the flag table but not parsed: {}",
                        command.name,
                        error.message
                    );
                }
            }
        }
    }
}

#[test]
fn reconfig_d_describes_every_conf_d_field() {
    // reconfig names every field it knows when it warns about an unknown one.
    let dir = tempfile::tempdir().expect("temp dir");
    let confdir = dir.path().join("conf.d");
    std::fs::create_dir(&confdir).expect("conf.d");
    std::fs::write(
        confdir.join("a.json"),
        r#"{"key": "/a", "source": "a.tmpl", "target": "/tmp/x", "no_such_field": 1}"#,
    )
    .expect("resource");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let confdir = confdir.to_str().expect("utf-8 path");
    // Its own state dir: the default, /var/lib/reconfig, is the machine's.
    let state_dir = dir.path().join("state");
    let out = run(
        RECONFIG,
        &[
            "--onetime",
            "--confdir",
            confdir,
            "--templatedir",
            confdir,
            "--state-dir",
            state_dir.to_str().expect("utf-8 path"),
            "--endpoints",
            &nobody,
        ],
    );
    let log = support::stderr(&out);
    let known = log
        .split("known fields: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no list of known fields in:\n{log}"));
    let page = generated("reconfig.d.5");
    let terms: Vec<&str> = page
        .lines()
        .filter_map(|line| line.strip_prefix(".B "))
        .flat_map(|term| term.split(", "))
        .collect();
    for field in known.split(", ") {
        assert!(
            terms.contains(&field.replace('-', "\\-").as_str()),
            "reconfig.d(5) does not describe the field {field:?}; it has {terms:?}"
        );
    }
}

/// A directory with the generated completion scripts, and a tree to complete names in.
struct Completions {
    dir: tempfile::TempDir,
}

impl Completions {
    fn new() -> Completions {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["reconfig.bash", "etcd-util.bash", "_reconfig", "_etcd-util"] {
            std::fs::write(dir.path().join(name), generated(name)).expect("write script");
        }
        for sub in ["tree/conf.d", "tree/certs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
        }
        std::fs::write(dir.path().join("tree/ca.pem"), "").expect("file");
        std::fs::write(dir.path().join("tree/ca key.pem"), "").expect("file");
        Completions { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("utf-8")
            .to_string()
    }

    /// What bash's completion of `words` (the last one being completed) offers, sorted.
    fn bash(&self, words: &[&str]) -> Vec<String> {
        let script = format!(
            "source {reconfig}; source {util}\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}\n\
             $(complete -p {command} | sed 's/.*-F \\([^ ]*\\) .*/\\1/')\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            reconfig = self.path("reconfig.bash"),
            util = self.path("etcd-util.bash"),
            words = words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            command = words[0],
        );
        let out = tool("bash", &["--norc", "--noprofile", "-c", &script], "bash");
        assert!(out.status.success(), "bash: {}", support::stderr(&out));
        let mut offered: Vec<String> = stdout(&out).lines().map(String::from).collect();
        offered.retain(|line| !line.is_empty());
        offered.sort();
        offered
    }
}

#[test]
fn bash_completes_flags_files_dirs_and_words() {
    let completions = Completions::new();
    let registered = tool(
        "bash",
        &[
            "--norc",
            "-c",
            &format!(
                "source {}; source {}; complete -p reconfig etcd-util",
                completions.path("reconfig.bash"),
                completions.path("etcd-util.bash")
            ),
        ],
        "bash",
    );
    assert_eq!(
        stdout(&registered),
        "complete -F _reconfig reconfig\ncomplete -F _etcd_util etcd-util\n"
    );

    assert_eq!(completions.bash(&["reconfig", "--cf"]), ["--cfgdir"]);
    assert_eq!(
        completions.bash(&["reconfig", "--ssl_c"]),
        ["--ssl_cafile", "--ssl_cert"]
    );
    assert_eq!(completions.bash(&["etcd-util", "--dry"]), ["--dry-run"]);
    let tree = completions.path("tree");
    // A directory flag offers directories only; a file flag offers files (and directories
    // to descend into), names with spaces kept whole.
    assert_eq!(
        completions.bash(&["reconfig", "--cfgdir", &format!("{tree}/c")]),
        [format!("{tree}/certs"), format!("{tree}/conf.d")]
    );
    assert_eq!(
        completions.bash(&["etcd-util", "--ssl-cafile", &format!("{tree}/ca")]),
        [format!("{tree}/ca key.pem"), format!("{tree}/ca.pem")]
    );
    assert_eq!(
        completions.bash(&["reconfig", "--api", ""]),
        ["auto", "v2", "v3"]
    );
    assert_eq!(completions.bash(&["etcd-util", "-o", "W"]), ["WATCH"]);
    // A free-text value (a key) gets no guesses.
    assert!(completions.bash(&["etcd-util", "-k", ""]).is_empty());
}

#[test]
fn zsh_loads_the_completion_functions() {
    let completions = Completions::new();
    for name in ["_reconfig", "_etcd-util"] {
        let syntax = tool("zsh", &["-n", &completions.path(name)], "zsh");
        assert!(
            syntax.status.success(),
            "zsh -n {name}: {}",
            support::stderr(&syntax)
        );
    }
    let script = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}; \
         print -r -- $_comps[reconfig] $_comps[etcd-util]",
        completions.path(""),
        completions.path("zcompdump")
    );
    let out = tool("zsh", &["-f", "-c", &script], "zsh");
    assert_eq!(
        stdout(&out),
        "_reconfig _etcd-util\n",
        "{}",
        support::stderr(&out)
    );
}

/// `make TARGET VAR=value...` in the source tree.
fn make(args: &[&str]) -> Output {
    let out = std::process::Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make {args:?}: {}{}",
        stdout(&out),
        support::stderr(&out)
    );
    out
}

/// Every file below `root`, as paths relative to it, sorted.
fn files_below(root: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let relative = path.strip_prefix(root).expect("below root");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn make_install_and_uninstall_with_destdir() {
    let dest = tempfile::tempdir().expect("temp dir");
    let bin_dir = std::path::Path::new(RECONFIG).parent().expect("bin dir");
    let vars = [
        format!("DESTDIR={}", dest.path().display()),
        "PREFIX=/opt/rc".to_string(),
        format!("BIN_DIR={}", bin_dir.display()),
    ];
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    // Something of the host's that uninstall must leave alone.
    std::fs::create_dir_all(dest.path().join("opt/rc/bin")).expect("bin");
    std::fs::write(dest.path().join("opt/rc/bin/other-tool"), "keep").expect("other");

    make(&[&["install"], vars.as_slice()].concat());
    let installed = files_below(dest.path());
    for expected in [
        "opt/rc/bin/reconfig",
        "opt/rc/bin/etcd-util",
        "opt/rc/share/man/man1/reconfig.1",
        "opt/rc/share/man/man1/etcd-util.1",
        "opt/rc/share/man/man5/reconfig.d.5",
        "opt/rc/share/bash-completion/completions/reconfig",
        "opt/rc/share/bash-completion/completions/etcd-util",
        "opt/rc/share/zsh/site-functions/_reconfig",
        "opt/rc/share/zsh/site-functions/_etcd-util",
        "opt/rc/share/doc/reconfig/README.md",
        "opt/rc/share/doc/reconfig/examples/conf.d/haproxy.json",
        "opt/rc/share/doc/reconfig/examples/templates/haproxy.cfg.tmpl",
        "opt/rc/share/doc/reconfig/contrib/systemd/reconfig.service",
    ] {
        assert!(
            installed.iter().any(|f| f == expected),
            "{expected} not installed: {installed:?}"
        );
    }
    assert!(
        installed.iter().all(|f| f.starts_with("opt/rc/")),
        "installed outside PREFIX: {installed:?}"
    );
    let run_script = dest
        .path()
        .join("opt/rc/share/doc/reconfig/contrib/runit/reconfig/run");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&run_script)
            .expect("runit run")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o755, "the runit script stays executable");
    let version = run(
        dest.path()
            .join("opt/rc/bin/reconfig")
            .to_str()
            .expect("utf-8"),
        &["--version"],
    );
    assert_version_lines("reconfig", &stdout(&version));
    let man = std::fs::read_to_string(dest.path().join("opt/rc/share/man/man1/reconfig.1"))
        .expect("man page");
    assert_eq!(man, generated("reconfig.1"));

    make(&[&["uninstall"], vars.as_slice()].concat());
    assert_eq!(files_below(dest.path()), ["opt/rc/bin/other-tool"]);
    assert!(!dest.path().join("opt/rc/share/doc/reconfig").exists());
}
