//! Federated identity credentials (workload identity, reference G §3.3): an app trusts tokens
//! from an external OIDC issuer (e.g. a Kubernetes service-account issuer) for a given subject
//! and audience. The assertion's signature is checked with the issuer's keys: those given in
//! the fixture, or fetched like Entra does (`{issuer}/.well-known/openid-configuration` →
//! `jwks_uri`) over HTTPS trusting `SimConfig::trusted_ca_pems`.

use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

use super::App;
use super::identity::{AadError, ticks};

#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub id: Uuid,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub description: Option<String>,
    /// Issuer public keys (PEM); empty = discover from the issuer.
    pub keys_pem: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
}

fn err(status: StatusCode, error: &'static str, code: u32, text: String) -> AadError {
    AadError {
        status,
        error,
        code,
        description: text,
    }
}

/// Pre-verifies a federated client assertion (no certificate thumbprint in its header).
/// `None` = not a federated assertion or the app/tenant is unknown (the token endpoint then
/// reports its usual errors).
pub async fn preverify(
    app: &App,
    tenant: &str,
    params: &[(String, String)],
) -> Option<Result<(), AadError>> {
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let assertion = get("client_assertion")?;
    let client_id = get("client_id")?;
    let header = jsonwebtoken::decode_header(assertion).ok()?;
    if header.x5t.is_some() || header.x5t_s256.is_some() {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?,
    )
    .ok()?;
    // Federated assertions are signed by a real issuer in wall-clock time.
    let now = app.shared.clock.unscaled_now();
    let fics = {
        let w = app.shared.read();
        let t = w.tenant(tenant)?;
        let app_id = Uuid::parse_str(client_id).ok()?;
        t.sp_by_app_id(&app_id.to_string())?;
        let (_, reg) = w.application(app_id)?;
        reg.federated_credentials.clone()
    };
    let iss = claims.iss.clone().unwrap_or_default();
    let sub = claims.sub.clone().unwrap_or_default();
    let auds: Vec<String> = match &claims.aud {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let by_issuer: Vec<&FederatedCredential> = fics.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Some(Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        )));
    }
    let by_subject: Vec<&&FederatedCredential> =
        by_issuer.iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Some(Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        )));
    }
    let Some(fic) = by_subject
        .iter()
        .find(|f| f.audiences.iter().any(|a| auds.contains(a)))
    else {
        return Some(Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                auds.join(",")
            ),
        )));
    };
    let ts = now.timestamp();
    if claims.exp.is_none_or(|e| e + 300 < ts) || claims.nbf.is_some_and(|n| n - 300 > ts) {
        let fmt = |t: Option<i64>| {
            t.and_then(|x| DateTime::<Utc>::from_timestamp(x, 0))
                .map(ticks)
                .unwrap_or_default()
        };
        return Some(Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                ticks(now),
                fmt(claims.nbf),
                fmt(claims.exp)
            ),
        )));
    }
    let keys = match keys_for(app, fic, header.kid.as_deref()).await {
        Ok(k) => k,
        Err(e) => return Some(Err(e)),
    };
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let ok = keys
        .iter()
        .any(|k| jsonwebtoken::decode::<serde_json::Value>(assertion, k, &v).is_ok());
    if !ok {
        return Some(Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50013,
            "Assertion failed signature validation. [Reason - The key was not found.]".into(),
        )));
    }
    Some(Ok(()))
}

async fn keys_for(
    app: &App,
    fic: &FederatedCredential,
    kid: Option<&str>,
) -> Result<Vec<DecodingKey>, AadError> {
    if !fic.keys_pem.is_empty() {
        return Ok(fic
            .keys_pem
            .iter()
            .filter_map(|p| {
                DecodingKey::from_rsa_pem(p.as_bytes())
                    .or_else(|_| DecodingKey::from_ec_pem(p.as_bytes()))
                    .ok()
            })
            .collect());
    }
    let fail = |why: String| {
        err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50166,
            format!("Request to External OIDC endpoint failed. {why}"),
        )
    };
    let client = app
        .issuer_client
        .as_ref()
        .ok_or_else(|| fail("No trusted CA configured for issuer discovery.".into()))?;
    let disc = format!(
        "{}/.well-known/openid-configuration",
        fic.issuer.trim_end_matches('/')
    );
    let doc: serde_json::Value = client
        .get(&disc)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .json()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .ok_or_else(|| fail("The discovery document has no jwks_uri.".into()))?;
    let set: jsonwebtoken::jwk::JwkSet = client
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .json()
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(set
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .collect())
}
