//! Kubernetes API emulator (test and demo infrastructure). See issue "Kubernetes API emulator".

pub mod apply;
pub mod crd;
pub mod discovery;
pub mod events;
pub mod gc;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
