//! The simulator's own RSA keys: one signs access tokens (published as a JWKS, like Entra's
//! `discovery/v2.0/keys`), one decrypts Exchange `SecureString` parameters (clients fetch its
//! public half from `GET /_sim/keys/exchange-securestring`, the stand-in for the public key the
//! real Exchange module ships).

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};

use super::error::SimError;

pub struct Keys {
    pub token_kid: String,
    pub token_encoding: EncodingKey,
    pub token_decoding: DecodingKey,
    pub jwks: serde_json::Value,
    exchange_key: RsaPrivateKey,
    pub exchange_public_pem: String,
}

impl Keys {
    pub fn generate() -> Result<Self, SimError> {
        let mut rng = rsa::rand_core::OsRng;
        let token_key = RsaPrivateKey::new(&mut rng, 2048)?;
        let exchange_key = RsaPrivateKey::new(&mut rng, 2048)?;
        let der = token_key
            .to_pkcs1_der()
            .map_err(|e| SimError::Pkcs1(e.to_string()))?;
        let n = token_key.n().to_bytes_be();
        let e = token_key.e().to_bytes_be();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Entra kids look like base64url thumbprints; derive one from the modulus.
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &n);
        let kid = b64.encode(digest.as_ref());
        let jwks = serde_json::json!({
            "keys": [{
                "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                "n": b64.encode(&n), "e": b64.encode(&e),
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"
            }]
        });
        let exchange_public_pem = exchange_key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SimError::Pkcs1(e.to_string()))?;
        Ok(Self {
            token_kid: kid,
            token_encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            token_decoding: DecodingKey::from_rsa_raw_components(&n, &e),
            jwks,
            exchange_key,
            exchange_public_pem,
        })
    }

    /// Decrypts a `SecureString` parameter: Base64 of PKCS#1 v1.5 RSA ciphertext of UTF-8 text
    /// (the scheme the Exchange module uses with Microsoft's key).
    pub fn decrypt_secure_string(&self, b64: &str) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let plain = self.exchange_key.decrypt(Pkcs1v15Encrypt, &bytes).ok()?;
        String::from_utf8(plain).ok()
    }
}
