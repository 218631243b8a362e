//! The MigrationBatch controller: preflight, target preparation, moves and completion.

pub mod plan;
pub mod post;
pub mod preflight;
pub mod reconcile;
pub mod target_user;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};

use self::reconcile::{MANAGER, exchange_batch_name, run_pass};
use crate::api::conditions::{Desired, merge, reasons, types};
use crate::api::{
    DeletionPolicy, MigrationBatch, MigrationBatchStatus, MigrationEndpoint,
    REQUESTED_AT_ANNOTATION, RetryStatus, UserState,
};
use crate::controller::context::Context;
use crate::controller::error::{ReconcileError, Result};
use crate::controller::status::{apply_status_if_changed, backoff, event, ready_transition_event};

pub const FINALIZER: &str = "t2t.dev/migrationbatch";

impl crate::controller::pass::Finalized for MigrationBatch {
    const CONTROLLER: &'static str = "migrationbatch";
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

fn error_policy(_mb: Arc<MigrationBatch>, err: &ReconcileError, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(error = %err.user_message(), "reconcile failed");
    Requeue::requeue(Duration::from_secs(30))
}

async fn apply_pass(
    api: &Api<MigrationBatch>,
    mb: &MigrationBatch,
    ctx: &Context,
    recorder: &Recorder,
) -> Result<Requeue> {
    let now = Utc::now();
    let empty = MigrationBatchStatus::default();
    // Borrowed: a 2,000-user status is not copied for the pass.
    let old = mb.status.as_ref().unwrap_or(&empty);
    let (status, requeue) = match run_pass(mb, ctx, recorder, old, now).await {
        Ok(v) => v,
        Err(ReconcileError::Kube(e)) => return Err(ReconcileError::Kube(e)),
        Err(err) => {
            let terminal = err.is_terminal();
            let dependency = matches!(err, ReconcileError::DependencyNotReady(_));
            let msg = err.user_message();
            let mut status = old.clone();
            let attempts = if dependency {
                old.retry.failed_attempts
            } else {
                old.retry.failed_attempts.saturating_add(1)
            };
            let conds = if terminal {
                vec![
                    Desired::new(types::READY, false, err.category(), msg.clone()),
                    Desired::new(types::STALLED, true, err.category(), msg),
                    Desired::new(types::RECONCILING, false, reasons::SUCCEEDED, ""),
                ]
            } else if dependency {
                vec![
                    Desired::new(
                        types::READY,
                        false,
                        reasons::DEPENDENCY_NOT_READY,
                        msg.clone(),
                    ),
                    Desired::new(types::RECONCILING, true, reasons::DEPENDENCY_NOT_READY, msg),
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
            status.conditions = merge(&old.conditions, &conds, mb.metadata.generation, now);
            if !dependency {
                status.retry = RetryStatus {
                    failed_attempts: attempts,
                    last_failure_time: Some(now),
                };
            }
            if terminal {
                status.observed_generation = mb.metadata.generation;
            }
            status.last_handled_reconcile_at = mb
                .annotations()
                .get(REQUESTED_AT_ANNOTATION)
                .cloned()
                .or(old.last_handled_reconcile_at.clone());
            let wait = if terminal {
                ctx.config.idle_resync
            } else if dependency {
                Duration::from_secs(5)
            } else {
                backoff(attempts)
            };
            (status, Requeue::requeue(wait))
        }
    };
    ctx.metrics
        .record_batch(&mb.uid().unwrap_or_default(), &status.counts);
    // Unchanged statuses are not written again (each write is a 2,000-user object on the wire
    // and in every watch cache).
    apply_status_if_changed(api, mb, MANAGER, old, &status).await?;
    ready_transition_event(recorder, mb, &old.conditions, &status.conditions, "Migrate").await;
    Ok(requeue)
}

/// `Orphan` leaves the Exchange batch; `Delete` removes it, but never while a user is completing.
async fn cleanup(mb: &MigrationBatch, ctx: &Context, recorder: &Recorder) -> Result<Requeue> {
    ctx.metrics.forget_batch(&mb.uid().unwrap_or_default());
    let name = exchange_batch_name(mb);
    let started = mb
        .status
        .as_ref()
        .is_some_and(|s| s.exchange_batch.is_some());
    if mb.spec.deletion_policy == DeletionPolicy::Orphan || !started {
        event(
            recorder,
            mb,
            EventType::Normal,
            "Orphaned",
            "Cleanup",
            format!(
                "Exchange batch {name} left as it is (deletionPolicy {:?})",
                mb.spec.deletion_policy
            ),
        )
        .await;
        return Ok(Requeue::await_change());
    }
    if mb.spec.suspend || ctx.config.read_only {
        event(
            recorder,
            mb,
            EventType::Normal,
            "DeletedWithoutCleanup",
            "Cleanup",
            "suspended: removed without tenant writes".into(),
        )
        .await;
        return Ok(Requeue::await_change());
    }
    if mb
        .status
        .as_ref()
        .is_some_and(|s| s.users.iter().any(|u| u.state == UserState::Completing))
    {
        return Err(ReconcileError::DependencyNotReady(format!(
            "users of {name} are completing; the batch is removed once they finish (or set deletionPolicy: Orphan)"
        )));
    }
    let eps: Api<MigrationEndpoint> =
        Api::namespaced(ctx.client.clone(), &mb.namespace().unwrap_or_default());
    let pairs: Api<crate::api::TenantPair> =
        Api::namespaced(ctx.client.clone(), &mb.namespace().unwrap_or_default());
    let Some(ep) = eps.get_opt(&mb.spec.endpoint_ref.name).await? else {
        event(
            recorder,
            mb,
            EventType::Warning,
            "CleanupSkipped",
            "Cleanup",
            format!(
                "MigrationEndpoint {} is gone; Exchange batch {name} is left in place",
                mb.spec.endpoint_ref.name
            ),
        )
        .await;
        return Ok(Requeue::await_change());
    };
    let Some(pair) = pairs.get_opt(&ep.spec.tenant_pair_ref.name).await? else {
        event(
            recorder,
            mb,
            EventType::Warning,
            "CleanupSkipped",
            "Cleanup",
            format!(
                "TenantPair {} is gone; Exchange batch {name} is left in place",
                ep.spec.tenant_pair_ref.name
            ),
        )
        .await;
        return Ok(Requeue::await_change());
    };
    let clients = ctx.pair_clients(&pair).await?;
    clients
        .target
        .exchange
        .remove_migration_batch(&name)
        .await?;
    event(
        recorder,
        mb,
        EventType::Normal,
        "BatchRemoved",
        "Cleanup",
        format!("removed Exchange batch {name}"),
    )
    .await;
    Ok(Requeue::await_change())
}

/// What starts a pass when it changes: the spec (generation), annotations (reconcile requests),
/// finalizers and the deletion mark. Status-only updates (our own writes) do not.
fn trigger_hash(b: &MigrationBatch) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.metadata.generation.hash(&mut h);
    b.annotations().hash(&mut h);
    b.finalizers().hash(&mut h);
    b.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let batches: Api<MigrationBatch> = Api::all(ctx.client.clone());
    // Our own reflector: managedFields (one entry per user of a 2,000-user status) are dropped
    // before objects enter the cache, and the store is shared with the passes (the
    // one-batch-per-user rule reads other batches from it instead of listing them).
    let (store, writer) = reflector::store();
    ctx.set_batch_store(store.clone());
    let trigger = watcher(batches, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|b: &mut MigrationBatch| b.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects()
        // Our own status writes do not start another pass (requeues pace the polling).
        .predicate_filter(trigger_hash, Default::default());
    let controller = Controller::for_stream(trigger, store.clone());
    ctx.track_sync("migrationbatch", &store);
    let store2 = store.clone();
    let endpoints: Api<MigrationEndpoint> = Api::all(ctx.client.clone());
    let configmaps: Api<ConfigMap> = Api::all(ctx.client.clone());
    controller
        // An endpoint turning Ready releases its batches.
        .watches(
            endpoints,
            watcher::Config::default().any_semantic(),
            move |ep| {
                let ns = ep.namespace();
                let name = ep.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|b| b.namespace() == ns && b.spec.endpoint_ref.name == name)
                    .map(|b| ObjectRef::from(b.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // A users ConfigMap appearing or changing.
        .watches(
            configmaps,
            watcher::Config::default().any_semantic(),
            move |cm| {
                let ns = cm.namespace();
                let name = cm.name_any();
                store2
                    .state()
                    .into_iter()
                    .filter(|b| {
                        b.namespace() == ns
                            && b.spec.users_from.as_ref().is_some_and(|r| r.name == name)
                    })
                    .map(|b| ObjectRef::from(b.as_ref()))
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
            crate::controller::pass::reconcile::<MigrationBatch>,
            error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}
