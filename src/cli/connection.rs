//! Flags that say how to reach etcd, shared by both binaries, and the client they build.

use super::flags::{self, Group, Value};
use super::{seconds, value, CliError};
use crate::etcd::{self, Api, Client, ClientOptions, Credentials};
use crate::srv;
use crate::tls::{self, TlsOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The connection flags of both binaries, as `--help`, the man pages and the completions
/// show them (see `flags`).
pub const GROUP: Group = Group {
    title: "Connection",
    flags: &[
        flags::Flag::long(
            "api",
            Value::OneOf("v2|v3|auto", &["v2", "v3", "auto"]),
            "etcd API to speak [default: auto, or $RECONFIG_API, or $ETCDCTL_API (2 or 3)]. \
             auto: v3 when the cluster does not serve v2 or v3 holds keys, else v2",
        ),
        flags::Flag::long(
            "endpoints",
            Value::Text("URL[,URL...]"),
            "etcd endpoints, tried in order with failover \
             [default: http://127.0.0.1:2379,http://127.0.0.1:4001]",
        ),
        flags::Flag::long(
            "host",
            Value::Text("HOST"),
            "etcd host (original flag); ports 2379 then 4001 unless --port",
        ),
        flags::Flag::long("port", Value::Text("PORT"), "etcd port (original flag)"),
        flags::Flag::long(
            "srv",
            Value::Text("RECORD"),
            "find endpoints by DNS SRV record, e.g. _etcd-client._tcp.example.com",
        ),
        flags::Flag::long(
            "srv-domain",
            Value::Text("DOMAIN"),
            "same as --srv _etcd-client._tcp.DOMAIN (_etcd-client-ssl with --ssl)",
        ),
        flags::Flag::long(
            "srv-refresh",
            Value::Text("SECS"),
            "re-resolve the SRV record this often, and whenever every target failed \
             [default: 60]. The DNS server is the first answering nameserver of \
             /etc/resolv.conf, or $RECONFIG_DNS_SERVER (ip or ip:port) when set",
        ),
        flags::Flag::long(
            "ssl",
            Value::None,
            "use https for endpoints given without a scheme",
        )
        .short('s'),
        flags::Flag::long(
            "ssl_cafile",
            Value::File("FILE"),
            "PEM bundle of CAs to trust",
        )
        .also(&["ssl-cafile"]),
        flags::Flag::long(
            "ssl_cert",
            Value::File("FILE"),
            "client certificate chain, PEM",
        )
        .also(&["ssl-cert"]),
        flags::Flag::long(
            "ssl_key",
            Value::File("FILE"),
            "client key: PKCS#8, PKCS#1, SEC1, encrypted PKCS#8 or legacy encrypted PEM",
        )
        .also(&["ssl-key"]),
        flags::Flag::long(
            "ssl_passphrase",
            Value::Text("PASS"),
            "passphrase of an encrypted key",
        )
        .also(&["ssl-passphrase"]),
        flags::Flag::long("username", Value::Text("USER"), "etcd auth user"),
        flags::Flag::long(
            "password",
            Value::Text("PASS"),
            "its password (prefer --password-file)",
        ),
        flags::Flag::long(
            "password-file",
            Value::File("FILE"),
            "read the password from FILE (first line)",
        ),
        flags::Flag::long(
            "timeout",
            Value::Text("SECS"),
            "connect and request timeout, also the wait for a watch's response head \
             [default: 3 connect, 10 request]",
        ),
        flags::Flag::long(
            "watch-timeout",
            Value::Text("SECS"),
            "bound of one watch long-poll before re-reading [default: 300]",
        ),
    ],
};

#[derive(Debug, Clone)]
pub struct ConnectionArgs {
    /// `--api`; `None`: from the environment, else auto.
    pub api: Option<Api>,
    /// Whether `--api auto`'s choice is logged at info level (the daemon's start-up).
    pub announce_api: bool,
    pub endpoints: Vec<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub srv: Option<String>,
    pub srv_domain: Option<String>,
    pub srv_refresh: Duration,
    pub ssl: bool,
    pub ssl_cafile: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub ssl_passphrase: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub watch_timeout: Duration,
}

impl Default for ConnectionArgs {
    fn default() -> ConnectionArgs {
        let defaults = ClientOptions::default();
        ConnectionArgs {
            api: None,
            announce_api: false,
            endpoints: Vec::new(),
            host: None,
            port: None,
            srv: None,
            srv_domain: None,
            srv_refresh: SRV_REDISCOVERY,
            ssl: false,
            ssl_cafile: None,
            ssl_cert: None,
            ssl_key: None,
            ssl_passphrase: None,
            username: None,
            password: None,
            password_file: None,
            connect_timeout: defaults.connect_timeout,
            request_timeout: defaults.request_timeout,
            watch_timeout: defaults.watch_timeout,
        }
    }
}

impl ConnectionArgs {
    /// Reads the value of a connection flag found by [`flag`] and stores it.
    pub fn apply(&mut self, flag: Flag, parser: &mut lexopt::Parser) -> Result<(), CliError> {
        match flag {
            Flag::Api => {
                let text = value(parser, "--api")?;
                self.api = Some(parse_api(&text).ok_or_else(|| {
                    CliError::usage(format!("--api: {text:?} is not one of v2, v3, auto"))
                })?);
            }
            Flag::Endpoints => {
                let list = value(parser, "--endpoints")?;
                for raw in list.split(',').filter(|s| !s.trim().is_empty()) {
                    self.endpoints.push(raw.trim().to_string());
                }
                if self.endpoints.is_empty() {
                    return Err(CliError::usage("--endpoints: give at least one URL"));
                }
            }
            Flag::Host => {
                let host = value(parser, "--host")?;
                if host.is_empty() || host.starts_with('-') || host.contains(['/', ' ']) {
                    return Err(CliError::usage(format!(
                        "--host: {host:?} is not a host name or address"
                    )));
                }
                self.host = Some(host);
            }
            Flag::Port => {
                let text = value(parser, "--port")?;
                let port = text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    CliError::usage(format!("--port: {text:?} is not a port number (1-65535)"))
                })?;
                self.port = Some(port);
            }
            Flag::Srv => self.srv = Some(non_empty(parser, "--srv")?),
            Flag::SrvDomain => self.srv_domain = Some(non_empty(parser, "--srv-domain")?),
            Flag::SrvRefresh => {
                self.srv_refresh = seconds(&value(parser, "--srv-refresh")?, "--srv-refresh")?
            }
            Flag::Ssl => self.ssl = true,
            Flag::SslCafile => self.ssl_cafile = Some(non_empty(parser, "--ssl_cafile")?.into()),
            Flag::SslCert => self.ssl_cert = Some(non_empty(parser, "--ssl_cert")?.into()),
            Flag::SslKey => self.ssl_key = Some(non_empty(parser, "--ssl_key")?.into()),
            Flag::SslPassphrase => self.ssl_passphrase = Some(value(parser, "--ssl_passphrase")?),
            Flag::Username => self.username = Some(non_empty(parser, "--username")?),
            Flag::Password => self.password = Some(value(parser, "--password")?),
            Flag::PasswordFile => {
                self.password_file = Some(non_empty(parser, "--password-file")?.into())
            }
            Flag::Timeout => {
                let d = seconds(&value(parser, "--timeout")?, "--timeout")?;
                self.connect_timeout = d;
                self.request_timeout = d;
            }
            Flag::WatchTimeout => {
                self.watch_timeout = seconds(&value(parser, "--watch-timeout")?, "--watch-timeout")?
            }
        }
        Ok(())
    }

    /// Whether https is the scheme for endpoints without one.
    fn wants_tls(&self) -> bool {
        self.ssl
            || self.ssl_cafile.is_some()
            || self.ssl_cert.is_some()
            || self.endpoints.iter().any(|e| e.starts_with("https://"))
    }

    /// The static endpoint list from --endpoints, --host/--port, or the defaults.
    fn static_endpoints(&self) -> Result<Vec<String>, CliError> {
        let scheme = if self.wants_tls() { "https" } else { "http" };
        if !self.endpoints.is_empty() {
            if self.host.is_some() || self.port.is_some() {
                return Err(CliError::usage(
                    "--endpoints cannot be combined with --host/--port; use one or the other",
                ));
            }
            return self
                .endpoints
                .iter()
                .map(|e| {
                    etcd::normalize_endpoint(e, scheme)
                        .map_err(|m| CliError::usage(format!("--endpoints: {m}")))
                })
                .collect();
        }
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(match self.port {
            Some(port) => vec![format!("{scheme}://{host}:{port}")],
            None => etcd::DEFAULT_ENDPOINTS
                .iter()
                .map(|e| {
                    let port = e.rsplit(':').next().unwrap_or("2379");
                    format!("{scheme}://{host}:{port}")
                })
                .collect(),
        })
    }

    fn credentials(&self) -> Result<Option<Credentials>, CliError> {
        let password = match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(CliError::usage(
                    "--password and --password-file: give only one",
                ))
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    CliError::usage(format!(
                        "--password-file {}: cannot read: {e}",
                        file.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
            (None, None) => None,
        };
        match (&self.username, password) {
            (Some(user), password) => Ok(Some(Credentials {
                user: user.clone(),
                password: password.unwrap_or_default(),
            })),
            (None, Some(_)) => Err(CliError::usage("--password needs --username")),
            (None, None) => Ok(None),
        }
    }

    /// Builds the client; every file named by a flag is read and checked here, at startup.
    pub fn client(&self) -> Result<Client, CliError> {
        let tls = self.tls()?;
        let (endpoints, discover) = match self.srv_record() {
            Some(_) if !self.endpoints.is_empty() => {
                return Err(CliError::usage(
                    "--srv/--srv-domain cannot be combined with --endpoints: both give the endpoints; use one or the other",
                ))
            }
            Some(record) => {
                let discover = srv_discovery(record.clone(), self.wants_tls());
                let endpoints = discover().map_err(|e| CliError {
                    code: super::exit::UNAVAILABLE,
                    message: e,
                })?;
                (endpoints, Some(discover))
            }
            None => (self.static_endpoints()?, None),
        };
        let credentials = self.credentials()?;
        let wants_tls = self.wants_tls();
        let srv_record = self.srv_record();
        // `auto` builds a client per API, each with its own discovery.
        let mut first_discover = discover;
        let options = || ClientOptions {
            endpoints: endpoints.clone(),
            discover: first_discover
                .take()
                .or_else(|| srv_record.clone().map(|r| srv_discovery(r, wants_tls))),
            rediscover_every: Some(self.srv_refresh),
            tls: tls.clone(),
            credentials: credentials.clone(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            watch_timeout: self.watch_timeout,
        };
        Client::connect(self.api()?, self.announce_api, options).map_err(CliError::from)
    }

    /// `--api`, else `$RECONFIG_API`, else `$ETCDCTL_API` (etcdctl's convention: 2 or 3),
    /// else auto.
    fn api(&self) -> Result<Api, CliError> {
        if let Some(api) = self.api {
            return Ok(api);
        }
        for variable in ["RECONFIG_API", "ETCDCTL_API"] {
            if let Some(text) = std::env::var_os(variable) {
                let text = text.to_string_lossy();
                return parse_api(&text).ok_or_else(|| {
                    CliError::usage(format!(
                        "${variable}: {text:?} is not one of 2, 3, v2, v3, auto; fix or unset it"
                    ))
                });
            }
        }
        Ok(Api::Auto)
    }

    fn tls(&self) -> Result<Option<ureq::tls::TlsConfig>, CliError> {
        let any_file = self.ssl_cafile.is_some()
            || self.ssl_cert.is_some()
            || self.ssl_key.is_some()
            || self.ssl_passphrase.is_some();
        if !self.wants_tls() && !any_file {
            return Ok(None);
        }
        let options = TlsOptions {
            ca_file: self.ssl_cafile.clone(),
            cert_file: self.ssl_cert.clone(),
            key_file: self.ssl_key.clone(),
            passphrase: self.ssl_passphrase.clone(),
        };
        tls::client_config(&options)
            .map(Some)
            .map_err(|e| CliError::usage(super::hints::tls_error(&e)))
    }

    /// The SRV record to resolve, from --srv or --srv-domain; it overrides --host/--port
    /// as in the original tool.
    fn srv_record(&self) -> Option<String> {
        match (&self.srv, &self.srv_domain) {
            (Some(record), _) => Some(record.clone()),
            (None, Some(domain)) => Some(srv::domain_record(domain, self.wants_tls())),
            (None, None) => None,
        }
    }
}

/// How often a daemon re-resolves its SRV record by default, so a cluster that moves is
/// followed.
const SRV_REDISCOVERY: Duration = Duration::from_secs(60);

/// Resolves `record` into endpoint URLs in RFC 2782 order (priority, then weighted random).
fn srv_discovery(record: String, tls: bool) -> etcd::Discover {
    let scheme = if tls { "https" } else { "http" };
    Box::new(move || {
        let targets = srv::lookup(&record, None).map_err(|e| e.to_string())?;
        Ok(srv::order_randomly(targets)
            .into_iter()
            .map(|t| format!("{scheme}://{}:{}", t.host, t.port))
            .collect())
    })
}

/// A connection flag, recognised before its value is read (lexopt's `Arg` borrows the
/// parser, so the value is read in a second step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Api,
    Endpoints,
    Host,
    Port,
    Srv,
    SrvDomain,
    SrvRefresh,
    Ssl,
    SslCafile,
    SslCert,
    SslKey,
    SslPassphrase,
    Username,
    Password,
    PasswordFile,
    Timeout,
    WatchTimeout,
}

/// `v2`/`2`, `v3`/`3` or `auto`.
fn parse_api(text: &str) -> Option<Api> {
    match text.trim() {
        "v2" | "2" => Some(Api::V2),
        "v3" | "3" => Some(Api::V3),
        "auto" => Some(Api::Auto),
        _ => None,
    }
}

/// Which connection flag `arg` is, if any. Underscore and hyphen spellings both work.
pub fn flag(arg: &lexopt::Arg) -> Option<Flag> {
    use lexopt::Arg::{Long, Short};
    Some(match arg {
        Short('s') => Flag::Ssl,
        Long(name) => match name.replace('-', "_").as_str() {
            "api" => Flag::Api,
            "endpoints" => Flag::Endpoints,
            "host" => Flag::Host,
            "port" => Flag::Port,
            "srv" => Flag::Srv,
            "srv_domain" => Flag::SrvDomain,
            "srv_refresh" => Flag::SrvRefresh,
            "ssl" => Flag::Ssl,
            "ssl_cafile" => Flag::SslCafile,
            "ssl_cert" => Flag::SslCert,
            "ssl_key" => Flag::SslKey,
            "ssl_passphrase" => Flag::SslPassphrase,
            "username" => Flag::Username,
            "password" => Flag::Password,
            "password_file" => Flag::PasswordFile,
            "timeout" => Flag::Timeout,
            "watch_timeout" => Flag::WatchTimeout,
            _ => return None,
        },
        _ => return None,
    })
}

fn non_empty(parser: &mut lexopt::Parser, flag: &str) -> Result<String, CliError> {
    let text = value(parser, flag)?;
    if text.trim().is_empty() {
        return Err(CliError::usage(format!("{flag} needs a non-empty value")));
    }
    Ok(text)
}
