//! `etcd-util`: get, set, delete and watch etcd keys from the shell (etcd-util.rb's flags).

use super::connection::{self, ConnectionArgs};
use super::exit::etcd_util as exit;
use super::flags::{self, Command, Flag, Group, Note};
use super::{seconds, value, CliError};
use crate::etcd::migrate::{self, Action, MigrateError, Report};
use crate::etcd::{Api, Child, Client, Error, ErrorKind, Event, Found, Op};
use crate::register::{self, HealthCheck, RegisterError, Registration};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// etcd-util's command line, as `--help`, `etcd-util(1)` and the completions show it (see
/// `flags`).
pub const COMMAND: Command = Command {
    name: "etcd-util",
    summary: "get, set, delete, watch and register etcd keys; copy v2 into v3",
    usage: &[
        "etcd-util -k KEY [-o GET|SET|DEL|WATCH] [-v VALUE] [-t TTL] [-r] [connection flags]",
        "etcd-util -o REGISTER -k KEY -v VALUE -t TTL [--check-cmd CMD] [--check-interval D] \
         [connection flags]",
        "etcd-util -o MIGRATE [-k KEY] [--dry-run] [--overwrite] [connection flags]",
    ],
    about: "Get, set, delete or watch keys in etcd (v2 or v3 API, see --api), keep a key \
            registered while a service runs, or copy v2 data into v3.",
    groups: &[
        Group {
            title: "",
            flags: &[
                Flag::long(
                    "operation",
                    flags::Value::OneOf(
                        "OP",
                        &["GET", "SET", "DEL", "WATCH", "REGISTER", "MIGRATE"],
                    ),
                    "GET (default), SET, DEL, WATCH, REGISTER or MIGRATE; any letter case. GET of a \
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
                    "the value to SET or REGISTER; required with both",
                )
                .short('v'),
                Flag::long(
                    "ttl",
                    flags::Value::Text("SECS"),
                    "SET: the key expires after SECS seconds; REGISTER (required): the key's \
                     time to live",
                )
                .short('t'),
                Flag::long(
                    "check-cmd",
                    flags::Value::Text("CMD"),
                    "REGISTER: a health check run with sh -c; the key exists only while it \
                     exits 0",
                ),
                Flag::long(
                    "check-interval",
                    flags::Value::Text("D"),
                    "REGISTER: how often the check runs, also its timeout, e.g. 5, 5s, 500ms \
                     [default: a third of the TTL]",
                ),
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
    notes: &[
        Note {
            man_section: "REGISTER",
            text: "REGISTER writes KEY = VALUE with a time to live (v2: a TTL; v3: a lease) \
                   and renews it every third of the TTL without waking watchers (v2 refresh, \
                   v3 lease keepalive), so a backend announces itself while it runs: run it \
                   in the foreground under runit, supervisord or systemd. A key that expired \
                   or was deleted is written again once etcd answers (an unreachable etcd is \
                   retried, at start too); TERM or INT deletes the key (v3: revokes its \
                   lease) and exits 0; after kill -9 the key expires within TTL seconds. Each \
                   request is bounded by a third of the TTL (at least 1s, at most --timeout), \
                   so a member that hangs is given up for the next endpoint before the key \
                   expires. With --check-cmd the check runs first and then every interval, in \
                   its own process group (killed when it overruns the interval and on exit); \
                   the key is deleted when the check fails and written again when it passes. \
                   One log line on stderr per change of state, none per renewal.",
        },
        Note {
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
        },
    ],
    exit_codes: &[
        (exit::OK, "ok (REGISTER: stopped by TERM/INT)"),
        (exit::FAILED, "etcd refused the operation"),
        (exit::USAGE, "bad command line or flag file"),
        (
            exit::UNAVAILABLE,
            "no etcd endpoint answered (REGISTER: etcd refused the credentials; an \
             unreachable etcd is retried)",
        ),
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
    Register,
    Migrate,
}

#[derive(Debug)]
pub struct Args {
    pub operation: Operation,
    pub key: Option<String>,
    pub value: Option<String>,
    pub ttl: Option<u64>,
    pub recursive: bool,
    /// REGISTER: `--check-cmd` and `--check-interval`.
    pub check_cmd: Option<String>,
    pub check_interval: Option<Duration>,
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
        check_cmd: None,
        check_interval: None,
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
                out.operation = operation(&op).ok_or_else(|| {
                    CliError::usage(format!(
                        "--operation: unknown operation {op:?}; use GET, SET, DEL, WATCH or \
                         REGISTER (or MIGRATE to copy v2 data into v3)"
                    ))
                })?;
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
            Long("check-cmd") => {
                let command = value(&mut parser, "--check-cmd")?;
                if command.trim().is_empty() {
                    return Err(CliError::usage("--check-cmd: give a command to run"));
                }
                set_once(
                    &mut out.check_cmd,
                    command,
                    "--check-cmd",
                    "one check decides",
                )?;
            }
            Long("check-interval") => {
                let text = value(&mut parser, "--check-interval")?;
                let interval = check_interval(&text)?;
                set_once(
                    &mut out.check_interval,
                    interval,
                    "--check-interval",
                    "the check runs at one pace",
                )?;
            }
            Long("dry-run") => out.migrate.dry_run = true,
            Long("overwrite") => out.migrate.overwrite = true,
            Short('d') | Long("debug") => out.debug = true,
            Long("version") => out.version = true,
            Short('h') | Long("help") => out.help = true,
            Positional(v) => {
                let word = v.to_string_lossy();
                return Err(CliError::usage(match operation(&word) {
                    Some(_) => format!(
                        "unexpected argument {word:?}: choose the operation with -o, e.g. -o {}",
                        word.to_ascii_uppercase()
                    ),
                    None => format!("unexpected argument {word:?}; give the key with -k"),
                }));
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
    let check_flags = out.check_cmd.is_some() || out.check_interval.is_some();
    if check_flags && out.operation != Operation::Register {
        return Err(CliError::usage(
            "--check-cmd and --check-interval are only for -o REGISTER",
        ));
    }
    if out.check_interval.is_some() && out.check_cmd.is_none() {
        return Err(CliError::usage(
            "--check-interval needs --check-cmd, the check to run",
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
        Operation::Register if out.value.is_none() || out.ttl.is_none() => {
            return Err(CliError::usage(
                "REGISTER needs a value and a time to live: -v VALUE -t SECS, e.g. \
                 -v 10.0.0.5:80 -t 30",
            ));
        }
        Operation::Set | Operation::Register => {}
        _ if out.value.is_some() => {
            return Err(CliError::usage("-v/--value is only for SET and REGISTER"));
        }
        _ if out.ttl.is_some() => {
            return Err(CliError::usage("-t/--ttl is only for SET and REGISTER"));
        }
        _ => {}
    }
    Ok(out)
}

/// An operation's name, in any letter case.
fn operation(name: &str) -> Option<Operation> {
    Some(match name.to_ascii_uppercase().as_str() {
        "GET" => Operation::Get,
        "SET" | "PUT" => Operation::Set,
        "DEL" | "DELETE" => Operation::Delete,
        "WATCH" => Operation::Watch,
        "REGISTER" => Operation::Register,
        "MIGRATE" => Operation::Migrate,
        _ => return None,
    })
}

/// `--check-interval`: seconds (`5`, `0.5`) or a duration with units (`500ms`, `1m`).
fn check_interval(text: &str) -> Result<Duration, CliError> {
    let flag = "--check-interval";
    seconds(text, flag).or_else(|_| match crate::resource::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(CliError::usage(format!(
            "{flag}: {text:?} must be above zero"
        ))),
        Err(e) => Err(CliError::usage(format!("{flag}: {e}"))),
    })
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
    crate::logging::init(args.debug, crate::logging::LogFormat::Text);
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
                .map_err(|e| set_error(e, key, "SET", args.recursive))?;
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
        Operation::Register => register_run(args),
        Operation::Migrate => migrate_run(args),
    }
}

/// REGISTER: runs until TERM/INT; ends early only when etcd refuses the first write.
fn register_run(args: &Args) -> Result<(), CliError> {
    let key = args.key.clone().unwrap_or_default();
    let ttl = args.ttl.unwrap_or_default();
    // A renewal held up by a member that hangs must give it up for the next one before
    // the key expires: each request is bounded by a renewal interval (at least 1 s).
    let bound = (Duration::from_secs(ttl) / 3).max(Duration::from_secs(1));
    let mut connection = args.connection.clone();
    connection.connect_timeout = connection.connect_timeout.min(bound);
    connection.request_timeout = connection.request_timeout.min(bound);
    let client = connection.client()?;
    let check = args.check_cmd.as_ref().map(|command| {
        let interval = args.check_interval.unwrap_or(Duration::from_secs(ttl) / 3);
        HealthCheck {
            command: command.clone(),
            interval,
            timeout: interval,
        }
    });
    let registration = Registration {
        key: key.clone(),
        value: args.value.clone().unwrap_or_default(),
        ttl,
        check,
    };
    register::run(&client, &registration).map_err(|e| match e {
        RegisterError::Refused(error) => {
            let refused = set_error(error, &key, "REGISTER", false);
            CliError {
                message: format!("cannot register {key}: {}", refused.message),
                ..refused
            }
        }
        RegisterError::Setup(what) => CliError {
            code: exit::FAILED,
            message: what,
        },
    })
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

/// etcd's "is a directory" for a SET (or REGISTER, `operation`) would say "use -r", but
/// both write one leaf key with or without -r.
fn set_error(error: Error, key: &str, operation: &str, recursive: bool) -> CliError {
    match &error {
        Error::Etcd(etcd) if etcd.kind == ErrorKind::IsDirectory => CliError {
            code: exit::FAILED,
            message: format!(
                "{key} is a directory: {operation} writes a value to a single key{}; {} a key \
                 under it (e.g. {}/name), or delete the directory first with -o DEL -r",
                if recursive { ", also with -r" } else { "" },
                operation.to_ascii_lowercase(),
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
