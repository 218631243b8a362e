//! The operator runtime: every controller, sharing one context, until shutdown.

use std::sync::Arc;

use tokio::sync::watch;

use crate::controller::context::Context;
use crate::controller::{migration_batch, migration_endpoint, tenant_pair};

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
