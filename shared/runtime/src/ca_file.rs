//! A PEM file of CA certificates that an operator adds to the system's roots
//! (a private CA in front of the broker, say), read and checked at start.
//!
//! Why read it ourselves instead of handing the path to the TLS library:
//! lapin's rustls connector skips certificates it cannot parse without a
//! word, so a wrong path or a truncated file would only show much later, as
//! "certificate not trusted" on every connection. Read here, it fails
//! start-up with an error that names the variable and the path. The file's
//! contents never appear in an error: a mistaken path could point at a key.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::config::EnvReader;

/// The certificates of one PEM file, checked to be well-formed.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    pem: String,
    certificates: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("holds a private key; give only the CA's certificates")]
    PrivateKey,
    #[error("PEM block {0} is not a CERTIFICATE")]
    NotACertificate(usize),
    #[error("PEM block {0} is cut short or not base64 DER")]
    Malformed(usize),
}

impl CaFile {
    pub fn read(path: &Path) -> Result<Self, CaFileError> {
        let bytes = std::fs::read(path).map_err(CaFileError::Unreadable)?;
        // PEM is ASCII; anything else is not a certificate file.
        let text = String::from_utf8(bytes).map_err(|_| CaFileError::Malformed(1))?;
        let certificates = check_pem(&text)?;
        Ok(Self {
            path: path.to_owned(),
            pem: text,
            certificates,
        })
    }

    /// Reads the file named by the variable `name`, if set; a problem is
    /// recorded on `env` under the variable's name (with the path, never
    /// the contents).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &mut EnvReader<F>,
        name: &'static str,
    ) -> Option<Self> {
        let path = env.optional(name)?;
        match Self::read(Path::new(path.trim())) {
            Ok(file) => Some(file),
            Err(e) => {
                env.invalid(format!("{name}={path:?}: {e}"));
                None
            }
        }
    }

    /// Checks `SSL_CERT_FILE`, when set. rustls-native-certs reads it the
    /// way OpenSSL does: it replaces the system's roots for every TLS
    /// connection of the process, so a wrong path would make every peer
    /// untrusted, found only at the first connection. Checked at start
    /// instead, like `AMQP_CA_FILE`.
    pub fn check_ssl_cert_file<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) {
        let _ = Self::from_env(env, "SSL_CERT_FILE");
    }

    /// The file's text, every block a certificate.
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certificates)
            .finish()
    }
}

/// Counts the certificates, refusing any block that is not one. Text
/// outside the blocks is ignored, as OpenSSL does (bundles carry comments).
fn check_pem(text: &str) -> Result<usize, CaFileError> {
    let mut blocks = 0;
    let mut open: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = armour(line, "-----BEGIN ") {
            if open.is_some() {
                return Err(CaFileError::Malformed(blocks));
            }
            blocks += 1;
            if label.contains("PRIVATE KEY") {
                return Err(CaFileError::PrivateKey);
            }
            if label != "CERTIFICATE" {
                return Err(CaFileError::NotACertificate(blocks));
            }
            open = Some((label.to_owned(), String::new()));
        } else if let Some(label) = armour(line, "-----END ") {
            match open.take() {
                Some((begun, body)) if begun == label && is_der(&body) => {}
                _ => return Err(CaFileError::Malformed(blocks.max(1))),
            }
        } else if let Some((_, body)) = open.as_mut() {
            body.push_str(line);
        }
    }
    match (open, blocks) {
        (Some(_), _) => Err(CaFileError::Malformed(blocks)),
        (None, 0) => Err(CaFileError::NoCertificate),
        (None, n) => Ok(n),
    }
}

fn armour<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

/// Base64 of one DER SEQUENCE whose length header matches its size: enough
/// to catch a truncated or garbled file; the TLS library checks the rest.
fn is_der(base64_body: &str) -> bool {
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(base64_body) else {
        return false;
    };
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (header, length) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if !(1..=4).contains(&count) || der.len() < 2 + count {
            return false;
        }
        let length = der[2..2 + count]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (2 + count, length)
    };
    header + length == der.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block holding the DER header of a SEQUENCE of `content` bytes:
    /// not a real certificate, but the shape this module checks.
    fn block(label: &str, content: usize) -> String {
        let mut der = vec![0x30, 0x82];
        der.extend_from_slice(&u16::try_from(content).unwrap().to_be_bytes());
        der.resize(4 + content, 7);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn a_bundle_with_comments_counts_its_certificates() {
        let text = format!(
            "# private CA\n{}\n# its intermediate\n{}",
            block("CERTIFICATE", 300),
            block("CERTIFICATE", 500)
        );
        assert_eq!(check_pem(&text).unwrap(), 2);
    }

    #[test]
    fn a_truncated_certificate_is_malformed() {
        let whole = block("CERTIFICATE", 300);
        let mut lines: Vec<&str> = whole.lines().collect();
        lines.remove(2);
        assert!(matches!(
            check_pem(&lines.join("\n")),
            Err(CaFileError::Malformed(1))
        ));
        let unterminated = whole.replace("-----END CERTIFICATE-----", "");
        assert!(matches!(
            check_pem(&unterminated),
            Err(CaFileError::Malformed(1))
        ));
    }

    #[test]
    fn a_key_or_an_empty_file_is_refused() {
        let with_key = format!("{}{}", block("CERTIFICATE", 300), block("PRIVATE KEY", 100));
        assert!(matches!(check_pem(&with_key), Err(CaFileError::PrivateKey)));
        assert!(matches!(
            check_pem("just text\n"),
            Err(CaFileError::NoCertificate)
        ));
        assert!(matches!(
            check_pem(&block("X509 CRL", 100)),
            Err(CaFileError::NotACertificate(1))
        ));
    }

    #[test]
    fn a_missing_file_is_named_by_its_variable() {
        let mut env = EnvReader::new(|name: &str| {
            (name == "SOME_CA_FILE").then(|| "/nonexistent/ca.pem".to_owned())
        });
        assert!(CaFile::from_env(&mut env, "SOME_CA_FILE").is_none());
        let message = env.finish().unwrap_err().to_string();
        assert!(
            message.contains("SOME_CA_FILE=\"/nonexistent/ca.pem\": cannot be read"),
            "{message}"
        );
    }

    #[test]
    fn a_wrong_ssl_cert_file_stops_start_up_instead_of_distrusting_every_peer() {
        let mut env = EnvReader::new(|name: &str| {
            (name == "SSL_CERT_FILE").then(|| "/nonexistent/bundle.pem".to_owned())
        });
        CaFile::check_ssl_cert_file(&mut env);
        let message = env.finish().unwrap_err().to_string();
        assert!(message.contains("SSL_CERT_FILE="), "{message}");

        let mut unset = EnvReader::new(|_: &str| None);
        CaFile::check_ssl_cert_file(&mut unset);
        assert!(unset.finish().is_ok(), "unset means the system's roots");
    }
}
