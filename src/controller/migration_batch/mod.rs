//! The MigrationBatch controller: preflight, target preparation, moves and completion.

pub mod preflight;
pub mod target_user;
