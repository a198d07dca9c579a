//! rustls client configuration (through ureq) from CA, certificate and key files.
//!
//! Every file is read and checked once, at startup, so that a bad setting stops the daemon with
//! a message naming the setting and the file instead of failing later on the first request.
//! Errors say which setting is wrong ([`TlsSetting`]) and what is wrong with it
//! ([`TlsProblem`]); the command line words them with its flag names (`cli::hints`).

mod key;
mod legacy_pem;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, InconsistentKeys};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use key::{KeyProblem, LoadedKey};

use TlsSetting::{CaFile, CertFile, KeyFile, Passphrase};

/// The TLS-related command-line settings.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// CA certificates (PEM) to trust instead of the built-in web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), leaf first.
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of the client certificate, possibly encrypted.
    pub key_file: Option<PathBuf>,
    /// Passphrase of an encrypted private key.
    pub passphrase: Option<String>,
}

/// Debug output hides the passphrase, so settings can be logged.
impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// One of the TLS settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSetting {
    CaFile,
    CertFile,
    KeyFile,
    Passphrase,
}

/// What is wrong with a TLS setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The file cannot be used, in words.
    Unusable(String),
    /// A passphrase, but no key to decrypt with it.
    PassphraseWithoutKey,
    CertWithoutKey,
    KeyWithoutCert,
    /// The key does not match the certificate in this file.
    KeyMismatch(PathBuf),
    /// The key is encrypted and no passphrase was given.
    NeedsPassphrase,
}

/// A TLS setting that cannot be used: which one, its file when there is one, and why.
#[derive(Debug)]
pub struct TlsError {
    pub setting: TlsSetting,
    pub path: Option<PathBuf>,
    pub problem: TlsProblem,
}

impl TlsError {
    fn new(setting: TlsSetting, path: Option<&Path>, problem: impl Into<String>) -> TlsError {
        TlsError::of(setting, path, TlsProblem::Unusable(problem.into()))
    }

    fn of(setting: TlsSetting, path: Option<&Path>, problem: TlsProblem) -> TlsError {
        TlsError {
            setting,
            path: path.map(Path::to_path_buf),
            problem,
        }
    }
}

impl fmt::Display for TlsSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaFile => "CA file",
            CertFile => "client certificate",
            KeyFile => "client key",
            Passphrase => "key passphrase",
        })
    }
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProblem::Unusable(problem) => f.write_str(problem),
            TlsProblem::PassphraseWithoutKey => f.write_str("given without a client key"),
            TlsProblem::CertWithoutKey => f.write_str("client certificate given without its key"),
            TlsProblem::KeyWithoutCert => f.write_str("key given without its client certificate"),
            TlsProblem::KeyMismatch(cert_file) => write!(
                f,
                "key does not match the certificate in {}",
                cert_file.display()
            ),
            TlsProblem::NeedsPassphrase => {
                f.write_str("key is encrypted and no passphrase was given")
            }
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} {}: {}", self.setting, path.display(), self.problem),
            None => write!(f, "{}: {}", self.setting, self.problem),
        }
    }
}

impl std::error::Error for TlsError {}

/// Loads and checks every file at startup and builds the TLS configuration for ureq.
///
/// With `ca_file`, only the CAs in that file are trusted; without it, the built-in web PKI roots.
/// A client certificate needs both `cert_file` and `key_file`; the key must match the certificate.
pub fn client_config(opts: &TlsOptions) -> Result<TlsConfig, TlsError> {
    let mut builder = TlsConfig::builder();
    if let Some(ca_file) = &opts.ca_file {
        builder = builder.root_certs(RootCerts::Specific(Arc::new(load_ca_certs(ca_file)?)));
    }
    builder = builder.client_cert(load_client_cert(opts)?);
    Ok(builder.build())
}

fn load_ca_certs(path: &Path) -> Result<Vec<Certificate<'static>>, TlsError> {
    let certs = load_certs(CaFile, path)?;
    let mut store = rustls::RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        store.add(CertificateDer::from(cert.der())).map_err(|err| {
            let problem = format!("certificate #{} is not a usable CA: {err}", index + 1);
            TlsError::new(CaFile, Some(path), problem)
        })?;
    }
    Ok(certs)
}

fn load_client_cert(opts: &TlsOptions) -> Result<Option<ClientCert>, TlsError> {
    match (&opts.cert_file, &opts.key_file) {
        (None, None) if opts.passphrase.is_some() => Err(TlsError::of(
            Passphrase,
            None,
            TlsProblem::PassphraseWithoutKey,
        )),
        (None, None) => Ok(None),
        (Some(cert_file), None) => Err(TlsError::of(
            CertFile,
            Some(cert_file),
            TlsProblem::CertWithoutKey,
        )),
        (None, Some(key_file)) => Err(TlsError::of(
            KeyFile,
            Some(key_file),
            TlsProblem::KeyWithoutCert,
        )),
        (Some(cert_file), Some(key_file)) => {
            let chain = load_certs(CertFile, cert_file)?;
            let key = load_key(key_file, opts.passphrase.as_deref())?;
            check_key_matches(&chain, &key, cert_file, key_file)?;
            Ok(Some(ClientCert::new_with_certs(
                &chain,
                to_ureq_key(&key, key_file)?,
            )))
        }
    }
}

fn read_file(setting: TlsSetting, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|err| TlsError::new(setting, Some(path), format!("cannot read: {err}")))
}

fn load_certs(setting: TlsSetting, path: &Path) -> Result<Vec<Certificate<'static>>, TlsError> {
    let pem = read_file(setting, path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(err) => {
                return Err(TlsError::new(
                    setting,
                    Some(path),
                    format!("not valid PEM: {err}"),
                ));
            }
        }
    }
    if certs.is_empty() {
        let problem = "no certificate found (expected a PEM \"BEGIN CERTIFICATE\" block)";
        return Err(TlsError::new(setting, Some(path), problem));
    }
    Ok(certs)
}

fn load_key(path: &Path, passphrase: Option<&str>) -> Result<LoadedKey, TlsError> {
    let pem = read_file(KeyFile, path)?;
    let text = String::from_utf8_lossy(&pem);
    key::load(&text, passphrase).map_err(|problem| match problem {
        KeyProblem::WrongPassphrase => wrong_passphrase(path),
        KeyProblem::NeedsPassphrase => {
            TlsError::of(KeyFile, Some(path), TlsProblem::NeedsPassphrase)
        }
        other => TlsError::new(KeyFile, Some(path), other.to_string()),
    })
}

fn wrong_passphrase(key_file: &Path) -> TlsError {
    let problem = format!("wrong passphrase for key {}", key_file.display());
    TlsError::new(Passphrase, None, problem)
}

/// Loads the key with the crypto provider ureq will use and compares its public key with the
/// certificate's, so that a mismatch is reported now rather than as a failed handshake later.
fn check_key_matches(
    chain: &[Certificate<'static>],
    key: &LoadedKey,
    cert_file: &Path,
    key_file: &Path,
) -> Result<(), TlsError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let signing_key = provider
        .key_provider
        .load_private_key(key.to_rustls())
        .map_err(|err| match key.was_encrypted {
            true => wrong_passphrase(key_file),
            false => TlsError::new(KeyFile, Some(key_file), format!("unusable key: {err}")),
        })?;
    let chain_der = chain
        .iter()
        .map(|cert| CertificateDer::from(cert.der()).into_owned())
        .collect();
    match CertifiedKey::new(chain_der, signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            let problem = TlsProblem::KeyMismatch(cert_file.to_path_buf());
            Err(TlsError::of(KeyFile, Some(key_file), problem))
        }
        Err(err) => {
            let problem = format!("first certificate is not usable: {err}");
            Err(TlsError::new(CertFile, Some(cert_file), problem))
        }
    }
}

/// ureq does not export its key-kind enum, so the DER goes back to PEM with the matching label.
fn to_ureq_key(key: &LoadedKey, key_file: &Path) -> Result<PrivateKey<'static>, TlsError> {
    let unusable =
        |err: String| TlsError::new(KeyFile, Some(key_file), format!("unusable key: {err}"));
    let pem = pem_rfc7468::encode_string(key.kind.label(), pem_rfc7468::LineEnding::LF, &key.der)
        .map_err(|err| unusable(err.to_string()))?;
    PrivateKey::from_pem(pem.as_bytes()).map_err(|err| unusable(err.to_string()))
}

/// What the user can change to get past a TLS failure; the front end words it with its
/// own flag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFix {
    /// Trust the CA that signed the server's certificate.
    TrustServerCa,
    /// Send a client certificate: the server requires one.
    GiveClientCert,
    /// Send a valid client certificate from a CA the server trusts.
    CheckClientCert,
}

/// A TLS failure in words, and what would fix it when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub reason: String,
    pub fix: Option<TlsFix>,
}

impl Explained {
    fn new(reason: impl Into<String>, fix: Option<TlsFix>) -> Explained {
        Explained {
            reason: reason.into(),
            fix,
        }
    }
}

/// Turns a ureq error from a TLS connection into a human reason when it is a TLS problem.
///
/// `sent_client_cert` tells whether a client certificate was configured:
/// servers answer a missing one with the same alerts as a rejected one (Go's TLS 1.3 sends
/// `bad_certificate`), so the reason depends on it.
pub fn explain(err: &ureq::Error, sent_client_cert: bool) -> Option<Explained> {
    Some(match rustls_error(err)? {
        rustls::Error::InvalidCertificate(cert_err) => server_cert_reason(cert_err),
        rustls::Error::AlertReceived(alert) => alert_reason(*alert, sent_client_cert),
        rustls::Error::NoCertificatesPresented => {
            Explained::new("the server sent no certificate", None)
        }
        other => Explained::new(format!("TLS handshake failed: {other}"), None),
    })
}

fn rustls_error(err: &ureq::Error) -> Option<&rustls::Error> {
    match err {
        ureq::Error::Rustls(tls_err) => Some(tls_err),
        ureq::Error::Io(io_err) => io_err.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

fn server_cert_reason(err: &CertificateError) -> Explained {
    let reason = match err {
        CertificateError::UnknownIssuer => {
            return Explained::new(
                "certificate signed by an unknown CA",
                Some(TlsFix::TrustServerCa),
            )
        }
        CertificateError::NotValidForName => "certificate name mismatch".to_string(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "certificate name mismatch: connected to {} but the certificate is for {}",
            expected.to_str(),
            presented
                .iter()
                .map(|name| plain_name(name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet (check the clock)".to_string()
        }
        other => format!("server certificate rejected: {other}"),
    };
    Explained::new(reason, None)
}

/// Alerts a server sends when it misses or rejects our client certificate say which.
fn alert_reason(alert: rustls::AlertDescription, sent_client_cert: bool) -> Explained {
    use rustls::AlertDescription as Alert;
    let about_client_cert = matches!(
        alert,
        Alert::CertificateRequired
            | Alert::HandshakeFailure
            | Alert::BadCertificate
            | Alert::CertificateUnknown
    );
    let required = || {
        Explained::new(
            "the server requires a client certificate",
            Some(TlsFix::GiveClientCert),
        )
    };
    match alert {
        _ if about_client_cert && !sent_client_cert => required(),
        Alert::CertificateRequired | Alert::HandshakeFailure => required(),
        Alert::BadCertificate
        | Alert::UnknownCA
        | Alert::CertificateUnknown
        | Alert::CertificateExpired
        | Alert::CertificateRevoked
        | Alert::UnsupportedCertificate
        | Alert::AccessDenied => Explained::new(
            format!("the server refused our client certificate ({alert:?})"),
            Some(TlsFix::CheckClientCert),
        ),
        other => Explained::new(
            format!("the server ended the TLS connection: {other:?}"),
            None,
        ),
    }
}

/// webpki lists certificate names in their Debug form, such as `DnsName("localhost")`.
fn plain_name(presented: &str) -> &str {
    ["DnsName(\"", "IpAddress("]
        .iter()
        .find_map(|prefix| presented.strip_prefix(prefix))
        .map(|rest| rest.trim_end_matches(')').trim_end_matches('"'))
        .unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_unknown_issuer_with_its_fix() {
        let err = ureq::Error::Rustls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let explained = explain(&err, true).unwrap();
        assert_eq!(explained.reason, "certificate signed by an unknown CA");
        assert_eq!(explained.fix, Some(TlsFix::TrustServerCa));
    }

    #[test]
    fn explains_errors_wrapped_in_io_errors() {
        let inner = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let err = ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, inner));
        let explained = explain(&err, true).unwrap();
        assert_eq!(explained.fix, Some(TlsFix::GiveClientCert), "{explained:?}");
    }

    #[test]
    fn a_refusal_without_a_client_certificate_asks_for_one() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        let err = ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, alert));
        let without = explain(&err, false).unwrap();
        assert!(
            without.reason.contains("requires a client certificate"),
            "{without:?}"
        );
        let with = explain(&err, true).unwrap();
        assert!(
            with.reason.contains("refused our client certificate"),
            "{with:?}"
        );
    }

    #[test]
    fn certificate_names_lose_their_debug_wrapping() {
        assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn explains_expired_certificate() {
        let err = ureq::Error::Rustls(rustls::Error::InvalidCertificate(CertificateError::Expired));
        assert_eq!(explain(&err, true).unwrap().reason, "certificate expired");
    }

    #[test]
    fn does_not_explain_non_tls_errors() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(explain(&ureq::Error::Io(refused), true), None);
        assert_eq!(explain(&ureq::Error::StatusCode(404), true), None);
    }

    #[test]
    fn debug_output_hides_the_passphrase() {
        let opts = TlsOptions {
            passphrase: Some("hunter2".to_string()),
            ..TlsOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn key_without_cert_names_the_missing_setting() {
        let opts = TlsOptions {
            key_file: Some(PathBuf::from("/etc/ssl/client.key")),
            ..TlsOptions::default()
        };
        let err = client_config(&opts).unwrap_err();
        assert_eq!(err.setting, KeyFile);
        assert_eq!(err.problem, TlsProblem::KeyWithoutCert);
        assert_eq!(
            err.to_string(),
            "client key /etc/ssl/client.key: key given without its client certificate"
        );
    }

    #[test]
    fn missing_ca_file_names_setting_and_path() {
        let opts = TlsOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsOptions::default()
        };
        let msg = client_config(&opts).unwrap_err().to_string();
        assert!(
            msg.starts_with("CA file /nonexistent/ca.pem: cannot read:"),
            "{msg}"
        );
    }
}
