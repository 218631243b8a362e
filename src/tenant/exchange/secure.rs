//! SecureString encryption: Exchange expects secrets (New-MailUser -Password, PSCredential
//! passwords) RSA-encrypted (PKCS#1 v1.5) with the service's public key, then Base64.

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

use crate::tenant::error::TenantError;

/// The public key SecureString parameters are encrypted with.
#[derive(Clone, Debug)]
pub struct SecureStringKey(RsaPublicKey);

impl SecureStringKey {
    /// From a PEM `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, TenantError> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map(Self)
            .map_err(|e| {
                TenantError::Config(format!(
                    "Exchange SecureString key is not an RSA public key PEM: {e}"
                ))
            })
    }

    /// Encrypts `plain` and returns it Base64-encoded.
    pub fn encrypt(&self, plain: &str) -> Result<String, TenantError> {
        let mut rng = rsa::rand_core::OsRng;
        let bytes = self
            .0
            .encrypt(&mut rng, Pkcs1v15Encrypt, plain.as_bytes())
            .map_err(|e| TenantError::Config(format!("encrypting a SecureString: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}
