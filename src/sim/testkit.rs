//! Helpers for tests and demos that drive the simulator over its wire protocols, the way the
//! operator does (nothing here reaches into simulator state).

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use serde_json::{Value, json};

use super::RunningSimulator;

/// Scope of the Graph and Exchange resources for client-credential tokens.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";

#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected response {status}: {body}")]
    Status { status: u16, body: String },
    #[error("{0}")]
    Other(String),
}

/// Encrypts a `SecureString` parameter value the way the Exchange module does (PKCS#1 v1.5,
/// Base64), using the PEM from `GET /_sim/keys/exchange-securestring`.
pub fn encrypt_secure_string(public_pem: &str, plain: &str) -> Result<String, KitError> {
    let key = rsa::RsaPublicKey::from_public_key_pem(public_pem)
        .map_err(|e| KitError::Other(format!("bad public key: {e}")))?;
    let ct = key
        .encrypt(
            &mut rsa::rand_core::OsRng,
            rsa::Pkcs1v15Encrypt,
            plain.as_bytes(),
        )
        .map_err(|e| KitError::Other(format!("encrypt: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

impl RunningSimulator {
    /// A client-credentials token for `client_id`/`secret` in `tenant` (GUID or domain).
    pub async fn token_for(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> Result<String, KitError> {
        let c = self.http_client()?;
        let r = c
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.base_url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .send()
            .await?;
        let status = r.status().as_u16();
        let body: Value = r.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| KitError::Status {
                status,
                body: body.to_string(),
            })
    }

    /// A token for the tenant's fixture admin app.
    pub async fn admin_token(&self, tenant: &str, scope: &str) -> Result<String, KitError> {
        let info = self
            .tenants()
            .into_iter()
            .find(|t| t.id.to_string() == tenant || t.initial_domain.eq_ignore_ascii_case(tenant))
            .ok_or_else(|| KitError::Other(format!("no tenant {tenant}")))?;
        let secret = info
            .client_secret
            .ok_or_else(|| KitError::Other("admin app has no secret".into()))?;
        self.token_for(tenant, &info.client_id.to_string(), &secret, scope)
            .await
    }

    /// Runs one cmdlet through `InvokeCommand`; returns the status and the raw body.
    pub async fn invoke(
        &self,
        token: &str,
        tenant: &str,
        cmdlet: &str,
        parameters: Value,
    ) -> Result<(u16, Vec<u8>), KitError> {
        let c = self.http_client()?;
        let r = c
            .post(format!(
                "{}/adminapi/beta/{tenant}/InvokeCommand",
                self.base_url()
            ))
            .bearer_auth(token)
            .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?.to_vec()))
    }

    /// The SecureString public key (PEM).
    pub async fn securestring_key(&self) -> Result<String, KitError> {
        let c = self.http_client()?;
        Ok(c.get(format!(
            "{}/_sim/keys/exchange-securestring",
            self.base_url()
        ))
        .send()
        .await?
        .text()
        .await?)
    }
}
