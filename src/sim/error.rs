//! Start-up and configuration errors of the simulator. Protocol errors are not Rust errors: each
//! protocol module renders its own wire-level error bodies.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read fixture {path}: {source}")]
    FixtureRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid fixture: {0}")]
    FixtureParse(#[from] serde_yaml::Error),
    #[error("invalid fixture: {0}")]
    FixtureInvalid(String),
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("RSA key generation failed: {0}")]
    Rsa(#[from] rsa::Error),
    #[error("RSA key encoding failed: {0}")]
    Pkcs1(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
