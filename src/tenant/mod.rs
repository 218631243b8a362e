//! Clients for the tenant APIs: the Microsoft identity platform, Microsoft Graph and the Exchange
//! Online admin API (`InvokeCommand`). The operator talks to tenants only through this module.

pub mod cloud;
pub mod error;
pub mod exchange;
pub mod graph;
pub mod http;
pub mod identity;
pub mod secret;

pub use cloud::Endpoints;
pub use error::{Api, ErrorClass, ExchangeErrorKind, TenantError};
pub use exchange::ExchangeClient;
pub use graph::GraphClient;
pub use http::{HttpConfig, Transport};
pub use identity::{AppCredential, Credential, TokenProvider};
pub use secret::Redacted;
