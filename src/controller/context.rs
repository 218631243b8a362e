//! What every reconcile shares: the Kubernetes client, metrics, settings, and a factory of tenant
//! clients whose HTTP connections and token caches outlive a single pass.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use super::credentials;
use super::error::{ReconcileError, Result};
use crate::api::{CredentialsSpec, MigrationBatch, TenantPair};
use crate::metrics::Metrics;
use crate::tenant::exchange::SecureStringKey;
use crate::tenant::{
    AppCredential, Endpoints, ExchangeClient, GraphClient, HttpConfig, TokenProvider, Transport,
};

/// Operator-wide settings.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub http: HttpConfig,
    /// Public key for Exchange SecureString parameters (New-MailUser -Password, endpoint credentials).
    pub exchange_public_key: Option<SecureStringKey>,
    /// Tenant writes per reconcile pass (the rest follow on the next pass).
    pub max_actions_per_pass: usize,
    /// Resync of objects that are Ready and idle.
    pub idle_resync: Duration,
    /// Poll interval while tenant work is in flight.
    pub active_poll: Duration,
    /// Never write to a tenant (`--read-only`): observe and report only.
    pub read_only: bool,
    /// Pod name, reported on events.
    pub instance: Option<String>,
    /// First delay of the persisted per-object backoff (doubles per failed pass, capped at 1 h).
    pub retry_base: Duration,
    /// How long a create marker waits for the directory to show a created app before the create
    /// is considered lost and sent again (the app is looked up by its tag first).
    pub create_grace: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            exchange_public_key: None,
            max_actions_per_pass: 8,
            idle_resync: Duration::from_secs(30 * 60),
            active_poll: Duration::from_secs(60),
            read_only: false,
            instance: None,
            retry_base: Duration::from_secs(30),
            create_grace: Duration::from_secs(120),
        }
    }
}

/// Shared state of the controllers.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub config: OperatorConfig,
    factory: TenantFactory,
    /// Controllers whose watch cache finished its initial list (what `/readyz` waits for).
    pub synced: std::sync::atomic::AtomicUsize,
    /// The MigrationBatch controller's reflector store (set while it runs): other batches are
    /// read from it instead of being listed from the API server on every pass.
    batch_store: std::sync::RwLock<Option<Store<MigrationBatch>>>,
}

/// Waits until a reflector store holds its first listing (false: the writer stopped first, or
/// `within` passed). Re-polled on a timer: kube-runtime's ready signal wakes only its most recent
/// waiter (a oneshot keeps one waker), and the controller's own runner waits on it too.
async fn store_ready<K>(store: &Store<K>, within: Option<Duration>) -> bool
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let started = std::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) if within.is_some_and(|w| started.elapsed() >= w) => return false,
            Err(_) => continue,
        }
    }
}

/// Clients for one tenant, acting as the pair's admin app there.
#[derive(Clone)]
pub struct TenantClients {
    pub tenant_id: String,
    pub graph: GraphClient,
    pub exchange: ExchangeClient,
    /// Version of the credential (the Secret's resourceVersion).
    pub credential_version: String,
}

/// Clients for both tenants of a pair.
#[derive(Clone)]
pub struct PairClients {
    pub endpoints: Endpoints,
    pub target: TenantClients,
    /// `None` when the pair has no source credentials (split administration).
    pub source: Option<TenantClients>,
    transport: Transport,
    tokens: TokenProvider,
}

impl PairClients {
    /// Clients acting as another app (e.g. the migration app) in `tenant_id`.
    pub fn for_app(&self, credential: AppCredential) -> (GraphClient, ExchangeClient) {
        let tenant = credential.tenant.clone();
        (
            GraphClient::new(
                self.transport.clone(),
                self.tokens.clone(),
                credential.clone(),
                tenant.clone(),
            ),
            ExchangeClient::new(
                self.transport.clone(),
                self.tokens.clone(),
                credential,
                tenant,
            ),
        )
    }

    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }
}

#[derive(Default)]
struct TenantFactory {
    /// One transport (connection pool, limiter buckets) per CA bundle.
    transports: Mutex<HashMap<u64, Transport>>,
    /// One token cache per (endpoints, CA bundle).
    providers: Mutex<HashMap<(String, u64), TokenProvider>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, config: OperatorConfig) -> Arc<Self> {
        Arc::new(Self {
            client,
            metrics,
            config,
            factory: TenantFactory::default(),
            synced: Default::default(),
            batch_store: Default::default(),
        })
    }

    /// Counts one controller as synced once its watch cache holds the initial list, so `/readyz`
    /// never reports ready while a controller still sees an empty (misleading) cache.
    pub fn track_sync<K>(self: &Arc<Self>, kind: &'static str, store: &Store<K>)
    where
        K: kube::runtime::reflector::Lookup + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Send + Sync,
    {
        let (ctx, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            if store_ready(&store, None).await {
                ctx.synced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tracing::info!(controller = kind, "watch cache synced");
            }
        });
    }

    /// Publishes the MigrationBatch controller's store.
    pub fn set_batch_store(&self, store: Store<MigrationBatch>) {
        if let Ok(mut g) = self.batch_store.write() {
            *g = Some(store);
        }
    }

    /// The MigrationBatch store, once its first listing is complete; `None` when the controller
    /// is not running in this process (or its first listing takes more than 10 s).
    pub async fn batch_store(&self) -> Option<Store<MigrationBatch>> {
        let store = self.batch_store.read().ok().and_then(|g| g.clone())?;
        // Callers fall back to a listing if the first listing does not arrive.
        store_ready(&store, Some(Duration::from_secs(10)))
            .await
            .then_some(store)
    }

    /// An event recorder for one controller.
    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(
            self.client.clone(),
            Reporter {
                controller: format!("t2t.dev/{controller}"),
                instance: self.config.instance.clone(),
            },
        )
    }

    fn transport(&self, ca: Option<Vec<u8>>) -> Result<(Transport, u64)> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ca.hash(&mut h);
        let key = h.finish();
        let mut map = self
            .factory
            .transports
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(t) = map.get(&key) {
            return Ok((t.clone(), key));
        }
        let mut http = self.config.http.clone();
        http.ca_pem = ca;
        let t = Transport::new(http, self.metrics.tenant.clone())?;
        map.insert(key, t.clone());
        Ok((t, key))
    }

    fn provider(&self, transport: &Transport, ca_key: u64, endpoints: &Endpoints) -> TokenProvider {
        let key = (format!("{endpoints:?}"), ca_key);
        let mut map = self
            .factory
            .providers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| TokenProvider::new(transport.clone(), endpoints.clone()))
            .clone()
    }

    /// Builds the clients of a TenantPair from its Secrets (and CA bundle ConfigMap).
    pub async fn pair_clients(&self, pair: &TenantPair) -> Result<PairClients> {
        let ns = pair.namespace().unwrap_or_else(|| "default".into());
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let endpoints = Endpoints::from_spec(&pair.spec.cloud);
        let ca = match &pair.spec.cloud.ca_bundle {
            Some(r) => Some(
                credentials::ca_bundle(
                    &Api::<ConfigMap>::namespaced(self.client.clone(), &ns),
                    &r.name,
                    &r.key,
                )
                .await?,
            ),
            None => None,
        };
        let (transport, ca_key) = self.transport(ca)?;
        let tokens = self.provider(&transport, ca_key, &endpoints);
        let target_creds = pair.spec.target.credentials.as_ref().ok_or_else(|| {
            ReconcileError::InvalidSpec("spec.target.credentials is required".into())
        })?;
        let target = self
            .tenant_clients(
                &secrets,
                &transport,
                &tokens,
                &pair.spec.target.tenant_id,
                target_creds,
            )
            .await?;
        let source = match &pair.spec.source.credentials {
            Some(c) => Some(
                self.tenant_clients(
                    &secrets,
                    &transport,
                    &tokens,
                    &pair.spec.source.tenant_id,
                    c,
                )
                .await?,
            ),
            None => None,
        };
        Ok(PairClients {
            endpoints,
            target,
            source,
            transport,
            tokens,
        })
    }

    async fn tenant_clients(
        &self,
        secrets: &Api<Secret>,
        transport: &Transport,
        tokens: &TokenProvider,
        tenant_id: &str,
        spec: &CredentialsSpec,
    ) -> Result<TenantClients> {
        let cred = credentials::load(secrets, tenant_id, spec).await?;
        let version = cred.version.clone();
        let graph = GraphClient::new(transport.clone(), tokens.clone(), cred.clone(), tenant_id);
        let mut exchange = ExchangeClient::new(transport.clone(), tokens.clone(), cred, tenant_id);
        if let Some(k) = &self.config.exchange_public_key {
            exchange = exchange.with_secure_string_key(k.clone());
        }
        Ok(TenantClients {
            tenant_id: tenant_id.to_string(),
            graph,
            exchange,
            credential_version: version,
        })
    }
}
