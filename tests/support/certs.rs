//! Test PKI made with the `openssl` command line in a temp dir: a CA, a server certificate
//! for `localhost`/127.0.0.1 (EKU serverAuth + clientAuth, which etcd's gateway needs under
//! `--client-cert-auth`), a client certificate with its key in every format the client
//! loads (client2 is an EC key, also as SEC1), and a few bad files (another CA, a mismatched key, an expired server cert).

use super::ServerTls;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The passphrase of the encrypted client keys.
pub const PASSPHRASE: &str = "secret";

const SERVER_EXT: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
     extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n";
const WRONG_NAME_EXT: &str = "subjectAltName=DNS:etcd.elsewhere.test\n\
     extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n";
const CLIENT_EXT: &str = "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n";

/// File names in the [`Certs`] dir to pass as TLS flags.
#[derive(Clone, Copy)]
pub struct TlsFiles<'a> {
    pub ca: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
    pub passphrase: Option<&'a str>,
}

impl TlsFiles<'_> {
    /// The CA plus the RSA client certificate and its plain PKCS#8 key.
    pub const CLIENT: TlsFiles<'static> = TlsFiles {
        ca: Some("ca.pem"),
        cert: Some("client.pem"),
        key: Some("client.key"),
        passphrase: None,
    };
}

pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    /// Makes every file; takes well under a second (EC keys, one RSA client key).
    pub fn generate() -> Certs {
        let certs = Certs {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        certs.self_signed_ca("ca", "test-ca");
        certs.self_signed_ca("other-ca", "other-ca");
        certs.signed("server", "localhost", "ec", SERVER_EXT, "3650");
        certs.signed("wrong-name", "elsewhere", "ec", WRONG_NAME_EXT, "3650");
        certs.signed("expired", "localhost", "ec", SERVER_EXT, "-1");
        certs.signed("client", "client", "rsa:2048", CLIENT_EXT, "3650");
        certs.signed("client2", "client2", "ec", CLIENT_EXT, "3650");
        certs.openssl(&[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "client.key",
            "-out",
            "client.pkcs8-encrypted.key",
            "-passout",
            "pass:secret",
        ]);
        certs.openssl(&[
            "rsa",
            "-aes256",
            "-traditional",
            "-in",
            "client.key",
            "-out",
            "client.legacy-encrypted.key",
            "-passout",
            "pass:secret",
        ]);
        certs.openssl(&[
            "rsa",
            "-traditional",
            "-in",
            "client.key",
            "-out",
            "client.pkcs1.key",
        ]);
        certs.openssl(&["ec", "-in", "client2.key", "-out", "client2.sec1.key"]);
        certs
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path as a command-line argument.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The files an etcd with `--client-cert-auth` needs, for [`super::Etcd::start_with`].
    pub fn server_tls(&self) -> ServerTls {
        self.server_tls_named("server")
    }

    /// Like [`Certs::server_tls`] with another server certificate (`wrong-name`, `expired`).
    pub fn server_tls_named(&self, base: &str) -> ServerTls {
        ServerTls {
            cert: self.path(&format!("{base}.pem")),
            key: self.path(&format!("{base}.key")),
            ca: self.path("ca.pem"),
        }
    }

    /// TLS flags for files of this PKI, by file name: `--ssl_cafile`, `--ssl_cert`,
    /// `--ssl_key` and `--ssl_passphrase`, each only when given.
    pub fn flags(&self, files: &TlsFiles) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, file) in [
            ("--ssl_cafile", files.ca),
            ("--ssl_cert", files.cert),
            ("--ssl_key", files.key),
        ] {
            if let Some(name) = file {
                args.extend([flag.to_string(), self.arg(name)]);
            }
        }
        if let Some(pass) = files.passphrase {
            args.extend(["--ssl_passphrase".to_string(), pass.to_string()]);
        }
        args
    }

    /// The CA, the client certificate and `key` (RSA, the same key in several formats).
    pub fn client_flags(&self, key: &str, passphrase: Option<&str>) -> Vec<String> {
        self.flags(&TlsFiles {
            key: Some(key),
            passphrase,
            ..TlsFiles::CLIENT
        })
    }

    fn self_signed_ca(&self, base: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{base}.key"),
            "-out",
            &format!("{base}.pem"),
            "-days",
            "3650",
            "-subj",
            &format!("/CN={cn}"),
        ]);
    }

    /// `<base>.key` + `<base>.pem` signed by `ca`, valid for `days` (negative: expired).
    fn signed(&self, base: &str, cn: &str, key_type: &str, ext: &str, days: &str) {
        let ext_file = format!("{base}.ext");
        std::fs::write(self.path(&ext_file), ext).expect("ext file");
        let mut newkey = vec!["-newkey", key_type];
        if key_type == "ec" {
            newkey.extend(["-pkeyopt", "ec_paramgen_curve:prime256v1"]);
        }
        let (key, csr) = (format!("{base}.key"), format!("{base}.csr"));
        let mut req = vec!["req"];
        req.extend(newkey);
        req.extend(["-nodes", "-keyout", &key, "-out", &csr]);
        let subject = format!("/CN={cn}");
        req.extend(["-subj", &subject]);
        self.openssl(&req);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{base}.pem"),
            "-days",
            days,
            "-extfile",
            &ext_file,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        run_openssl(self.dir.path(), args);
    }
}

fn run_openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cannot run openssl (make test installs it)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
