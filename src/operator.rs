//! The operator runtime: every controller, sharing one context, until shutdown.

use std::sync::Arc;

use tokio::sync::watch;

use crate::controller::context::Context;
use crate::controller::{migration_batch, migration_endpoint, tenant_pair};

/// Number of controllers (for readiness).
pub const CONTROLLERS: usize = 3;

/// A running set of controllers.
pub struct OperatorHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts all controllers on the current runtime.
pub fn start(ctx: Arc<Context>) -> OperatorHandle {
    let (stop, rx) = watch::channel(false);
    ctx.metrics.leader.set(1);
    let task = tokio::spawn(async move {
        tokio::join!(
            tenant_pair::run(ctx.clone(), stopped(rx.clone())),
            migration_endpoint::run(ctx.clone(), stopped(rx.clone())),
            migration_batch::run(ctx.clone(), stopped(rx.clone())),
        );
    });
    OperatorHandle { stop, task }
}

impl OperatorHandle {
    /// Asks every controller to finish its in-flight passes, then waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops at once, abandoning in-flight passes (a crash, for restart tests).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Settings of `t2t-operator run`.
#[derive(Debug, Clone)]
pub struct MainOptions {
    pub metrics_addr: std::net::SocketAddr,
    pub read_only: bool,
    pub exchange_public_key: Option<std::path::PathBuf>,
    pub max_actions_per_pass: usize,
    /// Poll interval while tenant work is in flight.
    pub active_poll: std::time::Duration,
    /// Resync of idle, Ready objects.
    pub idle_resync: std::time::Duration,
    /// Run only while holding the leader Lease in this namespace.
    pub leader_elect: Option<String>,
}

/// Errors that stop the operator at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("the CRD {0} is not installed: apply crds/ (kubectl apply -k deploy/) first")]
    CrdMissing(String),
    #[error("{0}")]
    Config(String),
    #[error("metrics server: {0}")]
    Io(#[from] std::io::Error),
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so the pod restarts clean")]
    LostLease,
}

/// The real operator: client from KUBECONFIG or in-cluster, CRD probe, metrics and health
/// server, controllers until SIGTERM or Ctrl-C (in-flight passes finish first).
pub async fn run_main(opts: MainOptions) -> Result<(), StartError> {
    crate::tls::install_crypto_provider();
    let client = kube::Client::try_default().await?;
    probe_crds(&client).await?;
    let mut config = crate::controller::context::OperatorConfig {
        read_only: opts.read_only,
        max_actions_per_pass: opts.max_actions_per_pass,
        active_poll: opts.active_poll,
        idle_resync: opts.idle_resync,
        instance: std::env::var("POD_NAME").ok(),
        ..Default::default()
    };
    if let Some(path) = &opts.exchange_public_key {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        config.exchange_public_key = Some(
            crate::tenant::exchange::SecureStringKey::from_pem(&pem)
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
    }
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let ctx = Context::new(client, metrics.clone(), config);
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Ready once every controller's watch cache has synced; a standby is ready too (it only waits
    // for the lease and has no caches).
    let readiness: crate::http_server::Readiness = {
        let (ctx, stopping, elect) = (ctx.clone(), stopping.clone(), opts.leader_elect.is_some());
        Arc::new(move || {
            is_ready(
                stopping.load(std::sync::atomic::Ordering::SeqCst),
                ctx.synced.load(std::sync::atomic::Ordering::SeqCst),
                elect && ctx.metrics.leader.get() == 0,
            )
        })
    };
    // Not ready from the moment SIGTERM arrives, while in-flight passes drain.
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight passes");
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let server = crate::http_server::serve(opts.metrics_addr, metrics, readiness).await?;
    tracing::info!(metrics = %opts.metrics_addr, leader_elect = opts.leader_elect.is_some(), "operator started");
    let result = match opts.leader_elect {
        Some(ns) => {
            match crate::leader::run(ctx, crate::leader::LeaseSettings::new(ns), signal).await? {
                crate::leader::Outcome::ShutDown => Ok(()),
                crate::leader::Outcome::LostLease => Err(StartError::LostLease),
            }
        }
        None => {
            let handle = start(ctx);
            signal.await;
            handle.shutdown().await;
            Ok(())
        }
    };
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    server.abort();
    tracing::info!("stopped");
    result
}

/// `/readyz`: not while shutting down; ready once every controller's watch cache synced, or as
/// a standby waiting for the lease (it has no caches to sync).
pub fn is_ready(stopping: bool, synced: usize, standby: bool) -> bool {
    !stopping && (synced >= CONTROLLERS || standby)
}

/// Exits with an install hint when a CRD is missing (instead of failing on every watch).
async fn probe_crds(client: &kube::Client) -> Result<(), StartError> {
    use crate::api::{MigrationBatch, MigrationEndpoint, TenantPair};
    use kube::Api;
    let lp = kube::api::ListParams::default().limit(1);
    let check = |e: kube::Error, name: &str| match e {
        kube::Error::Api(s) if s.code == 404 => StartError::CrdMissing(name.to_string()),
        other => StartError::Kube(other),
    };
    Api::<TenantPair>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| check(e, "tenantpairs.t2t.dev"))?;
    Api::<MigrationEndpoint>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| check(e, "migrationendpoints.t2t.dev"))?;
    Api::<MigrationBatch>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| check(e, "migrationbatches.t2t.dev"))?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_every_cache_and_drops_on_shutdown() {
        for synced in 0..CONTROLLERS {
            assert!(!is_ready(false, synced, false), "{synced} synced");
        }
        assert!(is_ready(false, CONTROLLERS, false));
        assert!(is_ready(false, 0, true), "a standby has nothing to sync");
        assert!(!is_ready(true, CONTROLLERS, false));
        assert!(!is_ready(true, 0, true));
    }
}
