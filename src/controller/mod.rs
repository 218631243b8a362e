//! Controllers, one module per kind. Each separates observing, planning (pure) and applying.

pub mod context;
pub mod credentials;
pub mod error;
pub mod migration_batch;
pub mod migration_endpoint;
pub mod pass;
pub mod status;
pub mod tenant_pair;
