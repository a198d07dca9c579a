//! `reconfig status`: what the daemon's `--status-file` says, as a table or as JSON.

use super::exit::status as exit;
use super::{value, CliError};
use crate::status;
use std::path::PathBuf;

/// Where `reconfig status` looks unless told otherwise: the path the README suggests for
/// the daemon's `--status-file`.
pub const DEFAULT_STATUS_FILE: &str = "/run/reconfig/status.json";

const USAGE: &str = "\
Usage: reconfig status [--status-file PATH] [--json]

Shows what the reconfig that writes PATH (its --status-file) is doing: per resource its
state, the etcd index last applied, when it last changed its target and its last error.

      --status-file PATH    the daemon's --status-file [default: /run/reconfig/status.json]
      --json                print the document as it is, for scripts
  -h, --help                this help

Exit codes: 0 no resource has an error, 1 bad command line or the file is missing or not a
status document, 2 at least one resource has an error.
";

#[derive(Debug)]
struct Args {
    status_file: PathBuf,
    json: bool,
    help: bool,
}

fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, CliError> {
    use lexopt::Arg::{Long, Short};
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args {
        status_file: PathBuf::from(DEFAULT_STATUS_FILE),
        json: false,
        help: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("status-file") => out.status_file = value(&mut parser, "--status-file")?.into(),
            Long("json") => out.json = true,
            Short('h') | Long("help") => out.help = true,
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(out)
}

/// Runs `reconfig status` with the arguments after `status`; returns the exit code.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args = match parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("reconfig status: {e}");
            return exit::UNREADABLE;
        }
    };
    if args.help {
        print!("{USAGE}");
        return exit::OK;
    }
    let document = match status::read(&args.status_file) {
        Ok(document) => document,
        Err(e) => {
            eprintln!("reconfig status: {e}");
            return exit::UNREADABLE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&document) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("reconfig status: cannot encode the document: {e}");
                return exit::UNREADABLE;
            }
        }
    } else {
        print!("{}", status::table(&document, status::now()));
    }
    if document.has_errors() {
        exit::FAILING
    } else {
        exit::OK
    }
}
