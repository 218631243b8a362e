//! Exchange Online admin API: `POST /adminapi/beta/{tenant}/InvokeCommand` with the
//! `CmdletInput` envelope (reference §1). This module owns the transport: authentication and
//! authorisation, envelope parsing, parameter binding, `$select`, `ResultSize` / page size and
//! `@odata.nextLink`, and the error shape. Cmdlets live in one file per family.

pub mod endpoints;
pub mod groups;
pub mod migration;
pub mod opath;
pub mod org;
pub mod params;
pub mod recipients;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::App;
use super::auth::{self, AuthFailure, Caller};
use super::catalog;
use super::identity::Resource;
use super::state::{Tenant, World};
pub use params::Params;

/// The backend server name used in Exchange messages ("… couldn't be found on 'SERVER'").
pub const SERVER: &str = "AM0PR01A001.EURPRD01.PROD.OUTLOOK.COM";

/// A terminating cmdlet error: rendered as
/// `details[0].message = "<id>|<ExceptionType>|<text>"` (reference §1.6).
#[derive(Debug, Clone)]
pub struct CmdletError {
    pub status: StatusCode,
    pub id: &'static str,
    pub exception: &'static str,
    pub message: String,
}

impl CmdletError {
    pub fn new(exception: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            id: "",
            exception,
            message: message.into(),
        }
    }

    pub fn with_id(mut self, id: &'static str) -> Self {
        self.id = id;
        self
    }

    pub fn not_found(identity: &str) -> Self {
        Self::new(
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            format!(
                "The operation couldn't be performed because object '{identity}' couldn't be found on '{SERVER}'."
            ),
        )
        .with_id("Ex6F9304")
    }

    pub fn already_exists(identity: &str) -> Self {
        Self::new(
            "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAlreadyExistsException",
            format!("The object '{identity}' already exists."),
        )
    }

    pub fn invalid_argument(text: impl Into<String>) -> Self {
        Self::new("System.ArgumentException", text)
    }

    pub fn dehydrated() -> Self {
        Self::new(
            "Microsoft.Exchange.Configuration.Tasks.CmdletInvalidOperationInDehydratedContextException",
            "The command you tried to run isn't currently allowed in your organization. To run this command, you first need to run the command: Enable-OrganizationCustomization.",
        )
    }

    fn render(&self) -> Response {
        let body = json!({
            "error": {
                "code": if self.status == StatusCode::NOT_FOUND { "NotFound" } else { "BadRequest" },
                "message": "Error executing cmdlet",
                "details": [{
                    "code": "Client",
                    "target": "",
                    "message": format!("{}|{}|{}", self.id, self.exception, self.message),
                }],
                "innererror": {
                    "message": "Error executing cmdlet",
                    "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    "internalexception": { "message": self.message, "type": self.exception },
                },
            }
        });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(self.exception) {
            r.headers_mut().insert("x-ExceptionType", v);
        }
        r
    }
}

/// What a cmdlet produced.
#[derive(Debug, Default)]
pub struct CmdletOutput {
    pub value: Vec<Value>,
    pub warnings: Vec<String>,
}

impl CmdletOutput {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn one(v: Value) -> Self {
        Self {
            value: vec![v],
            warnings: Vec::new(),
        }
    }

    pub fn many(value: Vec<Value>) -> Self {
        Self {
            value,
            warnings: Vec::new(),
        }
    }

    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}

pub type CmdletResult = Result<CmdletOutput, CmdletError>;

/// Per-call context handed to cmdlets.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub tenant_id: Uuid,
    pub now: DateTime<Utc>,
}

/// What a cmdlet touches: reads take the shared lock, writes the exclusive one.
enum Access {
    Read(fn(&Ctx<'_>, &World, &Tenant, &mut Params) -> CmdletResult),
    Write(fn(&Ctx<'_>, &mut World, usize, &mut Params) -> CmdletResult),
}

struct CmdletDef {
    name: &'static str,
    access: Access,
    /// Must the org be hydrated (`Enable-OrganizationCustomization`) first?
    needs_customization: bool,
}

const fn read(
    name: &'static str,
    f: fn(&Ctx<'_>, &World, &Tenant, &mut Params) -> CmdletResult,
) -> CmdletDef {
    CmdletDef {
        name,
        access: Access::Read(f),
        needs_customization: false,
    }
}

const fn write(
    name: &'static str,
    f: fn(&Ctx<'_>, &mut World, usize, &mut Params) -> CmdletResult,
) -> CmdletDef {
    CmdletDef {
        name,
        access: Access::Write(f),
        needs_customization: false,
    }
}

const fn hydrated(mut d: CmdletDef) -> CmdletDef {
    d.needs_customization = true;
    d
}

static CMDLETS: &[CmdletDef] = &[
    read("Get-OrganizationConfig", org::get_organization_config),
    write(
        "Enable-OrganizationCustomization",
        org::enable_organization_customization,
    ),
    read("Get-AcceptedDomain", org::get_accepted_domain),
    hydrated(write(
        "New-OrganizationRelationship",
        org::new_organization_relationship,
    )),
    read(
        "Get-OrganizationRelationship",
        org::get_organization_relationship,
    ),
    hydrated(write(
        "Set-OrganizationRelationship",
        org::set_organization_relationship,
    )),
    write(
        "Remove-OrganizationRelationship",
        org::remove_organization_relationship,
    ),
    write("New-MigrationEndpoint", endpoints::new_migration_endpoint),
    read("Get-MigrationEndpoint", endpoints::get_migration_endpoint),
    write("Set-MigrationEndpoint", endpoints::set_migration_endpoint),
    write(
        "Remove-MigrationEndpoint",
        endpoints::remove_migration_endpoint,
    ),
    read(
        "Test-MigrationServerAvailability",
        endpoints::test_migration_server_availability,
    ),
    write("New-DistributionGroup", groups::new_distribution_group),
    read("Get-DistributionGroup", groups::get_distribution_group),
    write(
        "Remove-DistributionGroup",
        groups::remove_distribution_group,
    ),
    write(
        "Add-DistributionGroupMember",
        groups::add_distribution_group_member,
    ),
    write(
        "Remove-DistributionGroupMember",
        groups::remove_distribution_group_member,
    ),
    read(
        "Get-DistributionGroupMember",
        groups::get_distribution_group_member,
    ),
    read("Get-Mailbox", recipients::get_mailbox),
    write("Set-Mailbox", recipients::set_mailbox),
    read("Get-MailboxStatistics", recipients::get_mailbox_statistics),
    read("Get-MailboxPermission", recipients::get_mailbox_permission),
    read(
        "Get-MailboxFolderStatistics",
        recipients::get_mailbox_folder_statistics,
    ),
    read(
        "Export-MailboxDiagnosticLogs",
        recipients::export_mailbox_diagnostic_logs,
    ),
    read("Get-MailUser", recipients::get_mail_user),
    write("New-MailUser", recipients::new_mail_user),
    write("Set-MailUser", recipients::set_mail_user),
    read("Get-User", recipients::get_user),
    write("New-MigrationBatch", migration::new_migration_batch),
    read("Get-MigrationBatch", migration::get_migration_batch),
    write("Start-MigrationBatch", migration::start_migration_batch),
    write("Stop-MigrationBatch", migration::stop_migration_batch),
    write(
        "Complete-MigrationBatch",
        migration::complete_migration_batch,
    ),
    write("Remove-MigrationBatch", migration::remove_migration_batch),
    write("Set-MigrationBatch", migration::set_migration_batch),
    read("Get-MigrationUser", migration::get_migration_user),
    write("Remove-MigrationUser", migration::remove_migration_user),
    write("Set-MigrationUser", migration::set_migration_user),
    write("Start-MigrationUser", migration::start_migration_user),
    write("Stop-MigrationUser", migration::stop_migration_user),
    read(
        "Get-MigrationUserStatistics",
        migration::get_migration_user_statistics,
    ),
    read("Get-MoveRequest", migration::get_move_request),
    read(
        "Get-MoveRequestStatistics",
        migration::get_move_request_statistics,
    ),
    write("Set-User", recipients::set_user),
];

/// `/adminapi/v1.0/{tenant}/InvokeCommand` answers 405 (reference §1.1).
pub async fn method_not_allowed() -> Response {
    StatusCode::METHOD_NOT_ALLOWED.into_response()
}

/// The 401 Exchange sends for a missing, invalid, expired or wrong-audience token, or a token
/// without `Exchange.ManageAsApp`.
fn unauthorized() -> Response {
    let mut r = StatusCode::UNAUTHORIZED.into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"invalid_token\"",
        ),
    );
    r
}

/// An unauthorised or unknown cmdlet: 403 with a body of NUL bytes (reference §1.2).
fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, Body::from(vec![0u8; 16])).into_response()
}

fn bad_envelope(text: &str) -> Response {
    CmdletError::new(
        "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
        text,
    )
    .render()
}

const PAGE_EXPIRY_MINUTES: i64 = 30;

#[derive(serde::Serialize, serde::Deserialize)]
struct SkipToken {
    /// Offset into the result.
    o: usize,
    /// Issued at (simulated unix seconds).
    t: i64,
    /// Cmdlet the cursor belongs to.
    c: String,
}

pub async fn invoke_command(
    State(app): State<App>,
    Path(tenant): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let now = app.shared.clock.now();
    let caller = match auth::authenticate(
        &app,
        &headers,
        Resource::Exchange,
        app.shared.clock.unscaled_now(),
    ) {
        Ok(c) => c,
        Err(AuthFailure::Missing)
        | Err(AuthFailure::Malformed)
        | Err(AuthFailure::BadSignature)
        | Err(AuthFailure::Expired)
        | Err(AuthFailure::WrongAudience)
        | Err(AuthFailure::UnknownTenant) => return unauthorized(),
    };
    let tenant_id = {
        let w = app.shared.read();
        match w.tenant(&tenant) {
            Some(t) => t.id,
            None => return unauthorized(),
        }
    };
    // A token is only good for its own tenant.
    if tenant_id != caller.tenant_id || !caller.has_role("Exchange.ManageAsApp") {
        return unauthorized();
    }
    let dir_roles: Vec<String> = {
        let w = app.shared.read();
        w.tenant_by_id(tenant_id)
            .map(|t| {
                t.directory_roles_of(caller.sp_id)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let has = |set: &[&str]| {
        dir_roles
            .iter()
            .any(|r| set.iter().any(|s| s.eq_ignore_ascii_case(r)))
    };
    if !has(catalog::EXCHANGE_DIRECTORY_ROLES) {
        return forbidden();
    }

    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return bad_envelope("The request body is not valid JSON."),
    };
    let Some(input) = envelope.get("CmdletInput").and_then(Value::as_object) else {
        return bad_envelope("The request body must contain CmdletInput.");
    };
    let Some(name) = input.get("CmdletName").and_then(Value::as_str) else {
        return bad_envelope("CmdletInput.CmdletName is required.");
    };
    let raw_params = match input.get("Parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return bad_envelope("CmdletInput.Parameters must be an object."),
    };
    let Some(def) = CMDLETS.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
        return forbidden();
    };
    let is_read = matches!(def.access, Access::Read(_));
    if !is_read && !has(catalog::EXCHANGE_WRITE_DIRECTORY_ROLES) {
        return forbidden();
    }

    let mut params = Params::new(def.name, raw_params);
    let select: Option<Vec<String>> = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$select"))
        .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect());
    let skiptoken = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(_, v)| v.clone());
    let page_size = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|p| {
            p.split(',')
                .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .filter(|n| *n > 0);

    let ctx = Ctx {
        app: &app,
        caller: &caller,
        tenant_id,
        now,
    };
    let result = run(&ctx, def, &mut params);
    let mut out = match result {
        Ok(o) => o,
        Err(e) => return e.render(),
    };

    // ResultSize: Get- cmdlets return at most 1000 objects unless told otherwise.
    let mut truncated_by_result_size = false;
    if def.name.starts_with("Get-") {
        let limit = match params.result_size() {
            Ok(l) => l,
            Err(e) => return e.render(),
        };
        if let Some(limit) = limit
            && out.value.len() > limit
        {
            out.value.truncate(limit);
            truncated_by_result_size = true;
        }
    }
    if truncated_by_result_size {
        out.warnings.push("There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.".into());
    }

    // Page by `Prefer: odata.maxpagesize`; the cursor is opaque and expires (in wall-clock time).
    let page_now = app.shared.clock.unscaled_now();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut offset = 0usize;
    if let Some(tok) = skiptoken {
        let decoded = b64
            .decode(tok.as_bytes())
            .ok()
            .and_then(|b| serde_json::from_slice::<SkipToken>(&b).ok());
        match decoded {
            Some(t)
                if t.c == def.name && page_now.timestamp() - t.t <= PAGE_EXPIRY_MINUTES * 60 =>
            {
                offset = t.o;
            }
            _ => {
                return CmdletError::new(
                    "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    "Expired or Invalid pagination request. Default Expiry time is 00:30:00",
                )
                .render();
            }
        }
    }
    let total = out.value.len();
    let mut next_link = None;
    let mut page: Vec<Value> = out.value.into_iter().skip(offset).collect();
    if let Some(n) = page_size
        && page.len() > n
    {
        page.truncate(n);
        let tok = SkipToken {
            o: offset + n,
            t: page_now.timestamp(),
            c: def.name.to_string(),
        };
        let tok = b64.encode(serde_json::to_vec(&tok).unwrap_or_default());
        next_link = Some(format!(
            "{}/adminapi/beta/{tenant}/InvokeCommand?$skiptoken={tok}",
            app.base_url
        ));
        out.warnings.push(format!(
            "There are more results, use the nextLink to retrieve them. Results shown: {n} of {total}."
        ));
    }
    if let Some(sel) = &select {
        for v in &mut page {
            if let Value::Object(m) = v {
                m.retain(|k, _| sel.iter().any(|s| s.eq_ignore_ascii_case(k)));
            }
        }
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/adminapi/beta/{tenant_id}/$metadata#Collection(Exchange.GenericHashTable)",
            app.base_url
        )),
    );
    body.insert("@adminapi.warnings".into(), json!(out.warnings));
    if let Some(link) = next_link {
        body.insert("@odata.nextLink".into(), json!(link));
    }
    body.insert("value".into(), Value::Array(page));
    let mut r = axum::Json(Value::Object(body)).into_response();
    r.headers_mut()
        .insert("X-CalculatedBETarget", HeaderValue::from_static(SERVER));
    if let Ok(v) = HeaderValue::from_str(&Uuid::new_v4().to_string()) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

fn run(ctx: &Ctx<'_>, def: &CmdletDef, params: &mut Params) -> CmdletResult {
    // Bring the move engine up to date first, so every cmdlet sees the world as of now.
    ctx.app.advance_moves();
    match def.access {
        Access::Read(f) => {
            let w = ctx.app.shared.read();
            let t = w
                .tenant_by_id(ctx.tenant_id)
                .ok_or_else(|| CmdletError::not_found(&ctx.tenant_id.to_string()))?;
            if def.needs_customization && !t.customization_effective(ctx.now) {
                return Err(CmdletError::dehydrated());
            }
            let out = f(ctx, &w, t, params)?;
            params.finish()?;
            Ok(out)
        }
        Access::Write(f) => {
            // RSA decryption of SecureString parameters is slow: do it before taking the lock.
            params.predecrypt(&ctx.app.keys, &["Password"]);
            let mut w = ctx.app.shared.write();
            let idx = w
                .tenants
                .iter()
                .position(|t| t.id == ctx.tenant_id)
                .ok_or_else(|| CmdletError::not_found(&ctx.tenant_id.to_string()))?;
            if def.needs_customization && !w.tenants[idx].customization_effective(ctx.now) {
                return Err(CmdletError::dehydrated());
            }
            // Bind every parameter before touching state so a typo changes nothing; cmdlets
            // validate fully before mutating, so a failed call leaves the world as it was.
            let snapshot = w.tenants[idx].clone();
            let out = f(ctx, &mut w, idx, params).and_then(|o| params.finish().map(|()| o));
            if out.is_err() || params.what_if() {
                w.tenants[idx] = snapshot;
            }
            // -WhatIf validates (so the dehydration probe of Microsoft's scripts works) but
            // changes nothing and emits no objects.
            if params.what_if() {
                return out.map(|_| CmdletOutput::none());
            }
            out
        }
    }
}

/// `1 GB (1,073,741,824 bytes)`: how Exchange renders a ByteQuantifiedSize.
pub fn byte_size(bytes: u64) -> String {
    let units = [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
    ];
    let human = units
        .iter()
        .find(|(_, s)| bytes >= *s)
        .map(|(u, s)| {
            let v = bytes as f64 / *s as f64;
            let v = (v * 100.0).round() / 100.0;
            format!("{v} {u}")
        })
        .unwrap_or_else(|| format!("{bytes} B"));
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{human} ({grouped} bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_render_like_exchange() {
        assert_eq!(byte_size(30_551_458_399), "28.45 GB (30,551,458,399 bytes)");
        assert_eq!(byte_size(0), "0 B (0 bytes)");
        assert_eq!(byte_size(1024), "1 KB (1,024 bytes)");
    }
}
