//! Kubernetes API emulator (test and demo infrastructure). See issue "Kubernetes API emulator"
//! and `docs/kubeemu.md`.
//!
//! An in-process HTTP server that kube-rs 5 and the real `kubectl` use as if it were a
//! kube-apiserver. Start it with [`KubeEmu::start`]; get a client with [`KubeEmu::client`] or a
//! kubeconfig with [`KubeEmu::write_kubeconfig`].
//!
//! Module map: `store` (objects, global resourceVersion, event log), `registry` (resource
//! catalogue), `discovery`, `openapi`, `crd` + `schema` (CRD registration, structural schema,
//! CEL), `ops` (write pipeline), `patch`, `apply` (SSA/managedFields), `selector`, `table`,
//! `watch`, `gc`, `events`, `protobuf`, `status` (error catalog), `handlers` (HTTP glue).

pub mod apply;
pub mod builtin;
pub mod crd;
pub mod discovery;
pub mod events;
pub mod gc;
pub mod handlers;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod persist;
pub mod protobuf;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{oneshot, watch as tokio_watch};
use tokio::task::JoinHandle;

use ops::State;

/// Start-up settings.
#[derive(Debug, Clone)]
pub struct KubeEmuConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Watch history kept for replay; older resourceVersions get `410 Expired`.
    pub history_limit: usize,
    /// How often idle watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Persist objects to this directory (loaded at start, saved within 100 ms of a write and at
    /// shutdown).
    pub persist_dir: Option<PathBuf>,
    /// How long a deleted namespace keeps its content before the emulated namespace
    /// controller removes it (the real one is asynchronous too).
    pub namespace_delay: Duration,
    /// Serve HTTPS with a generated CA (in the kubeconfig) instead of plain HTTP.
    pub tls: bool,
}

impl Default for KubeEmuConfig {
    fn default() -> Self {
        KubeEmuConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            persist_dir: None,
            namespace_delay: Duration::from_millis(500),
            tls: false,
        }
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// Building the client, or a request made on the caller's behalf, failed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("persistence: {0}")]
    Persist(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(String),
}

/// Shared server state.
pub struct App {
    state: Mutex<State>,
    notify: tokio_watch::Sender<u64>,
    epoch: AtomicU64,
    /// Something changed since the last persisted snapshot.
    dirty: std::sync::atomic::AtomicBool,
    pub config: KubeEmuConfig,
    /// `host:port` the server listens on.
    pub addr: String,
}

impl App {
    /// The state lock. A poisoned lock (a panic mid-write) is recovered: the data is plain
    /// values, and a test server must keep serving to report what went wrong.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes watches after a write (and persists, if configured).
    pub fn notify(&self) {
        let rv = self.lock().store.current_rv();
        if self.config.persist_dir.is_some() {
            self.dirty.store(true, Ordering::SeqCst);
        }
        self.notify.send_replace(rv);
    }

    /// Writes the snapshot if anything changed since the last save. Called by the background
    /// ticker (at most every 100 ms) and at shutdown, so a burst of writes costs one save.
    pub fn persist_if_dirty(&self) {
        let Some(dir) = &self.config.persist_dir else {
            return;
        };
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let snap = persist::snapshot(&self.lock());
        if let Err(e) = persist::save(dir, &snap) {
            tracing::warn!(error = %e, "kubeemu: persisting state failed");
        }
    }

    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

/// A running emulator. Call [`KubeEmu::shutdown`] to stop it and wait; dropping the handle
/// stops it without waiting.
pub struct KubeEmu {
    app: Arc<App>,
    addr: SocketAddr,
    /// The CA that signed the server certificate (HTTPS only).
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl KubeEmu {
    /// Binds, bootstraps the default namespaces and serves in a background task.
    pub async fn start(config: KubeEmuConfig) -> Result<KubeEmu, EmuError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| EmuError::Bind(config.listen, e))?;
        let addr = listener.local_addr()?;
        let mut state = State::new(config.history_limit);
        state.namespace_delay = config.namespace_delay;
        let restored = match &config.persist_dir {
            Some(dir) => persist::load(dir, &mut state).map_err(EmuError::Persist)?,
            None => false,
        };
        if !restored {
            bootstrap(&mut state);
        }
        let (notify, _) = tokio_watch::channel(state.store.current_rv());
        let app = Arc::new(App {
            state: Mutex::new(state),
            notify,
            epoch: AtomicU64::new(0),
            dirty: std::sync::atomic::AtomicBool::new(false),
            config,
            addr: addr.to_string(),
        });
        let router = axum::Router::new().fallback({
            let app = app.clone();
            move |req: axum::extract::Request| handlers::handle(app.clone(), req)
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let tls = if app.config.tls {
            Some(tls::generate().map_err(EmuError::Tls)?)
        } else {
            None
        };
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let task = match tls {
            Some(t) => tokio::spawn(tls::serve(listener, router, t.server_config, stopped)),
            None => tokio::spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "kubeemu server stopped");
                }
            }),
        };
        let ticker = tokio::spawn(controllers(app.clone()));
        tracing::info!(%addr, "kubeemu listening");
        Ok(KubeEmu {
            app,
            addr,
            ca_pem,
            stop: Some(stop),
            task: Some(task),
            ticker: Some(ticker),
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://…` with TLS on).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA certificate (PEM) clients must trust, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig (YAML) that kubectl and kube-rs use unchanged.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url(), self.ca_pem.as_deref())
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), EmuError> {
        std::fs::write(path, self.kubeconfig_yaml())?;
        Ok(())
    }

    /// A kube-rs client configured from the emulator's kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, EmuError> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())
            .map_err(|e| EmuError::Kubeconfig(e.to_string()))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| EmuError::Kubeconfig(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| EmuError::Kubeconfig(e.to_string()))
    }

    /// Creates (or replaces) CRDs through the API and waits until each is Established, as
    /// `kubectl apply -f crds/ && kubectl wait --for=condition=Established` would.
    pub async fn install_crds(
        &self,
        crds: Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
    ) -> Result<(), EmuError> {
        use kube::api::{Api, Patch, PatchParams};
        use kube::runtime::wait::{await_condition, conditions};
        let client = self.client().await?;
        let api: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(client);
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("kubeemu-install").force(),
                &Patch::Apply(&crd),
            )
            .await
            .map_err(|e| EmuError::Kubeconfig(format!("installing CRD {name}: {e}")))?;
            tokio::time::timeout(
                Duration::from_secs(10),
                await_condition(api.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .map_err(|_| EmuError::Kubeconfig(format!("CRD {name} not Established")))?
            .map_err(|e| EmuError::Kubeconfig(format!("waiting for CRD {name}: {e}")))?;
        }
        Ok(())
    }

    /// Drops all watch history and ends every open watch: clients that resume from an old
    /// resourceVersion get `410 Expired` and must relist (tests use this to force the path).
    pub fn compact(&self) {
        self.app.lock().store.compact_all();
        self.app.epoch.fetch_add(1, Ordering::SeqCst);
        self.app.notify();
    }

    /// Changes how many watch events are retained.
    pub fn set_history_limit(&self, limit: usize) {
        self.app.lock().store.set_history_limit(limit);
    }

    /// Number of stored objects (benchmarks, memory estimates).
    pub fn object_count(&self) -> usize {
        self.app.lock().store.count()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.app.lock().store.current_rv()
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Close watch streams so graceful shutdown does not wait for them.
        self.app.epoch.fetch_add(1, Ordering::SeqCst);
        self.app.notify();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.app.persist_if_dirty();
    }
}

impl Drop for KubeEmu {
    /// A handle dropped without `shutdown` (a failing test) still stops serving, so servers do
    /// not pile up in a test process. Shutdown already emptied these fields.
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
            self.app.epoch.fetch_add(1, Ordering::SeqCst);
            self.app.notify();
        }
    }
}

/// The asynchronous part of the emulated controllers: pending deletions (namespace content)
/// that were not due when the write happened.
async fn controllers(app: Arc<App>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let changed = {
            let mut st = app.lock();
            if st.terminating.is_empty() {
                false
            } else {
                let before = st.store.current_rv();
                gc::settle(&mut st, chrono::Utc::now());
                st.store.current_rv() != before
            }
        };
        if changed {
            app.notify();
        }
        app.persist_if_dirty();
    }
}

/// The kubeconfig for a server URL: one cluster, one dummy-token user, one current context.
pub fn kubeconfig_yaml(url: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine;
    let mut cluster = json!({"server": url});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubeemu", "cluster": cluster}],
        "users": [{"name": "kubeemu", "user": {"token": "kubeemu"}}],
        "contexts": [{"name": "kubeemu", "context": {"cluster": "kubeemu", "user": "kubeemu", "namespace": "default"}}],
        "current-context": "kubeemu",
        "preferences": {}
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// The namespaces every cluster starts with.
fn bootstrap(st: &mut State) {
    let now = chrono::Utc::now();
    let Some(info) = st.registry.lookup("", "v1", "namespaces") else {
        return;
    };
    let target = ops::Target {
        info,
        version: "v1".into(),
        ns: None,
        name: None,
        sub: None,
    };
    let opts = ops::WriteOpts {
        manager: "kube-apiserver".into(),
        manager_explicit: true,
        dry_run: false,
        validation: ops::FieldValidation::Ignore,
        force: false,
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if let Err(e) = ops::create(
            st,
            &target,
            json!({"metadata": {"name": ns}}),
            &opts,
            now,
            false,
        ) {
            tracing::error!(error = %e, ns, "kubeemu bootstrap failed");
        }
    }
}
