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
    /// HTTP method, or the Exchange cmdlet verb family (bounded).
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

/// The process-wide registry and the metric groups in it.
pub struct Metrics {
    pub registry: Registry,
    pub tenant: Arc<TenantMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("t2t");
        let tenant = Arc::new(TenantMetrics::register(&mut registry));
        Self { registry, tenant }
    }
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
