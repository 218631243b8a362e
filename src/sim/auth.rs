//! Bearer-token checks shared by Graph and Exchange. Deciding only: each protocol renders the
//! failure in its own wire format.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use uuid::Uuid;

use super::App;
use super::identity::{AccessClaims, Resource};

/// The authenticated app calling an API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub app_id: String,
    pub sp_id: Uuid,
    pub roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    BadSignature,
    Expired,
    WrongAudience,
    UnknownTenant,
}

fn audience_matches(aud: &str, resource: Resource) -> bool {
    let a = aud.trim_end_matches('/').to_ascii_lowercase();
    match resource {
        Resource::Graph => a == "https://graph.microsoft.com" || a == super::catalog::GRAPH_APP_ID,
        Resource::Exchange => {
            a == "https://outlook.office365.com"
                || a == "https://outlook.office.com"
                || a == super::catalog::EXCHANGE_APP_ID
        }
    }
}

pub fn authenticate(
    app: &App,
    headers: &HeaderMap,
    resource: Resource,
    now: DateTime<Utc>,
) -> Result<Caller, AuthFailure> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthFailure::Missing)?;
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthFailure::Missing)?;
    let c = match app.token_cache.get(token) {
        Some(c) => c,
        None => {
            let mut v = Validation::new(Algorithm::RS256);
            // Lifetime is checked against the simulator's wall clock (plus manual advances),
            // audience per resource below.
            v.validate_exp = false;
            v.validate_nbf = false;
            v.validate_aud = false;
            v.required_spec_claims.clear();
            let data = jsonwebtoken::decode::<AccessClaims>(token, &app.keys.token_decoding, &v)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthFailure::BadSignature,
                    _ => AuthFailure::Malformed,
                })?;
            app.token_cache.put(token, &data.claims);
            data.claims
        }
    };
    if c.exp <= now.timestamp() {
        return Err(AuthFailure::Expired);
    }
    if !audience_matches(&c.aud, resource) {
        return Err(AuthFailure::WrongAudience);
    }
    let tenant_id = Uuid::parse_str(&c.tid).map_err(|_| AuthFailure::Malformed)?;
    let sp_id = Uuid::parse_str(&c.oid).map_err(|_| AuthFailure::Malformed)?;
    if app.shared.read().tenant_by_id(tenant_id).is_none() {
        return Err(AuthFailure::UnknownTenant);
    }
    Ok(Caller {
        tenant_id,
        app_id: c.appid,
        sp_id,
        roles: c.roles,
    })
}

/// Signature-verified claims by token string. Verifying RS256 on every call dominates the
/// cost of a cheap cmdlet; the cache only skips the signature check (lifetime, audience and
/// tenant are still checked per call). Bounded: cleared when full.
#[derive(Default)]
pub struct TokenCache {
    map: std::sync::Mutex<std::collections::HashMap<String, AccessClaims>>,
}

const TOKEN_CACHE_MAX: usize = 4096;

impl TokenCache {
    fn get(&self, token: &str) -> Option<AccessClaims> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn put(&self, token: &str, claims: &AccessClaims) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= TOKEN_CACHE_MAX {
            m.clear();
        }
        m.insert(token.to_string(), claims.clone());
    }
}
