//! Controllers, one module per kind. Each separates observing, planning (pure) and applying.

pub mod migration_batch;
