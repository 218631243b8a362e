//! TLS helpers shared by the tenant clients (and the development stand-ins).

use rustls::pki_types::CertificateDer;

/// Installs ring as the process-wide rustls provider (idempotent). reqwest is built without a
/// provider of its own so that only one crypto backend is compiled.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Parses every `CERTIFICATE` block of a PEM bundle.
pub fn parse_pem_certs(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| format!("CA bundle is not PEM: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err("CA bundle holds no CERTIFICATE block".into());
    }
    Ok(certs)
}
