//! `tls:`: the listeners, and the certificate chain and key, which are read
//! and parsed here so that a bad file is a `check` error naming it rather
//! than a failure inside a running listener.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::check::{positive_count, readable_file, socket_addrs};
use crate::diag::Diag;
use crate::model::TlsConfig;
use crate::read::{MapReader, Text, TextList};

/// The default `tls.h2_max_concurrent_streams` (pingora's own default).
pub(crate) const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// Reads and validates `tls:`; the cert and key files must parse as PEM.
/// Returns the listeners as written too, for the check that no address is
/// used twice.
pub(crate) fn tls_config(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    base_dir: &Path,
) -> (Option<TlsConfig>, Option<TextList>) {
    let listen_list = map.require::<Vec<Text>>(diag, "listen");
    let cert = map.require::<String>(diag, "cert");
    let key = map.require::<String>(diag, "key");
    let streams = map.take::<u64>(diag, "h2_max_concurrent_streams");
    let listen = listen_list.as_ref().map(|list| socket_addrs(diag, list));
    let cert = cert.as_ref().and_then(|text| {
        let path = readable_file(diag, text, base_dir, "certificate file")?;
        certificate_chain(diag, text, path, "certificate file")
    });
    let key = key.as_ref().and_then(|text| {
        let path = readable_file(diag, text, base_dir, "key file")?;
        private_key(diag, text, path)
    });
    let streams = match &streams {
        Some(n) => positive_count(diag, n).and_then(|count| {
            u32::try_from(count)
                .map_err(|_| diag.at(n, "number too large (at most 4294967295)"))
                .ok()
        }),
        None => Some(DEFAULT_H2_MAX_CONCURRENT_STREAMS),
    };
    let config = match (listen, cert, key, streams) {
        (Some(listen), Some(cert), Some(key), Some(h2_max_concurrent_streams)) => Some(TlsConfig {
            listen: listen.into_iter().map(|(addr, _)| addr).collect(),
            cert,
            key,
            h2_max_concurrent_streams,
        }),
        _ => None,
    };
    (config, listen_list)
}

/// `upstream.ca_file`: readable, with at least one well-formed `CERTIFICATE`.
pub(crate) fn ca_file(diag: &mut Diag, text: &Text, base_dir: &Path) -> Option<PathBuf> {
    let path = readable_file(diag, text, base_dir, "CA file")?;
    certificate_chain(diag, text, path, "CA file")
}

/// At least one `CERTIFICATE` block, and every block well-formed.
fn certificate_chain(diag: &mut Diag, text: &Text, path: PathBuf, what: &str) -> Option<PathBuf> {
    let problem = match CertificateDer::pem_file_iter(&path) {
        Ok(iter) => {
            let mut count = 0usize;
            let mut error = None;
            for item in iter {
                match item {
                    Ok(_) => count += 1,
                    Err(e) => {
                        error = Some(pem_reason(&e));
                        break;
                    }
                }
            }
            match (error, count) {
                (Some(reason), _) => Some(reason),
                (None, 0) => Some("no PEM `CERTIFICATE` block found".to_owned()),
                (None, _) => None,
            }
        }
        Err(e) => Some(pem_reason(&e)),
    };
    accept(diag, text, path, what, problem)
}

/// One private key block (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn private_key(diag: &mut Diag, text: &Text, path: PathBuf) -> Option<PathBuf> {
    let problem = match PrivateKeyDer::from_pem_file(&path) {
        Ok(_) => None,
        Err(pem::Error::NoItemsFound) => Some(
            "no PEM private key block found (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                .to_owned(),
        ),
        Err(e) => Some(pem_reason(&e)),
    };
    accept(diag, text, path, "key file", problem)
}

fn accept(
    diag: &mut Diag,
    text: &Text,
    path: PathBuf,
    what: &str,
    problem: Option<String>,
) -> Option<PathBuf> {
    match problem {
        None => Some(path),
        Some(reason) => {
            diag.at(
                text,
                format!("invalid {what} `{}`: {reason}", path.display()),
            );
            None
        }
    }
}

fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM block found".to_owned(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a malformed PEM BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::ProcessEnv;

    /// A truncated or corrupt PEM block is an error naming the file.
    #[test]
    fn broken_pem_blocks_name_the_file() {
        let dir = std::env::temp_dir().join(format!("sse-gw-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("truncated.pem");
        let key = dir.join("garbage-key.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let text = format!(
            "tls: {{listen: \"127.0.0.1:0\", cert: \"{}\", key: \"{}\"}}\n{}",
            cert.display(),
            key.display(),
            "routes:\n  - name: r\n    path: /p/{s}\n    upstream: {url: \"http://127.0.0.1:9000/{s}\"}\n"
        );
        let errors = match crate::from_str("t.yaml", &text, &ProcessEnv) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e.to_string(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            errors.contains(&format!(
                "tls.cert: invalid certificate file `{}`: a PEM block has no END line",
                cert.display()
            )),
            "{errors}"
        );
        assert!(
            errors.contains(&format!("tls.key: invalid key file `{}`", key.display())),
            "{errors}"
        );
    }
}
