//! Microsoft identity platform: the v2.0 token endpoint (client credentials with a secret, a
//! certificate assertion or — not yet — a federated assertion), OpenID discovery, JWKS and the
//! admin-consent redirect. Error bodies follow reference §3.6 (AADSTS codes).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::App;
use super::catalog;
use super::state::{CredentialSecret, World};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token-endpoint failure, rendered as the AADSTS JSON body.
#[derive(Debug, Clone)]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, text: impl Into<String>) -> Self {
        Self {
            status,
            error,
            code,
            description: text.into(),
        }
    }

    pub fn render(&self, now: DateTime<Utc>) -> Response {
        let trace = Uuid::new_v4();
        let corr = Uuid::new_v4();
        let ts = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

fn missing_param(name: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// Which API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Graph,
    Exchange,
}

impl Resource {
    pub fn app_id(self) -> &'static str {
        match self {
            Resource::Graph => catalog::GRAPH_APP_ID,
            Resource::Exchange => catalog::EXCHANGE_APP_ID,
        }
    }
}

/// `scope` must be exactly one `<resource>/.default` (app-only flows have no other form).
fn parse_scope(scope: &str) -> Result<(Resource, String), AadError> {
    let parts: Vec<&str> = scope.split_whitespace().collect();
    let invalid = || {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    };
    if parts.len() != 1 {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    let Some(resource) = parts[0].strip_suffix("/.default") else {
        return Err(invalid());
    };
    let r = resource.trim_end_matches('/');
    let known = match r.to_ascii_lowercase().as_str() {
        "https://graph.microsoft.com" | catalog::GRAPH_APP_ID => Resource::Graph,
        "https://outlook.office365.com"
        | "https://outlook.office.com"
        | catalog::EXCHANGE_APP_ID => Resource::Exchange,
        _ => {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                500011,
                format!(
                    "The resource principal named {r} was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                ),
            ));
        }
    };
    Ok((known, r.to_string()))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub aio: String,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    pub oid: String,
    pub rh: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    // NumericDate may be fractional (RFC 7519 §2); msal sends floats.
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
}

fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v: Option<serde_json::Value> = serde::Deserialize::deserialize(d)?;
    Ok(v.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))))
}

pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form_params(&body);
    let federated = super::federation::preverify(&app, &tenant, &params).await;
    // Tokens, client assertions and credential end dates are wall-clock artifacts (the client
    // sets and caches them by its own clock): a sped-up clock must not age them.
    let now = app.shared.clock.unscaled_now();
    match issue_token(&app, &tenant, &headers, &body, now, federated) {
        Ok(resp) => resp,
        Err(e) => e.render(now),
    }
}

fn issue_token(
    app: &App,
    tenant_key: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    federated: Option<Result<(), AadError>>,
) -> Result<Response, AadError> {
    let lower = tenant_key.to_ascii_lowercase();
    if matches!(lower.as_str(), "common" | "consumers" | "organizations") {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    }
    let w = app.shared.read();
    let Some(t) = w.tenant(tenant_key) else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(missing_param("grant_type"));
    }
    let p = form_params(body);
    let grant = param(&p, "grant_type").ok_or_else(|| missing_param("grant_type"))?;
    if grant != "client_credentials" {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    // HTTP Basic carries client_id:client_secret (RFC 6749 §2.3.1), URL-encoded.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':').map(|(a, b)| {
                let dec = |x: &str| {
                    url::form_urlencoded::parse(format!("x={x}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(a), dec(b))
            })
        });
    let client_id = param(&p, "client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(a, _)| a.clone()))
        .ok_or_else(|| missing_param("client_id"))?;
    let scope = param(&p, "scope").ok_or_else(|| missing_param("scope"))?;
    let (resource, aud) = parse_scope(scope)?;

    let not_found = || {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                t.display_name
            ),
        )
    };
    let app_id = Uuid::parse_str(&client_id).map_err(|_| not_found())?;
    let sp = t.sp_by_app_id(&app_id.to_string()).ok_or_else(not_found)?;
    let (_, registration) = w.application(app_id).ok_or_else(not_found)?;
    if !sp.account_enabled {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            7000112,
            format!(
                "Application '{client_id}'({}) is disabled.",
                sp.display_name
            ),
        ));
    }

    let secret = param(&p, "client_secret")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(_, s)| s.clone()));
    let acr = if let Some(secret) = secret {
        let mut any_expired = false;
        let mut ok = false;
        for c in &registration.credentials {
            if let CredentialSecret::Password(p) = &c.secret
                && p == &secret
            {
                if now > c.end {
                    any_expired = true;
                } else {
                    ok = true;
                }
            }
        }
        if any_expired && !ok {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000222,
                format!(
                    "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
                ),
            ));
        }
        if !ok {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        }
        "1"
    } else if let Some(assertion) = param(&p, "client_assertion") {
        if param(&p, "client_assertion_type") != Some(JWT_BEARER) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid JWT token. The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            ));
        }
        verify_assertion(
            app,
            &w,
            t.id,
            &client_id,
            registration,
            assertion,
            now,
            federated,
        )?;
        "2"
    } else {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };

    let roles = t.roles_of(sp.id, resource.app_id());
    let lifetime = app.token_lifetime.as_secs() as i64;
    let claims = AccessClaims {
        aud,
        iss: format!("https://sts.windows.net/{}/", t.id),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: now.timestamp() + lifetime,
        aio: "sim".into(),
        appid: client_id.clone(),
        appidacr: acr.into(),
        idp: format!("https://sts.windows.net/{}/", t.id),
        idtyp: "app".into(),
        oid: sp.id.to_string(),
        rh: "0.sim.".into(),
        roles,
        sub: sp.id.to_string(),
        tid: t.id.to_string(),
        uti: Uuid::new_v4().simple().to_string(),
        ver: "1.0".into(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".into());
    header.kid = Some(app.keys.token_kid.clone());
    header.x5t = Some(app.keys.token_kid.clone());
    let jwt = jsonwebtoken::encode(&header, &claims, &app.keys.token_encoding).map_err(|e| {
        AadError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable",
            50000,
            format!("There was an error issuing a token: {e}"),
        )
    })?;
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": jwt,
    }))
    .into_response())
}

fn bad_assertion(code: u32, text: impl Into<String>) -> AadError {
    AadError::new(StatusCode::UNAUTHORIZED, "invalid_client", code, text)
}

#[allow(clippy::too_many_arguments)]
fn verify_assertion(
    app: &App,
    w: &World,
    tenant_id: Uuid,
    client_id: &str,
    registration: &super::state::Application,
    assertion: &str,
    now: DateTime<Utc>,
    federated: Option<Result<(), AadError>>,
) -> Result<(), AadError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    })?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // Find the registered certificate the header names: x5t (SHA-1) with RS256 or
    // x5t#S256 (SHA-256) with PS256; both forms exist in Microsoft's docs (reference §3.2).
    let mut cert_der = None;
    for c in &registration.credentials {
        let CredentialSecret::Certificate(der) = &c.secret else {
            continue;
        };
        let sha1 = b64.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            der,
        ));
        let sha256 = b64.encode(ring::digest::digest(&ring::digest::SHA256, der));
        // msal writes x5t with standard Base64 padding and alphabet; Entra accepts it, so compare
        // the decoded thumbprints rather than the strings.
        let norm = |s: &str| s.trim_end_matches('=').replace('+', "-").replace('/', "_");
        let hit = header.x5t.as_deref().map(norm).as_deref() == Some(sha1.as_str())
            || header.x5t_s256.as_deref().map(norm).as_deref() == Some(sha256.as_str());
        if hit {
            if now > c.end || now < c.start {
                return Err(bad_assertion(
                    700027,
                    "Client assertion failed signature validation. The key used is expired.",
                ));
            }
            cert_der = Some(der.clone());
        }
    }
    if header.x5t.is_none() && header.x5t_s256.is_none() {
        // A federated (workload identity) assertion carries no thumbprint; it was checked
        // against the app's federated identity credentials before the lock was taken.
        if let Some(r) = federated {
            return r;
        }
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            70021,
            "No matching federated identity record found for presented assertion.",
        ));
    }
    let Some(der) = cert_der else {
        return Err(bad_assertion(
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
                header.x5t.or(header.x5t_s256).unwrap_or_default()
            ),
        ));
    };
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(bad_assertion(
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| bad_assertion(700027, "Client assertion failed signature validation."))?;
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&cert.public_key().subject_public_key.data);
    let mut v = Validation::new(header.alg);
    // Time and audience are checked below against the simulated clock and both URL forms.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v)
        .map_err(|_| bad_assertion(700027, "Client assertion failed signature validation."))?;
    let c = data.claims;
    let t = w.tenant_by_id(tenant_id);
    let mut audiences = vec![format!(
        "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
    )];
    audiences.push(format!("{}/{tenant_id}/oauth2/v2.0/token", app.base_url));
    if let Some(t) = t {
        for d in &t.domains {
            audiences.push(format!(
                "https://login.microsoftonline.com/{d}/oauth2/v2.0/token"
            ));
            audiences.push(format!("{}/{d}/oauth2/v2.0/token", app.base_url));
        }
    }
    let aud_ok = match &c.aud {
        Some(serde_json::Value::String(s)) => audiences.iter().any(|a| a.eq_ignore_ascii_case(s)),
        Some(serde_json::Value::Array(xs)) => xs.iter().any(|x| {
            x.as_str()
                .is_some_and(|s| audiences.iter().any(|a| a.eq_ignore_ascii_case(s)))
        }),
        _ => false,
    };
    if !aud_ok {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience.",
        ));
    }
    if c.iss.as_deref() != Some(client_id) || c.sub.as_deref() != Some(client_id) {
        return Err(bad_assertion(
            700023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    let ts = now.timestamp();
    let exp = c.exp.unwrap_or(0);
    // Entra allows five minutes of clock skew.
    if exp + 300 < ts || c.nbf.is_some_and(|n| n - 300 > ts) {
        return Err(bad_assertion(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                ticks(now),
                c.nbf
                    .and_then(|n| DateTime::from_timestamp(n, 0))
                    .map(ticks)
                    .unwrap_or_default(),
                DateTime::from_timestamp(exp, 0)
                    .map(ticks)
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// .NET round-trip format with seven fractional digits, as Entra prints times.
pub fn ticks(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub async fn openid_configuration(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    let w = app.shared.read();
    let Some(t) = w.tenant(&tenant) else {
        return AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            format!("Tenant '{tenant}' not found."),
        )
        .render(app.shared.clock.now());
    };
    let b = &app.base_url;
    let tid = t.id;
    Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub","iss","cloud_instance_name","cloud_instance_host_name","cloud_graph_host_name","msgraph_host","aud","exp","iat","auth_time","acr","nonce","preferred_username","name","tid","ver","at_hash","c_hash","email"],
        "kerberos_endpoint": format!("{b}/{tid}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub async fn jwks(State(app): State<App>) -> Json<serde_json::Value> {
    Json(app.keys.jwks.clone())
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// `GET /{tenant}/adminconsent?client_id=…&redirect_uri=…`: acts as if a Global Administrator
/// of `{tenant}` signed in and accepted; the consent is recorded and the browser is redirected
/// like Entra does (`?tenant=…&admin_consent=True&state=…`).
pub async fn admin_consent(
    State(app): State<App>,
    Path(tenant): Path<String>,
    Query(q): Query<ConsentQuery>,
) -> Response {
    let now = app.shared.clock.now();
    let Some(client_id) = q.client_id.as_deref().and_then(|c| Uuid::parse_str(c).ok()) else {
        return missing_param("client_id").render(now);
    };
    let result = consent(&app, &tenant, client_id, q.redirect_uri.as_deref());
    match result {
        Ok((tid, redirect)) => {
            let mut url = format!("{redirect}?tenant={tid}&admin_consent=True");
            if let Some(s) = &q.state {
                url.push_str(&format!(
                    "&state={}",
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                ));
            }
            Redirect::to(&url).into_response()
        }
        Err(e) => e.render(now),
    }
}

/// Records an admin's consent: creates the app's service principal in `tenant` (if missing)
/// and the app-role assignments for every application permission the app requires.
pub fn consent(
    app: &App,
    tenant: &str,
    client_id: Uuid,
    redirect_uri: Option<&str>,
) -> Result<(Uuid, String), AadError> {
    let now = app.shared.clock.now();
    let mut w = app.shared.write();
    let Some(idx) = w.tenant_index(tenant) else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!("Tenant '{tenant}' not found."),
        ));
    };
    let tid = w.tenants[idx].id;
    let Some((owner, registration)) = w.application(client_id) else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    let owner_id = owner.id;
    if owner_id != tid && registration.sign_in_audience == "AzureADMyOrg" {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50194,
            format!(
                "Application '{client_id}'({}) is not configured as a multi-tenant application.",
                registration.display_name
            ),
        ));
    }
    let redirect = match redirect_uri {
        Some(r) if registration.redirect_uris.iter().any(|u| u == r) => r.to_string(),
        Some(r) => {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50011,
                format!(
                    "The redirect URI '{r}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
                ),
            ));
        }
        None => registration
            .redirect_uris
            .first()
            .cloned()
            .unwrap_or_else(|| "https://office.com".into()),
    };
    let rra = registration.required_resource_access.clone();
    let name = registration.display_name.clone();
    let t = &mut w.tenants[idx];
    let sp_id = match t.sp_by_app_id(&client_id.to_string()) {
        Some(sp) => sp.id,
        None => {
            let id = Uuid::new_v4();
            t.service_principals.push(super::state::ServicePrincipal {
                id,
                app_id: client_id.to_string(),
                display_name: name,
                app_owner_organization_id: Some(owner_id),
                service_principal_type: "Application".into(),
                account_enabled: true,
            });
            id
        }
    };
    t.grant_consent(sp_id, &rra, now);
    Ok((tid, redirect))
}
