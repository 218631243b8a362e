//! Every read the TenantPair controller makes: Kubernetes (Secrets, endpoints) and both tenants.
//! Nothing here writes.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::plan::{AppObs, Observed, Side, TenantObs, Way};
use crate::api::conditions::{is_true, types};
use crate::api::{EndpointDirection, MigrationAppMode, MigrationEndpoint, TenantPair};
use crate::controller::context::{Context, PairClients, TenantClients};
use crate::controller::error::{ReconcileError, Result};
use crate::tenant::graph::{EXCHANGE_APP_ID, MAILBOX_MIGRATION_ROLE};

/// Keys of the operator-owned Secret that holds a created app's client secret.
pub mod secret_keys {
    pub const CLIENT_ID: &str = "clientId";
    pub const CLIENT_SECRET: &str = "clientSecret";
    pub const KEY_ID: &str = "keyId";
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// Display-name prefix of the client secrets the operator adds (followed by the creation time);
/// only these are ever removed, never an admin's own secrets.
pub const SECRET_DISPLAY_PREFIX: &str = "t2t-operator ";

/// Name of the operator-owned Secret of a direction's app.
pub fn app_secret_name(pair: &TenantPair, way: Way) -> String {
    match way {
        Way::Forward => format!("{}-migration-app", pair.name_any()),
        Way::Reverse => format!("{}-reverse-migration-app", pair.name_any()),
    }
}

/// Tag put on apps the operator creates, so they are found again by identity.
pub fn app_tag(pair: &TenantPair) -> String {
    format!("t2t-operator/{}", pair.uid().unwrap_or_default())
}

/// Display name of a created app.
pub fn app_display_name(pair: &TenantPair, way: Way) -> String {
    let custom = match way {
        Way::Forward => pair.spec.migration_app.display_name.clone(),
        Way::Reverse => pair
            .spec
            .reverse
            .as_ref()
            .and_then(|r| r.migration_app.display_name.clone()),
    };
    custom.unwrap_or_else(|| {
        let suffix = if way == Way::Reverse { " reverse" } else { "" };
        format!(
            "t2t-operator migration ({}/{}){suffix}",
            pair.namespace().unwrap_or_default(),
            pair.name_any()
        )
    })
}

/// The stored secret of a created app.
#[derive(Clone, Debug, Default)]
pub struct StoredSecret {
    pub client_id: String,
    pub key_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What observe found besides the plan's inputs (ids needed to apply actions).
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub forward_object_id: Option<String>,
    pub reverse_object_id: Option<String>,
    pub forward_secret: Option<StoredSecret>,
    pub reverse_secret: Option<StoredSecret>,
    pub target_relationship: Option<String>,
    pub source_relationship: Option<String>,
    pub source_scope_group: Option<String>,
    pub target_scope_group: Option<String>,
    pub target_initial_domain: Option<String>,
    pub source_initial_domain: Option<String>,
}

pub fn side(clients: &PairClients, side: Side) -> Option<&TenantClients> {
    match side {
        Side::Target => Some(&clients.target),
        Side::Source => clients.source.as_ref(),
    }
}

fn partner(pair: &TenantPair, s: Side) -> &str {
    match s {
        Side::Target => &pair.spec.source.tenant_id,
        Side::Source => &pair.spec.target.tenant_id,
    }
}

fn spec_tenant(pair: &TenantPair, s: Side) -> &str {
    match s {
        Side::Target => &pair.spec.target.tenant_id,
        Side::Source => &pair.spec.source.tenant_id,
    }
}

/// A token refusal becomes `CredentialsRejected` naming the Secret to fix.
fn credentials_error(pair: &TenantPair, s: Side, e: ReconcileError) -> ReconcileError {
    let ReconcileError::Tenant(t) = &e else {
        return e;
    };
    if t.category() != "CredentialsRejected" {
        return e;
    }
    let spec = match s {
        Side::Target => &pair.spec.target,
        Side::Source => &pair.spec.source,
    };
    let Some(c) = &spec.credentials else {
        return e;
    };
    let ns = pair.namespace().unwrap_or_default();
    let (secret, fix) = if let Some(r) = &c.client_secret {
        (
            format!("Secret {ns}/{} (key {})", r.name, r.key),
            "put a valid client secret of that app in it",
        )
    } else if let Some(cert) = &c.certificate {
        (
            format!("Secret {ns}/{}", cert.secret_name),
            "put the certificate registered on that app and its private key in it",
        )
    } else {
        (
            "the workload identity token".to_string(),
            "add a federated credential for the service account to that app",
        )
    };
    // The identity platform's text ends with per-request trace ids and a timestamp: drop them so
    // the same refusal yields the same message (no status churn).
    let text = t.to_string();
    let text = text
        .split(" Trace ID:")
        .next()
        .unwrap_or(&text)
        .trim_end()
        .to_string();
    ReconcileError::CredentialsRejected(format!(
        "the {} tenant {} rejected the credentials of app {} from {secret}: {text}. To fix: {fix}; the pair re-validates as soon as the Secret changes",
        s.name(),
        spec.tenant_id,
        c.client_id
    ))
}

async fn observe_tenant(
    pair: &TenantPair,
    c: &TenantClients,
    s: Side,
    scope_group: Option<&str>,
) -> Result<TenantObs> {
    let org = c.graph.organization().await?;
    if !org.id.eq_ignore_ascii_case(spec_tenant(pair, s)) {
        return Err(ReconcileError::InvalidSpec(format!(
            "the {} credentials authenticate to tenant {}, not spec.{}.tenantId {}: fix the tenant id or the Secret",
            s.name(),
            org.id,
            s.name(),
            spec_tenant(pair, s)
        )));
    }
    let skus = c.graph.subscribed_skus().await?;
    let seats = skus
        .iter()
        .filter(|k| k.is_migration_sku())
        .fold((0, 0), |acc, k| {
            (acc.0 + k.prepaid_units.enabled, acc.1 + k.consumed_units)
        });
    let config = c.exchange.get_organization_config().await?;
    let relationship = c
        .exchange
        .find_organization_relationship(partner(pair, s))
        .await?;
    let scope_group = match scope_group {
        Some(name) => c.exchange.get_distribution_group(name).await?,
        None => None,
    };
    Ok(TenantObs {
        initial_domain: org.initial_domain().unwrap_or_default().to_string(),
        dehydrated: config.is_dehydrated,
        relationship,
        scope_group,
        seats,
    })
}

async fn consented(c: &TenantClients, app_id: &str) -> Result<bool> {
    let Some(sp) = c.graph.get_service_principal(app_id).await? else {
        return Ok(false);
    };
    let Some(exo) = c.graph.get_service_principal(EXCHANGE_APP_ID).await? else {
        return Ok(false);
    };
    let Some(role) = exo.role_id(MAILBOX_MIGRATION_ROLE) else {
        return Ok(false);
    };
    Ok(c.graph
        .app_role_assignments(&sp.id)
        .await?
        .iter()
        .any(|a| a.resource_id == exo.id && a.app_role_id.eq_ignore_ascii_case(role)))
}

async fn stored_secret(secrets: &Api<Secret>, name: &str) -> Result<Option<StoredSecret>> {
    let Some(s) = secrets.get_opt(name).await? else {
        return Ok(None);
    };
    let get = |k: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    if get(secret_keys::CLIENT_SECRET).is_none() {
        return Ok(None);
    }
    Ok(Some(StoredSecret {
        client_id: get(secret_keys::CLIENT_ID).unwrap_or_default(),
        key_id: get(secret_keys::KEY_ID).unwrap_or_default(),
        expires_at: get(secret_keys::EXPIRES_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    }))
}

async fn observe_app(
    ctx: &Context,
    pair: &TenantPair,
    clients: &PairClients,
    way: Way,
    extra: &mut Extra,
    now: DateTime<Utc>,
) -> Result<AppObs> {
    let (mode, spec_app, rotate_days) = match way {
        Way::Forward => (
            pair.spec.migration_app.mode,
            &pair.spec.migration_app,
            pair.spec.migration_app.rotate_before_days,
        ),
        Way::Reverse => {
            let r = pair
                .spec
                .reverse
                .as_ref()
                .map(|r| &r.migration_app)
                .unwrap_or(&pair.spec.migration_app);
            (r.mode, r, r.rotate_before_days)
        }
    };
    let status_app = pair.status.as_ref().and_then(|s| match way {
        Way::Forward => s.migration_app.clone(),
        Way::Reverse => s.reverse_migration_app.clone(),
    });
    let mut obs = AppObs {
        create_pending: status_app
            .as_ref()
            .is_some_and(|a| a.create_pending_since.is_some()),
        ..Default::default()
    };
    let dest = side(clients, way.destination());
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &pair.namespace().unwrap_or_default());

    match mode {
        MigrationAppMode::Adopt => {
            obs.app_id = spec_app.application_id.clone();
            if let Some(r) = &spec_app.client_secret
                && let Ok((text, _)) = crate::controller::credentials::app_secret(&secrets, r).await
            {
                obs.secret_ready = true;
                if let (Some(d), Some(app_id)) = (dest, obs.app_id.as_deref()) {
                    obs.secret_expires_at = adopted_secret_expiry(d, app_id, &text).await;
                }
                let window = chrono::Duration::days(i64::from(rotate_days.unwrap_or(30)));
                obs.secret_due_for_rotation =
                    obs.secret_expires_at.is_some_and(|e| e - window <= now);
            }
        }
        MigrationAppMode::Create => {
            if let Some(dest) = dest {
                // Found by display name and our tag: a retry after a lost answer never creates twice.
                let tag = app_tag(pair);
                let apps = dest
                    .graph
                    .find_applications_by_name(&app_display_name(pair, way))
                    .await?;
                if let Some(app) = apps.into_iter().find(|a| a.tags.iter().any(|t| t == &tag)) {
                    obs.app_id = Some(app.app_id.clone());
                    obs.created = true;
                    obs.create_pending = false;
                    let stored = stored_secret(&secrets, &app_secret_name(pair, way)).await?;
                    if let Some(st) = &stored {
                        let known = app
                            .password_credentials
                            .iter()
                            .any(|p| p.key_id.eq_ignore_ascii_case(&st.key_id));
                        obs.secret_ready = known && st.client_id.eq_ignore_ascii_case(&app.app_id);
                        let window = chrono::Duration::days(i64::from(rotate_days.unwrap_or(30)));
                        obs.secret_due_for_rotation =
                            obs.secret_ready && st.expires_at.is_some_and(|e| e - window <= now);
                        obs.secret_expires_at = st.expires_at;
                        if obs.secret_ready {
                            obs.old_secrets = app
                                .password_credentials
                                .iter()
                                .filter(|p| {
                                    !p.key_id.eq_ignore_ascii_case(&st.key_id)
                                        && p.display_name
                                            .as_deref()
                                            .is_some_and(|d| d.starts_with(SECRET_DISPLAY_PREFIX))
                                })
                                .map(|p| p.key_id.clone())
                                .collect();
                        }
                    }
                    match way {
                        Way::Forward => {
                            extra.forward_object_id = Some(app.id.clone());
                            extra.forward_secret = stored;
                        }
                        Way::Reverse => {
                            extra.reverse_object_id = Some(app.id.clone());
                            extra.reverse_secret = stored;
                        }
                    }
                } else if let Some(a) = status_app.as_ref().and_then(|a| a.application_id.clone()) {
                    // Recorded but not visible: directory replication lag right after creation.
                    obs.app_id = None;
                    obs.create_pending = true;
                    tracing::debug!(app = %a, "created app not visible yet");
                }
            }
        }
    }
    if let Some(app_id) = obs.app_id.clone() {
        if let Some(d) = dest {
            obs.consented_destination = consented(d, &app_id).await?;
        }
        if let Some(o) = side(clients, way.origin()) {
            obs.consented_origin = consented(o, &app_id).await?;
        }
    }
    Ok(obs)
}

/// Expiry of an adopted app's client secret: the app's password credential whose `hint` (its
/// first three characters) matches the Secret's value. Unknown (None) when the app cannot be
/// read with the operator's permissions or no hint matches; expiry is then not tracked.
async fn adopted_secret_expiry(
    dest: &TenantClients,
    app_id: &str,
    secret: &str,
) -> Option<DateTime<Utc>> {
    let hint: String = secret.chars().take(3).collect();
    match dest.graph.get_application_by_app_id(app_id).await {
        Ok(Some(app)) => app
            .password_credentials
            .iter()
            .filter(|p| p.hint.as_deref() == Some(hint.as_str()))
            .filter_map(|p| p.end_date_time)
            // Two secrets sharing a hint: the later one, so that no false alarm is raised.
            .max(),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the adopted app: its secret expiry is not tracked");
            None
        }
    }
}

/// Endpoints of one direction whose Exchange credential is not (known to be) the stored secret.
/// An endpoint whose credential the operator never wrote (adopted) counts: it may use an old one.
fn endpoints_on_old_secret(
    endpoints: &[MigrationEndpoint],
    direction: EndpointDirection,
    stored: &Option<StoredSecret>,
) -> Vec<String> {
    let Some(stored) = stored else {
        return Vec::new();
    };
    endpoints
        .iter()
        .filter(|e| e.spec.direction == direction)
        .filter(|e| {
            !e.status
                .as_ref()
                .and_then(|s| s.credential_key_id.as_deref())
                .is_some_and(|k| k.eq_ignore_ascii_case(&stored.key_id))
        })
        .map(|e| e.name_any())
        .collect()
}

/// Reads everything the plan needs.
pub async fn observe(
    ctx: &Context,
    pair: &TenantPair,
    clients: &PairClients,
    now: DateTime<Utc>,
) -> Result<(Observed, Extra)> {
    let mut extra = Extra::default();
    let bidirectional = pair.spec.direction == crate::api::Direction::Bidirectional;
    let target_scope = if bidirectional {
        pair.spec
            .reverse
            .as_ref()
            .map(|r| r.scope_group.name.as_str())
    } else {
        None
    };
    let target = observe_tenant(pair, &clients.target, Side::Target, target_scope)
        .await
        .map_err(|e| credentials_error(pair, Side::Target, e))?;
    extra.target_relationship = target.relationship.as_ref().map(|r| r.identity.clone());
    extra.target_scope_group = target.scope_group.as_ref().map(|g| g.identity.clone());
    extra.target_initial_domain = Some(target.initial_domain.clone());
    let source = match &clients.source {
        Some(c) => {
            let s = observe_tenant(pair, c, Side::Source, Some(&pair.spec.scope_group.name))
                .await
                .map_err(|e| credentials_error(pair, Side::Source, e))?;
            extra.source_relationship = s.relationship.as_ref().map(|r| r.identity.clone());
            extra.source_scope_group = s.scope_group.as_ref().map(|g| g.identity.clone());
            extra.source_initial_domain = Some(s.initial_domain.clone());
            Some(s)
        }
        None => None,
    };
    let mut forward = observe_app(ctx, pair, clients, Way::Forward, &mut extra, now).await?;
    let mut reverse = if bidirectional {
        Some(observe_app(ctx, pair, clients, Way::Reverse, &mut extra, now).await?)
    } else {
        None
    };

    let endpoints: Vec<MigrationEndpoint> = Api::<MigrationEndpoint>::namespaced(
        ctx.client.clone(),
        &pair.namespace().unwrap_or_default(),
    )
    .list(&Default::default())
    .await?
    .items
    .into_iter()
    .filter(|e| e.spec.tenant_pair_ref.name == pair.name_any())
    .collect();
    // An available endpoint of this pair proves the source side (split administration).
    let endpoint_available = endpoints.iter().any(|e| {
        e.status
            .as_ref()
            .is_some_and(|s| is_true(&s.conditions, types::AVAILABLE))
    });
    forward.endpoints_on_old_secret = endpoints_on_old_secret(
        &endpoints,
        EndpointDirection::Forward,
        &extra.forward_secret,
    );
    if let Some(r) = reverse.as_mut() {
        r.endpoints_on_old_secret = endpoints_on_old_secret(
            &endpoints,
            EndpointDirection::Reverse,
            &extra.reverse_secret,
        );
    }

    Ok((
        Observed {
            target: Some(target),
            source,
            forward,
            reverse,
            endpoint_available,
        },
        extra,
    ))
}
