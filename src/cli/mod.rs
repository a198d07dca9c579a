//! Command lines of both binaries (lexopt), with flag names of the original
//! reconfig.rb / etcd-util.rb, and their exit codes.

pub mod check;
pub mod completion;
pub mod connection;
pub mod etcd_util;
pub mod exit;
pub mod flags;
pub mod generate;
pub mod hints;
pub mod man;
pub mod manual;
pub mod reconfig;
pub mod status;
pub mod version;

use std::fmt;

/// An error that ends the program with a message on stderr and an exit code: one of
/// [`exit::etcd_util`]'s (`reconfig` maps it to its own).
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: exit::etcd_util::USAGE,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError::usage(format!("{e} (see --help)"))
    }
}

impl From<crate::etcd::Error> for CliError {
    fn from(e: crate::etcd::Error) -> CliError {
        use crate::etcd::Error;
        let code = match &e {
            Error::Etcd(_) if e.is_key_not_found() => exit::etcd_util::NOT_FOUND,
            Error::Etcd(_) => exit::etcd_util::FAILED,
            Error::InvalidArgument(_) => exit::etcd_util::USAGE,
            Error::Transport(_)
            | Error::Unavailable(_)
            | Error::Shutdown
            | Error::IndexWentBack { .. } => exit::etcd_util::UNAVAILABLE,
        };
        CliError {
            code,
            message: hints::etcd_error(&e),
        }
    }
}

/// Reads a flag's value as UTF-8 text.
pub(crate) fn value(parser: &mut lexopt::Parser, flag: &str) -> Result<String, CliError> {
    let raw = parser
        .value()
        .map_err(|_| CliError::usage(format!("{flag} needs a value (see --help)")))?;
    raw.into_string()
        .map_err(|raw| CliError::usage(format!("{flag}: value {raw:?} is not valid UTF-8")))
}

/// Seconds as a whole or decimal number, e.g. `5` or `0.5`.
pub(crate) fn seconds(text: &str, flag: &str) -> Result<std::time::Duration, CliError> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            CliError::usage(format!(
                "{flag}: {text:?} is not a positive number of seconds"
            ))
        })
}
