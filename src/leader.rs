//! Leader election on a Lease (`t2t-operator-leader`): only the leader runs the controllers.
//! Standbys wait; when the leader stops renewing (crash) or releases the Lease (clean shutdown), a
//! standby takes over. A leader that loses the Lease stops its controllers and returns, so the
//! process exits and restarts clean (conventions C17).

use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;

use crate::controller::context::Context;

/// Name of the Lease.
pub const LEASE_NAME: &str = "t2t-operator-leader";

/// Lease timings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub identity: String,
    /// Seconds a lease stays valid without renewal.
    pub duration: u64,
    /// Extra seconds tolerated for clock skew.
    pub grace: u64,
}

impl LeaseSettings {
    /// Defaults: 15 s lease, 5 s grace, identity from POD_NAME (else a random id).
    pub fn new(namespace: impl Into<String>) -> Self {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("t2t-operator-{}", uuid::Uuid::new_v4().simple()));
        Self {
            namespace: namespace.into(),
            identity,
            duration: 15,
            grace: 5,
        }
    }
}

/// Why [`run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `shutdown` fired; the Lease was released.
    ShutDown,
    /// Leadership was lost; controllers stopped.
    LostLease,
}

/// Waits for leadership, runs the controllers while leading, stops them when leadership is lost
/// or `shutdown` fires.
pub async fn run(
    ctx: Arc<Context>,
    settings: LeaseSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Outcome, kube_lease_manager::LeaseManagerError> {
    ctx.metrics.leader.set(0);
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), LEASE_NAME)
        .with_namespace(settings.namespace.clone())
        .with_identity(settings.identity.clone())
        .with_duration(settings.duration)
        .with_grace(settings.grace)
        .with_field_manager("t2t.dev/leader-election")
        .build()
        .await?;
    let (mut rx, task) = manager.watch().await;
    tokio::pin!(shutdown);
    // Standby until leading.
    while !*rx.borrow_and_update() {
        tokio::select! {
            _ = &mut shutdown => {
                drop(rx);
                let _ = task.await;
                return Ok(Outcome::ShutDown);
            }
            changed = rx.changed() => if changed.is_err() { return Ok(Outcome::LostLease) },
        }
    }
    tracing::info!(identity = %settings.identity, "acquired the leader lease; starting controllers");
    let handle = crate::operator::start(ctx.clone());
    ctx.metrics.leader.set(1);
    let lost = tokio::select! {
        _ = &mut shutdown => false,
        _ = async {
            loop {
                if rx.changed().await.is_err() || !*rx.borrow() {
                    break;
                }
            }
        } => true,
    };
    handle.shutdown().await;
    ctx.metrics.leader.set(0);
    let outcome = if lost {
        Outcome::LostLease
    } else {
        Outcome::ShutDown
    };
    if outcome == Outcome::LostLease {
        tracing::warn!(identity = %settings.identity, "lost the leader lease; controllers stopped");
    }
    // Closing the channel makes the manager release the Lease (if still held) and exit.
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    Ok(outcome)
}
