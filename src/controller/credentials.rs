//! App credentials from Kubernetes Secrets (the only place secrets come from). The Secret's
//! `resourceVersion` becomes the credential version, so a rotated Secret invalidates cached tokens.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::error::{ReconcileError, Result};
use crate::api::{CertificateFormat, CredentialsSpec, SecretKeyReference};
use crate::tenant::identity::CertificateKey;
use crate::tenant::{AppCredential, Credential, Redacted};

/// Default projected token path of Azure workload identity.
pub const DEFAULT_FEDERATED_TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";
/// Secret key of the PKCS#12 archive when `format: Pfx` names no `certificateKey`.
pub const DEFAULT_PFX_KEY: &str = "certificate.pfx";

/// Reads one key of a Secret; the error names the Secret and key, never a value.
pub async fn secret_value(api: &Api<Secret>, name: &str, key: &str) -> Result<(Vec<u8>, String)> {
    let secret = api.get_opt(name).await?.ok_or_else(|| {
        ReconcileError::SecretNotFound(format!(
            "Secret {name} not found in namespace {ns}: create it (kubectl -n {ns} create secret generic {name} --from-literal={key}=...) or fix the reference; the object re-validates as soon as the Secret exists",
            ns = api_namespace(api)
        ))
    })?;
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.as_bytes().to_vec())
        })
        .ok_or_else(|| {
            ReconcileError::SecretNotFound(format!(
                "Secret {name} has no key {key:?}: add the key or fix the reference"
            ))
        })?;
    Ok((value, version))
}

fn api_namespace(api: &Api<Secret>) -> String {
    api.namespace().unwrap_or("default").to_string()
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| ReconcileError::InvalidSpec(format!("{what} is not UTF-8 text")))
}

/// Builds the credential for one tenant of a TenantPair.
pub async fn load(
    secrets: &Api<Secret>,
    tenant_id: &str,
    spec: &CredentialsSpec,
) -> Result<AppCredential> {
    let (credential, version) = if let Some(r) = &spec.client_secret {
        let (v, ver) = secret_value(secrets, &r.name, &r.key).await?;
        let text = utf8(v, &format!("Secret {} key {}", r.name, r.key))?;
        (
            Credential::ClientSecret(Redacted::new(text.trim().to_string())),
            ver,
        )
    } else if let Some(c) = &spec.certificate {
        match c.format {
            CertificateFormat::Pem => {
                let cert_key = c.certificate_key.as_deref().unwrap_or("tls.crt");
                let key_key = c.private_key_key.as_deref().unwrap_or("tls.key");
                let (cert, ver) = secret_value(secrets, &c.secret_name, cert_key).await?;
                let (key, _) = secret_value(secrets, &c.secret_name, key_key).await?;
                let ck = CertificateKey::from_pem(&cert, &key).map_err(|e| {
                    ReconcileError::InvalidSpec(format!("Secret {}: {e}", c.secret_name))
                })?;
                (Credential::Certificate(Arc::new(ck)), ver)
            }
            CertificateFormat::Pfx => {
                let pfx_key = c.certificate_key.as_deref().unwrap_or(DEFAULT_PFX_KEY);
                let (pfx, ver) = secret_value(secrets, &c.secret_name, pfx_key).await?;
                // No passwordKey: an archive exported without a password.
                let password = match &c.password_key {
                    Some(k) => {
                        let (p, _) = secret_value(secrets, &c.secret_name, k).await?;
                        let text = utf8(p, &format!("Secret {} key {k}", c.secret_name))?;
                        // `--from-file` keeps a trailing newline; passwords never end in one.
                        Some(Redacted::new(
                            text.trim_end_matches(['\r', '\n']).to_string(),
                        ))
                    }
                    None => None,
                };
                let ck = CertificateKey::from_pkcs12(
                    &pfx,
                    password.as_ref().map(|p| p.expose().as_str()),
                )
                .map_err(|e| {
                    ReconcileError::InvalidSpec(format!(
                        "Secret {} key {pfx_key}: {e}",
                        c.secret_name
                    ))
                })?;
                (Credential::Certificate(Arc::new(ck)), ver)
            }
        }
    } else if let Some(w) = &spec.workload_identity {
        let path = w
            .token_file
            .clone()
            .or_else(|| std::env::var("AZURE_FEDERATED_TOKEN_FILE").ok())
            .unwrap_or_else(|| DEFAULT_FEDERATED_TOKEN_FILE.to_string());
        (
            Credential::WorkloadIdentity {
                token_file: PathBuf::from(path),
            },
            "workload-identity".to_string(),
        )
    } else {
        return Err(ReconcileError::InvalidSpec(
            "credentials need one of clientSecret, certificate or workloadIdentity".into(),
        ));
    };
    Ok(AppCredential {
        tenant: tenant_id.to_string(),
        client_id: spec.client_id.clone(),
        credential,
        version,
    })
}

/// An adopted migration app's client secret.
pub async fn app_secret(secrets: &Api<Secret>, r: &SecretKeyReference) -> Result<(String, String)> {
    let (v, ver) = secret_value(secrets, &r.name, &r.key).await?;
    Ok((
        utf8(v, &format!("Secret {} key {}", r.name, r.key))?
            .trim()
            .to_string(),
        ver,
    ))
}

/// Reads a CA bundle from a ConfigMap key.
pub async fn ca_bundle(configmaps: &Api<ConfigMap>, name: &str, key: &str) -> Result<Vec<u8>> {
    let cm = configmaps.get_opt(name).await?.ok_or_else(|| {
        ReconcileError::DependencyNotReady(format!(
            "ConfigMap {name} (spec.cloud.caBundle) not found"
        ))
    })?;
    cm.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| {
            ReconcileError::InvalidSpec(format!(
                "ConfigMap {name} has no key {key:?} (spec.cloud.caBundle)"
            ))
        })
}
