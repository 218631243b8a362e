//! What every controller's reconcile shares: a tracing span naming the object, the finalizer
//! (apply or cleanup), and the reconcile metrics. Each kind supplies only its two passes.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, info_span};

use super::context::Context;
use super::error::{ReconcileError, Result};

/// A kind the operator reconciles behind a finalizer.
pub trait Finalized:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Controller name in metrics, events and logs (`tenantpair`, …).
    const CONTROLLER: &'static str;
    /// The finalizer that guards cleanup.
    const FINALIZER: &'static str;

    /// One pass for a live object; writes its own status.
    fn apply(
        api: &Api<Self>,
        obj: &Self,
        ctx: &Context,
        recorder: &Recorder,
    ) -> impl Future<Output = Result<Requeue>> + Send;

    /// Cleanup of a deleted object; an error keeps the finalizer.
    fn cleanup(
        obj: &Self,
        ctx: &Context,
        recorder: &Recorder,
    ) -> impl Future<Output = Result<Requeue>> + Send;
}

/// The `reconcile` function handed to kube's `Controller::run` for any [`Finalized`] kind.
pub async fn reconcile<K: Finalized>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Requeue> {
    let span = info_span!(
        "reconcile",
        kind = %K::kind(&()),
        namespace = %obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        generation = obj.meta().generation.unwrap_or(0)
    );
    async move {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        let recorder = ctx.recorder(K::CONTROLLER);
        let started = std::time::Instant::now();
        let out = finalizer(&api, K::FINALIZER, obj, |ev| async {
            match ev {
                Finalizer::Apply(o) => K::apply(&api, &o, &ctx, &recorder).await,
                Finalizer::Cleanup(o) => K::cleanup(&o, &ctx, &recorder).await,
            }
        })
        .await
        .map_err(|e| ReconcileError::Finalizer(Box::new(e)));
        ctx.metrics.observe_reconcile(
            K::CONTROLLER,
            started.elapsed(),
            out.as_ref().err().map(|e| e.category()),
        );
        out
    }
    .instrument(span)
    .await
}
