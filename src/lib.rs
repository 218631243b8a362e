//! t2t-operator: declarative Microsoft 365 cross-tenant mailbox migrations on Kubernetes.
//!
//! Module map (one module per concept):
//! - [`api`]: the custom resource types (`TenantPair`, `MigrationEndpoint`, `MigrationBatch`),
//!   condition and reason constants, CEL rules. No IO.
//! - [`crdgen`]: renders the CRDs that are checked in under `crds/`.
//! - [`tenant`]: identity, Graph and Exchange clients with retries, limits and metrics.
//! - [`metrics`]: the Prometheus registry (`t2t_` prefix).
//! - `sim` (feature `dev`): the Microsoft 365 tenant simulator.
//! - `kubeemu` (feature `dev`): the Kubernetes API emulator.

pub mod api;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod http_server;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod tenant;
pub mod tls;

#[cfg(feature = "dev")]
pub mod demo;
#[cfg(feature = "dev")]
pub mod dev;
#[cfg(feature = "dev")]
pub mod kubeemu;
#[cfg(feature = "dev")]
pub mod sim;
