//! Private-key PEM loading: plain PKCS#8 / PKCS#1 / SEC1, encrypted PKCS#8, and OpenSSL's
//! legacy `Proc-Type: 4,ENCRYPTED` PEM encryption. rustls reads only the plain forms, so the
//! encrypted ones are decrypted here into the DER of a plain form.

use std::fmt;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use super::legacy_pem::{self, LegacyError};

/// The three plain key encodings rustls understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    Pkcs8,
    Pkcs1,
    Sec1,
}

impl KeyKind {
    fn from_label(label: &str) -> Option<KeyKind> {
        match label {
            "PRIVATE KEY" => Some(KeyKind::Pkcs8),
            "RSA PRIVATE KEY" => Some(KeyKind::Pkcs1),
            "EC PRIVATE KEY" => Some(KeyKind::Sec1),
            _ => None,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            KeyKind::Pkcs8 => "PRIVATE KEY",
            KeyKind::Pkcs1 => "RSA PRIVATE KEY",
            KeyKind::Sec1 => "EC PRIVATE KEY",
        }
    }
}

/// A private key in plain DER form, ready for rustls.
pub(super) struct LoadedKey {
    pub(super) kind: KeyKind,
    pub(super) der: Vec<u8>,
    /// The key was decrypted with the passphrase (so a key rustls cannot parse means a wrong one).
    pub(super) was_encrypted: bool,
}

impl LoadedKey {
    pub(super) fn to_rustls(&self) -> PrivateKeyDer<'static> {
        let der = self.der.clone();
        match self.kind {
            KeyKind::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            KeyKind::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            KeyKind::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        }
    }
}

/// Why a key file could not be loaded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum KeyProblem {
    NoKey,
    Unterminated(String),
    BadBase64(String),
    Unsupported(String),
    NeedsPassphrase,
    WrongPassphrase,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::NoKey => {
                write!(
                    f,
                    "no private key found (expected a PEM \"BEGIN ... PRIVATE KEY\" block)"
                )
            }
            KeyProblem::Unterminated(label) => write!(f, "PEM block \"{label}\" has no END line"),
            KeyProblem::BadBase64(err) => write!(f, "PEM key block is not valid base64: {err}"),
            KeyProblem::Unsupported(what) => write!(
                f,
                "{what} is not supported (convert it: openssl pkcs8 -topk8 -in KEY -out NEW)"
            ),
            KeyProblem::NeedsPassphrase => {
                write!(f, "key is encrypted and no passphrase was given")
            }
            KeyProblem::WrongPassphrase => write!(f, "wrong passphrase"),
        }
    }
}

/// One `-----BEGIN label-----` ... `-----END label-----` block with its RFC 1421 headers.
struct PemBlock {
    label: String,
    headers: Vec<(String, String)>,
    base64: String,
}

impl PemBlock {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Decodes the base64 body (headers removed, lines re-wrapped for the strict RFC 7468 decoder).
    fn der(&self) -> Result<Vec<u8>, KeyProblem> {
        let mut pem = format!("-----BEGIN {}-----\n", self.label);
        for line in self.base64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {}-----\n", self.label));
        pem_rfc7468::decode_vec(pem.as_bytes())
            .map(|(_, der)| der)
            .map_err(|err| KeyProblem::BadBase64(err.to_string()))
    }
}

fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, KeyProblem> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut block = PemBlock {
            label: label.to_string(),
            headers: Vec::new(),
            base64: String::new(),
        };
        let mut terminated = false;
        for line in lines.by_ref() {
            if line == end {
                terminated = true;
                break;
            }
            match line.split_once(':') {
                Some((name, value)) if block.base64.is_empty() => {
                    block
                        .headers
                        .push((name.trim().to_string(), value.trim().to_string()));
                }
                _ => block.base64.push_str(line),
            }
        }
        if !terminated {
            return Err(KeyProblem::Unterminated(block.label));
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// Finds the private key in `text` (other blocks, such as `EC PARAMETERS`, are skipped) and
/// returns it in plain DER form, decrypting it with `passphrase` when it is encrypted.
pub(super) fn load(text: &str, passphrase: Option<&str>) -> Result<LoadedKey, KeyProblem> {
    let blocks = pem_blocks(text)?;
    let block = blocks
        .iter()
        .find(|block| block.label.ends_with("PRIVATE KEY"))
        .ok_or(KeyProblem::NoKey)?;
    if block.label == "ENCRYPTED PRIVATE KEY" {
        let passphrase = passphrase.ok_or(KeyProblem::NeedsPassphrase)?;
        return decrypt_pkcs8(&block.der()?, passphrase);
    }
    let kind = KeyKind::from_label(&block.label)
        .ok_or_else(|| KeyProblem::Unsupported(format!("key type \"{}\"", block.label)))?;
    match block.header("Proc-Type") {
        Some(proc_type) if proc_type.contains("ENCRYPTED") => {
            let passphrase = passphrase.ok_or(KeyProblem::NeedsPassphrase)?;
            let dek_info = block.header("DEK-Info").unwrap_or_default();
            let der = legacy_pem::decrypt(dek_info, passphrase.as_bytes(), &block.der()?).map_err(
                |err| match err {
                    LegacyError::WrongPassphrase => KeyProblem::WrongPassphrase,
                    LegacyError::Unsupported(what) => KeyProblem::Unsupported(what),
                },
            )?;
            Ok(LoadedKey {
                kind,
                der,
                was_encrypted: true,
            })
        }
        _ => Ok(LoadedKey {
            kind,
            der: block.der()?,
            was_encrypted: false,
        }),
    }
}

fn decrypt_pkcs8(der: &[u8], passphrase: &str) -> Result<LoadedKey, KeyProblem> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|err| KeyProblem::Unsupported(format!("encrypted PKCS#8 structure ({err})")))?;
    let plain = info.decrypt(passphrase).map_err(|err| match err {
        // A wrong passphrase usually breaks the padding; if the padding survives by chance,
        // the plaintext is not DER.
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed)
        | pkcs8::Error::Asn1(_) => KeyProblem::WrongPassphrase,
        other => KeyProblem::Unsupported(format!("encryption scheme ({other})")),
    })?;
    Ok(LoadedKey {
        kind: KeyKind::Pkcs8,
        der: plain.as_bytes().to_vec(),
        was_encrypted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN_BODY: &str = "MAMCAQA="; // DER 30 03 02 01 00

    #[test]
    fn finds_the_key_after_other_blocks() {
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
             -----BEGIN EC PRIVATE KEY-----\n{PLAIN_BODY}\n-----END EC PRIVATE KEY-----\n"
        );
        let key = load(&text, None).unwrap();
        assert_eq!(key.kind, KeyKind::Sec1);
        assert_eq!(key.der, [0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(!key.was_encrypted);
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        let text =
            format!("-----BEGIN PRIVATE KEY-----\r\n{PLAIN_BODY}\r\n-----END PRIVATE KEY-----\r\n");
        assert_eq!(load(&text, None).unwrap().kind, KeyKind::Pkcs8);
    }

    #[test]
    fn legacy_encrypted_key_without_passphrase_asks_for_one() {
        let text = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\n{PLAIN_BODY}\n\
             -----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(load(&text, None).err(), Some(KeyProblem::NeedsPassphrase));
    }

    #[test]
    fn certificate_only_file_has_no_key() {
        let text = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
        assert_eq!(load(text, None).err(), Some(KeyProblem::NoKey));
        assert_eq!(load("", None).err(), Some(KeyProblem::NoKey));
    }

    #[test]
    fn openssh_keys_are_reported_as_unsupported() {
        let text =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nMAMCAQA=\n-----END OPENSSH PRIVATE KEY-----\n";
        let problem = load(text, None).err().unwrap();
        assert!(
            problem.to_string().contains("OPENSSH PRIVATE KEY"),
            "{problem}"
        );
    }

    #[test]
    fn missing_end_line_is_reported() {
        let text = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n";
        assert_eq!(
            load(text, None).err(),
            Some(KeyProblem::Unterminated("PRIVATE KEY".to_string()))
        );
    }
}
