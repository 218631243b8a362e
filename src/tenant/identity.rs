//! App-only tokens from the Microsoft identity platform (OAuth 2.0 client credentials):
//! client secret, certificate assertion, or workload identity federation.
//!
//! Tokens are cached per (tenant, client, resource, credential version). The version is the
//! `resourceVersion` of the Secret the credential came from, so a rotated secret is used at once
//! instead of after the old token expires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;

use super::cloud::Endpoints;
use super::error::{Api, TenantError};
use super::http::{Family, Idempotency, Transport, retry_after, transport_error};
use super::secret::Redacted;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Refresh a token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How an app proves its identity.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A client secret.
    ClientSecret(Redacted<String>),
    /// A certificate: signs a JWT assertion with its private key.
    Certificate(Arc<CertificateKey>),
    /// Workload identity federation: the projected service-account token file, read afresh each time.
    WorkloadIdentity { token_file: PathBuf },
}

/// Why a PKCS#12 (PFX) certificate credential can't be used. Messages never carry key
/// material or the password.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a PKCS#12 archive (or it is damaged).
    #[error("the certificate is not a PKCS#12 (PFX) archive: {0}")]
    NotPkcs12(String),
    /// The archive's integrity check (MAC) or decryption failed: the password is wrong, or
    /// missing for a protected archive.
    #[error("the PKCS#12 (PFX) password is wrong or missing (integrity check failed)")]
    WrongPassword,
    /// The archive uses an encryption or MAC algorithm that is not supported.
    #[error("the PKCS#12 (PFX) archive uses an unsupported algorithm: {0}")]
    Unsupported(String),
    /// No private key together with its certificate was found.
    #[error("the PKCS#12 (PFX) archive holds no private key with a matching certificate")]
    NoKeyWithCertificate,
    /// The private key is not RSA (client assertions are signed with PS256).
    #[error("the private key in the PKCS#12 (PFX) archive is not an RSA key")]
    NotRsa,
}

impl From<p12_keystore::error::Error> for CertificateError {
    fn from(e: p12_keystore::error::Error) -> Self {
        use p12_keystore::error::Error as E;
        match e {
            E::MacError(_) | E::UnpadError => Self::WrongPassword,
            E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm | E::Pkcs5Error(_) => {
                Self::Unsupported(e.to_string())
            }
            E::DerError(_)
            | E::InvalidVersion
            | E::UnsupportedContentType
            | E::InvalidLength
            | E::InvalidData
            | E::InvalidParameters
            | E::IoError(_) => Self::NotPkcs12(e.to_string()),
            E::UnsupportedCertificateType | E::X509Error(_) | E::InvalidPrivateKey => {
                Self::NoKeyWithCertificate
            }
        }
    }
}

/// A certificate and its private key, ready to sign assertions.
pub struct CertificateKey {
    key: jsonwebtoken::EncodingKey,
    /// base64url SHA-256 of the certificate DER (`x5t#S256`).
    x5t_s256: String,
    /// base64url SHA-1 of the certificate DER (`x5t`, the older form).
    x5t: String,
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("x5t", &self.x5t)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl CertificateKey {
    /// From a PEM certificate and a PEM (PKCS#1 or PKCS#8) RSA private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TenantError> {
        let cert = pem::parse_many(cert_pem)
            .map_err(|e| TenantError::Config(format!("certificate is not PEM: {e}")))?
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| {
                TenantError::Config("no CERTIFICATE block in the certificate PEM".into())
            })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem)
            .map_err(|e| TenantError::Config(format!("private key is not an RSA PEM key: {e}")))?;
        Ok(Self::from_der_and_key(cert.contents(), key))
    }

    /// From a PKCS#12 (PFX) archive holding the certificate and its RSA private key, as
    /// `openssl pkcs12 -export` (OpenSSL 3: PBES2/AES-256-CBC, HMAC-SHA-256; or the legacy
    /// 3DES/RC2 + SHA-1 forms), Windows or Azure Key Vault produce. `password`: `None` for an
    /// archive exported without one.
    pub fn from_pkcs12(pfx: &[u8], password: Option<&str>) -> Result<Self, TenantError> {
        Self::pkcs12(pfx, password.unwrap_or("")).map_err(TenantError::Certificate)
    }

    fn pkcs12(pfx: &[u8], password: &str) -> Result<Self, CertificateError> {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        let store = p12_keystore::KeyStore::from_pkcs12(
            pfx,
            password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or(CertificateError::NoKeyWithCertificate)?;
        // The chain starts with the certificate whose localKeyId matches the key's.
        let cert = chain
            .certs()
            .first()
            .ok_or(CertificateError::NoKeyWithCertificate)?;
        let rsa = rsa::RsaPrivateKey::from_pkcs8_der(chain.key().as_der())
            .map_err(|_| CertificateError::NotRsa)?;
        let pkcs1 = rsa.to_pkcs1_der().map_err(|_| CertificateError::NotRsa)?;
        let key = jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes());
        Ok(Self::from_der_and_key(cert.as_der(), key))
    }

    fn from_der_and_key(der: &[u8], key: jsonwebtoken::EncodingKey) -> Self {
        use sha1::Digest as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let s256 = sha2::Sha256::digest(der);
        let s1 = sha1::Sha1::digest(der);
        Self {
            key,
            x5t_s256: b64.encode(s256),
            x5t: b64.encode(s1),
        }
    }

    /// The client assertion: PS256 with `x5t#S256`, audience the tenant's token endpoint.
    fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, TenantError> {
        let now = unix_now();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| TenantError::Config(format!("signing the client assertion: {e}")))
    }

    /// The SHA-1 thumbprint (base64url), as `keyCredentials.customKeyIdentifier` shows it.
    pub fn x5t(&self) -> &str {
        &self.x5t
    }
}

/// One app's credentials in one tenant.
#[derive(Clone, Debug)]
pub struct AppCredential {
    /// Tenant id (GUID) or initial domain.
    pub tenant: String,
    /// Application (client) id.
    pub client_id: String,
    pub credential: Credential,
    /// Changes whenever the underlying Secret changes (its `resourceVersion`).
    pub version: String,
}

/// An access token. Its `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: Redacted<String>,
    pub expires_at: SystemTime,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

type CacheKey = (String, String, String, String);
type TokenSlot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;

/// Obtains and caches app-only tokens.
#[derive(Clone)]
pub struct TokenProvider {
    transport: Transport,
    endpoints: Endpoints,
    cache: Arc<Mutex<HashMap<CacheKey, TokenSlot>>>,
}

impl TokenProvider {
    pub fn new(transport: Transport, endpoints: Endpoints) -> Self {
        Self {
            transport,
            endpoints,
            cache: Arc::default(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn slot(&self, key: CacheKey) -> TokenSlot {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Entries for other versions of the same credential are stale: drop them.
        cache.retain(|k, _| !(k.0 == key.0 && k.1 == key.1 && k.2 == key.2 && k.3 != key.3));
        cache.entry(key).or_default().clone()
    }

    /// A token for `resource` (e.g. `https://graph.microsoft.com`), from cache while it has more
    /// than five minutes left.
    pub async fn token(
        &self,
        cred: &AppCredential,
        resource: &str,
    ) -> Result<AccessToken, TenantError> {
        let slot = self.slot((
            cred.tenant.to_ascii_lowercase(),
            cred.client_id.clone(),
            resource.to_string(),
            cred.version.clone(),
        ));
        // One request per key at a time; concurrent callers wait and reuse its result.
        let mut guard = slot.lock().await;
        if let Some(tok) = guard.as_ref()
            && tok.expires_at > SystemTime::now() + REFRESH_MARGIN
        {
            return Ok(tok.clone());
        }
        let tok = self.request(cred, resource).await?;
        *guard = Some(tok.clone());
        Ok(tok)
    }

    /// Forgets a cached token (after a 401 from the resource).
    pub async fn invalidate(&self, cred: &AppCredential, resource: &str) {
        let slot = self.slot((
            cred.tenant.to_ascii_lowercase(),
            cred.client_id.clone(),
            resource.to_string(),
            cred.version.clone(),
        ));
        *slot.lock().await = None;
    }

    async fn request(
        &self,
        cred: &AppCredential,
        resource: &str,
    ) -> Result<AccessToken, TenantError> {
        let url = self.endpoints.token_url(&cred.tenant);
        let scope = format!("{}/.default", resource.trim_end_matches('/'));
        self.transport
            .execute(
                Api::Token,
                &cred.tenant,
                Family::Token,
                "POST",
                Idempotency::Safe,
                || async {
                    // The assertion is rebuilt (and the federated token file re-read) for every attempt.
                    let mut form: Vec<(&str, String)> = vec![
                        ("grant_type", "client_credentials".into()),
                        ("client_id", cred.client_id.clone()),
                        ("scope", scope.clone()),
                    ];
                    match &cred.credential {
                        Credential::ClientSecret(secret) => {
                            form.push(("client_secret", secret.expose().clone()))
                        }
                        Credential::Certificate(cert) => {
                            form.push(("client_assertion_type", ASSERTION_TYPE.into()));
                            form.push(("client_assertion", cert.assertion(&cred.client_id, &url)?));
                        }
                        Credential::WorkloadIdentity { token_file } => {
                            let assertion =
                                tokio::fs::read_to_string(token_file).await.map_err(|e| {
                                    TenantError::Config(format!(
                                        "reading the federated token file {}: {e}",
                                        token_file.display()
                                    ))
                                })?;
                            form.push(("client_assertion_type", ASSERTION_TYPE.into()));
                            form.push(("client_assertion", assertion.trim().to_string()));
                        }
                    }
                    let resp = self
                        .transport
                        .client
                        .post(&url)
                        .form(&form)
                        .send()
                        .await
                        .map_err(|e| transport_error(Api::Token, &e))?;
                    let status = resp.status();
                    let retry = retry_after(resp.headers());
                    let body = resp
                        .bytes()
                        .await
                        .map_err(|e| transport_error(Api::Token, &e))?;
                    if status.is_success() {
                        let t: TokenResponse =
                            serde_json::from_slice(&body).map_err(|e| TenantError::Decode {
                                api: "token",
                                message: e.to_string(),
                            })?;
                        return Ok(AccessToken {
                            token: Redacted::new(t.access_token),
                            expires_at: SystemTime::now() + Duration::from_secs(t.expires_in),
                        });
                    }
                    let err: TokenErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                    if status.is_server_error() || status.as_u16() == 429 || err.error.is_empty() {
                        return Err(TenantError::Http {
                            api: "token",
                            status: status.as_u16(),
                            message: first_line(&err.error_description),
                            retry_after: retry,
                        });
                    }
                    Err(TenantError::Token {
                        tenant: cred.tenant.clone(),
                        error: err.error,
                        code: err.error_codes.first().copied().unwrap_or(0),
                        description: first_line(&err.error_description),
                    })
                },
            )
            .await
    }
}

/// AADSTS descriptions carry trace and correlation ids on later lines; keep the sentence.
/// Some answers put them on the same line (" Trace ID: …"); those are cut too.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    let line = line.split(" Trace ID:").next().unwrap_or(line);
    line.trim().to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The claims of an access token, decoded without verification (tokens are opaque to clients;
/// this is only used to explain which roles a credential lacks).
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_drops_trace_ids() {
        assert_eq!(
            first_line(
                "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y"
            ),
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(
            first_line(
                "AADSTS7000215: Invalid client secret provided. Trace ID: x Correlation ID: y"
            ),
            "AADSTS7000215: Invalid client secret provided."
        );
    }

    #[test]
    fn certificate_assertion_has_the_expected_header_and_claims() {
        let cert = include_bytes!("../../tests/fixtures/app-cert.pem");
        let key = include_bytes!("../../tests/fixtures/app-key.pem");
        let ck = CertificateKey::from_pem(cert, key).expect("cert key");
        let jwt = ck
            .assertion("client-1", "https://login/t/oauth2/v2.0/token")
            .expect("jwt");
        let header = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        assert!(header.x5t_s256.is_some());
        let claims = unverified_claims(&jwt).expect("claims");
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert!(claims["exp"].as_u64() > claims["nbf"].as_u64());
        assert!(!format!("{ck:?}").contains("BEGIN"));
    }

    /// PFX fixtures made from app-cert.pem + app-key.pem with OpenSSL 3 `openssl pkcs12
    /// -export`: the default (PBES2 AES-256-CBC, HMAC-SHA-256), the legacy 3DES + SHA-1 form,
    /// and one without a password. Each yields the same certificate as the PEM pair.
    #[test]
    fn pkcs12_archives_load_like_the_pem_pair() {
        let pem = CertificateKey::from_pem(
            include_bytes!("../../tests/fixtures/app-cert.pem"),
            include_bytes!("../../tests/fixtures/app-key.pem"),
        )
        .expect("pem");
        let modern = include_bytes!("../../tests/fixtures/app.pfx");
        let legacy = include_bytes!("../../tests/fixtures/app-legacy.pfx");
        let nopass = include_bytes!("../../tests/fixtures/app-nopass.pfx");
        for (pfx, pw) in [
            (&modern[..], Some("fixture-pass")),
            (&legacy[..], Some("fixture-pass")),
            (&nopass[..], None),
        ] {
            let ck = CertificateKey::from_pkcs12(pfx, pw).expect("pfx");
            assert_eq!(ck.x5t(), pem.x5t());
            assert_eq!(ck.x5t_s256, pem.x5t_s256);
            let jwt = ck.assertion("client-1", "https://login/t").expect("jwt");
            assert_eq!(
                jsonwebtoken::decode_header(&jwt).expect("header").x5t_s256,
                Some(pem.x5t_s256.clone())
            );
        }
    }

    #[test]
    fn pkcs12_errors_are_typed_and_keep_secrets_out() {
        let modern = include_bytes!("../../tests/fixtures/app.pfx");
        let err = CertificateKey::from_pkcs12(modern, Some("not-the-password")).expect_err("bad");
        assert!(
            matches!(
                err,
                TenantError::Certificate(CertificateError::WrongPassword)
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("not-the-password"));
        assert_eq!(err.class(), crate::tenant::ErrorClass::Terminal);
        let err = CertificateKey::from_pkcs12(modern, None).expect_err("missing password");
        assert!(
            matches!(
                err,
                TenantError::Certificate(CertificateError::WrongPassword)
            ),
            "{err:?}"
        );
        let pem = include_bytes!("../../tests/fixtures/app-cert.pem");
        let err = CertificateKey::from_pkcs12(pem, Some("x")).expect_err("not pfx");
        assert!(
            matches!(
                err,
                TenantError::Certificate(CertificateError::NotPkcs12(_))
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("not a PKCS#12"), "{err}");
    }
}
