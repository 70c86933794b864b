//! HTTPS served directly: a certificate chain and its private key, PEM files, read into a
//! rustls server configuration. Problems name the setting and never show key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {path}: {why}")]
    Cert { path: PathBuf, why: String },
    #[error("cannot read the private key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("the certificate and the key do not go together: {0}")]
    Pair(String),
}

impl TlsError {
    /// The setting the problem is in.
    pub fn setting(&self) -> &'static str {
        match self {
            TlsError::Cert { .. } | TlsError::Pair(_) => "tls_cert",
            TlsError::Key { .. } => "tls_key",
        }
    }
}

/// The rustls configuration of `tls_cert` and `tls_key`, HTTP/1.1 offered.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.into(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.into(),
            why: "no CERTIFICATE block in it".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        why: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether the pair can be served, for the settings check.
pub fn check(cert: &Path, key: &Path) -> Result<(), TlsError> {
    server_config(cert, key).map(|_| ())
}
