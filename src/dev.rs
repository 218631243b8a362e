//! The embedded development environment: the Kubernetes API emulator with our CRDs, the tenant
//! simulator with the fixture's tenants, and (optionally) the operator, all in one process.
//! Used by the end-to-end tests, `t2t-operator dev` and `t2t-operator demo`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::{CloudEnvironment, CloudSpec, ConfigMapKeyReference};
use crate::controller::context::{Context, OperatorConfig};
use crate::kubeemu::{KubeEmu, KubeEmuConfig};
use crate::metrics::Metrics;
use crate::operator::OperatorHandle;
use crate::sim::{Fixture, RunningSimulator, SimConfig, Simulator};
use crate::tenant::exchange::SecureStringKey;

/// Name of the ConfigMap holding the simulator's CA (key `ca.pem`).
pub const SIM_CA_CONFIGMAP: &str = "t2t-sim-ca";
/// Field manager for objects the dev environment writes.
const MANAGER: &str = "t2t-dev";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("emulator: {0}")]
    Emu(#[from] crate::kubeemu::EmuError),
    #[error("simulator: {0}")]
    Sim(#[from] crate::sim::SimError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

/// Settings of the environment.
#[derive(Clone, Debug)]
pub struct DevOptions {
    pub fixture: Fixture,
    pub time_scale: f64,
    pub emu_listen: SocketAddr,
    pub sim_listen: SocketAddr,
    pub operator: OperatorConfig,
}

impl DevOptions {
    pub fn new(fixture: Fixture) -> Self {
        let operator = OperatorConfig {
            // Development: quick polling and short backoff so progress is visible at once.
            active_poll: Duration::from_secs(2),
            idle_resync: Duration::from_secs(60),
            http: crate::tenant::HttpConfig {
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                ..Default::default()
            },
            ..Default::default()
        };
        Self {
            fixture,
            time_scale: 1.0,
            emu_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sim_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            operator,
        }
    }
}

/// A running environment.
pub struct DevEnv {
    pub emu: KubeEmu,
    pub sim: RunningSimulator,
    pub client: Client,
    pub metrics: Arc<Metrics>,
    operator_config: OperatorConfig,
    operator: Option<OperatorHandle>,
}

impl DevEnv {
    /// Starts the emulator (with the CRDs installed and Established) and the simulator.
    pub async fn start(opts: DevOptions) -> Result<Self, DevError> {
        crate::tls::install_crypto_provider();
        let emu = KubeEmu::start(KubeEmuConfig {
            listen: opts.emu_listen,
            ..KubeEmuConfig::default()
        })
        .await?;
        let client = emu.client().await?;
        install_crds(&client).await?;
        let mut sim_cfg = SimConfig::new(opts.fixture.clone());
        sim_cfg.listen = opts.sim_listen;
        sim_cfg.time_scale = opts.time_scale;
        let sim = Simulator::start(sim_cfg).await?;
        let key_pem = sim.securestring_key().await.map_err(|e| {
            DevError::Other(format!("reading the simulator's SecureString key: {e}"))
        })?;
        let mut operator_config = opts.operator.clone();
        operator_config.exchange_public_key =
            Some(SecureStringKey::from_pem(&key_pem).map_err(|e| DevError::Other(e.to_string()))?);
        Ok(Self {
            emu,
            sim,
            client,
            metrics: Arc::new(Metrics::default()),
            operator_config,
            operator: None,
        })
    }

    /// The `spec.cloud` that points a TenantPair at the simulator.
    pub fn cloud(&self) -> CloudSpec {
        let url = self.sim.base_url().to_string();
        CloudSpec {
            environment: CloudEnvironment::Custom,
            login_url: Some(url.clone()),
            graph_url: Some(url.clone()),
            exchange_url: Some(url),
            ca_bundle: Some(ConfigMapKeyReference {
                name: SIM_CA_CONFIGMAP.into(),
                key: "ca.pem".into(),
            }),
        }
    }

    /// Creates `namespace` with the simulator's CA ConfigMap and one admin Secret per tenant
    /// (`<tenant prefix>-admin`, key `clientSecret`). Returns `(tenant id, initial domain, client id, secret name)`.
    pub async fn seed_namespace(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, String, String, String)>, DevError> {
        let pp = PatchParams::apply(MANAGER).force();
        let ns: Api<Namespace> = Api::all(self.client.clone());
        ns.patch(namespace, &pp, &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))).await?;
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        cms.patch(
            SIM_CA_CONFIGMAP,
            &pp,
            &Patch::Apply(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": SIM_CA_CONFIGMAP}, "data": {"ca.pem": self.sim.ca_pem()}})),
        )
        .await?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut out = Vec::new();
        for t in self.sim.tenants() {
            let prefix = t
                .initial_domain
                .split('.')
                .next()
                .unwrap_or("tenant")
                .to_string();
            let name = format!("{prefix}-admin");
            let secret = t.client_secret.clone().unwrap_or_default();
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": {"clientSecret": secret}});
            secrets.patch(&name, &pp, &Patch::Apply(body)).await?;
            out.push((
                t.id.to_string(),
                t.initial_domain.clone(),
                t.client_id.to_string(),
                name,
            ));
        }
        Ok(out)
    }

    /// Starts the operator's controllers in this process.
    pub fn start_operator(&mut self) {
        if self.operator.is_none() {
            let ctx = Context::new(
                self.client.clone(),
                self.metrics.clone(),
                self.operator_config.clone(),
            );
            self.operator = Some(crate::operator::start(ctx));
        }
    }

    /// Stops the operator gracefully.
    pub async fn stop_operator(&mut self) {
        if let Some(h) = self.operator.take() {
            h.shutdown().await;
        }
    }

    /// Kills the operator mid-pass (crash/restart tests).
    pub fn kill_operator(&mut self) {
        if let Some(h) = self.operator.take() {
            h.abort();
        }
    }

    pub fn operator_config(&self) -> OperatorConfig {
        self.operator_config.clone()
    }

    pub fn operator_config_mut(&mut self) -> &mut OperatorConfig {
        &mut self.operator_config
    }

    pub async fn shutdown(mut self) {
        self.stop_operator().await;
        self.sim.shutdown().await;
        self.emu.shutdown().await;
    }
}

/// Applies the CRDs and waits until each is Established.
pub async fn install_crds(client: &Client) -> Result<(), DevError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::crdgen::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    for crd in crate::crdgen::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut established = false;
        for _ in 0..100 {
            let c = api.get(&name).await?;
            established = c
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !established {
            return Err(DevError::Other(format!(
                "CRD {name} did not become Established"
            )));
        }
    }
    Ok(())
}

/// A TenantPair spec for the fixture's first two tenants (source, target), pointing at the simulator.
pub fn example_pair(
    env: &DevEnv,
    tenants: &[(String, String, String, String)],
) -> crate::api::TenantPairSpec {
    use crate::api::*;
    let cred = |t: &(String, String, String, String)| CredentialsSpec {
        client_id: t.2.clone(),
        client_secret: Some(SecretKeyReference {
            name: t.3.clone(),
            key: "clientSecret".into(),
        }),
        certificate: None,
        workload_identity: None,
    };
    TenantPairSpec {
        source: TenantSpec {
            tenant_id: tenants[0].0.clone(),
            initial_domain: tenants[0].1.clone(),
            credentials: Some(cred(&tenants[0])),
        },
        target: TenantSpec {
            tenant_id: tenants[1].0.clone(),
            initial_domain: tenants[1].1.clone(),
            credentials: Some(cred(&tenants[1])),
        },
        migration_app: MigrationAppSpec::default(),
        scope_group: ScopeGroupSpec::default(),
        organization_relationship: None,
        direction: Direction::OneWay,
        reverse: None,
        cloud: env.cloud(),
        deletion_policy: DeletionPolicy::Orphan,
        suspend: false,
    }
}

/// Labels for objects that tests create.
pub fn labels() -> BTreeMap<String, String> {
    [(
        "app.kubernetes.io/part-of".to_string(),
        "t2t-dev".to_string(),
    )]
    .into()
}
