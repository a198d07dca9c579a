//! Both binaries against a real etcd that requires TLS client certificates
//! (`--cert-file/--key-file/--client-cert-auth/--trusted-ca-file`), with certificates made
//! by the test: every key format, the refusals a user can meet, and every bad TLS flag.

mod support;

use support::stderr;
use support::stdout;

use serde_json::json;
use std::process::Output;
use std::time::Duration;
use support::certs::{Certs, TlsFiles, PASSPHRASE};
use support::daemon::{wait_content, Setup};
use support::{both_apis, run_bin, Api, Etcd};

const ETCD_UTIL: &str = env!("CARGO_BIN_EXE_etcd-util");
const RECONFIG: &str = support::daemon::RECONFIG;
const SECS: Duration = Duration::from_secs(10);

fn tls_etcd(api: Api, certs: &Certs) -> Etcd {
    Etcd::start_with_on(api, Some(&certs.server_tls()), Vec::new())
}

/// `etcd-util` with `conn` (connection flags) then `args`.
fn util(conn: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = conn.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    run_bin(ETCD_UTIL, &all, Duration::from_secs(20))
}

fn with_endpoint(etcd: &Etcd, tls_args: Vec<String>) -> Vec<String> {
    let mut conn = vec!["--endpoints".to_string(), etcd.url()];
    conn.extend(etcd.api_args());
    conn.extend(tls_args);
    conn
}

fn value_resource(setup: &Setup, key: &str) -> serde_json::Value {
    setup.template("v.tmpl", "value={{ reconfig.data[reconfig.watched] }}\n");
    json!({
        "id": "v",
        "key": key,
        "source": "v.tmpl",
        "target": setup.out("v.conf"),
    })
}

both_apis!(etcd_util_works_with_every_key_format);
fn etcd_util_works_with_every_key_format(api: Api) {
    let certs = Certs::generate();
    let etcd = tls_etcd(api, &certs);
    let rsa = |key, passphrase| TlsFiles {
        key: Some(key),
        passphrase,
        ..TlsFiles::CLIENT
    };
    let ec = |key| TlsFiles {
        cert: Some("client2.pem"),
        key: Some(key),
        ..TlsFiles::CLIENT
    };
    let variants = [
        rsa("client.key", None),
        rsa("client.pkcs1.key", None),
        rsa("client.pkcs8-encrypted.key", Some(PASSPHRASE)),
        rsa("client.legacy-encrypted.key", Some(PASSPHRASE)),
        ec("client2.key"),
        ec("client2.sec1.key"),
    ];
    for (i, files) in variants.iter().enumerate() {
        let key = files.key.unwrap_or_default();
        let conn = with_endpoint(&etcd, certs.flags(files));
        let value = format!("v{i}");
        let set = util(&conn, &["-o", "set", "-k", "/tls/k", "-v", &value]);
        assert_eq!(set.status.code(), Some(0), "{key}: {}", stderr(&set));
        let get = util(&conn, &["-k", "/tls/k"]);
        assert_eq!(get.status.code(), Some(0), "{key}: {}", stderr(&get));
        assert!(stdout(&get).contains(&value), "{key}: {}", stdout(&get));
    }
}

both_apis!(ssl_flag_makes_bare_endpoints_and_host_port_https);
fn ssl_flag_makes_bare_endpoints_and_host_port_https(api: Api) {
    let certs = Certs::generate();
    let etcd = tls_etcd(api, &certs);
    let port = etcd.client_port.to_string();
    let bare = format!("localhost:{port}");
    let mut by_endpoint = vec!["-s".to_string(), "--endpoints".to_string(), bare];
    by_endpoint.extend(etcd.api_args());
    by_endpoint.extend(certs.client_flags("client.key", None));
    let set = util(&by_endpoint, &["-o", "set", "-k", "/s/k", "-v", "one"]);
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let mut by_host = vec!["--ssl", "--host", "localhost", "--port", &port]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    by_host.extend(etcd.api_args());
    by_host.extend(certs.client_flags("client.key", None));
    let get = util(&by_host, &["-k", "/s/k"]);
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert!(stdout(&get).contains("one"));
}

both_apis!(reconfig_onetime_and_daemon_converge_over_tls);
fn reconfig_onetime_and_daemon_converge_over_tls(api: Api) {
    let certs = Certs::generate();
    let etcd = tls_etcd(api, &certs);
    let plain = with_endpoint(&etcd, certs.client_flags("client.key", None));
    util(&plain, &["-o", "set", "-k", "/app/v", "-v", "first"]);
    let setup = Setup::new();
    setup.resource("v", value_resource(&setup, "/app/v"));
    let target = setup.out("v.conf");

    let encrypted = certs.client_flags("client.legacy-encrypted.key", Some(PASSPHRASE));
    let encrypted: Vec<&str> = encrypted.iter().map(String::as_str).collect();
    let once = setup.onetime(&etcd, &encrypted);
    assert_eq!(once.status.code(), Some(0), "{}", stderr(&once));
    assert_eq!(support::read(&target).as_deref(), Some("value=first\n"));

    let pkcs8 = certs.client_flags("client.pkcs8-encrypted.key", Some(PASSPHRASE));
    let pkcs8: Vec<&str> = pkcs8.iter().map(String::as_str).collect();
    let daemon = setup.daemon(&etcd, &pkcs8);
    util(&plain, &["-o", "set", "-k", "/app/v", "-v", "second"]);
    assert!(
        wait_content(&target, "value=second\n", SECS),
        "{}",
        daemon.log_text()
    );
}

both_apis!(
    a_client_without_a_certificate_is_refused_with_a_clear_message,
    ignore_v3 = "v3 finding: a v3 POST writes its body after the TLS 1.3 handshake the server \
                 refuses, so the client sees 'Broken pipe', not the alert that names the missing \
                 client certificate"
);
fn a_client_without_a_certificate_is_refused_with_a_clear_message(api: Api) {
    let certs = Certs::generate();
    let etcd = tls_etcd(api, &certs);
    let conn = with_endpoint(&etcd, vec!["--ssl_cafile".into(), certs.arg("ca.pem")]);
    let out = util(&conn, &["-k", "/x"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains(&etcd.url()), "{message}");
    assert!(
        message.contains("requires a client certificate (pass --ssl_cert and --ssl_key)"),
        "{message}"
    );

    let setup = Setup::new();
    setup.resource("v", value_resource(&setup, "/x"));
    let cafile = certs.arg("ca.pem");
    let once = setup.onetime(&etcd, &["--ssl_cafile", &cafile]);
    assert_eq!(once.status.code(), Some(3), "{}", stderr(&once));
    assert!(
        stderr(&once).contains("requires a client certificate (pass --ssl_cert and --ssl_key)"),
        "reconfig's log gives the flags to pass, as etcd-util does: {}",
        stderr(&once)
    );
}

both_apis!(server_verification_failures_name_the_endpoint_and_the_reason);
fn server_verification_failures_name_the_endpoint_and_the_reason(api: Api) {
    let certs = Certs::generate();
    let etcd = tls_etcd(api, &certs);
    let other_ca = TlsFiles {
        ca: Some("other-ca.pem"),
        ..TlsFiles::CLIENT
    };
    // No --ssl_cafile: the built-in web roots do not know the test CA either.
    let web_roots = TlsFiles {
        ca: None,
        ..TlsFiles::CLIENT
    };
    for files in [other_ca, web_roots] {
        let out = util(&with_endpoint(&etcd, certs.flags(&files)), &["-k", "/x"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains(&etcd.url()), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("signed by an unknown CA (pass --ssl_cafile)"),
            "{}",
            stderr(&out)
        );
    }

    let misnamed =
        Etcd::start_with_on(api, Some(&certs.server_tls_named("wrong-name")), Vec::new());
    let out = util(
        &with_endpoint(&misnamed, certs.client_flags("client.key", None)),
        &["-k", "/x"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&misnamed.url()), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("certificate name mismatch")
            && stderr(&out).contains("etcd.elsewhere.test"),
        "{}",
        stderr(&out)
    );

    let expired = Etcd::start_with_on(api, Some(&certs.server_tls_named("expired")), Vec::new());
    let out = util(
        &with_endpoint(&expired, certs.client_flags("client.key", None)),
        &["-k", "/x"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&expired.url()), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("certificate expired"),
        "{}",
        stderr(&out)
    );
}

/// Every bad TLS input stops both binaries before any request, naming the flag and the file.
#[test]
fn bad_tls_files_are_refused_at_startup_naming_flag_and_file() {
    let certs = Certs::generate();
    let missing = certs.arg("nope.pem");
    let with = |files: TlsFiles| certs.flags(&files);
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            with(TlsFiles {
                ca: Some("nope.pem"),
                ..TlsFiles::CLIENT
            }),
            vec![format!("--ssl_cafile {missing}: cannot read")],
        ),
        (
            with(TlsFiles {
                cert: Some("nope.pem"),
                ..TlsFiles::CLIENT
            }),
            vec![format!("--ssl_cert {missing}: cannot read")],
        ),
        (
            with(TlsFiles {
                key: Some("nope.pem"),
                ..TlsFiles::CLIENT
            }),
            vec![format!("--ssl_key {missing}: cannot read")],
        ),
        (
            certs.client_flags("client.pkcs8-encrypted.key", Some("wrong")),
            vec![format!(
                "--ssl_passphrase: wrong passphrase for key {}",
                certs.arg("client.pkcs8-encrypted.key")
            )],
        ),
        (
            certs.client_flags("client.legacy-encrypted.key", Some("wrong")),
            vec![format!(
                "--ssl_passphrase: wrong passphrase for key {}",
                certs.arg("client.legacy-encrypted.key")
            )],
        ),
        (
            certs.client_flags("client.pkcs8-encrypted.key", None),
            vec![
                format!("--ssl_key {}", certs.arg("client.pkcs8-encrypted.key")),
                "--ssl_passphrase".to_string(),
            ],
        ),
        (
            certs.client_flags("client2.key", None),
            vec![format!(
                "--ssl_key {}: key does not match the certificate in {}",
                certs.arg("client2.key"),
                certs.arg("client.pem")
            )],
        ),
        (
            with(TlsFiles {
                ca: Some("client.key"),
                ..TlsFiles::CLIENT
            }),
            vec![format!(
                "--ssl_cafile {}: no certificate found",
                certs.arg("client.key")
            )],
        ),
    ];
    for (tls, expected) in cases {
        // Port 9 (discard) is never reached: the check happens before any connection.
        let mut conn = vec!["--endpoints".to_string(), "https://127.0.0.1:9".to_string()];
        conn.extend(tls);
        let out = util(&conn, &["-k", "/x"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "etcd-util {conn:?}: {}",
            stderr(&out)
        );
        let setup = Setup::new();
        setup.resource("v", value_resource(&setup, "/x"));
        let mut args = vec![
            "--cfgdir".to_string(),
            setup.cfgdir().display().to_string(),
            "--onetime".to_string(),
        ];
        args.extend(conn.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = run_bin(RECONFIG, &args, Duration::from_secs(20));
        assert_eq!(
            daemon.status.code(),
            Some(1),
            "reconfig {conn:?}: {}",
            stderr(&daemon)
        );
        for text in &expected {
            assert!(
                stderr(&out).contains(text.as_str()),
                "etcd-util: want {text:?} in {}",
                stderr(&out)
            );
            assert!(
                stderr(&daemon).contains(text.as_str()),
                "reconfig: want {text:?} in {}",
                stderr(&daemon)
            );
        }
    }
}
