//! The TenantPair controller: one-time preparation of both tenants, kept true.

pub mod plan;
