//! The control API under `/_sim/`: test and demo hooks that are not part of any Microsoft
//! protocol (tenant credentials, clock, consent, object reads, faults).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/_sim/tenants", get(tenants))
        .route("/_sim/tenants/{tenant}", get(tenant_detail))
        .route(
            "/_sim/tenants/{tenant}/mailboxes/{identity}",
            axum::routing::patch(patch_mailbox),
        )
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/keys/exchange-securestring", get(securestring_key))
        .route("/_sim/consent", post(consent))
        .route(
            "/_sim/faults",
            get(get_faults)
                .put(set_faults)
                .post(set_faults)
                .delete(clear_faults),
        )
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("{what} not found")})),
    )
        .into_response()
}

async fn tenants(State(app): State<App>) -> Json<Value> {
    let w = app.shared.read();
    let value: Vec<Value> = w
        .tenants
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "displayName": t.display_name,
                "initialDomain": t.initial_domain,
                "domains": t.domains,
                "adminApp": {"clientId": t.admin_client_id, "clientSecret": t.admin_client_secret},
            })
        })
        .collect();
    Json(json!({ "value": value }))
}

/// A dump of one tenant's objects (for assertions and debugging).
async fn tenant_detail(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    app.advance_moves();
    let w = app.shared.read();
    let Some(t) = w.tenant(&tenant) else {
        return not_found("tenant");
    };
    let recipients: Vec<Value> = t
        .recipients
        .iter()
        .map(|r| {
            json!({
                "guid": r.guid, "externalDirectoryObjectId": r.user_id, "name": r.name,
                "recipientTypeDetails": r.recipient_type_details(),
                "primarySmtpAddress": r.primary_smtp(), "emailAddresses": r.email_addresses,
                "exchangeGuid": r.exchange_guid, "archiveGuid": r.archive_guid,
                "externalEmailAddress": r.external_email_address,
                "legacyExchangeDN": r.legacy_exchange_dn, "sizeBytes": r.size_bytes,
            })
        })
        .collect();
    let users: Vec<Value> = t
        .users
        .iter()
        .map(|u| {
            json!({"id": u.id, "userPrincipalName": u.user_principal_name,
                   "usageLocation": u.usage_location, "assignedLicenses": u.assigned_licenses})
        })
        .collect();
    let groups: Vec<Value> = t
        .groups
        .iter()
        .map(|g| json!({"guid": g.guid, "name": g.name, "security": g.security, "members": g.members}))
        .collect();
    let endpoints: Vec<Value> = t
        .endpoints
        .iter()
        .map(|e| {
            json!({"guid": e.guid, "name": e.name, "remoteServer": e.remote_server,
                        "remoteTenant": e.remote_tenant, "applicationId": e.application_id})
        })
        .collect();
    let orgrels: Vec<Value> = t
        .org_relationships
        .iter()
        .map(|o| {
            json!({"guid": o.guid, "name": o.name, "domainNames": o.domain_names,
                        "mailboxMoveEnabled": o.mailbox_move_enabled,
                        "mailboxMoveCapability": o.mailbox_move_capability,
                        "mailboxMovePublishedScopes": o.mailbox_move_published_scopes,
                        "oauthApplicationId": o.oauth_application_id})
        })
        .collect();
    let batches: Vec<Value> = t
        .batches
        .iter()
        .map(|b| {
            json!({"guid": b.guid, "name": b.name, "status": b.status().as_str(),
                   "users": b.users.iter().map(|u| json!({"email": u.email, "status": u.status.as_str(),
                       "bytesTotal": u.bytes_total, "bytesDone": u.bytes_done,
                       "error": u.error.as_ref().map(|e| format!("{}: {}", e.exception, e.message))})).collect::<Vec<_>>()})
        })
        .collect();
    let apps: Vec<Value> = t
        .applications
        .iter()
        .map(|a| {
            // Key ids and names only: secret texts never leave the simulator.
            let passwords: Vec<Value> = a
                .credentials
                .iter()
                .filter(|c| matches!(c.secret, super::state::CredentialSecret::Password(_)))
                .map(|c| json!({"keyId": c.key_id, "displayName": c.display_name}))
                .collect();
            json!({"id": a.id, "appId": a.app_id, "displayName": a.display_name,
                   "passwordCredentials": passwords})
        })
        .collect();
    let sps: Vec<Value> = t
        .service_principals
        .iter()
        .map(|s| {
            json!({"id": s.id, "appId": s.app_id, "displayName": s.display_name,
                        "roles": {"graph": t.roles_of(s.id, super::catalog::GRAPH_APP_ID),
                                  "exchange": t.roles_of(s.id, super::catalog::EXCHANGE_APP_ID)}})
        })
        .collect();
    Json(json!({
        "id": t.id, "initialDomain": t.initial_domain, "domains": t.domains,
        "migrationBatches": batches, "applications": apps, "servicePrincipals": sps,
        "organizationCustomizationEnabled": t.org_customization_enabled,
        "users": users, "recipients": recipients, "groups": groups,
        "migrationEndpoints": endpoints, "organizationRelationships": orgrels,
    }))
    .into_response()
}

async fn clock(State(app): State<App>) -> Json<Value> {
    Json(json!({"now": app.shared.clock.now(), "timeScale": app.shared.clock.scale()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    minutes: i64,
    #[serde(default)]
    hours: i64,
    #[serde(default)]
    days: i64,
}

async fn advance(State(app): State<App>, Json(a): Json<Advance>) -> Response {
    let by = chrono::Duration::seconds(a.seconds)
        + chrono::Duration::minutes(a.minutes)
        + chrono::Duration::hours(a.hours)
        + chrono::Duration::days(a.days);
    if by < chrono::Duration::zero() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "the clock only moves forward"})),
        )
            .into_response();
    }
    app.shared.clock.advance(by);
    Json(json!({"now": app.shared.clock.now()})).into_response()
}

async fn securestring_key(State(app): State<App>) -> Response {
    (
        [("content-type", "application/x-pem-file")],
        app.keys.exchange_public_pem.clone(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Consent {
    tenant: String,
    client_id: uuid::Uuid,
}

/// Simulates a Global Administrator of `tenant` granting admin consent to `clientId` (the same
/// effect as completing `GET /{tenant}/adminconsent`).
async fn consent(State(app): State<App>, Json(c): Json<Consent>) -> Response {
    match super::identity::consent(&app, &c.tenant, c.client_id, None) {
        Ok((tid, _)) => Json(json!({"tenant": tid, "clientId": c.client_id, "adminConsent": true}))
            .into_response(),
        Err(e) => e.render(app.shared.clock.now()),
    }
}

async fn get_faults(State(app): State<App>) -> Json<Value> {
    Json(json!({"rules": app.faults.get()}))
}

/// Replaces the fault rules (`{"rules":[…], "seed": n}`).
async fn set_faults(State(app): State<App>, Json(set): Json<super::faults::FaultSet>) -> Response {
    app.faults.set(set);
    Json(json!({"rules": app.faults.get()})).into_response()
}

async fn clear_faults(State(app): State<App>) -> StatusCode {
    app.faults.set(super::faults::FaultSet::default());
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MailboxPatch {
    size_mb: Option<u64>,
    item_count: Option<u64>,
    archive_size_mb: Option<u64>,
    aux_archives: Option<u32>,
    total_deleted_item_size_mb: Option<u64>,
    substrate_holds_items: Option<u64>,
    holds: Option<super::fixture::HoldsFixture>,
}

/// Changes a mailbox behind the protocols' back, the way users and other admins do (a growing
/// mailbox, a new hold, a new auxiliary archive), so tests can exercise mid-move changes.
async fn patch_mailbox(
    State(app): State<App>,
    Path((tenant, identity)): Path<(String, String)>,
    Json(p): Json<MailboxPatch>,
) -> Response {
    const MB: u64 = 1024 * 1024;
    app.advance_moves();
    let mut w = app.shared.write();
    let Some(ti) = w.tenant_index(&tenant) else {
        return not_found("tenant");
    };
    let t = &mut w.tenants[ti];
    let Some(ri) = t
        .find_recipient(&identity)
        .filter(|i| t.recipients[*i].is_mailbox())
    else {
        return not_found("mailbox");
    };
    let mut r = t.recipients.get_mut(ri);
    if let Some(v) = p.size_mb {
        r.size_bytes = v * MB;
    }
    if let Some(v) = p.item_count {
        r.item_count = v;
    }
    if let Some(v) = p.archive_size_mb {
        r.archive_size_bytes = v * MB;
    }
    if let Some(v) = p.aux_archives {
        if r.archive_guid.is_nil() && v > 0 {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "auxArchives need an archive"})),
            )
                .into_response();
        }
        r.aux_archives = v;
    }
    if let Some(v) = p.total_deleted_item_size_mb {
        r.total_deleted_item_bytes = v * MB;
    }
    if let Some(v) = p.substrate_holds_items {
        r.substrate_holds_items = v;
    }
    if let Some(h) = p.holds {
        r.holds = super::state::Holds {
            litigation_hold: h.litigation_hold,
            in_place_holds: h.in_place_holds,
            compliance_tag_hold: h.compliance_tag_hold,
            delay_hold: h.delay_hold,
            delay_release_hold: h.delay_release_hold,
            org_wide_hold: h.org_wide_hold,
        };
    }
    Json(
        json!({"name": r.name, "sizeBytes": r.size_bytes, "auxArchives": r.aux_archives,
                "litigationHold": r.holds.litigation_hold}),
    )
    .into_response()
}
