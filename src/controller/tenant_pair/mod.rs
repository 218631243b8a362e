//! The TenantPair controller: one-time preparation of both tenants, kept true for as long as the
//! pair exists. observe (reads) → plan (pure) → apply (bounded writes) → status (one writer).

pub mod apply;
pub mod observe;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use self::apply::{Applied, MANAGER};
use self::plan::{Action, Names, Side, Way};
use crate::api::conditions::{Desired, merge, reasons, types};
use crate::api::{
    DeletionPolicy, LicenseStatus, MigrationAppStatus, REQUESTED_AT_ANNOTATION, RetryStatus,
    TenantObservation, TenantPair, TenantPairStatus,
};
use crate::controller::context::Context;
use crate::controller::error::{ReconcileError, Result};
use crate::controller::status::{
    apply_status, apply_status_if_changed, backoff_from, event, ready_transition_event,
};

/// Finalizer of this controller.
pub const FINALIZER: &str = "t2t.dev/tenantpair";

fn names(pair: &TenantPair, endpoints: &crate::tenant::Endpoints, app_id: Option<&str>) -> Names {
    let cut = |s: String| s.chars().take(64).collect::<String>();
    let rel = pair
        .spec
        .organization_relationship
        .clone()
        .unwrap_or_default();
    Names {
        source_relationship: rel
            .source_name
            .unwrap_or_else(|| cut(format!("t2t-{}", pair.spec.target.initial_domain))),
        target_relationship: rel
            .target_name
            .unwrap_or_else(|| cut(format!("t2t-{}", pair.spec.source.initial_domain))),
        consent_url: app_id
            .map(|a| endpoints.admin_consent_url(&pair.spec.source.initial_domain, a)),
    }
}

fn event_reason(a: &Action, was_ready: bool) -> &'static str {
    match a {
        Action::EnableCustomization(_) => "OrganizationCustomizationEnabled",
        Action::CreateApp(_) => "MigrationAppCreated",
        Action::CreateAppSecret(_) => "AppSecretCreated",
        Action::RotateAppSecret(_) => "AppSecretRotated",
        Action::RemoveOldSecrets(..) => "OldAppSecretRemoved",
        Action::GrantConsent(..) => "ConsentGranted",
        Action::CreateScopeGroup(..) if was_ready => "DriftRepaired",
        Action::CreateScopeGroup(..) => "ScopeGroupCreated",
        Action::CreateRelationship(..) if was_ready => "DriftRepaired",
        Action::CreateRelationship(..) => "OrganizationRelationshipCreated",
        Action::UpdateRelationship(..) if was_ready => "DriftRepaired",
        Action::UpdateRelationship(..) => "OrganizationRelationshipUpdated",
    }
}

/// What an action's event says: for a repair, what had drifted.
fn event_note(a: &Action, observed: &plan::Observed, was_ready: bool) -> String {
    let tenant = |s: Side| match s {
        Side::Target => observed.target.as_ref(),
        Side::Source => observed.source.as_ref(),
    };
    match a {
        Action::UpdateRelationship(side, id, want) => {
            let changes = tenant(*side)
                .and_then(|t| t.relationship.as_ref())
                .map(|have| plan::relationship_changes(have, want))
                .unwrap_or_default();
            if changes.is_empty() {
                a.describe()
            } else {
                format!(
                    "organization relationship {id} in the {} tenant had drifted; set {}",
                    side.name(),
                    changes.join("; ")
                )
            }
        }
        Action::CreateScopeGroup(side, name) if was_ready => format!(
            "scope group {name} was missing in the {} tenant: recreated it (add the users to move again)",
            side.name()
        ),
        Action::CreateRelationship(side, name, _) if was_ready => format!(
            "the organization relationship with the partner tenant was missing in the {} tenant: recreated it as {name}",
            side.name()
        ),
        Action::GrantConsent(..) if was_ready => {
            format!("consent had been removed: {}", a.describe())
        }
        _ => a.describe(),
    }
}

/// The status to persist before the creates of `batch` are sent.
fn mark_creates(
    status: &TenantPairStatus,
    batch: &[&Action],
    now: chrono::DateTime<Utc>,
) -> TenantPairStatus {
    let mut marked = status.clone();
    for a in batch {
        match a {
            Action::CreateApp(way) => {
                let slot = match way {
                    Way::Forward => &mut marked.migration_app,
                    Way::Reverse => &mut marked.reverse_migration_app,
                };
                slot.get_or_insert_with(MigrationAppStatus::default)
                    .create_pending_since = Some(now);
            }
            Action::CreateRelationship(side, name, _) => {
                let o = tenant_slot(&mut marked, *side).get_or_insert_with(Default::default);
                o.organization_relationship = Some(name.clone());
                o.organization_relationship_created = true;
            }
            Action::CreateScopeGroup(side, name) => {
                let o = tenant_slot(&mut marked, *side).get_or_insert_with(Default::default);
                o.scope_group = Some(name.clone());
                o.scope_group_created = true;
            }
            _ => {}
        }
    }
    marked
}

fn tenant_slot(s: &mut TenantPairStatus, side: Side) -> &mut Option<TenantObservation> {
    match side {
        Side::Target => &mut s.target,
        Side::Source => &mut s.source,
    }
}

impl crate::controller::pass::Finalized for TenantPair {
    const CONTROLLER: &'static str = "tenantpair";
    const FINALIZER: &'static str = FINALIZER;

    async fn apply(
        api: &Api<Self>,
        obj: &Self,
        ctx: &Context,
        recorder: &Recorder,
    ) -> Result<Requeue> {
        apply_pass(api, obj, ctx, recorder).await
    }

    async fn cleanup(obj: &Self, ctx: &Context, recorder: &Recorder) -> Result<Requeue> {
        cleanup(obj, ctx, recorder).await
    }
}

/// Only Kubernetes API failures (and stuck cleanups) reach here; tenant errors are turned into
/// status with persisted backoff in `apply_pass`. The delay follows the persisted attempts.
fn error_policy(pair: Arc<TenantPair>, err: &ReconcileError, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(error = %err.user_message(), "reconcile failed");
    let attempts = pair
        .status
        .as_ref()
        .map(|s| s.retry.failed_attempts)
        .unwrap_or(0)
        .max(1);
    Requeue::requeue(backoff_from(ctx.config.retry_base, attempts))
}

/// One pass. Errors from the tenants are turned into status here (with persisted backoff), so the
/// returned error path is only for Kubernetes API failures.
async fn apply_pass(
    api: &Api<TenantPair>,
    pair: &TenantPair,
    ctx: &Context,
    recorder: &Recorder,
) -> Result<Requeue> {
    let now = Utc::now();
    let old = pair.status.clone().unwrap_or_default();
    match run_pass(pair, ctx, recorder, &old, now).await {
        Ok((status, requeue)) => {
            let new_conditions = status.conditions.clone();
            apply_status_if_changed(api, pair, MANAGER, &old, &status).await?;
            ready_transition_event(
                recorder,
                pair,
                &old.conditions,
                &new_conditions,
                "Reconcile",
            )
            .await;
            // Once per occurrence, not every pass: the warning is in the condition meanwhile.
            let expiring = |c: &[crate::api::Condition]| {
                crate::api::conditions::find(c, types::MIGRATION_APP_READY)
                    .filter(|c| c.reason == reasons::SECRET_EXPIRING)
                    .map(|c| c.message.clone())
            };
            if let (None, Some(msg)) = (expiring(&old.conditions), expiring(&new_conditions)) {
                event(
                    recorder,
                    pair,
                    EventType::Warning,
                    "AppSecretExpiring",
                    "Reconcile",
                    msg,
                )
                .await;
            }
            Ok(requeue)
        }
        Err(ReconcileError::Kube(e)) => Err(ReconcileError::Kube(e)),
        Err(err) => {
            let terminal = err.is_terminal();
            let msg = err.user_message();
            let reason = err.category();
            // The same terminal problem seen again is not a new failure: no status churn.
            let repeat = terminal
                && crate::api::conditions::find(&old.conditions, types::STALLED)
                    .is_some_and(|c| c.reason == reason && c.message == msg);
            let attempts = if repeat {
                old.retry.failed_attempts
            } else {
                old.retry.failed_attempts.saturating_add(1)
            };
            let mut status = old.clone();
            let conds = if terminal {
                vec![
                    Desired::new(types::READY, false, reason, msg.clone()),
                    Desired::new(types::STALLED, true, reason, msg.clone()),
                    Desired::new(types::RECONCILING, false, reasons::SUCCEEDED, ""),
                ]
                .into_iter()
                .chain(
                    matches!(
                        reason,
                        reasons::CREDENTIALS_REJECTED
                            | reasons::SECRET_NOT_FOUND
                            | reasons::PERMISSION_MISSING
                    )
                    .then(|| Desired::new(types::CREDENTIALS_VALID, false, reason, msg.clone())),
                )
                .collect::<Vec<_>>()
            } else {
                vec![
                    Desired::new(
                        types::READY,
                        false,
                        reasons::PROGRESSING_WITH_RETRY,
                        msg.clone(),
                    ),
                    Desired::new(
                        types::RECONCILING,
                        true,
                        reasons::PROGRESSING_WITH_RETRY,
                        msg.clone(),
                    ),
                ]
            };
            status.conditions = merge(&old.conditions, &conds, pair.metadata.generation, now);
            if !repeat {
                status.retry = RetryStatus {
                    failed_attempts: attempts,
                    last_failure_time: Some(now),
                };
            }
            if terminal {
                status.observed_generation = pair.metadata.generation;
            }
            status.last_handled_reconcile_at = pair
                .annotations()
                .get(REQUESTED_AT_ANNOTATION)
                .cloned()
                .or(old.last_handled_reconcile_at.clone());
            apply_status_if_changed(api, pair, MANAGER, &old, &status).await?;
            ready_transition_event(
                recorder,
                pair,
                &old.conditions,
                &status.conditions,
                "Reconcile",
            )
            .await;
            // Terminal problems wait for a change (spec, Secret, requested-at); the long requeue is a safety net.
            Ok(Requeue::requeue(if terminal {
                ctx.config.idle_resync
            } else {
                backoff_from(ctx.config.retry_base, attempts)
            }))
        }
    }
}

async fn run_pass(
    pair: &TenantPair,
    ctx: &Context,
    recorder: &Recorder,
    old: &TenantPairStatus,
    now: chrono::DateTime<Utc>,
) -> Result<(TenantPairStatus, Requeue)> {
    let clients = ctx.pair_clients(pair).await?;
    let (mut observed, extra) = observe::observe(ctx, pair, &clients, now).await?;
    // A create marker older than the grace period without a visible app means the create never landed.
    for (way, app) in [
        (Way::Forward, Some(&mut observed.forward)),
        (Way::Reverse, observed.reverse.as_mut()),
    ] {
        let Some(app) = app else { continue };
        let since = match way {
            Way::Forward => old
                .migration_app
                .as_ref()
                .and_then(|a| a.create_pending_since),
            Way::Reverse => old
                .reverse_migration_app
                .as_ref()
                .and_then(|a| a.create_pending_since),
        };
        if app.app_id.is_none() {
            let grace = chrono::Duration::from_std(ctx.config.create_grace)
                .unwrap_or(chrono::Duration::minutes(2));
            app.create_pending = since.is_some_and(|t| now - t < grace);
        }
    }
    let nm = names(pair, &clients.endpoints, observed.forward.app_id.as_deref());
    let plan = plan::plan(&pair.spec, &observed, &nm);
    let was_ready = crate::api::conditions::is_true(&old.conditions, types::READY);

    let mut status = old.clone();
    let mut applied = Applied::default();
    let suspended = pair.spec.suspend || ctx.config.read_only;
    let mut did = 0usize;
    if !suspended {
        let batch: Vec<&Action> = plan
            .actions
            .iter()
            .take(ctx.config.max_actions_per_pass)
            .collect();
        for action in batch {
            // Right before a create, persist what is about to be created (C8): the app's create
            // marker, and which relationship / scope group the operator owns, so a crash between
            // the tenant write and the status write neither duplicates the app nor forgets what
            // to clean up. (Marking a whole batch up front would leave markers for creates that
            // were never sent when an earlier action fails.)
            let marked = mark_creates(&status, &[action], now);
            if marked != status {
                let api: Api<TenantPair> =
                    Api::namespaced(ctx.client.clone(), &pair.namespace().unwrap_or_default());
                apply_status(&api, pair, MANAGER, &marked).await?;
                status = marked;
            }
            let pass = apply::Pass {
                ctx,
                pair,
                clients: &clients,
                extra: &extra,
                app_ids: (
                    observed.forward.app_id.clone(),
                    observed.reverse.as_ref().and_then(|r| r.app_id.clone()),
                ),
                now,
            };
            apply::apply_one(&pass, action, &mut applied).await?;
            did += 1;
            event(
                recorder,
                pair,
                EventType::Normal,
                event_reason(action, was_ready),
                "Configure",
                event_note(action, &observed, was_ready),
            )
            .await;
        }
    }

    // Status from one place.
    for (way, app) in &applied.app {
        let slot = match way {
            Way::Forward => &mut status.migration_app,
            Way::Reverse => &mut status.reverse_migration_app,
        };
        let mut a = app.clone();
        if a.application_id.is_some() {
            a.create_pending_since = None;
        }
        *slot = Some(a);
    }
    for (way, obs) in [
        (Way::Forward, Some(&observed.forward)),
        (Way::Reverse, observed.reverse.as_ref()),
    ] {
        let Some(obs) = obs else { continue };
        let slot = match way {
            Way::Forward => &mut status.migration_app,
            Way::Reverse => &mut status.reverse_migration_app,
        };
        let s = slot.get_or_insert_with(MigrationAppStatus::default);
        if let Some(id) = &obs.app_id {
            s.application_id = Some(id.clone());
            s.create_pending_since = None;
        }
        s.created |= obs.created;
        let stored = match way {
            Way::Forward => &extra.forward_secret,
            Way::Reverse => &extra.reverse_secret,
        };
        if let Some(st) = stored
            && obs.secret_ready
        {
            s.secret_name = Some(observe::app_secret_name(pair, way));
            s.secret_key_id = Some(st.key_id.clone());
            s.secret_expires_at = st.expires_at;
        } else if obs.secret_expires_at.is_some() {
            // Adopted: the expiry of the app credential matching the referenced Secret.
            s.secret_expires_at = obs.secret_expires_at;
        }
        if matches!(way, Way::Forward) {
            s.object_id = extra.forward_object_id.clone().or(s.object_id.clone());
        } else {
            s.object_id = extra.reverse_object_id.clone().or(s.object_id.clone());
        }
    }
    let tenant_obs = |side: Side, prev: Option<TenantObservation>| -> Option<TenantObservation> {
        let t = match side {
            Side::Target => observed.target.as_ref(),
            Side::Source => observed.source.as_ref(),
        }?;
        let mut o = prev.unwrap_or_default();
        o.initial_domain = Some(t.initial_domain.clone());
        o.customization_enabled = Some(!t.dehydrated);
        o.organization_relationship = match side {
            Side::Target => extra.target_relationship.clone(),
            Side::Source => extra.source_relationship.clone(),
        }
        .or(o.organization_relationship);
        o.organization_relationship_created |= applied.created_relationship.contains(&side);
        o.scope_group = match side {
            Side::Target => extra.target_scope_group.clone(),
            Side::Source => extra.source_scope_group.clone(),
        }
        .or(o.scope_group);
        o.scope_group_created |= applied.created_scope_group.contains(&side);
        o.consented = Some(match side {
            Side::Target => observed.forward.consented_destination,
            Side::Source => observed.forward.consented_origin,
        });
        o.credentials_version = match side {
            Side::Target => Some(clients.target.credential_version.clone()),
            Side::Source => clients
                .source
                .as_ref()
                .map(|c| c.credential_version.clone()),
        };
        Some(o)
    };
    status.target = tenant_obs(Side::Target, status.target.clone());
    status.source = if clients.source.is_some() {
        tenant_obs(Side::Source, status.source.clone())
    } else {
        None
    };
    if let Some(t) = &observed.target {
        let s = observed.source.as_ref().map(|s| s.seats).unwrap_or((0, 0));
        let total = t.seats.0 + s.0;
        let consumed = t.seats.1 + s.1;
        status.licenses = Some(LicenseStatus {
            total,
            consumed,
            available: (total - consumed).max(0),
        });
    }
    status.source_admin_steps = plan.source_steps.clone();

    let mut conditions = plan.conditions.clone();
    if suspended {
        // Ready keeps its status; its reason says why nothing moves.
        for c in conditions.iter_mut() {
            if c.type_ == types::READY {
                c.reason = reasons::SUSPENDED;
                c.message = match plan.actions.first() {
                    Some(a) => format!(
                        "suspended (no tenant writes); pending: {} (+{} more)",
                        a.describe(),
                        plan.actions.len() - 1
                    ),
                    None => format!("suspended (no tenant writes); {}", c.message),
                };
            }
            if c.type_ == types::RECONCILING {
                c.status = crate::api::ConditionStatus::False;
            }
        }
    }
    conditions.push(Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""));
    status.conditions = merge(&old.conditions, &conditions, pair.metadata.generation, now);
    status.retry = RetryStatus::default();
    if plan.ready {
        status.observed_generation = pair.metadata.generation;
    }
    status.last_handled_reconcile_at = pair
        .annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .cloned()
        .or(old.last_handled_reconcile_at.clone());

    let requeue = if did > 0 {
        Requeue::requeue(Duration::from_secs(1))
    } else if plan.ready {
        Requeue::requeue(ctx.config.idle_resync)
    } else {
        Requeue::requeue(ctx.config.active_poll)
    };
    Ok((status, requeue))
}

/// Deletion: `Orphan` leaves the tenants as they are; `Delete` removes what the operator created
/// (app, relationships and scope groups it created), never mailbox data. A suspended pair is
/// finalized without tenant writes.
async fn cleanup(pair: &TenantPair, ctx: &Context, recorder: &Recorder) -> Result<Requeue> {
    if pair.spec.deletion_policy == DeletionPolicy::Orphan {
        event(
            recorder,
            pair,
            EventType::Normal,
            "Orphaned",
            "Cleanup",
            "deletionPolicy Orphan: everything in the tenants is left as it is".into(),
        )
        .await;
        return Ok(Requeue::await_change());
    }
    if pair.spec.suspend || ctx.config.read_only {
        event(
            recorder,
            pair,
            EventType::Normal,
            "DeletedWithoutCleanup",
            "Cleanup",
            "the pair is suspended: removed without tenant writes".into(),
        )
        .await;
        return Ok(Requeue::await_change());
    }
    // Endpoints authenticate with this pair's app and clean up with its credentials: removing
    // the app and relationships under them would strand their Exchange objects. They go first.
    let dependents: Vec<String> = Api::<crate::api::MigrationEndpoint>::namespaced(
        ctx.client.clone(),
        &pair.namespace().unwrap_or_default(),
    )
    .list(&Default::default())
    .await?
    .items
    .into_iter()
    .filter(|e| e.spec.tenant_pair_ref.name == pair.name_any())
    .map(|e| e.name_any())
    .collect();
    if !dependents.is_empty() {
        let msg = format!(
            "deletionPolicy Delete: waiting for MigrationEndpoint {} to be deleted first (it uses this pair's migration app); delete it, or set spec.deletionPolicy: Orphan to leave the tenants as they are",
            dependents.join(", ")
        );
        let conds = [Desired::new(
            types::READY,
            false,
            reasons::DELETING,
            msg.clone(),
        )];
        cleanup_status(
            pair,
            ctx,
            recorder,
            &conds,
            EventType::Normal,
            "WaitingForDependents",
        )
        .await?;
        // An error keeps the finalizer (Ok would remove it); the endpoint watch wakes the pair
        // when one goes, and the error policy's requeue is the safety net.
        return Err(ReconcileError::DependencyNotReady(msg));
    }
    let mut removed = Vec::new();
    match cleanup_tenants(pair, ctx, &mut removed).await {
        Ok(()) => {}
        Err(ReconcileError::Kube(e)) => return Err(ReconcileError::Kube(e)),
        Err(err) => {
            // A stuck cleanup says so and names the escape instead of failing silently (C7.4).
            let msg = format!(
                "deletionPolicy Delete: could not remove what the operator created{}: {}. The finalizer stays and the cleanup is retried; to leave the rest in the tenants and finish the deletion, set spec.deletionPolicy: Orphan",
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(" (already removed: {})", removed.join(", "))
                },
                err.user_message()
            );
            let conds = [
                Desired::new(types::READY, false, reasons::DELETING, msg.clone()),
                Desired::new(types::STALLED, true, err.category(), msg),
            ];
            cleanup_status(
                pair,
                ctx,
                recorder,
                &conds,
                EventType::Warning,
                "CleanupFailed",
            )
            .await?;
            return Err(err);
        }
    }
    event(
        recorder,
        pair,
        EventType::Normal,
        "CleanedUp",
        "Cleanup",
        if removed.is_empty() {
            "nothing the operator created was left".into()
        } else {
            format!("removed {}", removed.join(", "))
        },
    )
    .await;
    Ok(Requeue::await_change())
}

/// A deletion that cannot finish yet: its conditions, and an event (with the Ready message) only
/// when they change.
async fn cleanup_status(
    pair: &TenantPair,
    ctx: &Context,
    recorder: &Recorder,
    conds: &[Desired],
    kind: EventType,
    reason: &str,
) -> Result<()> {
    let old = pair.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.conditions = merge(&old.conditions, conds, pair.metadata.generation, Utc::now());
    let api: Api<TenantPair> =
        Api::namespaced(ctx.client.clone(), &pair.namespace().unwrap_or_default());
    if apply_status_if_changed(&api, pair, MANAGER, &old, &status).await?
        && let Some(first) = conds.first()
    {
        event(
            recorder,
            pair,
            kind,
            reason,
            "Cleanup",
            first.message.clone(),
        )
        .await;
    }
    Ok(())
}

/// Removes, one by one, what the operator created (each removal treats "already gone" as done).
async fn cleanup_tenants(
    pair: &TenantPair,
    ctx: &Context,
    removed: &mut Vec<String>,
) -> Result<()> {
    let clients = ctx.pair_clients(pair).await?;
    let status = pair.status.clone().unwrap_or_default();
    for (side, obs) in [
        (Side::Target, status.target.as_ref()),
        (Side::Source, status.source.as_ref()),
    ] {
        let (Some(o), Some(c)) = (obs, observe::side(&clients, side)) else {
            continue;
        };
        if o.organization_relationship_created
            && let Some(r) = &o.organization_relationship
        {
            c.exchange.remove_organization_relationship(r).await?;
            removed.push(format!("organization relationship {r} ({})", side.name()));
        }
        if o.scope_group_created
            && let Some(g) = &o.scope_group
        {
            c.exchange.remove_distribution_group(g).await?;
            removed.push(format!("scope group {g} ({})", side.name()));
        }
    }
    for (way, app) in [
        (Way::Forward, status.migration_app.as_ref()),
        (Way::Reverse, status.reverse_migration_app.as_ref()),
    ] {
        let (Some(a), Some(c)) = (app, observe::side(&clients, way.destination())) else {
            continue;
        };
        if a.created
            && let Some(obj) = &a.object_id
        {
            c.graph.delete_application(obj).await?;
            removed.push(format!(
                "migration app {}",
                a.application_id.clone().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let pairs: Api<TenantPair> = Api::all(ctx.client.clone());
    let secrets: Api<Secret> = Api::all(ctx.client.clone());
    let controller = Controller::new(pairs, watcher::Config::default().any_semantic());
    let store = controller.store();
    ctx.track_sync("tenantpair", &store);
    let endpoints: Api<crate::api::MigrationEndpoint> = Api::all(ctx.client.clone());
    controller
        // An endpoint switching to a rotated secret lets the pair remove the old one at once.
        .watches(endpoints, watcher::Config::default().any_semantic(), |ep| {
            Some(
                ObjectRef::<TenantPair>::new(&ep.spec.tenant_pair_ref.name)
                    .within(&ep.namespace().unwrap_or_default()),
            )
        })
        // A changed Secret re-validates every pair that references it.
        .watches(
            secrets,
            watcher::Config::default().any_semantic(),
            move |secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == ns && references_secret(p, &name))
                    .map(|p| ObjectRef::from(p.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(4)
                .debounce(Duration::from_millis(500)),
        )
        .graceful_shutdown_on(shutdown)
        .run(
            crate::controller::pass::reconcile::<TenantPair>,
            error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn references_secret(p: &TenantPair, name: &str) -> bool {
    let cred = |c: &Option<crate::api::CredentialsSpec>| {
        c.as_ref().is_some_and(|c| {
            c.client_secret.as_ref().is_some_and(|r| r.name == name)
                || c.certificate
                    .as_ref()
                    .is_some_and(|r| r.secret_name == name)
        })
    };
    cred(&p.spec.source.credentials)
        || cred(&p.spec.target.credentials)
        || p.spec
            .migration_app
            .client_secret
            .as_ref()
            .is_some_and(|r| r.name == name)
        || name == observe::app_secret_name(p, Way::Forward)
        || name == observe::app_secret_name(p, Way::Reverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::exchange::RelationshipSettings;
    use crate::tenant::exchange::types::OrganizationRelationship;

    fn t0() -> chrono::DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 3, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn creates_are_marked_before_they_are_sent() {
        let status = TenantPairStatus::default();
        let rel = Action::CreateRelationship(Side::Source, "t2t-x".into(), Default::default());
        let group = Action::CreateScopeGroup(Side::Target, "G".into());
        let app = Action::CreateApp(Way::Forward);
        let m = mark_creates(&status, &[&rel, &group, &app], t0());
        let s = m.source.as_ref().expect("source");
        assert_eq!(s.organization_relationship.as_deref(), Some("t2t-x"));
        assert!(s.organization_relationship_created);
        let t = m.target.as_ref().expect("target");
        assert_eq!(t.scope_group.as_deref(), Some("G"));
        assert!(t.scope_group_created);
        assert_eq!(
            m.migration_app
                .as_ref()
                .and_then(|a| a.create_pending_since),
            Some(t0())
        );
        // Other actions mark nothing, so they cost no extra status write.
        let update =
            Action::UpdateRelationship(Side::Target, "r".into(), RelationshipSettings::default());
        let consent = Action::GrantConsent(Way::Forward, Side::Source);
        assert_eq!(mark_creates(&status, &[&update, &consent], t0()), status);
    }

    #[test]
    fn drift_events_say_what_changed() {
        let mut o = plan::Observed {
            source: Some(plan::TenantObs {
                relationship: Some(OrganizationRelationship {
                    identity: "to fabrikam".into(),
                    enabled: true,
                    mailbox_move_enabled: true,
                    mailbox_move_capability: vec!["Inbound".into()],
                    oauth_application_id: Some("a".into()),
                    mailbox_move_published_scopes: vec!["G".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let want = RelationshipSettings {
            capability: vec!["RemoteOutbound".into()],
            oauth_application_id: Some("a".into()),
            published_scopes: vec!["G".into()],
        };
        let a = Action::UpdateRelationship(Side::Source, "to fabrikam".into(), want);
        let note = event_note(&a, &o, true);
        assert!(
            note.contains("to fabrikam")
                && note.contains("MailboxMoveCapability Inbound -> RemoteOutbound"),
            "{note}"
        );
        assert_eq!(event_reason(&a, true), "DriftRepaired");
        assert_eq!(event_reason(&a, false), "OrganizationRelationshipUpdated");
        let g = Action::CreateScopeGroup(Side::Source, "G".into());
        assert!(event_note(&g, &o, true).contains("scope group G was missing"));
        assert_eq!(event_note(&g, &o, false), g.describe());
        o.source = None;
        assert_eq!(event_note(&a, &o, true), a.describe());
    }
}
