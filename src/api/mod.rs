//! The public API: `t2t.dev/v1alpha1` custom resources.
//!
//! Everything here is plain data (no IO): types, condition and reason constants, CEL rules.
//! `docs/api.md` maps every field to the step of Microsoft's cross-tenant procedure it automates.

pub mod common;
pub mod conditions;
pub mod migration_batch;
pub mod migration_endpoint;
pub mod tenant_pair;

pub use common::*;
pub use migration_batch::*;
pub use migration_endpoint::*;
pub use tenant_pair::*;

/// API group of every kind.
pub const GROUP: &str = "t2t.dev";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// Category shared by all kinds: `kubectl get t2t` lists them together.
pub const CATEGORY: &str = "t2t";

/// Annotation whose value (any token) requests an immediate reconcile; echoed to
/// `status.lastHandledReconcileAt` once handled.
pub const REQUESTED_AT_ANNOTATION: &str = "t2t.dev/requested-at";
/// Label put on every object the operator creates in the cluster.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "t2t-operator";
