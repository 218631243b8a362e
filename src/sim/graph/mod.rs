//! Microsoft Graph (`/v1.0`, `/beta`): organization, subscribedSkus, users (with the `$filter`
//! / `$select` / `$top` / `$count` forms an operator uses and opaque `@odata.nextLink` paging),
//! assignLicense, applications + addPassword/removePassword, servicePrincipals,
//! appRoleAssignedTo / appRoleAssignments, `$batch`. Errors use the Graph envelope (reference
//! §2.12); app permissions are checked against the token's `roles`.
//!
//! This file owns the transport (auth, request context, routing, `$select`, paging); the
//! endpoints live in `directory` (organization, SKUs, users, licences), `apps` (applications,
//! credentials, service principals, grants), `batch` and `ctm` (crossTenantMigrationJob).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

mod apps;
mod batch;
mod ctm;
mod directory;

use apps::*;
use batch::*;
use directory::*;

use super::App;
use super::auth::{self, AuthFailure, Caller};
use super::catalog;
use super::identity::Resource;
use super::state::{
    Application, Credential, CredentialSecret, RequiredResourceAccess, ServicePrincipal, Tenant,
    User, World,
};

/// A Graph response before rendering (also used for `$batch` items).
#[derive(Debug)]
pub struct GraphResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl GraphResponse {
    fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: vec![(
                "Content-Type".into(),
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8".into(),
            )],
        }
    }

    fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }

    fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn error(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let rid = Uuid::new_v4();
        Self::json(
            status,
            json!({"error": {"code": code, "message": message.into(), "innerError": {
                "date": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": rid, "client-request-id": rid}}}),
        )
    }

    fn into_response(self) -> Response {
        let mut r = match self.body {
            Some(b) => (self.status, axum::Json(b)).into_response(),
            None => self.status.into_response(),
        };
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                r.headers_mut().insert(k, v);
            }
        }
        let rid = Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&rid) {
            r.headers_mut().insert("request-id", v.clone());
            r.headers_mut().insert("client-request-id", v);
        }
        r
    }
}

type GResult = Result<GraphResponse, GraphResponse>;

/// Per-request context.
struct Req<'a> {
    app: &'a App,
    caller: &'a Caller,
    version: &'static str,
    now: DateTime<Utc>,
    query: Vec<(String, String)>,
    /// Lower-cased header names → values (outer request or `$batch` item).
    headers: Vec<(String, String)>,
}

impl Req<'_> {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case(name) || k.eq_ignore_ascii_case(&format!("${name}"))
            })
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn err(&self, status: StatusCode, code: &str, msg: impl Into<String>) -> GraphResponse {
        GraphResponse::error(status, code, msg, self.now)
    }

    fn bad(&self, msg: impl Into<String>) -> GraphResponse {
        self.err(StatusCode::BAD_REQUEST, "Request_BadRequest", msg)
    }

    fn not_found(&self, id: &str) -> GraphResponse {
        self.err(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    /// The caller must hold one of these app roles.
    fn require(&self, any_of: &[&str]) -> Result<(), GraphResponse> {
        if any_of.iter().any(|r| self.caller.has_role(r)) {
            Ok(())
        } else {
            Err(self.err(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
    }

    fn base(&self) -> String {
        format!("{}/{}", self.app.base_url, self.version)
    }

    fn context(&self, what: &str) -> String {
        format!("{}/$metadata#{what}", self.base())
    }
}

const DIR_READ: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];

fn roles(extra: &[&'static str], dir_read: bool) -> Vec<&'static str> {
    let mut v = extra.to_vec();
    if dir_read {
        v.extend_from_slice(DIR_READ);
    } else {
        v.push("Directory.ReadWrite.All");
    }
    v
}

pub async fn handle_v1(
    state: State<App>,
    path: Path<String>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, path, "v1.0", method, query, headers, body).await
}

pub async fn handle_beta(
    state: State<App>,
    path: Path<String>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, path, "beta", method, query, headers, body).await
}

fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

async fn handle(
    State(app): State<App>,
    Path(path): Path<String>,
    version: &'static str,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app.shared.clock.now();
    let caller = match auth::authenticate(
        &app,
        &headers,
        Resource::Graph,
        app.shared.clock.unscaled_now(),
    ) {
        Ok(c) => c,
        Err(f) => {
            let msg = match f {
                AuthFailure::Missing => "Access token is empty.",
                AuthFailure::Expired => "Lifetime validation failed, the token is expired.",
                AuthFailure::WrongAudience => "Access token validation failure. Invalid audience.",
                AuthFailure::BadSignature => "Access token validation failure. Invalid signature.",
                _ => "Access token validation failure.",
            };
            let mut r = GraphResponse::error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                msg,
                now,
            )
            .into_response();
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""),
            );
            return r;
        }
    };
    app.advance_moves();
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let json_body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => Some(v),
            Err(_) => {
                return GraphResponse::error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                    now,
                )
                .into_response();
            }
        }
    };
    let req = Req {
        app: &app,
        caller: &caller,
        version,
        now,
        query: parse_query(raw.as_deref()),
        headers: hdrs,
    };
    if path == "$batch" {
        if method != Method::POST {
            return req
                .err(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "BadRequest",
                    "Method not allowed.",
                )
                .into_response();
        }
        return batch(&req, json_body).into_response();
    }
    match dispatch(&req, &method, &path, json_body) {
        Ok(r) | Err(r) => r.into_response(),
    }
}

/// Splits `applications(appId='x')/addPassword` into `["applications", "appId=x", "addPassword"]`.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seg in path.trim_matches('/').split('/') {
        if let Some((head, rest)) = seg.split_once('(')
            && let Some(inner) = rest.strip_suffix(')')
        {
            out.push(head.to_string());
            let inner = inner.replace('\'', "");
            out.push(if inner.contains('=') {
                inner
            } else {
                inner.to_string()
            });
            continue;
        }
        out.push(seg.to_string());
    }
    out
}

fn dispatch(req: &Req<'_>, method: &Method, path: &str, body: Option<Value>) -> GResult {
    let segs = segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    match (s.as_slice(), method) {
        (["organization"], _) if get => organization(req, None),
        (["organization", id], _) if get => organization(req, Some(id)),
        (["subscribedSkus"], _) if get => subscribed_skus(req, None),
        (["subscribedSkus", id], _) if get => subscribed_skus(req, Some(id)),
        (["users"], _) if get => list_users(req),
        (["users", id], _) if get => get_user(req, id),
        (["users", id], m) if *m == Method::PATCH => patch_user(req, id, body),
        (["users", id, "assignLicense"], _) if post => assign_license(req, id, body),
        (["applications"], _) if get => list_applications(req),
        (["applications"], _) if post => create_application(req, body),
        (["applications", id], _) if get => get_application(req, id),
        (["applications", id], m) if *m == Method::DELETE => delete_application(req, id),
        (["applications", id, "addPassword"], _) if post => add_password(req, id, body),
        (["applications", id, "removePassword"], _) if post => remove_password(req, id, body),
        (["applications", id, "federatedIdentityCredentials"], _) if get => list_fics(req, id),
        (["applications", id, "federatedIdentityCredentials"], _) if post => add_fic(req, id, body),
        (["servicePrincipals"], _) if get => list_service_principals(req),
        (["servicePrincipals"], _) if post => create_service_principal(req, body),
        (["servicePrincipals", id], _) if get => get_service_principal(req, id),
        (["servicePrincipals", id, "appRoleAssignedTo"], _) if get => {
            list_assignments(req, id, true)
        }
        (["servicePrincipals", id, "appRoleAssignedTo"], _) if post => {
            assign_app_role(req, id, body)
        }
        (["servicePrincipals", id, "appRoleAssignments"], _) if get => {
            list_assignments(req, id, false)
        }
        (
            [
                "solutions",
                "migrations",
                "crossTenantMigrationJobs",
                rest @ ..,
            ],
            m,
        ) => ctm::dispatch(req, m, rest, body),
        ([first, ..], _) => {
            let known = [
                "organization",
                "subscribedSkus",
                "users",
                "applications",
                "servicePrincipals",
            ];
            if known.contains(first) {
                Err(req.err(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.",
                ))
            } else {
                Err(req.err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Resource not found for the segment '{first}'."),
                ))
            }
        }
        _ => Err(req.err(StatusCode::BAD_REQUEST, "BadRequest", "Invalid request.")),
    }
}

fn with_tenant<T>(
    req: &Req<'_>,
    f: impl FnOnce(&World, &Tenant) -> Result<T, GraphResponse>,
) -> Result<T, GraphResponse> {
    let w = req.app.shared.read();
    let t = w
        .tenant_by_id(req.caller.tenant_id)
        .ok_or_else(|| req.not_found(&req.caller.tenant_id.to_string()))?;
    f(&w, t)
}

fn with_tenant_mut<T>(
    req: &Req<'_>,
    f: impl FnOnce(&mut World, usize) -> Result<T, GraphResponse>,
) -> Result<T, GraphResponse> {
    let mut w = req.app.shared.write();
    let idx = w
        .tenants
        .iter()
        .position(|t| t.id == req.caller.tenant_id)
        .ok_or_else(|| req.not_found(&req.caller.tenant_id.to_string()))?;
    f(&mut w, idx)
}

// ---------- $select / paging helpers ----------

fn apply_select(
    req: &Req<'_>,
    mut v: Value,
    defaults: Option<&[&str]>,
    type_name: &str,
) -> Result<Value, GraphResponse> {
    let sel: Option<Vec<String>> = req.q("select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let Value::Object(m) = &mut v else {
        return Ok(v);
    };
    match sel {
        Some(sel) => {
            for p in &sel {
                if !m.keys().any(|k| k.eq_ignore_ascii_case(p)) {
                    return Err(req.bad(format!("Could not find a property named '{p}' on type 'microsoft.graph.{type_name}'.")));
                }
            }
            m.retain(|k, _| sel.iter().any(|s| s.eq_ignore_ascii_case(k)));
        }
        None => {
            if let Some(d) = defaults {
                m.retain(|k, _| d.contains(&k.as_str()));
            }
        }
    }
    Ok(v)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    /// Offset into the result.
    o: usize,
    /// The original query (minus paging) so the link alone reproduces the request.
    q: Vec<(String, String)>,
}

/// Builds a collection page: `value`, `@odata.context`, `@odata.nextLink` (opaque
/// `$skiptoken`), `@odata.count` on the first page when asked for.
fn page(
    req: &Req<'_>,
    resource: &str,
    items: Vec<Value>,
    default_top: usize,
    offset: usize,
    count: Option<usize>,
) -> Result<GraphResponse, GraphResponse> {
    let top = match req.q("top") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(req.bad(format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                )));
            }
        },
        None => default_top,
    };
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(offset).take(top).collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(req.context(resource)));
    if let Some(c) = count
        && offset == 0
    {
        body.insert("@odata.count".into(), json!(c));
    }
    if offset + top < total {
        let q: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .cloned()
            .collect();
        let tok = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&Cursor { o: offset + top, q }).unwrap_or_default());
        body.insert(
            "@odata.nextLink".into(),
            json!(format!("{}/{resource}?$skiptoken={tok}", req.base())),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// Restores the original query from a `$skiptoken` (the link is followed verbatim).
fn resume(req: &mut Req<'_>) -> Result<usize, GraphResponse> {
    let Some(tok) = req.q("skiptoken").map(str::to_string) else {
        return Ok(0);
    };
    let c: Cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| req.bad("Invalid $skiptoken value."))?;
    req.query = c.q;
    Ok(c.o)
}
