//! `reconfig`: the command line of the daemon (reconfig.rb's flags, plus a few).

use super::connection::{self, ConnectionArgs};
use super::exit::reconfig as exit;
use super::flags::{Command, Flag, Group, Note, Value};
use super::hints;
use super::{seconds, value, CliError};
use crate::daemon::{self, Onetime};
use crate::logging::LogFormat;
use crate::resource::{self, LoadOptions, Wait};
use crate::state::StateDir;
use crate::status::{self, StatusBoard};
use crate::watch::RunOptions;
use std::path::PathBuf;
use std::time::Duration;

/// reconfig's command line, as `--help`, `reconfig(1)` and the completions show it (see
/// `flags`).
pub const COMMAND: Command = Command {
    name: "reconfig",
    summary: "keep config files converged to data in etcd",
    usage: &[
        "reconfig [-c CFGDIR] [-o] [-n] [-p PREFIX] [connection flags]",
        "reconfig --check [-c CFGDIR] [connection flags]",
        "reconfig status [--status-file PATH] [--json]   (see reconfig status --help)",
    ],
    about: "Keeps config files converged to data in etcd: for each resource in \
            CFGDIR/conf.d/*.json, renders its template from CFGDIR/templates whenever the \
            watched key changes, checks the result, installs it atomically and runs the \
            reload command.",
    groups: &[
        Group {
            title: "",
            flags: &[
                Flag::long(
                    "cfgdir",
                    Value::Dir("DIR"),
                    "top-level config dir [default: /etc/reconfig]",
                )
                .short('c'),
                Flag::long(
                    "confdir",
                    Value::Dir("DIR"),
                    "resource files dir [default: CFGDIR/conf.d]",
                ),
                Flag::long(
                    "templatedir",
                    Value::Dir("DIR"),
                    "templates dir [default: CFGDIR/templates]",
                ),
                Flag::long(
                    "onetime",
                    Value::None,
                    "render every resource once and exit (for cron)",
                )
                .short('o'),
                Flag::long(
                    "check",
                    Value::None,
                    "render every resource once against the live data and report each \
                     file's errors (file, line, reason); write nothing, run no command; for a \
                     config repository's CI",
                ),
                Flag::long(
                    "notreally",
                    Value::None,
                    "print a diff of what would change; write nothing, run no reload \
                     (a checkcmd with {{src}} runs on a private copy)",
                )
                .short('n'),
                Flag::long(
                    "prefix",
                    Value::Text("/PFX"),
                    "prepended to every resource's key (not to altkeys)",
                )
                .short('p'),
                Flag::long(
                    "wait",
                    Value::Text("MIN[,MAX]"),
                    "default quiescence for resources without \"wait\", e.g. 100ms",
                ),
                Flag::long(
                    "command-timeout",
                    Value::Text("SECS"),
                    "bound of checkcmd/reloadcmd without \"timeout\" [default: 30]",
                )
                .also(&["command_timeout"]),
                Flag::long(
                    "status-file",
                    Value::File("PATH"),
                    "keep a JSON document of every resource's state there, rewritten \
                     atomically on each change (read it with `reconfig status`)",
                ),
                Flag::long(
                    "metrics-file",
                    Value::File("PATH"),
                    "the same figures in Prometheus text format, for node_exporter's \
                     textfile collector (name it *.prom)",
                ),
                Flag::long(
                    "state-dir",
                    Value::Dir("DIR"),
                    "where pending reloads and leaf counts outlive a restart \
                     [default: /var/lib/reconfig]",
                )
                .also(&["state_dir"]),
                Flag::long(
                    "force",
                    Value::None,
                    "render once despite min_keys, max_shrink and values (onetime: this \
                     run; daemon: each resource's first render)",
                ),
                Flag::long(
                    "debug",
                    Value::None,
                    "debug logging (SIGUSR1 toggles it at run time)",
                )
                .short('d'),
                Flag::long(
                    "log-format",
                    Value::OneOf("FORMAT", &["text", "json"]),
                    "text, or json: one object per line with time, level, resource and \
                     message [default: text]",
                ),
                Flag::long("version", Value::None, "print the version and exit"),
                Flag::long("help", Value::None, "this help").short('h'),
            ],
        },
        connection::GROUP,
    ],
    notes: &[Note {
        man_section: "SIGNALS",
        text: "Signals: TERM/INT stop within a second; HUP re-reads conf.d and templates; \
               USR1 toggles debug.",
    }],
    exit_codes: &[
        (exit::OK, "ok (onetime: every resource converged)"),
        (
            exit::CONFIG,
            "bad command line or configuration (or an unusable --state-dir); --check: a \
             resource file or template is invalid",
        ),
        (
            exit::NOT_CONVERGED,
            "onetime: some resource did not converge (a render, check or reload failed, or \
             a guard refused the render) or a resource file was skipped; --check: a \
             resource does not render against the live data",
        ),
        (
            exit::UNAVAILABLE,
            "onetime: no etcd endpoint answered; --check: etcd could not be read",
        ),
        (
            exit::WOULD_CHANGE,
            "onetime with --notreally: some file would change",
        ),
    ],
};

/// `--command-timeout` when not given (the help says so).
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `--state-dir` when not given (the help says so).
const DEFAULT_STATE_DIR: &str = "/var/lib/reconfig";

#[derive(Debug)]
pub struct Args {
    pub cfgdir: PathBuf,
    pub confdir: Option<PathBuf>,
    pub templatedir: Option<PathBuf>,
    pub onetime: bool,
    pub check: bool,
    pub notreally: bool,
    pub prefix: String,
    pub wait: Option<Wait>,
    pub command_timeout: Option<Duration>,
    pub status_file: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub force: bool,
    pub debug: bool,
    pub log_format: LogFormat,
    pub version: bool,
    pub help: bool,
    /// `--generate NAME`: print a man page or completion (see `generate`).
    pub generate: Option<String>,
    pub connection: ConnectionArgs,
}

pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, CliError> {
    use lexopt::Arg::{Long, Short, Value as Positional};
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args {
        cfgdir: PathBuf::from("/etc/reconfig"),
        confdir: None,
        templatedir: None,
        onetime: false,
        check: false,
        notreally: false,
        prefix: String::new(),
        wait: None,
        command_timeout: None,
        status_file: None,
        metrics_file: None,
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        force: false,
        debug: false,
        log_format: LogFormat::Text,
        version: false,
        help: false,
        generate: None,
        connection: ConnectionArgs {
            announce_api: true,
            ..ConnectionArgs::default()
        },
    };
    while let Some(arg) = parser.next()? {
        if let Some(flag) = connection::flag(&arg) {
            out.connection.apply(flag, &mut parser)?;
            continue;
        }
        match arg {
            Short('c') | Long("cfgdir") => out.cfgdir = value(&mut parser, "--cfgdir")?.into(),
            Long("confdir") => out.confdir = Some(value(&mut parser, "--confdir")?.into()),
            Long("templatedir") => {
                out.templatedir = Some(value(&mut parser, "--templatedir")?.into())
            }
            Short('o') | Long("onetime") => out.onetime = true,
            Long("check") => out.check = true,
            Short('n') | Long("notreally") => out.notreally = true,
            Short('p') | Long("prefix") => {
                let prefix = value(&mut parser, "--prefix")?;
                if !prefix.starts_with('/') {
                    return Err(CliError::usage(format!(
                        "--prefix: {prefix:?} must begin with '/', e.g. /production"
                    )));
                }
                out.prefix = prefix;
            }
            Long("wait") => {
                let text = value(&mut parser, "--wait")?;
                let wait = resource::parse_wait(&serde_json::Value::String(text.clone()))
                    .map_err(|e| CliError::usage(format!("--wait: {text:?}: {e}")))?;
                out.wait = Some(wait);
            }
            Long("command-timeout") | Long("command_timeout") => {
                out.command_timeout = Some(seconds(
                    &value(&mut parser, "--command-timeout")?,
                    "--command-timeout",
                )?)
            }
            Long("status-file") => {
                out.status_file = Some(value(&mut parser, "--status-file")?.into())
            }
            Long("metrics-file") => {
                out.metrics_file = Some(value(&mut parser, "--metrics-file")?.into())
            }
            Long("state-dir") | Long("state_dir") => {
                out.state_dir = value(&mut parser, "--state-dir")?.into()
            }
            Long("force") => out.force = true,
            Short('d') | Long("debug") => out.debug = true,
            Long("log-format") => {
                let text = value(&mut parser, "--log-format")?;
                out.log_format = text
                    .parse()
                    .map_err(|e| CliError::usage(format!("--log-format: {e}")))?;
            }
            Long("version") => out.version = true,
            Short('h') | Long("help") => out.help = true,
            Long("generate") => out.generate = Some(value(&mut parser, "--generate")?),
            Positional(v) => {
                return Err(CliError::usage(format!(
                    "unexpected argument {:?} (see --help)",
                    v.to_string_lossy()
                )))
            }
            other => return Err(other.unexpected().into()),
        }
    }
    if out.check && (out.onetime || out.notreally) {
        return Err(CliError::usage(
            "--check renders without writing or running anything: leave out --onetime and --notreally",
        ));
    }
    Ok(out)
}

pub fn main() -> i32 {
    let mut raw = std::env::args_os().skip(1).peekable();
    if raw.peek().is_some_and(|first| first == "status") {
        return super::status::main(raw.skip(1));
    }
    let args = match parse(raw) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("reconfig: {e}");
            return exit::CONFIG;
        }
    };
    if args.help {
        print!("{}", COMMAND.help());
        return exit::OK;
    }
    if let Some(name) = &args.generate {
        return generate(name);
    }
    if args.version {
        print!("{}", super::version::describe("reconfig"));
        return exit::OK;
    }
    crate::logging::init(args.debug, args.log_format);
    // Every flag file (TLS, password) is checked here, before conf.d is read: a bad
    // connection flag is the one error shown, not the last line after every "bound:".
    let client = match args.connection.client() {
        Ok(client) => client,
        Err(e) => {
            log::error!("{e}");
            // An SRV record that cannot be resolved means no etcd to reach, not a bad flag.
            return if e.code == super::exit::etcd_util::UNAVAILABLE {
                exit::UNAVAILABLE
            } else {
                exit::CONFIG
            };
        }
    };
    let load_options = LoadOptions {
        confdir: args
            .confdir
            .clone()
            .unwrap_or_else(|| args.cfgdir.join("conf.d")),
        templatedir: args
            .templatedir
            .clone()
            .unwrap_or_else(|| args.cfgdir.join("templates")),
        prefix: args.prefix.clone(),
        default_wait: args.wait,
        default_command_timeout: args.command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT),
    };
    if args.check {
        return super::check::run(&load_options, &client, hints::etcd_error);
    }
    let state = if args.notreally {
        StateDir::read_only(&args.state_dir)
    } else {
        match StateDir::open(&args.state_dir) {
            Ok(state) => state,
            Err(e) => {
                log::error!("{}", hints::state_dir_error(&e));
                return exit::CONFIG;
            }
        }
    };
    let confdir_flag = confdir_flag(&args);
    let resources = match daemon::load_resources(&load_options) {
        Ok(resources) => resources,
        Err(e) => {
            log::error!("{}", hints::load_error(&e, confdir_flag));
            return exit::CONFIG;
        }
    };
    let outputs = status::Outputs {
        status_file: args.status_file.clone(),
        metrics_file: args.metrics_file.clone(),
    };
    let mode = if args.onetime {
        status::Mode::Onetime
    } else {
        status::Mode::Daemon
    };
    let board = match StatusBoard::start(outputs, mode) {
        Ok(board) => board,
        Err(e) => {
            log::error!("{e}");
            return exit::CONFIG;
        }
    };
    let options = RunOptions {
        dry_run: args.notreally,
        describe_etcd: hints::etcd_error,
        status: board.clone(),
        state: Some(state),
        force: args.force,
        ..RunOptions::default()
    };
    if args.onetime {
        let outcome = daemon::run_onetime(resources, client, options);
        board.finish();
        return match outcome {
            Onetime::Converged => exit::OK,
            Onetime::WouldChange => exit::WOULD_CHANGE,
            Onetime::NotConverged => exit::NOT_CONVERGED,
            Onetime::Unavailable => exit::UNAVAILABLE,
        };
    }
    let connection = args.connection.clone();
    let reload = daemon::Reload {
        confdir: load_options.confdir.clone(),
        next: Box::new(move || {
            let loaded = daemon::load_resources(&load_options)
                .map_err(|e| hints::load_error(&e, confdir_flag))?;
            let client = connection.client().map_err(|e| e.to_string())?;
            Ok((loaded, client))
        }),
    };
    let ran = daemon::run_daemon(resources, client, reload, options);
    board.finish();
    match ran {
        Ok(()) => exit::OK,
        Err(e) => {
            log::error!("{e}");
            exit::CONFIG
        }
    }
}

/// The flag that chose the conf.d directory, named when it cannot be read.
fn confdir_flag(args: &Args) -> &'static str {
    if args.confdir.is_some() {
        "--confdir"
    } else {
        "--cfgdir"
    }
}

/// `--generate NAME`: prints the file, or names the ones there are.
fn generate(name: &str) -> i32 {
    match super::generate::artifact(name) {
        Some(text) => {
            print!("{text}");
            exit::OK
        }
        None => {
            eprintln!(
                "reconfig: --generate: unknown file {name:?}; one of: {}",
                super::generate::ARTIFACTS.join(", ")
            );
            exit::CONFIG
        }
    }
}
