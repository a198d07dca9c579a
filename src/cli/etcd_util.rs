//! `etcd-util`: get, set, delete and watch etcd keys from the shell (etcd-util.rb's flags).

use super::connection::{self, ConnectionArgs};
use super::exit::etcd_util as exit;
use super::flags::{self, Command, Flag, Group, Note};
use super::{value, CliError};
use crate::etcd::migrate::{self, Action, MigrateError, Report};
use crate::etcd::{Api, Child, Client, Error, ErrorKind, Event, Found, Op};
use serde_json::{json, Map, Value};

/// etcd-util's command line, as `--help`, `etcd-util(1)` and the completions show it (see
/// `flags`).
pub const COMMAND: Command = Command {
    name: "etcd-util",
    summary: "get, set, delete and watch etcd keys; copy v2 data into v3",
    usage: &[
        "etcd-util -k KEY [-o GET|SET|DEL|WATCH] [-v VALUE] [-t TTL] [-r] [connection flags]",
        "etcd-util -o MIGRATE [-k KEY] [--dry-run] [--overwrite] [connection flags]",
    ],
    about: "Get, set, delete or watch keys in etcd (v2 or v3 API, see --api), or copy v2 \
            data into v3.",
    groups: &[
        Group {
            title: "",
            flags: &[
                Flag::long(
                    "operation",
                    flags::Value::OneOf("OP", &["GET", "SET", "DEL", "WATCH", "MIGRATE"]),
                    "GET (default), SET, DEL, WATCH or MIGRATE; any letter case. GET of a \
                     directory lists its children as JSON; the names of directories end in '/'",
                )
                .short('o'),
                Flag::long(
                    "key",
                    flags::Value::Text("KEY"),
                    "the key, starting with '/'; required, except for MIGRATE [default: /]",
                )
                .short('k'),
                Flag::long(
                    "value",
                    flags::Value::Text("VALUE"),
                    "the value to SET; required with SET",
                )
                .short('v'),
                Flag::long(
                    "ttl",
                    flags::Value::Text("SECS"),
                    "SET only: the key expires after SECS seconds",
                )
                .short('t'),
                Flag::long(
                    "recursive",
                    flags::Value::None,
                    "GET: every leaf under the key as one JSON object;\n\
                     DEL: a directory and everything under it;\n\
                     WATCH: changes anywhere under the key",
                )
                .short('r'),
                Flag::long(
                    "dry-run",
                    flags::Value::None,
                    "MIGRATE: print what would be copied, write nothing",
                ),
                Flag::long(
                    "overwrite",
                    flags::Value::None,
                    "MIGRATE: replace a v3 value that differs from v2's (without it, such a \
                     key is a conflict: left as it is)",
                ),
                Flag::long("debug", flags::Value::None, "log requests on stderr").short('d'),
                Flag::long(
                    "version",
                    flags::Value::None,
                    "print this tool's version and the cluster's version, members and leader",
                ),
                Flag::long("help", flags::Value::None, "this help").short('h'),
            ],
        },
        connection::GROUP,
    ],
    notes: &[Note {
        man_section: "MIGRATE",
        text: "MIGRATE copies every key at or under KEY from the v2 API into v3 under the \
               same name, values unchanged, on one cluster serving both (etcd 3.4/3.5 with \
               --enable-v2=true; it speaks both APIs, whatever --api says). v2 directories \
               are not copied (v3 has none); a key with a TTL is put under a lease of its \
               remaining TTL (one lease per distinct TTL). Writes go in transactions of at \
               most 128 keys, each put only while the key is still absent from v3, so \
               nothing written to v3 is overwritten unless --overwrite. A key already in v3 \
               with the same value is left alone: a second run copies nothing. Prints one \
               line per key written or in conflict, then the counts. Migrate before \
               upgrading etcd to 3.6, which has no v2.",
    }],
    exit_codes: &[
        (exit::OK, "ok"),
        (exit::FAILED, "etcd refused the operation"),
        (exit::USAGE, "bad command line or flag file"),
        (exit::UNAVAILABLE, "no etcd endpoint answered"),
        (exit::NOT_FOUND, "key not found"),
        (
            exit::CONFLICTS,
            "MIGRATE found keys whose v3 value differs from v2's (conflicts; not \
             overwritten without --overwrite)",
        ),
    ],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    Set,
    Delete,
    Watch,
    Migrate,
}

#[derive(Debug)]
pub struct Args {
    pub operation: Operation,
    pub key: Option<String>,
    pub value: Option<String>,
    pub ttl: Option<u64>,
    pub recursive: bool,
    /// MIGRATE: `--dry-run` and `--overwrite`.
    pub migrate: migrate::Options,
    pub debug: bool,
    pub version: bool,
    pub help: bool,
    pub connection: ConnectionArgs,
}

pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, CliError> {
    use lexopt::Arg::{Long, Short, Value as Positional};
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args {
        operation: Operation::Get,
        key: None,
        value: None,
        ttl: None,
        recursive: false,
        migrate: migrate::Options::default(),
        debug: false,
        version: false,
        help: false,
        connection: ConnectionArgs::default(),
    };
    while let Some(arg) = parser.next()? {
        if let Some(flag) = connection::flag(&arg) {
            out.connection.apply(flag, &mut parser)?;
            continue;
        }
        match arg {
            Short('o') | Long("operation") => {
                let op = value(&mut parser, "--operation")?;
                out.operation = match op.to_ascii_uppercase().as_str() {
                    "GET" => Operation::Get,
                    "SET" | "PUT" => Operation::Set,
                    "DEL" | "DELETE" => Operation::Delete,
                    "WATCH" => Operation::Watch,
                    "MIGRATE" => Operation::Migrate,
                    _ => {
                        return Err(CliError::usage(format!(
                            "--operation: unknown operation {op:?}; use GET, SET, DEL or WATCH \
                             (or MIGRATE to copy v2 data into v3)"
                        )))
                    }
                }
            }
            Short('k') | Long("key") => {
                let key = value(&mut parser, "--key")?;
                set_once(&mut out.key, key, "--key", "etcd-util acts on one key")?;
            }
            Short('v') | Long("value") => {
                let text = value(&mut parser, "--value")?;
                set_once(&mut out.value, text, "--value", "SET writes one value")?;
            }
            Short('t') | Long("ttl") => {
                let text = value(&mut parser, "--ttl")?;
                let ttl = text.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
                    CliError::usage(format!(
                        "--ttl: {text:?} is not a positive whole number of seconds"
                    ))
                })?;
                set_once(&mut out.ttl, ttl, "--ttl", "a key has one time to live")?;
            }
            Short('r') | Long("recursive") => out.recursive = true,
            Long("dry-run") => out.migrate.dry_run = true,
            Long("overwrite") => out.migrate.overwrite = true,
            Short('d') | Long("debug") => out.debug = true,
            Long("version") => out.version = true,
            Short('h') | Long("help") => out.help = true,
            Positional(v) => {
                return Err(CliError::usage(format!(
                    "unexpected argument {:?}; give the key with -k",
                    v.to_string_lossy()
                )))
            }
            other => return Err(other.unexpected().into()),
        }
    }
    if out.help || out.version {
        return Ok(out);
    }
    let migrate_flags = out.migrate.dry_run || out.migrate.overwrite;
    if migrate_flags && out.operation != Operation::Migrate {
        return Err(CliError::usage(
            "--dry-run and --overwrite are only for -o MIGRATE",
        ));
    }
    if out.operation == Operation::Migrate && out.key.is_none() {
        out.key = Some("/".to_string());
    }
    let key = out
        .key
        .as_deref()
        .ok_or_else(|| CliError::usage("--key is required, e.g. etcd-util -k /app/config"))?;
    if !key.starts_with('/') {
        return Err(CliError::usage(format!(
            "--key: {key:?} must start with '/'"
        )));
    }
    match out.operation {
        Operation::Set if out.value.is_none() => {
            return Err(CliError::usage("SET needs a value: -v VALUE"));
        }
        Operation::Set => {}
        _ if out.value.is_some() => {
            return Err(CliError::usage("-v/--value is only for SET"));
        }
        _ if out.ttl.is_some() => {
            return Err(CliError::usage("-t/--ttl is only for SET"));
        }
        _ => {}
    }
    Ok(out)
}

/// Stores a flag's value; a second one is refused instead of silently replacing the first.
fn set_once<T: std::fmt::Debug>(
    slot: &mut Option<T>,
    given: T,
    flag: &str,
    why: &str,
) -> Result<(), CliError> {
    if let Some(first) = slot {
        return Err(CliError::usage(format!(
            "{flag} given twice ({first:?} and {given:?}): {why}; give it once"
        )));
    }
    *slot = Some(given);
    Ok(())
}

/// Runs the tool; returns the exit code after printing results and errors.
pub fn main() -> i32 {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("etcd-util: {e}");
            return e.code;
        }
    };
    if args.help {
        print!("{}", COMMAND.help());
        return exit::OK;
    }
    crate::logging::init(args.debug);
    match run(&args) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("etcd-util: {e}");
            e.code
        }
    }
}

fn run(args: &Args) -> Result<(), CliError> {
    if args.version {
        print!("{}", super::version::describe("etcd-util"));
        return print_cluster(&args.connection.client()?);
    }
    let key = args.key.as_deref().unwrap_or("/");
    // MIGRATE builds its own client, of both APIs.
    let client = || args.connection.client();
    match args.operation {
        Operation::Get => get(&client()?, key, args.recursive),
        Operation::Set => {
            let value = args.value.as_deref().unwrap_or_default();
            client()?
                .put(key, value, args.ttl)
                .map_err(|e| set_error(e, key, args.recursive))?;
            match args.ttl {
                Some(ttl) => eprintln!("set {key} (expires in {ttl}s)"),
                None => eprintln!("set {key}"),
            }
            Ok(())
        }
        Operation::Delete => {
            client()?.delete(key, args.recursive)?;
            eprintln!("deleted {key}");
            Ok(())
        }
        Operation::Watch => watch(&client()?, key, args.recursive),
        Operation::Migrate => migrate_run(args),
    }
}

/// MIGRATE: speaks both APIs (a client built for `auto` holds both), whatever `--api` says.
fn migrate_run(args: &Args) -> Result<(), CliError> {
    let mut connection = args.connection.clone();
    if connection.api.is_some_and(|api| api != Api::Auto) {
        log::debug!("MIGRATE speaks both v2 and v3: --api is not used");
    }
    connection.api = Some(Api::Auto);
    let key = args.key.as_deref().unwrap_or("/");
    let migrator = connection.client()?.migrator()?;
    let report = migrator
        .run(key, args.migrate)
        .map_err(|e| migrate_error(e, key))?;
    print_migration(&report, key, args.migrate.dry_run)
}

fn migrate_error(error: MigrateError, key: &str) -> CliError {
    match error {
        MigrateError::Etcd(e) if e.is_key_not_found() => CliError {
            code: exit::NOT_FOUND,
            message: format!("{key}: no such key in v2, nothing to migrate ({e})"),
        },
        MigrateError::Etcd(e) => e.into(),
        other => CliError {
            code: exit::FAILED,
            message: other.to_string(),
        },
    }
}

/// One line per key written (or to be written) or in conflict, the empty directories, then
/// the counts; conflicts end with [`exit::CONFLICTS`].
fn print_migration(report: &Report, key: &str, dry_run: bool) -> Result<(), CliError> {
    let would = if dry_run { "would " } else { "" };
    for step in &report.steps {
        let name = &step.leaf.key;
        let ttl = step
            .leaf
            .ttl
            .map(|ttl| format!(" (lease of {ttl}s)"))
            .unwrap_or_default();
        match step.action {
            Action::Copy => println!("{would}copy {name}{ttl}"),
            Action::Overwrite { .. } => println!("{would}overwrite {name}{ttl}"),
            Action::Conflict => println!(
                "conflict {name}: v3 holds a different value; left as it is (--overwrite \
                 replaces it with v2's)"
            ),
            Action::Unchanged => log::debug!("unchanged {name}"),
        }
    }
    for dir in &report.empty_directories {
        println!("empty directory {dir}: not copied (v3 has no directories)");
    }
    let written = report.copied() + report.overwritten();
    let (what, copied, overwritten) = match (dry_run, written) {
        (true, _) => (
            format!(
                "dry run of {key} from v2 index {}, nothing written",
                report.index
            ),
            "to copy",
            "to overwrite",
        ),
        (false, 0) => (
            format!(
                "migrated {key} from v2 index {}: nothing to copy, v3 already holds it",
                report.index
            ),
            "copied",
            "overwritten",
        ),
        (false, _) => (
            format!(
                "migrated {key} from v2 index {} in {} transaction(s)",
                report.index, report.transactions
            ),
            "copied",
            "overwritten",
        ),
    };
    println!(
        "{what}: {} {copied}, {} {overwritten}, {} unchanged, {} conflicts, {} with TTL, {} \
         directories ({} empty)",
        report.copied(),
        report.overwritten(),
        report.unchanged(),
        report.conflicts(),
        report.with_ttl(),
        report.directories,
        report.empty_directories.len(),
    );
    match report.conflicts() {
        0 => Ok(()),
        n => Err(CliError {
            code: exit::CONFLICTS,
            message: format!(
                "{n} key(s) hold a different value in v3 and were not overwritten (listed \
                 above); compare them, then run again with --overwrite to replace them with \
                 v2's values"
            ),
        }),
    }
}

/// etcd's "is a directory" for a SET would say "use -r", but SET writes one leaf key
/// with or without -r.
fn set_error(error: Error, key: &str, recursive: bool) -> CliError {
    match &error {
        Error::Etcd(etcd) if etcd.kind == ErrorKind::IsDirectory => CliError {
            code: exit::FAILED,
            message: format!(
                "{key} is a directory: SET writes a value to a single key{}; set a key under it \
                 (e.g. {}/name), or delete the directory first with -o DEL -r",
                if recursive { ", also with -r" } else { "" },
                key.trim_end_matches('/')
            ),
        },
        _ => error.into(),
    }
}

fn get(client: &Client, key: &str, recursive: bool) -> Result<(), CliError> {
    let output = match client.find(key, recursive)? {
        Found::Value(key, value) => {
            let mut one = Map::new();
            one.insert(key, json!(value));
            Value::Object(one)
        }
        Found::Leaves(leaves) => json!(leaves),
        Found::Children(children) => json!(children_listing(&children)),
    };
    println!("{}", pretty(&output));
    Ok(())
}

/// The direct children of a directory, sorted; a directory's name ends in `/`
/// (as etcdctl v2's `ls -p` shows it), a leaf's is its key.
fn children_listing(children: &[Child]) -> Vec<String> {
    children
        .iter()
        .map(|child| {
            if child.dir {
                format!("{}/", child.key)
            } else {
                child.key.clone()
            }
        })
        .collect()
}

/// Blocks until the next change under `key`, then prints it. Re-issues the long-poll
/// when its bound passes, from the same index, so nothing in between is missed.
fn watch(client: &Client, key: &str, recursive: bool) -> Result<(), CliError> {
    let mut after = client.snapshot(key, recursive)?.index;
    // Every change from here on is reported: the watch starts at the read's index.
    log::debug!("watching {key} from index {}", after + 1);
    loop {
        match client.next_event(key, recursive, after) {
            Ok(Some(event)) => {
                println!("{}", pretty(&event_json(&event)));
                return Ok(());
            }
            Ok(None) => continue,
            Err(e) if e.is_history_gone() => {
                after = client.snapshot(key, recursive)?.index;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn event_json(event: &Event) -> Value {
    let change = &event.change;
    let mut out = Map::new();
    out.insert("action".into(), json!(event.action));
    out.insert("key".into(), json!(change.key));
    if event.dir {
        out.insert("dir".into(), json!(true));
    }
    if let Op::Put(value) = &change.op {
        out.insert("value".into(), json!(value));
    }
    if let Some(prev) = &event.prev_value {
        out.insert("prevValue".into(), json!(prev));
    }
    out.insert("index".into(), json!(change.index));
    Value::Object(out)
}

fn print_cluster(client: &Client) -> Result<(), CliError> {
    let (endpoint, version) = client.version()?;
    println!("endpoint: {endpoint}");
    println!(
        "etcd server: {}, cluster: {}",
        version.etcdserver, version.etcdcluster
    );
    let (_, healthy) = client.health()?;
    println!("health: {}", if healthy { "ok" } else { "UNHEALTHY" });
    let (_, members) = client.members()?;
    let leader = match client.leader() {
        Ok(leader) => leader,
        Err(Error::Etcd(e)) => return Err(Error::Etcd(e).into()),
        Err(e) => {
            log::debug!("leader unknown: {e}");
            String::new()
        }
    };
    println!("members:");
    for m in &members {
        let mark = if m.id == leader { " (leader)" } else { "" };
        println!("  {} {}{mark}: {}", m.id, m.name, m.client_urls.join(", "));
    }
    if leader.is_empty() {
        println!("leader: unknown");
    }
    Ok(())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
