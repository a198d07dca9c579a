//! What the user can do about an error, in the flags of these binaries. Lower layers
//! return typed errors that say what is missing ([`Remedy`], [`TlsFix`]); only here do
//! they become "pass --ssl_cafile".

use crate::daemon::LoadError;
use crate::etcd::{Error, ErrorKind, Remedy, TransportError};
use crate::state::StateDirError;
use crate::tls::{Explained, TlsError, TlsFix, TlsProblem, TlsSetting};

/// An etcd error as both binaries print it: the error, with the flags that fix it.
pub fn etcd_error(error: &Error) -> String {
    match error {
        Error::Transport(e) => transport_error(e),
        Error::Unavailable(errors) => {
            let each: Vec<String> = errors.iter().map(transport_error).collect();
            format!(
                "no etcd endpoint answered ({}); check that etcd runs and \
                 --endpoints/--host/--port/--srv",
                each.join("; ")
            )
        }
        Error::Etcd(e) => match e.kind {
            ErrorKind::IsDirectory => format!("{error}; use -r to act on the whole tree"),
            ErrorKind::DirectoryNotEmpty => {
                format!("{error} (use -r to delete it with everything under it)")
            }
            _ => error.to_string(),
        },
        _ => error.to_string(),
    }
}

/// conf.d that gave nothing to run; an unreadable directory names the flag that chose it
/// (`--confdir`, or `--cfgdir` for CFGDIR/conf.d).
pub fn load_error(error: &LoadError, confdir_flag: &str) -> String {
    match error {
        LoadError::Unreadable(_) => format!("{error} (check {confdir_flag} and permissions)"),
        LoadError::NoValidResource { .. } => error.to_string(),
    }
}

/// A state directory that cannot be used, with the flag that chose it.
pub fn state_dir_error(error: &StateDirError) -> String {
    format!(
        "{error}; pass --state-dir DIR naming a directory reconfig can create and write \
         (it keeps pending reloads and leaf counts across restarts)"
    )
}

/// A TLS failure with the flags that fix it.
pub fn tls_failure(explained: &Explained) -> String {
    let hint = explained.fix.map_or("", |fix| tls_hint(fix));
    format!("{}{hint}", explained.reason)
}

/// A TLS setting that cannot be used, named by its flag, with the flags that fix it.
pub fn tls_error(error: &TlsError) -> String {
    let flag = tls_flag(error.setting);
    let problem = match &error.problem {
        TlsProblem::PassphraseWithoutKey => {
            "given without --ssl_key (pass --ssl_cert and --ssl_key, or drop it)".to_string()
        }
        TlsProblem::CertWithoutKey => {
            "client certificate given without its key (pass --ssl_key)".to_string()
        }
        TlsProblem::KeyWithoutCert => {
            "key given without its client certificate (pass --ssl_cert)".to_string()
        }
        TlsProblem::KeyMismatch(cert_file) => format!(
            "key does not match the certificate in {} (--ssl_cert)",
            cert_file.display()
        ),
        TlsProblem::NeedsPassphrase => "key is encrypted: pass --ssl_passphrase".to_string(),
        TlsProblem::Unusable(problem) => problem.clone(),
    };
    match &error.path {
        Some(path) => format!("{flag} {}: {problem}", path.display()),
        None => format!("{flag}: {problem}"),
    }
}

fn tls_flag(setting: TlsSetting) -> &'static str {
    match setting {
        TlsSetting::CaFile => "--ssl_cafile",
        TlsSetting::CertFile => "--ssl_cert",
        TlsSetting::KeyFile => "--ssl_key",
        TlsSetting::Passphrase => "--ssl_passphrase",
    }
}

fn transport_error(error: &TransportError) -> String {
    let hint = match error.remedy {
        None => "",
        Some(Remedy::TrustServerCa) => tls_hint(TlsFix::TrustServerCa),
        Some(Remedy::GiveClientCert) => tls_hint(TlsFix::GiveClientCert),
        Some(Remedy::CheckClientCert) => tls_hint(TlsFix::CheckClientCert),
        Some(Remedy::GiveCredentials) => "; pass --username and --password or --password-file",
        Some(Remedy::CheckCredentials) => "; check --username and --password/--password-file",
    };
    format!("{error}{hint}")
}

fn tls_hint(fix: TlsFix) -> &'static str {
    match fix {
        TlsFix::TrustServerCa => " (pass --ssl_cafile)",
        TlsFix::GiveClientCert => " (pass --ssl_cert and --ssl_key)",
        TlsFix::CheckClientCert => {
            "; check that --ssl_cert and --ssl_key hold a valid certificate from a CA the \
             server trusts"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::TransportKind;

    fn refused(remedy: Option<Remedy>) -> TransportError {
        TransportError {
            remedy,
            ..TransportError::new(
                TransportKind::Unauthorized,
                "http://127.0.0.1:2379",
                "HTTP 401: etcd requires authentication",
            )
        }
    }

    #[test]
    fn a_remedy_becomes_the_flags_to_pass_after_the_error() {
        let error = Error::Transport(refused(Some(Remedy::GiveCredentials)));
        assert_eq!(
            etcd_error(&error),
            "http://127.0.0.1:2379: unauthorized: HTTP 401: etcd requires authentication; \
             pass --username and --password or --password-file"
        );
        let all = Error::Unavailable(vec![refused(None), refused(Some(Remedy::TrustServerCa))]);
        let text = etcd_error(&all);
        assert!(
            text.contains("authentication; http://")
                && text.contains("authentication (pass --ssl_cafile)); check that etcd runs"),
            "{text}"
        );
    }
}
