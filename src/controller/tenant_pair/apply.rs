//! Executes the TenantPair plan's actions, each idempotent and checked on its own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};

use super::observe::{
    Extra, SECRET_DISPLAY_PREFIX, app_display_name, app_secret_name, app_tag, secret_keys, side,
};
use super::plan::{Action, Side, Way};
use crate::api::{MANAGED_BY, MANAGED_BY_LABEL, MigrationAppStatus, TenantPair};
use crate::controller::context::{Context, PairClients};
use crate::controller::error::{ReconcileError, Result};
use crate::tenant::graph::{EXCHANGE_APP_ID, MAILBOX_MIGRATION_ROLE};

/// Field manager of everything this controller writes.
pub const MANAGER: &str = "t2t.dev/tenantpair";

/// What applying changed, for status.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub created_relationship: Vec<Side>,
    pub created_scope_group: Vec<Side>,
    pub app: Vec<(Way, MigrationAppStatus)>,
    pub notes: Vec<String>,
}

/// The Graph object id of a direction's created app (found by observe).
fn app_object_id(extra: &Extra, way: Way) -> Result<String> {
    match way {
        Way::Forward => extra.forward_object_id.clone(),
        Way::Reverse => extra.reverse_object_id.clone(),
    }
    .ok_or_else(|| {
        ReconcileError::DependencyNotReady("the migration app's object id is not known yet".into())
    })
}

fn tenant_err(side: Side) -> ReconcileError {
    ReconcileError::InvalidSpec(format!("no credentials for the {} tenant", side.name()))
}

fn app_status(pair: &TenantPair, way: Way) -> MigrationAppStatus {
    pair.status
        .as_ref()
        .and_then(|s| match way {
            Way::Forward => s.migration_app.clone(),
            Way::Reverse => s.reverse_migration_app.clone(),
        })
        .unwrap_or_default()
}

fn app_id_of(pair: &TenantPair, way: Way, observed_app_id: Option<String>) -> Result<String> {
    observed_app_id
        .or_else(|| app_status(pair, way).application_id)
        .ok_or_else(|| {
            ReconcileError::DependencyNotReady("the migration app id is not known yet".into())
        })
}

/// Writes the operator-owned Secret holding an app's client secret (owned by the pair).
async fn store_app_secret(
    ctx: &Context,
    pair: &TenantPair,
    way: Way,
    client_id: &str,
    secret: &str,
    key_id: &str,
    expires: Option<DateTime<Utc>>,
) -> Result<()> {
    let ns = pair.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut data = BTreeMap::new();
    data.insert(
        secret_keys::CLIENT_ID.to_string(),
        ByteString(client_id.as_bytes().to_vec()),
    );
    data.insert(
        secret_keys::CLIENT_SECRET.to_string(),
        ByteString(secret.as_bytes().to_vec()),
    );
    data.insert(
        secret_keys::KEY_ID.to_string(),
        ByteString(key_id.as_bytes().to_vec()),
    );
    if let Some(e) = expires {
        data.insert(
            secret_keys::EXPIRES_AT.to_string(),
            ByteString(e.to_rfc3339().into_bytes()),
        );
    }
    let owner = pair
        .controller_owner_ref(&())
        .ok_or_else(|| ReconcileError::InvalidSpec("TenantPair has no uid".into()))?;
    let name = app_secret_name(pair, way);
    let obj = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns),
            labels: Some(
                [
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                    ("t2t.dev/tenantpair".to_string(), pair.name_any()),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    };
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await?;
    Ok(())
}

/// What one pass works with.
pub struct Pass<'a> {
    pub ctx: &'a Context,
    pub pair: &'a TenantPair,
    pub clients: &'a PairClients,
    pub extra: &'a Extra,
    /// Observed app ids (forward, reverse).
    pub app_ids: (Option<String>, Option<String>),
    pub now: DateTime<Utc>,
}

/// Applies one action (the caller persists a create-pending marker before a CreateApp).
pub async fn apply_one(pass: &Pass<'_>, action: &Action, applied: &mut Applied) -> Result<()> {
    let Pass {
        ctx,
        pair,
        clients,
        extra,
        now,
        ..
    } = *pass;
    let observed_app = pass.app_ids.clone();
    let app_id_for = |w: Way| match w {
        Way::Forward => observed_app.0.clone(),
        Way::Reverse => observed_app.1.clone(),
    };
    match action {
        Action::EnableCustomization(s) => {
            side(clients, *s)
                .ok_or_else(|| tenant_err(*s))?
                .exchange
                .enable_organization_customization()
                .await?;
        }
        Action::CreateApp(way) => {
            let dest =
                side(clients, way.destination()).ok_or_else(|| tenant_err(way.destination()))?;
            let exo = dest
                .graph
                .get_service_principal(EXCHANGE_APP_ID)
                .await?
                .ok_or_else(|| {
                    ReconcileError::DependencyNotReady(format!(
                        "the {} tenant has no Office 365 Exchange Online service principal",
                        way.destination().name()
                    ))
                })?;
            let role = exo
                .role_id(MAILBOX_MIGRATION_ROLE)
                .ok_or_else(|| {
                    ReconcileError::DependencyNotReady(
                        "Exchange Online exposes no Mailbox.Migration app role".into(),
                    )
                })?
                .to_string();
            let app = dest
                .graph
                .create_migration_app(&app_display_name(pair, *way), &role, &app_tag(pair))
                .await?;
            applied.app.push((
                *way,
                MigrationAppStatus {
                    application_id: Some(app.app_id.clone()),
                    object_id: Some(app.id.clone()),
                    created: true,
                    ..app_status(pair, *way)
                },
            ));
            applied.notes.push(format!(
                "created migration app {} ({})",
                app_display_name(pair, *way),
                app.app_id
            ));
        }
        Action::CreateAppSecret(way) | Action::RotateAppSecret(way) => {
            let dest =
                side(clients, way.destination()).ok_or_else(|| tenant_err(way.destination()))?;
            let object_id = app_object_id(extra, *way)?;
            let app_id = app_id_of(pair, *way, app_id_for(*way))?;
            let spec_app = match way {
                Way::Forward => &pair.spec.migration_app,
                Way::Reverse => pair
                    .spec
                    .reverse
                    .as_ref()
                    .map(|r| &r.migration_app)
                    .unwrap_or(&pair.spec.migration_app),
            };
            let lifetime =
                chrono::Duration::days(i64::from(spec_app.secret_lifetime_days.unwrap_or(180)));
            let name = format!(
                "{SECRET_DISPLAY_PREFIX}{}",
                now.format("%Y-%m-%dT%H:%M:%SZ")
            );
            let cred = dest
                .graph
                .add_password(&object_id, &name, now + lifetime)
                .await?;
            let text = cred.secret_text.clone().ok_or_else(|| {
                ReconcileError::Tenant(crate::tenant::TenantError::Decode {
                    api: "graph",
                    message: "addPassword returned no secretText".into(),
                })
            })?;
            store_app_secret(
                ctx,
                pair,
                *way,
                &app_id,
                &text,
                &cred.key_id,
                cred.end_date_time,
            )
            .await?;
            applied.app.push((
                *way,
                MigrationAppStatus {
                    secret_name: Some(app_secret_name(pair, *way)),
                    secret_key_id: Some(cred.key_id.clone()),
                    secret_expires_at: cred.end_date_time,
                    ..app_status(pair, *way)
                },
            ));
            applied.notes.push(format!(
                "stored a new client secret (keyId {}) in Secret {}",
                cred.key_id,
                app_secret_name(pair, *way)
            ));
        }
        Action::RemoveOldSecrets(way, keys) => {
            let dest =
                side(clients, way.destination()).ok_or_else(|| tenant_err(way.destination()))?;
            let object_id = app_object_id(extra, *way)?;
            // An already-removed key counts as success, so a retry after a crash is harmless.
            for key in keys {
                dest.graph.remove_password(&object_id, key).await?;
            }
            applied.notes.push(format!(
                "removed old client secret(s) keyId {} of {} (every endpoint uses the new one)",
                keys.join(", "),
                app_display_name(pair, *way)
            ));
        }
        Action::GrantConsent(way, s) => {
            let c = side(clients, *s).ok_or_else(|| tenant_err(*s))?;
            let app_id = app_id_of(pair, *way, app_id_for(*way))?;
            let sp = c.graph.ensure_service_principal(&app_id).await?;
            let exo = c
                .graph
                .get_service_principal(EXCHANGE_APP_ID)
                .await?
                .ok_or_else(|| {
                    ReconcileError::DependencyNotReady(format!(
                        "the {} tenant has no Office 365 Exchange Online service principal",
                        s.name()
                    ))
                })?;
            let role = exo
                .role_id(MAILBOX_MIGRATION_ROLE)
                .ok_or_else(|| {
                    ReconcileError::DependencyNotReady(
                        "Exchange Online exposes no Mailbox.Migration app role".into(),
                    )
                })?
                .to_string();
            c.graph
                .ensure_app_role_assignment(&sp.id, &exo.id, &role)
                .await?;
            applied.notes.push(format!(
                "granted Mailbox.Migration to app {app_id} in the {} tenant",
                s.name()
            ));
        }
        Action::CreateScopeGroup(s, name) => {
            side(clients, *s)
                .ok_or_else(|| tenant_err(*s))?
                .exchange
                .new_security_group(name)
                .await?;
            applied.created_scope_group.push(*s);
        }
        Action::CreateRelationship(s, name, settings) => {
            let partner = match s {
                Side::Target => &pair.spec.source.tenant_id,
                Side::Source => &pair.spec.target.tenant_id,
            };
            side(clients, *s)
                .ok_or_else(|| tenant_err(*s))?
                .exchange
                .new_organization_relationship(name, partner, settings)
                .await?;
            applied.created_relationship.push(*s);
        }
        Action::UpdateRelationship(s, identity, settings) => {
            side(clients, *s)
                .ok_or_else(|| tenant_err(*s))?
                .exchange
                .set_organization_relationship(identity, settings)
                .await?;
        }
    }
    Ok(())
}
