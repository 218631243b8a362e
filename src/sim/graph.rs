//! Microsoft Graph (`/v1.0`, `/beta`): organization, subscribedSkus, users (with the `$filter`
//! / `$select` / `$top` / `$count` forms an operator uses and opaque `@odata.nextLink` paging),
//! assignLicense, applications + addPassword/removePassword, servicePrincipals,
//! appRoleAssignedTo / appRoleAssignments, `$batch`. Errors use the Graph envelope (reference
//! §2.12); app permissions are checked against the token's `roles`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

#[path = "graph_ctm.rs"]
mod ctm_routes;

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
    let caller = match auth::authenticate(&app, &headers, Resource::Graph, now) {
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
        ) => ctm_routes::dispatch(req, m, rest, body),
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

// ---------- organization / subscribedSkus ----------

fn organization(req: &Req<'_>, id: Option<&str>) -> GResult {
    req.require(&roles(
        &["Organization.Read.All", "Organization.ReadWrite.All"],
        true,
    ))?;
    with_tenant(req, |_, t| {
        if let Some(id) = id
            && !id.eq_ignore_ascii_case(&t.id.to_string())
        {
            return Err(req.not_found(id));
        }
        let domains: Vec<Value> = t
            .domains
            .iter()
            .map(|d| {
                json!({"name": d, "isInitial": *d == t.initial_domain,
                       "isDefault": d == t.default_domain(), "type": "Managed",
                       "capabilities": if *d == t.initial_domain { "Email, OfficeCommunicationsOnline" } else { "Email" }})
            })
            .collect();
        let org = json!({
            "id": t.id, "displayName": t.display_name, "tenantType": "AAD",
            "defaultUsageLocation": t.default_usage_location, "verifiedDomains": domains,
            "countryLetterCode": t.default_usage_location,
            "createdDateTime": "2020-01-01T00:00:00Z",
        });
        let org = apply_select(req, org, None, "organization")?;
        Ok(match id {
            Some(_) => {
                let mut o = org;
                if let Value::Object(m) = &mut o {
                    m.insert(
                        "@odata.context".into(),
                        json!(req.context("organization/$entity")),
                    );
                }
                GraphResponse::ok(o)
            }
            None => GraphResponse::ok(
                json!({"@odata.context": req.context("organization"), "value": [org]}),
            ),
        })
    })
}

fn subscribed_skus(req: &Req<'_>, id: Option<&str>) -> GResult {
    req.require(&roles(
        &[
            "LicenseAssignment.Read.All",
            "LicenseAssignment.ReadWrite.All",
            "Organization.Read.All",
        ],
        true,
    ))?;
    if req.q("filter").is_some() {
        return Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        ));
    }
    with_tenant(req, |_, t| {
        let skus: Vec<Value> = t
            .skus
            .iter()
            .map(|s| {
                json!({
                    "id": format!("{}_{}", t.id, s.sku_id), "accountId": t.id, "accountName": t.display_name,
                    "appliesTo": "User", "capabilityStatus": "Enabled",
                    "consumedUnits": t.consumed_units(s.sku_id),
                    "prepaidUnits": {"enabled": s.seats, "lockedOut": 0, "suspended": 0, "warning": 0},
                    "servicePlans": s.service_plans.iter().map(|(pid, n)| json!({
                        "servicePlanId": pid, "servicePlanName": n, "provisioningStatus": "Success", "appliesTo": "User"})).collect::<Vec<_>>(),
                    "skuId": s.sku_id, "skuPartNumber": s.sku_part_number,
                    "subscriptionIds": [catalog::stable_id(t.id, "subscription", &s.sku_id.to_string())],
                })
            })
            .collect();
        match id {
            Some(id) => {
                let s = skus
                    .into_iter()
                    .find(|s| s["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
                    .ok_or_else(|| req.not_found(id))?;
                Ok(GraphResponse::ok(apply_select(
                    req,
                    s,
                    None,
                    "subscribedSku",
                )?))
            }
            None => {
                let value = skus
                    .into_iter()
                    .map(|s| apply_select(req, s, None, "subscribedSku"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(GraphResponse::ok(
                    json!({"@odata.context": req.context("subscribedSkus"), "value": value}),
                ))
            }
        }
    })
}

// ---------- users ----------

const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

fn user_json(t: &Tenant, u: &User) -> Value {
    let r = t.recipients.iter().find(|r| r.user_id == u.id);
    user_json_with(u, r)
}

fn user_json_with(u: &User, r: Option<&super::state::Recipient>) -> Value {
    let (given, sur) = u
        .display_name
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_else(|| (u.display_name.clone(), String::new()));
    let proxies: Vec<String> = r
        .map(|r| {
            r.email_addresses
                .iter()
                .filter(|a| {
                    a.to_ascii_lowercase().starts_with("smtp:")
                        || a.to_ascii_lowercase().starts_with("x500:")
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": u.id, "userPrincipalName": u.user_principal_name, "displayName": u.display_name,
        "givenName": given, "surname": sur, "mail": u.mail, "mailNickname": r.map(|r| r.alias.clone()),
        "jobTitle": null, "mobilePhone": null, "officeLocation": null, "preferredLanguage": null,
        "businessPhones": [], "usageLocation": u.usage_location, "accountEnabled": u.account_enabled,
        "assignedLicenses": u.assigned_licenses.iter().map(|s| json!({"disabledPlans": [], "skuId": s})).collect::<Vec<_>>(),
        "proxyAddresses": proxies, "createdDateTime": u.created, "userType": "Member",
        "onPremisesSyncEnabled": null, "onPremisesImmutableId": null,
    })
}

fn find_user(t: &Tenant, id: &str) -> Option<usize> {
    t.users.iter().position(|u| {
        u.user_principal_name.eq_ignore_ascii_case(id)
            || Uuid::parse_str(id).is_ok_and(|g| g == u.id)
    })
}

/// A parsed `$filter` over users: conjunctions / disjunctions of simple predicates.
enum Pred {
    Eq(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    In(String, Vec<String>),
    HasSku(String),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
}

const FILTERABLE: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "usageLocation",
    "accountEnabled",
    "givenName",
    "surname",
    "mailNickname",
    "userType",
];

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    if s == "true" || s == "false" || Uuid::parse_str(s).is_ok() {
        return Some(s.to_string());
    }
    None
}

fn split_top(s: &str, op: &str) -> Option<(String, String)> {
    let mut depth = 0i32;
    let mut quote = false;
    let bytes = s.as_bytes();
    let pat = format!(" {op} ");
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        match c {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            _ => {}
        }
        if !quote && depth == 0 && s[i..].to_ascii_lowercase().starts_with(&pat) {
            return Some((s[..i].to_string(), s[i + pat.len()..].to_string()));
        }
        i += 1;
    }
    None
}

fn parse_filter(s: &str) -> Result<Pred, String> {
    let s = s.trim();
    if let Some((a, b)) = split_top(s, "or") {
        return Ok(Pred::Or(
            Box::new(parse_filter(&a)?),
            Box::new(parse_filter(&b)?),
        ));
    }
    if let Some((a, b)) = split_top(s, "and") {
        return Ok(Pred::And(
            Box::new(parse_filter(&a)?),
            Box::new(parse_filter(&b)?),
        ));
    }
    if s.starts_with('(') && s.ends_with(')') {
        return parse_filter(&s[1..s.len() - 1]);
    }
    let check = |p: &str| -> Result<String, String> {
        FILTERABLE
            .iter()
            .find(|f| f.eq_ignore_ascii_case(p.trim()))
            .map(|f| f.to_string())
            .ok_or_else(|| {
                format!(
                    "Could not find a property named '{}' on type 'microsoft.graph.user'.",
                    p.trim()
                )
            })
    };
    let lower = s.to_ascii_lowercase();
    for (fname, ctor) in [("startswith(", 0), ("endswith(", 1)] {
        if lower.starts_with(fname) && s.ends_with(')') {
            let inner = &s[fname.len()..s.len() - 1];
            let (p, v) = inner.split_once(',').ok_or("Invalid filter clause")?;
            let v = unquote(v).ok_or("Invalid filter clause")?;
            let p = check(p)?;
            return Ok(if ctor == 0 {
                Pred::StartsWith(p, v)
            } else {
                Pred::EndsWith(p, v)
            });
        }
    }
    if lower.starts_with("assignedlicenses/any(") && s.ends_with(')') {
        // assignedLicenses/any(x:x/skuId eq <guid>)
        let inner = &s["assignedLicenses/any(".len()..s.len() - 1];
        let (_, cond) = inner.split_once(':').ok_or("Invalid filter clause")?;
        let (lhs, rhs) = split_top(cond, "eq").ok_or("Invalid filter clause")?;
        if !lhs.trim().to_ascii_lowercase().ends_with("/skuid") {
            return Err("Invalid filter clause".into());
        }
        return Ok(Pred::HasSku(unquote(&rhs).ok_or("Invalid filter clause")?));
    }
    if let Some((p, rest)) = split_top(s, "in") {
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or("Invalid filter clause")?;
        let vals = inner
            .split(',')
            .map(|v| unquote(v).ok_or("Invalid filter clause".to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Pred::In(check(&p)?, vals));
    }
    if let Some((p, v)) = split_top(s, "eq") {
        return Ok(Pred::Eq(
            check(&p)?,
            unquote(&v).ok_or("Invalid filter clause")?,
        ));
    }
    Err("Invalid filter clause".into())
}

fn needs_advanced(p: &Pred) -> bool {
    match p {
        Pred::EndsWith(..) => true,
        Pred::And(a, b) | Pred::Or(a, b) => needs_advanced(a) || needs_advanced(b),
        _ => false,
    }
}

fn prop_str(u: &Value, p: &str) -> String {
    match &u[p] {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn eval(p: &Pred, u: &Value) -> bool {
    match p {
        Pred::Eq(k, v) => prop_str(u, k).eq_ignore_ascii_case(v),
        Pred::StartsWith(k, v) => prop_str(u, k)
            .to_ascii_lowercase()
            .starts_with(&v.to_ascii_lowercase()),
        Pred::EndsWith(k, v) => prop_str(u, k)
            .to_ascii_lowercase()
            .ends_with(&v.to_ascii_lowercase()),
        Pred::In(k, vs) => vs.iter().any(|v| prop_str(u, k).eq_ignore_ascii_case(v)),
        Pred::HasSku(s) => u["assignedLicenses"].as_array().is_some_and(|a| {
            a.iter().any(|l| {
                l["skuId"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(s))
            })
        }),
        Pred::And(a, b) => eval(a, u) && eval(b, u),
        Pred::Or(a, b) => eval(a, u) || eval(b, u),
    }
}

fn list_users(req: &Req<'_>) -> GResult {
    req.require(&roles(&["User.Read.All", "User.ReadWrite.All"], true))?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    let advanced = req
        .header("ConsistencyLevel")
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let count = req.q("count").is_some_and(|c| c == "true");
    if req.q("skip").is_some() {
        return Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "'$skip' is not supported by the service.",
        ));
    }
    if (count || req.q("search").is_some() || req.q("orderby").is_some()) && !advanced {
        return Err(req.err(StatusCode::BAD_REQUEST, "Request_BadRequest",
            "The request requires the 'ConsistencyLevel:eventual' header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"));
    }
    let pred = match req.q("filter") {
        Some(f) => Some(parse_filter(f).map_err(|m| {
            if m.starts_with("Could not find") {
                req.bad(m)
            } else {
                req.err(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                )
            }
        })?),
        None => None,
    };
    if let Some(p) = &pred
        && needs_advanced(p)
        && !(advanced && count)
    {
        return Err(req.err(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery",
            "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information"));
    }
    with_tenant(req, |_, t| {
        // One pass to pair users with recipients keeps large tenants linear.
        let by_user: std::collections::HashMap<Uuid, &super::state::Recipient> =
            t.recipients.iter().map(|r| (r.user_id, r)).collect();
        let all: Vec<Value> = t
            .users
            .iter()
            .map(|u| user_json_with(u, by_user.get(&u.id).copied()))
            .filter(|u| pred.as_ref().is_none_or(|p| eval(p, u)))
            .collect();
        let n = all.len();
        let items = all
            .into_iter()
            .map(|u| apply_select(req, u, Some(USER_DEFAULT), "user"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "users", items, 100, offset, count.then_some(n))
    })
}

fn get_user(req: &Req<'_>, id: &str) -> GResult {
    req.require(&roles(&["User.Read.All", "User.ReadWrite.All"], true))?;
    with_tenant(req, |_, t| {
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        let mut v = apply_select(req, user_json(t, &t.users[i]), Some(USER_DEFAULT), "user")?;
        if let Value::Object(m) = &mut v {
            m.insert("@odata.context".into(), json!(req.context("users/$entity")));
        }
        Ok(GraphResponse::ok(v))
    })
}

fn patch_user(req: &Req<'_>, id: &str, body: Option<Value>) -> GResult {
    req.require(&["User.ReadWrite.All", "Directory.ReadWrite.All"])?;
    let Some(Value::Object(b)) = body else {
        return Err(req.bad("Empty Payload. JSON content expected."));
    };
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        for (k, v) in &b {
            match k.as_str() {
                "usageLocation" => {
                    let loc = v.as_str().map(str::to_string);
                    if loc
                        .as_ref()
                        .is_some_and(|l| l.len() != 2 || !l.chars().all(|c| c.is_ascii_uppercase()))
                    {
                        return Err(req.bad("Invalid value specified for property 'usageLocation' of resource 'User'."));
                    }
                    t.users[i].usage_location = loc;
                }
                "displayName" => {
                    if let Some(d) = v.as_str() {
                        t.users[i].display_name = d.to_string();
                    }
                }
                "accountEnabled" => {
                    if let Some(e) = v.as_bool() {
                        t.users[i].account_enabled = e;
                    }
                }
                "jobTitle" | "department" | "officeLocation" | "mobilePhone" | "givenName"
                | "surname" => {}
                other => {
                    return Err(req.bad(format!("Property '{other}' does not exist as a declared property or extension property.")));
                }
            }
        }
        Ok(GraphResponse::no_content())
    })
}

/// Service plans that give the user an Exchange Online mailbox.
fn has_exchange_plan(t: &Tenant, sku: Uuid) -> bool {
    t.skus.iter().find(|s| s.sku_id == sku).is_some_and(|s| {
        s.service_plans.iter().any(|(_, n)| {
            let n = n.to_ascii_uppercase();
            n.starts_with("EXCHANGE_S_")
                || n.starts_with("EXCHANGEENTERPRISE")
                || n.starts_with("EXCHANGESTANDARD")
        })
    })
}

fn assign_license(req: &Req<'_>, id: &str, body: Option<Value>) -> GResult {
    req.require(&[
        "LicenseAssignment.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ])?;
    let b = body.unwrap_or(Value::Null);
    let (Some(add), Some(remove)) = (b["addLicenses"].as_array(), b["removeLicenses"].as_array())
    else {
        return Err(req.bad("Invalid request: addLicenses and removeLicenses are required."));
    };
    let mut adds = Vec::new();
    for a in add {
        let sku = a["skuId"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| {
                req.bad(
                    "Invalid value specified for property 'skuId' of resource 'AssignedLicense'.",
                )
            })?;
        adds.push(sku);
    }
    let mut removes = Vec::new();
    for r in remove {
        let sku = r
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| req.bad("Invalid value specified for property 'removeLicenses'."))?;
        removes.push(sku);
    }
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_user(t, id).ok_or_else(|| req.not_found(id))?;
        let user_id = t.users[i].id;
        if !adds.is_empty() && t.users[i].usage_location.is_none() {
            return Err(
                req.bad("License assignment cannot be done for user with invalid usage location.")
            );
        }
        for sku in &adds {
            let Some(s) = t.skus.iter().find(|s| s.sku_id == *sku) else {
                return Err(req.bad(format!(
                    "License {sku} does not correspond to a valid company License."
                )));
            };
            let already = t.users[i].assigned_licenses.contains(sku);
            if !already && t.consumed_units(*sku) >= s.seats {
                return Err(req.bad(format!(
                    "Subscription with SKU {sku} does not have any available licenses."
                )));
            }
        }
        for sku in &removes {
            if !t.users[i].assigned_licenses.contains(sku) {
                return Err(req.bad(format!("User does not have a corresponding license {sku}.")));
            }
        }
        let before_exchange = t.users[i]
            .assigned_licenses
            .iter()
            .any(|s| has_exchange_plan(t, *s));
        t.users[i]
            .assigned_licenses
            .retain(|s| !removes.contains(s));
        for sku in adds {
            if !t.users[i].assigned_licenses.contains(&sku) {
                t.users[i].assigned_licenses.push(sku);
            }
        }
        let after_exchange = t.users[i]
            .assigned_licenses
            .iter()
            .any(|s| has_exchange_plan(t, *s));
        if after_exchange && !before_exchange {
            license_effects(t, user_id, now);
        }
        let v = user_json(t, &t.users[i]);
        Ok(GraphResponse::ok(v))
    })
}

/// An Exchange licence on a MailUser: proxies in unverified domains are scrubbed; without a
/// stamped ExchangeGuid a brand-new mailbox is provisioned (reference §4 licensing order).
fn license_effects(t: &mut Tenant, user_id: Uuid, now: DateTime<Utc>) {
    let domains = t.domains.clone();
    let ns = t.id;
    let Some(r) = t.recipients.iter_mut().find(|r| r.user_id == user_id) else {
        return;
    };
    if r.is_mailbox() {
        return;
    }
    r.email_addresses.retain(|a| match a.split_once(':') {
        Some((p, x)) if p.eq_ignore_ascii_case("smtp") => {
            let d = x.rsplit('@').next().unwrap_or("");
            domains.iter().any(|k| k.eq_ignore_ascii_case(d))
        }
        _ => true,
    });
    if r.exchange_guid.is_nil() {
        r.kind = super::state::RecipientKind::Mailbox(super::fixture::MailboxKind::UserMailbox);
        r.exchange_guid =
            catalog::stable_id(ns, "provisioned", &format!("{}{}", r.guid, now.timestamp()));
        r.external_email_address = None;
    }
}

// ---------- applications ----------

fn cred_json(c: &Credential) -> Value {
    json!({"customKeyIdentifier": null, "displayName": c.display_name, "endDateTime": c.end,
           "keyId": c.key_id, "startDateTime": c.start,
           "hint": match &c.secret { CredentialSecret::Password(p) => Some(p.chars().take(3).collect::<String>()), _ => None },
           "secretText": null})
}

fn app_json(a: &Application, tenant: &Tenant) -> Value {
    let pw: Vec<Value> = a
        .credentials
        .iter()
        .filter(|c| matches!(c.secret, CredentialSecret::Password(_)))
        .map(cred_json)
        .collect();
    let keys: Vec<Value> = a
        .credentials
        .iter()
        .filter_map(|c| match &c.secret {
            CredentialSecret::Certificate(der) => Some(json!({
                "customKeyIdentifier": base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
                "keyId": c.key_id, "type": "AsymmetricX509Cert", "usage": "Verify",
                "displayName": c.display_name, "startDateTime": c.start, "endDateTime": c.end, "key": null})),
            _ => None,
        })
        .collect();
    json!({
        "id": a.id, "appId": a.app_id, "displayName": a.display_name, "signInAudience": a.sign_in_audience,
        "publisherDomain": tenant.initial_domain, "createdDateTime": a.created,
        "web": {"redirectUris": a.redirect_uris, "homePageUrl": null, "logoutUrl": null},
        "requiredResourceAccess": a.required_resource_access.iter().map(|r| json!({
            "resourceAppId": r.resource_app_id,
            "resourceAccess": r.resource_access.iter().map(|(id, ty)| json!({"id": id, "type": ty})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "passwordCredentials": pw, "keyCredentials": keys,
    })
}

fn find_app(t: &Tenant, key: &str) -> Option<usize> {
    if let Some(app_id) = key.strip_prefix("appId=") {
        return t
            .applications
            .iter()
            .position(|a| a.app_id.to_string().eq_ignore_ascii_case(app_id));
    }
    t.applications
        .iter()
        .position(|a| Uuid::parse_str(key).is_ok_and(|g| g == a.id))
}

const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const APP_WRITE: &[&str] = &["Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"];

fn simple_filter(
    req: &Req<'_>,
    allowed: &[&str],
) -> Result<Option<(String, String)>, GraphResponse> {
    let Some(f) = req.q("filter") else {
        return Ok(None);
    };
    match parse_any_eq(f) {
        Some((p, v)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&p)) => Ok(Some((p, v))),
        _ => Err(req.err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )),
    }
}

fn parse_any_eq(f: &str) -> Option<(String, String)> {
    let (p, v) = split_top(f.trim(), "eq")?;
    Some((p.trim().to_string(), unquote(&v)?))
}

fn list_applications(req: &Req<'_>) -> GResult {
    req.require(APP_READ)?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    let filter = simple_filter(req, &["appId", "displayName"])?;
    with_tenant(req, |_, t| {
        let items = t
            .applications
            .iter()
            .map(|a| app_json(a, t))
            .filter(|a| {
                filter
                    .as_ref()
                    .is_none_or(|(p, v)| prop_str(a, p).eq_ignore_ascii_case(v))
            })
            .map(|a| apply_select(req, a, None, "application"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "applications", items, 100, offset, None)
    })
}

fn get_application(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        Ok(GraphResponse::ok(apply_select(
            req,
            app_json(&t.applications[i], t),
            None,
            "application",
        )?))
    })
}

fn create_application(req: &Req<'_>, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let b = body.unwrap_or(Value::Null);
    let Some(name) = b["displayName"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err(req
            .bad("Invalid value specified for property 'displayName' of resource 'Application'."));
    };
    let audience = b["signInAudience"].as_str().unwrap_or("AzureADMyOrg");
    if ![
        "AzureADMyOrg",
        "AzureADMultipleOrgs",
        "AzureADandPersonalMicrosoftAccount",
        "PersonalMicrosoftAccount",
    ]
    .contains(&audience)
    {
        return Err(req.bad(
            "Invalid value specified for property 'signInAudience' of resource 'Application'.",
        ));
    }
    let redirects: Vec<String> = b["web"]["redirectUris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut rra = Vec::new();
    for r in b["requiredResourceAccess"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let Some(res) = r["resourceAppId"].as_str() else {
            return Err(req.bad("Invalid value specified for property 'resourceAppId' of resource 'RequiredResourceAccess'."));
        };
        let mut access = Vec::new();
        for a in r["resourceAccess"].as_array().cloned().unwrap_or_default() {
            let id = a["id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    req.bad(
                        "Invalid value specified for property 'id' of resource 'ResourceAccess'.",
                    )
                })?;
            let ty = a["type"].as_str().unwrap_or("");
            if ty != "Role" && ty != "Scope" {
                return Err(req.bad(
                    "Invalid value specified for property 'type' of resource 'ResourceAccess'.",
                ));
            }
            access.push((id, ty.to_string()));
        }
        rra.push(RequiredResourceAccess {
            resource_app_id: res.to_string(),
            resource_access: access,
        });
    }
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let a = Application {
            id: Uuid::new_v4(),
            app_id: Uuid::new_v4(),
            display_name: name.to_string(),
            sign_in_audience: audience.to_string(),
            redirect_uris: redirects,
            required_resource_access: rra,
            credentials: Vec::new(),
            federated_credentials: Vec::new(),
            created: now,
        };
        let mut v = app_json(&a, t);
        if let Value::Object(m) = &mut v {
            m.insert(
                "@odata.context".into(),
                json!(req.context("applications/$entity")),
            );
        }
        t.applications.push(a);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

fn add_password(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let pc = body
        .as_ref()
        .map(|b| b["passwordCredential"].clone())
        .unwrap_or(Value::Null);
    let now = req.now;
    let start = pc["startDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now);
    let end = pc["endDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(start + chrono::Duration::days(730));
    if end <= start {
        return Err(req.bad(
            "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
        ));
    }
    let display = pc["displayName"].as_str().map(str::to_string);
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let secret = random_secret();
        let c = Credential {
            key_id: Uuid::new_v4(),
            display_name: display,
            start,
            end,
            secret: CredentialSecret::Password(secret.clone()),
        };
        let mut v = cred_json(&c);
        v["secretText"] = json!(secret);
        v["@odata.context"] = json!(req.context("microsoft.graph.passwordCredential"));
        t.applications[i].credentials.push(c);
        Ok(GraphResponse::ok(v))
    })
}

fn random_secret() -> String {
    // 40 characters from the alphabet Entra uses for generated secrets.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
    let bytes = *Uuid::new_v4().as_bytes();
    let more = *Uuid::new_v4().as_bytes();
    let more2 = *Uuid::new_v4().as_bytes();
    bytes
        .iter()
        .chain(more.iter())
        .chain(more2.iter())
        .take(40)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn remove_password(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let kid = body
        .as_ref()
        .and_then(|b| b["keyId"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| req.bad("Invalid value specified for property 'keyId'."))?;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let before = t.applications[i].credentials.len();
        t.applications[i].credentials.retain(|c| c.key_id != kid);
        if t.applications[i].credentials.len() == before {
            return Err(req.err(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("No password credential found with keyId '{kid}'."),
            ));
        }
        Ok(GraphResponse::no_content())
    })
}

fn fic_json(f: &super::federation::FederatedCredential) -> Value {
    json!({"id": f.id, "name": f.name, "issuer": f.issuer, "subject": f.subject,
           "audiences": f.audiences, "description": f.description})
}

fn list_fics(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let items = t.applications[i]
            .federated_credentials
            .iter()
            .map(fic_json)
            .collect();
        page(
            req,
            &format!(
                "applications/{}/federatedIdentityCredentials",
                t.applications[i].id
            ),
            items,
            100,
            0,
            None,
        )
    })
}

/// `POST /applications/{id}/federatedIdentityCredentials` (max 20 per app, unique name).
fn add_fic(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(APP_WRITE)?;
    let b = body.unwrap_or(Value::Null);
    let s = |k: &str| {
        b[k].as_str()
            .map(str::to_string)
            .filter(|v| !v.trim().is_empty())
    };
    let (Some(name), Some(issuer), Some(subject)) = (s("name"), s("issuer"), s("subject")) else {
        return Err(req.bad("Invalid request: name, issuer and subject are required."));
    };
    let audiences: Vec<String> = b["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if audiences.len() != 1 {
        return Err(req.bad("Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'."));
    }
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let i = find_app(t, key).ok_or_else(|| req.not_found(key))?;
        let a = &mut t.applications[i];
        if a.federated_credentials.len() >= 20 {
            return Err(req.bad(
                "The number of federated identity credentials of an application can't exceed 20.",
            ));
        }
        if a.federated_credentials
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&name))
        {
            return Err(req.err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                format!("FederatedIdentityCredential with name {name} already exists."),
            ));
        }
        if a.federated_credentials
            .iter()
            .any(|f| f.issuer == issuer && f.subject == subject)
        {
            return Err(req.err(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                "FederatedIdentityCredential with the same issuer and subject already exists.",
            ));
        }
        let f = super::federation::FederatedCredential {
            id: Uuid::new_v4(),
            name,
            issuer,
            subject,
            audiences,
            description: s("description"),
            keys_pem: Vec::new(),
        };
        let v = fic_json(&f);
        a.federated_credentials.push(f);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

// ---------- service principals ----------

fn sp_json(t: &Tenant, sp: &ServicePrincipal) -> Value {
    let app_roles: Vec<Value> = catalog::roles_for(&sp.app_id)
        .iter()
        .map(|r| json!({"id": r.id, "value": r.value, "displayName": r.display, "description": r.display,
                        "allowedMemberTypes": ["Application"], "isEnabled": true, "origin": "Application"}))
        .collect();
    let _ = t;
    json!({
        "id": sp.id, "appId": sp.app_id, "displayName": sp.display_name, "appDisplayName": sp.display_name,
        "appOwnerOrganizationId": sp.app_owner_organization_id, "servicePrincipalType": sp.service_principal_type,
        "accountEnabled": sp.account_enabled, "appRoles": app_roles, "servicePrincipalNames": [sp.app_id],
    })
}

fn find_sp(t: &Tenant, key: &str) -> Option<usize> {
    if let Some(app_id) = key.strip_prefix("appId=") {
        return t
            .service_principals
            .iter()
            .position(|s| s.app_id.eq_ignore_ascii_case(app_id));
    }
    t.service_principals
        .iter()
        .position(|s| Uuid::parse_str(key).is_ok_and(|g| g == s.id))
}

fn list_service_principals(req: &Req<'_>) -> GResult {
    req.require(APP_READ)?;
    let mut r = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: req.query.clone(),
        headers: req.headers.clone(),
    };
    let offset = resume(&mut r)?;
    let req = &r;
    let filter = simple_filter(req, &["appId", "displayName", "servicePrincipalType"])?;
    with_tenant(req, |_, t| {
        let items = t
            .service_principals
            .iter()
            .map(|s| sp_json(t, s))
            .filter(|s| {
                filter
                    .as_ref()
                    .is_none_or(|(p, v)| prop_str(s, p).eq_ignore_ascii_case(v))
            })
            .map(|s| apply_select(req, s, None, "servicePrincipal"))
            .collect::<Result<Vec<_>, _>>()?;
        page(req, "servicePrincipals", items, 100, offset, None)
    })
}

fn get_service_principal(req: &Req<'_>, key: &str) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        Ok(GraphResponse::ok(apply_select(
            req,
            sp_json(t, &t.service_principals[i]),
            None,
            "servicePrincipal",
        )?))
    })
}

fn create_service_principal(req: &Req<'_>, body: Option<Value>) -> GResult {
    req.require(&["Application.ReadWrite.All", "Directory.ReadWrite.All"])?;
    let app_id = body
        .as_ref()
        .and_then(|b| b["appId"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| {
            req.bad("Invalid value specified for property 'appId' of resource 'ServicePrincipal'.")
        })?;
    with_tenant_mut(req, |w, idx| {
        let tid = w.tenants[idx].id;
        let Some((owner, reg)) = w.application(app_id) else {
            return Err(req.bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
        };
        if owner.id != tid && reg.sign_in_audience == "AzureADMyOrg" {
            return Err(req.bad(format!("The appId '{app_id}' of the service principal does not reference a valid application object.")));
        }
        let (owner_id, name) = (owner.id, reg.display_name.clone());
        let t = &mut w.tenants[idx];
        if t.sp_by_app_id(&app_id.to_string()).is_some() {
            return Err(req.err(StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue",
                format!("The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use.")));
        }
        let sp = ServicePrincipal {
            id: Uuid::new_v4(),
            app_id: app_id.to_string(),
            display_name: name,
            app_owner_organization_id: Some(owner_id),
            service_principal_type: "Application".into(),
            account_enabled: true,
        };
        let v = sp_json(t, &sp);
        t.service_principals.push(sp);
        Ok(GraphResponse::json(StatusCode::CREATED, v))
    })
}

fn assignment_json(a: &super::state::AppRoleAssignment) -> Value {
    json!({"id": a.id, "appRoleId": a.app_role_id, "createdDateTime": a.created, "deletedDateTime": null,
           "principalDisplayName": a.principal_display_name, "principalId": a.principal_id,
           "principalType": "ServicePrincipal", "resourceDisplayName": a.resource_display_name, "resourceId": a.resource_id})
}

fn list_assignments(req: &Req<'_>, key: &str, assigned_to: bool) -> GResult {
    req.require(APP_READ)?;
    with_tenant(req, |_, t| {
        let i = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        let id = t.service_principals[i].id;
        let items: Vec<Value> = t
            .app_role_assignments
            .iter()
            .filter(|a| {
                if assigned_to {
                    a.resource_id == id
                } else {
                    a.principal_id == id
                }
            })
            .map(assignment_json)
            .collect();
        page(
            req,
            &format!(
                "servicePrincipals/{id}/{}",
                if assigned_to {
                    "appRoleAssignedTo"
                } else {
                    "appRoleAssignments"
                }
            ),
            items,
            100,
            0,
            None,
        )
    })
}

fn assign_app_role(req: &Req<'_>, key: &str, body: Option<Value>) -> GResult {
    req.require(&["AppRoleAssignment.ReadWrite.All"])?;
    let b = body.unwrap_or(Value::Null);
    let g = |k: &str| b[k].as_str().and_then(|s| Uuid::parse_str(s).ok());
    let (Some(principal), Some(resource), Some(role)) =
        (g("principalId"), g("resourceId"), g("appRoleId"))
    else {
        return Err(req.bad("Invalid request: principalId, resourceId and appRoleId are required."));
    };
    let now = req.now;
    with_tenant_mut(req, |w, idx| {
        let t = &mut w.tenants[idx];
        let ri = find_sp(t, key).ok_or_else(|| req.not_found(key))?;
        let res = t.service_principals[ri].clone();
        if res.id != resource {
            return Err(req.bad(
                "The resourceId in the request body must match the service principal in the URL.",
            ));
        }
        let Some(pi) = t.service_principals.iter().position(|s| s.id == principal) else {
            return Err(req.not_found(&principal.to_string()));
        };
        if catalog::role_by_id(&res.app_id, &role.to_string()).is_none() {
            return Err(req.bad("Permission being assigned was not found on application"));
        }
        if t.app_role_assignments.iter().any(|a| {
            a.principal_id == principal && a.resource_id == resource && a.app_role_id == role
        }) {
            return Err(req.bad("Permission being assigned already exists on the object"));
        }
        let rra = [RequiredResourceAccess {
            resource_app_id: res.app_id.clone(),
            resource_access: vec![(role, "Role".into())],
        }];
        let _ = pi;
        t.grant_consent(principal, &rra, now);
        let a = t
            .app_role_assignments
            .iter()
            .find(|a| {
                a.principal_id == principal && a.resource_id == resource && a.app_role_id == role
            })
            .map(assignment_json)
            .unwrap_or(Value::Null);
        Ok(GraphResponse::json(StatusCode::CREATED, a))
    })
}

// ---------- $batch ----------

fn batch(req: &Req<'_>, body: Option<Value>) -> GraphResponse {
    let Some(reqs) = body.as_ref().and_then(|b| b["requests"].as_array()) else {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        );
    };
    if reqs.len() > 20 {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The number of requests in a batch cannot exceed 20.",
        );
    }
    let mut ids: Vec<&str> = Vec::new();
    for r in reqs {
        let Some(id) = r["id"].as_str().or(None) else {
            return req.err(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Each request in a batch must have an id.",
            );
        };
        if ids.contains(&id) {
            return req.err(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Batch request contains duplicate id '{id}'."),
            );
        }
        ids.push(id);
    }
    let mut results: Vec<(String, u16)> = Vec::new();
    let mut responses = Vec::new();
    for r in reqs {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let depends: Vec<String> = r["dependsOn"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let failed_dep = depends.iter().any(|d| {
            results
                .iter()
                .find(|(i, _)| i == d)
                .is_none_or(|(_, s)| *s >= 400)
        });
        let route = format!(
            "/{}/{}",
            req.version,
            r["url"].as_str().unwrap_or("").trim_start_matches('/')
        );
        let throttled = if failed_dep || req.app.faults.is_empty() {
            None
        } else {
            req.app
                .faults
                .throttle_item(&route, &[req.caller.tenant_id.to_string()])
        };
        let resp = if failed_dep {
            req.err(
                StatusCode::FAILED_DEPENDENCY,
                "BadRequest",
                "Dependent request failed.",
            )
        } else if let Some(ra) = throttled {
            // Each item of a batch can be throttled on its own (reference G §2.9).
            let mut e = req.err(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please retry after the time specified in the Retry-After header.",
            );
            e.headers.push(("Retry-After".into(), ra.to_string()));
            e
        } else {
            batch_item(req, r)
        };
        results.push((id.clone(), resp.status.as_u16()));
        let headers: Map<String, Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut item = json!({"id": id, "status": resp.status.as_u16(), "headers": headers});
        if let Some(b) = resp.body {
            item["body"] = b;
        }
        responses.push(item);
    }
    GraphResponse::ok(json!({"responses": responses}))
}

fn batch_item(req: &Req<'_>, r: &Value) -> GraphResponse {
    let method = r["method"]
        .as_str()
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
    let Some(url) = r["url"].as_str() else {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The url of a batch request is required.",
        );
    };
    let Some(method) = method else {
        return req.err(StatusCode::BAD_REQUEST, "BadRequest", "Invalid method.");
    };
    let headers: Vec<(String, String)> = r["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let body = r.get("body").filter(|b| !b.is_null()).cloned();
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Content-Type header is required for a batch request with a body.",
        );
    }
    let url = url.trim_start_matches('/');
    if url.starts_with("v1.0/") || url.starts_with("beta/") {
        return req.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Batch request urls must be relative to the version root.",
        );
    }
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let sub = Req {
        app: req.app,
        caller: req.caller,
        version: req.version,
        now: req.now,
        query: parse_query(Some(q)),
        headers,
    };
    match dispatch(&sub, &method, path, body) {
        Ok(r) | Err(r) => r,
    }
}
