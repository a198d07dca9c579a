//! OpenSSL's legacy PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info: CIPHER,HEXIV`), still
//! written by `openssl rsa -aes256 -traditional` and older tools.
//!
//! The key is OpenSSL's `EVP_BytesToKey` with MD5, one iteration, and the first 8 bytes of the IV
//! as salt; the body is CBC with PKCS#7 padding. No maintained crate does only this.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use md5::{Digest, Md5};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum LegacyError {
    WrongPassphrase,
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CbcCipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
}

impl CbcCipher {
    fn from_name(name: &str) -> Option<CbcCipher> {
        match name.to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Some(CbcCipher::Aes128),
            "AES-192-CBC" => Some(CbcCipher::Aes192),
            "AES-256-CBC" => Some(CbcCipher::Aes256),
            "DES-EDE3-CBC" => Some(CbcCipher::DesEde3),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            CbcCipher::Aes128 => 16,
            CbcCipher::Aes192 | CbcCipher::DesEde3 => 24,
            CbcCipher::Aes256 => 32,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            CbcCipher::DesEde3 => 8,
            _ => 16,
        }
    }
}

/// Decrypts the body of a legacy encrypted PEM block given its `DEK-Info` header value.
/// Returns the plain DER; a wrong passphrase is detected by bad padding or non-DER output.
pub(super) fn decrypt(
    dek_info: &str,
    passphrase: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, LegacyError> {
    let (cipher, iv) = parse_dek_info(dek_info)?;
    let key = bytes_to_key(passphrase, &iv[..8], cipher.key_len());
    let plain = match cipher {
        CbcCipher::Aes128 => cbc_decrypt::<cbc::Decryptor<aes::Aes128>>(&key, &iv, ciphertext),
        CbcCipher::Aes192 => cbc_decrypt::<cbc::Decryptor<aes::Aes192>>(&key, &iv, ciphertext),
        CbcCipher::Aes256 => cbc_decrypt::<cbc::Decryptor<aes::Aes256>>(&key, &iv, ciphertext),
        CbcCipher::DesEde3 => cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(&key, &iv, ciphertext),
    }
    .ok_or(LegacyError::WrongPassphrase)?;
    match is_one_der_sequence(&plain) {
        true => Ok(plain),
        false => Err(LegacyError::WrongPassphrase),
    }
}

fn parse_dek_info(dek_info: &str) -> Result<(CbcCipher, Vec<u8>), LegacyError> {
    let unsupported = || LegacyError::Unsupported(format!("legacy PEM encryption \"{dek_info}\""));
    let (name, iv_hex) = dek_info.split_once(',').ok_or_else(unsupported)?;
    let cipher = CbcCipher::from_name(name.trim()).ok_or_else(unsupported)?;
    let iv = decode_hex(iv_hex.trim()).ok_or_else(unsupported)?;
    match iv.len() == cipher.iv_len() {
        true => Ok((cipher, iv)),
        false => Err(unsupported()),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// OpenSSL `EVP_BytesToKey(cipher, MD5, salt, passphrase, count = 1)`, key part only.
fn bytes_to_key(passphrase: &[u8], salt: &[u8], key_len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(key_len + 16);
    let mut previous: Vec<u8> = Vec::new();
    while key.len() < key_len {
        let digest = Md5::new()
            .chain_update(&previous)
            .chain_update(passphrase)
            .chain_update(salt)
            .finalize();
        key.extend_from_slice(&digest);
        previous = digest.to_vec();
    }
    key.truncate(key_len);
    key
}

fn cbc_decrypt<D: KeyIvInit + BlockModeDecrypt>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Option<Vec<u8>> {
    D::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(data)
        .ok()
}

/// True when `data` is exactly one DER SEQUENCE (tag 0x30 and a length covering the rest), as
/// every private key structure is. Garbage from a wrong passphrase almost never is.
fn is_one_der_sequence(data: &[u8]) -> bool {
    let [0x30, first_len, rest @ ..] = data else {
        return false;
    };
    let (content_len, header_rest) = match *first_len {
        short @ 0..=0x7f => (usize::from(short), rest),
        0x81..=0x84 => {
            let count = usize::from(first_len & 0x7f);
            let Some(len_bytes) = rest.get(..count) else {
                return false;
            };
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        }
        _ => return false,
    };
    content_len == header_rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_key_matches_openssl() {
        // openssl enc -aes-256-cbc -pass pass:secret -S 0102030405060708 -P -md md5
        let key = bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(
            key.iter().map(|b| format!("{b:02X}")).collect::<String>(),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB"
        );
    }

    #[test]
    fn der_sequence_check_accepts_short_and_long_lengths() {
        assert!(is_one_der_sequence(&[0x30, 0x03, 2, 1, 0]));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(0u8, 256));
        assert!(is_one_der_sequence(&long));
        long.push(0);
        assert!(!is_one_der_sequence(&long));
        assert!(!is_one_der_sequence(&[0x31, 0x00]));
        assert!(!is_one_der_sequence(&[]));
    }

    #[test]
    fn unknown_cipher_is_unsupported() {
        let err = decrypt("BF-CBC,0011223344556677", b"secret", &[0; 16]).unwrap_err();
        assert_eq!(
            err,
            LegacyError::Unsupported("legacy PEM encryption \"BF-CBC,0011223344556677\"".into())
        );
    }

    #[test]
    fn iv_of_wrong_length_is_rejected() {
        assert!(matches!(
            decrypt("AES-128-CBC,0011", b"secret", &[0; 16]),
            Err(LegacyError::Unsupported(_))
        ));
    }
}
