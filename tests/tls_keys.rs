//! TLS client configuration against keys and certificates made by `openssl`, and live handshakes
//! with `openssl s_server` as the peer.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use reconfig::cli::hints::{tls_error, tls_failure};
use reconfig::tls::{client_config, explain, TlsOptions};

const PASS: &str = "secret";

/// Certificates and keys shared by every test in this file, made once.
fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tls_keys");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        make_certs(&dir);
        dir
    })
}

/// Runs `openssl` in `dir` with the whitespace-separated `command_line`.
fn openssl(dir: &Path, command_line: &str) {
    let args: Vec<&str> = command_line.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {command_line} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const EC_KEY: &str = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1";

/// Makes `name.key` with `keygen` and signs a certificate `name.pem` for it with `ca`.
fn issue(dir: &Path, name: &str, keygen: &str, ca: &str, ext: &str, days: i32) {
    openssl(dir, &format!("{keygen} -out {name}.key"));
    openssl(
        dir,
        &format!("req -new -key {name}.key -out {name}.csr -subj /CN={name}"),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
             -out {name}.pem -days {days} -extfile {ext}"
        ),
    );
}

fn make_certs(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &format!(
                "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout {ca}.key -out {ca}.pem -days 3650 -subj /CN={ca}"
            ),
        );
    }
    let server_ext =
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";
    write(dir, "server.ext", server_ext);
    write(
        dir,
        "dns-only.ext",
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    write(dir, "client.ext", "extendedKeyUsage=clientAuth\n");

    issue(dir, "server", EC_KEY, "ca", "server.ext", 3650);
    issue(dir, "dns-only", EC_KEY, "ca", "dns-only.ext", 3650);
    // -days -1 puts notAfter one day before now: an expired certificate.
    issue(dir, "expired", EC_KEY, "ca", "server.ext", -1);
    // A client certificate from a CA the server does not trust.
    issue(dir, "stranger", EC_KEY, "other-ca", "client.ext", 3650);

    // RSA client: PKCS#8 plain, then every other encoding of the same key.
    let rsa_key = "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048";
    issue(dir, "rsa", rsa_key, "ca", "client.ext", 3650);
    let pass = format!("-passout pass:{PASS}");
    openssl(dir, "rsa -traditional -in rsa.key -out rsa-pkcs1.key");
    openssl(
        dir,
        &format!("pkcs8 -topk8 -v2 aes-256-cbc -in rsa.key -out rsa-enc-pkcs8.key {pass}"),
    );
    openssl(
        dir,
        &format!(
            "pkcs8 -topk8 -v2 des3 -v2prf hmacWithSHA1 -in rsa.key \
             -out rsa-enc-pkcs8-des3-sha1.key {pass}"
        ),
    );
    openssl(
        dir,
        &format!("rsa -aes256 -traditional -in rsa.key -out rsa-legacy-aes.key {pass}"),
    );
    openssl(
        dir,
        &format!("rsa -aes128 -traditional -in rsa.key -out rsa-legacy-aes128.key {pass}"),
    );
    openssl(
        dir,
        &format!("rsa -des3 -traditional -in rsa.key -out rsa-legacy-des3.key {pass}"),
    );

    // EC client: SEC1 (with an EC PARAMETERS block first), PKCS#8 and legacy-encrypted SEC1.
    issue(
        dir,
        "ec",
        "ecparam -name prime256v1 -genkey",
        "ca",
        "client.ext",
        3650,
    );
    openssl(dir, "pkcs8 -topk8 -nocrypt -in ec.key -out ec-pkcs8.key");
    openssl(
        dir,
        &format!("ec -aes256 -in ec.key -out ec-legacy-aes.key {pass}"),
    );
}

fn path(name: &str) -> PathBuf {
    certs().join(name)
}

fn opts(ca: Option<&str>, cert: Option<&str>, key: Option<&str>, pass: Option<&str>) -> TlsOptions {
    TlsOptions {
        ca_file: ca.map(path),
        cert_file: cert.map(path),
        key_file: key.map(path),
        passphrase: pass.map(str::to_string),
    }
}

/// (certificate, key, passphrase) for every key encoding we accept.
const CLIENT_KEYS: &[(&str, &str, Option<&str>)] = &[
    ("rsa.pem", "rsa.key", None),
    ("rsa.pem", "rsa-pkcs1.key", None),
    ("rsa.pem", "rsa-enc-pkcs8.key", Some(PASS)),
    ("rsa.pem", "rsa-enc-pkcs8-des3-sha1.key", Some(PASS)),
    ("rsa.pem", "rsa-legacy-aes.key", Some(PASS)),
    ("rsa.pem", "rsa-legacy-aes128.key", Some(PASS)),
    ("rsa.pem", "rsa-legacy-des3.key", Some(PASS)),
    ("ec.pem", "ec.key", None),
    ("ec.pem", "ec-pkcs8.key", None),
    ("ec.pem", "ec-legacy-aes.key", Some(PASS)),
];

fn error_of(opts: &TlsOptions) -> String {
    match client_config(opts) {
        Ok(_) => panic!("expected an error for {opts:?}"),
        // What the binaries print: the setting named by its flag.
        Err(err) => tls_error(&err),
    }
}

#[test]
fn every_key_encoding_loads() {
    for (cert, key, pass) in CLIENT_KEYS {
        let result = client_config(&opts(Some("ca.pem"), Some(cert), Some(key), *pass));
        assert!(result.is_ok(), "{key}: {}", result.err().unwrap());
    }
}

#[test]
fn a_passphrase_on_a_plain_key_is_harmless() {
    assert!(client_config(&opts(None, Some("rsa.pem"), Some("rsa.key"), Some(PASS))).is_ok());
}

#[test]
fn encrypted_key_without_passphrase_asks_for_it() {
    for key in [
        "rsa-enc-pkcs8.key",
        "rsa-legacy-aes.key",
        "rsa-legacy-des3.key",
        "ec-legacy-aes.key",
    ] {
        let msg = error_of(&opts(None, Some("rsa.pem"), Some(key), None));
        let expected = format!(
            "--ssl_key {}: key is encrypted: pass --ssl_passphrase",
            path(key).display()
        );
        assert_eq!(msg, expected);
    }
}

#[test]
fn wrong_passphrase_is_reported_as_such_for_every_encryption() {
    let keys = [
        ("rsa.pem", "rsa-enc-pkcs8.key"),
        ("rsa.pem", "rsa-enc-pkcs8-des3-sha1.key"),
        ("rsa.pem", "rsa-legacy-aes.key"),
        ("rsa.pem", "rsa-legacy-aes128.key"),
        ("rsa.pem", "rsa-legacy-des3.key"),
        ("ec.pem", "ec-legacy-aes.key"),
    ];
    // Many passphrases, so a wrong one that survives the padding check by chance is covered too.
    for attempt in 0..40 {
        let wrong = format!("wrong{attempt}");
        for (cert, key) in keys {
            let msg = error_of(&opts(None, Some(cert), Some(key), Some(&wrong)));
            let expected = format!(
                "--ssl_passphrase: wrong passphrase for key {}",
                path(key).display()
            );
            assert_eq!(msg, expected, "passphrase {wrong}");
        }
    }
}

#[test]
fn key_of_another_certificate_is_rejected() {
    let msg = error_of(&opts(None, Some("rsa.pem"), Some("ec.key"), None));
    let expected = format!(
        "--ssl_key {}: key does not match the certificate in {} (--ssl_cert)",
        path("ec.key").display(),
        path("rsa.pem").display()
    );
    assert_eq!(msg, expected);
    let msg = error_of(&opts(
        None,
        Some("ec.pem"),
        Some("rsa-legacy-aes.key"),
        Some(PASS),
    ));
    assert!(msg.contains("key does not match the certificate"), "{msg}");
}

#[test]
fn ca_file_without_certificate_is_rejected() {
    let msg = error_of(&opts(Some("rsa.key"), None, None, None));
    assert!(
        msg.starts_with(&format!(
            "--ssl_cafile {}: no certificate found",
            path("rsa.key").display()
        )),
        "{msg}"
    );
}

#[test]
fn cert_file_without_certificate_is_rejected() {
    let msg = error_of(&opts(None, Some("rsa.key"), Some("rsa.key"), None));
    assert!(
        msg.starts_with(&format!(
            "--ssl_cert {}: no certificate found",
            path("rsa.key").display()
        )),
        "{msg}"
    );
}

#[test]
fn key_file_without_key_is_rejected() {
    let msg = error_of(&opts(None, Some("rsa.pem"), Some("rsa.pem"), None));
    assert!(
        msg.starts_with(&format!(
            "--ssl_key {}: no private key found",
            path("rsa.pem").display()
        )),
        "{msg}"
    );
}

#[test]
fn cert_without_key_and_key_without_cert_are_rejected() {
    let msg = error_of(&opts(None, Some("rsa.pem"), None, None));
    assert!(
        msg.contains("client certificate given without its key (pass --ssl_key)"),
        "{msg}"
    );
    let msg = error_of(&opts(None, None, Some("rsa.key"), None));
    assert!(
        msg.contains("key given without its client certificate (pass --ssl_cert)"),
        "{msg}"
    );
}

#[test]
fn missing_files_name_their_flag() {
    let msg = error_of(&opts(None, Some("rsa.pem"), Some("absent.key"), None));
    assert!(
        msg.starts_with(&format!(
            "--ssl_key {}: cannot read:",
            path("absent.key").display()
        )),
        "{msg}"
    );
    let msg = error_of(&opts(None, Some("absent.pem"), Some("rsa.key"), None));
    assert!(
        msg.starts_with(&format!(
            "--ssl_cert {}: cannot read:",
            path("absent.pem").display()
        )),
        "{msg}"
    );
}

/// An `openssl s_server` on 127.0.0.1 that requires a client certificate from `ca.pem`.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(cert: &str, key: &str) -> TlsServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                cert,
                "-key",
                key,
            ])
            .args([
                "-CAfile",
                "ca.pem",
                "-Verify",
                "1",
                "-verify_return_error",
                "-www",
                "-quiet",
            ])
            .current_dir(certs())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = TlsServer { child, port };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "openssl s_server did not start on port {}",
                self.port
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, host: &str, opts: &TlsOptions) -> Result<String, ureq::Error> {
        let tls = client_config(opts).unwrap();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        let agent: ureq::Agent = config.into();
        let mut body = String::new();
        let mut resp = agent.get(format!("https://{host}:{}/", self.port)).call()?;
        resp.body_mut().as_reader().read_to_string(&mut body)?;
        Ok(body)
    }

    fn explained_failure(&self, host: &str, opts: &TlsOptions) -> String {
        match self.get(host, opts) {
            Ok(_) => panic!("request to {host} with {opts:?} should fail"),
            Err(err) => {
                let explained =
                    explain(&err, true).unwrap_or_else(|| panic!("no TLS explanation for {err:?}"));
                // What the binaries print: the reason with the flags that fix it.
                tls_failure(&explained)
            }
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn handshake_succeeds_with_every_key_encoding() {
    let server = TlsServer::start("server.pem", "server.key");
    for (cert, key, pass) in CLIENT_KEYS {
        let body = server
            .get(
                "127.0.0.1",
                &opts(Some("ca.pem"), Some(cert), Some(key), *pass),
            )
            .unwrap_or_else(|err| panic!("{key}: {err}"));
        assert!(body.contains("s_server"), "{key}: unexpected body {body}");
    }
}

#[test]
fn missing_client_certificate_is_explained() {
    let server = TlsServer::start("server.pem", "server.key");
    let reason = server.explained_failure("127.0.0.1", &opts(Some("ca.pem"), None, None, None));
    assert_eq!(
        reason,
        "the server requires a client certificate (pass --ssl_cert and --ssl_key)"
    );
}

#[test]
fn client_certificate_from_an_untrusted_ca_is_explained() {
    let server = TlsServer::start("server.pem", "server.key");
    let opts = opts(
        Some("ca.pem"),
        Some("stranger.pem"),
        Some("stranger.key"),
        None,
    );
    let reason = server.explained_failure("127.0.0.1", &opts);
    assert!(
        reason.starts_with("the server refused our client certificate (UnknownCA)"),
        "{reason}"
    );
}

#[test]
fn unknown_server_ca_is_explained() {
    let server = TlsServer::start("server.pem", "server.key");
    let wrong_ca = opts(Some("other-ca.pem"), Some("ec.pem"), Some("ec.key"), None);
    let reason = server.explained_failure("127.0.0.1", &wrong_ca);
    assert_eq!(
        reason,
        "certificate signed by an unknown CA (pass --ssl_cafile)"
    );
    let default_roots = opts(None, Some("ec.pem"), Some("ec.key"), None);
    let reason = server.explained_failure("127.0.0.1", &default_roots);
    assert_eq!(
        reason,
        "certificate signed by an unknown CA (pass --ssl_cafile)"
    );
}

#[test]
fn name_mismatch_is_explained() {
    // This certificate names only DNS:localhost, and we connect to the IP address.
    let server = TlsServer::start("dns-only.pem", "dns-only.key");
    let reason = server.explained_failure(
        "127.0.0.1",
        &opts(Some("ca.pem"), Some("ec.pem"), Some("ec.key"), None),
    );
    assert_eq!(
        reason,
        "certificate name mismatch: connected to 127.0.0.1 but the certificate is for localhost"
    );
}

#[test]
fn expired_server_certificate_is_explained() {
    let server = TlsServer::start("expired.pem", "expired.key");
    let reason = server.explained_failure(
        "127.0.0.1",
        &opts(Some("ca.pem"), Some("ec.pem"), Some("ec.key"), None),
    );
    assert_eq!(reason, "certificate expired");
}
