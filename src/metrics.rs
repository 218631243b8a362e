//! Prometheus metrics (`t2t_` prefix). Labels are bounded: api, method, code, controller,
//! category, result. Never object names or UIDs.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a tenant request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `token`, `graph` or `exchange`.
    pub api: &'static str,
    /// HTTP method, or the Exchange cmdlet name (a fixed set, bounded).
    pub method: String,
    /// HTTP status, or `error` when no response arrived.
    pub code: String,
}

/// Labels carrying only the api.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: &'static str,
}

/// Tenant API metrics.
#[derive(Clone)]
pub struct TenantMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<ApiLabels, Histogram>,
    pub throttled: Family<ApiLabels, Counter>,
    pub limiter_wait: Family<ApiLabels, Histogram>,
    pub retries: Family<ApiLabels, Counter>,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl TenantMetrics {
    /// Creates the metrics and registers them in `registry` (under the `t2t_` prefix the caller gives).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            throttled: Family::default(),
            limiter_wait: Family::new_with_constructor(seconds_histogram),
            retries: Family::default(),
        };
        registry.register(
            "tenant_requests",
            "Requests sent to tenant APIs",
            m.requests.clone(),
        );
        registry.register(
            "tenant_request_duration_seconds",
            "Duration of tenant API requests",
            m.duration.clone(),
        );
        registry.register(
            "tenant_throttled",
            "Throttled answers (429, 503 with Retry-After, concurrency limit)",
            m.throttled.clone(),
        );
        registry.register(
            "ratelimiter_wait_seconds",
            "Time spent waiting for a tenant rate or concurrency slot",
            m.limiter_wait.clone(),
        );
        registry.register(
            "tenant_retries",
            "Retried tenant requests",
            m.retries.clone(),
        );
        m
    }

    /// Metrics that are not exported anywhere (tests, tools).
    pub fn unregistered() -> Self {
        let mut r = Registry::default();
        Self::register(&mut r)
    }
}

/// Labels of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: &'static str,
    /// `success` or `error`.
    pub result: &'static str,
}

/// Labels of a reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: String,
}

/// Labels carrying only the controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

/// Labels of a gauge by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// Labels of a gauge by kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// The process-wide registry and the metric groups in it.
pub struct Metrics {
    pub registry: Registry,
    pub tenant: Arc<TenantMetrics>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// Mailboxes by state over all batches.
    pub mailboxes: Family<StateLabels, prometheus_client::metrics::gauge::Gauge>,
    /// Objects with Stalled=True by kind.
    pub stalled: Family<KindLabels, prometheus_client::metrics::gauge::Gauge>,
    /// 1 while this instance is the leader (or runs without leader election).
    pub leader: prometheus_client::metrics::gauge::Gauge,
    /// Per-batch counters behind `t2t_mailboxes` (summed over batches).
    batches: std::sync::Mutex<std::collections::HashMap<String, crate::api::BatchCounts>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("t2t");
        let tenant = Arc::new(TenantMetrics::register(&mut registry));
        let m = Self {
            tenant,
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds_histogram),
            mailboxes: Family::default(),
            stalled: Family::default(),
            leader: Default::default(),
            batches: Default::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile",
            "Reconcile passes by controller and result",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by controller and error category",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile passes",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "mailboxes",
            "Mailboxes in MigrationBatches by state",
            m.mailboxes.clone(),
        );
        registry.register(
            "objects_stalled",
            "Objects whose Stalled condition is true, by kind",
            m.stalled.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance leads (or leader election is off)",
            m.leader.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Updates `t2t_mailboxes{state}` with one batch's counters.
    pub fn record_batch(&self, uid: &str, counts: &crate::api::BatchCounts) {
        let mut map = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(uid.to_string(), counts.clone());
        self.publish_mailboxes(&map);
    }

    /// Drops a deleted batch from `t2t_mailboxes`.
    pub fn forget_batch(&self, uid: &str) {
        let mut map = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(uid);
        self.publish_mailboxes(&map);
    }

    fn publish_mailboxes(&self, map: &std::collections::HashMap<String, crate::api::BatchCounts>) {
        let sum = |f: fn(&crate::api::BatchCounts) -> u32| {
            map.values().map(|c| i64::from(f(c))).sum::<i64>()
        };
        for (state, v) in [
            ("total", sum(|c| c.total)),
            ("syncing", sum(|c| c.syncing)),
            ("synced", sum(|c| c.synced)),
            ("completed", sum(|c| c.completed)),
            ("failed", sum(|c| c.failed)),
            ("held_back", sum(|c| c.held_back)),
        ] {
            self.mailboxes.get_or_create(&StateLabels { state }).set(v);
        }
    }

    /// Records one reconcile pass.
    pub fn observe_reconcile(
        &self,
        controller: &'static str,
        elapsed: std::time::Duration,
        error_category: Option<&str>,
    ) {
        self.reconcile_duration
            .get_or_create(&ControllerLabels { controller })
            .observe(elapsed.as_secs_f64());
        let result = if error_category.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .get_or_create(&ReconcileLabels { controller, result })
            .inc();
        if let Some(c) = error_category {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    controller,
                    category: c.to_string(),
                })
                .inc();
        }
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
