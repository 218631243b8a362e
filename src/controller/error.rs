//! Reconcile errors: each has a PascalCase category (event reason, metric label) and tells whether
//! it is terminal (Stalled, no hot retry) or worth retrying with backoff.

use crate::api::conditions::reasons;
use crate::tenant::{ErrorClass, TenantError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Tenant(#[from] TenantError),
    /// A referenced Secret or key is missing.
    #[error("{0}")]
    SecretNotFound(String),
    /// The spec is unusable in a way the schema cannot catch.
    #[error("{0}")]
    InvalidSpec(String),
    /// A referenced object is missing or not ready yet.
    #[error("{0}")]
    DependencyNotReady(String),
    /// A tenant refused the credentials taken from a Secret (the message names the Secret and the fix).
    #[error("{0}")]
    CredentialsRejected(String),
    /// A create's outcome is unknown and the object cannot be found by identity.
    #[error("{0}")]
    CreateIncomplete(String),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

impl ReconcileError {
    /// Terminal errors stall the object until its spec (or a Secret) changes.
    pub fn is_terminal(&self) -> bool {
        match self {
            ReconcileError::Tenant(e) => e.class() == ErrorClass::Terminal,
            ReconcileError::SecretNotFound(_)
            | ReconcileError::CredentialsRejected(_)
            | ReconcileError::InvalidSpec(_)
            | ReconcileError::CreateIncomplete(_) => true,
            ReconcileError::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.is_terminal(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The reason used for the Stalled condition, events and the errors metric.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubernetesApiError",
            ReconcileError::Tenant(e) => match e.category() {
                "CredentialsRejected" => reasons::CREDENTIALS_REJECTED,
                "PermissionMissing" => reasons::PERMISSION_MISSING,
                other => other,
            },
            ReconcileError::SecretNotFound(_) => reasons::SECRET_NOT_FOUND,
            ReconcileError::CredentialsRejected(_) => reasons::CREDENTIALS_REJECTED,
            ReconcileError::InvalidSpec(_) => reasons::INVALID_SPEC,
            ReconcileError::DependencyNotReady(_) => reasons::DEPENDENCY_NOT_READY,
            ReconcileError::CreateIncomplete(_) => reasons::CREATE_INCOMPLETE,
            ReconcileError::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.category(),
                _ => "FinalizerError",
            },
        }
    }

    /// The whole chain as `a: b: c`, cut to 1 KiB (no object dumps, tokens or bodies reach it).
    pub fn user_message(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let part = s.to_string();
            if !msg.contains(&part) {
                msg.push_str(": ");
                msg.push_str(&part);
            }
            src = s.source();
        }
        crate::api::conditions::truncate(&msg, 1024)
    }
}

pub type Result<T, E = ReconcileError> = std::result::Result<T, E>;
