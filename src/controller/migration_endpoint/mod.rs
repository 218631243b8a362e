//! The MigrationEndpoint controller: the Exchange cross-tenant migration endpoint, created with
//! the pair's migration app credentials, kept in sync, and tested for availability.

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

use self::plan::{Desired as DesiredEndpoint, Step};
use crate::api::conditions::{Desired, is_true, merge, reasons, types};
use crate::api::{
    AvailabilityTest, DeletionPolicy, EndpointDirection, MigrationAppMode, MigrationEndpoint,
    MigrationEndpointStatus, REQUESTED_AT_ANNOTATION, RetryStatus, TenantPair,
};
use crate::controller::context::{Context, PairClients, TenantClients};
use crate::controller::credentials;
use crate::controller::error::{ReconcileError, Result};
use crate::controller::status::{
    apply_status, apply_status_if_changed, backoff_from, event, ready_transition_event,
};
use crate::controller::tenant_pair::observe::{app_secret_name, secret_keys};
use crate::controller::tenant_pair::plan::Way;
use crate::tenant::exchange::NewEndpoint;

pub const FINALIZER: &str = "t2t.dev/migrationendpoint";
pub const MANAGER: &str = "t2t.dev/migrationendpoint";

fn exchange_name(ep: &MigrationEndpoint) -> String {
    ep.spec
        .exchange_name
        .clone()
        .unwrap_or_else(|| ep.name_any())
}

fn way(ep: &MigrationEndpoint) -> Way {
    match ep.spec.direction {
        EndpointDirection::Forward => Way::Forward,
        EndpointDirection::Reverse => Way::Reverse,
    }
}

async fn get_pair(ctx: &Context, ep: &MigrationEndpoint) -> Result<TenantPair> {
    let pairs: Api<TenantPair> =
        Api::namespaced(ctx.client.clone(), &ep.namespace().unwrap_or_default());
    pairs
        .get_opt(&ep.spec.tenant_pair_ref.name)
        .await?
        .ok_or_else(|| {
            ReconcileError::DependencyNotReady(format!(
                "TenantPair {} not found: create it or fix spec.tenantPairRef",
                ep.spec.tenant_pair_ref.name
            ))
        })
}

/// The migration app id, secret and its keyId for the endpoint's direction.
async fn app_credentials(
    ctx: &Context,
    pair: &TenantPair,
    w: Way,
) -> Result<(String, String, String)> {
    let ns = pair.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let app_spec = match w {
        Way::Forward => &pair.spec.migration_app,
        Way::Reverse => pair
            .spec
            .reverse
            .as_ref()
            .map(|r| &r.migration_app)
            .unwrap_or(&pair.spec.migration_app),
    };
    match app_spec.mode {
        MigrationAppMode::Adopt => {
            let app = app_spec.application_id.clone().ok_or_else(|| {
                ReconcileError::InvalidSpec(
                    "migrationApp.applicationId is required with mode Adopt".into(),
                )
            })?;
            let r = app_spec.client_secret.as_ref().ok_or_else(|| {
                ReconcileError::InvalidSpec(
                    "migrationApp.clientSecret is required with mode Adopt".into(),
                )
            })?;
            let (secret, version) = credentials::app_secret(&secrets, r).await?;
            Ok((app, secret, format!("adopted:{version}")))
        }
        MigrationAppMode::Create => {
            let name = app_secret_name(pair, w);
            let not_ready = || {
                ReconcileError::DependencyNotReady(format!(
                    "TenantPair {} has not created the migration app and its secret yet",
                    pair.name_any()
                ))
            };
            let Some(s) = secrets.get_opt(&name).await? else {
                return Err(not_ready());
            };
            let get = |k: &str| {
                s.data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
            };
            match (
                get(secret_keys::CLIENT_ID),
                get(secret_keys::CLIENT_SECRET),
                get(secret_keys::KEY_ID),
            ) {
                (Some(a), Some(sec), Some(k)) => Ok((a, sec, k)),
                _ => Err(not_ready()),
            }
        }
    }
}

fn host_tenant(clients: &PairClients, w: Way) -> Result<&TenantClients> {
    match w {
        Way::Forward => Ok(&clients.target),
        Way::Reverse => clients.source.as_ref().ok_or_else(|| {
            ReconcileError::InvalidSpec(
                "a Reverse endpoint needs source credentials on the TenantPair".into(),
            )
        }),
    }
}

impl crate::controller::pass::Finalized for MigrationEndpoint {
    const CONTROLLER: &'static str = "migrationendpoint";
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

/// Only Kubernetes API failures (and failed cleanups) reach here; the delay follows the
/// persisted attempts.
fn error_policy(ep: Arc<MigrationEndpoint>, err: &ReconcileError, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(error = %err.user_message(), "reconcile failed");
    let attempts = ep
        .status
        .as_ref()
        .map(|s| s.retry.failed_attempts)
        .unwrap_or(0)
        .max(1);
    Requeue::requeue(backoff_from(ctx.config.retry_base, attempts))
}

async fn apply_pass(
    api: &Api<MigrationEndpoint>,
    ep: &MigrationEndpoint,
    ctx: &Context,
    recorder: &Recorder,
) -> Result<Requeue> {
    let now = Utc::now();
    let old = ep.status.clone().unwrap_or_default();
    let mut marked_created = false;
    let result = run_pass(ep, ctx, recorder, &old, now, &mut marked_created).await;
    let (status, requeue) = match result {
        Ok(v) => v,
        Err(ReconcileError::Kube(e)) => return Err(ReconcileError::Kube(e)),
        Err(err) => {
            // The endpoint's connectivity check fails until the source tenant has consented
            // to the migration app (split administration): wait and retry, do not stall.
            let consent = matches!(&err, ReconcileError::Tenant(t)
                if t.exchange_kind() == Some(&crate::tenant::ExchangeErrorKind::EndpointCredentials));
            let terminal = err.is_terminal() && !consent;
            let dependency = matches!(err, ReconcileError::DependencyNotReady(_)) || consent;
            let msg = err.user_message();
            // The same terminal problem seen again is not a new failure: no status churn.
            let repeat = terminal
                && crate::api::conditions::find(&old.conditions, types::STALLED)
                    .is_some_and(|c| c.reason == err.category() && c.message == msg);
            let attempts = if dependency || repeat {
                old.retry.failed_attempts
            } else {
                old.retry.failed_attempts.saturating_add(1)
            };
            let mut status = old.clone();
            // Ownership recorded before a create that then failed stays recorded.
            status.created |= marked_created;
            let conds = if terminal {
                vec![
                    Desired::new(types::READY, false, err.category(), msg.clone()),
                    Desired::new(types::STALLED, true, err.category(), msg),
                    Desired::new(types::RECONCILING, false, reasons::SUCCEEDED, ""),
                ]
            } else if dependency {
                let (reason, msg) = if consent {
                    (
                        reasons::CONSENT_MISSING,
                        format!(
                            "{msg}: the migration app must be consented in the origin tenant (see the TenantPair's status.sourceAdminSteps); retrying"
                        ),
                    )
                } else {
                    (reasons::DEPENDENCY_NOT_READY, msg)
                };
                vec![
                    Desired::new(types::READY, false, reason, msg.clone()),
                    Desired::new(types::RECONCILING, true, reason, msg),
                    Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""),
                ]
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
                        msg,
                    ),
                    Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""),
                ]
            };
            status.conditions = merge(&old.conditions, &conds, ep.metadata.generation, now);
            status.retry = if dependency || repeat {
                old.retry.clone()
            } else {
                RetryStatus {
                    failed_attempts: attempts,
                    last_failure_time: Some(now),
                }
            };
            if terminal {
                status.observed_generation = ep.metadata.generation;
            }
            let wait = if terminal {
                ctx.config.idle_resync
            } else if consent {
                ctx.config.active_poll
            } else if dependency {
                Duration::from_secs(5).min(ctx.config.active_poll)
            } else {
                backoff_from(ctx.config.retry_base, attempts)
            };
            (status, Requeue::requeue(wait))
        }
    };
    let mut status = status;
    status.last_handled_reconcile_at = ep
        .annotations()
        .get(REQUESTED_AT_ANNOTATION)
        .cloned()
        .or(old.last_handled_reconcile_at.clone());
    apply_status_if_changed(api, ep, MANAGER, &old, &status).await?;
    ready_transition_event(
        recorder,
        ep,
        &old.conditions,
        &status.conditions,
        "Reconcile",
    )
    .await;
    Ok(requeue)
}

async fn run_pass(
    ep: &MigrationEndpoint,
    ctx: &Context,
    recorder: &Recorder,
    old: &MigrationEndpointStatus,
    now: chrono::DateTime<Utc>,
    marked_created: &mut bool,
) -> Result<(MigrationEndpointStatus, Requeue)> {
    let pair = get_pair(ctx, ep).await?;
    // Creating the endpoint needs the app consented in both tenants; until the pair says so, a
    // New-MigrationEndpoint would only be refused. Split administration is the exception: there
    // the endpoint's own test is what proves the source side.
    if let Some(c) = pair
        .status
        .as_ref()
        .and_then(|s| crate::api::conditions::find(&s.conditions, types::MIGRATION_APP_READY))
        && c.status != crate::api::ConditionStatus::True
        && c.reason != reasons::AWAITING_SOURCE_ADMIN
    {
        return Err(ReconcileError::DependencyNotReady(format!(
            "waiting for TenantPair {}: {}",
            pair.name_any(),
            c.message
        )));
    }
    let w = way(ep);
    let clients = ctx.pair_clients(&pair).await?;
    let host = host_tenant(&clients, w)?;
    let (app_id, secret, key_id) = app_credentials(ctx, &pair, w).await?;
    let origin_domain = match w {
        Way::Forward => pair.spec.source.initial_domain.clone(),
        Way::Reverse => pair.spec.target.initial_domain.clone(),
    };
    let want = DesiredEndpoint {
        name: exchange_name(ep),
        remote_server: ep.spec.remote_server.clone(),
        remote_tenant: origin_domain,
        application_id: app_id.clone(),
        secret_key_id: key_id.clone(),
        max_concurrent_migrations: ep.spec.max_concurrent_migrations,
        max_concurrent_incremental_syncs: ep.spec.max_concurrent_incremental_syncs,
    };
    let have = host.exchange.get_migration_endpoint(&want.name).await?;
    let step = plan::plan(&want, have.as_ref(), old.credential_key_id.as_deref());
    let mut status = old.clone();
    let suspended = ep.spec.suspend || ctx.config.read_only;
    let was_ready = is_true(&old.conditions, types::READY);
    let mut wrote = false;
    let mut endpoint = have.clone();
    if !suspended {
        match &step {
            Step::Create => {
                // Record ownership before the create (C8): a crash between the create and the
                // status write must not leave an endpoint that `Delete` would forget.
                if !status.created {
                    status.created = true;
                    let api: Api<MigrationEndpoint> =
                        Api::namespaced(ctx.client.clone(), &ep.namespace().unwrap_or_default());
                    apply_status(&api, ep, MANAGER, &status).await?;
                    *marked_created = true;
                }
                let created = host
                    .exchange
                    .new_migration_endpoint(
                        &NewEndpoint {
                            name: want.name.clone(),
                            remote_server: want.remote_server.clone(),
                            remote_tenant: want.remote_tenant.clone(),
                            application_id: app_id.clone(),
                            max_concurrent_migrations: want.max_concurrent_migrations,
                            max_concurrent_incremental_syncs: want.max_concurrent_incremental_syncs,
                        },
                        &secret,
                    )
                    .await?;
                status.created = true;
                status.credential_key_id = Some(key_id.clone());
                event(
                    recorder,
                    ep,
                    EventType::Normal,
                    if was_ready {
                        "DriftRepaired"
                    } else {
                        "EndpointCreated"
                    },
                    "Configure",
                    if was_ready {
                        format!(
                            "migration endpoint {} was missing in Exchange: recreated it",
                            created.identity
                        )
                    } else {
                        format!(
                            "created migration endpoint {} in Exchange",
                            created.identity
                        )
                    },
                )
                .await;
                endpoint = Some(created);
                wrote = true;
            }
            Step::Update {
                rotate_credential,
                changes,
            } => {
                host.exchange
                    .set_migration_endpoint(
                        &want.name,
                        Some(&app_id),
                        rotate_credential.then_some(secret.as_str()),
                        want.max_concurrent_migrations,
                        want.max_concurrent_incremental_syncs,
                    )
                    .await?;
                if *rotate_credential {
                    status.credential_key_id = Some(key_id.clone());
                }
                event(
                    recorder,
                    ep,
                    EventType::Normal,
                    if *rotate_credential && changes.len() == 1 {
                        "CredentialRotated"
                    } else {
                        "DriftRepaired"
                    },
                    "Configure",
                    format!("updated endpoint {}: {}", want.name, changes.join("; ")),
                )
                .await;
                wrote = true;
            }
            Step::Test => {}
        }
    }
    if status.credential_key_id.is_none() && have.is_some() && !status.created {
        // Adopted endpoint: its credential is the user's; record the key we would write.
        status.credential_key_id = None;
    }
    if let Some(e) = &endpoint {
        status.exchange_identity = Some(e.identity.clone());
        status.exchange_guid = e.guid.clone();
    }
    status.application_id = Some(app_id);

    let mut conds = Vec::new();
    let ready;
    if endpoint.is_none() {
        ready = false;
        conds.push(Desired::new(
            types::AVAILABLE,
            false,
            reasons::SUSPENDED,
            "the endpoint does not exist yet (suspended)",
        ));
        conds.push(Desired::new(
            types::READY,
            false,
            reasons::SUSPENDED,
            "suspended: the endpoint is not created",
        ));
    } else {
        let test = host
            .exchange
            .test_migration_server_availability(&want.name, None)
            .await?;
        let ok = test.result.eq_ignore_ascii_case("Success");
        let message = test
            .message
            .clone()
            .or(test.error_detail.clone())
            .unwrap_or_default();
        let changed = old
            .last_test
            .as_ref()
            .is_none_or(|t| t.result != test.result || t.message != message);
        status.last_test = Some(AvailabilityTest {
            result: test.result.clone(),
            message: crate::api::conditions::truncate(&message, 1024),
            time: if changed {
                now
            } else {
                old.last_test.as_ref().map(|t| t.time).unwrap_or(now)
            },
        });
        ready = ok;
        if ok {
            conds.push(Desired::new(
                types::AVAILABLE,
                true,
                reasons::SUCCEEDED,
                "Test-MigrationServerAvailability succeeded",
            ));
            conds.push(Desired::new(
                types::READY,
                true,
                if suspended {
                    reasons::SUSPENDED
                } else {
                    reasons::SUCCEEDED
                },
                format!("endpoint {} is available", want.name),
            ));
        } else {
            let msg = format!(
                "Test-MigrationServerAvailability: {} {message}",
                test.result
            );
            conds.push(Desired::new(
                types::AVAILABLE,
                false,
                reasons::ENDPOINT_UNAVAILABLE,
                msg.clone(),
            ));
            conds.push(Desired::new(
                types::READY,
                false,
                reasons::ENDPOINT_UNAVAILABLE,
                msg,
            ));
        }
    }
    conds.push(Desired::new(
        types::RECONCILING,
        !ready && !suspended,
        reasons::WAITING_FOR_TENANT,
        "waiting for the endpoint to become available",
    ));
    conds.push(Desired::new(types::STALLED, false, reasons::SUCCEEDED, ""));
    status.conditions = merge(&old.conditions, &conds, ep.metadata.generation, now);
    status.retry = RetryStatus::default();
    if ready {
        status.observed_generation = ep.metadata.generation;
    }
    let requeue = if wrote {
        Duration::from_secs(1)
    } else if ready {
        ctx.config.idle_resync
    } else {
        ctx.config.active_poll
    };
    Ok((status, Requeue::requeue(requeue)))
}

async fn cleanup(ep: &MigrationEndpoint, ctx: &Context, recorder: &Recorder) -> Result<Requeue> {
    let created = ep.status.as_ref().is_some_and(|s| s.created);
    if ep.spec.deletion_policy == DeletionPolicy::Orphan || !created {
        event(recorder, ep, EventType::Normal, "Orphaned", "Cleanup", format!("endpoint {} left in Exchange (deletionPolicy {:?}, created by the operator: {created})", exchange_name(ep), ep.spec.deletion_policy)).await;
        return Ok(Requeue::await_change());
    }
    if ep.spec.suspend || ctx.config.read_only {
        event(
            recorder,
            ep,
            EventType::Normal,
            "DeletedWithoutCleanup",
            "Cleanup",
            "suspended: removed without tenant writes".into(),
        )
        .await;
        return Ok(Requeue::await_change());
    }
    let pair = match get_pair(ctx, ep).await {
        Ok(p) => p,
        Err(ReconcileError::DependencyNotReady(m)) => {
            event(
                recorder,
                ep,
                EventType::Warning,
                "CleanupSkipped",
                "Cleanup",
                format!("{m}; the Exchange endpoint is left in place"),
            )
            .await;
            return Ok(Requeue::await_change());
        }
        Err(e) => return Err(e),
    };
    let clients = ctx.pair_clients(&pair).await?;
    host_tenant(&clients, way(ep))?
        .exchange
        .remove_migration_endpoint(&exchange_name(ep))
        .await?;
    event(
        recorder,
        ep,
        EventType::Normal,
        "EndpointRemoved",
        "Cleanup",
        format!("removed migration endpoint {}", exchange_name(ep)),
    )
    .await;
    Ok(Requeue::await_change())
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let endpoints: Api<MigrationEndpoint> = Api::all(ctx.client.clone());
    let pairs: Api<TenantPair> = Api::all(ctx.client.clone());
    let controller = Controller::new(endpoints, watcher::Config::default().any_semantic());
    let store = controller.store();
    ctx.track_sync("migrationendpoint", &store);
    let store2 = store.clone();
    let secrets: Api<Secret> = Api::all(ctx.client.clone());
    controller
        // A pair's change (new app, rotated secret) reaches its endpoints.
        .watches(
            pairs,
            watcher::Config::default().any_semantic(),
            move |pair| {
                let ns = pair.namespace();
                let name = pair.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|e| e.namespace() == ns && e.spec.tenant_pair_ref.name == name)
                    .map(|e| ObjectRef::from(e.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            secrets,
            watcher::Config::default()
                .labels(&format!(
                    "{}={}",
                    crate::api::MANAGED_BY_LABEL,
                    crate::api::MANAGED_BY
                ))
                .any_semantic(),
            move |secret| {
                let ns = secret.namespace();
                let pair = secret
                    .labels()
                    .get("t2t.dev/tenantpair")
                    .cloned()
                    .unwrap_or_default();
                store2
                    .state()
                    .into_iter()
                    .filter(|e| e.namespace() == ns && e.spec.tenant_pair_ref.name == pair)
                    .map(|e| ObjectRef::from(e.as_ref()))
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
            crate::controller::pass::reconcile::<MigrationEndpoint>,
            error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}
