//! The rustls client configuration for SMTP and HTTPS.
//!
//! Roots: the Mozilla set compiled in (`webpki-roots`), so the appliance trusts the same public
//! CAs whatever its root file system carries and a firmware update refreshes them; or, when a
//! `ca_file` is configured, only the CA certificates in that PEM file (a company relay with a
//! private CA, and the loopback tests). Why not the system store: `docs/dependencies.md`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Largest CA file read (a full public bundle is about 220 KB; anything far bigger is a mistake).
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// A TLS configuration failure, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError(pub String);

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS configuration: {}", self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// The client configuration: webpki roots, or only the CAs of `ca_file` (PEM).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let len = std::fs::metadata(path)
                .map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?
                .len();
            if len > MAX_CA_FILE_BYTES {
                return Err(TlsConfigError(format!(
                    "{}: larger than {MAX_CA_FILE_BYTES} bytes",
                    path.display()
                )));
            }
            let pem = std::fs::read(path).map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| TlsConfigError(format!("{}: {e:?}", path.display())))?;
                roots.add(cert).map_err(|e| TlsConfigError(format!("{}: {e}", path.display())))?;
                n += 1;
            }
            if n == 0 {
                return Err(TlsConfigError(format!("{}: no certificate", path.display())));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server name to verify: a DNS name or an IP address literal.
pub fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, TlsConfigError> {
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| TlsConfigError(format!("bad host name {host:?}")))
}
