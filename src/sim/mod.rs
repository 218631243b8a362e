//! Microsoft 365 tenant simulator (test and demo infrastructure; issue 3).
//!
//! One HTTPS listener serves every protocol the operator speaks, as strictly as the real
//! services: the identity platform (`/{tenant}/oauth2/v2.0/token`, discovery, admin consent),
//! Microsoft Graph (`/v1.0`, `/beta`), the Exchange Online admin API
//! (`/adminapi/beta/{tenant}/InvokeCommand`) and a control API under `/_sim/`.
//!
//! Module map: [`fixture`] (YAML input + generator), [`state`] (the world), [`clock`],
//! [`catalog`] (well-known ids), [`keys`], [`tls`], [`identity`] (token endpoint, discovery,
//! consent) with [`federation`] (workload identity), [`auth`] (bearer checks), [`graph`],
//! [`exchange`] (InvokeCommand, one file per cmdlet family), [`rules`] (cross-tenant checks as
//! pure functions), [`moves`] (the move engine, a pure state machine over the clock), [`ctm`]
//! (crossTenantMigrationJob state machine), [`faults`], [`control`] (`/_sim/`), [`testkit`]
//! (wire-level helpers for tests). Start it with [`Simulator::start`]; `docs/simulator.md`
//! documents the fixture, control API and fidelity.

pub mod auth;
pub mod catalog;
pub mod clock;
pub mod control;
pub mod ctm;
pub mod error;
pub mod exchange;
pub mod faults;
pub mod federation;
pub mod fixture;
pub mod graph;
pub mod identity;
pub mod keys;
pub mod moves;
pub mod rules;
pub mod state;
pub(crate) mod store;
pub mod testkit;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get, post};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use error::SimError;
pub use fixture::Fixture;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    pub fixture: Fixture,
    /// Simulated seconds per real second (move progress, token expiry, schedules).
    pub time_scale: f64,
    /// Lifetime of issued access tokens in simulated time (real Entra: ~3599 s).
    pub token_lifetime: Duration,
    /// Write `ca.pem` into this directory.
    pub ca_out: Option<PathBuf>,
    /// Simulated time at start (default: the real current time).
    pub start_time: Option<DateTime<Utc>>,
    /// Move engine knobs (throughput, delays).
    pub moves: moves::MoveSettings,
    /// crossTenantMigrationJob knobs (delays, users per job).
    pub jobs: ctm::JobSettings,
    /// CAs (PEM) trusted when fetching a federated issuer's discovery document and keys.
    pub trusted_ca_pems: Vec<String>,
    /// Simulated time between Enable-OrganizationCustomization and the cmdlets that need it
    /// working (IsDehydrated flips immediately). Real tenants: minutes to hours.
    pub customization_delay: chrono::Duration,
    /// Concurrent migrations a tenant may configure across all endpoints (the real limit is
    /// not published; default 300).
    pub migration_budget: u32,
}

impl SimConfig {
    pub fn new(fixture: Fixture) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fixture,
            time_scale: 1.0,
            token_lifetime: Duration::from_secs(3599),
            ca_out: None,
            start_time: None,
            moves: moves::MoveSettings::default(),
            jobs: ctm::JobSettings::default(),
            trusted_ca_pems: Vec::new(),
            customization_delay: chrono::Duration::zero(),
            migration_budget: 300,
        }
    }
}

/// Everything request handlers share.
pub struct AppState {
    pub shared: state::Shared,
    pub keys: keys::Keys,
    /// `https://127.0.0.1:PORT` — used in issued URLs (nextLink, discovery, token `aud` checks).
    pub base_url: String,
    pub token_lifetime: Duration,
    pub move_settings: moves::MoveSettings,
    pub faults: faults::Faults,
    pub job_settings: ctm::JobSettings,
    /// Client for federated-issuer discovery (None when no CA is trusted).
    pub issuer_client: Option<reqwest::Client>,
    pub token_cache: auth::TokenCache,
    pub customization_delay: chrono::Duration,
    pub migration_budget: u32,
}

impl AppState {
    /// Advances the move engine to the current simulated time. Cheap when nothing moves:
    /// only a read lock is taken unless some tenant has a batch.
    pub fn advance_moves(&self) {
        let busy = self.shared.read().tenants.iter().any(|t| {
            t.batches
                .iter()
                .any(|b| b.started.is_some() && !b.is_terminal())
                || t.ctm_jobs.iter().any(ctm::is_busy)
        });
        if busy {
            let now = self.shared.clock.now();
            let mut w = self.shared.write();
            // Jobs first (they may start batches), then moves, then jobs again to pick up
            // batch outcomes.
            ctm::advance(&mut w, now, &self.job_settings);
            moves::advance(&mut w, now, &self.move_settings);
            ctm::advance(&mut w, now, &self.job_settings);
        }
    }
}

pub type App = Arc<AppState>;

/// Entry point; see [`RunningSimulator`] for the handle.
pub struct Simulator;

impl Simulator {
    pub async fn start(config: SimConfig) -> Result<RunningSimulator, SimError> {
        let tls = tls::generate(&[])?;
        if let Some(dir) = &config.ca_out {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join("ca.pem"), &tls.ca_pem)?;
        }
        let start = config.start_time.unwrap_or_else(Utc::now);
        let clock = clock::Clock::new(start, config.time_scale);
        let world = state::World::from_fixture(&config.fixture, start)?;
        let keys = keys::Keys::generate()?;
        let tcp = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = tcp.local_addr()?;
        let base_url = format!("https://{addr}");
        let app: App = Arc::new(AppState {
            shared: state::Shared::new(world, clock),
            keys,
            base_url: base_url.clone(),
            token_lifetime: config.token_lifetime,
            move_settings: config.moves.clone(),
            faults: faults::Faults::default(),
            job_settings: config.jobs.clone(),
            issuer_client: issuer_client(&config.trusted_ca_pems),
            token_cache: auth::TokenCache::default(),
            customization_delay: config.customization_delay,
            migration_budget: config.migration_budget,
        });
        let router = router(app.clone());
        let listener = tls::TlsListener::new(tcp, tls.server_config.clone())?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve =
                axum::serve(listener, router.into_make_service()).with_graceful_shutdown(async {
                    let _ = rx.await;
                });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "sim: server stopped");
            }
        });
        Ok(RunningSimulator {
            addr,
            base_url,
            ca_pem: tls.ca_pem,
            app,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

fn issuer_client(pems: &[String]) -> Option<reqwest::Client> {
    if pems.is_empty() {
        return None;
    }
    tls::install_crypto_provider();
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(5));
    for p in pems {
        match reqwest::Certificate::from_pem(p.as_bytes()) {
            Ok(c) => b = b.add_root_certificate(c),
            Err(e) => tracing::warn!(error = %e, "sim: ignoring an invalid trusted CA"),
        }
    }
    b.build().ok()
}

pub fn router(app: App) -> Router {
    Router::new()
        .merge(control::routes())
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(identity::jwks))
        .route("/{tenant}/adminconsent", get(identity::admin_consent))
        .route("/v1.0/{*path}", any(graph::handle_v1))
        .route("/beta/{*path}", any(graph::handle_beta))
        .route(
            "/adminapi/beta/{tenant}/InvokeCommand",
            any(exchange::invoke_command),
        )
        .route(
            "/adminapi/v1.0/{tenant}/InvokeCommand",
            any(exchange::method_not_allowed),
        )
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::middleware,
        ))
        .with_state(app)
}

/// Credentials of a tenant's pre-consented admin app.
#[derive(Debug, Clone)]
pub struct TenantInfo {
    pub id: Uuid,
    pub initial_domain: String,
    pub client_id: Uuid,
    pub client_secret: Option<String>,
}

/// A running simulator. Dropping it without [`RunningSimulator::shutdown`] aborts the server.
pub struct RunningSimulator {
    addr: SocketAddr,
    base_url: String,
    ca_pem: String,
    app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    /// `https://127.0.0.1:PORT`: the identity authority host, Graph root (`/v1.0`, `/beta`),
    /// Exchange root (`/adminapi/beta/...`) and control API (`/_sim/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the listener's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn tenants(&self) -> Vec<TenantInfo> {
        let w = self.app.shared.read();
        w.tenants
            .iter()
            .map(|t| TenantInfo {
                id: t.id,
                initial_domain: t.initial_domain.clone(),
                client_id: t.admin_client_id,
                client_secret: t.admin_client_secret.clone(),
            })
            .collect()
    }

    /// Advances the simulated clock (same as `POST /_sim/clock/advance`).
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.app.shared.clock.advance(by);
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.app.shared.clock.now()
    }

    /// A reqwest client that trusts the simulator's CA.
    pub fn http_client(&self) -> Result<reqwest::Client, reqwest::Error> {
        tls::install_crypto_provider();
        let cert = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .build()
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
