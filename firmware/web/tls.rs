//! The admin certificate: made self-signed at first start, replaceable by an uploaded one,
//! swapped into the running server without a restart.
//!
//! One file holds the key and the chain, `<data>/web/admin.pem` (mode 0600), written with a
//! temp file and a rename: a power cut leaves the old pair or the new one, never a key that
//! belongs to another certificate.

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Largest PEM upload (key + chain): a leaf, two intermediates and an RSA-4096 key are ~10 KiB.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Most certificates in a chain: leaf plus intermediates; real chains have 2-4.
pub const MAX_CHAIN: usize = 8;

/// The file's name inside `<data>/web/`.
const FILE: &str = "admin.pem";

/// Why an uploaded certificate or key was refused; each names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate PEM is empty, unreadable or too long a chain.
    Certificate(String),
    /// The key PEM holds no usable private key.
    Key(String),
    /// The key is not the certificate's key.
    Mismatch,
    /// The pair was good but could not be stored.
    Io(String),
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertError::Certificate(m) => write!(f, "certificate: {m}"),
            CertError::Key(m) => write!(f, "key: {m}"),
            CertError::Mismatch => f.write_str("the key does not belong to the certificate"),
            CertError::Io(m) => write!(f, "cannot store the certificate: {m}"),
        }
    }
}

impl std::error::Error for CertError {}

/// The certificate the server presents now; [`CertSlot::replace`] swaps it for new
/// connections.
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<Arc<CertifiedKey>>,
    dir: PathBuf,
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// Checks a certificate chain and key and binds them: at least one and at most
/// [`MAX_CHAIN`] certificates, a key the ring provider can sign with, and the key's public
/// half equal to the leaf's.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, CertError> {
    if cert_pem.len() > MAX_PEM_BYTES {
        return Err(CertError::Certificate(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    if key_pem.len() > MAX_PEM_BYTES {
        return Err(CertError::Key(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .take(MAX_CHAIN + 1)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Certificate(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(CertError::Certificate("no CERTIFICATE block found".into()));
    }
    if chain.len() > MAX_CHAIN {
        return Err(CertError::Certificate(format!("more than {MAX_CHAIN} certificates")));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::Key(format!("no private key: {e}")))?;
    let signer = default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::Key(format!("unusable: {e}")))?;
    let ck = CertifiedKey::new(chain, signer);
    match ck.keys_match() {
        Ok(()) => Ok(ck),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CertError::Mismatch)
        }
        Err(e) => Err(CertError::Certificate(format!("unreadable: {e}"))),
    }
}

/// The names a self-signed certificate covers: the box's hostname, `localhost`, loopback,
/// every interface address and the bind address.
pub fn default_names(bind: std::net::IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            names.push(h.to_string());
            if !h.contains('.') {
                names.push(format!("{h}.local"));
            }
        }
    }
    if let Ok(ifs) = if_addrs::get_if_addrs() {
        names.extend(ifs.into_iter().map(|i| i.ip().to_string()));
    }
    if !bind.is_unspecified() {
        names.push(bind.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// A fresh self-signed certificate (ECDSA P-256) for `names`, as one PEM (key then cert).
pub fn self_signed(names: &[String]) -> Result<String, String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, format!("Hakoden {}", names.get(3).map_or("box", String::as_str)));
    dn.push(rcgen::DnType::OrganizationName, "Hakoden self-signed");
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

/// Writes `pem` as `<dir>/admin.pem` (0600) atomically.
fn write_pem(dir: &Path, pem: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

impl CertSlot {
    /// Loads `<dir>/admin.pem`, or makes a self-signed one for `names` when it is missing
    /// or unusable (an unusable file is kept as `admin.pem.bad` for the technician). The bool
    /// says a certificate was generated.
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<(CertSlot, bool), String> {
        let path = dir.join(FILE);
        if let Ok(pem) = std::fs::read(&path) {
            match certified_key(&pem, &pem) {
                Ok(ck) => {
                    return Ok((
                        CertSlot { current: RwLock::new(Arc::new(ck)), dir: dir.to_path_buf() },
                        false,
                    ))
                }
                Err(e) => {
                    log::error!(
                        "web: {} is unusable ({e}); making a new self-signed certificate",
                        path.display()
                    );
                    let _ = std::fs::rename(&path, dir.join(format!("{FILE}.bad")));
                }
            }
        }
        let pem = self_signed(names)?;
        let ck = certified_key(pem.as_bytes(), pem.as_bytes()).map_err(|e| e.to_string())?;
        write_pem(dir, &pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        log::info!("web: self-signed certificate made for {}", names.join(", "));
        Ok((CertSlot { current: RwLock::new(Arc::new(ck)), dir: dir.to_path_buf() }, true))
    }

    /// Validates an uploaded pair, stores it and serves it to new connections.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), CertError> {
        let ck = certified_key(cert_pem.as_bytes(), key_pem.as_bytes())?;
        let mut pem = key_pem.trim_end().to_string();
        pem.push('\n');
        pem.push_str(cert_pem.trim_end());
        pem.push('\n');
        write_pem(&self.dir, &pem).map_err(|e| CertError::Io(e.to_string()))?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ck);
        Ok(())
    }

    /// The leaf certificate served now (DER), for tests and the API.
    pub fn leaf_der(&self) -> Vec<u8> {
        let ck = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        ck.end_entity_cert().map(|c| c.to_vec()).unwrap_or_default()
    }
}

/// The TLS server configuration over a slot: TLS 1.2 and 1.3 with the ring provider, HTTP/1.1
/// only (the server speaks nothing else).
pub fn server_config(slot: Arc<CertSlot>) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(slot);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pbx.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_is_accepted() {
        let (cert, key) = pair();
        assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        assert_eq!(certified_key(cert.as_bytes(), other_key.as_bytes()).err(), Some(CertError::Mismatch));
    }

    #[test]
    fn garbage_is_refused_with_the_field_to_fix() {
        let (cert, key) = pair();
        assert!(matches!(certified_key(b"hello", key.as_bytes()), Err(CertError::Certificate(_))));
        assert!(matches!(certified_key(cert.as_bytes(), b"hello"), Err(CertError::Key(_))));
        let big = vec![b'A'; MAX_PEM_BYTES + 1];
        assert!(matches!(certified_key(&big, key.as_bytes()), Err(CertError::Certificate(_))));
    }

    #[test]
    fn the_first_start_makes_a_certificate_and_the_next_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let names = default_names(std::net::IpAddr::from([127, 0, 0, 1]));
        let (slot, made) = CertSlot::load_or_create(dir.path(), &names).unwrap();
        assert!(made);
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let (again, made) = CertSlot::load_or_create(dir.path(), &names).unwrap();
        assert!(!made);
        assert_eq!(slot.leaf_der(), again.leaf_der());
    }

    #[test]
    fn an_uploaded_pair_replaces_the_served_one_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (slot, _) = CertSlot::load_or_create(dir.path(), &["localhost".to_string()]).unwrap();
        let before = slot.leaf_der();
        let (cert, key) = pair();
        slot.replace(&cert, &key).unwrap();
        assert_ne!(slot.leaf_der(), before);
        let (again, made) = CertSlot::load_or_create(dir.path(), &[]).unwrap();
        assert!(!made);
        assert_eq!(again.leaf_der(), slot.leaf_der());
    }
}
